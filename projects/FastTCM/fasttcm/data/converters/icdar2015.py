"""ICDAR 2015 (RRC Challenge 4, incidental scene text) -> project text JSON + evaluation GT.

Native format (the official RRC Challenge 4 ground truth): one ``gt_img_<n>.txt`` per image
``img_<n>.jpg``, one word per line::

    x1,y1,x2,y2,x3,y3,x4,y4,transcription

four corners (clockwise on screen, absolute pixels); everything after the 8th comma is the
transcription, commas included, not stripped; ``###`` = don't care. UTF-8, possibly with a BOM.

EXIF orientation: the official images (Google Glass frames) carry none as far as known; which
frame the annotation uses for an image that does is not documented, so such an image is
converted as written, with a warning naming it
(:func:`~fasttcm.data.converters.exif_frame.warn_unverified_frame`).

Expected source layout (the official zips, each extracted into a folder of the same name)::

    SRC/ch4_training_images/img_*.jpg
    SRC/ch4_training_localization_transcription_gt/gt_img_*.txt
    SRC/ch4_test_images/img_*.jpg
    SRC/Challenge4_Test_Task4_GT/gt_img_*.txt      (or Challenge4_Test_Task1_GT)
"""

from typing import List

from ...structures.text import DONT_CARE_TEXT
from .annotations import SourceImage, TextAnnotation, collect_paired_images, make_annotation
from .exif_frame import warn_unverified_frame
from .source_files import ConversionError, check_split, find_existing_dir, read_text_lines

__all__ = ["SPLITS", "parse_icdar2015_gt_file", "collect_split"]

SPLITS = ("train", "test")

_IMAGE_DIRS = {
    "train": ("ch4_training_images", "train_images", "imgs/training"),
    "test": ("ch4_test_images", "test_images", "imgs/test"),
}
_GT_DIRS = {
    "train": ("ch4_training_localization_transcription_gt", "train_gts", "annotations/training"),
    "test": (
        "Challenge4_Test_Task4_GT",
        "Challenge4_Test_Task1_GT",
        "ch4_test_localization_transcription_gt",
        "test_gts",
        "annotations/test",
    ),
}
_NUM_COORDS = 8


def parse_icdar2015_gt_file(path) -> List[TextAnnotation]:
    """Parse one ``gt_img_<n>.txt``.

    Returns:
        The file's instances in line order; polygons are (4, 2) float arrays (absolute pixels,
        corner order as annotated).

    Raises:
        ConversionError: a non-empty line without 8 numeric coordinates and a transcription;
            the message names the file and line.
    """
    annotations = []
    for lineno, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.split(",", _NUM_COORDS)
        if len(parts) <= _NUM_COORDS:
            raise ConversionError(
                path,
                f"expected 8 coordinates and a transcription, got {len(parts)} field(s)",
                lineno,
            )
        try:
            coords = [float(p) for p in parts[:_NUM_COORDS]]
        except ValueError as e:
            raise ConversionError(path, f"non-numeric coordinate ({e})", lineno) from e
        text = parts[_NUM_COORDS]
        ann = make_annotation(coords, text, text == DONT_CARE_TEXT, path=path, line=lineno)
        if ann is not None:
            annotations.append(ann)
    return annotations


def collect_split(src, split: str) -> List[SourceImage]:
    """Images of `split` ("train" or "test") under `src` with their parsed annotations."""
    check_split("ICDAR 2015", split, SPLITS)
    image_dir = find_existing_dir(src, _IMAGE_DIRS[split], f"ICDAR 2015 {split} images")
    gt_dir = find_existing_dir(src, _GT_DIRS[split], f"ICDAR 2015 {split} ground truth")
    what = f"ICDAR 2015 {split}"
    images = collect_paired_images(
        image_dir, gt_dir, lambda stem: (f"gt_{stem}.txt",), what, parse_icdar2015_gt_file
    )
    return warn_unverified_frame(images, what)
