"""COCO-style average precision for rotated boxes (AP@[.50:.95], AP50, AP75, APs, APm, APl).

The rules are those of ``pycocotools.cocoeval.COCOeval`` (``evaluate`` then ``accumulate`` and
``summarize``), applied to rotated boxes:

* boxes are detectron2 ``RotatedBoxes`` rows, XYWHA ``(cx, cy, w, h, angle)`` in absolute pixels,
  the angle in degrees, counter-clockwise on screen (image frame, y down); their IoU is the exact
  rotated IoU of :func:`fasttcm_ops.rotated_iou.box_iou_rotated`;
* per image and category, detections are sorted by decreasing score (stable) and at most
  ``max_dets`` are kept (100, as COCO; the cap is per image *and category*, as in ``COCOeval``);
* ground truth is sorted with the non-ignored instances first; for every IoU threshold of
  ``np.linspace(.5, .95, 10)`` each detection in turn takes the still-unmatched (crowd ones may
  be taken again) ground truth of largest IoU >= the threshold, a non-ignored one whenever there
  is one, the last of equal IoUs winning; a detection matched to an ignored ground truth is
  ignored (neither TP nor FP), as is an unmatched detection whose area is outside the area range;
* ``iscrowd`` ground truth is ignored; for DOTA it is the ``difficult`` flag;
* area ranges ``all`` ``[0, 1e10]``, ``small`` ``[0, 32^2]``, ``medium`` ``[32^2, 96^2]``,
  ``large`` ``[96^2, 1e10]`` (bounds inclusive, as COCO), on the rotated box area ``w * h``: a
  ground truth outside the range is ignored;
* per category, the detections of all images are merged by score (stable) and precision is
  read at the 101 recall thresholds ``np.linspace(0, 1, 101)`` from the precision envelope
  (precision made non-increasing from the right), 0 beyond the last recall reached; a category
  without non-ignored ground truth gives -1 there and is left out of the means;
* AP is the mean over IoU thresholds, recall thresholds and the categories that have ground
  truth; per-class AP is AP@[.50:.95] of one class.

**Crowd IoU.** For a crowd ground truth COCO uses the intersection over the *detection* area
(``crowd_iou="ioa"``). DOTA's difficult objects are single objects, not crowd regions, so the
default here is the ordinary IoU (``crowd_iou="iou"``): a detection is ignored for a difficult
object under the same overlap rule that would make it a true positive on a normal one, and a
small detection inside a large difficult object is not silently excused. ``"ioa"`` reproduces
COCO exactly (the intersection is recovered from the IoU and the two areas).

**101-point AP50 versus the DOTA devkit's VOC07 AP50.** Both read the same precision envelope
(the best precision at recall >= r), but VOC07 averages it at 11 recalls ``0, .1, ..., 1`` and
COCO at 101 recalls ``0, .01, ..., 1``. Each sample stands for a recall interval of 0.1 (VOC07)
or 0.01 (COCO), so where the envelope drops between two 0.1 marks VOC07 credits the higher
precision to the whole interval above the last mark it passed, while the 101-point average follows
the drop to within 0.01 of recall: the two agree only when the envelope is flat between marks
(2 ground truths, detections TP, FP, TP: VOC07 ``(6 + 5 * 2/3) / 11 = 0.848``, COCO
``(51 + 50 * 2/3) / 101 = 0.835``). The two protocols also differ in matching: the devkit
needs IoU > 0.5 (strict; COCO >= 0.5), takes only the best-overlapping ground truth (a detection
whose best ground truth is already taken is a false positive; COCO falls back to the best
unmatched one), caps nothing (COCO keeps ``max_dets``), scores IoU on the label quadrilaterals
(here the rotated rectangles), and averages over all classes counting a class without ground
truth as 0 (COCO leaves it out).

Nothing here imports detectron2; IoUs go through torch (``fasttcm_ops``) in float64 on the CPU.
"""

