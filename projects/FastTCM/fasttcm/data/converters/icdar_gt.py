"""The ICDAR ground-truth line format: the one writer of ``gt_<image stem>.txt`` lines.

One line per text instance::

    x1,y1,x2,y2,...,xn,yn,transcription

* Coordinates are absolute pixels of the image (x right, y down), n >= 3 vertices in annotation
  order. Integral values are written as integers (the ICDAR files' form), others with at most 3
  decimals (trailing zeros dropped), so a polygon with at most 3 decimals reads back exactly.
* The transcription is everything after the 2n-th comma, commas included, not stripped; ``###``
  marks a don't-care region. Line breaks (``\\r``, ``\\n``) in a transcription become spaces,
  since a line break ends the instance; every other character is written as it is.
* A transcription is written quoted, ``"..."`` with ``\\`` and ``"`` backslash-escaped (the RRC
  quoting rule), exactly when a reader would otherwise take it apart or change it:

  - it starts with a number field followed by a comma (``1,000``, ``12,ab``): the readers
    would take that number for a coordinate (or refuse the line);
  - it starts, after spaces, with ``"``: the readers un-quote a transcription in quotes;
  - it starts with ``####``: the readers take ``x1,...,yn,####text`` for the AdelaiDet form and
    strip the text;
  - it holds ``,####``: in the AdelaiDet form only numbers come before that separator, so the
    readers refuse an unquoted transcription holding it (a malformed coordinate would look so).

  Anything else (including ``a,b``, a single number such as ``2015``, ``###``, inner quotes and
  leading or trailing spaces) is written as it is. The readers of
  :mod:`fasttcm.evaluation.protocols.submission_io` (the ``"polygon"`` rule of
  :mod:`fasttcm.evaluation.protocols.text_lines`; also ``"icdar2015"`` for 4-vertex polygons)
  read every line written here back to the same polygon and transcription; they share
  :data:`NUMBER_FIELD`, :data:`ADELAIDET_SEPARATOR` and :func:`unquote_transcription` with this
  writer.

No detectron2 import.
"""

import os
import re

import numpy as np

__all__ = [
    "NUMBER_FIELD",
    "ADELAIDET_SEPARATOR",
    "eval_gt_file_name",
    "quote_transcription",
    "unquote_transcription",
    "format_icdar_gt_line",
]

NUMBER_FIELD = re.compile(r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$")
"""A comma-separated field that the ICDAR readers take for a number (spaces around allowed)."""

ADELAIDET_SEPARATOR = ",####"
"""Separates the coordinates from the transcription in AdelaiDet's form of the line."""

_QUOTED = re.compile(r'^\s*"(.*)"\s*$', re.DOTALL)
_LINE_BREAK = re.compile(r"[\r\n]")


def eval_gt_file_name(image_file_name: str) -> str:
    """Name of the evaluation GT file of an image: ``gt_<image stem>.txt``.

    ``img_12.jpg`` -> ``gt_img_12.txt`` (the official ICDAR 2015 name). Evaluators map a dataset
    dict's ``file_name`` to its GT file and write ``res_<image stem>.txt`` with the same rule.
    """
    stem = os.path.splitext(os.path.basename(image_file_name))[0]
    return f"gt_{stem}.txt"


def quote_transcription(text: str) -> str:
    """`text` in double quotes, ``\\`` and ``"`` backslash-escaped (RRC quoting)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote_transcription(text: str) -> str:
    """Undo :func:`quote_transcription` when `text` is in quotes (spaces around allowed).

    Text not in quotes is returned unchanged.
    """
    m = _QUOTED.match(text)
    if m is None:
        return text
    return m.group(1).replace("\\\\", "\\").replace('\\"', '"')


def _needs_quotes(text: str) -> bool:
    first, comma, _ = text.partition(",")
    return (
        bool(comma and NUMBER_FIELD.match(first))
        or text.lstrip().startswith('"')
        or text.startswith("####")
        or ADELAIDET_SEPARATOR in text
    )


def _format_coord(value: float) -> str:
    """Integers stay integers (the ICDAR files' form); other values keep 3 decimals."""
    if float(value).is_integer():
        return str(int(value))
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_icdar_gt_line(polygon, text: str) -> str:
    """One ground-truth line ``x1,y1,...,xn,yn,transcription`` (no line end).

    Args:
        polygon: (N, 2) vertices, absolute pixels (x right, y down); also accepted flat (2N,).
        text: the transcription (``"###"`` for a don't-care region).

    Returns:
        The line, quoting `text` by the rule in the module docstring.
    """
    coords = ",".join(_format_coord(v) for v in np.asarray(polygon, dtype=np.float64).reshape(-1))
    text = _LINE_BREAK.sub(" ", text)
    if _needs_quotes(text):
        text = quote_transcription(text)
    return f"{coords},{text}"
