"""COCO evaluation kernels behind detectron2's ``COCOeval_opt`` (``_C.COCOevalEvaluateImages``...).

detectron2's ``fast_eval_api.COCOeval_opt`` prepares ground truth, detections and IoUs exactly as
``pycocotools.cocoeval.COCOeval`` does, then hands the per-image matching and the accumulation to
four compiled names. This module provides them with the algorithms of ``COCOeval.evaluateImg`` and
``COCOeval.accumulate``, in numpy, so ``COCOeval_opt`` reports what ``COCOeval`` reports:

* matching: detections by decreasing score (stable), at most ``max_detections``; ground truth with
  non-ignored instances first (stable); for every IoU threshold, a detection takes the best
  still-unmatched (or crowd) ground truth with IoU >= threshold, preferring non-ignored ones, the
  last of equal IoUs winning; matched ids are stored as in pycocotools (id 0 reads as "unmatched");
* accumulation: precision at the recall thresholds after making precision monotone, recall, and
  the score at each recall threshold, with -1 where there is no ground truth.

The matching loop runs over the detections of one image and category (at most ``max_detections``),
vectorized over IoU thresholds and ground truth; accumulation is vectorized over IoU thresholds.
"""

import datetime
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

__all__ = ["InstanceAnnotation", "ImageEvaluation", "COCOevalEvaluateImages", "COCOevalAccumulate"]


class InstanceAnnotation:
    """One ground-truth or detected instance, as ``COCOeval_opt`` converts it.

    Args:
        id (int): annotation / detection id.
        score (float): detection score (0 for ground truth).
        area (float): instance area, compared with the area ranges.
        is_crowd (bool): crowd ground truth (may match several detections).
        ignore (bool): ground truth to ignore.
    """

    __slots__ = ("id", "score", "area", "is_crowd", "ignore")

    def __init__(self, id: int, score: float, area: float, is_crowd: bool, ignore: bool):
        self.id = int(id)
        self.score = float(score)
        self.area = float(area)
        self.is_crowd = bool(is_crowd)
        self.ignore = bool(ignore)

    def __repr__(self) -> str:
        return (
            f"InstanceAnnotation(id={self.id}, score={self.score}, area={self.area}, "
            f"is_crowd={self.is_crowd}, ignore={self.ignore})"
        )


class ImageEvaluation:
    """Matching result of one (category, area range, image), as pycocotools' ``evaluateImg``.

    Attributes:
        detection_matches (ndarray[T, D] int64): id of the matched ground truth per IoU threshold
            (0: unmatched), detections sorted by decreasing score.
        detection_scores (ndarray[D] float64): their scores.
        ground_truth_ignores (ndarray[G] bool): ignore flag of the ground truth (non-ignored first).
        detection_ignores (ndarray[T, D] bool): detections that count neither as true nor false
            positives (matched to ignored ground truth, or unmatched and outside the area range).
    """

    __slots__ = (
        "detection_matches",
        "detection_scores",
        "ground_truth_ignores",
        "detection_ignores",
    )

    def __init__(
        self, detection_matches, detection_scores, ground_truth_ignores, detection_ignores
    ):
        self.detection_matches = detection_matches
        self.detection_scores = detection_scores
        self.ground_truth_ignores = ground_truth_ignores
        self.detection_ignores = detection_ignores


