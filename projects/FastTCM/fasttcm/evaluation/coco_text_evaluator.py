"""COCO-style bbox and segm AP of text detections (pycocotools), through detectron2's
:class:`~detectron2.evaluation.COCOEvaluator`.

The ground truth is not detectron2's ``convert_to_coco_json`` output: that converter sets
``iscrowd`` only from an annotation's own ``iscrowd`` key, so the text datasets' don't-care
instances (``ignore`` / ``"###"``) would become ordinary objects, counted as misses. Here
:func:`text_dicts_to_coco` writes every ignored instance with ``iscrowd = 1``: COCOeval then
neither counts it as a ground truth nor counts a detection matched to it as a false positive
(docs/protocols.md, "COCO AP of text detection").

Predictions: the segmentation of a detection is its polygon, encoded to RLE by pycocotools (the
rasterizer of the ground-truth polygons), not a full-image bitmask: about 2 ms for 100 polygons
on a 1280x720 image, against about 300 ms and 88 MiB through ``pred_masks``. Instances without
``polygons`` fall back to detectron2's ``instances_to_coco_json`` (``pred_masks``).

Frames: polygons and boxes are in original-image pixels, detectron2's continuous frame (pixel
(row i, column j) covers ``[j, j+1) x [i, i+1)``), COCO's boxes are XYWH.
"""

import contextlib
import io
import logging
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
from pycocotools import mask as mask_util
from pycocotools.coco import COCO

from detectron2.config import configurable
from detectron2.data import DatasetCatalog
from detectron2.data.catalog import Metadata
from detectron2.evaluation import COCOEvaluator
from detectron2.evaluation.coco_evaluation import instances_to_coco_json
from detectron2.structures import BoxMode
from detectron2.utils import comm

from ..structures.text import DONT_CARE_TEXT
from ..utils.atomic_io import atomic_write_json
from .output_dir import default_output_dir

__all__ = [
    "TEXT_CATEGORY_ID",
    "COCO_GT_FILE_NAME",
    "TextCOCOEvaluator",
    "text_dicts_to_coco",
    "text_instances_to_coco_json",
]

TEXT_CATEGORY_ID = 1
"""COCO ``category_id`` of "text" (the project text JSON's id); the models predict class 0."""

COCO_GT_FILE_NAME = "coco_text_gt.json"
"""The ground truth :class:`TextCOCOEvaluator` writes into its output folder."""


def _polygon_area(flat: Sequence[float]) -> float:
    """Shoelace area of a flat ``[x1, y1, ..., xn, yn]`` polygon."""
    points = np.asarray(flat, dtype=np.float64).reshape(-1, 2)
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2.0)


def text_dicts_to_coco(dataset_dicts: List[dict], description: str = "") -> dict:
    """COCO instances ground truth of text dataset dicts, ignored instances as crowd.

    Args:
        dataset_dicts: detectron2 dataset dicts of the text loaders: "image_id", "height",
            "width", "file_name" and "annotations" with "segmentation" (list of flat polygons,
            image pixels), "bbox" + "bbox_mode", optional "ignore" (bool) and "text"
            (``"###"`` = don't care).
        description: put in the json's "info".

    Returns:
        a COCO dict: one category ``{"id": 1, "name": "text"}``; annotations with "segmentation"
        (the polygons), "bbox" (XYWH), "area" (polygon area, pixels^2), "iscrowd" (1 when the
        instance is ignored or its text is ``"###"``, or its own "iscrowd" is set).
    """
    images, annotations = [], []
    for record in dataset_dicts:
        images.append(
            {
                "id": record["image_id"],
                "file_name": str(record.get("file_name", "")),
                "height": int(record["height"]),
                "width": int(record["width"]),
            }
        )
        for ann in record.get("annotations", []):
            box = BoxMode.convert(list(ann["bbox"]), ann["bbox_mode"], BoxMode.XYWH_ABS)
            polygons = [list(map(float, p)) for p in ann.get("segmentation", []) if len(p) >= 6]
            area = sum(_polygon_area(p) for p in polygons) if polygons else box[2] * box[3]
            ignored = bool(ann.get("ignore", False)) or ann.get("text") == DONT_CARE_TEXT
            entry = {
                "id": len(annotations) + 1,
                "image_id": record["image_id"],
                "category_id": TEXT_CATEGORY_ID,
                "bbox": [float(v) for v in box],
                "area": float(area),
                "iscrowd": int(ignored or bool(ann.get("iscrowd", 0))),
            }
            if polygons:
                entry["segmentation"] = polygons
            annotations.append(entry)
    return {
        "info": {"description": description},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": TEXT_CATEGORY_ID, "name": "text"}],
    }


