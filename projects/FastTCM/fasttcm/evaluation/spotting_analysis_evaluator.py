"""SpottingAnalysisEvaluator: the end-to-end evaluator plus where its errors come from.

A :class:`~.text_e2e_evaluator.TextSpottingEvaluator` (same inputs, same settings, same files and
figures) that also splits the errors with :func:`~.spotting_analysis.analyze_spotting` on exactly
the ground truth and detections the evaluator scored (docs/spotting.md).
"""

import logging
import os
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from detectron2.config import configurable

from ..utils.atomic_io import atomic_write_json
from .protocols.base import ImageGroundTruth
from .protocols.polygons import as_vertex_array, is_buildable
from .protocols.result_files import round_scores
from .spotting_analysis import CropCriteria, SpottingAnalysis, analyze_spotting
from .spotting_report import write_analysis_files
from .text_e2e_evaluator import TextSpottingEvaluator

__all__ = ["SpottingAnalysisEvaluator", "PREDICTIONS_FILE"]

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "text_results.json"
"""The evaluator's per-image predictions (raw polygons, scores, texts; here also text scores and
ground-truth crop readings), which :meth:`SpottingAnalysisEvaluator.add_saved_predictions`
reads back."""


class SpottingAnalysisEvaluator(TextSpottingEvaluator):
    """:class:`TextSpottingEvaluator` + the spotting analysis.

    **Inputs** as the parent's; each output may also carry ``instances.text_scores`` (Tensor
    ``(N,)``, recognition confidence) and ``"gt_readings"``: ``{reading name: G str or None}``,
    the recognizer's reading of each ground-truth crop of the image, in the order of the ground
    truth this evaluator scores (:meth:`ground_truth_by_image_id`).

    With ``reading_gate``, the model is run without its reading gate
    (``TEST.SPOTTER.MIN_TEXT_SCORE`` 0) and the gate is applied here: detections whose
    ``text_scores`` fall below it are scored as the gated model would leave them (dropped), and
    kept aside so that the analysis can tell words the gate dropped from words the detector
    missed.

    **Outputs**: the parent's files (``text_results.json`` also keeps ``text_scores`` and
    ``gt_readings``, so :meth:`add_saved_predictions` can rerun everything from it) plus
    :data:`~.spotting_report.ANALYSIS_FILES`. The analysis is kept in :attr:`analysis`.

    **Returns** the parent's metrics plus ``"spotting_analysis"``: flat category counts
    (``gt_correct``, ``det_false_positive``, ...).
    """

    @configurable
    def __init__(
        self,
        dataset_name: str,
        *args,
        criteria: CropCriteria = CropCriteria(),
        reading_gate: Optional[float] = None,
        **kwargs,
    ):
        """
        Args:
            dataset_name, args, kwargs: as :class:`TextSpottingEvaluator`.
            criteria: the geometric crop test of the analysis.
            reading_gate: the spotter's ``TEST.SPOTTER.MIN_TEXT_SCORE``, applied here to outputs
                of the same spotter run with the gate at 0 (None: outputs are scored as given).
        """
        super().__init__(dataset_name, *args, **kwargs)
        self._criteria = criteria
        self._reading_gate = reading_gate
        self._gathered = None
        self.analysis: Optional[SpottingAnalysis] = None

    def process(self, inputs, outputs):
        """The parent's records, plus ``text_scores`` and ``gt_readings`` when present."""
        start = len(self._predictions)
        super().process(inputs, outputs)
        for record, output in zip(self._predictions[start:], outputs):
            fields = output["instances"].get_fields()
            if "text_scores" in fields:
                scores = fields["text_scores"]
                if hasattr(scores, "detach"):
                    scores = scores.detach().cpu().numpy()
                record["text_scores"] = np.asarray(scores, dtype=np.float64).reshape(-1)
            if "gt_readings" in output:
                record["gt_readings"] = _readings(output["gt_readings"], record["image_id"])
            if self._reading_gate is not None:
                _apply_reading_gate(record, self._reading_gate)

    def add_saved_predictions(self, records: Sequence[Mapping[str, Any]], source: str) -> None:
        """Collect predictions saved in a ``text_results.json`` instead of running a model.

        Args:
            records: the file's list: per image ``image_id``, ``polygons`` (lists of [x, y]),
                ``scores``, ``texts``, and optionally ``text_scores`` and ``gt_readings``.
            source: the file name, for error messages.

        Raises:
            ValueError: a record that is not of that form (naming `source` and the record).
        """
        if not isinstance(records, list):
            raise ValueError(f"{source}: expected a JSON list of per-image records")
        for i, record in enumerate(records):
            where = f"{source}, record {i}"
            detections = _saved_detections(record, where)  # also checks it is an object
            if "image_id" not in record:
                raise ValueError(f"{where}: missing key(s) ['image_id']")
            prediction = {"image_id": record["image_id"], **detections}
            if record.get("gt_readings") is not None:
                prediction["gt_readings"] = _readings(record["gt_readings"], where)
            if record.get("rejected") is not None:
                prediction["rejected"] = _saved_detections(
                    record["rejected"], f"{where}, rejected", require_text_scores=True
                )
            self._predictions.append(prediction)

    def ground_truth_by_image_id(self) -> Dict[Any, ImageGroundTruth]:
        """The ground truth this evaluator scores, by dataset ``image_id`` (original pixels)."""
        ground_truth, _, image_to_key, _ = self._load_ground_truth()
        return {i: ground_truth[k] for i, k in image_to_key.items() if k in ground_truth}

    def evaluate(self):
        self._gathered = None  # one gather serves the parent's scoring and the analysis
        try:
            return self._evaluate()
        finally:
            self._gathered = None

    def _gather_predictions(self):
        if self._gathered is None:
            self._gathered = (super()._gather_predictions(),)
        return self._gathered[0]

    def _evaluate(self):
        results = super().evaluate()
        if not results:  # not the main process
            return results
        predictions = self._gather_predictions()
        ground_truth, _, image_to_key, gt_source = self._load_ground_truth()
        detections = self._spotting_detections(predictions, image_to_key, gt_source)
        text_scores, readings = {}, {}
        for pred in predictions:
            key = image_to_key[pred["image_id"]]
            if "text_scores" in pred:
                text_scores[key] = pred["text_scores"][self._scored(pred)]
                if len(text_scores[key]) != len(detections[key]):
                    raise RuntimeError(
                        f"image {pred['image_id']!r}: the scored detections could not be aligned "
                        "with their text scores"
                    )
            if "gt_readings" in pred:
                readings[key] = pred["gt_readings"]
        gated = [
            {"image_id": p["image_id"], **p["rejected"]} for p in predictions if "rejected" in p
        ]
        rejected = self._spotting_detections(gated, image_to_key, gt_source) if gated else None
        self.analysis = analyze_spotting(
            ground_truth,
            detections,
            self._e2e_protocol,
            criteria=self._criteria,
            gt_readings=readings,
            text_scores=text_scores,
            rejected=rejected,
        )
        summary = self.analysis.summary()
        for name in ("e2e_none", "text_det"):
            if summary["metrics"][name] != results[name]:
                raise RuntimeError(
                    f"spotting analysis: {name} {summary['metrics'][name]} differs from the "
                    f"evaluator's {results[name]}"
                )
        if self._output_dir:
            write_analysis_files(self._output_dir, self.analysis, summary)
        counts = summary["counts"]
        results = OrderedDict(results)
        results["spotting_analysis"] = {
            f"{kind}_{name}": value
            for kind in ("gt", "det")
            for name, value in counts[kind].items()
        }
        return results

    # ------------------------------------------------------------------------------------------
    def _scored(self, pred: Mapping[str, Any]) -> np.ndarray:
        """bool ``(N,)``: the detections of one prediction record the parent scores."""
        buildable = np.array([is_buildable(p) for p in pred["polygons"]], dtype=bool)
        buildable = buildable.reshape(len(pred["polygons"]))
        return buildable & (round_scores(pred["scores"]) >= self._score_threshold)

    def _write_text_results(self, predictions: List[dict]) -> None:
        """The parent's ``text_results.json`` plus ``text_scores`` and ``gt_readings``."""
        records = []
        for p in predictions:
            record = {
                "image_id": p["image_id"],
                "polygons": [poly.tolist() for poly in p["polygons"]],
                "scores": p["scores"].tolist(),
                "texts": list(p["texts"]),
            }
            if "text_scores" in p:
                record["text_scores"] = p["text_scores"].tolist()
            if "gt_readings" in p:
                record["gt_readings"] = p["gt_readings"]
            if "rejected" in p:
                gated = p["rejected"]
                record["rejected"] = {
                    "polygons": [poly.tolist() for poly in gated["polygons"]],
                    "scores": gated["scores"].tolist(),
                    "texts": list(gated["texts"]),
                    "text_scores": gated["text_scores"].tolist(),
                }
            records.append(record)
        atomic_write_json(os.path.join(self._output_dir, PREDICTIONS_FILE), records)


