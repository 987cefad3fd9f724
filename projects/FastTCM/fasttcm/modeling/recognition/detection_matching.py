"""One-to-one matching of detected text outlines to ground-truth polygons by IoU (shapely).

The spotter's recognizer can train on crops of the detector's own outlines, labelled with the
transcription of the ground-truth word each outline found. Matching is greedy on IoU, highest
first, one-to-one, above a threshold (0.5, the ICDAR matching rule). Outlines and polygons are
(K, 2) vertices (x, y) in one pixel frame; invalid (self-intersecting) rings are repaired with
``make_valid`` before the areas are taken, and degenerate ones never match.
"""

from typing import List, Sequence, Tuple

import numpy as np
import shapely

__all__ = ["match_outlines_to_words"]


def _geometries(polygons: Sequence[np.ndarray]) -> np.ndarray:
    shapes = []
    for points in polygons:
        points = np.asarray(points, dtype=np.float64)
        if len(points) < 3 or not np.isfinite(points).all():
            shapes.append(None)
            continue
        shape = shapely.make_valid(shapely.Polygon(points))
        shapes.append(shape if shape.area > 0 else None)
    return np.array(shapes, dtype=object)


def match_outlines_to_words(
    outlines: Sequence[np.ndarray], words: Sequence[np.ndarray], iou_threshold: float = 0.5
) -> List[Tuple[int, int]]:
    """Greedy one-to-one IoU matching.

    Args:
        outlines: N detected outlines, (K_i, 2) arrays (x, y).
        words: M ground-truth polygons in the same frame.
        iou_threshold: a pair matches when its IoU is strictly above this.

    Returns:
        (outline index, word index) pairs, by decreasing IoU.
    """
    if not len(outlines) or not len(words):
        return []
    det, gt = _geometries(outlines), _geometries(words)
    inter = np.nan_to_num(shapely.area(shapely.intersection(det[:, None], gt[None, :])))
    union = (
        np.nan_to_num(shapely.area(det))[:, None] + np.nan_to_num(shapely.area(gt))[None] - inter
    )
    iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    pairs = []
    order = np.argsort(-iou, axis=None, kind="stable")
    used_det, used_gt = set(), set()
    for flat in order:
        i, j = divmod(int(flat), len(gt))
        if iou[i, j] <= iou_threshold:
            break
        if i in used_det or j in used_gt:
            continue
        used_det.add(i)
        used_gt.add(j)
        pairs.append((i, j))
    return pairs
