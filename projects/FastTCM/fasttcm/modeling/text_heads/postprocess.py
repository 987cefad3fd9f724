"""DBNet post-processing: probability map -> text polygons (pure numpy / OpenCV / shapely).

Two variants (``variant``, config ``TEST.TEXT.POSTPROCESS_IMPL``):

* ``"official"``: TCM-DBNet's ``DBParamPostprocessor`` exactly
  (:mod:`.db_param_postprocess`): every contour (holes included), Douglas-Peucker with
  ``arc_length_ratio``, score over the approximated polygon, Clipper unclip with round joins,
  quads filtered by ``min_size`` (official ``min_text_width``). The results are in the official
  frame (pixel (i, j) is the point (j, i)) and multiplied by output size / map size, as the
  official ``resize_boundary`` does. Two things differ from the official output, neither the
  detections nor their scores: vertices are clamped to the output image (the official ones may
  lie up to the unclip offset outside it), and the vertex order is normalised as below.
* ``"project"`` (the default of this class, kept as an option), described next.

Pipeline of the project variant (DBNet, MMOCR ``DBPostprocessor``), per image:

1. binarize the probability map at ``mask_thresh``;
2. outer contours of the connected regions (``cv2.findContours``), largest ``max_candidates``;
3. score = mean probability inside the contour polygon; drop those below ``min_text_score``;
4. polygon ("poly": Douglas-Peucker approximation with at most ``max_polygon_points`` vertices)
   or minimum-area rectangle ("quad");
5. unclip: grow the region outline by ``D' = A * unclip_ratio / L`` (A, L: its area and
   perimeter), the inverse of DB's kernel shrinking (shapely buffer, mitre joins);
6. drop results whose minimum-area rectangle has a short side below ``min_size`` (pixels of the
   probability map);
7. "quad": the minimum-area rectangle of the unclipped region;
8. rescale from the probability map's size to the output (original image) size.

Coordinate frame: detectron2's continuous pixel frame, in which map pixel (row i, column j)
covers ``[j, j+1) x [i, i+1)``. A region's contour (through its boundary pixels' centres) is
grown by half a pixel to the region's outline before unclipping, so that a kernel rasterized
with :func:`~fasttcm.data.db_targets.make_db_targets` comes back at its true size.
Polygons are returned clockwise as seen on the image (x right, y down), starting at the vertex
nearest the top-left corner; quads are (4, 2) in that order.

This module imports neither torch nor detectron2.
"""

from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon

from .db_param_postprocess import official_db_boundaries

__all__ = ["DBPostprocessor", "order_points_clockwise", "polygons_to_masks"]

POLYGON_TYPES = ("poly", "quad")
VARIANTS = ("official", "project")


