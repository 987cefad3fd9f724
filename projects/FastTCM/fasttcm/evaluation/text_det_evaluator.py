"""TextDetEvaluator: scene-text detection precision / recall / hmean under the split's protocol.

A thin detectron2 wrapper over ``protocols/`` (rules in docs/protocols.md): it collects the
model's polygons, writes the per-image submission files the official scripts read, and scores
exactly those files' content, so ``tools/evaluate.py --task det`` on the written ``det_txt/``
folder reports the same numbers.
"""

import logging
import os
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from detectron2.config import configurable
from detectron2.data import DatasetCatalog
from detectron2.utils.logger import create_small_table

from ..utils.atomic_io import atomic_write_json, replace_dir_atomic
from .evaluator_base import EvaluatorBase
from .protocols.base import ImageDetections, ImageGroundTruth, TextDetProtocol
from .protocols.polygons import as_vertex_array, is_buildable
from .protocols.result_files import (
    SCORE_DECIMALS,
    detection_file_name,
    format_det_line,
    round_scores,
)
from .protocols.submission_io import list_sample_files, parse_ground_truth, sample_key
from .protocols.text_det import (
    MMOCR_SCORE_THRESHOLDS,
    build_text_det_protocol,
    evaluate_text_detection,
)

__all__ = ["TextDetEvaluator"]

logger = logging.getLogger(__name__)

DEFAULT_PROTOCOL = "iou"  # the ICDAR IoU protocol is the headline (docs/design_choices.md)