def _evaluate_one(
    gts: Sequence[InstanceAnnotation],
    dts: Sequence[InstanceAnnotation],
    ious: Any,
    area_range: Sequence[float],
    max_detections: int,
    thresholds: np.ndarray,
) -> Optional[ImageEvaluation]:
    if len(gts) == 0 and len(dts) == 0:
        return None
    lo, hi = area_range
    gt_area = np.array([g.area for g in gts], dtype=np.float64)
    gt_ignore = np.array([g.ignore for g in gts], dtype=bool) | (gt_area < lo) | (gt_area > hi)
    gt_order = np.argsort(gt_ignore, kind="mergesort")
    gt_ignore = gt_ignore[gt_order]
    gt_ids = np.array([gts[i].id for i in gt_order], dtype=np.int64)
    gt_crowd = np.array([gts[i].is_crowd for i in gt_order], dtype=bool)

    dt_scores_all = np.array([d.score for d in dts], dtype=np.float64)
    dt_order = np.argsort(-dt_scores_all, kind="mergesort")[:max_detections]
    dt_ids = np.array([dts[i].id for i in dt_order], dtype=np.int64)
    dt_area = np.array([dts[i].area for i in dt_order], dtype=np.float64)
    dt_scores = dt_scores_all[dt_order]

    num_t, num_d, num_g = len(thresholds), len(dt_order), len(gt_order)
    gt_match = np.zeros((num_t, num_g), dtype=np.int64)
    dt_match = np.zeros((num_t, num_d), dtype=np.int64)
    dt_ignore = np.zeros((num_t, num_d), dtype=bool)
    iou = np.asarray(ious, dtype=np.float64)
    if num_d and num_g:
        if iou.ndim != 2 or iou.shape[0] < num_d or iou.shape[1] != num_g:
            raise ValueError(
                f"fasttcm_ops.coco_eval: IoU matrix of shape {iou.shape} does not fit {num_d} "
                f"detections x {num_g} ground truths"
            )
        iou = iou[:num_d][:, gt_order]
        min_iou = np.minimum(thresholds, 1 - 1e-10)[:, None]
        rows = np.arange(num_t)
        for d in range(num_d):
            candidate = ((gt_match == 0) | gt_crowd[None, :]) & (iou[d][None, :] >= min_iou)
            score = np.where(candidate, iou[d][None, :], -np.inf)
            # The last ground truth reaching the best IoU wins, non-ignored ones first.
            chosen = np.full(num_t, -1, dtype=np.int64)
            for group in (gt_ignore, ~gt_ignore):  # the later group overrides the earlier one
                group_score = np.where(group[None, :], score, -np.inf)
                last_best = num_g - 1 - np.argmax(group_score[:, ::-1], axis=1)
                found = np.isfinite(group_score.max(axis=1))
                chosen = np.where(found, last_best, chosen)
            hit = chosen >= 0
            t_hit, g_hit = rows[hit], chosen[hit]
            dt_ignore[t_hit, d] = gt_ignore[g_hit]
            dt_match[t_hit, d] = gt_ids[g_hit]
            gt_match[t_hit, g_hit] = dt_ids[d]
    outside = (dt_area < lo) | (dt_area > hi)
    dt_ignore |= (dt_match == 0) & outside[None, :]
    return ImageEvaluation(dt_match, dt_scores, gt_ignore, dt_ignore)


def COCOevalEvaluateImages(
    area_ranges: Sequence[Sequence[float]],
    max_detections: int,
    iou_thresholds: Sequence[float],
    image_category_ious: Sequence[Sequence[Any]],
    image_category_ground_truth_instances: Sequence[Sequence[Sequence[InstanceAnnotation]]],
    image_category_detection_instances: Sequence[Sequence[Sequence[InstanceAnnotation]]],
) -> List[Optional[ImageEvaluation]]:
    """Match detections to ground truth for every category, area range and image.

    Args:
        area_ranges: ``[[lo, hi], ...]`` (A ranges).
        max_detections (int): detections kept per image and category (highest scores).
        iou_thresholds: T thresholds.
        image_category_ious: ``[image][category]`` IoU matrices (detections sorted by decreasing
            score and truncated to ``max_detections``, x ground truth), or empty lists.
        image_category_ground_truth_instances, image_category_detection_instances:
            ``[image][category]`` lists of :class:`InstanceAnnotation`.

    Returns:
        list of K*A*I entries, index ``(k * A + a) * I + i``: :class:`ImageEvaluation`, or None
        where the image has neither ground truth nor detections of the category.
    """
    num_images = len(image_category_ground_truth_instances)
    if (
        len(image_category_detection_instances) != num_images
        or len(image_category_ious) != num_images
    ):
        raise ValueError(
            "fasttcm_ops.coco_eval: ground truth, detections and IoUs must list the same images, "
            f"got {num_images}, {len(image_category_detection_instances)} and "
            f"{len(image_category_ious)}"
        )
    num_categories = len(image_category_ground_truth_instances[0]) if num_images else 0
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    results: List[Optional[ImageEvaluation]] = []
    for k in range(num_categories):
        for area_range in area_ranges:
            for i in range(num_images):
                results.append(
                    _evaluate_one(
                        image_category_ground_truth_instances[i][k],
                        image_category_detection_instances[i][k],
                        image_category_ious[i][k],
                        area_range,
                        max_detections,
                        thresholds,
                    )
                )
    return results


