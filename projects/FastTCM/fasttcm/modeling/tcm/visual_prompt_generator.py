"""Visual prompt generator (VPG): image tokens attend to the text embeddings
(docs/model.md, VPG)."""

import torch
from torch import nn

from .context_decoder import ContextDecoder

__all__ = ["VisualPromptGenerator"]


class VisualPromptGenerator(nn.Module):
    """I-hat = I + vis_gamma * ContextDecoder(I tokens, t), with a scalar gate vis_gamma.

    Self-attention runs over all h*w image tokens (cost quadratic in h*w at stride 32).
    """

    def __init__(
        self,
        *,
        embed_dim: int = 1024,
        width: int = 256,
        heads: int = 4,
        layers: int = 3,
        dropout: float = 0.1,
        gamma_init: float = 1e-3,
    ):
        """
        Args:
            embed_dim: D, channels of I and t (CLIP RN50: 1024).
            width, heads, layers, dropout: the :class:`ContextDecoder` (256, 4, 3, 0.1).
            gamma_init: initial vis_gamma (1e-3).
        """
        super().__init__()
        self.decoder = ContextDecoder(
            embed_dim=embed_dim, width=width, heads=heads, layers=layers, dropout=dropout
        )
        self.gamma = nn.Parameter(torch.tensor(float(gamma_init)))  # vis_gamma

    def forward(self, dense_embedding: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
        """
        Args:
            dense_embedding: (B, D, h, w) attention-pool embedding map I (h, w = H/32, W/32).
            text_embeddings: (B or 1, K, D) text embeddings t (the memory).

        Returns:
            (B, D, h, w) visually prompted embedding map I-hat.
        """
        tokens = dense_embedding.flatten(2).transpose(1, 2)  # (B, h*w, D)
        prompt = self.decoder(tokens, text_embeddings).transpose(1, 2).reshape_as(dense_embedding)
        return dense_embedding + self.gamma * prompt
