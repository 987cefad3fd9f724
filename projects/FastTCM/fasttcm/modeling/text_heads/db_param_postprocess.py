"""TCM-DBNet's official post-processing (``DBParamPostprocessor``; ``DBVisPostprocessor`` with
``filter_min_text_poly=False`` is the same computation), in numpy / OpenCV / shapely / Clipper.

Per image, on the probability map P (h, w):

1. binarise: ``P > mask_thresh`` (float32 comparison);
2. every contour of the binary map (``cv2.findContours``, ``RETR_LIST``: holes' inner contours
   included, ``CHAIN_APPROX_SIMPLE``), in OpenCV's order, stopping after index ``max_candidates``
   (so at most ``max_candidates + 1`` contours);
3. Douglas-Peucker approximation with epsilon ``arc_length_ratio`` x the contour's perimeter
   (official ``use_approxPolyDP``; ``arc_length_ratio <= 0``: the contour as it is); fewer than 4
   points: dropped;
4. score = mean of P over the pixels ``cv2.fillPoly`` sets for those points, on their bounding
   box (official ``box_score_fast``); below ``min_text_score``: dropped;
5. unclip: Clipper grows the integer points by ``A * unclip_ratio / L`` (shapely area and length
   of the points), round joins. No path: dropped. Several paths: dropped when their lengths
   differ (the official ``np.array`` of them is ragged), concatenated when they agree;
6. "quad": the minimum-area rectangle of the unclipped points, kept when its short side exceeds
   ``min_text_width``; "poly": the unclipped points, kept when they are at least 4.

Coordinate frame: the official one, pixel (row i, column j) is the point (x=j, y=i); the results
are in that frame, unrescaled. The official targets
(:func:`~fasttcm.data.db_targets_official.make_db_targets_official`) use the same frame.
"""

from typing import List, Optional, Tuple

import cv2
import numpy as np
from shapely.geometry import Polygon

from ...utils.clipper import clipper_offset

__all__ = ["official_db_boundaries"]


def official_db_boundaries(
    prob: np.ndarray,
    *,
    mask_thresh: float,
    min_text_score: float,
    unclip_ratio: float,
    min_text_width: float,
    polygon_type: str,
    max_candidates: int,
    arc_length_ratio: float,
) -> Tuple[List[np.ndarray], List[float]]:
    """Official DB boundaries of one probability map (see the module docstring).

    Args:
        prob: (h, w) float32 probabilities.
        mask_thresh, min_text_score, unclip_ratio, min_text_width, max_candidates: official
            ``mask_thr``, ``min_text_score``, ``unclip_ratio``, ``min_text_width``,
            ``max_candidates``.
        polygon_type: "quad" or "poly" (official ``text_repr_type``).
        arc_length_ratio: official ``arcLength_ratio``; <= 0 for ``use_approxPolyDP=False``.

    Returns:
        (boundaries, scores): (N_i, 2) float64 arrays of (x, y) in map pixels, (4, 2) for quads
        in ``cv2.boxPoints`` order, and their scores, in contour order.
    """
    bitmap = (prob > np.float32(mask_thresh)).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    boundaries, scores = [], []
    for index, contour in enumerate(contours):  # one OpenCV / Clipper call chain per contour
        if index > max_candidates:
            break
        if arc_length_ratio > 0:
            epsilon = arc_length_ratio * cv2.arcLength(contour, True)
            contour = cv2.approxPolyDP(contour, epsilon, True)
        points = contour.reshape(-1, 2)
        if len(points) < 4:
            continue
        score = box_score_fast(prob, points)
        if score < min_text_score:
            continue
        expanded = _unclip(points, unclip_ratio)
        if expanded is None:
            continue
        if polygon_type == "quad":
            rect = cv2.minAreaRect(expanded.astype(np.int32))
            if not min(rect[1]) > min_text_width:
                continue
            boundary = cv2.boxPoints(rect).astype(np.float64)
        else:
            if len(expanded) < 4:
                continue
            boundary = expanded.astype(np.float64)
        boundaries.append(boundary)
        scores.append(score)
    return boundaries, scores


def box_score_fast(prob: np.ndarray, points: np.ndarray) -> float:
    """Official ``box_score_fast``: mean of `prob` over the pixels ``cv2.fillPoly`` sets for the
    integer polygon `points` ((n, 2) x, y), on its bounding box clipped to the map."""
    h, w = prob.shape
    x0 = int(np.clip(np.floor(points[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(points[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(points[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(points[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    local = (points - np.array([x0, y0])).astype(np.int32)
    cv2.fillPoly(mask, local.reshape(1, -1, 2), 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def _unclip(points: np.ndarray, unclip_ratio: float) -> Optional[np.ndarray]:
    """Official ``unclip`` and its result checks: (K, 2) int64 points, or None when dropped."""
    shape = Polygon(points)
    paths = clipper_offset(points, shape.area * unclip_ratio / shape.length)
    if not paths:
        return None
    if len({len(path) for path in paths}) > 1:
        return None  # ragged: the official code skips it
    return np.concatenate(paths, axis=0)
