"""TextSpottingEvaluator: end-to-end text spotting P/R/hmean under the RRC rules, with lexicons.

A detectron2 wrapper over ``protocols/e2e.py`` and ``protocols/lexicon.py`` (docs/protocols.md,
"End-to-end text spotting" and "Lexicons"). It shares the ground-truth loading of
:class:`~.text_det_evaluator.TextDetEvaluator` (dataset dicts or the metadata's ``gt_dir``),
writes the per-image result files the official scripts read, and scores exactly what it writes,
so ``tools/evaluate.py --task e2e`` on the written folders reports the same numbers.
"""

import logging
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from tabulate import tabulate

from detectron2.config import configurable

from ..utils.atomic_io import atomic_write_json, replace_dir_atomic
from .protocols.base import ImageDetections
from .protocols.e2e import E2EProtocol, TextSpottingResult, evaluate_text_spotting
from .protocols.lexicon import (
    FAR_OFF_RULES,
    LEXICON_TYPES,
    LexiconCorrector,
    LexiconError,
    build_lexicon_corrector,
)
from .protocols.polygons import is_buildable
from .protocols.result_files import SCORE_DECIMALS, format_spotting_det_line, round_scores
from .text_det_evaluator import TextDetEvaluator, _polygons_and_scores

__all__ = ["TextSpottingEvaluator"]

logger = logging.getLogger(__name__)


