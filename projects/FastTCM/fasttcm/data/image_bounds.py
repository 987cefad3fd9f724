"""Text polygons against their image: which lie outside it or are degenerate once clipped to it.

An image of ``height x width`` pixels covers the rectangle ``[0, width] x [0, height]`` in absolute
pixels (x right, y down). A polygon is *unusable* when the part of it inside that rectangle has an
area below :data:`MIN_CLIPPED_AREA` (one square pixel):

* it lies entirely outside the image (nothing inside, or only an edge or a corner touching it);
* or it crosses the image's border and less than a pixel of it is left inside (degenerate after
  clipping).

A polygon with every vertex inside the rectangle is never judged here, however small (its
validity is :mod:`fasttcm.data.datasets.polygon_repair`'s business). Polygons are not changed:
one partly outside stays as annotated. The text-JSON loader
(:func:`fasttcm.data.datasets.text_json.load_text_json`) and the converters
(:func:`fasttcm.data.converters.annotations.drop_unusable_polygons`) drop unusable polygons and
count them in one warning per file. No detectron2 import.
"""

from typing import Sequence

import numpy as np
import shapely

__all__ = ["MIN_CLIPPED_AREA", "unusable_in_image", "unusable_polygons_in_image"]

MIN_CLIPPED_AREA = 1.0
"""Least area, in square pixels, of the part of a polygon inside its image for it to be kept."""


def unusable_in_image(geoms: np.ndarray, heights, widths) -> np.ndarray:
    """Which polygons are unusable in their images (module docstring), vectorized.

    Args:
        geoms: ``(K,)`` shapely polygons (valid or not; None is never unusable).
        heights, widths: ``(K,)`` or scalars, the size in pixels of each polygon's image.

    Returns:
        bool ``(K,)``: True for a polygon entirely outside its image or with less than
        :data:`MIN_CLIPPED_AREA` of it inside.
    """
    geoms = np.asarray(geoms, dtype=object).reshape(-1)
    heights = np.broadcast_to(np.asarray(heights, dtype=np.float64), geoms.shape)
    widths = np.broadcast_to(np.asarray(widths, dtype=np.float64), geoms.shape)
    unusable = np.zeros(len(geoms), dtype=bool)
    present = np.flatnonzero(~shapely.is_missing(geoms))
    if not len(present):
        return unusable
    bounds = shapely.bounds(geoms[present])  # (P, 4) x0, y0, x1, y1
    inside = (
        (bounds[:, 0] >= 0)
        & (bounds[:, 1] >= 0)
        & (bounds[:, 2] <= widths[present])
        & (bounds[:, 3] <= heights[present])
    )
    check = present[~inside]
    if len(check):
        shapes = geoms[check]
        invalid = ~shapely.is_valid(shapes)
        if invalid.any():  # intersections of invalid polygons are undefined
            shapes = shapes.copy()
            shapes[invalid] = shapely.make_valid(shapes[invalid])
        image = shapely.box(0.0, 0.0, widths[check], heights[check])
        area = shapely.area(shapely.intersection(shapes, image))
        unusable[check] = ~(area >= MIN_CLIPPED_AREA)
    return unusable


def unusable_polygons_in_image(polygons: Sequence[np.ndarray], height, width) -> np.ndarray:
    """:func:`unusable_in_image` for ``(N_i, 2)`` vertex arrays (N_i >= 3, finite).

    Args:
        polygons: K arrays of ``[x, y]`` vertices in absolute pixels.
        height, width: the image size in pixels (scalars, or ``(K,)`` per polygon).

    Returns:
        bool ``(K,)``, True for unusable polygons.
    """
    if not len(polygons):
        return np.zeros(0, dtype=bool)
    counts = np.fromiter((len(p) for p in polygons), dtype=np.int64, count=len(polygons))
    rings = shapely.linearrings(
        np.concatenate([np.asarray(p, dtype=np.float64) for p in polygons]),
        indices=np.repeat(np.arange(len(polygons)), counts),
    )
    return unusable_in_image(shapely.polygons(rings), height, width)
