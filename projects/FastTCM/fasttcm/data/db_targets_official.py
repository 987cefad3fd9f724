"""DBNet training targets exactly as the official TCM-DBNet computes them (MMOCR 0.4
``DBNetTargets``, shrink ratio 0.4); ``INPUT.DB_TARGETS_IMPL "official"``.

The project's own variant (:mod:`.db_targets`, ``"shapely"``) keeps exact geometry in the
continuous pixel frame; this one reproduces the official maps, integer arithmetic and all:

1. **Invalid polygons become ignored:** a polygon whose shoelace area is below 1 px², or whose
   minimum-area rectangle (of the coordinates truncated to integers) has a side below
   ``min_text_size`` (official ``min_short_size``, 8), is treated like '###' text.
2. **Kernels (``shrink_map``):** the coordinates are truncated to integers (``astype(int32)``),
   the offset is ``d = int(A (1 - r²) / (L + 0.001) + 0.5)`` (A: area of the integer polygon, L:
   its perimeter), and Clipper offsets the integer polygon by ``-d`` with round joins. Only the
   first resulting path is filled (``cv2.fillPoly``); an empty result makes the polygon ignored.
3. **``shrink_mask``:** 1, with every ignored polygon (flagged, invalid or without kernel) filled
   with 0 from its integer-truncated coordinates.
4. **Threshold map** for the remaining polygons, each with its own float offset
   ``D = A (1 - r²) / L`` (area and perimeter of the float polygon, no rounding):

   - Clipper expands the polygon by ``D`` (round joins; Clipper truncates the float coordinates);
     its first path, filled, is the polygon's part of ``thresh_mask``;
   - over the expanded path's bounding box, every pixel gets ``min(1, e / D)`` with ``e`` the
     smallest of its distances to the polygon's edges; ``1 - that`` is max-accumulated into the
     map, which is finally mapped onto ``[thresh_min, thresh_max]``;
   - the edge distance is DBNet's triangle formula (:func:`official_edge_distance`): the
     perpendicular distance to the edge's line when the pixel sees the edge under an angle of at
     least 90°, else the distance to the nearer end point. It equals the point-to-segment distance
     inside the circle over the edge as diameter, and exceeds it outside (beside a short edge).

Coordinate frame: the official one. Map pixel (row i, column j) *is* the point (x=j, y=i): the
polygon's coordinates are used as they come, with no half-pixel shift, so a box from x=10 to x=110
covers the 101 columns 10..110 before shrinking. The official post-processing reports contours in
the same frame (:class:`~fasttcm.modeling.text_heads.postprocess.DBPostprocessor`, "official").

Work per polygon is one Clipper call, one ``cv2.fillPoly`` per map and numpy over its box (edges
in chunks); there is no loop over pixels.
"""

from typing import Dict, Sequence

import cv2
import numpy as np
import torch
from shapely.geometry import Polygon

from ..utils.clipper import clipper_offset
from .db_targets import as_polygon_points, check_db_target_arguments

__all__ = [
    "make_db_targets_official",
    "official_edge_distance",
    "official_kernel_offset",
]

_WHERE = "db_targets_official.make_db_targets_official"
# Upper bound on (edges x pixels) distances held at once by the threshold-map computation.
_MAX_DISTANCE_ELEMENTS = 1 << 22
_EPS32 = float(np.finfo(np.float32).eps)


def official_kernel_offset(points_int: np.ndarray, shrink_ratio: float) -> int:
    """The kernel offset of DBNetTargets: ``int(A (1 - r²) / (L + 0.001) + 0.5)`` on the
    integer polygon (A: its area, L: its perimeter).

    Args:
        points_int: (N, 2) int32 (x, y) vertices.
    """
    area = Polygon(points_int).area
    perimeter = cv2.arcLength(points_int.reshape(-1, 1, 2), True)
    return int(area * (1.0 - shrink_ratio * shrink_ratio) / (perimeter + 0.001) + 0.5)