class TextSpottingEvaluator(TextDetEvaluator):
    """End-to-end text spotting: RRC matching + transcription test, no lexicon and with lexicons.

    **Inputs.** ``process`` takes the model inputs (dicts with ``"image_id"``) and outputs (dicts
    with ``"instances"``: :class:`~detectron2.structures.Instances` with ``polygons``, a list of N
    ``(N_i, 2)`` float arrays or tensors of vertices (x, y) in original-image pixels, ``scores``, a
    float Tensor ``(N,)``, and ``texts``, a list of N recognised strings). Detections keep the
    model's order, which the greedy matching uses.

    **Ground truth** as in :class:`TextDetEvaluator`: the dataset dicts (``"segmentation"``,
    ``"text"``, ``"ignore"``) or the ``gt_<id>.txt`` files of the metadata's ``gt_dir``.

    **What is scored** is what is written: detections with a (rounded) score below
    ``score_threshold`` and polygons with fewer than 3 vertices or non-finite coordinates are
    removed, coordinates truncated to int (``integer_coords``), scores rounded to
    ``SCORE_DECIMALS`` decimals, transcriptions stripped of surrounding whitespace (AdelaiDet).

    **Lexicons.** Each lexicon type in `lexicon_types` is read from `lexicon_dir` (file names in
    :data:`~.protocols.lexicon.LEXICON_FILES`) and scored with `far_off_rule`. When
    `lexicon_types` is None, the metadata's ``lexicon_types`` are used and a lexicon whose files
    are missing is skipped with a warning; a lexicon requested explicitly must exist.

    **Outputs** (main process, under ``output_dir`` when given, written atomically):
    ``e2e_txt/res_<id>.txt`` for every ground-truth image (``x1,y1,...,xn,yn,score,transcription``;
    empty when nothing was detected), ``e2e_txt_<lexicon>/res_<id>.txt`` (the corrected words of
    the detections each lexicon run keeps), ``text_results.json`` (per image: raw polygons, scores
    and texts) and ``e2e_eval.json`` (settings, totals and metrics).

    **Returns** ``{"e2e_none": {"precision", "recall", "hmean"}, "e2e_<lexicon>": {...},
    "text_det": {...}}`` in percent; ``text_det`` is the detection-only figure of the same
    predictions (the official script's ``DETECTION_ONLY_RESULTS``).
    """

    @configurable
    def __init__(
        self,
        dataset_name: str,
        *args,
        lexicon_types: Optional[Sequence[str]] = None,
        lexicon_dir: Optional[str] = None,
        word_spotting: Optional[bool] = None,
        far_off_rule: str = "adelaidet",
        score_threshold: float = 0.0,
        integer_coords: bool = True,
        invalid_detections: str = "drop",
        **kwargs,
    ):
        """
        Args:
            dataset_name: a registered dataset (metadata ``evaluator_type == "text_e2e"``).
            *args, **kwargs: ``output_dir`` (where to write the files above; nothing is written
                when None) and ``distributed``, as in :class:`~.evaluator_base.EvaluatorBase`.
            lexicon_types: lexicon types to score besides "none" (any of ``generic``, ``weak``,
                ``strong``, ``full``; "none" is always scored); None = the metadata's
                ``lexicon_types``, skipping those whose files are missing.
            lexicon_dir: folder of the lexicon files; None = the metadata's ``lexicon_dir``.
            word_spotting: RRC WORD_SPOTTING; None = the metadata's ``word_spotting`` (False when
                absent).
            far_off_rule: a key of ``FAR_OFF_RULES`` ("adelaidet" or "testr").
            score_threshold: keep detections whose written score is >= this.
            integer_coords: truncate predicted coordinates to int before writing and scoring.
            invalid_detections: "drop" (AdelaiDet) or "repair" (MMOCR) self-intersecting polygons.
        """
        super().__init__(
            dataset_name,
            *args,
            protocol="iou",
            score_sweep=False,
            integer_coords=integer_coords,
            **kwargs,
        )
        if word_spotting is None:
            word_spotting = bool(self._metadata.get("word_spotting", False))
        self._e2e_protocol = E2EProtocol(
            word_spotting=word_spotting, invalid_detections=invalid_detections
        )
        self._lexicons_required = lexicon_types is not None
        if lexicon_types is None:
            lexicon_types = self._metadata.get("lexicon_types", [])
        unknown = [t for t in lexicon_types if t != "none" and t not in LEXICON_TYPES]
        if unknown:
            raise ValueError(
                f"TextSpottingEvaluator({dataset_name}): unknown lexicon type(s) {unknown}; "
                f"known: {['none', *LEXICON_TYPES]}"
            )
        self._lexicon_types = [t for t in dict.fromkeys(lexicon_types) if t != "none"]
        self._lexicon_dir = lexicon_dir or self._metadata.get("lexicon_dir", None)
        if self._lexicons_required and self._lexicon_types and not self._lexicon_dir:
            raise ValueError(
                f"TextSpottingEvaluator({dataset_name}): lexicons {self._lexicon_types} were "
                "requested but neither lexicon_dir nor the metadata's lexicon_dir is set"
            )
        if far_off_rule not in FAR_OFF_RULES:
            raise ValueError(
                f"TextSpottingEvaluator({dataset_name}): unknown far_off_rule {far_off_rule!r}; "
                f"known: {sorted(FAR_OFF_RULES)}"
            )
        self._far_off_rule = far_off_rule
        self._score_threshold = float(score_threshold)

    @classmethod
    def from_config(cls, cfg, dataset_name: str, output_dir: Optional[str] = None):
        e2e = cfg.TEST.E2E
        return {
            **super().from_config(cfg, dataset_name, output_dir),
            "lexicon_types": list(e2e.LEXICON_TYPES) or None,
            "word_spotting": e2e.WORD_SPOTTING,
            "far_off_rule": e2e.FAR_OFF_RULE,
            "score_threshold": e2e.SCORE_THRESH,
        }

    def process(self, inputs, outputs):
        """Keep each output's ``instances`` (polygons, scores, texts) as numpy arrays / str."""
        for inp, out in zip(inputs, outputs):
            image_id = inp.get("image_id")
            if "instances" not in out:
                raise KeyError(
                    f"TextSpottingEvaluator({self._dataset_name}): the model output for image "
                    f"{image_id!r} has no 'instances'"
                )
            instances = out["instances"]
            polygons, scores = _polygons_and_scores(instances, image_id)
            texts = _texts(instances, image_id, len(polygons))
            self._predictions.append(
                {
                    "image_id": inp["image_id"],
                    "polygons": polygons,
                    "scores": scores,
                    "texts": texts,
                }
            )

    def evaluate(self):
        predictions = self._gather_predictions()
        if predictions is None:
            return {}

        ground_truth, res_names, image_to_key, gt_source = self._load_ground_truth()
        detections = self._spotting_detections(predictions, image_to_key, gt_source)
        lexicons = self._load_lexicons(list(ground_truth))
        result = evaluate_text_spotting(
            ground_truth, detections, self._e2e_protocol, lexicons=lexicons
        )
        metrics = result.metrics()
        table = tabulate(
            [[name, m["precision"], m["recall"], m["hmean"]] for name, m in metrics.items()],
            headers=["", "precision", "recall", "hmean"],
            tablefmt="pipe",
            floatfmt=".2f",
        )
        logger.info(
            f"Text spotting on {self._dataset_name} (word spotting "
            f"{'on' if self._e2e_protocol.word_spotting else 'off'}, far-off rule "
            f"{self._far_off_rule}, {len(ground_truth)} images, GT from {gt_source}), "
            f"in percent:\n{table}"
        )
        if self._output_dir:
            self._write_spotting_outputs(predictions, ground_truth, detections, res_names, result)
            self._write_summary(result, gt_source)
        return OrderedDict(metrics)

    # ------------------------------------------------------------------------------------------
    def _spotting_detections(
        self, predictions: List[dict], image_to_key: Dict[object, str], gt_source: str
    ) -> Dict[str, ImageDetections]:
        """Detections by sample key as written: thresholded, truncated, rounded, with texts."""
        kept, texts_by_image = [], {}
        num_unbuildable = 0
        for pred in predictions:
            buildable = np.array([is_buildable(p) for p in pred["polygons"]], dtype=bool)
            buildable = buildable.reshape(len(pred["polygons"]))
            num_unbuildable += int((~buildable).sum())
            keep = buildable & (round_scores(pred["scores"]) >= self._score_threshold)
            index = np.flatnonzero(keep)
            kept.append(
                {
                    "image_id": pred["image_id"],
                    "polygons": [pred["polygons"][i] for i in index],
                    "scores": pred["scores"][index],
                }
            )
            texts_by_image[pred["image_id"]] = tuple(pred["texts"][i].strip() for i in index)
        if num_unbuildable:
            logger.warning(
                f"{num_unbuildable} predicted polygon(s) with fewer than 3 vertices or non-finite "
                "coordinates were removed before scoring"
            )
        # the shared path: image -> key mapping, truncation, score rounding, error messages
        detections = self._detections_by_key(kept, image_to_key, gt_source)
        texts_by_key = {image_to_key[i]: t for i, t in texts_by_image.items()}
        return {
            key: ImageDetections(det.polygons, det.scores, texts_by_key[key])
            for key, det in detections.items()
        }

    def _load_lexicons(self, keys: List[str]) -> Dict[str, LexiconCorrector]:
        """The lexicon correctors to score; missing listed-only lexicons are skipped (warning)."""
        lexicons: Dict[str, LexiconCorrector] = {}
        for lexicon_type in self._lexicon_types:
            if not self._lexicon_dir:
                logger.warning(
                    f"{self._dataset_name}: the {lexicon_type} lexicon is listed but the metadata "
                    "has no lexicon_dir; skipped"
                )
                continue
            try:
                lexicons[lexicon_type] = build_lexicon_corrector(
                    self._lexicon_dir, lexicon_type, keys, far_off_rule=self._far_off_rule
                )
            except LexiconError as e:
                if self._lexicons_required:
                    raise LexiconError(f"dataset {self._dataset_name!r}: {e}") from e
                logger.warning(f"{self._dataset_name}: {e}; the {lexicon_type} run is skipped")
        return lexicons

    def _write_spotting_outputs(self, predictions, ground_truth, detections, res_names, result):
        def lines(det: ImageDetections, texts, keep) -> str:
            return "".join(
                format_spotting_det_line(p, s, t, integer_coords=self._integer_coords) + "\n"
                for p, s, t, k in zip(det.polygons, det.scores, texts, keep)
                if k
            )

        runs = {"e2e_txt": None, **{f"e2e_txt_{t}": t for t in result.corrections}}
        for folder, lexicon_type in runs.items():
            files = {}
            for key in ground_truth:
                det = detections.get(key, ImageDetections.empty())
                if lexicon_type is None:
                    texts, keep = det.texts, np.ones(len(det), dtype=bool)
                else:
                    texts, _, keep = result.corrections[lexicon_type][key]
                files[res_names[key]] = lines(det, texts, keep)
            replace_dir_atomic(os.path.join(self._output_dir, folder), files)
        self._write_text_results(predictions)

    def _write_summary(self, result: TextSpottingResult, gt_source: str):
        atomic_write_json(
            os.path.join(self._output_dir, "e2e_eval.json"),
            {
                "dataset_name": self._dataset_name,
                "ground_truth": gt_source,
                "lexicon_dir": self._lexicon_dir,
                "far_off_rule": self._far_off_rule,
                "score_threshold": self._score_threshold,
                "integer_coords": self._integer_coords,
                "score_decimals": SCORE_DECIMALS,
                **result.summary(),
            },
            indent=2,
        )


def _texts(instances, image_id, num: int) -> List[str]:
    """The ``texts`` field of one image's Instances as a list of `num` str."""
    fields = instances.get_fields()
    if not fields and num == 0:
        return []
    if "texts" not in fields:
        raise KeyError(
            f"image {image_id!r}: instances lack field 'texts'; TextSpottingEvaluator needs "
            f"'polygons', 'scores' and 'texts' (has {sorted(fields)})"
        )
    texts = list(fields["texts"])
    if len(texts) != num:
        raise ValueError(f"image {image_id!r}: {num} polygons but {len(texts)} texts")
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise TypeError(f"image {image_id!r}: 'texts' must hold str, found {bad[0]}")
    return texts
