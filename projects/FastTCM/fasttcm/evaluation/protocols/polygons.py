"""Polygon geometry shared by the text-detection protocols (shapely 2, vectorized).

Coordinate frame: every polygon is an ``(N, 2)`` float array of vertices ``(x, y)`` in absolute
pixels of the original image (x to the right, y down), in the order of the file or model output.
Vertex orientation (clockwise or not) never matters here: areas and intersections are
orientation-free.

Nothing here imports detectron2.
"""

from typing import Sequence, Tuple

import numpy as np
import shapely
from shapely.errors import GEOSException

__all__ = [
    "as_vertex_array",
    "is_buildable",
    "make_polygons",
    "make_ground_truth_polygons",
    "repair_polygons",
    "pairwise_intersection_areas",
]

_MULTIPOLYGON = 6  # shapely.GeometryType.MULTIPOLYGON


def as_vertex_array(points) -> np.ndarray:
    """Return `points` as a float64 ``(N, 2)`` array of (x, y) vertices.

    Args:
        points: an ``(N, 2)`` array-like, a flat ``(2N,)`` sequence ``x1, y1, ..., xN, yN``, or a
            torch tensor of either shape.

    Raises:
        ValueError: if the input has an odd number of values or a shape other than the two above.
    """
    if hasattr(points, "detach"):  # torch.Tensor, without importing torch here
        points = points.detach().cpu().numpy()
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1:
        if arr.size % 2:
            raise ValueError(f"a flat polygon needs an even number of values, got {arr.size}")
        arr = arr.reshape(-1, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"a polygon must have shape (N, 2), got {arr.shape}")
    return arr


def is_buildable(vertices: np.ndarray) -> bool:
    """Whether an ``(N, 2)`` vertex array can form a polygon: N >= 3, all coordinates finite."""
    return len(vertices) >= 3 and bool(np.isfinite(vertices).all())


def make_polygons(vertex_arrays: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """Build shapely polygons from vertex arrays in one vectorized call.

    A polygon that cannot be built (fewer than 3 vertices, or a NaN/inf coordinate) becomes an
    empty polygon and is flagged in `buildable`; validity (self-intersection, zero area) is left to
    the caller (``shapely.is_valid``), since protocols treat invalid polygons differently.

    Args:
        vertex_arrays: K arrays of shape ``(N_k, 2)`` (absolute pixels).

    Returns:
        polygons: object array ``(K,)`` of ``shapely.Polygon``.
        buildable: bool array ``(K,)``.
    """
    arrays = [as_vertex_array(v) for v in vertex_arrays]
    num = len(arrays)
    polygons = np.full(num, shapely.Polygon(), dtype=object)
    buildable = np.array([is_buildable(a) for a in arrays], dtype=bool).reshape(num)
    ok = np.flatnonzero(buildable)
    if len(ok):
        coords = np.concatenate([arrays[i] for i in ok], axis=0)
        ring_index = np.repeat(np.arange(len(ok)), [len(arrays[i]) for i in ok])
        rings = shapely.linearrings(coords, indices=ring_index)
        polygons[ok] = shapely.polygons(rings)
    return polygons, buildable


def make_ground_truth_polygons(vertex_arrays: Sequence[np.ndarray]) -> np.ndarray:
    """:func:`make_polygons` for ground truth, where every polygon must be buildable.

    Raises:
        ValueError: naming the indices of polygons with fewer than 3 vertices or non-finite
            coordinates.
    """
    polygons, buildable = make_polygons(vertex_arrays)
    if not buildable.all():
        bad = np.flatnonzero(~buildable).tolist()
        raise ValueError(
            f"ground-truth polygon(s) {bad} have fewer than 3 vertices or non-finite coordinates"
        )
    return polygons


def repair_polygons(polygons: np.ndarray) -> np.ndarray:
    """Repair invalid polygons as MMOCR does (``poly_make_valid``).

    See docs/protocols.md, "MMOCR hmean-iou".

    Valid polygons are returned unchanged; an invalid one becomes ``buffer(0)``, and when that is a
    MultiPolygon (e.g. both lobes of a figure eight survive) its convex hull.

    Args:
        polygons: object array ``(K,)`` of shapely polygons.

    Returns:
        object array ``(K,)`` of shapely geometries (polygons, possibly empty).
    """
    polygons = np.asarray(polygons, dtype=object).copy()
    invalid = ~shapely.is_valid(polygons)
    if invalid.any():
        fixed = shapely.buffer(polygons[invalid], 0)
        multi = shapely.get_type_id(fixed) == _MULTIPOLYGON
        fixed[multi] = shapely.convex_hull(fixed[multi])
        polygons[invalid] = fixed
    return polygons


def pairwise_intersection_areas(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Area of ``rows[i] ∩ cols[j]`` for every pair, exactly (polygon clipping).

    Only pairs whose bounding boxes overlap are clipped (STRtree query), all in one vectorized
    shapely call. If GEOS throws on that batch (a topology error on a degenerate input), pairs are
    clipped one by one and a pair that still throws gets area 0, as the RRC scripts return 0 when
    the polygon computation throws.

    Args:
        rows: object array ``(R,)`` of shapely geometries (e.g. ground truths).
        cols: object array ``(C,)`` of shapely geometries (e.g. detections).

    Returns:
        float64 array ``(R, C)`` of intersection areas in square pixels.
    """
    rows = np.asarray(rows, dtype=object).reshape(-1)
    cols = np.asarray(cols, dtype=object).reshape(-1)
    out = np.zeros((len(rows), len(cols)), dtype=np.float64)
    if len(rows) == 0 or len(cols) == 0:
        return out
    row_idx, col_idx = shapely.STRtree(cols).query(rows)
    if len(row_idx) == 0:
        return out
    try:
        areas = shapely.area(shapely.intersection(rows[row_idx], cols[col_idx]))
    except GEOSException:
        areas = np.array(
            [_safe_intersection_area(rows[r], cols[c]) for r, c in zip(row_idx, col_idx)]
        )
    out[row_idx, col_idx] = areas
    return out


def _safe_intersection_area(a, b) -> float:
    try:
        return float(shapely.area(shapely.intersection(a, b)))
    except GEOSException:
        return 0.0
