"""Reading SynthText's ground truth, ``gt.mat``, into one record per image.

Native format: one MATLAB v5 file ``gt.mat`` next to the image folders, holding (1, N) cell
arrays, one cell per image, in the same order:

* ``imnames{i}``: the image path relative to the folder of ``gt.mat``, e.g. ``8/ballet_106_0.jpg``.
* ``wordBB{i}``: the word quadrilaterals, a (2, 4, K) array: ``wordBB{i}(1, c, k)`` and
  ``wordBB{i}(2, c, k)`` are x and y (absolute pixels, x right, y down) of corner c of word k,
  corners in the order top-left, top-right, bottom-right, bottom-left of the word (clockwise on
  screen). MATLAB drops the trailing singleton dimension, so an image with one word has a
  (2, 4) array.
* ``txt{i}``: the text instances rendered into the image (a char matrix, rows padded with spaces,
  or a cell of strings); their whitespace-separated tokens, in order, are the K words, one per
  quadrilateral (lines of a multi-line instance are separated by newlines).
* ``charBB{i}``: character boxes; not read (it is most of the file).

A missing or unreadable ``gt.mat``, missing variables, cell arrays of different lengths, a
malformed cell, a word/box count mismatch or an unsafe image path is a
:class:`~fasttcm.data.converters.source_files.ConversionError` naming ``gt.mat`` and the image
index (0-based position in the cell arrays) with its name. No detectron2 import.
"""

import os
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import List, Optional, Tuple

import numpy as np

from .source_files import ConversionError

__all__ = [
    "GT_MAT_NAME",
    "SynthTextImage",
    "read_synthtext_gt",
    "parse_synthtext_image",
]

GT_MAT_NAME = "gt.mat"

_MAT_VARIABLES = ("imnames", "wordBB", "txt")


@dataclass
class SynthTextImage:
    """One image of ``gt.mat``.

    Attributes:
        index: 0-based position in the cell arrays.
        file_name: image path relative to the folder of ``gt.mat`` (POSIX separators).
        quads: (K, 4, 2) float64, word quadrilaterals in absolute pixels (x right, y down),
            corners top-left, top-right, bottom-right, bottom-left of the word.
        words: the K transcriptions, ``words[k]`` belonging to ``quads[k]``.
    """

    index: int
    file_name: str
    quads: np.ndarray
    words: List[str]


