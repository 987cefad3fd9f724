"""How a detected outline frames a ground-truth word: area coverage, excess and side offsets.

Used by the spotting analysis (``evaluation/spotting_analysis.py``) to tell a crop that cuts or
pads the word from a clean one. All polygons are ``(N, 2)`` vertex arrays ``(x, y)`` in absolute
pixels of the original image (x to the right, y down), as the protocols read them.

**Area measures** of a (ground truth G, detection D) pair, from exact polygon clipping:

* ``coverage = area(G ∩ D) / area(G)``: the part of the word inside the detection (1 = nothing
  cut);
* ``excess = 1 - area(G ∩ D) / area(D)``: the part of the detection outside the word (0 = no
  padding).

**Side offsets**, in units of the word's height, positive when the detection reaches beyond the
word (padding) and negative when it stops inside it (a cut): ``start`` and ``end`` along the
reading direction, ``top`` and ``bottom`` across it. They compare the extents of G's and D's
vertices projected on the word's reading axis u and its normal v (v = u turned 90 degrees
clockwise on screen, pointing from the top of the text to its bottom). The reading axis of a
ground truth with 2n vertices (n >= 2; the annotated layout: top side left to right, then bottom
side right to left, a quad being n = 2) is the mean of the chords of its two sides; any other
ground truth uses the long side of its minimum-area rectangle, pointing right (down when
vertical). The height is ``area(G) / length``, the length being the mean length of the two sides
(the rectangle's long side otherwise), so curved words get their stroke height rather than their
bounding extent. For curved words the projections on one straight axis are approximate.

Nothing here imports detectron2.
"""

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import shapely
from shapely.errors import GEOSException

from .polygons import as_vertex_array

__all__ = ["SIDES", "CropCriteria", "PairGeometry", "reading_axes", "pair_geometry"]

SIDES = ("start", "end", "top", "bottom")
"""Names of the side offsets, in the order :attr:`PairGeometry.sides` lists them."""


@dataclass(frozen=True)
class PairGeometry:
    """How detection D frames ground truth G (module docstring).

    Attributes:
        coverage: area(G ∩ D) / area(G), in [0, 1]; 0 when G has no area.
        excess: 1 - area(G ∩ D) / area(D), in [0, 1]; 1 when D has no area.
        sides: offsets ``(start, end, top, bottom)`` in word heights (positive = padding);
            None when the word has no usable reading axis or height.
    """

    coverage: float
    excess: float
    sides: Optional[Tuple[float, float, float, float]]

    def sides_dict(self) -> Dict[str, Optional[float]]:
        """``{"start": ..., "end": ..., "top": ..., "bottom": ...}`` (None values without sides)."""
        if self.sides is None:
            return dict.fromkeys(SIDES)
        return dict(zip(SIDES, self.sides))


def _path_length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def _rectangle_axis(polygon) -> Tuple[np.ndarray, float]:
    """Long side of the minimum-area rectangle: (unit direction pointing right or down, length)."""
    rect = shapely.minimum_rotated_rectangle(polygon)
    corners = np.asarray(shapely.get_coordinates(rect), dtype=np.float64)
    if len(corners) < 4:
        return np.zeros(2), 0.0
    edges = [corners[1] - corners[0], corners[2] - corners[1]]
    edge = max(edges, key=lambda e: float(np.hypot(*e)))
    length = float(np.hypot(*edge))
    if length == 0.0:
        return np.zeros(2), 0.0
    direction = edge / length
    if direction[0] < 0 or (direction[0] == 0 and direction[1] < 0):
        direction = -direction
    return direction, length


