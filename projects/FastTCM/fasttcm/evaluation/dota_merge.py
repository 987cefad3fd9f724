"""Merge detections on DOTA patches back into full images, for the Task-1 evaluation.

A patch named ``<image>__<rate>__<x>___<y>`` (see :mod:`fasttcm.data.dota_patch_names`) was cut
at ``(x, y)`` from ``<image>`` resized by ``rate``. A detection on it is moved to the full image by
adding ``(x, y)`` and dividing by ``rate``; then, per full image and class, greedy rotated NMS on
the highest score suppresses the other boxes that overlap it by IoU 0.1, as the devkit's
``ResultMerge_multi_process`` does. It runs on rotated boxes here, through detectron2's
``batched_nms_rotated``, whose kernel drops IoU >= 0.1 where the devkit's polygon NMS drops
IoU > 0.1; the two differ only for an overlap of exactly 0.1.

Boxes are detectron2 XYWHA (``cx, cy, w, h, angle``; degrees, counter-clockwise on screen) in
absolute pixels; polygons are DOTA quadrilaterals ``x1, y1, ..., x4, y4``. A NaN or infinite score,
box or polygon is an error (naming the file and line for a ``Task1_<class>.txt`` input, the patch
and row otherwise): NMS would keep or drop such boxes arbitrarily.
"""

import logging
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from detectron2.layers import batched_nms_rotated

from ..data.dota_patch_names import parse_patch_name
from ..utils.geometry import poly_to_xywha, xywha_to_poly
from .protocols.dota_task1_io import ClassDetections, read_task1_file, write_task1_dir

