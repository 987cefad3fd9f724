"""Where the coordinates of an ICDAR-style text line end and its transcription begins.

Three kinds of line, all comma-separated, coordinates in absolute pixels (x right, y down):

* **ground truth** ``x1,y1,...,xn,yn,transcription`` (n >= 3);
* **detection** ``x1,y1,...,xn,yn[,score]``: numbers only (an odd count ends with the score),
  optionally followed by AdelaiDet's ``,####transcription``;
* **spotting** (end-to-end results) ``x1,y1,...,xn,yn[,score],transcription``.

A *number field* is one that :data:`~fasttcm.data.converters.icdar_gt.NUMBER_FIELD` matches
(``12``, ``-3.5``, ``1e3``, spaces around allowed; not ``nan``/``inf``). A transcription written
``"..."`` is un-quoted with ``\\\\`` and ``\\"`` un-escaped (the RRC rule); ``###`` is don't care.
A score, where a line has one, must lie in [0, 1] (the RRC confidence), which also catches a
number taken for the score because a coordinate next to it is malformed.

Lines with a transcription are read by one of two rules, :data:`LINE_FORMATS`:

``"polygon"`` (default; the project's GT and result files, Total-Text, CTW1500, AdelaiDet):
    The coordinates are the leading number fields.

    - AdelaiDet form ``x1,...,yn[,score],####transcription``: only numbers come before the
      ``,####`` separator; the transcription after it is stripped.
    - Otherwise the transcription is the rest of the line after the first field that is not a
      number, commas included, not stripped. Before it come the coordinates (an even count),
      plus the score for a spotting line with an odd count. An odd count in a GT line, a
      ``,####`` further on in an unquoted transcription, or fewer than 6 coordinates means a
      coordinate is missing or malformed (``1O`` for ``10``): an error naming the field. The
      project's writers quote a transcription that starts with a number field and a comma, or
      contains ``,####``, so their lines are never refused.
    - A line made only of numbers: its last number is the transcription (``...,y4,2015``), as
      the RRC reads a numeric word. In a GT line the numbers before it are the coordinates (a GT
      line of an even count of numbers is refused: no transcription can be told apart). In a
      spotting line they are the coordinates and, when odd in count, the score; at least 8
      coordinates are needed, so that a detection line without a transcription
      (``0,0,10,0,10,10,0,10``) is refused rather than read as a triangle, a score and a word.

    A malformed number at an *x* position that leaves an even count before it
    (``x1,y1,x2,y2,x3,y3,1O,y4,text``) cannot be told from a triangle whose transcription is
    ``1O,y4,text``: read such files with ``"icdar2015"`` when they are quadrilaterals.

``"icdar2015"`` (the RRC Challenge 4 files: quadrilaterals):
    The first 8 fields are the coordinates and must be numbers; everything after the 8th comma
    is the transcription, even a number or ``12,ab``. In a spotting line the 9th field is the
    score when it is a number in [0, 1] and more fields follow it (the RRC's confidence column;
    a number outside [0, 1] cannot be a confidence and begins the transcription, ``12,ab``; the
    project's writer quotes a transcription that starts with a number). A ``####`` that begins
    the transcription is AdelaiDet's separator (the transcription after it is stripped), in both
    rules.

The file readers' ``line_format="auto"`` chooses one of the two rules for a whole set of files
(:mod:`~fasttcm.evaluation.protocols.submission_io`): the polygon rule when it reads every line,
the ICDAR 2015 rule when it does not and every line it reads is a quadrilateral.

Error messages name the file and line and show at most :data:`MAX_ECHO_CHARS` characters of it.
Nothing here imports detectron2.
"""

from typing import List, Sequence, Tuple

import numpy as np

from ...data.converters.icdar_gt import (
    ADELAIDET_SEPARATOR,
    NUMBER_FIELD,
    unquote_transcription,
)

__all__ = [
    "LINE_FORMATS",
    "ICDAR2015_NUM_COORDS",
    "MAX_ECHO_CHARS",
    "SubmissionFormatError",
    "excerpt",
    "check_line_format",
    "parse_gt_line",
    "parse_det_line",
    "parse_spotting_line",
]

LINE_FORMATS = ("polygon", "icdar2015")
"""The rules for lines with a transcription (module docstring)."""

ICDAR2015_NUM_COORDS = 8
"""Coordinates of an ICDAR 2015 line (4 corners)."""

MAX_ECHO_CHARS = 200
"""At most this many characters of a bad line are shown in an error message."""

_MAX_FIELD_CHARS = 40  # of one bad field
# a spotting line of only numbers needs this many coordinates before its numeric transcription
_MIN_NUMERIC_WORD_COORDS = 8
_ADELAIDET_MARK = ADELAIDET_SEPARATOR[1:]  # "####" at the start of a transcription


class SubmissionFormatError(ValueError):
    """A gt/res file (or a folder or zip of them) that does not follow the format."""