def reading_axes(vertices, polygon=None) -> Optional[Tuple[np.ndarray, np.ndarray, float]]:
    """Reading axis, normal and height of a ground-truth word (module docstring).

    Args:
        vertices: ``(N, 2)`` ground-truth vertices in the annotated layout when N is even.
        polygon: the shapely polygon of `vertices` (its area is used), built when None.

    Returns:
        ``(u, v, height)``: unit vectors ``(2,)`` along the reading direction and from the top of
        the text to its bottom, and the word height in pixels; None when the word has no area.
    """
    vertices = as_vertex_array(vertices)
    if polygon is None:
        polygon = shapely.Polygon(vertices)
    area = float(shapely.area(polygon))
    if area <= 0.0:
        return None
    num = len(vertices)
    direction, length = np.zeros(2), 0.0
    if num >= 4 and num % 2 == 0:
        top, bottom = vertices[: num // 2], vertices[num // 2 :][::-1]
        direction = (top[-1] - top[0]) + (bottom[-1] - bottom[0])
        length = 0.5 * (_path_length(top) + _path_length(bottom))
    norm = float(np.hypot(*direction))
    if norm == 0.0 or length == 0.0:
        direction, length = _rectangle_axis(polygon)
        norm = 1.0 if length > 0 else 0.0
    if norm == 0.0:
        return None
    u = direction / norm
    v = np.array([-u[1], u[0]])
    return u, v, area / length


def pair_geometry(gt_vertices, det_vertices, gt_polygon=None, det_polygon=None) -> PairGeometry:
    """Coverage, excess and side offsets of one (ground truth, detection) pair.

    Args:
        gt_vertices: ``(N, 2)`` ground-truth vertices (annotated layout when N is even).
        det_vertices: ``(M, 2)`` detection vertices (any layout).
        gt_polygon, det_polygon: the shapely polygons the protocol built for them (repaired or
            not); built from the vertices when None.
    """
    gt_vertices = as_vertex_array(gt_vertices)
    det_vertices = as_vertex_array(det_vertices)
    if gt_polygon is None:
        gt_polygon = shapely.Polygon(gt_vertices)
    if det_polygon is None:
        det_polygon = shapely.Polygon(det_vertices)
    try:
        inter = float(shapely.area(shapely.intersection(gt_polygon, det_polygon)))
    except GEOSException:
        inter = 0.0
    gt_area = float(shapely.area(gt_polygon))
    det_area = float(shapely.area(det_polygon))
    coverage = inter / gt_area if gt_area > 0 else 0.0
    excess = 1.0 - inter / det_area if det_area > 0 else 1.0
    axes = reading_axes(gt_vertices, gt_polygon)
    sides = None
    if axes is not None and len(det_vertices):
        u, v, height = axes
        gu, gv = gt_vertices @ u, gt_vertices @ v
        du, dv = det_vertices @ u, det_vertices @ v
        sides = (
            float((gu.min() - du.min()) / height),
            float((du.max() - gu.max()) / height),
            float((gv.min() - dv.min()) / height),
            float((dv.max() - gv.max()) / height),
        )
    return PairGeometry(coverage=coverage, excess=excess, sides=sides)


@dataclass(frozen=True)
class CropCriteria:
    """Geometric test of a crop: it cuts the word when ``coverage < min_coverage`` and pads it
    when ``excess > max_excess`` (the measures of :func:`pair_geometry`).

    The default excess limit sits just above what padding every side of a 5:1 word by 0.35 word
    heights gives (0.48), the widest framing the synthetic spotter's training jitter
    (``MODEL.SPOTTER.CROP_JITTER``) shows the recognizer.
    """

    min_coverage: float = 0.9
    max_excess: float = 0.5

    def __post_init__(self):
        for name in ("min_coverage", "max_excess"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"CropCriteria.{name} must lie in [0, 1], got {value}")

    def verdict(self, coverage: float, excess: float) -> str:
        """``"cut"``, ``"pad"``, ``"cut+pad"`` or ``"clean"``."""
        cut, pad = coverage < self.min_coverage, excess > self.max_excess
        return "cut+pad" if cut and pad else "cut" if cut else "pad" if pad else "clean"
