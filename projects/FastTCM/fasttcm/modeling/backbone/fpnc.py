"""``build_fasttcm_cr50_fpnc_backbone``: the FPNC neck of TCM-DBNet on :class:`FastTCMBackbone`.

The official TCM-DBNet puts MMOCR's ``FPNC`` (DBNet's fusion neck) on the CLIP ResNet. Unlike
detectron2's FPN it has no 3x3 output conv per pyramid level and no biases, and it returns one
fused map instead of a pyramid:

1. laterals: a 1x1 conv per input level to ``lateral_channels`` (no bias, norm or activation);
2. top-down: from the coarsest level down, each lateral gets the next coarser (already summed)
   lateral added after nearest upsampling to its own size;
3. smooth: a 3x3 conv (padding 1, no bias, norm or activation) per summed lateral to
   ``out_channels``;
4. fusion: the smoothed maps are upsampled (nearest) to the finest level's size and concatenated,
   finest level first: ``(B, L * out_channels, H/4, W/4)`` for L levels starting at res2.

With the official sizes (lateral 256, out 64, res2..res5) the fused map has 256 channels and the
DB head takes it as is (``MODEL.DB_HEAD.FUSE_CONVS False``).
"""

from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import BACKBONE_REGISTRY, Backbone

from ..tcm.backbone import FastTCMBackbone

__all__ = ["FastTCMFPNC", "build_fasttcm_cr50_fpnc_backbone"]