class TextDetEvaluator(EvaluatorBase):
    """Evaluate text-detection polygons with the ICDAR IoU protocol or Total-Text DetEval.

    **Inputs.** ``process`` takes the model inputs (dicts with ``"image_id"``) and outputs
    (dicts with ``"instances"``: :class:`~detectron2.structures.Instances` with ``polygons``, a
    list of N ``(N_i, 2)`` float arrays or tensors of vertices (x, y) in original-image pixels,
    and ``scores``, a float Tensor ``(N,)``). Detections keep the model's order, which the greedy
    matching uses.

    **Ground truth.** The registered dataset dicts (``"annotations"`` with ``"segmentation":
    [[x1, y1, ..., xn, yn]]`` absolute pixels, ``"text"`` (``'###'`` = don't care) and
    ``"ignore"``), or, when the metadata has ``gt_dir``, the ``gt_<id>.txt`` files there (folder or
    zip), matched to images by file stem (``img_7.jpg`` <-> ``gt_img_7.txt``) or, when that
    matches fewer files, by image id. The ground truth defines the image set: an image never
    processed counts as having no detections.

    **What is scored** is what is written, as in the AdelaiDet pipeline: coordinates truncated to
    int (``integer_coords``), scores rounded to ``SCORE_DECIMALS`` decimals; predicted polygons
    with fewer than 3 vertices or non-finite coordinates are removed first.

    **Outputs** (main process, under ``output_dir`` when given, written atomically):
    ``det_txt/res_<id>.txt`` for every ground-truth image (``x1,y1,...,xn,yn,score``; empty when
    nothing was detected), ``text_results.json`` (per image: raw polygons and scores) and
    ``eval_protocol.json`` (protocol, parameters, totals, sweep table).

    **Returns** ``{"text_det": {"precision", "recall", "hmean"}}`` in percent (detectron2
    convention), plus ``sweep_precision/recall/hmean`` and ``sweep_score_thr``, the best hmean
    over score thresholds as MMOCR/TCM tables report it, when ``score_sweep`` is on.
    """

    @configurable
    def __init__(
        self,
        dataset_name: str,
        *args,
        protocol: Union[None, str, TextDetProtocol] = None,
        score_sweep: bool = True,
        score_thresholds: Sequence[float] = MMOCR_SCORE_THRESHOLDS,
        integer_coords: bool = True,
        **kwargs,
    ):
        """
        Args:
            dataset_name: a registered dataset with ``evaluator_type == "text_det"`` metadata.
            *args, **kwargs: ``output_dir`` (where to write the files above; nothing is written
                when None) and ``distributed``, as in :class:`~.evaluator_base.EvaluatorBase`.
            protocol: ``"iou"`` or ``"deteval"`` or a protocol instance; by default the metadata's
                ``eval_protocol`` (``"iou"`` when the metadata has none).
            score_sweep: also report the best hmean over `score_thresholds`.
            score_thresholds: thresholds of the sweep (default TCM's mmocr 0.4 values 0.3..0.9).
            integer_coords: truncate predicted coordinates to int before writing and scoring.
        """
        super().__init__(dataset_name, *args, **kwargs)
        if protocol is None:
            protocol = self._metadata.get("eval_protocol", DEFAULT_PROTOCOL)
        if isinstance(protocol, str):
            try:
                protocol = build_text_det_protocol(protocol)
            except KeyError as e:
                raise ValueError(f"dataset {dataset_name!r}: {e.args[0]}") from e
        self._protocol = protocol
        self._score_thresholds = tuple(score_thresholds) if score_sweep else None
        self._integer_coords = integer_coords

    def process(self, inputs, outputs):
        """Convert each output's ``instances`` (polygons, scores) to numpy and keep them."""
        for inp, out in zip(inputs, outputs):
            if "instances" not in out:
                raise KeyError(
                    f"TextDetEvaluator({self._dataset_name}): the model output for image "
                    f"{inp.get('image_id')!r} has no 'instances'"
                )
            polygons, scores = _polygons_and_scores(out["instances"], inp.get("image_id"))
            self._predictions.append(
                {"image_id": inp["image_id"], "polygons": polygons, "scores": scores}
            )

    def evaluate(self):
        predictions = self._gather_predictions()
        if predictions is None:
            return {}

        ground_truth, res_names, image_to_key, gt_source = self._load_ground_truth()
        detections = self._detections_by_key(predictions, image_to_key, gt_source)
        result = evaluate_text_detection(
            ground_truth, detections, self._protocol, score_thresholds=self._score_thresholds
        )
        metrics = result.metrics()
        logger.info(
            f"Text detection on {self._dataset_name} ({self._protocol.name} protocol, "
            f"{len(ground_truth)} images, GT from {gt_source}), in percent:\n"
            + create_small_table(metrics)
        )
        if self._output_dir:
            self._write_outputs(predictions, ground_truth, detections, res_names, result, gt_source)
        return OrderedDict({"text_det": metrics})

    # ------------------------------------------------------------------------------------------
    def _load_ground_truth(
        self,
    ) -> Tuple[Dict[str, ImageGroundTruth], Dict[str, str], Dict[object, str], str]:
        """Ground truth by sample key, res file name by key, image_id -> key, and its source."""
        dataset_dicts = DatasetCatalog.get(self._dataset_name)
        image_ids = [d["image_id"] for d in dataset_dicts]
        if len(set(image_ids)) != len(image_ids):
            raise ValueError(f"dataset {self._dataset_name!r} has duplicate image_id values")
        gt_dir = self._metadata.get("gt_dir", None)
        if not gt_dir:
            ground_truth = {
                str(d["image_id"]): _ground_truth_from_dict(d, self._dataset_name)
                for d in dataset_dicts
            }
            res_names = {k: detection_file_name(k) for k in ground_truth}
            image_to_key = {i: str(i) for i in image_ids}
            return ground_truth, res_names, image_to_key, "dataset dicts"

        if not os.path.exists(gt_dir):
            hint = self._metadata.get("convert_command", None)
            raise FileNotFoundError(
                f"dataset {self._dataset_name!r}: evaluation ground truth gt_dir={gt_dir} does not "
                "exist" + (f"; create it with: {hint}" if hint else "")
            )
        files = list_sample_files(gt_dir, "gt")
        if not files:
            raise ValueError(
                f"dataset {self._dataset_name!r}: gt_dir {gt_dir} holds no gt_<id>.txt files"
            )
        ground_truth = {k: parse_ground_truth(f.text, f.where) for k, f in files.items()}
        res_names = {
            k: ("res_" + f.name[3:] if f.name.startswith("gt_") else f.name)
            for k, f in files.items()
        }
        by_id = {d["image_id"]: sample_key(str(d["image_id"])) for d in dataset_dicts}
        # the GT file of an image is gt_<image stem>.txt, so the stem keys like that file name
        # (an image called gt_0.jpg has GT file gt_gt_0.txt, key "gt_0")
        by_stem = {
            d["image_id"]: sample_key("gt_" + os.path.splitext(os.path.basename(d["file_name"]))[0])
            for d in dataset_dicts
        }
        hits_id = sum(k in files for k in by_id.values())
        hits_stem = sum(k in files for k in by_stem.values())
        # The converters name GT files after the image stem; image ids win only with more hits.
        image_to_key = by_id if hits_id > hits_stem else by_stem
        how = "image_id" if hits_id > hits_stem else "file stem"
        return ground_truth, res_names, image_to_key, f"{gt_dir} (matched by {how})"

    def _detections_by_key(
        self, predictions: List[dict], image_to_key: Dict[object, str], gt_source: str
    ) -> Dict[str, ImageDetections]:
        detections: Dict[str, ImageDetections] = {}
        unmatched = []
        num_removed = 0
        for pred in predictions:
            key = image_to_key.get(pred["image_id"])
            if key is None:
                unmatched.append(pred["image_id"])
                continue
            if key in detections:
                raise ValueError(
                    f"TextDetEvaluator({self._dataset_name}): image {pred['image_id']!r} was "
                    "processed more than once"
                )
            polygons = pred["polygons"]
            buildable = [is_buildable(p) for p in polygons]
            num_removed += len(polygons) - sum(buildable)
            polygons = [p for p, ok in zip(polygons, buildable) if ok]
            if self._integer_coords:
                polygons = [np.trunc(p) for p in polygons]
            scores = round_scores(pred["scores"][np.array(buildable, dtype=bool)])
            detections[key] = ImageDetections.from_arrays(polygons, scores)
        if not detections:
            raise ValueError(
                f"TextDetEvaluator({self._dataset_name}): the ground truth ({gt_source}) matches 0 "
                f"of the {len(predictions)} processed images"
            )
        if unmatched:
            raise ValueError(
                f"TextDetEvaluator({self._dataset_name}): {len(unmatched)} processed image(s) are "
                f"not in the ground truth ({gt_source}), e.g. image_id {unmatched[:5]}"
            )
        if num_removed:
            logger.warning(
                f"{num_removed} predicted polygon(s) with fewer than 3 vertices or non-finite "
                "coordinates were removed before scoring"
            )
        return detections

    def _write_outputs(self, predictions, ground_truth, detections, res_names, result, gt_source):
        files = {}
        for key in ground_truth:
            det = detections.get(key, ImageDetections.empty())
            lines = [
                format_det_line(p, s, integer_coords=self._integer_coords)
                for p, s in zip(det.polygons, det.scores)
            ]
            files[res_names[key]] = "".join(line + "\n" for line in lines)
        replace_dir_atomic(os.path.join(self._output_dir, "det_txt"), files)
        self._write_text_results(predictions)
        atomic_write_json(
            os.path.join(self._output_dir, "eval_protocol.json"),
            {
                "dataset_name": self._dataset_name,
                "ground_truth": gt_source,
                "integer_coords": self._integer_coords,
                "score_decimals": SCORE_DECIMALS,
                "score_sweep_thresholds": self._score_thresholds,
                **result.summary(),
            },
            indent=2,
        )

    def _write_text_results(self, predictions: List[dict]) -> None:
        """Write ``text_results.json``: per image, the raw polygons and scores (and texts)."""
        records = [
            {
                "image_id": p["image_id"],
                "polygons": [poly.tolist() for poly in p["polygons"]],
                "scores": p["scores"].tolist(),
                **({"texts": list(p["texts"])} if "texts" in p else {}),
            }
            for p in predictions
        ]
        atomic_write_json(os.path.join(self._output_dir, "text_results.json"), records)


