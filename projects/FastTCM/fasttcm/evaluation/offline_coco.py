"""``tools/evaluate.py --task coco``: COCO bbox / segm AP of a results file, pycocotools' COCOeval.

The figures are those of detectron2's ``COCOEvaluator``: ``AP``, ``AP50``, ``AP75``, ``APs``,
``APm``, ``APl`` in percent; a figure COCOeval cannot compute (no ground truth in that area range,
no detections) is None (JSON null) where detectron2 reports NaN.
"""

import contextlib
import io
import json
from typing import Dict, List, Optional, Sequence

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

__all__ = ["COCO_METRICS", "IOU_TYPES", "evaluate_coco_files"]

COCO_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
"""The first six entries of ``COCOeval.stats``, detectron2's names."""

IOU_TYPES = ("bbox", "segm")


def _load_results(path: str) -> List[dict]:
    with open(path, encoding="utf-8") as f:
        try:
            results = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise ValueError(f"{path}: a COCO results file is a JSON list of objects")
    return results


def evaluate_coco_files(
    gt_path: str, pred_path: str, iou_types: Optional[Sequence[str]] = None, max_dets: int = 100
) -> Dict[str, Dict[str, Optional[float]]]:
    """COCO AP of the results file `pred_path` against the instances json `gt_path`.

    Args:
        gt_path: COCO instances json (e.g. ``coco_text_gt.json`` of ``TextCOCOEvaluator``, where
            don't-care text is ``iscrowd`` = 1).
        pred_path: COCO results json, a list of {"image_id", "category_id", "bbox" (XYWH),
            "score"[, "segmentation" (RLE or polygons)]} (detectron2's
            ``coco_instances_results.json``).
        iou_types: subset of ("bbox", "segm"); default: "bbox", and "segm" when every result
            has a "segmentation".
        max_dets: COCO's maxDets (the last of ``[1, 10, max_dets]``).

    Returns:
        {iou_type: {metric: percent or None}} for the metrics of :data:`COCO_METRICS`.

    Raises:
        ValueError: unreadable files, an unknown iou type, "segm" without segmentations, results
            of images the ground truth does not have.
    """
    results = _load_results(pred_path)
    if iou_types is None:
        iou_types = ["bbox"]
        if results and all("segmentation" in r for r in results):
            iou_types.append("segm")
    for iou_type in iou_types:
        if iou_type not in IOU_TYPES:
            raise ValueError(f"unknown iou type {iou_type!r}; known: {list(IOU_TYPES)}")
    if "segm" in iou_types and not all("segmentation" in r for r in results):
        raise ValueError(f"{pred_path}: --iou-type segm needs a 'segmentation' in every result")
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            coco_gt = COCO(gt_path)
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{gt_path}: not a COCO instances json ({e!r})") from None
    unknown = {r.get("image_id") for r in results} - set(coco_gt.getImgIds())
    if unknown:
        raise ValueError(
            f"{pred_path}: results of {len(unknown)} image id(s) the ground truth does not have, "
            f"e.g. {sorted(unknown, key=str)[0]!r}"
        )
    summary = {}
    for iou_type in iou_types:
        if not results:
            summary[iou_type] = {name: None for name in COCO_METRICS}
            continue
        per_type = results
        if iou_type == "segm":  # as detectron2: the area of a segm result is its mask's
            per_type = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = coco_gt.loadRes(per_type)
            coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
            coco_eval.params.maxDets = [1, 10, max_dets]
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        summary[iou_type] = {
            name: (float(value) * 100 if value >= 0 else None)
            for name, value in zip(COCO_METRICS, coco_eval.stats)
        }
    return summary
