"""Lexicon correction of recognised words for end-to-end text spotting.

The rules are summarised in docs/protocols.md, "Lexicons".

**Picking a word** (AdelaiDet/TESTR/DeepSolo ``find_match_word``). A predicted string ``s`` is
compared with every lexicon word by the Levenshtein distance (unit costs, on Unicode code points)
between ``s.upper()`` and ``word.upper()``, the lexicon taken in file order; the first word with
the smallest distance wins (strict ``<``: ties go to the earlier word), and only a distance below
100 can win (the official loop starts from ``dist_min = 100``), so a string that far from every
word, or an empty lexicon, gives ``('', 100)``. The string written out is ``pairs[WORD.upper()]``:
the pair list maps an upper-cased lexicon entry to its original ground-truth spelling.

**Far-off words** (:data:`FAR_OFF_RULES`). A corrected prediction is kept when its distance is below
the rule's limit for the lexicon type, and otherwise *removed* from that lexicon's run (neither TP
nor FP):

* ``"adelaidet"`` (AdelaiDet, DeepSolo): keep when distance < 1.5 (i.e. <= 1), every lexicon type.
* ``"testr"`` (TESTR ``LexiconMatcher``): full (Total-Text, CTW1500) and generic lexicons always
  replace; weak and strong keep when distance < 2.5. TESTR's optional recogniser-score-weighted edit
  distance needs per-character scores and is not reproduced.

**Files** (:data:`LEXICON_FILES`, names of the official releases, relative to the dataset's
``lexicon_dir``), one entry per line, surrounding whitespace stripped, blank lines skipped, UTF-8:

* generic (IC15): ``GenericVocabulary_new.txt`` + ``GenericVocabulary_pair_list.txt``;
* weak (IC15): ``ch4_test_vocabulary_new.txt`` + ``ch4_test_vocabulary_pair_list.txt``;
* strong (IC15, one per image): ``new_strong_lexicon/new_voc_img_<id>.txt`` +
  ``new_strong_lexicon/pair_voc_img_<id>.txt``;
* full (Total-Text, CTW1500): ``weak_voc_new.txt`` + optional ``weak_voc_pair_list.txt``, or,
  when ``weak_voc_new.txt`` is absent, the names of the CTW1500 end-to-end evaluation release,
  ``ctw1500_lexicon.txt`` + optional ``ctw1500_pair_list.txt``
  (:data:`LEXICON_FILE_ALTERNATIVES`); without a pair list every word maps to itself (the official
  CTW1500 path), the later of two words with the same upper-case form winning, as in the official
  dict. A CTW1500 lexicon entry may be a phrase of several words (``since 1958``).

A pair-list line is ``KEY original spelling``, the key being the upper-cased entry. The official
parsing takes the first space-separated token for the key and the rest of the line (after
``len(key) + 1`` characters) for the spelling. An entry of several words (``SINCE 1958 since
1958`` in ``ctw1500_pair_list.txt``) has a key of several words too: a line of an even number of
space-separated tokens whose two halves are equal ignoring case is split in the middle (key
``SINCE 1958``, spelling ``since 1958``); every other line follows the official parsing (for a
one-word entry, ``HELLO Hello``, both give the same).

Nothing here imports detectron2.
"""

import logging
import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "LEXICON_TYPES",
    "LEXICON_FILES",
    "LEXICON_FILE_ALTERNATIVES",
    "FAR_OFF_RULES",
    "NO_MATCH_DISTANCE",
    "LexiconError",
    "levenshtein",
    "read_word_list",
    "split_pair_line",
    "read_pair_list",
    "Lexicon",
    "LexiconCorrector",
    "lexicon_paths",
    "build_lexicon_corrector",
]

logger = logging.getLogger(__name__)

LEXICON_TYPES = ("generic", "weak", "strong", "full")
"""Lexicon settings (AdelaiDet/TESTR type numbers: generic 1, weak 2, strong 3; full = TT/CTW)."""

