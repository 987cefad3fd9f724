"""Several framings of one detected outline, for a recognizer vote at inference.

A DB outline misses the word's true sides by a fraction of the text height: it cuts into the
first or last character, or leaves a margin. One crop commits to that framing. The spotter can
instead read K framings of each detection and keep the reading the recognizer is most sure of
(``TEST.SPOTTER.CROP_VARIANTS``); the framings are made here.

Each framing starts from the outline's minimum-area rectangle (long side = reading direction, as the
"rectangle" layout of :mod:`~fasttcm.structures.rectification.rectify` uses) and moves its four
sides by fixed multiples of the rectangle's height: ``(top, right, bottom, left)``, positive =
outwards. A framing listed with ``flip`` also gets its 180-degree turn (corners rolled by two),
which reads text that runs right to left on the image, i.e. upside down.

Each framing comes in one or more **shapes** (``TEST.SPOTTER.CROP_SHAPES``): ``"rectangle"``,
the quad above, and ``"band"``, a band of constant height along a parabola fitted to the outline
(:mod:`.curve_framing`), which straightens curved words that the rectangle leaves bent; bands
are cut only for outlines that bend (:data:`BAND_MIN_BEND`). The offsets mean the same in both
shapes (multiples of the text height, outwards).

Frames: pixels (x right, y down); quads are clockwise from the top-left corner of the text, the
"annotated" 4-point layout of :mod:`~fasttcm.structures.rectification.rectify`; bands are 2n-point
polygons of the "annotated" layout (top side left to right, then bottom side right to left).
"""

from typing import List, Sequence, Tuple, Union

import numpy as np
import torch

from ...structures.rectification.polygon_batch import make_clockwise, pad_polygons, signed_areas
from ...structures.rectification.quad_warp import min_area_rect_quads
from .curve_framing import band_bends, framed_bands

__all__ = [
    "CROP_SHAPES",
    "Variant",
    "framed_outlines",
    "framed_quads",
    "parse_crop_shapes",
    "parse_crop_variants",
]

CROP_SHAPES = ("rectangle", "band")
"""Framing shapes: the minimum-area rectangle's quad, or the band of :mod:`.curve_framing`."""

Variant = Tuple[float, float, float, float, bool]


def parse_crop_variants(values: Sequence[Sequence[float]]) -> List[Variant]:
    """Config rows -> variants.

    Args:
        values: rows ``(top, right, bottom, left)`` or ``(top, right, bottom, left, flip)``:
            side offsets in units of the text height (> -0.25 each: a negative offset may cut at
            most a quarter of the height on each side) and flip (0/1, also read the quad turned
            by 180 degrees).

    Raises:
        ValueError: a row of another length or an offset at or below -0.25.
    """
    variants = []
    for row in values:
        row = tuple(float(v) for v in row)
        if len(row) not in (4, 5):
            raise ValueError(
                "crop_voting: TEST.SPOTTER.CROP_VARIANTS rows are (top, right, bottom, left) "
                f"or (top, right, bottom, left, flip), got {row}"
            )
        if min(row[:4]) <= -0.25:
            raise ValueError(
                "crop_voting: TEST.SPOTTER.CROP_VARIANTS offsets must be > -0.25 text heights "
                f"(a larger cut can fold the quad), got {row}"
            )
        variants.append((row[0], row[1], row[2], row[3], bool(row[4]) if len(row) == 5 else False))
    return variants