def _polygons_and_scores(instances, image_id) -> Tuple[List[np.ndarray], np.ndarray]:
    """``(list of (N_i, 2) float64 arrays, (N,) float64 scores)`` of one image's Instances."""
    fields = instances.get_fields()
    if not fields:  # an Instances with no field at all: nothing detected
        return [], np.zeros(0, dtype=np.float64)
    missing = [f for f in ("polygons", "scores") if f not in fields]
    if missing:
        raise KeyError(
            f"image {image_id!r}: instances lack field(s) {missing}; TextDetEvaluator needs "
            f"'polygons' and 'scores' (has {sorted(fields)})"
        )
    try:
        polygons = [as_vertex_array(p) for p in fields["polygons"]]
    except ValueError as e:
        raise ValueError(f"image {image_id!r}: bad predicted polygon: {e}") from e
    scores = fields["scores"]
    if hasattr(scores, "detach"):
        scores = scores.detach().cpu().numpy()
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(polygons):
        raise ValueError(f"image {image_id!r}: {len(polygons)} polygons but {len(scores)} scores")
    return polygons, scores


def _ground_truth_from_dict(record: dict, dataset_name: str) -> ImageGroundTruth:
    """Ground truth of one detectron2 dataset dict (one polygon per annotation)."""
    polygons, texts, ignore = [], [], []
    for i, ann in enumerate(record.get("annotations", [])):
        segmentation = ann.get("segmentation")
        if not isinstance(segmentation, (list, tuple)) or len(segmentation) != 1:
            raise ValueError(
                f"dataset {dataset_name!r}, image {record['image_id']!r}, annotation {i}: "
                "'segmentation' must hold exactly one polygon [[x1, y1, ..., xn, yn]]"
            )
        polygon = as_vertex_array(segmentation[0])
        if len(polygon) < 3 or not np.isfinite(polygon).all():
            raise ValueError(
                f"dataset {dataset_name!r}, image {record['image_id']!r}, annotation {i}: "
                "the polygon needs >= 3 finite points"
            )
        polygons.append(polygon)
        texts.append(str(ann.get("text", "")))
        ignore.append(bool(ann.get("ignore", False)))
    return ImageGroundTruth.from_annotations(polygons, texts, ignore)
