"""Cross-attention context decoder shared by the visual prompt generator and the text side.

DenseCLIP-style (docs/model.md, "Visual prompt generator" and "Text-side context decoder"):
queries and memory are projected from D (1024) to the decoder width (256), pass through pre-norm
decoder layers (self-attention over the queries, cross-attention to the memory, MLP), and are
projected back to D.
"""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ContextDecoder", "ContextDecoderLayer", "GatedContextDecoder", "TextContextDecoder"]


class _MultiHeadAttention(nn.Module):
    """Multi-head attention with bias-free q/k/v projections and a biased output projection."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        if width % heads != 0:
            raise ValueError(f"decoder width {width} is not divisible by heads={heads}")
        self.heads = heads
        self.q_proj = nn.Linear(width, width, bias=False)
        self.k_proj = nn.Linear(width, width, bias=False)
        self.v_proj = nn.Linear(width, width, bias=False)
        self.out_proj = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """query: (B, Nq, C), memory: (B, Nm, C) -> (B, Nq, C); scale (C / heads) ** -0.5."""

        def split_heads(t: torch.Tensor) -> torch.Tensor:  # (B, N, C) -> (B, heads, N, C / heads)
            return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split_heads(self.q_proj(query)),
            split_heads(self.k_proj(memory)),
            split_heads(self.v_proj(memory)),
        )
        return self.dropout(self.out_proj(out.transpose(1, 2).flatten(2)))


class ContextDecoderLayer(nn.Module):
    """Pre-norm decoder layer: x += SA(LN1 x); x += CA(LN2 x, memory); x += Drop(MLP(LN3 x))."""

    def __init__(self, *, width: int, heads: int, dropout: float):
        super().__init__()
        self.self_attn = _MultiHeadAttention(width, heads, dropout)
        self.cross_attn = _MultiHeadAttention(width, heads, dropout)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.norm3 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, width * 4), nn.GELU(), nn.Dropout(dropout), nn.Linear(width * 4, width)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """x: (B, Nq, width) queries; memory: (B, Nm, width) -> (B, Nq, width)."""
        h = self.norm1(x)
        x = x + self.self_attn(h, h)
        x = x + self.cross_attn(self.norm2(x), memory)
        return x + self.dropout(self.mlp(self.norm3(x)))


class ContextDecoder(nn.Module):
    """Queries attend to a memory; both live in the D-dim joint embedding space.

    ``query_proj`` = LN(D) -> Linear(D, width); ``memory_proj`` = LN(D) -> Linear(D, width) ->
    LN(width); ``out_proj`` = LN(width) -> Linear(width, D). Linear weights are trunc-normal (std
    0.02) with zero bias, LayerNorms (1, 0).
    """

    def __init__(
        self,
        *,
        embed_dim: int = 1024,
        width: int = 256,
        heads: int = 4,
        layers: int = 3,
        dropout: float = 0.1,
    ):
        """
        Args:
            embed_dim: D, dimension of queries, memory and output (CLIP RN50: 1024).
            width, heads, layers: the decoder's width, attention heads and depth (256, 4, 3).
            dropout: dropout of attention outputs and MLPs (0.1).
        """
        super().__init__()
        self.embed_dim = embed_dim
        self.query_proj = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, width))
        self.memory_proj = nn.Sequential(
            nn.LayerNorm(embed_dim), nn.Linear(embed_dim, width), nn.LayerNorm(width)
        )
        self.layers = nn.ModuleList(
            [ContextDecoderLayer(width=width, heads=heads, dropout=dropout) for _ in range(layers)]
        )
        self.out_proj = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, embed_dim))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """
        Args:
            queries: (B, Nq, D).
            memory: (B or 1, Nm, D); a batch of 1 is shared by all B queries.

        Returns:
            (B, Nq, D) decoded queries (without residual; the callers add a gated residual).
        """
        x = self.query_proj(queries)
        memory = self.memory_proj(memory).expand(x.shape[0], -1, -1)
        for layer in self.layers:
            x = layer(x, memory)
        return self.out_proj(x)


class GatedContextDecoder(nn.Module):
    """A :class:`ContextDecoder` (``.decoder``) and the learnable gate ``.gamma`` of its output.

    Base of the prompting modules, which add ``gamma * decoder(...)`` to their input. gamma starts
    small, so the refinement starts close to the identity.

    Attributes:
        per_channel_gamma: gamma is (D,), one gate per channel; False: a scalar.
    """

    per_channel_gamma = True

    def __init__(self, *, gamma_init: float = 1e-3, **decoder_kwargs):
        """
        Args:
            gamma_init: initial value of every entry of gamma (1e-3).
            decoder_kwargs: ``embed_dim``, ``width``, ``heads``, ``layers`` and ``dropout`` of the
                :class:`ContextDecoder` (defaults 1024, 256, 4, 3, 0.1).
        """
        super().__init__()
        self.decoder = ContextDecoder(**decoder_kwargs)
        shape = (self.decoder.embed_dim,) if self.per_channel_gamma else ()
        self.gamma = nn.Parameter(torch.full(shape, float(gamma_init)))


class TextContextDecoder(GatedContextDecoder):
    """Text-side post-model prompting: t <- t + gamma * ContextDecoder(t, [I-bar; I]).

    gamma is a learnable per-channel gate (D,) initialised small (1e-3). The memory is the
    *un-prompted* visual context (the map I before the VPG adds its prompt). Arguments: those of
    :class:`GatedContextDecoder`.
    """

    def forward(
        self,
        text_embeddings: torch.Tensor,
        global_embedding: torch.Tensor,
        dense_embedding: torch.Tensor,
    ) -> torch.Tensor:
        """
        Args:
            text_embeddings: (B, K, D) text embeddings t.
            global_embedding: (B, D) global image vector I-bar.
            dense_embedding: (B, D, h, w) attention-pool embedding map I (before visual prompting).

        Returns:
            (B, K, D) refined text embeddings.
        """
        visual_context = torch.cat(
            [global_embedding[:, None], dense_embedding.flatten(2).transpose(1, 2)], dim=1
        )
        return text_embeddings + self.gamma * self.decoder(text_embeddings, visual_context)
