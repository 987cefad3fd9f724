"""CLIP ModifiedResNet image encoder with TCM's dense attention pool.

The stem, the anti-aliased bottleneck stages and the attention-pool parameters are open_clip's
(``open_clip.modified_resnet``), so parameter names match CLIP state dicts (``visual.*``). TCM
changes the attention pool: every one of the 1 + HW tokens is a query (CLIP queries with the mean
token only), which yields a global vector *and* a dense embedding map, and the positional table is
resized to the actual feature size at every forward.

Positional table, as the official ``CLIPResNetWithAttention`` parametrises it: the table is learned
on an S x S grid, S = ``attnpool_grid`` (the training input resolution / 32: 20 for 640 crops).
CLIP's 7 x 7 table is resized to S x S once, when CLIP weights load (``weights.py``), and the
learned S x S grid is resized bilinearly to the actual H/32 x W/32 at every forward. With S = 7
(CLIP's 224 / 32) the load-time resize is the identity and the forward resizes CLIP's grid
directly; at an H/32 x W/32 of S x S both give the same table.
"""

from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from open_clip.modified_resnet import AttentionPool2d, ModifiedResNet

__all__ = ["CLIPImageEncoder", "DenseAttentionPool2d", "resize_attnpool_positional_embedding"]


def resize_attnpool_positional_embedding(
    positional_embedding: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Resize an attention-pool positional table to a ``height x width`` grid (used once at CLIP
    load, S_clip -> S, and at every forward, S -> H/32 x W/32).

    Args:
        positional_embedding: (1 + S*S, C): the mean-token row, then an S x S grid in row-major
            order.
        height, width: the target grid (H/32 and W/32 of the padded input).

    Returns:
        (1 + height*width, C). The grid is resized bilinearly with ``align_corners=False``; the
        mean-token row is kept. The input is returned unchanged when the grid already matches.
    """
    num_positions, channels = positional_embedding.shape
    side = int(round((num_positions - 1) ** 0.5))
    if side * side + 1 != num_positions:
        raise ValueError(
            f"attention-pool positional table has {num_positions} rows; "
            "expected 1 + S*S for a square grid"
        )
    if (side, side) == (height, width):
        return positional_embedding
    grid = positional_embedding[1:].reshape(1, side, side, channels).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(height * width, channels)
    return torch.cat([positional_embedding[:1], grid], dim=0)


class DenseAttentionPool2d(AttentionPool2d):
    """TCM attention pool: multi-head self-attention over the mean token and all HW feature tokens.

    Parameters (``positional_embedding``, ``q_proj``, ``k_proj``, ``v_proj``, ``c_proj``) are
    those of open_clip's :class:`AttentionPool2d`; only the forward differs. The output of the
    mean token equals CLIP's pooled image embedding.
    """

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: (B, C, H, W) last-stage features (C = embed_dim, 2048 for RN50).

        Returns:
            global_embedding: (B, D), the mean token's output (D = output_dim, 1024 for RN50).
            dense_embedding: (B, D, H, W), the output of every spatial token, on the input grid.
        """
        batch, channels, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, HW, C), row-major like the positional grid
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)  # (B, 1 + HW, C)
        pos = resize_attnpool_positional_embedding(self.positional_embedding, height, width)
        tokens = tokens + pos.to(tokens.dtype)

        head_dim = channels // self.num_heads

        def split_heads(t: torch.Tensor) -> torch.Tensor:  # (B, L, C) -> (B, heads, L, C / heads)
            return t.unflatten(-1, (self.num_heads, head_dim)).transpose(1, 2)

        q = split_heads(self.q_proj(tokens))
        k = split_heads(self.k_proj(tokens))
        v = split_heads(self.v_proj(tokens))
        out = F.scaled_dot_product_attention(q, k, v)  # scale = head_dim ** -0.5, as in CLIP
        out = self.c_proj(out.transpose(1, 2).flatten(2))  # (B, 1 + HW, D)
        global_embedding = out[:, 0]
        dense_embedding = out[:, 1:].transpose(1, 2).reshape(batch, -1, height, width)
        return global_embedding, dense_embedding