__all__ = [
    "MergedDetections",
    "merge_patch_detections",
    "merge_task1_dir",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MergedDetections:
    """Detections on full images after merging.

    Attributes:
        image_names: object ``(N,)`` full-image names.
        boxes: float64 ``(N, 5)`` XYWHA in absolute pixels of the full image.
        polys: float64 ``(N, 8)`` their quadrilaterals (the input polygons moved back when those
            were given, else the boxes' corners).
        scores: float64 ``(N,)``.
        classes: int64 ``(N,)``.
    Rows are grouped by image (sorted names), then by descending score.
    """

    image_names: np.ndarray
    boxes: np.ndarray
    polys: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def by_class(self, class_names: Sequence[str]) -> Dict[str, ClassDetections]:
        """Task-1 view: class name -> :class:`ClassDetections` in this object's row order."""
        return {
            name: ClassDetections(
                self.image_names[self.classes == k],
                self.scores[self.classes == k],
                self.polys[self.classes == k],
            )
            for k, name in enumerate(class_names)
        }


def _check_finite(patch_names, scores, boxes, polys) -> None:
    """ValueError naming the first detection whose score, box or polygon is not finite."""
    finite = np.isfinite(scores) & np.isfinite(boxes).all(axis=1)
    if polys is not None:
        finite &= np.isfinite(polys).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise ValueError(
            f"merge_patch_detections: detection {row} on patch {patch_names[row]!r} has a "
            f"non-finite score, box or polygon (score {scores[row]}); "
            f"{int((~finite).sum())} of {len(finite)} detections are not finite"
        )


def merge_patch_detections(
    patch_names: Sequence[str],
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    *,
    polys: Optional[np.ndarray] = None,
    nms_thresh: float = 0.1,
) -> MergedDetections:
    """Move patch detections to their full images and run class-wise rotated NMS per image.

    Args:
        patch_names: ``(N,)`` the patch each detection was found on (see
            :func:`~fasttcm.data.dota_patch_names.parse_patch_name`).
        boxes: ``(N, 5)`` XYWHA in absolute pixels of the patch.
        scores: ``(N,)``.
        classes: ``(N,)`` integer class ids.
        polys: optional ``(N, 8)`` quadrilaterals in patch pixels (e.g. read from patch-level
            Task-1 files); moved along and returned for the kept detections. NMS always runs
            on `boxes`.
        nms_thresh: a box is suppressed by a higher-scoring box of the same image and class
            when their rotated IoU reaches this (the devkit's 0.1).

    Returns:
        :class:`MergedDetections`.

    Raises:
        ValueError: inputs of different lengths, or a non-finite score, box or polygon.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5).copy()
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    n = len(boxes)
    if not len(patch_names) == n == len(scores) == len(classes):
        raise ValueError(
            f"merge_patch_detections: {len(patch_names)} names, {n} boxes, {len(scores)} scores, "
            f"{len(classes)} classes"
        )
    if polys is not None:
        polys = np.asarray(polys, dtype=np.float64).reshape(-1, 8).copy()
        if len(polys) != n:
            raise ValueError(f"merge_patch_detections: {len(polys)} polygons for {n} boxes")
    _check_finite(patch_names, scores, boxes, polys)

    unique_patches, patch_index = np.unique(np.asarray(patch_names, dtype=str), return_inverse=True)
    origins = [parse_patch_name(p) for p in unique_patches]
    rate = np.array([o.rate for o in origins])[patch_index]
    shift = np.array([[o.x, o.y] for o in origins], dtype=np.float64).reshape(-1, 2)[patch_index]
    boxes[:, :2] = (boxes[:, :2] + shift) / rate[:, None]
    boxes[:, 2:4] /= rate[:, None]
    if polys is not None:
        polys = (polys + np.tile(shift, 4)) / rate[:, None]

    images, image_index = np.unique(
        np.array([o.image for o in origins], dtype=object)[patch_index].astype(str),
        return_inverse=True,
    )
    order = np.lexsort((-scores, image_index))  # by image, then by descending score
    bounds = np.searchsorted(image_index[order], np.arange(len(images) + 1))
    kept: List[np.ndarray] = []
    for i in range(len(images)):  # one NMS call per full image, classes kept apart
        rows = order[bounds[i] : bounds[i + 1]]
        keep = batched_nms_rotated(
            torch.from_numpy(boxes[rows]).float(),
            torch.from_numpy(scores[rows]).float(),
            torch.from_numpy(classes[rows]),
            nms_thresh,
        ).numpy()
        # batched_nms_rotated returns descending scores; make ties deterministic
        kept.append(rows[np.sort(keep)])
    keep = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    out_polys = polys[keep] if polys is not None else xywha_to_poly(boxes[keep])
    return MergedDetections(
        image_names=images[image_index[keep]].astype(object),
        boxes=boxes[keep],
        polys=out_polys,
        scores=scores[keep],
        classes=classes[keep],
    )


def merge_task1_dir(
    in_dir: str,
    out_dir: str,
    class_names: Optional[Sequence[str]] = None,
    *,
    nms_thresh: float = 0.1,
) -> MergedDetections:
    """Merge patch-level ``Task1_<class>.txt`` files into full-image ones.

    Args:
        in_dir: directory of ``Task1_<class>.txt`` whose image names are patch names.
        out_dir: where the merged files are written (one per class, atomically).
        class_names: classes to read and write (a missing input file means no detections);
            default: every ``Task1_*.txt`` in `in_dir`, sorted.
        nms_thresh: see :func:`merge_patch_detections`.

    Returns:
        the merged detections (class ids index `class_names`).

    Raises:
        ValueError: a malformed or non-finite line of an input file (naming the file and line).
    """
    if class_names is None:
        class_names = sorted(
            f[len("Task1_") : -len(".txt")]
            for f in os.listdir(in_dir)
            if f.startswith("Task1_") and f.endswith(".txt")
        )
        if not class_names:
            raise FileNotFoundError(f"no Task1_<class>.txt files in {in_dir}")
    per_class = []
    for k, name in enumerate(class_names):
        path = os.path.join(in_dir, f"Task1_{name}.txt")
        if not os.path.isfile(path):
            logger.warning(f"{path} does not exist: no detections of class {name!r}")
            continue
        per_class.append((k, read_task1_file(path)))
    if not per_class:
        raise FileNotFoundError(
            f"none of the Task1_<class>.txt files of {list(class_names)} is in {in_dir}"
        )
    names = np.concatenate([d.image_names for _, d in per_class]).astype(str)
    polys = np.concatenate([d.polys for _, d in per_class]).reshape(-1, 8)
    scores = np.concatenate([d.scores for _, d in per_class])
    classes = np.concatenate([np.full(len(d), k) for k, d in per_class]).astype(np.int64)
    merged = merge_patch_detections(
        names, poly_to_xywha(polys), scores, classes, polys=polys, nms_thresh=nms_thresh
    )
    write_task1_dir(out_dir, merged.by_class(class_names), class_names)
    logger.info(
        f"Merged {len(scores)} patch detections into {len(merged)} on "
        f"{len(np.unique(merged.image_names))} images -> {out_dir}"
    )
    return merged