import math
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from fasttcm_ops.rotated_iou import box_iou_rotated

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "COCO_RECALL_THRESHOLDS",
    "COCO_AREA_RANGES",
    "RotatedObjects",
    "RotatedDetections",
    "RotatedCocoResult",
    "rotated_ious",
    "evaluate_rotated_coco",
    "coco_metrics",
]

#: IoU thresholds of AP@[.50:.95], exactly as ``COCOeval`` builds them.
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
#: The 101 recall thresholds of COCO's interpolated precision.
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1)
#: Area ranges (inclusive bounds, in square pixels of the rotated box area ``w * h``).
COCO_AREA_RANGES: Dict[str, Tuple[float, float]] = {
    "all": (0.0, 1e5**2),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}
_SUMMARY = (("AP", None), ("AP50", 0.5), ("AP75", 0.75))
_SUMMARY_AREAS = (("APs", "small"), ("APm", "medium"), ("APl", "large"))


def _boxes(boxes, what: str) -> np.ndarray:
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"rotated COCO AP: {what} contain NaN or infinite values")
    return out


@dataclass(frozen=True)
class RotatedObjects:
    """Ground truth of one image.

    Attributes:
        boxes: float64 ``(G, 5)`` XYWHA boxes (absolute pixels, angle in degrees, CCW).
        category_ids: int ``(G,)`` class indices.
        iscrowd: bool ``(G,)``; True for ignored ground truth (DOTA ``difficult``).
    """

    boxes: np.ndarray
    category_ids: np.ndarray
    iscrowd: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "boxes", _boxes(self.boxes, "ground-truth boxes"))
        cats = np.asarray(self.category_ids, dtype=np.int64).reshape(-1)
        object.__setattr__(self, "category_ids", cats)
        object.__setattr__(self, "iscrowd", np.asarray(self.iscrowd, dtype=bool).reshape(-1))
        if not len(self.boxes) == len(self.category_ids) == len(self.iscrowd):
            raise ValueError(
                f"RotatedObjects: {len(self.boxes)} boxes, {len(self.category_ids)} classes and "
                f"{len(self.iscrowd)} crowd flags"
            )


@dataclass(frozen=True)
class RotatedDetections:
    """Detections of one image.

    Attributes:
        boxes: float64 ``(D, 5)`` XYWHA boxes (absolute pixels, angle in degrees, CCW).
        scores: float64 ``(D,)``.
        category_ids: int ``(D,)`` class indices.
    """

    boxes: np.ndarray
    scores: np.ndarray
    category_ids: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "boxes", _boxes(self.boxes, "detected boxes"))
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float64).reshape(-1))
        cats = np.asarray(self.category_ids, dtype=np.int64).reshape(-1)
        object.__setattr__(self, "category_ids", cats)
        if not len(self.boxes) == len(self.scores) == len(self.category_ids):
            raise ValueError(
                f"RotatedDetections: {len(self.boxes)} boxes, {len(self.scores)} scores and "
                f"{len(self.category_ids)} classes"
            )


@dataclass
class RotatedCocoResult:
    """Outcome of :func:`evaluate_rotated_coco`; fractions in [0, 1], NaN where COCO gives -1.

    Attributes:
        stats: ``AP`` (AP@[.50:.95]), ``AP50``, ``AP75``, ``APs``, ``APm``, ``APl``.
        per_class_ap: class name -> AP@[.50:.95] over all areas (NaN without ground truth).
        precision: ``(T, R, K, A)`` interpolated precision (-1 where a class has no ground truth
            in that area range), as ``COCOeval.eval["precision"][..., -1]``.
        recall: ``(T, K, A)`` recall after the last detection (-1 likewise).
        num_dropped: detections beyond ``max_dets`` of their image and category (not scored).
        params: the protocol's parameters.
    """

    stats: Dict[str, float]
    per_class_ap: Dict[str, float]
    precision: np.ndarray
    recall: np.ndarray
    num_dropped: int = 0
    params: Dict[str, object] = field(default_factory=dict)


