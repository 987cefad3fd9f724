"""The recognizer's character tokenizer: strings <-> token ids.

Token ids follow the official CLIP4STR code: ``[E]`` (end of sequence) = 0, the characters = 1..N
in charset order, ``[B]`` (begin) = N + 1, ``[P]`` (padding) = N + 2. The decoders predict ids
0..N (EOS and characters); BOS and PAD are never predicted.
"""

from typing import List, Sequence, Tuple

import torch

from ...structures.charset import validate_charset

__all__ = ["CharsetTokenizer"]


class CharsetTokenizer:
    """Strings <-> token ids: ``[E]`` = 0, characters 1..N, ``[B]`` = N + 1, ``[P]`` = N + 2."""

    EOS = "[E]"
    BOS = "[B]"
    PAD = "[P]"

    def __init__(self, charset: str):
        self.charset = validate_charset(charset, "CharsetTokenizer")
        self.eos_id = 0
        self.bos_id = len(charset) + 1
        self.pad_id = len(charset) + 2
        self._char_to_id = {c: i + 1 for i, c in enumerate(charset)}
        self._id_to_char = [self.EOS, *charset, self.BOS, self.PAD]

    @property
    def num_classes(self) -> int:
        """Classes the decoder head predicts: EOS and the N characters."""
        return len(self.charset) + 1

    def __len__(self) -> int:
        """Size of the token vocabulary (EOS, characters, BOS, PAD)."""
        return len(self._id_to_char)

    def encode(self, labels: Sequence[str], device=None) -> torch.Tensor:
        """Encode labels as ``[B, c_1..c_T, E, P...]``, padded to the longest label.

        Args:
            labels: B strings over the charset.

        Returns:
            LongTensor (B, T_max + 2).

        Raises:
            ValueError: a label has a character outside the charset (labels must be adapted first).
        """
        rows = []
        for label in labels:
            try:
                rows.append([self.bos_id] + [self._char_to_id[c] for c in label] + [self.eos_id])
            except KeyError as e:
                raise ValueError(
                    f"label {label!r} has the character {e.args[0]!r}, which is not in the charset "
                    f"{self.charset!r}; adapt labels with CharsetAdapter first"
                ) from None
        length = max((len(r) for r in rows), default=2)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids.to(device) if device is not None else ids

    def greedy_ids(self, probs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The greedy reading of per-position class probabilities, as :meth:`decode` reads it.

        Args:
            probs: (B, L, num_classes) probabilities.

        Returns:
            max_probs: (B, L) the maximum probability at each position.
            ids: (B, L) the argmax class ids; the reading is ``ids[b, :lengths[b]]``.
            lengths: (B,) the position of the first EOS (L when none was predicted).
        """
        max_probs, ids = probs.detach().max(dim=-1)  # (B, L)
        is_eos = ids == self.eos_id
        lengths = torch.where(
            is_eos.any(dim=1), is_eos.int().argmax(dim=1), ids.new_tensor(ids.shape[1])
        )
        return max_probs, ids, lengths

    def decode(self, probs: torch.Tensor) -> Tuple[List[str], List[torch.Tensor], torch.Tensor]:
        """Greedy decoding of per-position class probabilities, truncated at the first EOS.

        Args:
            probs: (B, L, num_classes) probabilities (softmax of the decoder logits).

        Returns:
            texts: B strings (at most L characters; L when no EOS was predicted).
            char_scores: B float tensors; entry b has ``len(texts[b]) + 1`` values: the max
                probability of each character, then that of the EOS (omitted when no EOS was
                predicted, so the tensor then has ``len(texts[b])`` values).
            scores: (B,) confidence = product of `char_scores[b]` (official: EOS included).
        """
        max_probs, ids, length = self.greedy_ids(probs)
        # probabilities kept: characters and, when predicted, the EOS
        kept = torch.arange(ids.shape[1], device=ids.device)[None, :] <= length[:, None]
        scores = torch.where(kept, max_probs, torch.ones_like(max_probs)).prod(dim=1)
        ids_list, length_list = ids.tolist(), length.tolist()
        texts = [
            "".join(self._id_to_char[i] for i in row[:n]) for row, n in zip(ids_list, length_list)
        ]
        max_probs = max_probs.cpu()
        char_scores = [max_probs[b, : min(n + 1, ids.shape[1])] for b, n in enumerate(length_list)]
        return texts, char_scores, scores
