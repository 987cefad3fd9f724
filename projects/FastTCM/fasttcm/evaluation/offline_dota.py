"""Offline DOTA Task-1 evaluation of ``Task1_<class>.txt`` files: ``tools/evaluate.py --task dota``.

The same computation as the devkit's ``dota_evaluation_task1.py``: the image set is every
``<image>.txt`` in the ground-truth ``labelTxt`` folder, the submission folder must hold one
``Task1_<class>.txt`` per class of the version, and the result is the per-class VOC07 AP at
IoU 0.5 and their mean over all classes. Quadrilaterals are ``x1, y1, ..., x4, y4`` in absolute
pixels of the full image. Nothing here imports detectron2.
"""

import os
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from ..data.datasets.dota_labels import read_dota_labels
from ..data.datasets.dota_meta import canonical_dota_version, dota_class_names
from ..utils.geometry import poly_to_xywha
from .protocols.dota_ap import ImageObjects, Task1Result, evaluate_task1
from .protocols.dota_task1_io import ClassDetections, read_task1_dir
from .protocols.rotated_coco_ap import (
    RotatedCocoResult,
    RotatedDetections,
    RotatedObjects,
    evaluate_rotated_coco,
)

__all__ = ["load_ground_truth_dir", "evaluate_task1_dirs", "evaluate_task1_coco", "run_dota"]


def load_ground_truth_dir(gt_dir: str, class_names: Sequence[str]) -> Dict[str, ImageObjects]:
    """Every ``<image>.txt`` of a DOTA ``labelTxt`` folder, by image name (sorted).

    Zero-area objects are kept (the devkit counts them as ground truth); malformed lines and
    unknown classes are errors naming file and line.
    """
    if not os.path.isdir(gt_dir):
        raise FileNotFoundError(f"ground-truth folder {gt_dir} does not exist")
    names = sorted(f[:-4] for f in os.listdir(gt_dir) if f.endswith(".txt"))
    if not names:
        raise ValueError(f"{gt_dir}: no <image>.txt label files")
    out = {}
    for name in names:
        labels = read_dota_labels(
            os.path.join(gt_dir, name + ".txt"), class_names, degenerate="keep"
        )
        out[name] = ImageObjects(labels.polys, labels.category_ids, labels.difficult)
    return out


def evaluate_task1_dirs(
    gt_dir: str,
    pred_dir: str,
    version="1.0",
    *,
    iou_thresh: float = 0.5,
    use_07_metric: bool = True,
    class_names: Optional[Sequence[str]] = None,
) -> Task1Result:
    """Score a Task-1 submission folder against a ``labelTxt`` folder (devkit rules).

    Args:
        gt_dir: full-image ``labelTxt`` files; they define the image set.
        pred_dir: ``Task1_<class>.txt`` for every class.
        version: DOTA version giving the classes (``"1.0"``/``"dota10"``, ``"1.5"``/``"dota15"``).
        iou_thresh, use_07_metric: see :func:`evaluate_task1`.
        class_names: overrides the version's classes.
    """
    classes = list(class_names) if class_names is not None else dota_class_names(version)
    ground_truth = load_ground_truth_dir(gt_dir, classes)
    detections = read_task1_dir(pred_dir, classes)
    return evaluate_task1(
        ground_truth, detections, classes, iou_thresh=iou_thresh, use_07_metric=use_07_metric
    )


def evaluate_task1_coco(
    ground_truth: Mapping[str, ImageObjects],
    detections: Mapping[str, ClassDetections],
    class_names: Sequence[str],
    *,
    max_dets: int = 100,
    iou_thresholds: Optional[Sequence[float]] = None,
) -> RotatedCocoResult:
    """COCO-style rotated AP of Task-1 ground truth and detections (quadrilaterals).

    Quadrilaterals ``(N, 8)`` become detectron2 XYWHA boxes (degrees, counter-clockwise) with
    :func:`~fasttcm.utils.geometry.poly_to_xywha` (a label quadrilateral enters as its
    minimum-area rotated rectangle); difficult ground truth is ``iscrowd`` (ignored). Rules:
    :mod:`~fasttcm.evaluation.protocols.rotated_coco_ap`.

    Args:
        ground_truth: image name -> :class:`ImageObjects` (the image set).
        detections: class name -> :class:`ClassDetections`; a missing class has none.
        class_names: the classes; ground-truth ``category_ids`` index them.
        max_dets: detections kept per image and class (COCO: 100).
        iou_thresholds: see :func:`~.protocols.rotated_coco_ap.evaluate_rotated_coco`.
    """
    rotated_gt = {
        name: RotatedObjects(poly_to_xywha(o.polys), o.category_ids, o.difficult)
        for name, o in ground_truth.items()
    }
    per_image: Dict[str, list] = {}
    for k, name in enumerate(class_names):
        dets = detections.get(name, ClassDetections.empty())
        boxes = poly_to_xywha(dets.polys)
        for image in np.unique(dets.image_names):
            sel = dets.image_names == image
            per_image.setdefault(image, []).append(
                (boxes[sel], dets.scores[sel], np.full(int(sel.sum()), k))
            )
    rotated_dets = {
        image: RotatedDetections(
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )
        for image, parts in per_image.items()
    }
    return evaluate_rotated_coco(
        rotated_gt, rotated_dets, class_names, max_dets=max_dets, iou_thresholds=iou_thresholds
    )


def run_dota(args) -> dict:
    """``tools/evaluate.py --task dota``: the JSON dict printed as the last line.

    Reads ``args.gt``, ``args.pred``, ``args.classes`` (``dota10``/``dota15``) and, when present,
    ``args.area_ap`` (area AP instead of VOC07 11-point). APs are in percent.
    """
    version = canonical_dota_version(getattr(args, "classes", None) or "dota10")
    use_07 = not getattr(args, "area_ap", False)
    result = evaluate_task1_dirs(args.gt, args.pred, version, use_07_metric=use_07)
    print(f"DOTA-v{version} Task 1, {result.params['num_images']} images, AP50 in percent:")
    width = max(len(c) for c in result.ap)
    for name, ap in result.ap.items():
        print(
            f"  {name:<{width}}  {100.0 * ap:6.2f}  (gt {result.num_gt[name]}, det "
            f"{result.num_det[name]})"
        )
    print(f"  {'mAP':<{width}}  {100.0 * result.mAP:6.2f}")
    return {
        "task": "dota",
        "mAP": 100.0 * result.mAP,
        "AP": {name: 100.0 * ap for name, ap in result.ap.items()},
        "num_gt": result.num_gt,
        "num_det": result.num_det,
        **result.params,
    }
