"""Total-Text -> project text JSON + evaluation GT.

Native format (the legacy/official ``.txt`` ground truth of the Total-Text release): one
``poly_gt_<image stem>.txt`` per image, one record per text instance::

    x: [[115 503 494 115]], y: [[322 346 426 404]], ornt: [u'm'], transcriptions: [u'nauGHTY']

``x``/``y`` hold the polygon's vertex coordinates (absolute pixels, any number of vertices);
``ornt`` is c (curved), h (horizontal), m (multi-oriented) or ``#`` (don't care); a transcription
of ``#`` marks a don't-care region and becomes ``###`` here. A record may wrap over several lines:
a new record starts at a line beginning with ``x:``.

EXIF orientation: which frame the ground truth uses for an image with an EXIF orientation other
than 1 is not documented, so such an image is converted as written, with a warning naming it
(:func:`~fasttcm.data.converters.exif_frame.warn_unverified_frame`).

The official ``.mat`` ground truth (``groundtruth_text.zip``, folder ``Polygon``:
``poly_gt_<image stem>.mat``, a cell array ``polygt`` or ``gt`` of rows ``['x:', xs, 'y:', ys,
transcription, orientation]``) is read too, by :mod:`~fasttcm.data.converters.totaltext_mat`
(which says what it supports), when no ``.txt`` ground-truth folder is found. Each image's file is
read by its suffix.

Expected source layout (``totaltext.zip`` images + ``txt_format.zip`` or ``groundtruth_text.zip``
ground truth; the first ground-truth folder found is used, in this order)::

    SRC/Images/{Train,Test}/img*.jpg
    SRC/txt_format/{Train,Test}/poly_gt_img*.txt     (or SRC/Groundtruth/Text/{Train,Test})
    SRC/Groundtruth/Polygon/{Train,Test}/poly_gt_img*.mat
                          (or SRC/Groundtruth/Text/Polygon/{Train,Test}, SRC/Polygon/{Train,Test})
"""

import ast
import re
from pathlib import Path
from typing import List

from ...structures.text import DONT_CARE_TEXT
from .annotations import SourceImage, TextAnnotation, collect_paired_images, make_annotation
from .exif_frame import warn_unverified_frame
from .source_files import ConversionError, check_split, find_existing_dir, read_text_lines
from .totaltext_mat import parse_totaltext_mat_file

__all__ = [
    "SPLITS",
    "parse_totaltext_record",
    "parse_totaltext_gt_file",
    "parse_totaltext_file",
    "collect_split",
]

SPLITS = ("train", "test")

_NATIVE_SPLIT = {"train": "Train", "test": "Test"}
_TOTALTEXT_IGNORE = "#"

_RECORD = re.compile(
    r"^x:\s*\[\[(?P<x>[^\]]*)\]\]\s*,\s*"
    r"y:\s*\[\[(?P<y>[^\]]*)\]\]\s*,\s*"
    r"ornt:\s*(?P<ornt>\[[^\]]*\])\s*,\s*"
    r"transcriptions:\s*(?P<text>\[.*\])\s*$",
    re.DOTALL,
)
_QUOTED_LIST = re.compile(r"^\[\s*u?(['\"])(?P<s>.*)\1\s*\]$", re.DOTALL)


def _numbers(field: str, name: str, path, line: int) -> List[float]:
    tokens = [t for t in re.split(r"[\s,]+", field.strip()) if t]
    try:
        return [float(t) for t in tokens]
    except ValueError as e:
        raise ConversionError(path, f"non-numeric value in {name} ({e})", line) from e


