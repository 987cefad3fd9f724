"""Language prompt generator (LPG) and the eval-mode text-embedding cache.

See docs/model.md, "Language prompt generator". The LPG turns a 1024-d query into the conditional
cue cc (512-d, the token width) that is added to every input position of the text encoder:

* MODE "tcm": the query is the global image vector I-bar, so cc and the text embedding change
  with every image;
* MODE "fasttcm": the query is a learned meta query MQ, so cc and the text embedding are the same
  for every image and can be cached at inference (:class:`TextEmbeddingCache`).
"""

from typing import Callable, Hashable, Iterable, Optional, Tuple

import torch
from torch import nn

__all__ = ["LanguagePromptGenerator", "TextEmbeddingCache"]

_MODES = ("tcm", "fasttcm")


class LanguagePromptGenerator(nn.Module):
    """cc = W2 LN(ReLU(W1 LN(q) + b1)) + b2, with q = I-bar ("tcm") or the meta query
    ("fasttcm")."""

    def __init__(self, *, mode: str = "fasttcm", visual_dim: int = 1024, token_width: int = 512):
        """
        Args:
            mode: "tcm" (q = global image vector) or "fasttcm" (q = learned meta query MQ).
            visual_dim: D, dimension of q (CLIP RN50: 1024).
            token_width: dimension of cc, the text encoder's token width (CLIP RN50: 512).
        """
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"LanguagePromptGenerator mode must be one of {_MODES}, got {mode!r}")
        self.mode = mode
        self.mlp = nn.Sequential(
            nn.LayerNorm(visual_dim),
            nn.Linear(visual_dim, visual_dim),
            nn.ReLU(inplace=True),
            nn.LayerNorm(visual_dim),
            nn.Linear(visual_dim, token_width),
        )
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        # MQ ~ N(0, 1) (official is_v2 code); absent in MODE "tcm".
        self.meta_query = nn.Parameter(torch.randn(visual_dim)) if mode == "fasttcm" else None

    @property
    def is_image_conditioned(self) -> bool:
        """True in MODE "tcm": the cue, hence the text embedding, depends on the image."""
        return self.mode == "tcm"

    def forward(self, global_embedding: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Args:
            global_embedding: (B, D) global image vectors I-bar; required in MODE "tcm", ignored
                in MODE "fasttcm".

        Returns:
            cc: (B, token_width) in MODE "tcm"; (1, token_width) in MODE "fasttcm".
        """
        if self.is_image_conditioned:
            if global_embedding is None:
                raise ValueError(
                    "LanguagePromptGenerator in MODE 'tcm' needs the global image embedding"
                )
            return self.mlp(global_embedding)
        return self.mlp(self.meta_query[None])


class TextEmbeddingCache:
    """Holds one computed tensor and recomputes it when any of the tensors it depends on changes.

    A dependency "changes" when its storage (``data_ptr``: moved, re-assigned, other device/dtype)
    or its in-place version counter (``_version``: optimizer steps, ``load_state_dict``, ``copy_``)
    differs from when the value was computed. The value is computed under ``torch.no_grad()``.
    """

    def __init__(self):
        self._key: Optional[Tuple[Hashable, ...]] = None
        self._value: Optional[torch.Tensor] = None

    @staticmethod
    def _fingerprint(tensors: Iterable[torch.Tensor]) -> Tuple[Hashable, ...]:
        return tuple((t.data_ptr(), t._version, t.device, t.dtype) for t in tensors)

    def get(
        self, dependencies: Iterable[torch.Tensor], compute: Callable[[], torch.Tensor]
    ) -> torch.Tensor:
        """Return the cached value, (re)computing it with `compute()` when a dependency changed."""
        key = self._fingerprint(dependencies)
        if self._value is None or key != self._key:
            with torch.no_grad():
                self._value = compute()
            self._key = key
        return self._value

    def clear(self) -> None:
        """Drop the cached value (called when the owning module returns to training mode)."""
        self._key, self._value = None, None
