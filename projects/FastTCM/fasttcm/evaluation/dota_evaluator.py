"""DOTAEvaluator: DOTA Task-1 mAP of a rotated detector on merged full images.

A thin detectron2 wrapper over :mod:`fasttcm.evaluation.dota_merge` and
:mod:`fasttcm.evaluation.protocols.dota_ap`. The model runs on patches
(``<image>__<rate>__<x>___<y>``, see :mod:`fasttcm.data.dota_patch_names`; an unsplit image is
its own patch); the evaluator moves every detection back to its full image, merges with
class-wise rotated NMS (IoU > 0.1 suppressed), writes the ``Task1_<class>.txt`` files the DOTA
server and devkit read, and scores exactly their content against the full-image ``labelTxt``
files with the devkit's rules. ``tools/evaluate.py --task dota --gt GT_DIR --pred OUTPUT_DIR``
therefore reports the same numbers.

Next to the devkit's VOC07 AP50 the evaluator reports COCO-style rotated AP (AP@[.50:.95], AP50,
AP75, APs, APm, APl, per-class AP) from :mod:`fasttcm.evaluation.protocols.rotated_coco_ap`, on
the same merged detections and on the patches. Boxes are detectron2 XYWHA (angle in degrees,
counter-clockwise); a ground-truth quadrilateral enters it as its minimum-area rotated rectangle
(:func:`fasttcm.utils.geometry.poly_to_xywha`), whose ``w * h`` is also the area of the area
ranges, and DOTA ``difficult`` is COCO's ``iscrowd`` (ignored).
"""

import json
import logging
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np

from detectron2.config import configurable
from detectron2.data import DatasetCatalog
from detectron2.utils.logger import create_small_table

from ..data.datasets.dota_labels import read_dota_labels
from ..data.dota_patch_names import parse_patch_name
from ..utils.atomic_io import atomic_write_text
from ..utils.geometry import xywha_to_poly
from .dota_merge import merge_patch_detections
from .evaluator_base import EvaluatorBase
from .offline_dota import evaluate_task1_coco
from .protocols.dota_ap import ImageObjects, Task1Result, evaluate_task1
from .protocols.dota_task1_io import ClassDetections, round_task1, write_task1_dir
from .protocols.rotated_coco_ap import RotatedCocoResult, coco_metrics

__all__ = ["DOTAEvaluator"]

logger = logging.getLogger(__name__)


