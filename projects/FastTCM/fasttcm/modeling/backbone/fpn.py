"""``build_fasttcm_cr50_fpn_backbone``: detectron2's FPN on top of :class:`FastTCMBackbone`."""

from typing import Dict, Tuple

import torch
import torch.nn.functional as F

from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import BACKBONE_REGISTRY, FPN
from detectron2.modeling.backbone.fpn import LastLevelMaxPool

from ..tcm.backbone import FastTCMBackbone

__all__ = ["FastTCMFPN", "build_fasttcm_cr50_fpn_backbone"]


class FastTCMFPN(FPN):
    """FPN whose bottom-up network is a :class:`FastTCMBackbone`; also returns the ILM outputs.

    ``forward(x)`` returns the pyramid only, so detectron2 meta-architectures (GeneralizedRCNN)
    use it as-is; FastTCM heads call :meth:`forward_with_aux` to get the score map for the
    auxiliary loss as well.
    """

    def forward_with_aux(
        self, x: torch.Tensor
    ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
        """
        Args:
            x: (B, 3, H, W) normalized RGB images, H and W multiples of :attr:`size_divisibility`.

        Returns:
            features: {"p2": (B, C, H/4, W/4), ..., "p5": (B, C, H/32, W/32),
                "p6": (B, C, H/64, W/64)} (C = MODEL.FPN.OUT_CHANNELS) with the default
                in-features res2..res5.
            aux: the bottom-up's aux dict, see :meth:`FastTCMBackbone.forward_with_aux`
                ({"score_map", "logits", "text_embeddings"}; {} in MODE "none").
        """
        bottom_up_features, aux = self.bottom_up.forward_with_aux(x)
        return self._pyramid(bottom_up_features), aux

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The pyramid of :meth:`forward_with_aux` only."""
        return self.forward_with_aux(x)[0]

    def _pyramid(self, bottom_up_features: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """detectron2's FPN top-down pass over already computed bottom-up features."""
        prev_features = self.lateral_convs[0](bottom_up_features[self.in_features[-1]])
        results = [self.output_convs[0](prev_features)]
        for name, lateral_conv, output_conv in zip(
            self.in_features[-2::-1], self.lateral_convs[1:], self.output_convs[1:]
        ):
            top_down_features = F.interpolate(prev_features, scale_factor=2.0, mode="nearest")
            prev_features = lateral_conv(bottom_up_features[name]) + top_down_features
            if self._fuse_type == "avg":
                prev_features = prev_features / 2
            results.insert(0, output_conv(prev_features))
        if self.top_block is not None:
            if self.top_block.in_feature in bottom_up_features:
                top_block_input = bottom_up_features[self.top_block.in_feature]
            else:
                top_block_input = results[self._out_features.index(self.top_block.in_feature)]
            results.extend(self.top_block(top_block_input))
        return dict(zip(self._out_features, results))


@BACKBONE_REGISTRY.register()
def build_fasttcm_cr50_fpn_backbone(cfg, input_shape: ShapeSpec) -> FastTCMFPN:
    """FastTCM-CR50 + FPN (p2..p6, LastLevelMaxPool), configured by MODEL.FASTTCM.* and MODEL.FPN.*.

    ``MODEL.FPN.IN_FEATURES`` defaults to res2..res5 when left empty (detectron2's default).
    """
    bottom_up = FastTCMBackbone(cfg, input_shape)
    in_features = list(cfg.MODEL.FPN.IN_FEATURES) or ["res2", "res3", "res4", "res5"]
    unknown = [f for f in in_features if f not in bottom_up.output_shape()]
    if unknown:
        raise ValueError(
            f"MODEL.FPN.IN_FEATURES {unknown} are not FastTCMBackbone outputs (res2..res5)"
        )
    return FastTCMFPN(
        bottom_up=bottom_up,
        in_features=in_features,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )
