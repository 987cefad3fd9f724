"""DOTA Task 1 (oriented boxes): the DOTA devkit's ``dota_evaluation_task1.py`` rules, vectorized.

Every rule of the devkit is kept:

* per class, ``npos`` counts the ground truths with difficulty 0; difficult ones (flag 1, and the
  split's flag 2) stay in the list and a detection whose best match is one of them is ignored;
* detections are read in file order and sorted by ``np.argsort(-score)`` (numpy's default, not
  stable, sort: the order of tied scores is the devkit's);
* a detection's IoU is taken only with the ground truths of its image whose axis-aligned boxes
  overlap in the devkit's "+1 pixel" sense, then computed exactly as ``polyiou.iou_poly`` does
  (:mod:`fasttcm.evaluation.protocols.dota_iou`); the best ground truth (first on ties) is the only
  candidate: IoU > 0.5 (strict) and unused -> TP, used -> FP, no fall-back to the second best;
* VOC07 11-point AP on the grid ``np.arange(0, 1.1, 0.1)`` (the devkit's ``main``), or the
  area (VOC2010+) AP; mAP is the sum of the per-class APs divided by the number of classes of
  the version, a class without ground truth contributing 0 (11-point) or NaN (area).

Where the devkit cannot produce a number, this module picks the obvious one and says so: an empty
``Task1_<class>.txt`` (the devkit raises IndexError) scores AP 0.

Ground truth and detections are quadrilaterals ``x1, y1, ..., x4, y4`` in absolute pixels of the
full image (x right, y down). Task-1 submission files (``Task1_<class>.txt``) are read and written
by :mod:`fasttcm.evaluation.protocols.dota_task1_io`.

Nothing here imports detectron2 or torch.
"""

import logging
import math
from dataclasses import dataclass, field
from typing import Dict, Mapping, Sequence

import numpy as np

from ...utils.geometry import poly_to_hbb
from .dota_iou import devkit_poly_iou
from .dota_task1_io import ClassDetections

__all__ = [
    "ImageObjects",
    "Task1Result",
    "voc_ap",
    "class_average_precision",
    "evaluate_task1",
]

logger = logging.getLogger(__name__)

_PAIR_CHUNK = 1 << 21  # (detection, ground truth) candidate pairs generated at once


@dataclass(frozen=True)
class ImageObjects:
    """Ground truth of one image.

    Attributes:
        polys: float64 ``(G, 8)`` quadrilaterals ``x1, y1, ..., x4, y4`` (absolute pixels).
        category_ids: int ``(G,)`` class indices.
        difficult: bool ``(G,)``; True for DOTA difficulty 1 or 2 (ignored by the devkit).
    """

    polys: np.ndarray
    category_ids: np.ndarray
    difficult: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "polys", np.asarray(self.polys, dtype=np.float64).reshape(-1, 8))
        object.__setattr__(self, "category_ids", np.asarray(self.category_ids, dtype=np.int64))
        object.__setattr__(self, "difficult", np.asarray(self.difficult, dtype=bool))
        if not len(self.polys) == len(self.category_ids) == len(self.difficult):
            raise ValueError(
                f"ImageObjects: {len(self.polys)} polygons, {len(self.category_ids)} classes and "
                f"{len(self.difficult)} difficult flags"
            )

    @classmethod
    def empty(cls) -> "ImageObjects":
        return cls(np.zeros((0, 8)), np.zeros(0, np.int64), np.zeros(0, bool))


@dataclass
class Task1Result:
    """Per-class and mean AP of one Task-1 evaluation (fractions in [0, 1], NaN where the devkit
    gives NaN).

    Attributes:
        ap: class name -> AP, in class order.
        mAP: sum of the APs / number of classes.
        num_gt: class name -> ``npos`` (ground truths that are not difficult).
        num_det: class name -> number of detections read.
        recall: class name -> recall at the last detection (NaN without ground truth).
        params: the protocol's parameters.
    """

    ap: Dict[str, float]
    mAP: float
    num_gt: Dict[str, int]
    num_det: Dict[str, int]
    recall: Dict[str, float]
    params: Dict[str, object] = field(default_factory=dict)