def COCOevalAccumulate(params: Any, evaluations: Sequence[Optional[ImageEvaluation]]) -> Dict:
    """Precision / recall / score tables from the per-image evaluations (``COCOeval.accumulate``).

    Args:
        params: a pycocotools ``Params`` (``iouThrs``, ``recThrs``, ``catIds``, ``useCats``,
            ``areaRng``, ``maxDets``, ``imgIds``), the one used by the evaluation.
        evaluations: the output of :func:`COCOevalEvaluateImages`.

    Returns:
        dict with ``params``, ``counts`` = [T, R, K, A, M], ``date``, and flat (C-order) float64
        arrays ``precision`` (T*R*K*A*M), ``recall`` (T*K*A*M) and ``scores`` (T*R*K*A*M); -1 marks
        entries without ground truth.
    """
    iou_thresholds = np.asarray(params.iouThrs, dtype=np.float64)
    recall_thresholds = np.asarray(params.recThrs, dtype=np.float64)
    num_t, num_r = len(iou_thresholds), len(recall_thresholds)
    num_k = len(params.catIds) if params.useCats else 1
    num_a, num_m, num_i = len(params.areaRng), len(params.maxDets), len(params.imgIds)
    if len(evaluations) != num_k * num_a * num_i:
        raise ValueError(
            f"fasttcm_ops.coco_eval: {len(evaluations)} evaluations do not match "
            f"{num_k} categories x {num_a} area ranges x {num_i} images"
        )
    precision = -np.ones((num_t, num_r, num_k, num_a, num_m))
    recall = -np.ones((num_t, num_k, num_a, num_m))
    scores = -np.ones((num_t, num_r, num_k, num_a, num_m))
    for k in range(num_k):
        for a in range(num_a):
            start = (k * num_a + a) * num_i
            found = [e for e in evaluations[start : start + num_i] if e is not None]
            if not found:
                continue
            gt_ignore = np.concatenate([e.ground_truth_ignores for e in found])
            num_positive = np.count_nonzero(~gt_ignore)
            if num_positive == 0:
                continue
            for m, max_det in enumerate(params.maxDets):
                dt_scores = np.concatenate([e.detection_scores[:max_det] for e in found])
                order = np.argsort(-dt_scores, kind="mergesort")
                sorted_scores = dt_scores[order]
                matched = np.concatenate([e.detection_matches[:, :max_det] for e in found], axis=1)
                ignored = np.concatenate([e.detection_ignores[:, :max_det] for e in found], axis=1)
                matched, ignored = matched[:, order] != 0, ignored[:, order]
                tp = np.cumsum(matched & ~ignored, axis=1).astype(np.float64)
                fp = np.cumsum(~matched & ~ignored, axis=1).astype(np.float64)
                num_d = tp.shape[1]
                if num_d == 0:
                    recall[:, k, a, m] = 0.0
                    precision[:, :, k, a, m] = 0.0
                    scores[:, :, k, a, m] = 0.0
                    continue
                rc = tp / num_positive
                pr = tp / (fp + tp + np.spacing(1))
                recall[:, k, a, m] = rc[:, -1]
                # Precision made non-increasing from the right, read at each recall threshold
                # (0 beyond the highest recall reached).
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                for t in range(num_t):
                    idx = np.searchsorted(rc[t], recall_thresholds, side="left")
                    reached = idx < num_d
                    idx = np.minimum(idx, num_d - 1)
                    precision[t, :, k, a, m] = np.where(reached, pr[t, idx], 0.0)
                    scores[t, :, k, a, m] = np.where(reached, sorted_scores[idx], 0.0)
    return {
        "params": params,
        "counts": [num_t, num_r, num_k, num_a, num_m],
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        "precision": precision.ravel(),
        "recall": recall.ravel(),
        "scores": scores.ravel(),
    }
