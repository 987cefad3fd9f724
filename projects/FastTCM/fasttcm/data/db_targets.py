"""DBNet training targets, the project's variant (``INPUT.DB_TARGETS_IMPL "shapely"``): shrunk text
kernels and the threshold (border) map with exact geometry. The paper configs train on the
official maps instead (:mod:`.db_targets_official`); docs/db_training_signal.md measures the two.

Follows DBNet (Liao et al., AAAI 2020) and MMOCR's ``DBNetTargets`` in geometry:

- every text polygon ``P`` (area ``A``, perimeter ``L``) is shrunk inwards by
  ``D = A * (1 - r**2) / L`` (``r`` = shrink ratio, 0.4); the kernel fills ``shrink_map``;
- ``shrink_mask`` is 1 everywhere except over ignored polygons ('###' transcriptions, polygons
  whose short side is below ``min_text_size`` and polygons whose kernel vanishes);
- ``thresh_map`` is ``1 - d / D`` clipped to [0, 1] for the pixels within ``D`` of a polygon's
  edges (``d`` = distance of the pixel centre to the nearest edge), maximised over polygons and
  mapped linearly onto ``[thresh_min, thresh_max]``; ``thresh_mask`` marks the polygons dilated
  by ``D`` (the polygon's interior plus every pixel within ``D`` of its edges).

Coordinate frame: polygons are in absolute image pixels of the (augmented) network input, in
detectron2's continuous convention: pixel ``(row i, column j)`` covers ``[j, j+1) x [i, i+1)``
and its centre is ``(j + 0.5, i + 0.5)``. A pixel belongs to a region when its centre does, so a
box from x=10 to x=110 covers exactly 100 columns. Rasterisation is exact (shapely point-in-
polygon on the pixel centres of the polygon's local box, vectorized), not cv2's inclusive fill.
"""

from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
import shapely
import torch
from shapely.geometry import Polygon

__all__ = ["as_polygon_points", "check_db_target_arguments", "make_db_targets", "shrink_distance"]

# Upper bound on (edges x pixels) distances held at once by the threshold-map computation.
_MAX_DISTANCE_ELEMENTS = 1 << 22


def shrink_distance(area: float, perimeter: float, ratio: float) -> float:
    """DBNet's offset ``D = A * (1 - r**2) / L`` for a polygon of area ``A`` and perimeter ``L``."""
    return area * (1.0 - ratio * ratio) / perimeter