def _readings(readings: Any, where: Any) -> Dict[str, List[Optional[str]]]:
    """``{name: list of str or None}`` checked, from a model output or a saved record."""
    if not isinstance(readings, Mapping):
        raise ValueError(f"{where}: 'gt_readings' must map a reading name to a list of readings")
    out = {}
    for name, texts in readings.items():
        texts = list(texts)
        if not all(t is None or isinstance(t, str) for t in texts):
            raise ValueError(f"{where}: 'gt_readings[{name!r}]' must hold strings or null")
        out[str(name)] = texts
    return out


def _apply_reading_gate(record: Dict[str, Any], gate: float) -> None:
    """Move the detections of one prediction record read below `gate` to ``record["rejected"]``.

    Compared in float32, as the spotter compares its float32 confidences.
    """
    if "text_scores" not in record:
        raise ValueError(
            f"image {record['image_id']!r}: a reading gate needs instances.text_scores"
        )
    keep = record["text_scores"].astype(np.float32) >= np.float32(gate)
    drop = np.flatnonzero(~keep)
    record["rejected"] = {
        "polygons": [record["polygons"][i] for i in drop],
        "scores": record["scores"][drop],
        "texts": [record["texts"][i] for i in drop],
        "text_scores": record["text_scores"][drop],
    }
    kept = np.flatnonzero(keep)
    record["polygons"] = [record["polygons"][i] for i in kept]
    record["scores"] = record["scores"][kept]
    record["texts"] = [record["texts"][i] for i in kept]
    record["text_scores"] = record["text_scores"][kept]


