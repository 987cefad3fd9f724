"""Visual prompt generator (VPG): image tokens attend to the text embeddings
(docs/model.md, VPG)."""

import torch

from .context_decoder import GatedContextDecoder

__all__ = ["VisualPromptGenerator"]


class VisualPromptGenerator(GatedContextDecoder):
    """I-hat = I + vis_gamma * ContextDecoder(I tokens, t), with a scalar gate vis_gamma (gamma).

    Self-attention runs over all h*w image tokens (cost quadratic in h*w at stride 32). Arguments:
    those of :class:`~.context_decoder.GatedContextDecoder` (embed_dim: D, channels of I and t;
    gamma_init: initial vis_gamma, 1e-3).
    """

    per_channel_gamma = False

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