def make_db_targets(
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
    """Compute the four DB target maps of one image.

    Args:
        polygons: text polygons, each an (N_i, 2) array of (x, y) in image pixels (continuous
            frame, see the module docstring), N_i >= 3 for a polygon with area.
        ignore: one flag per polygon; True for "don't care" text (e.g. '###').
        height, width: size of the image the maps cover, in pixels.
        shrink_ratio: DB shrink ratio ``r``.
        thresh_min, thresh_max: the threshold map's range outside / on the text borders.
        min_text_size: polygons whose minimum-area rectangle has a shorter side than this (pixels)
            are treated as ignored.

    Returns:
        dict of float32 Tensors, each of shape (height, width):
            "shrink_map": 1 on the shrunk kernels of the kept polygons, else 0;
            "shrink_mask": 0 over ignored polygons, else 1;
            "thresh_map": values in [thresh_min, thresh_max];
            "thresh_mask": 1 on the dilated kept polygons, else 0.

    Raises:
        ValueError: on a malformed polygon (not an (N, 2) finite array), a length mismatch
            between ``polygons`` and ``ignore``, or bad sizes/parameters.
    """
    height, width = check_db_target_arguments(
        polygons, ignore, height, width, shrink_ratio, thresh_min, thresh_max
    )

    shrink_map = np.zeros((height, width), dtype=np.float32)
    shrink_mask = np.ones((height, width), dtype=np.float32)
    border = np.zeros((height, width), dtype=np.float32)  # 1 - d/D in [0, 1], before rescaling
    thresh_mask = np.zeros((height, width), dtype=np.float32)

    # One iteration per polygon: each has its own local box, all pixel work inside is vectorized.
    for index, (points, is_ignored) in enumerate(zip(polygons, ignore)):
        points = as_polygon_points(points, index)
        geometry = _as_geometry(points)
        if geometry is None:  # fewer than 3 points or no area: nothing to learn or mask
            continue
        ignored = bool(is_ignored) or not isinstance(geometry, Polygon)
        if not ignored:
            (_, _), (side_a, side_b), _ = cv2.minAreaRect(points.astype(np.float32))
            ignored = min(side_a, side_b) < min_text_size
        if ignored:
            _fill(shrink_mask, geometry, 0.0)
            continue

        distance = shrink_distance(geometry.area, geometry.length, shrink_ratio)
        kernel = geometry.buffer(-distance, join_style="mitre")
        if kernel.is_empty or not _fill(shrink_map, kernel, 1.0):
            _fill(shrink_mask, geometry, 0.0)  # the kernel vanished: treat the polygon as ignored
            continue
        _draw_border(border, thresh_mask, geometry, distance)

    thresh_map = border * np.float32(thresh_max - thresh_min) + np.float32(thresh_min)
    maps = {
        "shrink_map": shrink_map,
        "shrink_mask": shrink_mask,
        "thresh_map": thresh_map,
        "thresh_mask": thresh_mask,
    }
    return {name: torch.from_numpy(value) for name, value in maps.items()}


def check_db_target_arguments(
    polygons,
    ignore,
    height,
    width,
    shrink_ratio,
    thresh_min,
    thresh_max,
    where: str = "db_targets.make_db_targets",
) -> Tuple[int, int]:
    """Validate the arguments shared by the DB target makers; `where` names the caller in errors.

    Returns:
        (height, width) as ints.
    """
    if len(polygons) != len(ignore):
        raise ValueError(f"{where}: got {len(polygons)} polygons but {len(ignore)} ignore flags.")
    if int(height) != height or int(width) != width or height <= 0 or width <= 0:
        raise ValueError(f"{where}: image size must be positive integers, got {height}x{width}.")
    if not 0.0 < shrink_ratio < 1.0:
        raise ValueError(f"{where}: shrink_ratio must lie in (0, 1), got {shrink_ratio}.")
    if not thresh_min <= thresh_max:
        raise ValueError(
            f"{where}: thresh_min ({thresh_min}) must not exceed thresh_max ({thresh_max})."
        )
    return int(height), int(width)


def as_polygon_points(points, index: int, where: str = "db_targets.make_db_targets") -> np.ndarray:
    """Polygon `index` as a finite (N, 2) float64 array of (x, y); a clear error otherwise."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(
            f"{where}: polygon {index} has shape {points.shape}; expected (N, 2) (x, y) points."
        )
    if not np.isfinite(points).all():
        raise ValueError(f"{where}: polygon {index} has non-finite coordinates.")
    return points


def _as_geometry(points: np.ndarray) -> Optional[shapely.Geometry]:
    """A shapely geometry for `points`, repaired when self-intersecting; None when it has no area.

    A valid simple polygon comes back as a ``Polygon``; a self-intersecting one is repaired by
    ``make_valid`` and may come back as a ``MultiPolygon`` (the caller then ignores it).
    """
    if len(points) < 3:
        return None
    geometry = Polygon(points)
    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry)
        parts = [
            g
            for g in getattr(geometry, "geoms", [geometry])
            if g.geom_type in ("Polygon", "MultiPolygon")
        ]
        geometry = shapely.union_all(parts) if parts else None
    if geometry is None or geometry.is_empty or geometry.area <= 0:
        return None
    if geometry.geom_type == "MultiPolygon" and len(geometry.geoms) == 1:
        geometry = geometry.geoms[0]
    return geometry


def _local_box(bounds, height: int, width: int) -> Optional[Tuple[slice, slice]]:
    """Rows/columns whose pixel centres can fall inside ``bounds`` = (xmin, ymin, xmax, ymax)."""
    xmin, ymin, xmax, ymax = bounds
    x0, y0 = max(int(np.floor(xmin - 0.5)), 0), max(int(np.floor(ymin - 0.5)), 0)
    x1, y1 = min(int(np.ceil(xmax - 0.5)) + 1, width), min(int(np.ceil(ymax - 0.5)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


def _pixel_centres(rows: slice, cols: slice) -> Tuple[np.ndarray, np.ndarray]:
    """(h, w) arrays of the x and y pixel-centre coordinates of a local box."""
    xs = np.arange(cols.start, cols.stop, dtype=np.float64) + 0.5
    ys = np.arange(rows.start, rows.stop, dtype=np.float64) + 0.5
    return np.meshgrid(xs, ys)


def _fill(canvas: np.ndarray, geometry, value: float) -> bool:
    """Set the pixels of `canvas` whose centres lie inside `geometry` to `value`.

    Returns:
        whether at least one pixel was set.
    """
    box = _local_box(geometry.bounds, *canvas.shape)
    if box is None:
        return False
    px, py = _pixel_centres(*box)
    shapely.prepare(geometry)
    inside = shapely.contains_xy(geometry, px, py)
    canvas[box][inside] = value
    return bool(inside.any())


def _draw_border(
    border: np.ndarray, thresh_mask: np.ndarray, polygon: Polygon, distance: float
) -> None:
    """Max-accumulate ``clip(1 - d / distance, 0, 1)`` into `border`; mark the dilated polygon in
    `thresh_mask`.

    ``d`` is the distance from a pixel centre to the nearest edge of `polygon`; only the local box
    of the polygon dilated by `distance` is visited.
    """
    xmin, ymin, xmax, ymax = polygon.bounds
    box = _local_box(
        (xmin - distance, ymin - distance, xmax + distance, ymax + distance), *border.shape
    )
    if box is None:
        return
    px, py = _pixel_centres(*box)
    ring = np.asarray(polygon.exterior.coords, dtype=np.float64)  # closed: ring[-1] == ring[0]
    edge_distance = _distance_to_segments(px.ravel(), py.ravel(), ring[:-1], ring[1:]).reshape(
        px.shape
    )

    shapely.prepare(polygon)
    inside = shapely.contains_xy(polygon, px, py)
    dilated = inside | (edge_distance <= distance)
    value = np.clip(1.0 - edge_distance / distance, 0.0, 1.0).astype(np.float32)
    np.maximum(border[box], value, out=border[box])
    thresh_mask[box][dilated] = 1.0


def _distance_to_segments(
    px: np.ndarray, py: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Distance from each point to the nearest of the segments ``starts[e] -> ends[e]``.

    Args:
        px, py: (P,) point coordinates.
        starts, ends: (E, 2) segment end points.

    Returns:
        (P,) float64 distances. Vectorized over points and edges (edges in chunks, to bound memory).
    """
    best = np.full(px.shape, np.inf)
    chunk = max(1, _MAX_DISTANCE_ELEMENTS // max(px.size, 1))
    for first in range(0, len(starts), chunk):
        a, b = (
            starts[first : first + chunk, :, None],
            ends[first : first + chunk, :, None],
        )  # (e, 2, 1)
        ab = b - a
        length2 = np.maximum((ab * ab).sum(axis=1), 1e-12)  # (e, 1)
        t = np.clip(
            ((px - a[:, 0]) * ab[:, 0] + (py - a[:, 1]) * ab[:, 1]) / length2, 0.0, 1.0
        )  # (e, P)
        dx = px - (a[:, 0] + t * ab[:, 0])
        dy = py - (a[:, 1] + t * ab[:, 1])
        np.minimum(best, np.sqrt(dx * dx + dy * dy).min(axis=0), out=best)
    return best