def _saved_detections(saved: Any, where: str, require_text_scores: bool = False) -> Dict[str, Any]:
    """Saved detections (``polygons``, ``scores``, ``texts``, optionally ``text_scores``) checked
    and as the evaluator keeps them (vertex arrays, float64 arrays, a list of str).

    Raises:
        ValueError: not of that form, naming `where`.
    """
    if not isinstance(saved, Mapping):
        raise ValueError(f"{where}: expected an object")
    required = ("polygons", "scores", "texts") + (("text_scores",) if require_text_scores else ())
    missing = [k for k in required if k not in saved]
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}")
    try:
        polygons = [as_vertex_array(p) for p in saved["polygons"]]
        scores = np.asarray(saved["scores"], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: bad polygons or scores: {e}") from e
    texts = saved["texts"]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"{where}: 'texts' must be a list of strings")
    if not len(polygons) == len(scores) == len(texts):
        raise ValueError(
            f"{where}: {len(polygons)} polygons, {len(scores)} scores, {len(texts)} texts"
        )
    detections = {"polygons": polygons, "scores": scores, "texts": list(texts)}
    if saved.get("text_scores") is not None:
        text_scores = np.asarray(saved["text_scores"], dtype=np.float64).reshape(-1)
        if len(text_scores) != len(texts):
            raise ValueError(f"{where}: {len(texts)} texts but {len(text_scores)} scores")
        detections["text_scores"] = text_scores
    return detections
