"""Character sets and label normalization for scene-text recognition data and evaluation.

A charset is an ordered string of distinct, non-whitespace
characters. The two shipped charsets live in ``fasttcm/structures/charsets/<name>.txt`` (the
characters on the first line, nothing else):

* ``94_full``: the training charset, ``0-9 a-z A-Z`` then ASCII punctuation (case-sensitive);
* ``36_lowercase``: the evaluation charset, ``0-9 a-z``.

The recognizer's tokenizer (:class:`fasttcm.modeling.recognition.tokenizer.CharsetTokenizer`)
turns these strings into token ids.
"""

import functools
import os
import string
import unicodedata
from typing import Optional, Tuple

__all__ = [
    "CHARSET_DIR",
    "load_charset",
    "evaluation_charset",
    "CharsetAdapter",
    "normalize_label",
    "preprocess_label",
]

CHARSET_DIR = os.path.join(os.path.dirname(__file__), "charsets")
"""Folder of the shipped charset files (``<name>.txt``)."""


def validate_charset(charset: str, source: str) -> str:
    if not charset:
        raise ValueError(f"charset from {source} is empty")
    if any(c.isspace() for c in charset):
        raise ValueError(
            f"charset from {source} contains whitespace; labels have whitespace removed"
        )
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
        shipped = sorted(
            os.path.splitext(f)[0] for f in os.listdir(CHARSET_DIR) if f.endswith(".txt")
        )
        raise FileNotFoundError(
            f"charset {name_or_path!r} is neither a file nor a shipped charset name ({shipped})"
        )
    with open(path, "r", encoding="utf-8") as f:
        first_line = f.readline().rstrip("\r\n")
    return validate_charset(first_line, path)


def evaluation_charset(case_sensitive: bool = False, punctuation: bool = False) -> str:
    """The test charset of the official ``test.py``: digits + lowercase [+ uppercase]
    [+ punctuation].

    Args:
        case_sensitive: add A-Z (``--cased``).
        punctuation: add ASCII punctuation (``--punctuation``).
    """
    charset = string.digits + string.ascii_lowercase
    if case_sensitive:
        charset += string.ascii_uppercase
    if punctuation:
        charset += string.punctuation
    return charset


class CharsetAdapter:
    """Map a string onto a charset, as the official ``CharsetAdapter``.

    If the charset has no uppercase letters the text is lowercased first (uppercased if it has no
    lowercase ones); then every character outside the charset is deleted. Applied to both ground
    truth and prediction, it makes the 36-character protocol case- and punctuation-insensitive.
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


def normalize_label(
    label: str, *, remove_whitespace: bool = True, normalize_unicode: bool = True
) -> str:
    """Remove whitespace and fold to ASCII (NFKD, non-ASCII dropped), as the official LMDB
    loader."""
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
    label = normalize_label(
        label, remove_whitespace=remove_whitespace, normalize_unicode=normalize_unicode
    )
    if len(label) > max_length:
        return None, "too_long"
    label = adapter(label)
    if not label:
        return None, "empty"
    return label, None
