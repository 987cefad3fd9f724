"""DOTA Task 1 (oriented boxes): the DOTA devkit's ``dota_evaluation_task1.py`` rules, vectorized.

evaluation.md section 5 is the specification; every rule of the devkit is kept:

* per class, ``npos`` counts the ground truths with difficulty 0; difficult ones (flag 1, and the
  split's flag 2) stay in the list and a detection whose best match is one of them is ignored;
* detections are read in file order and sorted by ``np.argsort(-score)`` (numpy's default, not
  stable, sort: the order of tied scores is the devkit's);
* a detection's IoU is taken only with the ground truths of its image whose axis-aligned boxes
  overlap in the devkit's "+1 pixel" sense, then computed exactly as ``polyiou.iou_poly`` does
  (signed triangle fans clipped against each other, so non-convex and self-intersecting
  quadrilaterals score like in the devkit); the best ground truth (first on ties) is the only
  candidate: IoU > 0.5 (strict) and unused -> TP, used -> FP, no fall-back to the second best;
* VOC07 11-point AP on the grid ``np.arange(0, 1.1, 0.1)`` (the devkit's ``main``), or the
  area (VOC2010+) AP; mAP is the sum of the per-class APs divided by the number of classes of
  the version, a class without ground truth contributing 0 (11-point) or NaN (area).

Where the devkit cannot produce a number, this module picks the obvious one and says so: an empty
``Task1_<class>.txt`` (the devkit raises IndexError) scores AP 0.

Task-1 submission files (``Task1_<class>.txt``, lines ``<image> <score> x1 y1 ... x4 y4`` in
absolute pixels of the full image) are read and written here too, so that the numbers an evaluator
reports are the numbers the devkit computes from the files it writes.

Nothing here imports detectron2 or torch.
"""

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from ...utils.geometry import poly_to_hbb

__all__ = [
    "ImageObjects",
    "ClassDetections",
    "Task1Result",
    "devkit_poly_iou",
    "voc_ap",
    "class_average_precision",
    "evaluate_task1",
    "task1_file_name",
    "format_task1_lines",
    "round_task1",
    "read_task1_file",
    "read_task1_dir",
    "write_task1_dir",
]

logger = logging.getLogger(__name__)

_SIG_EPS = 1e-8  # the devkit's polyiou tolerance for "on the line"
_FAST_CHUNK = 1 << 16  # pairs clipped at once on the convex path
_FAN_CHUNK = 1 << 12  # pairs clipped at once on the triangle-fan path (16 triangle pairs each)
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


@dataclass(frozen=True)
class ClassDetections:
    """The detections of one class, in the order of the lines of its ``Task1_<class>.txt``.

    Attributes:
        image_names: object array ``(N,)`` of image names (file stems of the full images).
        scores: float64 ``(N,)``.
        polys: float64 ``(N, 8)`` quadrilaterals in absolute pixels of the full image.
    """

    image_names: np.ndarray
    scores: np.ndarray
    polys: np.ndarray

    def __post_init__(self):
        names = np.empty(len(self.image_names), dtype=object)
        names[:] = [str(n) for n in self.image_names]
        object.__setattr__(self, "image_names", names)
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float64).reshape(-1))
        object.__setattr__(self, "polys", np.asarray(self.polys, dtype=np.float64).reshape(-1, 8))
        if not len(self.image_names) == len(self.scores) == len(self.polys):
            raise ValueError(
                f"ClassDetections: {len(self.image_names)} names, {len(self.scores)} scores and "
                f"{len(self.polys)} polygons"
            )

    @classmethod
    def empty(cls) -> "ClassDetections":
        return cls(np.zeros(0, dtype=object), np.zeros(0), np.zeros((0, 8)))

    def __len__(self) -> int:
        return len(self.scores)


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


# --------------------------------------------------------------------------------------------
# polygon IoU as polyiou.iou_poly computes it


def _sign(x: np.ndarray) -> np.ndarray:
    return np.where(x > _SIG_EPS, 1, np.where(x < -_SIG_EPS, -1, 0))


