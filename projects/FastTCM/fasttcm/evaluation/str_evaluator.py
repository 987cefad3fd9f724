"""WordAccuracyEvaluator: scene-text recognition word accuracy and 1-NED (docs/protocols.md).

The official protocol (``test.py`` / ``BaseSystem._eval_step``): ground truth and prediction both
go through the same charset adapter (default: the 36-character charset ``0-9a-z``, which
lowercases and deletes everything else, so case, punctuation and spaces never count as errors);
samples whose adapted ground truth is empty are not evaluated (the official loader drops them).

* word accuracy: exact match of the adapted strings;
* 1-NED: mean over samples of ``1 - edit_distance(pred, gt) / max(len(pred), len(gt))``
  (ICDAR 2019).

Both are reported in percent, one figure per dataset split: ``{"str": {"accuracy",
"one_minus_NED", "num_samples"}}`` (no "-" in the names: detectron2's copypaste lines skip such
keys). A crop the mapper could not read (``"image_error"``) counts as a miss.
"""

import logging
import os
from collections import OrderedDict
from typing import Dict, List, Optional

from detectron2.config import configurable

from ..structures.charset import CharsetAdapter, evaluation_charset
from ..utils.atomic_io import atomic_write_json
from .evaluator_base import EvaluatorBase

__all__ = ["edit_distance", "WordAccuracyEvaluator", "word_accuracy_metrics"]

logger = logging.getLogger(__name__)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance with unit costs (insertion, deletion, substitution)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def word_accuracy_metrics(predictions: List[str], ground_truths: List[str]) -> Dict[str, float]:
    """Word accuracy and 1-NED in percent of already adapted strings (ground truths non-empty).

    Returns:
        {"accuracy": %, "one_minus_NED": %, "num_samples": n}; both rates are 0 when n = 0.
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions but {len(ground_truths)} ground truths")
    n = len(ground_truths)
    if n == 0:
        return {"accuracy": 0.0, "one_minus_NED": 0.0, "num_samples": 0}
    correct = sum(p == g for p, g in zip(predictions, ground_truths))
    similarity = sum(
        1.0 - edit_distance(p, g) / max(len(p), len(g)) for p, g in zip(predictions, ground_truths)
    )
    return {
        "accuracy": 100.0 * correct / n,
        "one_minus_NED": 100.0 * similarity / n,
        "num_samples": n,
    }


class WordAccuracyEvaluator(EvaluatorBase):
    """Word accuracy and 1-NED of a recognizer on one STR split (``evaluator_type="str"``).

    ``process`` takes the mapper's inputs (``"text"`` ground truth, ``"image_id"``, optional
    ``"image_error"``) and the model's outputs (``"text"``, ``"score"``). Under ``output_dir`` the
    evaluator writes ``str_predictions.json`` (per sample: image_id, ground truth, prediction,
    score, adapted strings, correct) atomically.
    """

    @configurable
    def __init__(
        self,
        dataset_name: str,
        *args,
        case_sensitive: bool = False,
        punctuation: bool = False,
        **kwargs,
    ):
        """
        Args:
            dataset_name: a registered STR split.
            *args, **kwargs: ``output_dir`` (where ``str_predictions.json`` goes; nothing is
                written when None) and ``distributed``, as in
                :class:`~.evaluator_base.EvaluatorBase`.
            case_sensitive: add A-Z to the evaluation charset (official ``--cased``).
            punctuation: add ASCII punctuation (official ``--punctuation``).
        """
        super().__init__(dataset_name, *args, **kwargs)
        self._charset = evaluation_charset(case_sensitive, punctuation)
        self._adapter = CharsetAdapter(self._charset)
        self._expected = self._metadata.get("expected_num_samples", None)

    @classmethod
    def from_config(cls, cfg, dataset_name: str, output_dir: Optional[str] = None):
        return {
            **super().from_config(cfg, dataset_name, output_dir),
            "case_sensitive": cfg.TEST.STR.CASE_SENSITIVE,
            "punctuation": cfg.TEST.STR.PUNCTUATION,
        }

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            if "text" not in inp:
                raise KeyError(
                    f"WordAccuracyEvaluator({self._dataset_name}): input "
                    f"{inp.get('image_id')!r} has no 'text'"
                )
            if "text" not in out:
                raise KeyError(
                    f"WordAccuracyEvaluator({self._dataset_name}): the model output for "
                    f"{inp.get('image_id')!r} "
                    f"has no 'text' (keys: {sorted(out)})"
                )
            self._predictions.append(
                {
                    "image_id": inp.get("image_id"),
                    "gt": inp["text"],
                    "pred": out["text"],
                    "score": float(out.get("score", float("nan"))),
                    "image_error": inp.get("image_error"),
                }
            )

    def evaluate(self):
        predictions = self._gather_predictions()
        if predictions is None:
            return {}

        evaluated, preds, gts = [], [], []
        num_unreadable = 0
        for p in predictions:
            gt = self._adapter(p["gt"])
            if not gt:
                continue  # the official loader drops samples whose adapted label is empty
            pred = "" if p["image_error"] else self._adapter(p["pred"])
            num_unreadable += bool(p["image_error"])
            evaluated.append({**p, "gt_adapted": gt, "pred_adapted": pred, "correct": pred == gt})
            preds.append(pred)
            gts.append(gt)
        metrics = word_accuracy_metrics(preds, gts)
        logger.info(
            f"Word accuracy on {self._dataset_name} ({len(self._charset)}-char charset, "
            f"{metrics['num_samples']} "
            f"of {len(predictions)} samples with a non-empty label): {metrics['accuracy']:.2f}%, "
            f"1-NED {metrics['one_minus_NED']:.2f}%"
        )
        if num_unreadable:
            logger.warning(
                f"{self._dataset_name}: {num_unreadable} unreadable crops were scored as misses"
            )
        if self._expected is not None and metrics["num_samples"] != self._expected:
            logger.warning(
                f"{self._dataset_name}: {metrics['num_samples']} samples evaluated; "
                "the official protocol "
                f"evaluates {self._expected} (incomplete or different data?)"
            )
        if self._output_dir:
            atomic_write_json(
                os.path.join(self._output_dir, "str_predictions.json"),
                {
                    "dataset_name": self._dataset_name,
                    "charset": self._charset,
                    "metrics": metrics,
                    "samples": evaluated,
                },
            )
        return OrderedDict({"str": metrics})
