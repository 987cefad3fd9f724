"""``FastTCMRROIHeads``: detectron2's rotated ROI heads with a classifier on class-name text
embeddings.

Boxes are detectron2 ``RotatedBoxes`` (cx, cy, w, h, angle in degrees, counter-clockwise), absolute
pixels of the network input. Regression, matching, sampling, losses and class-wise rotated NMS are
detectron2's (``RROIHeads`` / ``RotatedFastRCNNOutputLayers`` / ``Box2BoxTransformRotated``).
What FastTCM adds: the foreground logits are cosine similarities between each ROI feature
(projected to the CLIP embedding width) and the prompted text embedding of every class, divided by
a learnable temperature, as in CLIP's zero-shot classifier; the background logit comes from a
linear layer. With ``MODEL.FASTTCM.MODE "none"`` (no text branch) the head is detectron2's
``RotatedFastRCNNOutputLayers`` with its linear classifier.
"""

import math
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, RROIHeads
from detectron2.modeling.roi_heads.rotated_fast_rcnn import RotatedFastRCNNOutputLayers
from detectron2.structures import Instances

__all__ = ["FastTCMRROIHeads", "TextEmbeddingRotatedOutputLayers"]


class TextEmbeddingRotatedOutputLayers(RotatedFastRCNNOutputLayers):
    """RotatedFastRCNNOutputLayers whose class scores come from class-name text embeddings.

    forward(x, text_embeddings) -> (scores (R, K+1), deltas (R, K*5 or 5)); the last score
    column is background, as detectron2 expects.
    """

    @configurable
    def __init__(self, input_shape: ShapeSpec, *, embed_dim: int, tau: float, **kwargs):
        """
        Args:
            embed_dim: width C of the text embeddings (CLIP embedding width, 1024 for RN50).
            tau: initial temperature of the cosine logits (learnable, stored as log(1/tau)).
            kwargs: arguments of :class:`RotatedFastRCNNOutputLayers`.
        """
        super().__init__(input_shape, **kwargs)
        in_dim = self.cls_score.in_features
        del (
            self.cls_score
        )  # replaced by the text-embedding classifier (no unused parameters in DDP)
        self.embed_proj = nn.Linear(in_dim, embed_dim)
        self.bg_score = nn.Linear(in_dim, 1)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / tau)))
        for layer in (self.embed_proj, self.bg_score):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0.0)

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        ret["embed_dim"] = cfg.MODEL.FASTTCM.EMBED_DIM
        ret["tau"] = cfg.MODEL.FASTTCM.TAU
        return ret

    def forward(self, x: torch.Tensor, text_embeddings: torch.Tensor):
        """
        Args:
            x: (R, D) box-head features (flattened if needed).
            text_embeddings: (R, K, C) text embedding of every class for each ROI's image.
        """
        if text_embeddings is None:
            raise ValueError(
                "TextEmbeddingRotatedOutputLayers needs the backbone's text embeddings "
                "(MODEL.FASTTCM.MODE 'none' uses detectron2's linear classifier)"
            )
        if x.dim() > 2:
            x = torch.flatten(x, start_dim=1)
        deltas = self.bbox_pred(x)
        roi = F.normalize(self.embed_proj(x), dim=-1)  # (R, C)
        text = F.normalize(text_embeddings, dim=-1)  # (R, K, C)
        fg = torch.einsum("rc,rkc->rk", roi, text) * self.logit_scale.exp().clamp(max=100.0)
        return torch.cat([fg, self.bg_score(x)], dim=1), deltas


@ROI_HEADS_REGISTRY.register()
class FastTCMRROIHeads(RROIHeads):
    """RROIHeads (ROIAlignRotated pooling, XYWHA regression, class-wise rotated NMS) with the
    text-embedding classifier of :class:`TextEmbeddingRotatedOutputLayers`."""

    @classmethod
    def _init_box_head(cls, cfg, input_shape):
        ret = super()._init_box_head(cfg, input_shape)
        if cfg.MODEL.FASTTCM.MODE != "none":
            ret["box_predictor"] = TextEmbeddingRotatedOutputLayers(
                cfg, ret["box_head"].output_shape
            )
        return ret

    def forward(
        self,
        images,
        features: Dict[str, torch.Tensor],
        proposals: List[Instances],
        targets: Optional[List[Instances]] = None,
        text_embeddings: Optional[torch.Tensor] = None,
    ):
        """
        Args:
            images, features, proposals, targets: as in :meth:`StandardROIHeads.forward`.
            text_embeddings: (B, K, C) or (1, K, C) class text embeddings from the backbone's
                aux outputs; None = linear classifier.
        """
        del images
        if self.training:
            assert targets, "'targets' argument is required during training"
            proposals = self.label_and_sample_proposals(proposals, targets)
        del targets
        if self.training:
            return proposals, self._forward_box(features, proposals, text_embeddings)
        return self._forward_box(features, proposals, text_embeddings), {}

    def _forward_box(self, features, proposals, text_embeddings=None):
        feats = [features[f] for f in self.box_in_features]
        box_features = self.box_head(self.box_pooler(feats, [x.proposal_boxes for x in proposals]))
        per_roi_text = None
        if text_embeddings is not None:
            counts = torch.as_tensor([len(p) for p in proposals], device=box_features.device)
            if text_embeddings.shape[0] == 1:
                per_roi_text = text_embeddings.expand(int(counts.sum()), -1, -1)
            else:
                per_roi_text = text_embeddings.repeat_interleave(counts, dim=0)
        if per_roi_text is None:
            predictions = self.box_predictor(box_features)
        else:
            predictions = self.box_predictor(box_features, per_roi_text)
        if self.training:
            return self.box_predictor.losses(predictions, proposals)
        pred_instances, _ = self.box_predictor.inference(predictions, proposals)
        return pred_instances