def _clip_left(points: np.ndarray, count: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Sutherland-Hodgman step: keep the part of each polygon left of the line ``a -> b``.

    Mirrors polyiou's ``polygon_cut``: a vertex is kept when it is strictly left (beyond the
    tolerance), and the crossing point is emitted wherever the side changes.

    Args:
        points: ``(K, M, 2)`` vertices; only the first ``count[k]`` of row k are used.
        count: ``(K,)`` number of vertices.
        a, b: ``(K, 2)`` the directed clip line of each row.

    Returns:
        ``(K, M + 2, 2)`` vertices and ``(K,)`` counts (a convex polygon gains at most 2).
    """
    k, m, _ = points.shape
    idx = np.arange(m)[None, :]
    valid = idx < count[:, None]
    nxt = np.where(idx + 1 < count[:, None], idx + 1, 0)
    following = np.take_along_axis(points, nxt[..., None], axis=1)
    e = b - a
    side = e[:, None, 0] * (points[..., 1] - a[:, None, 1]) - e[:, None, 1] * (
        points[..., 0] - a[:, None, 0]
    )
    side_next = np.take_along_axis(side, nxt, axis=1)
    sign, sign_next = _sign(side), _sign(side_next)
    keep_vertex = valid & (sign > 0)
    crossing = valid & (sign != sign_next)
    denom = np.where(crossing, side_next - side, 1.0)
    cross_pt = (points * side_next[..., None] - following * side[..., None]) / denom[..., None]
    out = np.stack([points, cross_pt], axis=2).reshape(k, 2 * m, 2)
    keep = np.stack([keep_vertex, crossing], axis=2).reshape(k, 2 * m)
    order = np.argsort(~keep, axis=1, kind="stable")[:, : m + 2]
    return np.take_along_axis(out, order[..., None], axis=1), keep.sum(axis=1)


def _ring_area(points: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Signed shoelace area of the first ``count`` vertices of each row of ``(K, M, 2)``."""
    m = points.shape[1]
    idx = np.arange(m)[None, :]
    first = points[:, :1, :]
    pts = np.where((idx < count[:, None])[..., None], points, first)  # pad with the first vertex
    x, y = pts[..., 0], pts[..., 1]
    area = 0.5 * np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1)
    return np.where(count >= 3, area, 0.0)


