"""DBNet-style text detection head on FPN levels or an FPNC-fused map (differentiable
binarization)."""

from typing import Callable, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import configurable
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY

from .db_loss import DBLoss

__all__ = ["FastTCMDBHead"]


@SEM_SEG_HEADS_REGISTRY.register()
class FastTCMDBHead(nn.Module):
    """DBNet head (MMOCR ``DBHead``), with an optional FPNC-like fusion of detectron2 FPN levels.

    1. Fusion, two variants (``fuse_convs``):

       * True (default; on detectron2 FPN p2..p5): every input level goes through a 3x3 conv (with
         bias, ``fuse_convs.<i>``) to ``conv_dims / L`` channels (L = number of levels), is
         upsampled (nearest) to the finest level's resolution (stride 4) and the levels are
         concatenated: (B, conv_dims, H/4, W/4).
       * False (on ``build_fasttcm_cr50_fpnc_backbone``, which already fuses like MMOCR ``FPNC``):
         the one input feature *is* the fused map, (B, conv_dims, H/4, W/4); the head has no
         fuse convs, only the two branches, exactly as the official ``DBHead``.

    2. Probability and threshold branches (``prob_branch``, ``thresh_branch``; official
       ``binarize`` and ``threshold``), each: conv3x3 conv_dims -> conv_dims/4 (no bias when
       normed), norm, ReLU, ConvTranspose2d(conv_dims/4, conv_dims/4, 2, 2), norm, ReLU,
       ConvTranspose2d(conv_dims/4, 1, 2, 2), sigmoid. Their outputs are at stride 1, i.e. the
       (padded) network input resolution. Parameter names per branch: ``0.weight`` (conv3x3),
       ``0.norm.*`` (first norm), ``1.*`` (first transposed conv), ``2.*`` (second norm),
       ``4.*`` (last transposed conv); official ``binarize.{0, 1, 3, 4, 6}`` in that order.
    3. Approximate binary map ``B = sigmoid(k (P - T))`` (DBNet eq. 2, ``k`` = amplification).

    Maps are in the padded input image's pixel frame: map pixel (i, j) is input pixel (i, j).
    """

    @configurable
    def __init__(
        self,
        input_shape: Dict[str, ShapeSpec],
        *,
        conv_dims: int = 256,
        k: float = 50.0,
        norm: Optional[Union[str, Callable]] = "BN",
        loss: Optional[nn.Module] = None,
        fuse_convs: bool = True,
    ):
        """
        Args:
            input_shape: channels and stride of the features to fuse (e.g. FPN p2..p5), or of the
                one already fused map (``fuse_convs=False``). The finest one must have stride 4.
            conv_dims: channels of the fused feature; divisible by 4, and by the number of levels
                with fuse convs; without them, the input's channels.
            k: DB amplification factor ``k`` of the binary map.
            norm: normalization of the two branches (detectron2 ``get_norm`` name, e.g. "BN", "GN",
                "SyncBN", or "" for none).
            loss: computes the training losses from (maps, targets); defaults to ``DBLoss()``.
            fuse_convs: fuse the input levels with a 3x3 conv each (True), or take the single
                input as the fused map (False: the FPNC neck, official TCM-DBNet).
        """
        super().__init__()
        if not input_shape:
            raise ValueError(
                "db_head.FastTCMDBHead: input_shape is empty; set MODEL.DB_HEAD.IN_FEATURES."
            )
        shapes = sorted(input_shape.items(), key=lambda item: item[1].stride)
        self.in_features = [name for name, _ in shapes]
        finest_stride = shapes[0][1].stride
        if finest_stride != 4:
            raise ValueError(
                f"db_head.FastTCMDBHead: the finest input feature '{shapes[0][0]}' "
                f"has stride {finest_stride}; "
                "the head upsamples x4 and needs stride 4 (e.g. FPN p2)."
            )
        if conv_dims % len(shapes) or conv_dims % 4:
            raise ValueError(
                f"db_head.FastTCMDBHead: conv_dims={conv_dims} "
                "must be divisible by 4 and by the number of "
                f"input features ({len(shapes)})."
            )
        if not fuse_convs and (len(shapes) != 1 or shapes[0][1].channels != conv_dims):
            raise ValueError(
                "db_head.FastTCMDBHead: MODEL.DB_HEAD.FUSE_CONVS False takes one already fused "
                f"feature with conv_dims={conv_dims} channels (MODEL.DB_HEAD.CONV_DIMS), got "
                + ", ".join(f"'{name}' ({spec.channels} channels)" for name, spec in shapes)
                + "; use IN_FEATURES ['fused'] of build_fasttcm_cr50_fpnc_backbone with "
                "CONV_DIMS = len(MODEL.FPNC.IN_FEATURES) * MODEL.FPNC.OUT_CHANNELS."
            )
        self.k = k
        self.loss = loss if loss is not None else DBLoss()

        level_dims = conv_dims // len(shapes)
        self.fuse_convs = (
            nn.ModuleList(
                Conv2d(spec.channels, level_dims, kernel_size=3, padding=1) for _, spec in shapes
            )
            if fuse_convs
            else None
        )
        self.prob_branch = self._make_branch(conv_dims, norm)
        self.thresh_branch = self._make_branch(conv_dims, norm)
        self._init_weights()

    @staticmethod
    def _make_branch(conv_dims: int, norm) -> nn.Sequential:
        """conv3x3 -> norm/ReLU -> deconv x2 -> norm/ReLU -> deconv x2 to one channel
        (pre-sigmoid)."""
        mid = conv_dims // 4
        deconv_norm = get_norm(norm, mid)
        return nn.Sequential(
            Conv2d(
                conv_dims,
                mid,
                3,
                padding=1,
                bias=not norm,
                norm=get_norm(norm, mid),
                activation=F.relu,
            ),
            nn.ConvTranspose2d(mid, mid, kernel_size=2, stride=2),
            deconv_norm if deconv_norm is not None else nn.Identity(),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(mid, 1, kernel_size=2, stride=2),
        )

    def _init_weights(self) -> None:
        """Kaiming-normal convs, norm weight 1 / bias 1e-4 (MMOCR DBHead)."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.constant_(module.bias, 1e-4)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        head_cfg = cfg.MODEL.DB_HEAD
        missing = [name for name in head_cfg.IN_FEATURES if name not in input_shape]
        if missing:
            raise ValueError(
                f"db_head.FastTCMDBHead: MODEL.DB_HEAD.IN_FEATURES {missing} "
                "are not produced by the backbone "
                f"(it gives {sorted(input_shape)})."
            )
        return {
            "input_shape": {name: input_shape[name] for name in head_cfg.IN_FEATURES},
            "conv_dims": head_cfg.CONV_DIMS,
            "k": head_cfg.K,
            "norm": head_cfg.NORM,
            "fuse_convs": head_cfg.FUSE_CONVS,
            "loss": DBLoss(
                alpha=head_cfg.LOSS_ALPHA,
                beta=head_cfg.LOSS_BETA,
                negative_ratio=head_cfg.NEGATIVE_RATIO,
                prob_loss=head_cfg.PROB_LOSS,
            ),
        }

    def fuse(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Fuse the input levels into (B, conv_dims, H/4, W/4) (DBNet-FPNC concatenation); without
        fuse convs, the one input feature as it is."""
        finest = features[self.in_features[0]]
        if self.fuse_convs is None:
            return finest
        levels = []
        for name, conv in zip(self.in_features, self.fuse_convs):
            x = conv(features[name])
            if x.shape[-2:] != finest.shape[-2:]:
                x = F.interpolate(x, size=finest.shape[-2:], mode="nearest")
            levels.append(x)
        return torch.cat(levels, dim=1)

    def layers(
        self, features: Dict[str, torch.Tensor], with_threshold: bool = True
    ) -> Dict[str, torch.Tensor]:
        """Predict the DB maps.

        Args:
            features: at least ``self.in_features``, each (B, C, H/s, W/s).
            with_threshold: also run the threshold branch (needed for the losses and the binary
                map).

        Returns:
            dict of (B, 1, H, W) tensors at the padded input resolution: "prob_logits" (pre-sigmoid
            probability map), "prob" (P); and with the threshold branch "thresh" (T) and "binary"
            (sigmoid(k (P - T))).
        """
        fused = self.fuse(features)
        prob_logits = self.prob_branch(fused)
        prob = prob_logits.sigmoid()
        maps = {"prob_logits": prob_logits, "prob": prob}
        if with_threshold:
            thresh = self.thresh_branch(fused).sigmoid()
            maps["thresh"] = thresh
            maps["binary"] = torch.sigmoid(self.k * (prob - thresh))
        return maps

    def forward(
        self,
        features: Dict[str, torch.Tensor],
        targets: Optional[Dict[str, torch.Tensor]] = None,
        return_all_maps: bool = False,
    ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
        """
        Args:
            features: FPN features (or the FPNC "fused" map) by name, each (B, C, H/s, W/s) for a
                padded input of H x W.
            targets: training only; (B, 1, H, W) float tensors "shrink_map", "shrink_mask",
                "thresh_map", "thresh_mask" (see ``db_targets.make_db_targets``), padding masked
                out.
            return_all_maps: in inference, also compute the threshold and binary maps (for
                visualization); training always computes them.

        Returns:
            (maps, losses): maps as in :meth:`layers`; losses {"loss_prob", "loss_binary",
            "loss_thresh"} in training, else {}.
        """
        maps = self.layers(features, with_threshold=self.training or return_all_maps)
        if not self.training:
            return maps, {}
        if targets is None:
            raise ValueError("db_head.FastTCMDBHead: targets are required in training mode.")
        return maps, self.loss(maps, targets)
