"""PARSeq two-stream character decoder, as the visual and the cross-modal decoder of CLIP4STR.

Each decoder reads a token context ``[BOS, t_1, ..., t_{L-1}]`` (B, L) and a cross-attention
memory (B, S, D): image tokens for the visual decoder, image + text tokens for the cross-modal
one. It returns logits (B, Lq, C) over EOS + the characters for Lq position queries. Parameter
names follow the official CLIP4STR checkpoints (``layers.0.*``, ``text_embed``, ``pos_queries``,
``norm``, ``head``).
"""

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TokenEmbedding", "TwoStreamDecoderLayer", "CharacterDecoder"]


class TokenEmbedding(nn.Module):
    """Character-token embedding scaled by sqrt(D) (official ``TokenEmbedding``)."""

    def __init__(self, num_tokens: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(num_tokens, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) LongTensor -> (B, L, D)."""
        return math.sqrt(self.embedding.embedding_dim) * self.embedding(tokens)


class TwoStreamDecoderLayer(nn.Module):
    """Pre-LN two-stream decoder layer of PARSeq (official ``DecoderLayer``).

    For a stream x (query or content), with keys/values from the normalized content::

        x = x + SelfAttn(norm(x), norm_c(content), norm_c(content), mask)
        x = x + CrossAttn(norm1(x), memory, memory)
        x = x + FFN(norm2(x))

    The query stream uses ``norm_q``, the content stream ``norm_c`` for its own queries.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int,
        dropout: float = 0.1,
        layer_norm_eps: float = 1e-5,
    ):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm_q = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm_c = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward_stream(
        self,
        x: torch.Tensor,
        x_norm: torch.Tensor,
        content_norm: torch.Tensor,
        memory: torch.Tensor,
        attn_mask: Optional[torch.Tensor],
        padding_mask: Optional[torch.Tensor],
    ) -> torch.Tensor:
        """One stream through self-attention, cross-attention and the FFN.

        Args:
            x: (B, Lx, D) the stream; x_norm: (B, Lx, D) its normalized queries.
            content_norm: (B, Lc, D) normalized content (keys and values).
            memory: (B, S, D) cross-attention memory.
            attn_mask: (Lx, Lc) additive; padding_mask: (B, Lc) additive.

        Returns:
            (B, Lx, D) the updated stream.
        """
        x = x + self.dropout1(
            self.self_attn(
                x_norm,
                content_norm,
                content_norm,
                attn_mask=attn_mask,
                key_padding_mask=padding_mask,
                need_weights=False,
            )[0]
        )
        x = x + self.dropout2(self.cross_attn(self.norm1(x), memory, memory, need_weights=False)[0])
        return x + self.dropout3(self.linear2(self.dropout(F.gelu(self.linear1(self.norm2(x))))))

    def forward(
        self,
        query: torch.Tensor,
        content: torch.Tensor,
        memory: torch.Tensor,
        query_mask: Optional[torch.Tensor] = None,
        content_mask: Optional[torch.Tensor] = None,
        padding_mask: Optional[torch.Tensor] = None,
        update_content: bool = True,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            query: (B, Lq, D) position queries; content: (B, Lc, D) context embeddings.
            memory: (B, S, D) cross-attention memory.
            query_mask: (Lq, Lc) additive; content_mask: (Lc, Lc) additive.
            padding_mask: (B, Lc) additive key padding of the content.
            update_content: also update the content stream (all but the last layer).

        Returns:
            (query, content) after the layer.
        """
        content_norm = self.norm_c(content)
        query = self.forward_stream(
            query, self.norm_q(query), content_norm, memory, query_mask, padding_mask
        )
        if update_content:
            content = self.forward_stream(
                content, content_norm, content_norm, memory, content_mask, padding_mask
            )
        return query, content


class CharacterDecoder(nn.Module):
    """PARSeq/CLIP4STR character decoder (official ``Decoder``): embedding, queries, layers, head.

    The content stream is ``[E(BOS), pos_q[0:L-1] + E(tokens 1..L-1)]`` (no position on BOS);
    the query stream is a slice of the learned position queries ``pos_queries`` (1, max_len + 1, D).
    Output: final LayerNorm and a linear head over EOS + the characters.
    """

    def __init__(
        self,
        *,
        embed_dim: int,
        num_tokens: int,
        num_classes: int,
        max_label_length: int = 25,
        num_layers: int = 1,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
    ):
        """
        Args:
            embed_dim: D, the decoder width (= CLIP joint-embedding width).
            num_tokens: size of the token vocabulary (EOS, characters, BOS, PAD: 97 for 94 chars).
            num_classes: head outputs (EOS + characters: 95).
            max_label_length: longest label; there are max_label_length + 1 position queries.
            num_layers, num_heads, mlp_ratio, dropout: decoder depth (1), heads (8), FFN ratio (4),
                dropout (0.1).
        """
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"decoder width {embed_dim} is not divisible by {num_heads} heads")
        self.layers = nn.ModuleList(
            [
                TwoStreamDecoderLayer(embed_dim, num_heads, int(embed_dim * mlp_ratio), dropout)
                for _ in range(num_layers)
            ]
        )
        self.text_embed = TokenEmbedding(num_tokens, embed_dim)
        self.pos_queries = nn.Parameter(torch.empty(1, max_label_length + 1, embed_dim))
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """PARSeq's init: truncated normal (std 0.02) for linear and embedding weights, zero
        biases."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.trunc_normal_(self.pos_queries, std=0.02)

    @property
    def num_positions(self) -> int:
        return self.pos_queries.shape[1]

    def forward(
        self,
        tokens: torch.Tensor,
        memory: torch.Tensor,
        *,
        content_mask: Optional[torch.Tensor] = None,
        query_mask: Optional[torch.Tensor] = None,
        padding_mask: Optional[torch.Tensor] = None,
        query_slice: Optional[slice] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            tokens: (B, Lc) context ``[BOS, t_1, ..., t_{Lc-1}]``.
            memory: (B, S, D) cross-attention memory (image tokens, or image + text tokens).
            content_mask: (Lc, Lc) additive mask of the content stream.
            query_mask: (Lq, Lc) additive mask of the query stream.
            padding_mask: (B, Lc) bool, True = ignore that context token.
            query_slice: which position queries to use (default ``0:Lc``); slot i predicts the
                token at position i + 1.

        Returns:
            logits: (B, Lq, num_classes); features: (B, Lq, D) after the final LayerNorm.
        """
        batch, length = tokens.shape
        bos = self.text_embed(tokens[:, :1])
        context = self.pos_queries[:, : length - 1] + self.text_embed(tokens[:, 1:])
        content = self.dropout(torch.cat([bos, context], dim=1))
        query = self.pos_queries[:, query_slice if query_slice is not None else slice(0, length)]
        query = self.dropout(query.expand(batch, -1, -1))
        if padding_mask is not None:  # additive, like the attention masks
            padding_mask = torch.zeros(
                padding_mask.shape, dtype=content.dtype, device=content.device
            ).masked_fill(padding_mask, float("-inf"))
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            query, content = layer(
                query,
                content,
                memory,
                query_mask,
                content_mask,
                padding_mask,
                update_content=not last,
            )
        features = self.norm(query)
        return self.head(features), features