def _convex_intersection(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Intersection areas of positively oriented convex quadrilaterals ``(K, 4, 2)``."""
    pts, count = p, np.full(len(p), 4)
    for i in range(4):
        pts, count = _clip_left(pts, count, q[:, i], q[:, (i + 1) % 4])
    return np.abs(_ring_area(pts, count))


def _fan_intersection(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """polyiou's ``intersectArea`` for positively oriented quadrilaterals ``(K, 4, 2)``.

    Each polygon is a signed fan of triangles (origin, v_i, v_i+1); the result is the sum over
    the 16 triangle pairs of sign_i * sign_j * area(T_i ∩ T_j), i.e. the integral of the product
    of the two winding numbers, which is the exact intersection area for simple polygons.
    """
    k = len(p)
    a, b = p, np.roll(p, -1, axis=1)  # (K, 4, 2) edges of p
    c, d = q, np.roll(q, -1, axis=1)
    sa = _sign(a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0])  # (K, 4)
    sc = _sign(c[..., 0] * d[..., 1] - c[..., 1] * d[..., 0])
    # orient every triangle positively (polyiou swaps the two edge end points)
    a, b = np.where((sa < 0)[..., None], b, a), np.where((sa < 0)[..., None], a, b)
    c, d = np.where((sc < 0)[..., None], d, c), np.where((sc < 0)[..., None], c, d)
    # all 16 pairs: rows (K, i, j)
    ta = np.broadcast_to(a[:, :, None], (k, 4, 4, 2)).reshape(-1, 2)
    tb = np.broadcast_to(b[:, :, None], (k, 4, 4, 2)).reshape(-1, 2)
    tc = np.broadcast_to(c[:, None, :], (k, 4, 4, 2)).reshape(-1, 2)
    td = np.broadcast_to(d[:, None, :], (k, 4, 4, 2)).reshape(-1, 2)
    sign = (sa[:, :, None] * sc[:, None, :]).reshape(-1)
    origin = np.zeros_like(ta)
    pts = np.stack([origin, ta, tb], axis=1)
    count = np.full(len(pts), 3)
    for start, end in ((origin, tc), (tc, td), (td, origin)):
        pts, count = _clip_left(pts, count, start, end)
    areas = np.abs(_ring_area(pts, count)) * sign
    return areas.reshape(k, 16).sum(axis=1)


def devkit_poly_iou(polys_a, polys_b) -> np.ndarray:
    """IoU of quadrilaterals, pair by pair, computed as the devkit's ``polyiou.iou_poly``.

    ``inter`` is the fan-based intersection (see :func:`_fan_intersection`; for two convex
    quadrilaterals the equal and faster convex clip is used), ``union = |area(a)| + |area(b)| -
    inter`` with shoelace areas, ``iou = inter / union`` (NaN for two zero-area inputs).

    Args:
        polys_a, polys_b: ``(K, 8)`` quadrilaterals (absolute pixels), compared row by row.

    Returns:
        float64 ``(K,)``.
    """
    pa = np.asarray(polys_a, dtype=np.float64).reshape(-1, 4, 2)
    pb = np.asarray(polys_b, dtype=np.float64).reshape(-1, 4, 2)
    if pa.shape != pb.shape:
        raise ValueError(f"devkit_poly_iou: {len(pa)} vs {len(pb)} quadrilaterals")
    area_a = _ring_area(pa, np.full(len(pa), 4))
    area_b = _ring_area(pb, np.full(len(pb), 4))
    pa = np.where((area_a < 0)[:, None, None], pa[:, ::-1], pa)  # polyiou reverses negative ones
    pb = np.where((area_b < 0)[:, None, None], pb[:, ::-1], pb)
    inter = np.zeros(len(pa))
    convex = _is_convex(pa) & _is_convex(pb)
    fast, slow = np.flatnonzero(convex), np.flatnonzero(~convex)
    for s in range(0, len(fast), _FAST_CHUNK):
        rows = fast[s : s + _FAST_CHUNK]
        inter[rows] = _convex_intersection(pa[rows], pb[rows])
    for s in range(0, len(slow), _FAN_CHUNK):
        rows = slow[s : s + _FAN_CHUNK]
        inter[rows] = _fan_intersection(pa[rows], pb[rows])
    union = np.abs(area_a) + np.abs(area_b) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def _is_convex(quads: np.ndarray) -> np.ndarray:
    """bool ``(K,)``: the positively oriented ``(K, 4, 2)`` quadrilateral turns left everywhere."""
    e = np.roll(quads, -1, axis=1) - quads
    en = np.roll(e, -1, axis=1)
    turn = e[..., 0] * en[..., 1] - e[..., 1] * en[..., 0]
    return np.all(turn >= 0, axis=1)


# --------------------------------------------------------------------------------------------
# AP


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


# --------------------------------------------------------------------------------------------
# Task-1 files


def task1_file_name(class_name: str) -> str:
    """``Task1_<class>.txt``."""
    return f"Task1_{class_name}.txt"


def read_task1_file(path: Union[str, os.PathLike]) -> ClassDetections:
    """Read one ``Task1_<class>.txt`` in line order.

    Raises:
        ValueError: a line without exactly 10 fields (name, score, 8 coordinates) or with
            non-numbers; the message names the file and the line.
    """
    names: List[str] = []
    values: List[List[float]] = []
    with open(path, "r", encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            tokens = raw.split()
            if not tokens:
                continue
            if len(tokens) != 10:
                raise ValueError(
                    f"{path}:{lineno}: expected '<image> <score> x1 y1 x2 y2 x3 y3 x4 y4' "
                    f"(10 fields), got {len(tokens)}: {raw.strip()!r}"
                )
            try:
                values.append([float(t) for t in tokens[1:]])
            except ValueError:
                raise ValueError(
                    f"{path}:{lineno}: score and coordinates must be numbers: " f"{raw.strip()!r}"
                )
            names.append(tokens[0])
    arr = np.asarray(values, dtype=np.float64).reshape(-1, 9)
    return ClassDetections(np.asarray(names, dtype=object), arr[:, 0], arr[:, 1:])


def read_task1_dir(
    pred_dir: Union[str, os.PathLike], class_names: Iterable[str]
) -> Dict[str, ClassDetections]:
    """Read ``Task1_<class>.txt`` of every class from `pred_dir`.

    A class whose file is missing is an error (a submission has one file per class); an empty
    file means no detections.
    """
    out = {}
    for name in class_names:
        path = os.path.join(pred_dir, task1_file_name(name))
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"Task-1 submission {pred_dir} has no file for class {name!r} " f"({path})"
            )
        out[name] = read_task1_file(path)
    return out


def format_task1_lines(dets: ClassDetections) -> str:
    """The text of a ``Task1_<class>.txt``: ``<image> <score> x1 y1 ... y4`` per line.

    Scores are written with ``repr`` (they read back to the same float64) and coordinates with
    two decimals; :func:`round_task1` gives the values a reader gets back.
    """
    lines = [
        f"{name} {float(score)!r} " + " ".join(f"{v:.2f}" for v in poly)
        for name, score, poly in zip(dets.image_names, dets.scores, dets.polys)
    ]
    return "".join(line + "\n" for line in lines)


def round_task1(dets: ClassDetections) -> ClassDetections:
    """`dets` with the values a reader of :func:`write_task1_dir`'s files gets back."""
    return ClassDetections(dets.image_names, dets.scores, np.round(dets.polys, 2))


def write_task1_dir(
    out_dir: Union[str, os.PathLike],
    detections: Mapping[str, ClassDetections],
    class_names: Optional[Iterable[str]] = None,
) -> List[str]:
    """Write one ``Task1_<class>.txt`` per class (atomically), empty for a class without
    detections.

    Args:
        out_dir: created if missing.
        detections: class name -> detections, written in their order.
        class_names: classes to write (default: the keys of `detections`).

    Returns:
        the paths written.
    """
    from ...utils.atomic_io import atomic_write_text

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name in class_names if class_names is not None else detections.keys():
        path = os.path.join(out_dir, task1_file_name(name))
        atomic_write_text(path, format_task1_lines(detections.get(name, ClassDetections.empty())))
        paths.append(path)
    return paths