def voc_ap(rec: np.ndarray, prec: np.ndarray, use_07_metric: bool = True) -> float:
    """PASCAL VOC average precision, exactly as the devkit's ``voc_ap``.

    Args:
        rec, prec: ``(N,)`` recall and precision after each detection (score order).
        use_07_metric: 11-point interpolation on ``np.arange(0, 1.1, 0.1)`` (VOC07, the devkit's
            default); otherwise the area under the monotone precision envelope (VOC2010+).
    """
    rec = np.asarray(rec, dtype=np.float64)
    prec = np.asarray(prec, dtype=np.float64)
    if use_07_metric:
        ap = 0.0
        with np.errstate(invalid="ignore"):
            for t in np.arange(0.0, 1.1, 0.1):
                above = rec >= t
                p = 0 if np.sum(above) == 0 else np.max(prec[above])
                ap = ap + p / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _best_ground_truth(
    det_image: np.ndarray,
    det_polys: np.ndarray,
    gt_start: np.ndarray,
    gt_count: np.ndarray,
    gt_polys: np.ndarray,
):
    """For each detection, the largest IoU with its image's ground truths and which one.

    Args:
        det_image: int ``(D,)`` image index of each detection.
        det_polys: ``(D, 8)``.
        gt_start, gt_count: int ``(I,)`` the slice of each image in `gt_polys`.
        gt_polys: ``(G, 8)`` ground truths sorted by image, file order within an image.

    Returns:
        ovmax ``(D,)`` (-inf when no ground truth passes the box prefilter, NaN as the devkit's
        ``np.max`` gives it) and jmax ``(D,)`` (index into `gt_polys`, -1 if none).
    """
    nd = len(det_image)
    ovmax = np.full(nd, -np.inf)
    jmax = np.full(nd, -1, dtype=np.int64)
    counts = gt_count[det_image]
    gt_hbb, det_hbb = poly_to_hbb(gt_polys), poly_to_hbb(det_polys)
    cum = np.cumsum(counts)
    lo = 0
    while lo < nd:
        # a chunk of detections whose candidate pairs fit in memory (at least one detection)
        base = cum[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(cum, base + _PAIR_CHUNK, side="right")), lo + 1)
        c = counts[lo:hi]
        pair_det = np.repeat(np.arange(lo, hi), c)
        lo = hi
        if len(pair_det) == 0:
            continue
        offset = np.arange(len(pair_det)) - np.repeat(np.cumsum(c) - c, c)
        pair_gt = gt_start[det_image[pair_det]] + offset
        # devkit prefilter: axis-aligned IoU with "+1" widths must be > 0
        g, d = gt_hbb[pair_gt], det_hbb[pair_det]
        iw = np.minimum(g[:, 2], d[:, 2]) - np.maximum(g[:, 0], d[:, 0]) + 1.0
        ih = np.minimum(g[:, 3], d[:, 3]) - np.maximum(g[:, 1], d[:, 1]) + 1.0
        keep = (iw > 0) & (ih > 0)
        pair_det, pair_gt = pair_det[keep], pair_gt[keep]
        if len(pair_det) == 0:
            continue
        iou = devkit_poly_iou(gt_polys[pair_gt], det_polys[pair_det])
        seg_det, seg_start = np.unique(pair_det, return_index=True)  # pairs are sorted by det
        seg_max = np.maximum.reduceat(iou, seg_start)
        ovmax[seg_det] = seg_max
        is_max = iou == np.repeat(seg_max, np.diff(np.append(seg_start, len(iou))))
        first_det, first_pos = np.unique(pair_det[is_max], return_index=True)
        jmax[first_det] = pair_gt[is_max][first_pos]
    return ovmax, jmax


def class_average_precision(
    gt_polys: np.ndarray,
    gt_image: np.ndarray,
    gt_difficult: np.ndarray,
    num_images: int,
    det_image: np.ndarray,
    det_scores: np.ndarray,
    det_polys: np.ndarray,
    *,
    iou_thresh: float = 0.5,
    use_07_metric: bool = True,
):
    """AP of one class (the devkit's ``voc_eval``).

    Args:
        gt_polys: ``(G, 8)`` ground truths of the class over the image set.
        gt_image: int ``(G,)`` their image index in ``[0, num_images)``; within an image the
            order is the label file's.
        gt_difficult: bool ``(G,)``.
        num_images: size of the image set.
        det_image: int ``(D,)`` image index of each detection, in file order.
        det_scores: ``(D,)``.
        det_polys: ``(D, 8)``.
        iou_thresh: a detection matches when IoU > this (strict).
        use_07_metric: see :func:`voc_ap`.

    Returns:
        (ap, rec, prec): the AP and the ``(D,)`` recall/precision curves in score order.
    """
    gt_polys = np.asarray(gt_polys, dtype=np.float64).reshape(-1, 8)
    gt_image = np.asarray(gt_image, dtype=np.int64)
    gt_difficult = np.asarray(gt_difficult, dtype=bool)
    npos = int(np.sum(~gt_difficult))
    det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-det_scores)  # the devkit's (unstable) sort decides ties
    det_image = np.asarray(det_image, dtype=np.int64)[order]
    det_polys = np.asarray(det_polys, dtype=np.float64).reshape(-1, 8)[order]

    by_image = np.argsort(gt_image, kind="stable")
    gt_polys, gt_image, gt_difficult = (
        gt_polys[by_image],
        gt_image[by_image],
        gt_difficult[by_image],
    )
    gt_count = np.bincount(gt_image, minlength=num_images)
    gt_start = np.cumsum(gt_count) - gt_count
    ovmax, jmax = _best_ground_truth(det_image, det_polys, gt_start, gt_count, gt_polys)

    matched = ovmax > iou_thresh  # NaN and -inf never match
    hits_difficult = np.zeros(len(det_scores), dtype=bool)
    hits_difficult[matched] = gt_difficult[jmax[matched]]
    candidate = np.flatnonzero(matched & ~hits_difficult)
    _, first = np.unique(jmax[candidate], return_index=True)  # first detection on each GT wins
    tp = np.zeros(len(det_scores))
    tp[candidate[first]] = 1.0
    fp = 1.0 - tp - hits_difficult  # ignored detections are neither
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    with np.errstate(divide="ignore", invalid="ignore"):
        rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return voc_ap(rec, prec, use_07_metric), rec, prec