def rotated_ious(det_boxes: np.ndarray, gt_boxes: np.ndarray, crowd: np.ndarray, crowd_iou: str):
    """Overlaps of detections with ground truth, as ``COCOeval.computeIoU`` defines them.

    Args:
        det_boxes: ``(D, 5)`` XYWHA boxes (degrees, CCW).
        gt_boxes: ``(G, 5)`` XYWHA boxes (degrees, CCW).
        crowd: bool ``(G,)``.
        crowd_iou: ``"iou"`` (plain IoU for every ground truth) or ``"ioa"`` (COCO: intersection
            over the detection area for crowd ground truth).

    Returns:
        float64 ``(D, G)``.
    """
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return np.zeros((len(det_boxes), len(gt_boxes)))
    iou = box_iou_rotated(
        torch.from_numpy(np.ascontiguousarray(det_boxes)),
        torch.from_numpy(np.ascontiguousarray(gt_boxes)),
    ).numpy()
    if crowd_iou == "ioa" and np.any(crowd):
        det_area = det_boxes[:, 2] * det_boxes[:, 3]
        gt_area = gt_boxes[:, 2] * gt_boxes[:, 3]
        # IoU = I / (A + B - I)  =>  I = IoU * (A + B) / (1 + IoU)
        inter = iou * (det_area[:, None] + gt_area[None, :]) / (1.0 + iou)
        with np.errstate(divide="ignore", invalid="ignore"):
            ioa = np.where(det_area[:, None] > 0, inter / det_area[:, None], 0.0)
        iou = np.where(crowd[None, :], ioa, iou)
    return iou


def _match(ious, gt_ignore, crowd, thresholds):
    """Greedy COCO matching of score-sorted detections to ignore-sorted ground truth.

    Returns:
        matched ``(T, D)`` bool and det_ignored ``(T, D)`` bool (matched to an ignored GT).
    """
    num_t, (num_d, num_g) = len(thresholds), ious.shape
    matched = np.zeros((num_t, num_d), dtype=bool)
    det_ignored = np.zeros((num_t, num_d), dtype=bool)
    if num_g == 0:
        return matched, det_ignored
    gt_taken = np.zeros((num_t, num_g), dtype=bool)
    reverse = np.arange(num_g)[::-1]
    rows = np.arange(num_t)
    for d in range(num_d):
        ok = (~gt_taken | crowd[None, :]) & (ious[d][None, :] >= thresholds[:, None])
        best = np.full(num_t, -1, dtype=np.int64)
        for group in (~gt_ignore, gt_ignore):  # non-ignored ground truth first
            cand = ok & group[None, :] & (best[:, None] < 0)
            if not cand.any():
                continue
            val = np.where(cand, ious[d][None, :], -np.inf)[:, reverse]
            last = num_g - 1 - np.argmax(val, axis=1)  # the last of equal IoUs wins
            has = cand.any(axis=1)
            best[has] = last[has]
        hit = best >= 0
        matched[hit, d] = True
        det_ignored[hit, d] = gt_ignore[best[hit]]
        gt_taken[rows[hit], best[hit]] = True
    return matched, det_ignored