class FastTCMFPNC(Backbone):
    """FastTCM-CR50 + FPNC: one fused feature map ``"fused"`` at the finest input level's stride.

    Attributes (their names are the ones official FPNC weights are converted to):
        bottom_up: the :class:`FastTCMBackbone` (res5 carries the K score-map channels).
        lateral_convs: ``nn.ModuleList`` of 1x1 ``nn.Conv2d`` without bias, one per input level,
            finest first (index 0 = res2 ... 3 = res5 with the default in-features).
        smooth_convs: ``nn.ModuleList`` of 3x3 ``nn.Conv2d`` (padding 1) without bias,
            ``lateral_channels -> out_channels``, same order.
    """

    def __init__(
        self,
        bottom_up: FastTCMBackbone,
        in_features: Sequence[str],
        lateral_channels: int = 256,
        out_channels: int = 64,
    ):
        """
        Args:
            bottom_up: the FastTCM backbone whose features are fused.
            in_features: names of ``bottom_up`` outputs to fuse, finest first, strides strictly
                increasing (official: res2, res3, res4, res5).
            lateral_channels: channels of the lateral convs (FPNC ``lateral_channels``).
            out_channels: channels of each smooth conv (FPNC ``out_channels``); the fused map has
                ``len(in_features) * out_channels`` channels.
        """
        super().__init__()
        in_features = list(in_features)
        shapes = bottom_up.output_shape()
        if not in_features:
            raise ValueError("FastTCMFPNC: MODEL.FPNC.IN_FEATURES is empty")
        unknown = [name for name in in_features if name not in shapes]
        if unknown:
            raise ValueError(
                f"FastTCMFPNC: MODEL.FPNC.IN_FEATURES {unknown} are not outputs of the bottom-up "
                f"backbone (it gives {sorted(shapes)})"
            )
        strides = [shapes[name].stride for name in in_features]
        if any(fine >= coarse for fine, coarse in zip(strides, strides[1:])):
            raise ValueError(
                f"FastTCMFPNC: MODEL.FPNC.IN_FEATURES {in_features} must go from fine to coarse "
                f"(strides {strides} are not strictly increasing)"
            )
        if lateral_channels < 1 or out_channels < 1:
            raise ValueError(
                f"FastTCMFPNC: MODEL.FPNC.LATERAL_CHANNELS ({lateral_channels}) and "
                f"MODEL.FPNC.OUT_CHANNELS ({out_channels}) must be positive"
            )
        self.bottom_up = bottom_up
        self.in_features = in_features
        self.lateral_convs = nn.ModuleList(
            nn.Conv2d(shapes[name].channels, lateral_channels, kernel_size=1, bias=False)
            for name in in_features
        )
        self.smooth_convs = nn.ModuleList(
            nn.Conv2d(lateral_channels, out_channels, kernel_size=3, padding=1, bias=False)
            for _ in in_features
        )
        self._out_features = ["fused"]
        self._out_feature_channels = {"fused": out_channels * len(in_features)}
        self._out_feature_strides = {"fused": strides[0]}
        for conv in [*self.lateral_convs, *self.smooth_convs]:
            # MMOCR FPNC's init_cfg: Kaiming (normal, fan_out, ReLU gain) on every conv
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")

    @property
    def size_divisibility(self) -> int:
        return self.bottom_up.size_divisibility

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {
            "fused": ShapeSpec(
                channels=self._out_feature_channels["fused"],
                stride=self._out_feature_strides["fused"],
            )
        }

    def fuse(self, bottom_up_features: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Laterals -> top-down sum -> smooth convs -> nearest upsampling -> concat.

        Args:
            bottom_up_features: at least ``self.in_features``, each (B, C_i, H/s_i, W/s_i).

        Returns:
            (B, len(in_features) * out_channels, H/s_0, W/s_0), level 0's channels first.
        """
        laterals: List[torch.Tensor] = [
            conv(bottom_up_features[name])
            for name, conv in zip(self.in_features, self.lateral_convs)
        ]
        for level in range(len(laterals) - 1, 0, -1):
            finer = laterals[level - 1]
            laterals[level - 1] = finer + F.interpolate(
                laterals[level], size=finer.shape[-2:], mode="nearest"
            )
        size = laterals[0].shape[-2:]
        outputs = []
        for lateral, conv in zip(laterals, self.smooth_convs):
            smoothed = conv(lateral)
            if smoothed.shape[-2:] != size:
                smoothed = F.interpolate(smoothed, size=size, mode="nearest")
            outputs.append(smoothed)
        return torch.cat(outputs, dim=1)

    def forward_with_aux(
        self, x: torch.Tensor
    ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
        """
        Args:
            x: (B, 3, H, W) normalized RGB images, H and W multiples of :attr:`size_divisibility`.

        Returns:
            features: {"fused": (B, C, H/4, W/4)} with the default in-features res2..res5
                (C = 4 * MODEL.FPNC.OUT_CHANNELS, 256 at the official sizes).
            aux: the bottom-up's aux dict, see :meth:`FastTCMBackbone.forward_with_aux`
                ({"score_map", "logits", "text_embeddings"}; {} in MODE "none").
        """
        bottom_up_features, aux = self.bottom_up.forward_with_aux(x)
        return {"fused": self.fuse(bottom_up_features)}, aux

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The features of :meth:`forward_with_aux` only."""
        return self.forward_with_aux(x)[0]


@BACKBONE_REGISTRY.register()
def build_fasttcm_cr50_fpnc_backbone(cfg, input_shape: ShapeSpec) -> FastTCMFPNC:
    """FastTCM-CR50 + FPNC, configured by MODEL.FASTTCM.* and MODEL.FPNC.*.

    The output ``{"fused": ShapeSpec(channels=len(IN_FEATURES) * OUT_CHANNELS, stride=4)}`` feeds
    ``FastTCMDBHead`` with ``MODEL.DB_HEAD.IN_FEATURES ["fused"]`` and ``FUSE_CONVS False``.
    """
    fc = cfg.MODEL.FPNC
    return FastTCMFPNC(
        bottom_up=FastTCMBackbone(cfg, input_shape),
        in_features=fc.IN_FEATURES,
        lateral_channels=fc.LATERAL_CHANNELS,
        out_channels=fc.OUT_CHANNELS,
    )
