"""Total-Text ``.mat`` ground truth (the official polygon files) -> converter annotations.

The Total-Text release also gives its ground truth as MATLAB files (``groundtruth_text.zip``,
folder ``Polygon``: ``poly_gt_<image stem>.mat``), read here with :func:`scipy.io.loadmat`. One
variable, ``polygt`` (the original release) or ``gt`` (later releases), holds a cell array with
one row per text instance and the columns of the official description::

    'x:'  [x1 x2 ... xn]  'y:'  [y1 y2 ... yn]  transcription  orientation

x and y are the polygon's vertices in absolute pixels (any number n >= 3; row or column vectors,
any numeric type), the transcription a string (``#`` or empty = don't care, written ``###``),
the orientation ``c`` (curved), ``h`` (horizontal), ``m`` (multi-oriented) or ``#`` (don't
care). A row may lack the orientation column (5 columns). What is supported, and what is refused
with a :class:`~.source_files.ConversionError` naming the file (and the instance, counted from 1):

* supported: the cell layout above under ``polygt`` or ``gt`` (``polygt`` first), the column
  labels ``'x:'``/``'y:'`` present or empty;
* refused: a file without either variable, a struct array or any other layout (e.g. the
  ``Rectangular`` folder's 8 columns: xmin, ymin, xmax, ymax, width, height, text, orientation),
  x and y of different lengths, non-numeric coordinates, a transcription that is not a string.

A polygon with fewer than 3 points or non-finite coordinates is skipped with a warning, as in the
``.txt`` format (:func:`~.annotations.make_annotation`). No detectron2 import.
"""

from typing import List

import numpy as np

from ...structures.text import DONT_CARE_TEXT
from .annotations import TextAnnotation, make_annotation
from .source_files import ConversionError

__all__ = ["MAT_VARIABLES", "parse_totaltext_mat_file"]

MAT_VARIABLES = ("polygt", "gt")
"""Names of the variable holding the instances, in the order they are looked for."""

_TOTALTEXT_IGNORE = "#"
_X_LABEL, _Y_LABEL = "x:", "y:"
_MIN_COLUMNS, _MAX_COLUMNS = 5, 6  # without / with the orientation column


def _cell_string(value, what: str, where: str, path) -> str:
    """A MATLAB string cell (``array(['text'])``, empty array, or str) -> str."""
    if isinstance(value, str):
        return value
    arr = np.asarray(value)
    if arr.size == 0:
        return ""
    if arr.dtype.kind != "U":
        raise ConversionError(path, f"{where}: {what} is not a string ({arr.dtype}, {arr.size})")
    return ",".join(str(s) for s in arr.reshape(-1))


def _cell_numbers(value, what: str, where: str, path) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ConversionError(path, f"{where}: {what} coordinates are not numbers ({arr.dtype})")
    return arr.astype(np.float64).reshape(-1)


def _instances(path):
    """The cell array of instances, shape (N, 5 or 6), from the file's variable."""
    import scipy.io  # imported here: only the .mat readers need scipy

    try:
        data = scipy.io.loadmat(str(path), variable_names=MAT_VARIABLES)
        name = next((n for n in MAT_VARIABLES if n in data), None)
        found = [] if name else sorted(v[0] for v in scipy.io.whosmat(str(path)))
    except (ValueError, TypeError, OSError, NotImplementedError) as e:
        raise ConversionError(path, f"cannot read the MATLAB file ({e})") from e
    if name is None:
        raise ConversionError(
            path, f"no variable {' or '.join(MAT_VARIABLES)} (the file holds {found[:10]})"
        )
    cells = data[name]
    if cells.size == 0:
        return name, np.empty((0, _MAX_COLUMNS), dtype=object)
    if (
        cells.dtype != object
        or cells.ndim != 2
        or not (_MIN_COLUMNS <= cells.shape[1] <= _MAX_COLUMNS)
    ):
        raise ConversionError(
            path,
            f"variable {name!r} is not a cell array of rows ['x:', xs, 'y:', ys, transcription, "
            f"orientation] (got {cells.dtype} of shape {cells.shape}; the Rectangular layout "
            "and struct arrays are not supported)",
        )
    return name, cells


def parse_totaltext_mat_file(path) -> List[TextAnnotation]:
    """Parse one ``poly_gt_<stem>.mat`` file into its instances (file order).

    Args:
        path: the ``.mat`` file.

    Returns:
        The instances; polygons (N, 2) float64 in absolute pixels, vertices in file order.

    Raises:
        ConversionError: the layout is not the one the module docstring describes.
    """
    name, cells = _instances(path)
    annotations = []
    for index, row in enumerate(cells, start=1):
        where = f"{name} instance {index}"
        x_label = _cell_string(row[0], "the x label", where, path)
        y_label = _cell_string(row[2], "the y label", where, path)
        if x_label not in ("", _X_LABEL) or y_label not in ("", _Y_LABEL):
            raise ConversionError(
                path,
                f"{where}: columns 1 and 3 should read 'x:' and 'y:', got {x_label[:20]!r} and "
                f"{y_label[:20]!r}",
            )
        xs = _cell_numbers(row[1], "x", where, path)
        ys = _cell_numbers(row[3], "y", where, path)
        if len(xs) != len(ys):
            raise ConversionError(path, f"{where}: {len(xs)} x but {len(ys)} y coordinates")
        text = _cell_string(row[4], "the transcription", where, path) or _TOTALTEXT_IGNORE
        ornt = _cell_string(row[5], "the orientation", where, path) if len(row) > 5 else ""
        ignore = text == _TOTALTEXT_IGNORE or ornt == _TOTALTEXT_IGNORE
        ann = make_annotation(
            np.stack([xs, ys], axis=1),
            DONT_CARE_TEXT if ignore else text,
            ignore,
            path=f"{path} ({where})",
        )
        if ann is not None:
            annotations.append(ann)
    return annotations