class DBPostprocessor:
    """Turn a DB probability map into scored text polygons.

    Args:
        mask_thresh: binarization threshold of the probability map.
        min_text_score: minimum mean probability inside a candidate region.
        unclip_ratio: DB unclip ratio (``D' = A * unclip_ratio / L``).
        min_size: minimum short side (probability-map pixels) of a kept result.
        polygon_type: "poly" (arbitrary-shape polygons) or "quad" (minimum-area rectangles).
        max_candidates: at most this many regions (the largest) are considered per image.
        max_polygon_points: upper bound on the vertices of a "poly" result ("project" only).
        approx_epsilon: Douglas-Peucker tolerance, as a fraction of the contour's perimeter
            ("project" only).
        variant: "project" (this module's pipeline) or "official" (``DBParamPostprocessor``,
            where ``min_size`` is ``min_text_width`` and ``max_candidates`` counts contours in
            OpenCV's order).
        arc_length_ratio: "official" only: Douglas-Peucker epsilon as a fraction of the contour's
            perimeter (official ``arcLength_ratio``); <= 0 keeps the contour as it is.
    """

    def __init__(
        self,
        *,
        mask_thresh: float = 0.3,
        min_text_score: float = 0.3,
        unclip_ratio: float = 1.5,
        min_size: float = 3.0,
        polygon_type: str = "poly",
        max_candidates: int = 1000,
        max_polygon_points: int = 32,
        approx_epsilon: float = 0.002,
        variant: str = "project",
        arc_length_ratio: float = 0.01,
    ):
        if polygon_type not in POLYGON_TYPES:
            raise ValueError(
                f"postprocess.DBPostprocessor: polygon_type must be one of {POLYGON_TYPES}, "
                f"got {polygon_type!r}."
            )
        if variant not in VARIANTS:
            raise ValueError(
                f"postprocess.DBPostprocessor: variant (TEST.TEXT.POSTPROCESS_IMPL) must be one "
                f"of {VARIANTS}, got {variant!r}."
            )
        if max_polygon_points < 4:
            raise ValueError(
                "postprocess.DBPostprocessor: max_polygon_points must be >= 4, "
                f"got {max_polygon_points}."
            )
        if unclip_ratio < 0 or max_candidates < 0:
            raise ValueError(
                "postprocess.DBPostprocessor: unclip_ratio and max_candidates must be non-negative."
            )
        self.mask_thresh = mask_thresh
        self.min_text_score = min_text_score
        self.unclip_ratio = unclip_ratio
        self.min_size = min_size
        self.polygon_type = polygon_type
        self.max_candidates = max_candidates
        self.max_polygon_points = max_polygon_points
        self.approx_epsilon = approx_epsilon
        self.variant = variant
        self.arc_length_ratio = arc_length_ratio

    @classmethod
    def from_config(cls, cfg) -> "DBPostprocessor":
        """The post-processor ``TEST.TEXT`` of a detectron2 config describes."""
        test_cfg = cfg.TEST.TEXT
        return cls(
            mask_thresh=test_cfg.MASK_THRESH,
            min_text_score=test_cfg.MIN_TEXT_SCORE,
            unclip_ratio=test_cfg.UNCLIP_RATIO,
            min_size=test_cfg.MIN_SIZE,
            polygon_type=test_cfg.POLYGON_TYPE,
            max_candidates=test_cfg.MAX_CANDIDATES,
            variant=test_cfg.POSTPROCESS_IMPL,
            arc_length_ratio=test_cfg.ARC_LENGTH_RATIO,
        )

    def __call__(
        self, prob_map: np.ndarray, output_size: Optional[Tuple[int, int]] = None
    ) -> Tuple[List[np.ndarray], np.ndarray]:
        """
        Args:
            prob_map: (h, w) probabilities in [0, 1] covering the network input image (padding
                already cropped away).
            output_size: (height, width) of the image the polygons are reported in (the original
                image); defaults to (h, w).

        Returns:
            polygons: list of (N_i, 2) float32 arrays of (x, y) in output-image pixels,
                sorted by decreasing score (ties: detection order); (4, 2) each in "quad" mode.
            scores: (len(polygons),) float32 mean probabilities.
        """
        prob = np.asarray(prob_map, dtype=np.float32)
        if prob.ndim != 2:
            raise ValueError(
                f"postprocess.DBPostprocessor: prob_map must be 2-D (h, w), got shape {prob.shape}."
            )
        if not np.isfinite(prob).all():
            raise ValueError("postprocess.DBPostprocessor: prob_map contains NaN or inf.")
        in_h, in_w = prob.shape
        out_h, out_w = output_size if output_size is not None else (in_h, in_w)
        if out_h <= 0 or out_w <= 0:
            raise ValueError(
                f"postprocess.DBPostprocessor: output_size must be positive, got {output_size}."
            )
        scale = np.array([out_w / in_w, out_h / in_h], dtype=np.float64)
        if self.variant == "official":
            polygons, scores = self._official(prob, scale, out_w, out_h)
        else:
            polygons, scores = self._project(prob, scale, out_w, out_h)
        order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
        return [polygons[i] for i in order], np.asarray(scores, dtype=np.float32)[order]

    def _official(
        self, prob: np.ndarray, scale: np.ndarray, out_w: int, out_h: int
    ) -> Tuple[List[np.ndarray], list]:
        """``DBParamPostprocessor`` boundaries, rescaled like the official ``resize_boundary``,
        clamped to the output image."""
        boundaries, scores = official_db_boundaries(
            prob,
            mask_thresh=self.mask_thresh,
            min_text_score=self.min_text_score,
            unclip_ratio=self.unclip_ratio,
            min_text_width=self.min_size,
            polygon_type=self.polygon_type,
            max_candidates=self.max_candidates,
            arc_length_ratio=self.arc_length_ratio,
        )
        polygons = [
            order_points_clockwise((b * scale).clip(0, [out_w, out_h])).astype(np.float32)
            for b in boundaries
        ]
        return polygons, scores

    def _project(
        self, prob: np.ndarray, scale: np.ndarray, out_w: int, out_h: int
    ) -> Tuple[List[np.ndarray], list]:
        """The project's pipeline (module docstring), in output-image pixels."""
        bitmap = (prob > self.mask_thresh).astype(np.uint8)
        contours, _ = cv2.findContours(bitmap, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if len(contours) > self.max_candidates:
            areas = np.array([cv2.contourArea(c) for c in contours])
            contours = [
                contours[i] for i in np.argsort(-areas, kind="stable")[: self.max_candidates]
            ]

        polygons, scores = [], []
        for contour in contours:  # one iteration per candidate region (OpenCV / GEOS calls inside)
            points = contour[:, 0, :]
            score = _mean_inside(prob, points)
            if score < self.min_text_score:
                continue
            polygon = self._polygon_from_contour(points)
            if polygon is None:
                continue
            polygons.append((polygon * scale).clip(0, [out_w, out_h]).astype(np.float32))
            scores.append(score)
        return polygons, scores

    def _polygon_from_contour(self, points: np.ndarray) -> Optional[np.ndarray]:
        """Contour (n, 2) int pixel indices -> unclipped (N, 2) float64 polygon in map pixels, or
        None."""
        if self.polygon_type == "quad":
            points = cv2.boxPoints(cv2.minAreaRect(points.astype(np.float32)))
        else:
            points = _approximate(points, self.max_polygon_points, self.approx_epsilon)
        region = _region_outline(points.astype(np.float64) + 0.5)
        if region is None:
            return None
        distance = region.area * self.unclip_ratio / region.length
        expanded = _largest_polygon(region.buffer(distance, join_style="mitre"))
        if expanded is None:
            return None
        coords = np.asarray(expanded.exterior.coords[:-1], dtype=np.float64)
        rect = cv2.minAreaRect(coords.astype(np.float32))
        if min(rect[1]) < self.min_size:
            return None
        if self.polygon_type == "quad":
            return order_points_clockwise(cv2.boxPoints(rect).astype(np.float64))
        if len(coords) > self.max_polygon_points:
            coords = _approximate(
                coords.astype(np.float32), self.max_polygon_points, self.approx_epsilon
            )
        return order_points_clockwise(coords.astype(np.float64))


def order_points_clockwise(points: np.ndarray) -> np.ndarray:
    """Orient a simple polygon clockwise on the image (y down) and start it at the top-left-most
    vertex.

    Args:
        points: (N, 2) (x, y) vertices of a simple polygon, N >= 3.

    Returns:
        (N, 2) the same vertices, clockwise as seen on the image (which is counter-clockwise in a
        y-up frame: positive shoelace area), rolled to start at the vertex minimising x + y.
    """
    points = np.asarray(points, dtype=np.float64)
    x, y = points[:, 0], points[:, 1]
    signed_area2 = np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)
    if signed_area2 < 0:
        points = points[::-1]
    return np.roll(points, -int(np.argmin(points.sum(axis=1))), axis=0)