def excerpt(line: str, limit: int = MAX_ECHO_CHARS) -> str:
    """`line` as ``repr`` shows it, cut to `limit` characters (saying how long it was)."""
    if len(line) <= limit:
        return repr(line)
    return f"{line[:limit]!r}... ({len(line)} characters)"


def _field(value: str) -> str:
    return excerpt(value, _MAX_FIELD_CHARS)


def check_line_format(line_format: str) -> str:
    """`line_format` if it is one of :data:`LINE_FORMATS`, else ValueError."""
    if line_format not in LINE_FORMATS:
        raise ValueError(f"line_format must be one of {LINE_FORMATS}, got {line_format!r}")
    return line_format


def _num_leading_numbers(fields: Sequence[str]) -> int:
    count = 0
    while count < len(fields) and NUMBER_FIELD.match(fields[count]):
        count += 1
    return count


def _coordinates(fields: Sequence[str], where: str, line: str) -> np.ndarray:
    """(n, 2) float64 vertices from 2n number fields (n >= 3, all finite)."""
    values = np.array([float(v) for v in fields], dtype=np.float64)
    if len(values) < 6 or len(values) % 2:
        raise SubmissionFormatError(
            f"{where}: a polygon needs an even number (>= 6) of coordinates, got {len(values)}: "
            f"{excerpt(line)}"
        )
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise SubmissionFormatError(
            f"{where}: non-finite coordinate in field {bad[0] + 1} ({_field(fields[bad[0]])}): "
            f"{excerpt(line)}"
        )
    return values.reshape(-1, 2)


def _score(fields: Sequence[str], index: int, where: str, line: str) -> float:
    """The score in ``fields[index]``, which must lie in [0, 1]."""
    score = float(fields[index])
    if not 0.0 <= score <= 1.0:  # NaN and inf fail too
        raise SubmissionFormatError(
            f"{where}: field {index + 1} ({_field(fields[index])}) is read as the score, which "
            f"must lie in [0, 1]; is a coordinate before it missing or malformed?: "
            f"{excerpt(line)}"
        )
    return score


def _is_confidence(value: str) -> bool:
    """Whether a field after the 8 ICDAR 2015 coordinates can be the RRC confidence."""
    return bool(NUMBER_FIELD.match(value)) and 0.0 <= float(value) <= 1.0


def _transcription(rest: str, where: str, line: str, column: int) -> str:
    """The transcription from the text after the coordinates (and score), RRC/AdelaiDet rules.

    Args:
        rest: the line from the transcription's first field on.
        column: 1-based field number where `rest` starts, for the message.
    """
    if rest.startswith(_ADELAIDET_MARK):  # AdelaiDet: x1,...,yn,####transcription
        return unquote_transcription(rest[len(_ADELAIDET_MARK) :].strip())
    text = unquote_transcription(rest)
    if text == rest and ADELAIDET_SEPARATOR in rest:
        raise SubmissionFormatError(
            f"{where}: field {column} ({_field(rest.split(',', 1)[0])}) is not a number, but "
            f"'{ADELAIDET_SEPARATOR}' follows it: in x1,...,yn,####transcription only numbers "
            f"come before the separator (is a coordinate malformed? a transcription holding "
            f"'{ADELAIDET_SEPARATOR}' is written quoted): {excerpt(line)}"
        )
    return text


def _odd_count_message(fields: List[str], count: int, where: str, line: str) -> str:
    return (
        f"{where}: field {count + 1} ({_field(fields[count])}) is not a number but follows "
        f"{count} numbers, an odd count of coordinates: a coordinate is missing or malformed "
        f'(a transcription that starts with a number and a comma is written quoted, "12,ab"; '
        f"an ICDAR 2015 file, 8 coordinates then the transcription, is read with "
        f"line_format='icdar2015', tools/evaluate.py --line-format icdar2015): {excerpt(line)}"
    )


def _icdar2015_coordinates(fields: List[str], where: str, line: str, what: str) -> np.ndarray:
    for index in range(min(len(fields), ICDAR2015_NUM_COORDS)):
        if not NUMBER_FIELD.match(fields[index]):
            raise SubmissionFormatError(
                f"{where}: field {index + 1} ({_field(fields[index])}) is not a number; the first "
                f"{ICDAR2015_NUM_COORDS} fields of an ICDAR 2015 line are the coordinates: "
                f"{excerpt(line)}"
            )
    if len(fields) <= ICDAR2015_NUM_COORDS:
        raise SubmissionFormatError(
            f"{where}: an ICDAR 2015 {what} line is x1,y1,...,x4,y4,transcription; found "
            f"{len(fields)} field(s) and no transcription: {excerpt(line)}"
        )
    return _coordinates(fields[:ICDAR2015_NUM_COORDS], where, line)


def _icdar2015_transcription(fields: List[str]) -> str:
    """The transcription of an ICDAR 2015 line from its fields after the coordinates (and score)."""
    rest = ",".join(fields)
    if rest.startswith(_ADELAIDET_MARK):
        return unquote_transcription(rest[len(_ADELAIDET_MARK) :].strip())
    return unquote_transcription(rest)


