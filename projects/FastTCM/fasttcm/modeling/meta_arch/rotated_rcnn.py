"""``FastTCMRotatedRCNN``: rotated Faster R-CNN on FastTCM-CR50 for oriented objects (DOTA).

GeneralizedRCNN with a rotated RPN (``RRPN``) and :class:`FastTCMRROIHeads`. Boxes everywhere are
detectron2 ``RotatedBoxes``: (cx, cy, w, h, angle), angle in degrees, counter-clockwise, absolute
pixels. Differences to ``GeneralizedRCNN``:

* the backbone's instance-language-matching outputs are used: its class text embeddings
  (``aux["text_embeddings"]``, one prompt per class name of the dataset metadata) feed the ROI
  classifier, and its score map S (B, K, H/32, W/32) gets the auxiliary loss ``loss_ilm``: per-class
  BCE of S/tau against the ground-truth rotated boxes rasterized per class at stride
  ``ILM_TARGET_STRIDE``, weighted by lambda (``MODEL.FASTTCM.AUX_LOSS_WEIGHT``).
"""

from typing import Dict, List, Optional

import torch

from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN
from detectron2.structures import Instances

from ..tcm.instance_language_matching import per_class_bce_loss

__all__ = ["FastTCMRotatedRCNN", "rasterize_rotated_boxes"]


def rasterize_rotated_boxes(
    boxes: torch.Tensor,
    classes: torch.Tensor,
    num_classes: int,
    height: int,
    width: int,
    stride: int,
) -> torch.Tensor:
    """Per-class binary masks of rotated boxes, sampled at pixel centres of a stride-`stride` grid.

    Args:
        boxes: (N, 5) XYWHA boxes in input pixels (degrees, counter-clockwise).
        classes: (N,) int64 class indices in [0, num_classes).
        height, width: input size in pixels; the grid is (ceil(H/stride), ceil(W/stride)).

    Returns:
        (num_classes, h, w) float mask, 1 where the grid point lies inside a box of that class.
    """
    h, w = -(-height // stride), -(-width // stride)
    out = boxes.new_zeros((num_classes, h * w))
    if len(boxes) == 0:
        return out.view(num_classes, h, w)
    ys = (torch.arange(h, device=boxes.device, dtype=boxes.dtype) + 0.5) * stride
    xs = (torch.arange(w, device=boxes.device, dtype=boxes.dtype) + 0.5) * stride
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    px, py = gx.reshape(1, -1), gy.reshape(1, -1)  # (1, P)
    cx, cy, bw, bh, a = (boxes[:, i : i + 1] for i in range(5))  # (N, 1) each
    theta = a * (torch.pi / 180.0)
    c, s = torch.cos(theta), torch.sin(theta)
    dx, dy = px - cx, py - cy
    # inverse of detectron2's corner map (dx = u c + v s, dy = -u s + v c)
    u = dx * c - dy * s
    v = dx * s + dy * c
    inside = ((u.abs() <= bw / 2) & (v.abs() <= bh / 2)).to(boxes.dtype)  # (N, P)
    onehot = torch.nn.functional.one_hot(classes.long(), num_classes).to(boxes.dtype)  # (N, K)
    out = (onehot.t() @ inside).clamp_(max=1.0)
    return out.view(num_classes, h, w)


@META_ARCH_REGISTRY.register()
class FastTCMRotatedRCNN(GeneralizedRCNN):
    """See the module docstring. Inputs and outputs follow ``GeneralizedRCNN`` (``instances`` with
    ``gt_boxes`` RotatedBoxes and ``gt_classes`` in training; ``pred_boxes`` RotatedBoxes,
    ``scores``, ``pred_classes`` in original-image pixels at inference)."""

    @configurable
    def __init__(self, *, aux_loss_weight: float = 1.0, ilm_target_stride: int = 4, **kwargs):
        """
        Args:
            aux_loss_weight: lambda, weight of the instance-language-matching loss.
            ilm_target_stride: stride of the grid the per-class box masks are rasterized on.
            kwargs: arguments of :class:`GeneralizedRCNN`.
        """
        super().__init__(**kwargs)
        self.aux_loss_weight = aux_loss_weight
        self.ilm_target_stride = ilm_target_stride

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        ret["aux_loss_weight"] = cfg.MODEL.FASTTCM.AUX_LOSS_WEIGHT
        ret["ilm_target_stride"] = cfg.MODEL.DOTA.ILM_TARGET_STRIDE
        return ret

    def _backbone(self, images):
        if hasattr(self.backbone, "forward_with_aux"):
            return self.backbone.forward_with_aux(images.tensor)
        return self.backbone(images.tensor), {}

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        if not self.training:
            return self.inference(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
        features, aux = self._backbone(images)
        proposals, proposal_losses = self.proposal_generator(images, features, gt_instances)
        _, detector_losses = self.roi_heads(
            images, features, proposals, gt_instances, text_embeddings=aux.get("text_embeddings")
        )
        losses = {**detector_losses, **proposal_losses}
        if "logits" in aux and self.aux_loss_weight > 0:
            losses["loss_ilm"] = self.aux_loss_weight * self._ilm_loss(
                aux["logits"], images, gt_instances
            )
        return losses

    def _ilm_loss(self, logits: torch.Tensor, images, gt_instances: List[Instances]):
        num_classes = logits.shape[1]
        height, width = images.tensor.shape[-2:]
        targets = torch.stack(
            [
                rasterize_rotated_boxes(
                    inst.gt_boxes.tensor.float(),
                    inst.gt_classes,
                    num_classes,
                    height,
                    width,
                    self.ilm_target_stride,
                )
                for inst in gt_instances
            ]
        )
        return per_class_bce_loss(logits, targets)

    def inference(
        self,
        batched_inputs,
        detected_instances: Optional[List[Instances]] = None,
        do_postprocess: bool = True,
    ):
        assert detected_instances is None, "FastTCMRotatedRCNN does not take given boxes"
        images = self.preprocess_image(batched_inputs)
        features, aux = self._backbone(images)
        proposals, _ = self.proposal_generator(images, features, None)
        results, _ = self.roi_heads(
            images, features, proposals, None, text_embeddings=aux.get("text_embeddings")
        )
        if do_postprocess:
            return GeneralizedRCNN._postprocess(results, batched_inputs, images.image_sizes)
        return results
