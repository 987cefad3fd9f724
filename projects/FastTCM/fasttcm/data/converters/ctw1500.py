"""SCUT-CTW1500 -> project text JSON + evaluation GT.

Native formats (those of the official SCUT-CTW1500 release), all in absolute pixels:

* Training labels, XML (``ctw1500_train_labels/0001.xml``)::

      <Annotations><image file="0001.jpg">
        <box height=".." left=".." top=".." width=".."><label>TEXT</label>
          <segs>x1,y1,...,x14,y14</segs><pts x=".." y=".."/>...</box>
      </image></Annotations>

  ``segs`` is the 14-point polygon; ``pts`` (per-character points of Annotations-v2) are not used.
* Old training labels, txt (``0001.txt``): 32 integers per line, ``xmin,ymin,xmax,ymax`` followed
  by 14 ``(dx, dy)`` offsets from ``(xmin, ymin)``. No transcription: such instances get ``""``.
* Test labels, txt (``ctw1500_test_labels/0001001.txt`` for image ``1001.jpg``)::

      x1,y1,...,x14,y14,####transcription

  The transcription follows the ``####`` marker (commas included), stripped of surrounding spaces
  as the official end-to-end evaluation reads it (a few files have ``#### ILLY YMPHONY``); ``###``
  (every Chinese instance) = don't care.

EXIF orientation: the labels refer to the *stored* pixel grid (a few images carry an EXIF
orientation and their labels follow the unrotated pixels, as other text-detection toolkits
report, which read these images without applying EXIF). The project reads pixels in the
displayed orientation, so the polygons of such images are mapped to the displayed frame
(:func:`~fasttcm.data.converters.exif_frame.map_stored_frame`).

Expected source layout (the official zips)::

    SRC/train_images/*.jpg               SRC/ctw1500_train_labels/*.xml   (or *.txt, old format)
    SRC/test_images/*.jpg                SRC/ctw1500_test_labels/*.txt

Images and label files are paired by the number in their names (``1001.jpg`` <->
``0001001.txt``).
"""

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List

import numpy as np

from ...structures.text import DONT_CARE_TEXT
from .annotations import SourceImage, TextAnnotation, make_annotation
from .exif_frame import map_stored_frame
from .source_files import (
    ConversionError,
    check_split,
    find_existing_dir,
    find_images,
    natural_key,
    read_text_lines,
)

__all__ = [
    "SPLITS",
    "parse_ctw1500_xml_file",
    "parse_ctw1500_offset_txt_file",
    "parse_ctw1500_test_txt_file",
    "parse_ctw1500_label_file",
    "collect_split",
]

SPLITS = ("train", "test")

_IMAGE_DIRS = {
    "train": ("train_images", "ctw1500_train_images/train_images", "train/text_image"),
    "test": ("test_images", "ctw1500_test_images/test_images", "test/text_image"),
}
_LABEL_DIRS = {
    "train": (
        "ctw1500_train_labels/ctw1500_train_labels",
        "ctw1500_train_labels",
        "train_labels",
        "train/text_label_curve",
    ),
    "test": ("ctw1500_test_labels", "test_labels"),
}
_TEXT_MARKER = ",####"
_OLD_FORMAT_VALUES = 32  # xmin, ymin, xmax, ymax + 14 (dx, dy) offsets


def _floats(values: List[str], path, line) -> List[float]:
    out = []
    for index, value in enumerate(values, start=1):
        try:
            out.append(float(value))
        except ValueError:
            raise ConversionError(
                path, f"coordinate {index} ({value[:40]!r}) is not a number", line
            ) from None
    return out