def parse_gt_line(line: str, where: str, line_format: str = "polygon") -> Tuple[np.ndarray, str]:
    """One ground-truth line -> ``((n, 2) vertices, transcription)``.

    Args:
        line: the line without its line end.
        where: ``"<file>, line <n>"`` for messages.
        line_format: one of :data:`LINE_FORMATS` (rules in the module docstring).

    Raises:
        SubmissionFormatError: naming `where`.
    """
    fields = line.split(",")
    if check_line_format(line_format) == "icdar2015":
        polygon = _icdar2015_coordinates(fields, where, line, "ground-truth")
        return polygon, _icdar2015_transcription(fields[ICDAR2015_NUM_COORDS:])
    count = _num_leading_numbers(fields)
    if count == len(fields):
        if count % 2 == 0:
            raise SubmissionFormatError(
                f"{where}: only numbers, so no transcription can be told apart from the "
                f"coordinates (a GT line is x1,y1,...,xn,yn,transcription; quote a numeric "
                f'transcription that contains commas as "..."): {excerpt(line)}'
            )
        return _coordinates(fields[:-1], where, line), fields[-1]  # a numeric transcription
    if count < 6:
        raise SubmissionFormatError(
            f"{where}: a ground-truth line needs at least 3 points (6 numbers) before the "
            f"transcription; field {count + 1} ({_field(fields[count])}) is not a number: "
            f"{excerpt(line)}"
        )
    rest = ",".join(fields[count:])
    if count % 2 and not rest.startswith(_ADELAIDET_MARK):
        raise SubmissionFormatError(_odd_count_message(fields, count, where, line))
    polygon = _coordinates(fields[:count], where, line)
    return polygon, _transcription(rest, where, line, count + 1)


def parse_det_line(line: str, where: str) -> Tuple[np.ndarray, float, str]:
    """One detection line -> ``((n, 2) vertices, score or NaN, transcription or "")``.

    Raises:
        SubmissionFormatError: naming `where`.
    """
    text = ""
    if ADELAIDET_SEPARATOR in line:
        line, text = line.strip().split(ADELAIDET_SEPARATOR, 1)
        text = unquote_transcription(text.strip())
    fields = line.split(",")
    for col, value in enumerate(fields, start=1):
        if not NUMBER_FIELD.match(value):
            raise SubmissionFormatError(
                f"{where}: field {col} ({_field(value)}) is not a number; a detection line is "
                f"x1,y1,...,xn,yn[,score][,####transcription]: {excerpt(line)}"
            )
    score = np.nan
    if len(fields) % 2:
        score = _score(fields, len(fields) - 1, where, line)
        fields = fields[:-1]
    return _coordinates(fields, where, line), score, text


def parse_spotting_line(
    line: str, where: str, line_format: str = "polygon"
) -> Tuple[np.ndarray, float, str]:
    """One end-to-end result line -> ``((n, 2) vertices, score or NaN, transcription)``.

    Args:
        line, where, line_format: as for :func:`parse_gt_line`.

    Raises:
        SubmissionFormatError: naming `where`.
    """
    fields = line.split(",")
    if check_line_format(line_format) == "icdar2015":
        polygon = _icdar2015_coordinates(fields, where, line, "end-to-end")
        start, score = ICDAR2015_NUM_COORDS, np.nan
        if len(fields) > start + 1 and _is_confidence(fields[start]):
            score, start = float(fields[start]), start + 1
        return polygon, score, _icdar2015_transcription(fields[start:])
    count = _num_leading_numbers(fields)
    if count == len(fields):  # the last number is the transcription (a numeric word)
        num_coords = count - 1 - (count - 1) % 2
        if num_coords < _MIN_NUMERIC_WORD_COORDS:
            raise SubmissionFormatError(
                f"{where}: no transcription after the numbers (a line of only numbers is read as "
                f"x1,y1,...,xn,yn[,score],<numeric transcription> with n >= 4; a spotting line "
                f"is x1,y1,...,xn,yn[,score],transcription; a numeric transcription may be quoted, "
                f'"12"): {excerpt(line)}'
            )
        score = _score(fields, num_coords, where, line) if (count - 1) % 2 else np.nan
        return _coordinates(fields[:num_coords], where, line), score, fields[-1]
    num_coords = count - count % 2
    if num_coords < 6:
        raise SubmissionFormatError(
            f"{where}: a spotting line needs at least 3 points (6 numbers) before the "
            f"transcription; field {count + 1} ({_field(fields[count])}) is not a number: "
            f"{excerpt(line)}"
        )
    score = _score(fields, num_coords, where, line) if count % 2 else np.nan
    polygon = _coordinates(fields[:num_coords], where, line)
    return polygon, score, _transcription(",".join(fields[count:]), where, line, count + 1)
