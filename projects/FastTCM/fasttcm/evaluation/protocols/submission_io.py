"""Read ICDAR-style per-image text files (``gt_<id>.txt``, ``res_<id>.txt``).

Files are read from a folder or a zip archive (members anywhere in the archive; their base names
count). Result lines and zips are written by :mod:`~fasttcm.evaluation.protocols.result_files`;
ground-truth lines by :func:`fasttcm.data.converters.icdar_gt.format_icdar_gt_line`, which quotes a
transcription exactly when the reader below would otherwise change it.

**File names and sample keys.** ``gt_<id>.txt``, ``gt_img_<id>.txt`` and a bare ``<id>.txt`` (the
converted Total-Text/CTW1500 zips use ``0000001.txt``) all give the key ``<id>``; detections
likewise with ``res_``. An all-digit id loses its leading zeros, so ``gt_img_7.txt``,
``0000007.txt`` and ``res_7.txt`` are the same sample.

**Lines.** Ground-truth lines ``x1,y1,...,xn,yn,transcription``, detection lines
``x1,y1,...,xn,yn[,score]`` and spotting (end-to-end) lines
``x1,y1,...,xn,yn[,score],transcription`` are read by
:mod:`~fasttcm.evaluation.protocols.text_lines`, which says where the coordinates end and the
transcription begins: the ``"polygon"`` rule (the project's files, Total-Text, CTW1500,
AdelaiDet's ``,####`` form) or the ``"icdar2015"`` rule (8 coordinates, then the transcription,
even a numeric one), chosen with ``line_format``. The writers below quote a transcription that a
reader could take apart (RRC quoting, ``"..."``).

**Choosing the rule: line_format "auto"** (the default of :func:`read_ground_truth` and
:func:`read_spotting_detections`, and of ``tools/evaluate.py``). The files read in one call (a GT
folder, or a result folder: a *set*) are read with one rule:

1. the ``"polygon"`` rule when it reads every line of the set (numeric words need no other rule:
   ``x1,...,y4,2015`` is 8 coordinates and the word ``2015`` by it);
2. otherwise the ``"icdar2015"`` rule when the set is quadrilateral: every line that the polygon
   rule reads gives 4 vertices. The lines the polygon rule refuses are then the official ICDAR
   2015 ones whose transcription starts with a number and a comma (``x1,...,y4,1,000``;
   ``x1,...,y4,12,ab``), which the RRC scripts read as 8 coordinates and that transcription. An
   info message names the first such line;
3. otherwise (a line the polygon rule refuses in a set that also holds polygons of another vertex
   count, or that the ICDAR 2015 rule refuses too) the polygon rule's error, naming file, line
   and field, then why the ICDAR 2015 rule does not apply; a malformed number in a Total-Text or
   CTW1500 file is never read as a word.

A set that the polygon rule reads whole, most of whose lines (more than
:data:`QUADRILATERAL_SHARE`, half) are quadrilaterals, and whose other lines are quadrilaterals
by the ICDAR 2015 rule (``x1,...,y4,12,34,ab``: a pentagon and ``ab``, or a quadrilateral and
``12,34,ab``; an RRC result ``x1,...,y4,0.9,12,ab`` likewise) cannot be told apart: it is read
by the polygon rule with a warning naming the first such line (``line_format="icdar2015"``,
``--line-format icdar2015``, reads it as ICDAR 2015). A result line without a confidence whose
transcription is a number in [0, 1], a comma and more (``x1,...,y4,1,000``) reads as that
confidence and the rest by both rules. Detection lines (numbers only) have one rule.

Files are UTF-8 (a BOM is removed); ``\\r\\n`` line ends are accepted; blank lines are skipped.
Malformed content raises :class:`SubmissionFormatError` naming the file and line. Zips are read
within the size and compression-ratio limits of
:mod:`~fasttcm.evaluation.protocols.zip_reading`.

Nothing here imports detectron2.
"""

import logging
import os
import re
import zipfile
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import numpy as np
import shapely

from .base import ImageDetections, ImageGroundTruth
from .polygons import make_polygons
from .text_lines import (
    SubmissionFormatError,
    excerpt,
    parse_det_line,
    parse_gt_line,
    parse_spotting_line,
)
from .zip_reading import ZipLimits, read_zip_members