def official_edge_distance(
    xs: np.ndarray, ys: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """DBNet's point-to-edge distance, for every point and edge, as the official targets compute
    it (float64; NaN where rounding pushes the cosine beyond 1, as there).

    With ``a``, ``b`` the distances from the point to the edge's ends and ``c`` the edge's length,
    ``n = (c² - a² - b²) / (eps + 2ab)`` is minus the cosine of the angle under which the point
    sees the edge. ``n < 0`` (acute angle): ``min(a, b)``; otherwise the perpendicular distance
    ``sqrt(a² b² (1 - n²) / (eps + c²))``. ``eps`` is float32's machine epsilon.

    Args:
        xs, ys: (P,) point coordinates.
        starts, ends: (E, 2) edge end points.

    Returns:
        (E, P) distances.
    """
    x1, y1 = starts[:, 0:1], starts[:, 1:2]
    x2, y2 = ends[:, 0:1], ends[:, 1:2]
    a2 = np.square(xs - x1) + np.square(ys - y1)
    b2 = np.square(xs - x2) + np.square(ys - y2)
    c2 = np.square(x1 - x2) + np.square(y1 - y2)
    with np.errstate(invalid="ignore", divide="ignore"):
        neg_cos = (c2 - a2 - b2) / (_EPS32 + 2.0 * np.sqrt(a2 * b2))
        sin2 = np.nan_to_num(1.0 - np.square(neg_cos))
        result = np.sqrt(a2 * b2 * sin2 / (_EPS32 + c2))
        acute = neg_cos < 0
        result[acute] = np.sqrt(np.fmin(a2, b2))[acute]
    return result


def make_db_targets_official(
    polygons: Sequence[np.ndarray],
    ignore: Sequence[bool],
    height: int,
    width: int,
    *,
    shrink_ratio: float = 0.4,
    thresh_min: float = 0.3,
    thresh_max: float = 0.7,
    min_text_size: float = 8.0,
) -> Dict[str, torch.Tensor]:
    """Compute the four DB target maps of one image as the official TCM-DBNet does.

    Same signature and outputs as :func:`~fasttcm.data.db_targets.make_db_targets`.

    Args:
        polygons: text polygons, each an (N_i, 2) array of (x, y) in image pixels (the official
            frame: pixel (i, j) is the point (j, i); see the module docstring).
        ignore: one flag per polygon; True for "don't care" text (e.g. '###').
        height, width: size of the image the maps cover, in pixels.
        shrink_ratio: DB shrink ratio ``r`` (0.4).
        thresh_min, thresh_max: the threshold map's range (0.3, 0.7).
        min_text_size: official ``min_short_size``: polygons whose integer min-area rectangle has
            a side below this (pixels) are ignored.

    Returns:
        dict of float32 Tensors, each of shape (height, width): "shrink_map" (0/1),
        "shrink_mask" (0/1), "thresh_map" (in [thresh_min, thresh_max]), "thresh_mask" (0/1).

    Raises:
        ValueError: on a malformed polygon (not an (N, 2) finite array), a length mismatch
            between ``polygons`` and ``ignore``, or bad sizes/parameters.
    """
    height, width = check_db_target_arguments(
        polygons, ignore, height, width, shrink_ratio, thresh_min, thresh_max, where=_WHERE
    )
    points = [as_polygon_points(p, i, where=_WHERE) for i, p in enumerate(polygons)]

    shrink_map = np.zeros((height, width), dtype=np.float32)
    shrink_mask = np.ones((height, width), dtype=np.uint8)
    border = np.zeros((height, width), dtype=np.float32)  # 1 - e/D in [0, 1], before rescaling
    thresh_mask = np.zeros((height, width), dtype=np.uint8)

    ignored = [bool(flag) or _is_invalid(p, min_text_size) for p, flag in zip(points, ignore)]
    for index, polygon in enumerate(points):  # one Clipper / OpenCV call per polygon
        if ignored[index]:
            continue
        kernel = _kernel(polygon, shrink_ratio)
        if kernel is None:
            ignored[index] = True
            continue
        cv2.fillPoly(shrink_map, [kernel.astype(np.int32)], 1.0)
    for polygon, is_ignored in zip(points, ignored):
        if is_ignored:
            cv2.fillPoly(shrink_mask, [polygon.astype(np.int32)], 0)
    for polygon, is_ignored in zip(points, ignored):
        if not is_ignored:
            _draw_border(border, thresh_mask, polygon, shrink_ratio)

    thresh_map = border * np.float32(thresh_max - thresh_min) + np.float32(thresh_min)
    maps = {
        "shrink_map": shrink_map,
        "shrink_mask": shrink_mask.astype(np.float32),
        "thresh_map": thresh_map.astype(np.float32),
        "thresh_mask": thresh_mask.astype(np.float32),
    }
    return {name: torch.from_numpy(value) for name, value in maps.items()}


def _is_invalid(polygon: np.ndarray, min_text_size: float) -> bool:
    """Official ``invalid_polygon``: |shoelace area| < 1, or an integer min-area rectangle side
    below `min_text_size`."""
    x, y = polygon[:, 0], polygon[:, 1]
    signed_area = 0.5 * float(np.sum((np.roll(x, -1) - x) * (np.roll(y, -1) + y)))
    if abs(signed_area) < 1:
        return True
    (_, _), (side_a, side_b), _ = cv2.minAreaRect(polygon.astype(np.int32))
    return min(side_a, side_b) < min_text_size


def _kernel(polygon: np.ndarray, shrink_ratio: float):
    """The first path of the integer polygon shrunk by the rounded official offset, or None."""
    points_int = polygon.astype(np.int32)
    paths = clipper_offset(points_int, -official_kernel_offset(points_int, shrink_ratio))
    return paths[0] if paths else None


def _draw_border(
    border: np.ndarray, thresh_mask: np.ndarray, polygon: np.ndarray, shrink_ratio: float
) -> None:
    """Official ``draw_border_map`` of one polygon: max-accumulate ``1 - min(1, e / D)`` over the
    expanded polygon's box into `border` and fill the expanded polygon into `thresh_mask`."""
    shape = Polygon(polygon)
    distance = shape.area * (1.0 - shrink_ratio**2) / shape.length
    paths = clipper_offset(polygon, distance)
    padded = paths[0] if paths else polygon.astype(np.int32).astype(np.int64)
    x_min, y_min = (int(v) for v in padded.min(axis=0))
    x_max, y_max = (int(v) for v in padded.max(axis=0))

    canvas_h, canvas_w = border.shape
    if x_max < 0 or y_max < 0:
        return  # the expanded box lies left of / above the image: the official code stops here
    cv2.fillPoly(thresh_mask, [padded.astype(np.int32)], 1)
    if x_min > canvas_w - 1 or y_min > canvas_h - 1:
        # Right of / below the image. The official code writes values of the wrong box column
        # (negative slicing) into the last column here; nothing is written instead.
        return
    x0, x1 = max(0, x_min), min(x_max, canvas_w - 1)
    y0, y1 = max(0, y_min), min(y_max, canvas_h - 1)

    # The box's pixels that are on the canvas, in the box's own frame (origin at x_min, y_min).
    cols = np.arange(x0 - x_min, x1 - x_min + 1, dtype=np.float64)
    rows = np.arange(y0 - y_min, y1 - y_min + 1, dtype=np.float64)
    xs, ys = np.meshgrid(cols, rows)
    local = polygon - np.array([x_min, y_min], dtype=np.float64)
    nearest = _min_edge_distance(xs.ravel(), ys.ravel(), local, np.roll(local, -1, axis=0))
    ratio = np.clip(nearest.reshape(xs.shape) / distance, 0.0, 1.0).astype(np.float32)
    region = border[y0 : y1 + 1, x0 : x1 + 1]
    np.fmax(np.float32(1.0) - ratio, region, out=region)


def _min_edge_distance(
    xs: np.ndarray, ys: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Minimum over edges of :func:`official_edge_distance`, NaN-propagating like ``np.min``;
    edges in chunks to bound memory. Returns (P,) float64."""
    chunk = max(1, _MAX_DISTANCE_ELEMENTS // max(xs.size, 1))
    best = None
    for first in range(0, len(starts), chunk):
        part = official_edge_distance(
            xs, ys, starts[first : first + chunk], ends[first : first + chunk]
        ).min(axis=0)
        best = part if best is None else np.minimum(best, part)
    return best
