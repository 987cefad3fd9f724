"""MSRA-TD500 -> project text JSON + evaluation GT.

Native format: one ``<image stem>.gt`` next to each image, one text line per row, space
separated::

    index difficult x y w h theta

``(x, y)`` is the top-left corner and ``(w, h)`` the size of the text line's rectangle *before*
rotation (absolute pixels); the rectangle is rotated about its centre by ``theta`` radians, in the
image frame (x right, y down), so a positive ``theta`` turns it clockwise on screen. A corner at
offset ``(u, v)`` from the centre ends up at ``(cx + u cos(theta) - v sin(theta),
cy + u sin(theta) + v cos(theta))``. ``difficult = 1`` marks a don't-care line (-> ``ignore``).

MSRA-TD500 has no transcriptions: instances get the text ``""`` (don't-care ones ``"###"``),
and the split metadata says ``has_transcriptions=False``.

Polygons are the 4 rotated corners in the order top-left, top-right, bottom-right, bottom-left of
the unrotated rectangle (clockwise on screen). (In detectron2's XYWHA convention the same box is
``(cx, cy, w, h, -degrees(theta))``: detectron2 angles are counter-clockwise.)

EXIF orientation: the ``.gt`` coordinates refer to the *stored* pixel grid. A few photos carry an
EXIF orientation (test ``IMG_2120`` and ``IMG_2177``: 6, turn 90 degrees clockwise), and the
project reads pixels in the displayed orientation (:mod:`fasttcm.data.image_io`), so the corner
polygons of such images are mapped to the displayed frame
(:func:`~fasttcm.data.converters.exif_frame.map_stored_frame`); the rectangles themselves are not
rewritten, only their 4 corners.

Expected source layout (the official archive)::

    SRC/train/IMG_*.JPG + IMG_*.gt
    SRC/test/IMG_*.JPG + IMG_*.gt
"""

from typing import List

import numpy as np

from ...structures.text import DONT_CARE_TEXT
from .annotations import SourceImage, TextAnnotation, collect_paired_images, make_annotation
from .exif_frame import map_stored_frame
from .source_files import ConversionError, check_split, find_existing_dir, read_text_lines

__all__ = [
    "SPLITS",
    "td500_rects_to_polygons",
    "parse_msra_td500_gt_file",
    "collect_split",
]

SPLITS = ("train", "test")
_NUM_FIELDS = 7  # index difficult x y w h theta

# Unit-square corners relative to the centre: TL, TR, BR, BL (y down).
_CORNERS = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])


def td500_rects_to_polygons(rects: np.ndarray) -> np.ndarray:
    """Rotated TD500 rectangles -> corner polygons.

    Args:
        rects: (K, 5) array of ``x, y, w, h, theta`` (top-left corner before rotation, size,
            angle in radians, positive = clockwise on screen), absolute pixels.

    Returns:
        (K, 4, 2) float64 corners TL, TR, BR, BL, absolute pixels.
    """
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 5)
    x, y, w, h, theta = rects.T
    center = np.stack([x + w / 2, y + h / 2], axis=1)[:, None, :]  # (K, 1, 2)
    offsets = _CORNERS[None] * np.stack([w, h], axis=1)[:, None, :]  # (K, 4, 2) as (u, v)
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
    u, v = offsets[..., 0], offsets[..., 1]
    rotated = np.stack([u * cos - v * sin, u * sin + v * cos], axis=-1)
    return center + rotated


def parse_msra_td500_gt_file(path) -> List[TextAnnotation]:
    """Parse one ``.gt`` file into its instances (file order)."""
    rows, linenos = [], []
    for lineno, line in enumerate(read_text_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != _NUM_FIELDS:
            raise ConversionError(
                path,
                f"expected 7 values 'index difficult x y w h theta', got {len(fields)}",
                lineno,
            )
        try:
            rows.append([float(f) for f in fields])
        except ValueError as e:
            raise ConversionError(path, f"non-numeric value ({e})", lineno) from e
        if rows[-1][1] not in (0.0, 1.0):
            raise ConversionError(path, f"difficult flag must be 0 or 1, got {fields[1]}", lineno)
        linenos.append(lineno)
    if not rows:
        return []
    table = np.asarray(rows)
    polygons = td500_rects_to_polygons(table[:, 2:7])
    annotations = []
    for polygon, difficult, lineno in zip(polygons, table[:, 1], linenos):
        ignore = bool(difficult)
        ann = make_annotation(
            polygon, DONT_CARE_TEXT if ignore else "", ignore, path=path, line=lineno
        )
        if ann is not None:
            annotations.append(ann)
    return annotations


def collect_split(src, split: str) -> List[SourceImage]:
    """Images of `split` ("train" or "test") under `src` with their parsed annotations.

    Polygons are in the displayed frame of each image (EXIF orientation applied, see above).
    """
    check_split("MSRA-TD500", split, SPLITS)
    split_dir = find_existing_dir(
        src, (split, split.capitalize(), f"MSRA-TD500/{split}"), f"MSRA-TD500 {split}"
    )
    what = f"MSRA-TD500 {split}"
    images = collect_paired_images(
        split_dir, split_dir, lambda stem: (f"{stem}.gt",), what, parse_msra_td500_gt_file
    )
    return map_stored_frame(images, what)