__all__ = [
    "SubmissionFormatError",
    "SampleFile",
    "sample_key",
    "list_sample_files",
    "parse_ground_truth",
    "parse_detections",
    "read_ground_truth",
    "read_detections",
    "parse_spotting_detections",
    "read_spotting_detections",
    "FILE_LINE_FORMATS",
    "QUADRILATERAL_SHARE",
    "choose_line_format",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

FILE_LINE_FORMATS = ("auto", "polygon", "icdar2015")
"""``line_format`` values of the file readers: "auto" chooses one of the two line rules per set."""

QUADRILATERAL_SHARE = 0.5
"""Share of quadrilaterals above which the other polygons of a set get the "auto" warning."""

_PREFIXES = {"gt": ("gt_",), "res": ("res_",)}
_KIND_NAMES = {"gt": "ground-truth", "res": "detection"}


@dataclass(frozen=True)
class SampleFile:
    """One per-image text file found in a folder or zip.

    Attributes:
        key: sample key (see module docstring).
        name: base name of the file, e.g. ``gt_img_7.txt``.
        where: printable location, ``folder/gt_img_7.txt`` or ``archive.zip:gt_img_7.txt``.
        text: decoded content (BOM removed).
    """

    key: str
    name: str
    where: str
    text: str


def sample_key(name: str, kind: str = "gt") -> str:
    """Sample key of a file name (``gt_img_7.txt`` -> ``"7"``) or of an image file stem.

    Args:
        name: file base name; a trailing ``.txt`` and a leading ``gt_``/``res_`` (per `kind`) and
            ``img_`` are removed, then leading zeros of an all-digit id.
        kind: ``"gt"`` or ``"res"``.
    """
    key = name[:-4] if name.lower().endswith(".txt") else name
    for prefix in _PREFIXES[kind]:
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    if key.startswith("img_"):
        key = key[len("img_") :]
    if re.fullmatch(r"[0-9]+", key):
        key = str(int(key))
    return key


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SubmissionFormatError(f"{where}: not UTF-8 ({e})") from e


def _is_sample_member(info: zipfile.ZipInfo) -> bool:
    name = os.path.basename(info.filename)
    return not (
        info.is_dir()
        or "__MACOSX" in info.filename
        or name.startswith(".")
        or not name.lower().endswith(".txt")
    )


def list_sample_files(
    path: str, kind: str, *, zip_limits: Optional[ZipLimits] = None
) -> Dict[str, SampleFile]:
    """All ``*.txt`` files of a folder (not recursive) or a zip archive, keyed by sample key.

    Hidden files and ``__MACOSX`` entries are skipped.

    Args:
        path: a folder or a ``.zip`` file.
        kind: ``"gt"`` or ``"res"`` (which prefix the names may carry).
        zip_limits: limits on reading a zip (default: :class:`~.zip_reading.ZipLimits` ()).

    Raises:
        SubmissionFormatError: path missing, not a folder/zip, two files with the same key, or a
            zip member over the limits (:class:`~.zip_reading.ZipLimitError`).
    """
    if kind not in _PREFIXES:
        raise ValueError(f"kind must be 'gt' or 'res', got {kind!r}")
    entries: List[Tuple[str, str, bytes]] = []  # (name, where, raw)
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if (
                name.startswith(".")
                or not name.lower().endswith(".txt")
                or not os.path.isfile(full)
            ):
                continue
            with open(full, "rb") as f:
                entries.append((name, full, f.read()))
    elif os.path.isfile(path):
        if not zipfile.is_zipfile(path):
            raise SubmissionFormatError(f"{path}: neither a folder nor a zip archive")
        for info, raw in read_zip_members(path, _is_sample_member, zip_limits):
            entries.append((os.path.basename(info.filename), f"{path}:{info.filename}", raw))
    else:
        raise SubmissionFormatError(f"{path}: no such folder or zip file")

    files: Dict[str, SampleFile] = {}
    for name, where, raw in entries:
        key = sample_key(name, kind)
        if key in files:
            raise SubmissionFormatError(f"{where}: same sample key {key!r} as {files[key].where}")
        files[key] = SampleFile(key, name, where, _decode(raw, where))
    return files


def _lines(text: str):
    """(line number, line) of the non-blank lines, 1-based, line ends and a BOM removed."""
    if text.startswith("\ufeff"):
        text = text[1:]
    for num, line in enumerate(text.split("\n"), start=1):
        line = line.replace("\r", "")
        if line.strip():
            yield num, line


def _check_file_line_format(line_format: str) -> str:
    if line_format not in FILE_LINE_FORMATS:
        raise ValueError(f"line_format must be one of {FILE_LINE_FORMATS}, got {line_format!r}")
    return line_format


def choose_line_format(
    files: Sequence[Tuple[str, str]],
    parse_line: Callable[[str, str, str], Tuple[np.ndarray, ...]],
) -> str:
    """The line rule of ``line_format="auto"`` for a set of files (module docstring).

    Args:
        files: ``(location, content)`` of every file of the set.
        parse_line: :func:`~.text_lines.parse_gt_line` or
            :func:`~.text_lines.parse_spotting_line` (line, location, rule) -> (polygon, ...).

    Returns:
        ``"polygon"`` or ``"icdar2015"``.

    Raises:
        SubmissionFormatError: a line the polygon rule refuses in a set that is not quadrilateral,
            or that the ICDAR 2015 rule refuses too (the polygon rule's message, naming file,
            line and field, then why the ICDAR 2015 rule does not apply).
    """
    first_error: Optional[SubmissionFormatError] = None
    first_location = ""
    num_quads, others = 0, []  # others: (location, line, number of vertices)
    for where, text in files:
        for num, line in _lines(text):
            location = f"{where}, line {num}"
            try:
                polygon = parse_line(line, location, "polygon")[0]
            except SubmissionFormatError as e:
                if first_error is None:
                    first_error, first_location = e, location
                continue
            if len(polygon) == 4:
                num_quads += 1
            else:
                others.append((location, line, len(polygon)))
    if first_error is None:
        if others and num_quads > QUADRILATERAL_SHARE * (num_quads + len(others)):
            _warn_if_icdar2015_reads_them(others, parse_line, num_quads)
        return "polygon"
    if others:
        location, _, vertices = others[0]
        raise SubmissionFormatError(
            f"{first_error} [line format auto: not read as ICDAR 2015 either, since {location} "
            f"is a {vertices}-vertex polygon by the polygon rule]"
        )
    for where, text in files:
        for num, line in _lines(text):
            try:
                parse_line(line, f"{where}, line {num}", "icdar2015")
            except SubmissionFormatError as e:
                raise SubmissionFormatError(
                    f"{first_error} [line format auto: the ICDAR 2015 rule refuses the set too: "
                    f"{e}]"
                ) from first_error
    logger.info(
        f"{first_location} is not readable by the polygon rule and every "
        f"other line of the {len(files)} file(s) read with it is a quadrilateral: they are read "
        "as ICDAR 2015 files (8 coordinates, then the transcription, as the RRC scripts do)"
    )
    return "icdar2015"


def _warn_if_icdar2015_reads_them(others, parse_line, num_quads: int) -> None:
    """Warn when the non-quadrilaterals of a mostly quadrilateral set are quadrilaterals by the
    ICDAR 2015 rule too (a word starting with numbers and commas: module docstring)."""
    for location, line, _ in others:
        try:
            if len(parse_line(line, location, "icdar2015")[0]) != 4:
                return
        except SubmissionFormatError:
            return
    location, line, vertices = others[0]
    logger.warning(
        f"{location}: read as a {vertices}-vertex polygon by the polygon rule, but {num_quads} "
        f"of the {num_quads + len(others)} lines of the set are quadrilaterals and the "
        f"{len(others)} other(s) are quadrilaterals by the ICDAR 2015 rule too (a transcription "
        f"starting with numbers and commas): if these are ICDAR 2015 files, read them with "
        f"line_format='icdar2015' (tools/evaluate.py --line-format icdar2015): {excerpt(line)}"
    )


def parse_ground_truth(
    text: str, where: str = "<ground truth>", *, line_format: str = "polygon"
) -> ImageGroundTruth:
    """Parse the content of one ``gt_<id>.txt`` file.

    Invalid (self-intersecting or zero-area) polygons are accepted with a warning naming the file
    and line; the protocols repair them (see ``iou.py``).

    Args:
        text: file content.
        where: file name used in error messages.
        line_format: ``"polygon"`` or ``"icdar2015"`` (see
            :mod:`~fasttcm.evaluation.protocols.text_lines`), or ``"auto"`` (module docstring:
            the file is a set of its own).
    """
    if _check_file_line_format(line_format) == "auto":
        line_format = choose_line_format([(where, text)], parse_gt_line)
    polygons, texts, line_nums = [], [], []
    for num, line in _lines(text):
        polygon, transcription = parse_gt_line(line, f"{where}, line {num}", line_format)
        polygons.append(polygon)
        texts.append(transcription)
        line_nums.append(num)
    if polygons:
        shapes, _ = make_polygons(polygons)
        invalid = np.flatnonzero(~shapely.is_valid(shapes))
        if len(invalid):
            logger.warning(
                f"{where}: invalid (self-intersecting or zero-area) ground-truth polygon(s) on "
                f"line(s) {[line_nums[i] for i in invalid]}; they are repaired with buffer(0)"
            )
    return ImageGroundTruth.from_annotations(polygons, texts)


def parse_detections(text: str, where: str = "<detections>") -> ImageDetections:
    """Parse the content of one ``res_<id>.txt`` file (scores NaN where absent).

    Args:
        text: file content.
        where: file name used in error messages.
    """
    return _parse_detection_lines(text, where, parse_det_line)


def _parse_detection_lines(
    text: str, where: str, parse_line: Callable[[str, str], Tuple[np.ndarray, float, str]]
) -> ImageDetections:
    """Detections of a file's lines; `parse_line` (line, location) gives one's fields."""
    polygons, scores, texts = [], [], []
    for num, line in _lines(text):
        polygon, score, transcription = parse_line(line, f"{where}, line {num}")
        polygons.append(polygon)
        scores.append(score)
        texts.append(transcription)
    return ImageDetections.from_arrays(polygons, np.array(scores, dtype=np.float64), texts)


def read_ground_truth(
    path: str, *, line_format: str = "auto", zip_limits: Optional[ZipLimits] = None
) -> Dict[str, ImageGroundTruth]:
    """Read every ground-truth file of a folder or zip; returns sample key -> ground truth.

    Args:
        path: a folder or a zip.
        line_format: ``"auto"`` (default: one rule for all the files, see the module
            docstring), ``"polygon"`` or ``"icdar2015"``.
        zip_limits: see :func:`list_sample_files`.
    """
    files = list_sample_files(path, "gt", zip_limits=zip_limits)
    if _check_file_line_format(line_format) == "auto":
        line_format = choose_line_format([(f.where, f.text) for f in files.values()], parse_gt_line)
    return {
        k: parse_ground_truth(f.text, f.where, line_format=line_format) for k, f in files.items()
    }


def read_detections(
    path: str, *, zip_limits: Optional[ZipLimits] = None
) -> Dict[str, ImageDetections]:
    """Read every detection file of a folder or zip; returns sample key -> detections."""
    return _read_sample_files(path, "res", parse_detections, zip_limits)


def _read_sample_files(
    path: str, kind: str, parse: Callable[[str, str], T], zip_limits: Optional[ZipLimits]
) -> Dict[str, T]:
    """``{sample key: parse(text, location)}`` of the files :func:`list_sample_files` finds."""
    files = list_sample_files(path, kind, zip_limits=zip_limits)
    return {k: parse(f.text, f.where) for k, f in files.items()}


# ------------------------------------------------------------------------------------------------
# End-to-end spotting detections: a transcription after the (optional) score.


def parse_spotting_detections(
    text: str, where: str = "<detections>", *, line_format: str = "polygon"
) -> ImageDetections:
    """Parse one ``res_<id>.txt`` file of spotting results (every line has a transcription).

    Args:
        text, where, line_format: as for :func:`parse_ground_truth`.
    """
    if _check_file_line_format(line_format) == "auto":
        line_format = choose_line_format([(where, text)], parse_spotting_line)
    return _parse_detection_lines(
        text, where, lambda line, where_line: parse_spotting_line(line, where_line, line_format)
    )


def read_spotting_detections(
    path: str, *, line_format: str = "auto", zip_limits: Optional[ZipLimits] = None
) -> Dict[str, ImageDetections]:
    """Read every spotting result file of a folder or zip; returns sample key -> detections.

    Args:
        path, line_format, zip_limits: as for :func:`read_ground_truth`.
    """
    files = list_sample_files(path, "res", zip_limits=zip_limits)
    if _check_file_line_format(line_format) == "auto":
        line_format = choose_line_format(
            [(f.where, f.text) for f in files.values()], parse_spotting_line
        )
    return {
        k: parse_spotting_detections(f.text, f.where, line_format=line_format)
        for k, f in files.items()
    }