def polygons_to_masks(polygons: Sequence[np.ndarray], image_size: Tuple[int, int]) -> np.ndarray:
    """Rasterize polygons into full-image bitmasks (``cv2.fillPoly``, one instance at a time).

    A pixel (row i, column j) covers ``[j, j+1) x [i, i+1)`` (the continuous frame of the
    polygons); the vertices are shifted by half a pixel to pixel-centre coordinates and passed
    with 4 fractional bits, and ``fillPoly`` also sets the pixels the outline passes through, so a
    mask's area is the polygon's area plus about half its perimeter.

    Args:
        polygons: N arrays (K_i, 2) of (x, y) in pixels of the image; polygons with fewer than 3
            vertices or non-finite coordinates give an empty mask.
        image_size: (height, width) of the image.

    Returns:
        (N, height, width) bool masks.
    """
    height, width = image_size
    masks = np.zeros((len(polygons), height, width), dtype=np.uint8)
    for index, polygon in enumerate(polygons):  # one OpenCV call per instance
        points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if len(points) < 3 or not np.isfinite(points).all():
            continue
        fixed = np.round((points - 0.5) * _SUBPIXEL_SCALE).astype(np.int32)
        cv2.fillPoly(masks[index], [fixed], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return masks.view(bool)


_SUBPIXEL_BITS = 4
_SUBPIXEL_SCALE = 1 << _SUBPIXEL_BITS


def _mean_inside(prob: np.ndarray, points: np.ndarray) -> float:
    """Mean of `prob` over the pixels of the polygon `points` (pixel indices), filled on its
    bounding box."""
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    cv2.fillPoly(mask, [(points - (x0, y0)).astype(np.int32)], 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def _approximate(points: np.ndarray, max_points: int, epsilon_fraction: float) -> np.ndarray:
    """Douglas-Peucker approximation with at most `max_points` vertices (tolerance doubled until
    it fits)."""
    curve = points.reshape(-1, 1, 2)
    epsilon = epsilon_fraction * cv2.arcLength(curve, True)
    approx = cv2.approxPolyDP(curve, epsilon, True)
    while len(approx) > max_points:
        epsilon = max(2.0 * epsilon, 1e-3)
        approx = cv2.approxPolyDP(curve, epsilon, True)
    return approx[:, 0, :]


def _region_outline(centres: np.ndarray) -> Optional[Polygon]:
    """Outline of the pixels whose centres trace `centres` ((n, 2), continuous frame): grow by half
    a pixel.

    Degenerate contours (a single pixel, a one-pixel-wide line) become the corresponding pixel
    rectangle; self-intersecting approximations are repaired first.
    """
    if len(centres) >= 3:
        geometry = Polygon(centres)
        if not geometry.is_valid:
            geometry = shapely.make_valid(geometry)
    elif len(centres) == 2:
        geometry = LineString(centres)
    else:
        geometry = Point(centres[0])
    return _largest_polygon(geometry.buffer(0.5, cap_style="square", join_style="mitre"))


def _largest_polygon(geometry) -> Optional[Polygon]:
    """The largest polygon of a (multi)polygonal geometry, without holes; None if it has no area."""
    if geometry.is_empty:
        return None
    parts: Sequence = getattr(geometry, "geoms", [geometry])
    parts = [part for part in parts if part.geom_type == "Polygon" and part.area > 0]
    if not parts:
        return None
    largest = max(parts, key=lambda part: part.area)
    return Polygon(largest.exterior)
