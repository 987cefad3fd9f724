"""Write ICDAR-style result files: ``res_<id>.txt`` lines and zips of them.

Detection lines are ``x1,y1,...,xn,yn[,score]``, spotting lines
``x1,y1,...,xn,yn[,score],transcription``; :mod:`~fasttcm.evaluation.protocols.submission_io`
reads both back (the ``"polygon"`` rule of :mod:`~fasttcm.evaluation.protocols.text_lines`),
and a transcription that a reader could take apart or change is quoted (RRC quoting,
``"..."``). Scores are written with :data:`SCORE_DECIMALS` decimals, which is also what the
evaluators score (:func:`round_scores`). Zips are written atomically; folders of result files
with :func:`fasttcm.utils.atomic_io.replace_dir_atomic`.

Nothing here imports detectron2.
"""

import zipfile
from typing import Mapping, Optional

import numpy as np

from ...data.converters.icdar_gt import ADELAIDET_SEPARATOR, NUMBER_FIELD, quote_transcription
from ...utils.atomic_io import atomic_open
from .polygons import as_vertex_array

__all__ = [
    "SCORE_DECIMALS",
    "format_det_line",
    "detection_file_name",
    "round_scores",
    "write_sample_zip",
    "format_spotting_det_line",
]

SCORE_DECIMALS = 6
"""Scores are written (and, by the evaluator, scored) with this many decimals."""


def _format_number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def _format_score(score: float) -> str:
    text = f"{float(score):.{SCORE_DECIMALS}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def round_scores(scores) -> np.ndarray:
    """The scores as they read back from a file written by :func:`format_det_line`."""
    return np.array([float(_format_score(s)) for s in np.asarray(scores).reshape(-1)])


def format_det_line(polygon, score: Optional[float] = None, *, integer_coords: bool = True) -> str:
    """One detection line ``x1,y1,...,xn,yn[,score]``.

    Args:
        polygon: ``(N, 2)`` vertices (absolute pixels).
        score: appended with :data:`SCORE_DECIMALS` decimals (trailing zeros dropped) if given.
        integer_coords: truncate coordinates toward zero with ``int()``, as AdelaiDet does before
            writing its result files.
    """
    points = as_vertex_array(polygon).reshape(-1)
    if integer_coords:
        fields = [str(int(v)) for v in points]
    else:
        fields = [_format_number(v) for v in points]
    if score is not None and not np.isnan(score):
        fields.append(_format_score(score))
    return ",".join(fields)


def detection_file_name(key: str) -> str:
    """``res_<key>.txt``."""
    return f"res_{key}.txt"


def write_sample_zip(path: str, files: Mapping[str, str]) -> None:
    """Write ``{file name: content}`` into a zip archive at `path`, atomically."""

    with atomic_open(path, "wb") as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, text in files.items():
                archive.writestr(name, text.encode("utf-8"))


def _quote_transcription(text: str) -> str:
    """`text`, quoted with RRC escaping when a reader could take it apart or change it."""
    if (
        '"' in text
        or text != text.strip()
        or text.startswith("####")
        or ADELAIDET_SEPARATOR in text
        or NUMBER_FIELD.match(text.split(",", 1)[0])
    ):
        return quote_transcription(text)
    return text


def format_spotting_det_line(
    polygon, score: Optional[float], text: str, *, integer_coords: bool = True
) -> str:
    """One spotting line ``x1,y1,...,xn,yn,score,transcription`` (read by the RRC IC15 parser).

    Without a score (None or NaN) the line is ``x1,y1,...,xn,yn,transcription``.

    Args:
        polygon: ``(N, 2)`` vertices (absolute pixels).
        score: written with :data:`SCORE_DECIMALS` decimals.
        text: the transcription, quoted when needed (see :func:`_quote_transcription`).
        integer_coords: truncate coordinates toward zero with ``int()`` (AdelaiDet).
    """
    return (
        format_det_line(polygon, score, integer_coords=integer_coords)
        + ","
        + _quote_transcription(text)
    )