class CLIPImageEncoder(ModifiedResNet):
    """CLIP ModifiedResNet (CR50 at the defaults) returning stage features and TCM embeddings.

    Stem: three 3x3 convs and an average pool (stride 4); stages ``layer1..layer4`` use anti-aliased
    bottlenecks (strides 4, 8, 16, 32). BatchNorm layers are ordinary trainable ``BatchNorm2d``.
    The learned positional table of the attention pool is ``attnpool_grid x attnpool_grid`` plus the
    mean-token row (the official choice is the training input resolution / 32; CLIP's own is 7) and
    is resized bilinearly to the feature grid of each input. Without the attention pool
    (``with_attention_pool=False``, for models without a text branch) ``attnpool`` is None and only
    the stage features are computed.
    """

    def __init__(
        self,
        *,
        layers: Sequence[int] = (3, 4, 6, 3),
        width: int = 64,
        heads: int = 32,
        output_dim: int = 1024,
        attnpool_grid: int = 7,
        with_attention_pool: bool = True,
    ):
        """
        Args:
            layers: bottleneck blocks per stage (RN50: 3, 4, 6, 3).
            width: stem width; stage outputs have 4, 8, 16 and 32 times as many channels.
            heads: attention-pool heads (RN50: 32, i.e. 64 channels per head).
            output_dim: D, the joint image-text embedding dimension (RN50: 1024).
            attnpool_grid: side S of the learned attention-pool positional grid (1 + S*S rows;
                MODEL.FASTTCM.ATTNPOOL_GRID).
            with_attention_pool: build the attention pool (global and dense embeddings).
        """
        if len(layers) != 4:
            raise ValueError(f"CLIPImageEncoder needs 4 stage depths, got layers={list(layers)}")
        if attnpool_grid < 1:
            raise ValueError(
                "attention-pool grid must be >= 1 (MODEL.FASTTCM.ATTNPOOL_GRID), "
                f"got {attnpool_grid}"
            )
        if (width * 32) % heads != 0:
            raise ValueError(f"attention-pool width {width * 32} is not divisible by heads={heads}")
        super().__init__(
            layers=list(layers),
            output_dim=output_dim,
            heads=heads,
            image_size=attnpool_grid * 32,
            width=width,
        )
        self.attnpool = (
            DenseAttentionPool2d(attnpool_grid, width * 32, heads, output_dim)
            if with_attention_pool
            else None
        )
        self.init_parameters()  # CLIP's init, now applied to the dense attention pool
        self.stage_channels = {f"res{i + 2}": width * 4 * 2**i for i in range(4)}
        self.stage_strides = {f"res{i + 2}": 4 * 2**i for i in range(4)}

    def forward(
        self, x: torch.Tensor
    ) -> Tuple[Dict[str, torch.Tensor], Optional[torch.Tensor], Optional[torch.Tensor]]:
        """
        Args:
            x: (B, 3, H, W) normalized RGB images; H and W are multiples of 32.

        Returns:
            features: {"res2": (B, 4w, H/4, W/4), "res3": (B, 8w, H/8, W/8),
                "res4": (B, 16w, H/16, W/16), "res5": (B, 32w, H/32, W/32)}, w = width.
            global_embedding: (B, D), the attention pool's global vector (the paper's I-bar);
                None without the attention pool.
            dense_embedding: (B, D, H/32, W/32), the attention pool's per-location embedding map
                (I); None without the attention pool.
        """
        x = self.stem(x)
        features = {}
        for name, stage in zip(
            self.stage_channels, (self.layer1, self.layer2, self.layer3, self.layer4)
        ):
            x = stage(x)
            features[name] = x
        if self.attnpool is None:
            return features, None, None
        global_embedding, dense_embedding = self.attnpool(x)
        return features, global_embedding, dense_embedding
