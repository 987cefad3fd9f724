"""Convolutional patch stem for a ViT trained from scratch (Xiao et al., 2021, "Early Convolutions
Help Transformers See Better").

CLIP's ViT turns each p_h x p_w patch into a token with one linear map (a strided convolution).
That stem is what the pretrained CLIP weights expect, and it is the default. Trained from random
weights, it learns slowly: a character shifted by a few pixels lands in a different place of the
patch and becomes an unrelated input vector. A short stack of 3x3 stride-2 convolutions (batch
norm, ReLU) followed by a 1x1 projection gives every token overlapping, shift-tolerant stroke
features instead, and the recognizer leaves its language-prior plateau far sooner. It replaces
``visual.conv1`` and has the same contract: (B, 3, H, W) -> (B, width, H / p_h, W / p_w).
"""

import math
from typing import Tuple

import torch
from torch import nn

__all__ = ["ConvPatchStem"]


def _num_halvings(size: int, axis: str) -> int:
    steps = int(round(math.log2(size))) if size > 0 else -1
    if steps < 0 or 2**steps != size:
        raise ValueError(f"ConvPatchStem: the patch {axis} must be a power of two, got {size}")
    return steps


class ConvPatchStem(nn.Module):
    """3x3 convolutions (stride 2 along each axis until the patch size is reached), then 1x1.

    Channels start at ``base_channels`` and double at every stride-2 step (capped at `width`).
    """

    def __init__(
        self,
        patch_size: Tuple[int, int],
        width: int,
        *,
        base_channels: int = 32,
        in_channels: int = 3,
    ):
        """
        Args:
            patch_size: (p_h, p_w), powers of two; the token grid is (H / p_h, W / p_w).
            width: token width (the ViT width).
            base_channels: channels of the first convolution.
            in_channels: image channels.
        """
        super().__init__()
        steps_h = _num_halvings(patch_size[0], "height")
        steps_w = _num_halvings(patch_size[1], "width")
        num_steps = max(steps_h, steps_w, 1)
        layers = []
        channels = in_channels
        for i in range(num_steps):
            stride = (2 if i < steps_h else 1, 2 if i < steps_w else 1)
            out = min(base_channels * 2**i, width)
            layers += [
                nn.Conv2d(channels, out, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            channels = out
        self.layers = nn.Sequential(*layers)
        self.proj = nn.Conv2d(channels, width, 1)
        self.patch_size = tuple(patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) normalized images -> (B, width, H / p_h, W / p_w) token features."""
        return self.proj(self.layers(images))
