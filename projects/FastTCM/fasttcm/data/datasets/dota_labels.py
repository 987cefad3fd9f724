"""DOTA ``labelTxt`` files: the strict reader and the writer of object lines.

``labelTxt/<image>.txt`` (DOTA-v1.0 and v1.5):

* optional header lines ``imagesource:GoogleEarth`` and ``gsd:0.146`` (``gsd:null`` allowed);
* object lines ``x1 y1 x2 y2 x3 y3 x4 y4 <class> [<difficult>]``: a quadrilateral in absolute
  pixels of the image (x right, y down), a class name of the version, and a difficulty that is
  0 when missing, 1 for difficult objects and 2 for objects truncated by the patch split.

The devkit silently skips any line with fewer than 9 fields; here a line that is neither a header
nor a well-formed object line is an error naming the file and the line, as are unknown class
names. Zero-area quadrilaterals are an error, a skipped object with a warning, or kept, as the
caller chooses (the Task-1 evaluation keeps them, as the devkit does: they count as misses).

Nothing here imports detectron2.
"""

import logging
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from ...utils.atomic_io import atomic_open
from ...utils.geometry import polygon_area

__all__ = [
    "DOTAFormatError",
    "DOTALabels",
    "read_dota_labels",
    "format_dota_label_lines",
    "write_dota_labels",
]

logger = logging.getLogger(__name__)

_DEGENERATE_POLICIES = ("error", "skip", "keep")
_MIN_AREA = 1e-6  # px^2; below this a quadrilateral counts as zero-area


class DOTAFormatError(ValueError):
    """A ``labelTxt`` file that does not follow the DOTA format (the message names file, line)."""


@dataclass(frozen=True)
class DOTALabels:
    """The objects of one ``labelTxt`` file, in file order.

    Attributes:
        polys: float64 ``(N, 8)`` quadrilaterals ``x1, y1, ..., x4, y4`` (absolute pixels).
        category_ids: int64 ``(N,)`` indices into the class list the file was read with.
        difficulty: int64 ``(N,)`` the file's flag: 0 normal, 1 difficult, 2 truncated by a split.
        line_numbers: int64 ``(N,)`` 1-based line of each object, for messages.
        image_source: value of the ``imagesource:`` header, or None.
        gsd: ground sample distance from the ``gsd:`` header (metres/pixel), or None.
    """

    polys: np.ndarray
    category_ids: np.ndarray
    difficulty: np.ndarray
    line_numbers: np.ndarray
    image_source: Optional[str] = None
    gsd: Optional[float] = None

    @property
    def difficult(self) -> np.ndarray:
        """bool ``(N,)``: difficulty != 0, i.e. what the devkit ignores."""
        return self.difficulty != 0

    def __len__(self) -> int:
        return len(self.polys)


def _parse_header(path, lineno: int, key: str, value: str, headers: Dict[str, object]) -> None:
    if key == "gsd":
        if value.lower() in ("", "null", "none"):
            headers["gsd"] = None
            return
        try:
            headers["gsd"] = float(value)
        except ValueError:
            raise DOTAFormatError(f"{path}:{lineno}: 'gsd:' header with a non-number {value!r}")
    elif key == "imagesource":
        headers["image_source"] = value