def framed_quads(
    polygons: Sequence[Union[np.ndarray, torch.Tensor]], variants: Sequence[Variant]
) -> Tuple[List[np.ndarray], np.ndarray]:
    """All framings of N outlines.

    Args:
        polygons: N (K_i, 2) outlines (x, y), pixels, any vertex order; K_i >= 3.
        variants: from :func:`parse_crop_variants`.

    Returns:
        quads: M (4, 2) float64 quads (annotated layout), grouped by polygon: first every
            framing of polygon 0 (variants in order, each followed by its 180-degree turn when
            flipped), then polygon 1, ...
        owner: (M,) int64 index of the polygon each quad frames.
    """
    if not polygons:
        return [], np.zeros(0, dtype=np.int64)
    points, lengths, _ = pad_polygons(polygons, None)
    points = make_clockwise(points, lengths, signed_areas(points, lengths))
    rect = min_area_rect_quads(points).double()  # (N, 4, 2) TL, TR, BR, BL
    top_left, top_right, bottom_right, bottom_left = rect.unbind(1)
    along = top_right - top_left  # reading direction
    down = bottom_left - top_left
    length = along.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    height = down.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    unit_along, unit_down = along / length, down / height
    framings = []
    for top, right, bottom, left, flip in variants:
        shift_top = -top * height * unit_down
        shift_bottom = bottom * height * unit_down
        shift_left = -left * height * unit_along
        shift_right = right * height * unit_along
        quad = torch.stack(
            [
                top_left + shift_top + shift_left,
                top_right + shift_top + shift_right,
                bottom_right + shift_bottom + shift_right,
                bottom_left + shift_bottom + shift_left,
            ],
            dim=1,
        )
        framings.append(quad)
        if flip:
            framings.append(quad.roll(2, dims=1))
    stacked = torch.stack(framings, dim=1)  # (N, V', 4, 2)
    per_polygon = stacked.shape[1]
    quads = [q.numpy() for q in stacked.reshape(-1, 4, 2).cpu()]
    owner = np.repeat(np.arange(len(polygons), dtype=np.int64), per_polygon)
    return quads, owner


BAND_MIN_BEND = 0.08
"""With both shapes, bands are cut only for outlines whose centre line bends by more than this
many band heights (:func:`~.curve_framing.band_bends`); a straighter outline's band is its
rectangle again. On
synthetic_spotting_val about 60 % of the detections of curved words and 15 % of the others bend
more; cutting bands for all outlines, or above 0.03, gave the same end-to-end hmean within 0.4
points (two spotters) at up to twice the reading cost."""

_NO_FRAMING = np.zeros((0, 2), dtype=np.float64)  # gives no crop, so no reading and no vote


def parse_crop_shapes(values: Sequence[str]) -> Tuple[str, ...]:
    """Config list -> shapes, checked.

    Raises:
        ValueError: an empty list, a repeated shape, or one not in :data:`CROP_SHAPES`.
    """
    shapes = tuple(str(v) for v in values)
    unknown = [s for s in shapes if s not in CROP_SHAPES]
    if not shapes or unknown or len(set(shapes)) != len(shapes):
        raise ValueError(
            "crop_voting: TEST.SPOTTER.CROP_SHAPES must list distinct shapes out of "
            f"{CROP_SHAPES}, got {list(values)}"
        )
    return shapes


def framed_outlines(
    polygons: Sequence[Union[np.ndarray, torch.Tensor]],
    variants: Sequence[Variant],
    shapes: Sequence[str] = ("rectangle",),
) -> Tuple[List[np.ndarray], np.ndarray]:
    """Every framing of N outlines in every shape, grouped by outline.

    Args:
        polygons: N (K_i, 2) outlines (x, y), pixels, any vertex order; K_i >= 3.
        variants: from :func:`parse_crop_variants`.
        shapes: from :func:`parse_crop_shapes`.

    Returns:
        framings: M polygons of the "annotated" layout (quads for "rectangle", 2n-point bands for
            "band"): first every framing of outline 0 (the shapes in order, each with all its
            variants as :func:`framed_quads` orders them), then outline 1, ... When both shapes
            are read, the band framings of a straight outline (bending by at most
            :data:`BAND_MIN_BEND`) are empty (0, 2) arrays, which give no crop: its band would
            be its rectangle again.
        owner: (M,) int64 index of the outline each framing belongs to.
    """
    if not polygons:
        return [], np.zeros(0, dtype=np.int64)
    # with rectangles read as well, a straight outline's band (its rectangle again) is not cut
    skip_straight = "band" in shapes and "rectangle" in shapes
    curved = band_bends(polygons) > BAND_MIN_BEND if skip_straight else None
    per_shape = []
    for shape in shapes:
        framings, owner = (framed_quads if shape == "rectangle" else framed_bands)(
            polygons, variants
        )
        if shape == "band" and skip_straight:
            framings = [f if curved[o] else _NO_FRAMING for f, o in zip(framings, owner)]
        per_shape.append(framings)
    count = len(per_shape[0]) // len(polygons)  # framings per outline in each shape
    ordered = [
        framing
        for i in range(len(polygons))
        for framings in per_shape
        for framing in framings[i * count : (i + 1) * count]
    ]
    owner = np.repeat(np.arange(len(polygons), dtype=np.int64), count * len(per_shape))
    return ordered, owner
