"""Validity check and repair of text-instance polygons, vectorized with shapely.

Polygons are (N, 2) float64 arrays of ``[x, y]`` vertices in absolute pixels of the displayed
(EXIF-applied) image, x right, y down. A self-intersecting (invalid) polygon is repaired:
``shapely.make_valid`` splits it into valid pieces and the largest-area polygon is kept (its
exterior ring; holes dropped; vertex orientation of the original kept). A polygon whose repair
leaves no area (e.g. all vertices collinear) is dropped. Repair rather than rejection keeps
annotated text in training, as MMOCR does.
"""

from typing import Sequence

import numpy as np
import shapely
from shapely.geometry.polygon import orient

__all__ = ["repair_polygons", "largest_polygon", "signed_area"]


def repair_polygons(polys: Sequence[np.ndarray], wheres: Sequence[str]):
    """Vectorized validity check; repair invalid polygons (largest valid piece).

    Args:
        polys: K arrays of shape (N_i, 2), N_i >= 3, finite, in pixels (x right, y down).
        wheres: K labels naming each polygon in messages (e.g. file, annotation and image id).

    Returns:
        (list of K (M_i, 2) arrays or None for dropped, (K,) shapely geometries (None for
        dropped), problem messages).
    """
    counts = np.fromiter((len(p) for p in polys), dtype=np.int64, count=len(polys))
    ring_index = np.repeat(np.arange(len(polys)), counts)
    geoms = shapely.polygons(shapely.linearrings(np.concatenate(polys), indices=ring_index))
    valid = shapely.is_valid(geoms)
    out, problems = list(polys), []
    invalid = np.flatnonzero(~valid)
    if len(invalid):
        repaired = shapely.make_valid(geoms[invalid])
        for k, geom in zip(invalid, repaired):
            piece = largest_polygon(geom)
            if piece is None:
                problems.append(f"{wheres[k]}: skipped, polygon has no area (degenerate)")
                out[k], geoms[k] = None, None
                continue
            signed = signed_area(polys[k])
            piece = orient(piece, sign=1.0 if signed >= 0 else -1.0)
            out[k] = np.asarray(piece.exterior.coords, dtype=np.float64)[:-1]
            geoms[k] = piece
            problems.append(
                f"{wheres[k]}: self-intersecting polygon repaired (largest valid part kept, "
                f"area {piece.area:.1f} of the {len(polys[k])}-vertex original)"
            )
    return out, geoms, problems


def largest_polygon(geom):
    """Largest-area Polygon inside a geometry (collections are searched recursively).

    Args:
        geom: a shapely geometry, or None.

    Returns:
        The shapely Polygon with the largest positive area, or None if there is none.
    """
    stack, best = [geom], None
    while stack:
        g = stack.pop()
        if g is None or g.is_empty:
            continue
        if g.geom_type == "Polygon":
            if g.area > 0 and (best is None or g.area > best.area):
                best = g
        elif g.geom_type in ("MultiPolygon", "GeometryCollection"):
            stack.extend(shapely.get_parts(g))
    return best


def signed_area(pts: np.ndarray) -> float:
    """Shoelace signed area in the (x right, y down) frame; > 0 = clockwise on screen.

    Args:
        pts: (N, 2) polygon vertices ``[x, y]`` in pixels.

    Returns:
        The signed area in square pixels.
    """
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