def parse_ctw1500_xml_file(path) -> List[TextAnnotation]:
    """Parse a training XML label file: one instance per ``<box>`` (``<label>`` + ``<segs>``)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ConversionError(path, f"malformed XML ({e})") from e
    annotations = []
    for index, box in enumerate(root.iter("box")):
        where = f"box {index}"
        segs, label = box.find("segs"), box.find("label")
        if segs is None or not (segs.text or "").strip():
            raise ConversionError(path, f"{where} has no <segs> polygon")
        coords = _floats(re.split(r"[\s,]+", segs.text.strip()), path, None)
        text = (label.text or "") if label is not None else ""
        ann = make_annotation(coords, text, text == DONT_CARE_TEXT, path=f"{path} ({where})")
        if ann is not None:
            annotations.append(ann)
    return annotations


def parse_ctw1500_offset_txt_file(path) -> List[TextAnnotation]:
    """Parse an old-format training txt file (32 values: bounding box + 14 offsets)."""
    annotations = []
    for lineno, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        values = _floats([v for v in re.split(r"[\s,]+", line.strip()) if v], path, lineno)
        if len(values) != _OLD_FORMAT_VALUES:
            raise ConversionError(
                path, f"expected {_OLD_FORMAT_VALUES} values, got {len(values)}", lineno
            )
        xmin, ymin = values[0], values[1]
        polygon = np.asarray(values[4:], dtype=np.float64).reshape(-1, 2) + (xmin, ymin)
        ann = make_annotation(polygon, "", False, path=path, line=lineno)
        if ann is not None:
            annotations.append(ann)
    return annotations


def parse_ctw1500_test_txt_file(path) -> List[TextAnnotation]:
    """Parse a test txt label file (``x1,y1,...,xn,yn,####transcription`` per line).

    The transcription is stripped of surrounding spaces; a non-numeric coordinate is a
    :class:`ConversionError` naming the file and line.
    """
    annotations = []
    for lineno, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        coords_part, marker, text = line.partition(_TEXT_MARKER)
        if not marker:
            raise ConversionError(path, "expected 'x1,y1,...,xn,yn,####transcription'", lineno)
        coords = _floats(coords_part.split(","), path, lineno)
        text = text.strip()
        ann = make_annotation(coords, text, text == DONT_CARE_TEXT, path=path, line=lineno)
        if ann is not None:
            annotations.append(ann)
    return annotations


def parse_ctw1500_label_file(path) -> List[TextAnnotation]:
    """Dispatch on the label format: ``.xml``, test txt (with ``####``) or old 32-value txt."""
    path = Path(path)
    if path.suffix.lower() == ".xml":
        return parse_ctw1500_xml_file(path)
    lines = [s for s in read_text_lines(path) if s.strip()]
    if any(_TEXT_MARKER in s for s in lines):
        return parse_ctw1500_test_txt_file(path)
    return parse_ctw1500_offset_txt_file(path)


def _number_of(name: str):
    digits = re.sub(r"\D", "", os.path.splitext(name)[0])
    return int(digits) if digits else None


def collect_split(src, split: str) -> List[SourceImage]:
    """Images of `split` ("train" or "test") under `src` with their parsed annotations."""
    check_split("CTW1500", split, SPLITS)
    what = f"CTW1500 {split}"
    image_dir = find_existing_dir(src, _IMAGE_DIRS[split], f"{what} images")
    label_dir = find_existing_dir(src, _LABEL_DIRS[split], f"{what} labels")
    labels: Dict[int, Path] = {}
    for entry in os.scandir(label_dir):
        if entry.is_file() and os.path.splitext(entry.name)[1].lower() in (".xml", ".txt"):
            number = _number_of(entry.name)
            if number is None:
                continue
            if number in labels:
                raise ValueError(
                    f"{what}: {labels[number]} and {entry.path} label the same image {number}"
                )
            labels[number] = Path(entry.path)
    images = find_images(image_dir)
    if not images:
        raise ValueError(f"{what}: no images in {image_dir}")
    out = []
    for stem in sorted(images, key=natural_key):
        number = _number_of(stem)
        if number not in labels:
            raise FileNotFoundError(
                f"{what}: no label file numbered {number} in {label_dir} for {images[stem]}"
            )
        out.append(
            SourceImage(
                path=str(images[stem]),
                file_name=images[stem].name,
                annotations=parse_ctw1500_label_file(labels[number]),
            )
        )
    return map_stored_frame(out, what)