def evaluate_task1(
    ground_truth: Mapping[str, ImageObjects],
    detections: Mapping[str, ClassDetections],
    class_names: Sequence[str],
    *,
    iou_thresh: float = 0.5,
    use_07_metric: bool = True,
) -> Task1Result:
    """Score Task-1 detections against ground truth, as ``dota_evaluation_task1.py`` does.

    Args:
        ground_truth: image name -> :class:`ImageObjects`; its keys are the image set (images
            without any detection count as misses).
        detections: class name -> :class:`ClassDetections` (file order); a missing class means no
            detections (AP 0; the devkit raises on an empty file, see the module docstring).
        class_names: all classes of the version; the mAP divides by their number.
        iou_thresh: matching threshold (strict >), 0.5 in the devkit.
        use_07_metric: VOC07 11-point AP (devkit default) or area AP.

    Returns:
        :class:`Task1Result`.

    Raises:
        KeyError: a detection names an image outside the image set (the devkit raises too).
    """
    image_names = list(ground_truth.keys())
    image_index = {name: i for i, name in enumerate(image_names)}
    objects = [ground_truth[n] for n in image_names]
    sizes = [len(o.polys) for o in objects]
    all_polys = np.concatenate([o.polys for o in objects]) if objects else np.zeros((0, 8))
    all_cats = np.concatenate([o.category_ids for o in objects]) if objects else np.zeros(0, int)
    all_diff = np.concatenate([o.difficult for o in objects]) if objects else np.zeros(0, bool)
    all_image = np.repeat(np.arange(len(objects)), sizes)
    unknown = set(np.unique(all_cats).tolist()) - set(range(len(class_names)))
    if unknown:
        raise ValueError(
            f"ground truth has class ids {sorted(unknown)} outside {list(class_names)}"
        )

    ap, num_gt, num_det, recall = {}, {}, {}, {}
    for cls_id, name in enumerate(class_names):
        dets = detections.get(name, ClassDetections.empty())
        missing = [n for n in np.unique(dets.image_names) if n not in image_index]
        if missing:
            raise KeyError(
                f"detections of class {name!r} name {len(missing)} image(s) outside the ground "
                f"truth image set, e.g. {missing[:3]}"
            )
        det_image = np.array([image_index[n] for n in dets.image_names], dtype=np.int64)
        sel = all_cats == cls_id
        cls_ap, rec, _ = class_average_precision(
            all_polys[sel],
            all_image[sel],
            all_diff[sel],
            len(objects),
            det_image,
            dets.scores,
            dets.polys,
            iou_thresh=iou_thresh,
            use_07_metric=use_07_metric,
        )
        ap[name] = cls_ap
        num_gt[name] = int(np.sum(sel & ~all_diff))
        num_det[name] = len(dets)
        recall[name] = float(rec[-1]) if len(rec) else (0.0 if num_gt[name] else math.nan)
    empty = [name for name in class_names if num_det[name] == 0]
    if empty:
        logger.warning(
            f"DOTA Task 1: no detections of {len(empty)} class(es) {empty}: AP 0 (the devkit "
            "itself raises IndexError on an empty Task1_<class>.txt)"
        )
    total = 0.0
    for name in class_names:  # the devkit's summation order
        total = total + ap[name]
    return Task1Result(
        ap=ap,
        mAP=total / len(class_names),
        num_gt=num_gt,
        num_det=num_det,
        recall=recall,
        params={
            "protocol": "DOTA devkit Task 1",
            "iou_thresh": iou_thresh,
            "iou_strict": True,
            "use_07_metric": use_07_metric,
            "difficult": "ignored",
            "mean_over": "all classes",
            "num_images": len(image_names),
        },
    )