def _string_list(field: str, name: str, path, line: int) -> List[str]:
    """``[u'a']``, ``[u"it's"]`` or ``[]`` -> list of str (Python literals, u prefix allowed)."""
    try:
        value = ast.literal_eval(field)
    except (ValueError, SyntaxError):
        # Unescaped quotes inside the string (e.g. [u'it's']): take everything between the
        # outer quotes.
        m = _QUOTED_LIST.match(field.strip())
        if m is None:
            raise ConversionError(path, f"cannot parse {name} {field!r}", line) from None
        return [m.group("s")]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConversionError(path, f"{name} must be a list of strings, got {field!r}", line)
    return value


def parse_totaltext_record(record: str, path="<string>", line: int = 0):
    """Parse one (possibly multi-line, already joined) Total-Text record.

    Returns:
        A :class:`TextAnnotation` (polygon (N, 2) float, absolute pixels, vertices in file order),
        or None when the polygon cannot be represented (< 3 points or non-finite; a warning
        names the file and line).

    Raises:
        ConversionError: the record does not follow the format, or x and y differ in length.
    """
    m = _RECORD.match(record.strip())
    if m is None:
        raise ConversionError(
            path, "expected 'x: [[...]], y: [[...]], ornt: [...], transcriptions: [...]'", line
        )
    xs = _numbers(m.group("x"), "x", path, line)
    ys = _numbers(m.group("y"), "y", path, line)
    if len(xs) != len(ys):
        raise ConversionError(path, f"x has {len(xs)} values but y has {len(ys)}", line)
    ornt = _string_list(m.group("ornt"), "ornt", path, line)
    texts = _string_list(m.group("text"), "transcriptions", path, line)
    # Several list items come from a transcription with a comma split by the annotation tool.
    text = ",".join(texts) if texts else _TOTALTEXT_IGNORE
    ignore = text == _TOTALTEXT_IGNORE or ornt == [_TOTALTEXT_IGNORE]
    return make_annotation(
        list(zip(xs, ys)), DONT_CARE_TEXT if ignore else text, ignore, path=path, line=line
    )


def parse_totaltext_gt_file(path) -> List[TextAnnotation]:
    """Parse one ``poly_gt_<stem>.txt`` file into its instances (file order)."""
    records = []  # (line number of the record's first line, [its lines])
    for lineno, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("x:") or not records:
            records.append((lineno, [line]))
        else:
            records[-1][1].append(line)
    annotations = []
    for lineno, lines in records:
        ann = parse_totaltext_record(" ".join(s.strip() for s in lines), path, lineno)
        if ann is not None:
            annotations.append(ann)
    return annotations


def parse_totaltext_file(path) -> List[TextAnnotation]:
    """Parse one ground-truth file by its suffix: ``.mat`` (official MATLAB) or ``.txt``."""
    if Path(path).suffix.lower() == ".mat":
        return parse_totaltext_mat_file(path)
    return parse_totaltext_gt_file(path)


def collect_split(src, split: str) -> List[SourceImage]:
    """Images of `split` ("train" or "test") under `src` with their parsed annotations."""
    check_split("Total-Text", split, SPLITS)
    native = _NATIVE_SPLIT[split]
    image_dir = find_existing_dir(
        src,
        (f"Images/{native}", f"totaltext/Images/{native}", f"{split}_images"),
        f"Total-Text {split} images",
    )
    gt_dir = find_existing_dir(
        src,
        (
            f"txt_format/{native}",
            f"Groundtruth/Text/{native}",
            f"Groundtruth/Text/Legacy/{native}",
            f"{split}_gts",
            f"Groundtruth/Polygon/{native}",
            f"Groundtruth/Text/Polygon/{native}",
            f"Polygon/{native}",
        ),
        f"Total-Text {split} ground truth (.txt or .mat format)",
    )
    images = collect_paired_images(
        image_dir,
        gt_dir,
        lambda stem: tuple(
            f"{prefix}{stem}{suffix}"
            for suffix in (".txt", ".mat")
            for prefix in ("poly_gt_", "gt_")
        ),
        f"Total-Text {split}",
        parse_totaltext_file,
    )
    return warn_unverified_frame(images, f"Total-Text {split}")