class DOTAEvaluator(EvaluatorBase):
    """DOTA Task 1 (oriented boxes): merged full-image VOC07 AP50 per class and their mean.

    **Inputs.** ``process`` takes the model inputs (dicts with ``"file_name"``; the file stem is
    the patch name) and outputs (dicts with ``"instances"``: :class:`Instances` with
    ``pred_boxes`` (:class:`RotatedBoxes` ``(N, 5)``, XYWHA in patch pixels, angle in degrees
    counter-clockwise), ``scores`` ``(N,)`` and ``pred_classes`` ``(N,)`` indexing the metadata's
    ``thing_classes``).

    **Ground truth** of the headline number: the full-image ``labelTxt`` files in the metadata's
    ``gt_dir`` (a directory or a list of them). The image set is every full image at least one
    of whose patches was processed. Without ``gt_dir`` (DOTA test) the evaluator only writes the
    submission files ("format only").

    **Outputs** (main process, written atomically into ``output_dir``): ``Task1_<class>.txt`` for
    every class (``<image> <score> x1 y1 x2 y2 x3 y3 x4 y4``, full-image pixels, an empty file
    for a class without detections) and ``eval_protocol.json``.

    **Returns** ``{"dota": {"mAP50", "AP50-<class>", ...}}`` in percent (detectron2 convention)
    on merged full images, and, with ``patch_level``, ``{"dota_patch": {...}}``: the same
    protocol on the patches against the dataset dicts' patch labels (truncated objects marked
    difficult 2 are ignored like difficult ones); patch-level numbers are *not* comparable with
    the DOTA server's.

    With ``coco_ap`` (default) it adds ``{"dota_coco": {"AP", "AP50", "AP75", "APs", "APm",
    "APl", "AP-<class>", ...}}`` (merged full images) and ``{"dota_patch_coco": {...}}``
    (patches), in percent, NaN where COCO has no number: COCO's rules on rotated boxes, see
    :mod:`~.protocols.rotated_coco_ap` (at most ``coco_max_dets`` detections per image and
    class are scored, best scores first; full DOTA images may hold more objects than COCO's 100).
    """

    @configurable
    def __init__(
        self,
        dataset_name: str,
        *args,
        merge_nms_thresh: float = 0.1,
        iou_thresh: float = 0.5,
        use_07_metric: bool = True,
        patch_level: bool = True,
        coco_ap: bool = True,
        coco_max_dets: int = 100,
        **kwargs,
    ):
        """
        Args:
            dataset_name: a registered dataset with ``evaluator_type == "dota"`` metadata
                (``thing_classes``; ``gt_dir`` for scoring).
            *args, **kwargs: ``output_dir`` (where the Task-1 files go; nothing is written when
                None) and ``distributed``, as in :class:`~.evaluator_base.EvaluatorBase`.
            merge_nms_thresh: rotated-NMS IoU threshold of the patch merge (devkit: 0.1).
            iou_thresh: Task-1 matching threshold, IoU > this (devkit: 0.5).
            use_07_metric: VOC07 11-point AP (devkit) or area AP.
            patch_level: also score the patches against the dataset dicts.
            coco_ap: also report COCO-style rotated AP (``dota_coco``, ``dota_patch_coco``;
                ``TEST.DOTA.COCO_AP``).
            coco_max_dets: detections per image and class the COCO-style AP keeps (COCO: 100;
                ``TEST.DOTA.COCO_MAX_DETS``).
        """
        super().__init__(dataset_name, *args, **kwargs)
        self._class_names: List[str] = list(self._metadata.thing_classes)
        self._merge_nms_thresh = merge_nms_thresh
        self._iou_thresh = iou_thresh
        self._use_07_metric = use_07_metric
        self._patch_level = patch_level
        self._coco_ap = coco_ap
        self._coco_max_dets = coco_max_dets

    @classmethod
    def from_config(cls, cfg, dataset_name: str, output_dir: Optional[str] = None):
        return {
            **super().from_config(cfg, dataset_name, output_dir),
            "merge_nms_thresh": cfg.TEST.DOTA.MERGE_NMS_THRESH,
            "iou_thresh": cfg.TEST.DOTA.IOU_THRESH,
            "use_07_metric": cfg.TEST.DOTA.USE_07_METRIC,
            "patch_level": cfg.TEST.DOTA.PATCH_LEVEL,
            "coco_ap": cfg.TEST.DOTA.COCO_AP,
            "coco_max_dets": cfg.TEST.DOTA.COCO_MAX_DETS,
        }

    def process(self, inputs, outputs):
        """Keep each patch's boxes ``(N, 5)``, scores ``(N,)`` and classes ``(N,)`` as numpy."""
        for inp, out in zip(inputs, outputs):
            patch = os.path.splitext(os.path.basename(inp["file_name"]))[0]
            if "instances" not in out:
                raise KeyError(
                    f"DOTAEvaluator({self._dataset_name}): the model output for {patch} has no "
                    "'instances'"
                )
            fields = out["instances"].to("cpu").get_fields()
            if not fields:  # nothing detected and no field set
                boxes, scores, classes = np.zeros((0, 5)), np.zeros(0), np.zeros(0, np.int64)
            else:
                missing = [f for f in ("pred_boxes", "scores", "pred_classes") if f not in fields]
                if missing:
                    raise KeyError(
                        f"DOTAEvaluator({self._dataset_name}): instances of {patch} lack "
                        f"{missing} (has {sorted(fields)})"
                    )
                boxes = fields["pred_boxes"].tensor.numpy().astype(np.float64)
                if boxes.ndim != 2 or boxes.shape[1] != 5:
                    raise ValueError(
                        f"DOTAEvaluator({self._dataset_name}): pred_boxes of {patch} must be "
                        f"rotated (N, 5) XYWHA boxes, got shape {tuple(boxes.shape)}"
                    )
                scores = fields["scores"].numpy().astype(np.float64)
                classes = fields["pred_classes"].numpy().astype(np.int64)
            self._predictions.append(
                {"patch": patch, "boxes": boxes, "scores": scores, "classes": classes}
            )

    def evaluate(self):
        predictions = self._gather_predictions()
        if predictions is None:
            return {}
        if not predictions:
            logger.warning(f"DOTAEvaluator({self._dataset_name}): no patch was processed")
            return {}
        patches = [p["patch"] for p in predictions]
        if len(set(patches)) != len(patches):
            raise ValueError(f"DOTAEvaluator({self._dataset_name}): a patch was processed twice")
        num_classes = len(self._class_names)
        classes = np.concatenate([p["classes"] for p in predictions])
        if len(classes) and (classes.min() < 0 or classes.max() >= num_classes):
            raise ValueError(
                f"DOTAEvaluator({self._dataset_name}): predicted class ids outside "
                f"[0, {num_classes})"
            )

        merged = merge_patch_detections(
            np.repeat(patches, [len(p["scores"]) for p in predictions]),
            np.concatenate([p["boxes"] for p in predictions]).reshape(-1, 5),
            np.concatenate([p["scores"] for p in predictions]),
            classes,
            nms_thresh=self._merge_nms_thresh,
        )
        # score what is written: coordinates with two decimals, scores exactly
        detections = {k: round_task1(v) for k, v in merged.by_class(self._class_names).items()}
        images = sorted({parse_patch_name(p).image for p in patches})
        if self._output_dir:
            write_task1_dir(self._output_dir, detections, self._class_names)

        results = OrderedDict()
        summary = {
            "dataset_name": self._dataset_name,
            "num_patches": len(patches),
            "num_images": len(images),
            "merge_nms_thresh": self._merge_nms_thresh,
        }
        gt_dirs = self._gt_dirs()
        if gt_dirs:
            ground_truth = {name: self._full_image_labels(name, gt_dirs) for name in images}
            result = self._score(ground_truth, detections)
            results["dota"] = _metrics(result)
            summary["merged"] = {"ground_truth": gt_dirs, **_summary(result)}
            logger.info(
                f"DOTA Task 1 on {self._dataset_name}: {len(images)} merged images, "
                f"{len(merged)} detections, ground truth {gt_dirs}; AP50 in percent:\n"
                + create_small_table(results["dota"])
            )
            if self._coco_ap:
                where = f"the {len(images)} merged images of {self._dataset_name}"
                self._add_coco_ap(ground_truth, detections, where, results, summary, "merged")
        else:
            logger.info(
                f"DOTAEvaluator({self._dataset_name}): no gt_dir in the metadata, format only: "
                f"{len(merged)} merged detections on {len(images)} images written to "
                f"{self._output_dir}"
            )
        if self._patch_level:
            patch_gt = self._patch_labels(set(patches))
            if patch_gt is not None:
                patch_dets = self._patch_detections(predictions)
                result = self._score(patch_gt, patch_dets)
                results["dota_patch"] = _metrics(result)
                summary["patch_level"] = _summary(result)
                logger.info(
                    f"DOTA Task 1 on the {len(patch_gt)} patches of {self._dataset_name} "
                    "(patch level, not comparable with the server):\n"
                    + create_small_table(results["dota_patch"])
                )
                if self._coco_ap:
                    where = f"the {len(patch_gt)} patches of {self._dataset_name} (patch level)"
                    self._add_coco_ap(patch_gt, patch_dets, where, results, summary, "patch")
        if self._output_dir:
            atomic_write_text(
                os.path.join(self._output_dir, "eval_protocol.json"),
                json.dumps(summary, indent=2, default=_json_default),
            )
        return results

    def _add_coco_ap(self, ground_truth, detections, where, results, summary, level) -> None:
        """COCO-style rotated AP of one level ("merged" images or "patch" level) into `results`
        (``dota_coco`` / ``dota_patch_coco``) and `summary` (``merged_coco`` /
        ``patch_level_coco``), and logged."""
        coco = self._score_coco(ground_truth, detections)
        result_key, summary_key = {
            "merged": ("dota_coco", "merged_coco"),
            "patch": ("dota_patch_coco", "patch_level_coco"),
        }[level]
        results[result_key] = coco_metrics(coco)
        summary[summary_key] = _coco_summary(coco)
        logger.info(
            f"COCO-style rotated AP on {where}, in percent:\n"
            + create_small_table(_headline(results[result_key]))
        )

    # ------------------------------------------------------------------------------------------
    def _score(self, ground_truth, detections) -> Task1Result:
        return evaluate_task1(
            ground_truth,
            detections,
            self._class_names,
            iou_thresh=self._iou_thresh,
            use_07_metric=self._use_07_metric,
        )

    def _score_coco(self, ground_truth, detections) -> RotatedCocoResult:
        """COCO-style rotated AP of Task-1 ground truth and detections (quadrilaterals), see
        :func:`~fasttcm.evaluation.offline_dota.evaluate_task1_coco`."""
        result = evaluate_task1_coco(
            ground_truth, detections, self._class_names, max_dets=self._coco_max_dets
        )
        if result.num_dropped:
            logger.info(
                f"DOTAEvaluator({self._dataset_name}): COCO-style AP scored at most "
                f"{self._coco_max_dets} detections per image and class; {result.num_dropped} "
                "lower-scored detections were left out"
            )
        return result

    def _gt_dirs(self) -> List[str]:
        gt_dir = self._metadata.get("gt_dir", None)
        if not gt_dir:
            return []
        dirs = [gt_dir] if isinstance(gt_dir, (str, os.PathLike)) else list(gt_dir)
        for d in dirs:
            if not os.path.isdir(d):
                raise FileNotFoundError(
                    f"DOTAEvaluator({self._dataset_name}): ground-truth directory {d} (metadata "
                    "gt_dir) does not exist"
                )
        return [os.fspath(d) for d in dirs]

    def _full_image_labels(self, image: str, gt_dirs: Sequence[str]) -> ImageObjects:
        for d in gt_dirs:
            path = os.path.join(d, image + ".txt")
            if os.path.isfile(path):
                # zero-area objects stay: the devkit counts them (they can never be matched)
                labels = read_dota_labels(path, self._class_names, degenerate="keep")
                return ImageObjects(labels.polys, labels.category_ids, labels.difficult)
        raise FileNotFoundError(
            f"DOTAEvaluator({self._dataset_name}): no label file {image}.txt in {list(gt_dirs)}"
        )

    def _patch_labels(self, patches) -> Optional[Dict[str, ImageObjects]]:
        """Patch-level ground truth from the dataset dicts, or None when they have no labels."""
        records = [
            r
            for r in DatasetCatalog.get(self._dataset_name)
            if os.path.splitext(os.path.basename(r["file_name"]))[0] in patches
        ]
        if not records or any("annotations" not in r for r in records):
            return None
        out = {}
        for r in records:
            annos = r["annotations"]
            out[os.path.splitext(os.path.basename(r["file_name"]))[0]] = ImageObjects(
                np.array([a["poly"] for a in annos], dtype=np.float64).reshape(-1, 8),
                np.array([a["category_id"] for a in annos], dtype=np.int64),
                np.array([a.get("difficult", False) for a in annos], dtype=bool),
            )
        return out

    def _patch_detections(self, predictions) -> Dict[str, ClassDetections]:
        names = np.repeat(
            [p["patch"] for p in predictions], [len(p["scores"]) for p in predictions]
        )
        boxes = np.concatenate([p["boxes"] for p in predictions]).reshape(-1, 5)
        scores = np.concatenate([p["scores"] for p in predictions])
        classes = np.concatenate([p["classes"] for p in predictions])
        polys = xywha_to_poly(boxes)
        return {
            name: ClassDetections(names[classes == k], scores[classes == k], polys[classes == k])
            for k, name in enumerate(self._class_names)
        }


def _metrics(result: Task1Result) -> Dict[str, float]:
    out = {"mAP50": 100.0 * result.mAP}
    out.update({f"AP50-{name}": 100.0 * ap for name, ap in result.ap.items()})
    return out


def _summary(result: Task1Result) -> dict:
    return {
        "mAP": result.mAP,
        "ap": result.ap,
        "num_gt": result.num_gt,
        "num_det": result.num_det,
        "recall": result.recall,
        **result.params,
    }


def _headline(metrics: Dict[str, float]) -> Dict[str, float]:
    return {k: v for k, v in metrics.items() if not k.startswith("AP-")}


def _coco_summary(result: RotatedCocoResult) -> dict:
    return {
        "stats": result.stats,
        "per_class_ap": result.per_class_ap,
        "num_dropped": result.num_dropped,
        **result.params,
    }


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value)}")
