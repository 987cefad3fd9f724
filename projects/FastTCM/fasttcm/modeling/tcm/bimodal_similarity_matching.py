"""Bimodal Similarity Matching (BSM), FastTCM's image conditioning of a cached text embedding.

g = normalize(W I-bar), t = normalize(t), t-hat = <t, g> g + t, W a D x D linear map initialised
to the identity. The released FastTCM code's 1024 x 512 projection cannot run, hence this form
(docs/design_choices.md, "BSM projection").
"""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BimodalSimilarityMatching"]


class BimodalSimilarityMatching(nn.Module):
    """t-hat = <t, g> g + t with unit vectors t and g = normalize(W I-bar)."""

    def __init__(self, *, embed_dim: int = 1024):
        """
        Args:
            embed_dim: D, the joint embedding dimension of I-bar and t (CLIP RN50: 1024).
        """
        super().__init__()
        self.projection = nn.Linear(embed_dim, embed_dim, bias=False)  # W
        with torch.no_grad():
            self.projection.weight.copy_(torch.eye(embed_dim))

    def forward(
        self, text_embeddings: torch.Tensor, global_embedding: torch.Tensor
    ) -> torch.Tensor:
        """
        Args:
            text_embeddings: (1 or B, K, D) text embeddings t (image-independent in FastTCM).
            global_embedding: (B, D) global image vectors I-bar.

        Returns:
            (B, K, D) image-conditioned text embeddings t-hat; ||t-hat|| lies in [1, 2].
        """
        g = F.normalize(self.projection(global_embedding), dim=-1)[:, None, :]  # (B, 1, D)
        t = F.normalize(text_embeddings, dim=-1)  # (1 or B, K, D)
        similarity = (t * g).sum(dim=-1, keepdim=True)  # (B, K, 1) cosine of t and W I-bar
        return similarity * g + t
