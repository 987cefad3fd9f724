"""Character sets, label normalization and the character tokenizer of the recognizer.

clip4str.md sections 1.5 and 4. A charset is an ordered string of distinct, non-whitespace
characters. The two shipped charsets live in ``fasttcm/data/charsets/<name>.txt`` (the
characters on the first line, nothing else):

* ``94_full``: the training charset, ``0-9 a-z A-Z`` then ASCII punctuation (case-sensitive);
* ``36_lowercase``: the evaluation charset, ``0-9 a-z``.

Token ids (:class:`CharsetTokenizer`) follow the official code: ``[E]`` (end of sequence) = 0,
the characters = 1..N in charset order, ``[B]`` (begin) = N + 1, ``[P]`` (padding) = N + 2. The
decoders predict ids 0..N (EOS and characters); BOS and PAD are never predicted.
"""

import functools
import os
import unicodedata
from typing import List, Optional, Sequence, Tuple

import torch

__all__ = [
    "CHARSET_DIR",
    "load_charset",
    "evaluation_charset",
    "CharsetAdapter",
    "normalize_label",
    "preprocess_label",
    "CharsetTokenizer",
]

CHARSET_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "data", "charsets")
"""Folder of the shipped charset files (``<name>.txt``)."""


def _validate_charset(charset: str, source: str) -> str:
    if not charset:
        raise ValueError(f"charset from {source} is empty")
    if any(c.isspace() for c in charset):
        raise ValueError(f"charset from {source} contains whitespace; labels have whitespace removed")
    duplicates = sorted({c for c in charset if charset.count(c) > 1})
    if duplicates:
        raise ValueError(f"charset from {source} repeats the characters {duplicates}")
    return charset


@functools.lru_cache(maxsize=16)
def load_charset(name_or_path: str) -> str:
    """Read a charset by name (``"94_full"``, ``"36_lowercase"``) or from a text file.

    Args:
        name_or_path: the stem of a file in :data:`CHARSET_DIR`, or the path of a UTF-8 file whose
            first line holds the characters in id order (a trailing newline is ignored).

    Returns:
        The charset string.

    Raises:
        FileNotFoundError: no shipped charset has that name and no such file exists.
        ValueError: the charset is empty, holds whitespace or repeats a character.
    """
    path = name_or_path
    if not os.path.isfile(path):
        path = os.path.join(CHARSET_DIR, f"{name_or_path}.txt")
    if not os.path.isfile(path):
        shipped = sorted(os.path.splitext(f)[0] for f in os.listdir(CHARSET_DIR) if f.endswith(".txt"))
        raise FileNotFoundError(f"charset {name_or_path!r} is neither a file nor a shipped charset name ({shipped})")
    with open(path, "r", encoding="utf-8") as f:
        first_line = f.readline().rstrip("\r\n")
    return _validate_charset(first_line, path)


def evaluation_charset(case_sensitive: bool = False, punctuation: bool = False) -> str:
    """The test charset of the official ``test.py``: digits + lowercase [+ uppercase] [+ punctuation].

    Args:
        case_sensitive: add A-Z (``--cased``).
        punctuation: add ASCII punctuation (``--punctuation``).
    """
    import string

    charset = string.digits + string.ascii_lowercase
    if case_sensitive:
        charset += string.ascii_uppercase
    if punctuation:
        charset += string.punctuation
    return charset


class CharsetAdapter:
    """Map a string onto a charset, as the official ``CharsetAdapter``.

    If the charset has no uppercase letters the text is lowercased first (uppercased if it has no
    lowercase ones); then every character outside the charset is deleted. Applied to both ground truth and
    prediction, it makes the 36-character protocol case- and punctuation-insensitive.
    """

    def __init__(self, charset: str):
        self.charset = charset
        self._lowercase_only = charset == charset.lower()
        self._uppercase_only = charset == charset.upper()
        self._keep = frozenset(charset)

    def __call__(self, text: str) -> str:
        if self._lowercase_only:
            text = text.lower()
        elif self._uppercase_only:
            text = text.upper()
        return "".join(c for c in text if c in self._keep)


def normalize_label(label: str, *, remove_whitespace: bool = True, normalize_unicode: bool = True) -> str:
    """Remove whitespace and fold to ASCII (NFKD, non-ASCII dropped), as the official LMDB loader."""
    if remove_whitespace:
        label = "".join(label.split())
    if normalize_unicode:
        label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    return label


def preprocess_label(
    label: str,
    adapter: CharsetAdapter,
    max_length: int,
    *,
    remove_whitespace: bool = True,
    normalize_unicode: bool = True,
) -> Tuple[Optional[str], Optional[str]]:
    """The official label filter: normalize, drop long labels, adapt to the charset, drop empties.

    The length is checked *before* unsupported characters are removed (official order).

    Returns:
        ``(label, None)`` for a kept label, or ``(None, reason)`` with reason ``"too_long"`` or
        ``"empty"`` for a dropped one.
    """
    label = normalize_label(label, remove_whitespace=remove_whitespace, normalize_unicode=normalize_unicode)
    if len(label) > max_length:
        return None, "too_long"
    label = adapter(label)
    if not label:
        return None, "empty"
    return label, None


class CharsetTokenizer:
    """Strings <-> token ids: ``[E]`` = 0, characters 1..N, ``[B]`` = N + 1, ``[P]`` = N + 2."""

    EOS = "[E]"
    BOS = "[B]"
    PAD = "[P]"

    def __init__(self, charset: str):
        self.charset = _validate_charset(charset, "CharsetTokenizer")
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
        max_probs, ids = probs.detach().max(dim=-1)  # (B, L)
        is_eos = ids == self.eos_id
        length = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1), ids.new_tensor(ids.shape[1]))
        # probabilities kept: characters and, when predicted, the EOS
        kept = torch.arange(ids.shape[1], device=ids.device)[None, :] <= length[:, None]
        scores = torch.where(kept, max_probs, torch.ones_like(max_probs)).prod(dim=1)
        ids_list, length_list = ids.tolist(), length.tolist()
        texts = ["".join(self._id_to_char[i] for i in row[:n]) for row, n in zip(ids_list, length_list)]
        max_probs = max_probs.cpu()
        char_scores = [max_probs[b, : min(n + 1, ids.shape[1])] for b, n in enumerate(length_list)]
        return texts, char_scores, scores