LEXICON_FILES: Dict[str, Tuple[str, str, bool]] = {
    "generic": ("GenericVocabulary_new.txt", "GenericVocabulary_pair_list.txt", True),
    "weak": ("ch4_test_vocabulary_new.txt", "ch4_test_vocabulary_pair_list.txt", True),
    "strong": (
        os.path.join("new_strong_lexicon", "new_voc_img_{key}.txt"),
        os.path.join("new_strong_lexicon", "pair_voc_img_{key}.txt"),
        True,
    ),
    "full": ("weak_voc_new.txt", "weak_voc_pair_list.txt", False),
}
"""Lexicon type -> (word list, pair list, whether the pair list is required); ``{key}``: image
id."""

LEXICON_FILE_ALTERNATIVES: Dict[str, Tuple[Tuple[str, str], ...]] = {
    "full": (("ctw1500_lexicon.txt", "ctw1500_pair_list.txt"),),
}
"""Lexicon type -> other (word list, pair list) names, used when the :data:`LEXICON_FILES` word
list is absent, in this order."""

FAR_OFF_RULES: Dict[str, Dict[str, Optional[float]]] = {
    "adelaidet": {"generic": 1.5, "weak": 1.5, "strong": 1.5, "full": 1.5},
    "testr": {"generic": None, "weak": 2.5, "strong": 2.5, "full": None},
}
"""Rule name -> lexicon type -> keep a correction when distance < limit (None: always keep)."""

NO_MATCH_DISTANCE = 100
"""Distance reported when no word is closer than this (the official ``dist_min`` start value)."""

MAX_BIT_PARALLEL_LENGTH = 64  # longest query handled by the one-uint64-per-word distance


class LexiconError(ValueError):
    """A lexicon or pair-list file that is missing or inconsistent."""


def _codes(text: str) -> np.ndarray:
    """Unicode code points of `text` as a uint32 array ``(len(text),)``."""
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