def text_instances_to_coco_json(instances, image_id) -> List[Dict]:
    """COCO results of one image's text detections (category id 0, mapped by the evaluator).

    Args:
        instances: CPU :class:`~detectron2.structures.Instances` of the original image size with
            ``pred_boxes`` (XYXY), ``scores`` and ``polygons`` ((K_i, 2) (x, y) arrays); without
            ``polygons``, detectron2's ``instances_to_coco_json`` (``pred_masks``) is used.
        image_id: the image's id.

    Returns:
        one dict per detection: "image_id", "category_id" (0), "bbox" (XYWH), "score" and
        "segmentation" (compressed RLE of the polygon; an empty mask for fewer than 3 vertices).
    """
    if not instances.has("polygons"):
        return instances_to_coco_json(instances, image_id)
    height, width = instances.image_size
    boxes = BoxMode.convert(
        instances.pred_boxes.tensor.numpy(), BoxMode.XYXY_ABS, BoxMode.XYWH_ABS
    ).tolist()
    scores = instances.scores.tolist()
    results = []
    for polygon, box, score in zip(instances.polygons, boxes, scores):
        flat = np.asarray(polygon, dtype=np.float64).reshape(-1)
        if len(flat) >= 6 and np.isfinite(flat).all():
            rle = mask_util.merge(mask_util.frPyObjects([flat.tolist()], height, width))
        else:
            rle = mask_util.encode(np.zeros((height, width, 1), dtype=np.uint8, order="F"))[0]
        rle["counts"] = rle["counts"].decode("utf-8")
        results.append(
            {
                "image_id": image_id,
                "category_id": 0,
                "bbox": box,
                "score": float(score),
                "segmentation": rle,
            }
        )
    return results


class TextCOCOEvaluator(COCOEvaluator):
    """detectron2's :class:`COCOEvaluator` on a text dataset: bbox and segm AP (percent).

    The ground truth comes from :func:`text_dicts_to_coco` (ignored instances as crowd), written
    to ``<output_dir>/coco_text_gt.json`` next to detectron2's ``coco_instances_results.json``,
    so that ``tools/evaluate.py --task coco`` reproduces the figures offline. The dataset's
    metadata is not changed (its ``json_file`` is the project's text JSON, not COCO).
    Results: ``{"bbox": {"AP", "AP50", "AP75", "APs", "APm", "APl"}, "segm": {...}}``.
    """

    @configurable
    def __init__(
        self,
        dataset_name: str,
        output_dir: Optional[str] = None,
        *,
        distributed: bool = True,
        tasks: Sequence[str] = ("bbox", "segm"),
        max_dets_per_image: Optional[int] = None,
        use_fast_impl: bool = True,
    ):
        """
        Args:
            dataset_name: a registered text dataset (dicts as :func:`text_dicts_to_coco` reads).
            output_dir: where the ground truth and detectron2's result files go; None: nowhere.
            distributed: gather predictions from all processes and evaluate on the main one.
            tasks: COCO iou types to evaluate ("bbox", "segm").
            max_dets_per_image: COCO's maxDets (default 100).
            use_fast_impl: detectron2's ``COCOeval_opt`` instead of pycocotools' ``COCOeval``
                (same figures).
        """
        self._logger = logging.getLogger(__name__)
        self._distributed = distributed
        self._output_dir = output_dir
        self._use_fast_impl = use_fast_impl
        self._max_dets_per_image = [
            1,
            10,
            100 if max_dets_per_image is None else max_dets_per_image,
        ]
        self._tasks = tuple(tasks)
        self._kpt_oks_sigmas = ()
        # A private metadata: the text category id 1 <-> model class 0.
        self._metadata = Metadata(
            name=dataset_name,
            thing_classes=["text"],
            thing_dataset_id_to_contiguous_id={TEXT_CATEGORY_ID: 0},
        )
        coco_dict = text_dicts_to_coco(DatasetCatalog.get(dataset_name), dataset_name)
        if output_dir and comm.is_main_process():
            atomic_write_json(os.path.join(output_dir, COCO_GT_FILE_NAME), coco_dict)
        with contextlib.redirect_stdout(io.StringIO()):
            self._coco_api = COCO()
            self._coco_api.dataset = coco_dict
            self._coco_api.createIndex()
        self._do_evaluation = True

    @classmethod
    def from_config(cls, cfg, dataset_name: str, output_dir: Optional[str] = None) -> dict:
        """Arguments from ``cfg``: ``TEST.DETECTIONS_PER_IMAGE`` gives maxDets."""
        if output_dir is None:
            output_dir = default_output_dir(cfg, dataset_name)
        return {
            "dataset_name": dataset_name,
            "output_dir": output_dir,
            "max_dets_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
        }

    def process(self, inputs, outputs):
        """Collect COCO results of each output's "instances" (see
        :func:`text_instances_to_coco_json`)."""
        for inputs_i, output in zip(inputs, outputs):
            if "instances" not in output:
                continue
            instances = output["instances"].to("cpu")
            self._predictions.append(
                {
                    "image_id": inputs_i["image_id"],
                    "instances": text_instances_to_coco_json(instances, inputs_i["image_id"]),
                }
            )