def evaluate_rotated_coco(
    ground_truth: Mapping[str, RotatedObjects],
    detections: Mapping[str, RotatedDetections],
    class_names: Sequence[str],
    *,
    max_dets: int = 100,
    iou_thresholds: Optional[Sequence[float]] = None,
    area_ranges: Optional[Mapping[str, Tuple[float, float]]] = None,
    crowd_iou: str = "iou",
) -> RotatedCocoResult:
    """COCO evaluation of rotated boxes (see the module docstring for every rule).

    Args:
        ground_truth: image name -> :class:`RotatedObjects`; its keys are the image set, in the
            order in which ties of scores across images are broken.
        detections: image name -> :class:`RotatedDetections`; a missing image has none.
        class_names: the classes; ``category_ids`` index them.
        max_dets: detections kept per image and category, best scores first (COCO: 100).
        iou_thresholds: defaults to :data:`COCO_IOU_THRESHOLDS`; must contain 0.5 and 0.75 for
            ``AP50`` and ``AP75`` (NaN otherwise).
        area_ranges: name -> inclusive ``(lo, hi)`` on ``w * h``; defaults to
            :data:`COCO_AREA_RANGES` (``all`` must be present, and ``small``, ``medium`` and
            ``large`` for ``APs``, ``APm`` and ``APl``).
        crowd_iou: ``"iou"`` (default, see the module docstring) or ``"ioa"`` (COCO's).

    Returns:
        :class:`RotatedCocoResult`.

    Raises:
        KeyError: a detection names an image outside the ground truth image set.
        ValueError: class ids outside ``class_names`` or an unknown ``crowd_iou``.
    """
    if crowd_iou not in ("iou", "ioa"):
        raise ValueError(f"rotated COCO AP: crowd_iou must be 'iou' or 'ioa', got {crowd_iou!r}")
    if max_dets < 1:
        raise ValueError(f"rotated COCO AP: max_dets must be positive, got {max_dets}")
    thresholds = np.asarray(
        COCO_IOU_THRESHOLDS if iou_thresholds is None else iou_thresholds, dtype=np.float64
    )
    areas = dict(COCO_AREA_RANGES if area_ranges is None else area_ranges)
    if "all" not in areas:
        raise ValueError("rotated COCO AP: area_ranges must include 'all'")
    area_names = list(areas)
    missing = [name for name in detections if name not in ground_truth]
    if missing:
        raise KeyError(
            f"rotated COCO AP: detections of {len(missing)} image(s) outside the ground-truth "
            f"image set, e.g. {missing[:3]}"
        )
    num_k, num_t, num_a = len(class_names), len(thresholds), len(area_names)
    num_r = len(COCO_RECALL_THRESHOLDS)
    for what, source in (("ground truth", ground_truth), ("detections", detections)):
        for name, item in source.items():
            if len(item.category_ids) and (
                item.category_ids.min() < 0 or item.category_ids.max() >= num_k
            ):
                raise ValueError(
                    f"rotated COCO AP: {what} of {name!r} has class ids outside [0, {num_k})"
                )

    # per (class, area range): lists over images of scores, matched, ignored; count of positives
    scores: List[List[List[np.ndarray]]] = [[[] for _ in area_names] for _ in range(num_k)]
    tps: List[List[List[np.ndarray]]] = [[[] for _ in area_names] for _ in range(num_k)]
    fps: List[List[List[np.ndarray]]] = [[[] for _ in area_names] for _ in range(num_k)]
    npos = np.zeros((num_k, num_a), dtype=np.int64)
    num_dropped = 0
    for image, gt in ground_truth.items():
        det = detections.get(image)
        for k in range(num_k):
            g_sel = gt.category_ids == k
            g_boxes, g_crowd = gt.boxes[g_sel], gt.iscrowd[g_sel]
            if det is not None:
                d_sel = det.category_ids == k
                d_boxes, d_scores = det.boxes[d_sel], det.scores[d_sel]
            else:
                d_boxes, d_scores = np.zeros((0, 5)), np.zeros(0)
            if len(g_boxes) == 0 and len(d_boxes) == 0:
                continue
            order = np.argsort(-d_scores, kind="mergesort")
            num_dropped += max(len(order) - max_dets, 0)
            order = order[:max_dets]
            d_boxes, d_scores = d_boxes[order], d_scores[order]
            ious = rotated_ious(d_boxes, g_boxes, g_crowd, crowd_iou)
            g_area = g_boxes[:, 2] * g_boxes[:, 3]
            d_area = d_boxes[:, 2] * d_boxes[:, 3]
            for a, area_name in enumerate(area_names):
                lo, hi = areas[area_name]
                g_ignore = g_crowd | (g_area < lo) | (g_area > hi)
                g_order = np.argsort(g_ignore, kind="mergesort")
                matched, det_ignored = _match(
                    ious[:, g_order], g_ignore[g_order], g_crowd[g_order], thresholds
                )
                outside = (d_area < lo) | (d_area > hi)
                ignored = det_ignored | (~matched & outside[None, :])
                scores[k][a].append(d_scores)
                tps[k][a].append(matched & ~ignored)
                fps[k][a].append(~matched & ~ignored)
                npos[k, a] += int(np.count_nonzero(~g_ignore))

    precision = -np.ones((num_t, num_r, num_k, num_a))
    recall = -np.ones((num_t, num_k, num_a))
    for k in range(num_k):
        for a in range(num_a):
            if npos[k, a] == 0:
                continue
            if scores[k][a]:
                s = np.concatenate(scores[k][a])
                order = np.argsort(-s, kind="mergesort")
                tp = np.concatenate(tps[k][a], axis=1)[:, order]
                fp = np.concatenate(fps[k][a], axis=1)[:, order]
            else:
                tp = fp = np.zeros((num_t, 0), dtype=bool)
            tp_sum = np.cumsum(tp, axis=1, dtype=np.float64)
            fp_sum = np.cumsum(fp, axis=1, dtype=np.float64)
            for t in range(num_t):
                rc = tp_sum[t] / npos[k, a]
                pr = tp_sum[t] / (fp_sum[t] + tp_sum[t] + np.spacing(1))
                recall[t, k, a] = rc[-1] if len(rc) else 0.0
                # the envelope: precision made non-increasing from the right
                pr = np.maximum.accumulate(pr[::-1])[::-1]
                idx = np.searchsorted(rc, COCO_RECALL_THRESHOLDS, side="left")
                q = np.zeros(num_r)
                valid = idx < len(pr)
                q[valid] = pr[idx[valid]]
                precision[t, :, k, a] = q

    def mean_of(values):
        values = values[values > -1]
        return float(np.mean(values)) if values.size else math.nan

    stats: Dict[str, float] = {}
    all_index = area_names.index("all")
    for key, iou in _SUMMARY:
        sel = np.arange(num_t) if iou is None else np.flatnonzero(np.isclose(thresholds, iou))
        stats[key] = mean_of(precision[sel, :, :, all_index]) if len(sel) else math.nan
    for key, area_name in _SUMMARY_AREAS:
        if area_name in area_names:
            stats[key] = mean_of(precision[:, :, :, area_names.index(area_name)])
        else:
            stats[key] = math.nan
    per_class = {name: mean_of(precision[:, :, k, all_index]) for k, name in enumerate(class_names)}
    return RotatedCocoResult(
        stats=stats,
        per_class_ap=per_class,
        precision=precision,
        recall=recall,
        num_dropped=num_dropped,
        params={
            "protocol": "COCO-style rotated AP",
            "iou_thresholds": [float(t) for t in thresholds],
            "recall_thresholds": num_r,
            "max_dets": max_dets,
            "area_ranges": {k: list(v) for k, v in areas.items()},
            "area": "w * h of the rotated box",
            "crowd": "ignored (DOTA difficult)",
            "crowd_iou": crowd_iou,
            "num_images": len(ground_truth),
        },
    )


def coco_metrics(result: RotatedCocoResult) -> Dict[str, float]:
    """detectron2-style results: the summary and ``AP-<class>`` in percent (NaN kept)."""
    out = {key: 100.0 * value for key, value in result.stats.items()}
    out.update({f"AP-{name}": 100.0 * ap for name, ap in result.per_class_ap.items()})
    return out