def _levenshtein_dp(query: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Levenshtein distances between one string and many strings of the same length (any length).

    Dynamic programming over the characters of `query`, vectorized over all words and all
    columns: the in-row insertion chain ``D[i, j] = min(D[i, j - 1] + 1, ...)`` is resolved as a
    running minimum of ``T[k] - k`` plus ``j`` (T: the substitution / deletion candidates).

    Args:
        query: code points ``(m,)``.
        words: code points ``(n, L)``, one word per row.

    Returns:
        int32 distances ``(n,)``.
    """
    num, length = words.shape
    cols = np.arange(length + 1, dtype=np.int32)
    prev = np.broadcast_to(cols, (num, length + 1))
    for i, char in enumerate(query, start=1):
        cur = np.empty((num, length + 1), dtype=np.int32)
        cur[:, 0] = i
        np.minimum(prev[:, :-1] + (words != char), prev[:, 1:] + 1, out=cur[:, 1:])
        prev = np.minimum.accumulate(cur - cols, axis=1) + cols
    return np.ascontiguousarray(prev[:, length], dtype=np.int32)


def _levenshtein_bit_parallel(query: np.ndarray, words: np.ndarray) -> np.ndarray:
    """:func:`_levenshtein_dp` for queries of at most 64 characters, about 3x faster.

    The bit-vector algorithm of Myers (1999) in Hyyrö's formulation for the global distance: one
    uint64 per word holds the vertical differences of a whole DP column (bit i: row i + 1 of the
    query), and the words' characters are consumed one column at a time, vectorized over words.
    """
    num, length = words.shape
    size = len(query)
    if size == 0:
        return np.full(num, length, dtype=np.int32)
    if size > MAX_BIT_PARALLEL_LENGTH:
        raise ValueError(f"query of {size} characters; the bit-parallel distance takes <= 64")
    # match masks: bit i of peq[c] is set where query[i] == c
    chars, inverse = np.unique(query, return_inverse=True)
    masks = np.zeros(len(chars), dtype=np.uint64)
    np.bitwise_or.at(masks, inverse, np.left_shift(np.uint64(1), np.arange(size, dtype=np.uint64)))
    slot = np.minimum(np.searchsorted(chars, words), len(chars) - 1)
    match_columns = np.where(chars[slot] == words, masks[slot], np.uint64(0)).T.copy()  # (L, n)

    one = np.uint64(1)
    last_row = np.uint64(1 << (size - 1))
    plus_v = np.full(num, (1 << size) - 1, dtype=np.uint64)  # +1 vertical steps (all, column 0)
    minus_v = np.zeros(num, dtype=np.uint64)  # -1 vertical steps
    score = np.full(num, size, dtype=np.int32)  # D[m, 0] = m
    for eq in match_columns:
        x_v = eq | minus_v
        x_h = (((eq & plus_v) + plus_v) ^ plus_v) | eq
        plus_h = minus_v | ~(x_h | plus_v)
        minus_h = plus_v & x_h
        score += (plus_h & last_row) != 0
        score -= (minus_h & last_row) != 0
        plus_h = (plus_h << one) | one  # row 0 grows by one per column: global distance
        minus_h = minus_h << one
        plus_v = minus_h | ~(x_v | plus_h)
        minus_v = plus_h & x_v
    return score


def _levenshtein_rows(query: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Levenshtein distances ``(n,)`` between code points `query` ``(m,)`` and rows of `words`."""
    if len(query) <= MAX_BIT_PARALLEL_LENGTH:
        return _levenshtein_bit_parallel(query, words)
    return _levenshtein_dp(query, words)


def levenshtein(a: str, b: str) -> int:
    """Levenshtein distance with unit costs between two strings (code points, case-sensitive)."""
    return int(_levenshtein_rows(_codes(a), _codes(b)[None, :])[0])


def _read_lines(path: str) -> List[str]:
    try:
        with open(path, "r", encoding="utf-8-sig") as f:
            return [line.strip() for line in f]
    except UnicodeDecodeError as e:
        raise LexiconError(f"{path}: not UTF-8 ({e})") from e


def read_word_list(path: str) -> List[str]:
    """The words of a lexicon file in file order (stripped; blank lines skipped).

    Raises:
        LexiconError: the file does not exist or is not UTF-8.
    """
    if not os.path.isfile(path):
        raise LexiconError(f"lexicon file {path} does not exist")
    return [line for line in _read_lines(path) if line]


def split_pair_line(line: str) -> Tuple[str, str]:
    """``(upper-cased key, original spelling)`` of one pair-list line (module docstring).

    Args:
        line: a stripped, non-empty pair-list line.
    """
    tokens = line.split(" ")
    half = len(tokens) // 2
    if len(tokens) % 2 == 0 and half > 1:
        key, spelling = " ".join(tokens[:half]), " ".join(tokens[half:])
        if key.upper() == spelling.upper():
            return key.upper(), spelling
    key = tokens[0].upper()
    return key, line[len(key) + 1 :]


def read_pair_list(path: str) -> Dict[str, str]:
    """Upper-cased lexicon entry -> original spelling, from a pair-list file (later lines win).

    Lines are split by :func:`split_pair_line`.

    Raises:
        LexiconError: the file does not exist or is not UTF-8.
    """
    if not os.path.isfile(path):
        raise LexiconError(f"lexicon pair list {path} does not exist")
    pairs: Dict[str, str] = {}
    for line in _read_lines(path):
        if line:
            key, spelling = split_pair_line(line)
            pairs[key] = spelling
    return pairs


class Lexicon:
    """A word list with its pair list, answering nearest-word queries.

    Words are grouped by the length of their upper-cased form; a query visits the groups in order
    of length difference (a lower bound of the distance) and stops once that bound exceeds the best
    distance found, so only plausible groups are scanned, each in one vectorized pass (bit-parallel
    for queries up to 64 characters): about 5-10 ms per query against 90k words on one CPU core.
    Results are cached per query string.
    """

    def __init__(self, words: Sequence[str], pairs: Mapping[str, str], source: str = "<lexicon>"):
        """
        Args:
            words: lexicon entries in file order.
            pairs: upper-cased entry -> spelling to write (see :func:`read_pair_list`).
            source: file name(s) used in error messages.
        """
        self.words = tuple(words)
        self.pairs = dict(pairs)
        self.source = source
        upper = [w.upper() for w in self.words]
        groups: Dict[int, List[int]] = {}
        for index, word in enumerate(upper):
            groups.setdefault(len(word), []).append(index)
        # length -> (word indices in file order (n,), code points (n, length))
        self._groups: Dict[int, Tuple[np.ndarray, np.ndarray]] = {
            length: (
                np.array(indices, dtype=np.int64),
                _codes("".join(upper[i] for i in indices)).reshape(len(indices), length),
            )
            for length, indices in groups.items()
        }
        self._upper = upper
        self._cache: Dict[str, Tuple[str, int]] = {}
        unpaired = sorted({w for w in upper if w not in self.pairs})
        if unpaired:
            logger.warning(
                f"{source}: {len(unpaired)} lexicon word(s) have no pair-list entry, e.g. "
                f"{unpaired[:3]}; picking one of them is an error"
            )

    @classmethod
    def from_files(cls, words_path: str, pairs_path: Optional[str] = None) -> "Lexicon":
        """Read a word list and its pair list (None: every word maps to itself)."""
        words = read_word_list(words_path)
        if pairs_path is None:
            pairs = {w.upper(): w for w in words}
            return cls(words, pairs, words_path)
        return cls(words, read_pair_list(pairs_path), f"{words_path} + {pairs_path}")

    def __len__(self) -> int:
        return len(self.words)

    def nearest_index(self, text: str) -> Tuple[int, int]:
        """Index of the nearest word to ``text.upper()`` (first on ties) and its distance.

        Returns ``(-1, NO_MATCH_DISTANCE)`` when no word is closer than ``NO_MATCH_DISTANCE``.
        """
        query = text.upper()
        codes = _codes(query)
        best_dist, best_index = NO_MATCH_DISTANCE, -1
        for length in sorted(self._groups, key=lambda n: (abs(n - len(query)), n)):
            if abs(length - len(query)) > best_dist:
                break  # every remaining group is farther than the best (lengths only grow apart)
            indices, words = self._groups[length]
            dist = _levenshtein_rows(codes, words)
            j = int(np.argmin(dist))  # first minimum = earliest word of this group
            d, i = int(dist[j]), int(indices[j])
            if d < best_dist or (d == best_dist and best_index >= 0 and i < best_index):
                best_dist, best_index = d, i
        return best_index, best_dist

    def correct(self, text: str) -> Tuple[str, int]:
        """The pair-list spelling of the nearest word and its distance (``('', 100)`` if none).

        Raises:
            LexiconError: the picked word has no pair-list entry.
        """
        if text not in self._cache:
            index, dist = self.nearest_index(text)
            if index < 0:
                self._cache[text] = ("", dist)
            else:
                key = self._upper[index]
                if key not in self.pairs:
                    raise LexiconError(
                        f"{self.source}: lexicon word {self.words[index]!r} (nearest to "
                        f"{text!r}) has no entry {key!r} in the pair list"
                    )
                self._cache[text] = (self.pairs[key], dist)
        return self._cache[text]


@dataclass(frozen=True)
class LexiconCorrector:
    """One lexicon setting applied to each image's predicted words.

    Attributes:
        lexicon_type: one of :data:`LEXICON_TYPES`.
        max_distance: keep a correction when its distance is below this; None keeps all.
        lexicons: image key -> lexicon for per-image (strong) lexicons, or ``{None: lexicon}``
            for one lexicon shared by every image.
    """

    lexicon_type: str
    max_distance: Optional[float]
    lexicons: Mapping[Optional[str], Lexicon]

    def lexicon_for(self, key: str) -> Lexicon:
        if None in self.lexicons:
            return self.lexicons[None]
        if key not in self.lexicons:
            raise LexiconError(f"no {self.lexicon_type} lexicon was loaded for image {key!r}")
        return self.lexicons[key]

    def apply(self, key: str, texts: Sequence[str]) -> Tuple[List[str], np.ndarray, np.ndarray]:
        """Correct the predicted words of one image.

        Args:
            key: the image's sample key (selects the strong lexicon).
            texts: D predicted transcriptions.

        Returns:
            corrected: D corrected words (pair-list spellings).
            distances: int array ``(D,)`` of edit distances to the picked words.
            keep: bool array ``(D,)``; False for far-off words removed from this lexicon's run.
        """
        lexicon = self.lexicon_for(key) if len(texts) else None
        results = [lexicon.correct(t) for t in texts]
        corrected = [word for word, _ in results]
        distances = np.array([d for _, d in results], dtype=np.int64).reshape(len(texts))
        if self.max_distance is None:
            keep = np.ones(len(texts), dtype=bool)
        else:
            keep = distances < self.max_distance
        return corrected, distances, keep

    def params(self) -> Dict[str, object]:
        return {
            "lexicon_type": self.lexicon_type,
            "max_distance": self.max_distance,
            "num_lexicons": len(self.lexicons),
            "example_source": next(iter(self.lexicons.values())).source if self.lexicons else None,
        }


def lexicon_paths(lexicon_dir: str, lexicon_type: str, key: Optional[str] = None):
    """Paths of one lexicon's word list and pair list, and whether the pair list is required.

    The names of :data:`LEXICON_FILES`, or the first of :data:`LEXICON_FILE_ALTERNATIVES` whose
    word list exists when that of :data:`LEXICON_FILES` does not.

    Args:
        lexicon_dir: the dataset's lexicon folder (metadata ``lexicon_dir``).
        lexicon_type: one of :data:`LEXICON_TYPES`.
        key: image sample key, for the per-image strong lexicons.

    Returns:
        ``(words_path, pairs_path, pairs_required)``.
    """
    if lexicon_type not in LEXICON_FILES:
        raise KeyError(f"unknown lexicon type {lexicon_type!r}; known: {list(LEXICON_TYPES)}")
    words_name, pairs_name, required = LEXICON_FILES[lexicon_type]
    if "{key}" in words_name and key is None:
        raise ValueError(f"the {lexicon_type} lexicon is per image: a sample key is needed")
    names = [(words_name, pairs_name), *LEXICON_FILE_ALTERNATIVES.get(lexicon_type, ())]
    paths = [
        (os.path.join(lexicon_dir, w.format(key=key)), os.path.join(lexicon_dir, p.format(key=key)))
        for w, p in names
    ]
    words_path, pairs_path = next((wp for wp in paths if os.path.isfile(wp[0])), paths[0])
    return words_path, pairs_path, required


def _load(lexicon_dir: str, lexicon_type: str, key: Optional[str]) -> Lexicon:
    words_path, pairs_path, required = lexicon_paths(lexicon_dir, lexicon_type, key)
    if not os.path.isfile(words_path):
        others = [w for w, _ in LEXICON_FILE_ALTERNATIVES.get(lexicon_type, ())]
        also = f" (or {', '.join(others)} beside it)" if others else ""
        raise LexiconError(
            f"the {lexicon_type} lexicon{also} needs the file {words_path}, which does not exist"
        )
    if not os.path.isfile(pairs_path):
        if required:
            raise LexiconError(
                f"the {lexicon_type} lexicon needs the pair list {pairs_path}, which does not exist"
            )
        pairs_path = None
    return Lexicon.from_files(words_path, pairs_path)


def build_lexicon_corrector(
    lexicon_dir: str,
    lexicon_type: str,
    keys: Iterable[str] = (),
    *,
    far_off_rule: str = "adelaidet",
) -> LexiconCorrector:
    """Load one lexicon setting from `lexicon_dir` (file names in :data:`LEXICON_FILES`).

    Args:
        lexicon_dir: folder holding the lexicon files.
        lexicon_type: one of :data:`LEXICON_TYPES`.
        keys: sample keys of the images, for the per-image strong lexicons.
        far_off_rule: a key of :data:`FAR_OFF_RULES`.

    Raises:
        LexiconError: naming the first expected file that does not exist.
        KeyError: unknown lexicon type or rule.
    """
    if far_off_rule not in FAR_OFF_RULES:
        raise KeyError(f"unknown far-off rule {far_off_rule!r}; known: {sorted(FAR_OFF_RULES)}")
    if lexicon_type not in LEXICON_FILES:
        raise KeyError(f"unknown lexicon type {lexicon_type!r}; known: {list(LEXICON_TYPES)}")
    if "{key}" in LEXICON_FILES[lexicon_type][0]:
        lexicons = {key: _load(lexicon_dir, lexicon_type, key) for key in keys}
    else:
        lexicons = {None: _load(lexicon_dir, lexicon_type, None)}
    return LexiconCorrector(lexicon_type, FAR_OFF_RULES[far_off_rule][lexicon_type], lexicons)