def read_synthtext_gt(mat_path) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read ``imnames``, ``wordBB`` and ``txt`` from a SynthText ``gt.mat`` (``charBB`` is skipped).

    Args:
        mat_path: path of ``gt.mat`` (MATLAB v5).

    Returns:
        Three (N,) object arrays, one cell per image, as ``scipy.io.loadmat`` returns them.

    Raises:
        FileNotFoundError: `mat_path` does not exist.
        ConversionError: not a readable MATLAB v5 file, a variable is missing or is not a cell
            array, or the three have different lengths.
    """
    import scipy.io  # imported here: only this converter needs scipy

    mat_path = os.fspath(mat_path)
    if not os.path.isfile(mat_path):
        raise FileNotFoundError(f"SynthText ground truth {mat_path} does not exist")
    try:
        mat = scipy.io.loadmat(mat_path, variable_names=_MAT_VARIABLES)
    except NotImplementedError as e:  # scipy's answer to MATLAB v7.3 (HDF5) files
        raise ConversionError(
            mat_path, f"not a MATLAB v5 file ({e}); SynthText's gt.mat is v5, re-save it as such"
        ) from e
    except (OSError, ValueError, TypeError) as e:  # scipy.io.matlab.MatReadError is a ValueError
        raise ConversionError(mat_path, f"cannot read the MATLAB file ({e})") from e
    missing = [name for name in _MAT_VARIABLES if name not in mat]
    if missing:
        raise ConversionError(
            mat_path,
            f"missing variable(s) {missing}; a SynthText gt.mat has {list(_MAT_VARIABLES)}",
        )
    cells = []
    for name in _MAT_VARIABLES:
        value = mat[name]
        if not isinstance(value, np.ndarray) or value.dtype != object or value.ndim != 2:
            raise ConversionError(
                mat_path,
                f"{name!r} must be a cell array, got {type(value).__name__} "
                f"{getattr(value, 'dtype', '')} {getattr(value, 'shape', '')}".rstrip(),
            )
        if 1 not in value.shape:
            raise ConversionError(
                mat_path, f"{name!r} must be a (1, N) cell array, got shape {value.shape}"
            )
        cells.append(value.reshape(-1))
    lengths = {name: len(c) for name, c in zip(_MAT_VARIABLES, cells)}
    if len(set(lengths.values())) != 1:
        raise ConversionError(mat_path, f"the cell arrays have different lengths: {lengths}")
    return tuple(cells)


def _strings(value) -> List[str]:
    """All strings in a MATLAB char array / cell of char arrays, in order (recursively)."""
    if isinstance(value, str):
        return [value]
    arr = np.asarray(value)
    if arr.dtype.kind == "U":
        return [str(s) for s in arr.reshape(-1)]
    if arr.dtype == object:
        return [s for item in arr.reshape(-1) for s in _strings(item)]
    if arr.size == 0:
        return []
    raise TypeError(f"expected text, got a {arr.dtype} array of shape {arr.shape}")


def _check_file_name(name: str) -> Optional[str]:
    """Why `name` cannot be an image path relative to the image root, or None if it can."""
    if not name:
        return "empty image name"
    if "\\" in name:
        return f"image name {name!r} must use '/' separators"
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
        return f"image name {name!r} must be relative to the folder of gt.mat, without '..'"
    return None


def parse_synthtext_image(mat_path, index: int, imname, word_bb, txt) -> SynthTextImage:
    """Parse the cells of one image.

    Args:
        mat_path: path of ``gt.mat``, for messages.
        index: 0-based image index, for messages.
        imname, word_bb, txt: the image's ``imnames``, ``wordBB`` and ``txt`` cells.

    Returns:
        :class:`SynthTextImage` with all K quadrilaterals (degenerate ones included).

    Raises:
        ConversionError: a malformed cell or a word/box count mismatch, naming `mat_path`,
            `index` and the image name.
    """
    try:
        names = _strings(imname)
    except TypeError as e:
        raise ConversionError(mat_path, f"image {index}: imnames cell: {e}") from e
    if len(names) != 1:
        raise ConversionError(
            mat_path, f"image {index}: imnames cell must hold one string, got {names!r}"
        )
    file_name = names[0]
    problem = _check_file_name(file_name)
    if problem:
        raise ConversionError(mat_path, f"image {index}: {problem}")
    where = f"image {index} ({file_name})"

    boxes = np.asarray(word_bb)
    if boxes.dtype == object or not np.issubdtype(boxes.dtype, np.number):
        raise ConversionError(mat_path, f"{where}: wordBB must be numeric, got {boxes.dtype}")
    if boxes.size == 0:
        quads = np.zeros((0, 4, 2))
    elif boxes.shape == (2, 4):  # one word: MATLAB dropped the trailing singleton dimension
        quads = boxes.T[None].astype(np.float64)
    elif boxes.ndim == 3 and boxes.shape[:2] == (2, 4):
        quads = boxes.transpose(2, 1, 0).astype(np.float64)  # (2, 4, K) -> (K, 4, 2)
    else:
        raise ConversionError(
            mat_path, f"{where}: wordBB has shape {boxes.shape}, expected (2, 4, K) or (2, 4)"
        )

    try:
        words = " ".join(_strings(txt)).split()
    except TypeError as e:
        raise ConversionError(mat_path, f"{where}: txt cell: {e}") from e
    if len(words) != len(quads):
        raise ConversionError(
            mat_path,
            f"{where}: {len(quads)} word box(es) in wordBB but {len(words)} word(s) in txt "
            f"{words[:8]!r}{' ...' if len(words) > 8 else ''}",
        )
    return SynthTextImage(index=index, file_name=file_name, quads=quads, words=words)
