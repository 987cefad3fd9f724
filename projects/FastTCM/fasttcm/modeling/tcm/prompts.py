"""Class prompts with learnable context vectors (CoOp-style; see docs/model.md, "Text encoder and
class prompts")."""

from typing import List, Sequence

import torch
from torch import nn

from ..clip.tokenizer import tokenize_prompts

__all__ = ["PromptLearner"]


class PromptLearner(nn.Module):
    """The K class prompts as token ids and the n learnable context vectors shared by all of them.

    The text encoder reads them as ``[SOS, ctx_1..ctx_n, class-prompt tokens, EOS]``. The token ids
    are a non-persistent buffer: they follow the config's prompts, never a checkpoint.
    """

    def __init__(
        self,
        *,
        class_prompts: Sequence[str],
        context_length: int = 4,
        token_width: int = 512,
        max_length: int = 77,
    ):
        """
        Args:
            class_prompts: K prompt sentences, e.g. ``["the pixels of many arbitrary-shape text
                instances."]`` or one per DOTA class.
            context_length: n_ctx, the number of learnable context vectors (paper default 4).
            token_width: width of the text encoder's token embeddings (CLIP RN50: 512).
            max_length: positions of the text encoder; each prompt must fit next to the context.
        """
        super().__init__()
        if context_length < 0:
            raise ValueError(f"context_length (n_ctx) must be >= 0, got {context_length}")
        self.class_prompts: List[str] = list(class_prompts)
        self.register_buffer(
            "token_ids",
            tokenize_prompts(self.class_prompts, max_length - context_length),
            persistent=False,
        )
        self.contexts = nn.Parameter(torch.empty(1, context_length, token_width))
        nn.init.trunc_normal_(self.contexts, std=1.0, a=-2.0, b=2.0)

    @property
    def num_prompts(self) -> int:
        """K, the number of class prompts (channels of the score map)."""
        return self.token_ids.shape[0]

    def forward(self):
        """
        Returns:
            token_ids: (K, L) LongTensor of the class prompts (zero-padded after EOS).
            contexts: (1, n_ctx, token_width) learnable context vectors.
        """
        return self.token_ids, self.contexts