def read_dota_labels(
    path: Union[str, os.PathLike],
    class_names: Sequence[str],
    *,
    degenerate: str = "error",
) -> DOTALabels:
    """Parse one DOTA ``labelTxt`` file.

    Args:
        path: the ``.txt`` file.
        class_names: the version's classes (``category_id`` = index in this list).
        degenerate: what to do with a zero-area quadrilateral: ``"error"`` (raise), ``"skip"``
            (drop it, log a warning naming file and line) or ``"keep"``.

    Returns:
        :class:`DOTALabels`.

    Raises:
        DOTAFormatError: a malformed line, a class not in `class_names`, a negative or
            non-integer difficulty, a non-finite coordinate, or (``degenerate="error"``) a
            zero-area quadrilateral; the message is ``<file>:<line>: <problem>``.
        FileNotFoundError: `path` does not exist.
    """
    if degenerate not in _DEGENERATE_POLICIES:
        raise ValueError(f"degenerate must be one of {_DEGENERATE_POLICIES}, got {degenerate!r}")
    class_index = {name: i for i, name in enumerate(class_names)}
    headers: Dict[str, object] = {}
    coords: List[List[float]] = []
    cats: List[int] = []
    diffs: List[int] = []
    lines: List[int] = []
    with open(path, "r", encoding="utf-8-sig") as f:
        for lineno, raw in enumerate(f, start=1):
            tokens = raw.split()
            if not tokens:
                continue
            if len(tokens) == 1 and ":" in tokens[0]:
                key, _, value = tokens[0].partition(":")
                _parse_header(path, lineno, key.strip().lower(), value.strip(), headers)
                continue
            if len(tokens) not in (9, 10):
                raise DOTAFormatError(
                    f"{path}:{lineno}: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class [difficult]' "
                    f"(9 or 10 fields), got {len(tokens)} fields: {raw.strip()!r}"
                )
            try:
                xy = [float(t) for t in tokens[:8]]
            except ValueError:
                raise DOTAFormatError(
                    f"{path}:{lineno}: the first 8 fields must be numbers: {raw.strip()!r}"
                )
            if not np.all(np.isfinite(xy)):
                raise DOTAFormatError(f"{path}:{lineno}: non-finite coordinate: {raw.strip()!r}")
            name = tokens[8]
            if name not in class_index:
                raise DOTAFormatError(
                    f"{path}:{lineno}: unknown class {name!r}; this dataset's classes are "
                    f"{list(class_names)}"
                )
            difficulty = 0
            if len(tokens) == 10:
                try:
                    difficulty = int(tokens[9])
                except ValueError:
                    difficulty = -1
                if difficulty < 0:
                    raise DOTAFormatError(
                        f"{path}:{lineno}: difficulty must be a non-negative integer, "
                        f"got {tokens[9]!r}"
                    )
            if abs(polygon_area(np.asarray(xy))[0]) < _MIN_AREA:
                if degenerate == "error":
                    raise DOTAFormatError(
                        f"{path}:{lineno}: zero-area quadrilateral: {raw.strip()!r}"
                    )
                if degenerate == "skip":
                    logger.warning(f"{path}:{lineno}: skipping zero-area quadrilateral {xy}")
                    continue
            coords.append(xy)
            cats.append(class_index[name])
            diffs.append(difficulty)
            lines.append(lineno)
    return DOTALabels(
        polys=np.asarray(coords, dtype=np.float64).reshape(-1, 8),
        category_ids=np.asarray(cats, dtype=np.int64),
        difficulty=np.asarray(diffs, dtype=np.int64),
        line_numbers=np.asarray(lines, dtype=np.int64),
        image_source=headers.get("image_source"),
        gsd=headers.get("gsd"),
    )


def format_dota_label_lines(
    polys: np.ndarray, class_names: Sequence[str], difficulty: Sequence[int]
) -> List[str]:
    """Object lines ``x1 y1 ... x4 y4 <class> <difficult>\\n``, coordinates with two decimals.

    Args:
        polys: ``(N, 8)`` quadrilaterals in absolute pixels of the image the file describes.
        class_names: ``(N,)`` class name of each object.
        difficulty: ``(N,)`` DOTA difficulty flags (0, 1 or 2).

    Returns:
        N lines, each ending in ``\\n``.
    """
    return [
        " ".join(f"{v:.2f}" for v in poly) + f" {name} {diff}\n"
        for poly, name, diff in zip(polys, class_names, difficulty)
    ]


def write_dota_labels(
    path: Union[str, os.PathLike],
    polys: np.ndarray,
    class_names: Sequence[str],
    difficulty: Sequence[int],
) -> None:
    """Write a header-less ``labelTxt`` file atomically (see :func:`format_dota_label_lines`).

    Args:
        path: the ``.txt`` file; its folder is created if missing.
        polys: ``(N, 8)`` quadrilaterals in absolute pixels of the image.
        class_names: ``(N,)`` class name of each object.
        difficulty: ``(N,)`` DOTA difficulty flags.
    """
    with atomic_open(path, "w") as f:
        f.writelines(format_dota_label_lines(polys, class_names, difficulty))
