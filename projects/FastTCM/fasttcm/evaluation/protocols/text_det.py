"""Dataset-level text-detection evaluation: protocols by name, totals and the score-threshold sweep.

This is the one entry point shared by :class:`~fasttcm.evaluation.TextDetEvaluator` and
``tools/evaluate.py --task det``, so both report the same numbers for the same inputs.

**Units.** :meth:`TextDetResult.metrics` reports precision, recall and hmean in **percent**
(0–100), the detectron2 convention (``COCOEvaluator`` AP, ``SemSegEvaluator`` mIoU); the counts and
the fractions are kept in :class:`~.base.DetectionCounts`.

**Score sweep** (docs/protocols.md, "MMOCR hmean-iou"). MMOCR, and so TCM's tables, report the
*best* hmean over score thresholds, keeping a detection when ``score >= thr``. TCM's mmocr 0.4 uses
``thr = i * 0.1`` for ``i = 3..9``; the values are used exactly as that loop makes them
(``0.30000000000000004``, ``0.6000000000000001``, ``0.7000000000000001``), so e.g. a score of
exactly 0.3 is not kept at the first threshold. The best is the first threshold with the strictly
largest hmean. The fixed-threshold figure (all detections as given) stays the headline.

Nothing here imports detectron2.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from .base import DetectionCounts, ImageDetections, ImageGroundTruth, TextDetProtocol
from .deteval import DetEvalProtocol
from .iou import IoUProtocol

__all__ = [
    "TEXT_DET_PROTOCOLS",
    "MMOCR_SCORE_THRESHOLDS",
    "build_text_det_protocol",
    "ScoreSweepResult",
    "TextDetResult",
    "evaluate_text_detection",
]

TEXT_DET_PROTOCOLS = {"iou": IoUProtocol, "deteval": DetEvalProtocol}
"""Protocols by the name used in metadata ``eval_protocol`` and ``--protocol``."""

_PROTOCOL_ALIASES = {"iou0.5": "iou"}  # "IoU > 0.5": an alternative name of the ICDAR IoU protocol

MMOCR_SCORE_THRESHOLDS: Tuple[float, ...] = tuple(i * 0.1 for i in range(3, 10))
"""Score thresholds of TCM's mmocr 0.4 ``eval_hmean`` (7 values, 0.3 to 0.9, float as computed)."""


def build_text_det_protocol(name: str, **kwargs) -> TextDetProtocol:
    """Instantiate a protocol by name (``"iou"``, ``"deteval"``; ``"iou0.5"`` = ``"iou"``).

    Args:
        name: protocol name.
        kwargs: keyword parameters of that protocol (e.g. ``invalid_detections="repair"``).

    Raises:
        KeyError: for an unknown name, listing the known ones.
    """
    key = _PROTOCOL_ALIASES.get(name, name)
    if key not in TEXT_DET_PROTOCOLS:
        known = sorted(TEXT_DET_PROTOCOLS) + sorted(_PROTOCOL_ALIASES)
        raise KeyError(f"unknown text-detection protocol {name!r}; known: {known}")
    return TEXT_DET_PROTOCOLS[key](**kwargs)


@dataclass(frozen=True)
class ScoreSweepResult:
    """Dataset totals at each score threshold and the best one.

    Attributes:
        thresholds: the thresholds, ascending as given.
        counts: dataset totals at each threshold.
        best_index: index of the first threshold with the largest hmean.
    """

    thresholds: Tuple[float, ...]
    counts: Tuple[DetectionCounts, ...]
    best_index: int

    @property
    def best_threshold(self) -> float:
        return self.thresholds[self.best_index]

    @property
    def best(self) -> DetectionCounts:
        return self.counts[self.best_index]


@dataclass(frozen=True)
class TextDetResult:
    """Outcome of :func:`evaluate_text_detection`.

    Attributes:
        protocol: the protocol's parameters (``TextDetProtocol.params()``).
        counts: dataset totals with all detections (the fixed-threshold figure).
        per_image: totals of each image, keyed like the ground truth.
        sweep: the score sweep, when requested.
    """

    protocol: Dict[str, Any]
    counts: DetectionCounts
    per_image: Dict[str, DetectionCounts] = field(default_factory=dict)
    sweep: Optional[ScoreSweepResult] = None

    def metrics(self) -> Dict[str, float]:
        """Headline metrics in percent: precision, recall, hmean (+ ``sweep_*`` when swept)."""
        out = {
            "precision": 100.0 * self.counts.precision,
            "recall": 100.0 * self.counts.recall,
            "hmean": 100.0 * self.counts.hmean,
        }
        if self.sweep is not None:
            best = self.sweep.best
            out.update(
                {
                    "sweep_precision": 100.0 * best.precision,
                    "sweep_recall": 100.0 * best.recall,
                    "sweep_hmean": 100.0 * best.hmean,
                    "sweep_score_thr": float(self.sweep.best_threshold),
                }
            )
        return out

    def summary(self) -> Dict[str, Any]:
        """JSON-serializable record: metrics, totals, protocol and the full sweep table."""
        c = self.counts
        out: Dict[str, Any] = dict(self.metrics())
        out.update(
            {
                "metric_units": "percent",
                "num_images": len(self.per_image),
                "num_gt_care": c.num_gt,
                "num_det_care": c.num_det,
                "recall_credit": c.recall_credit,
                "precision_credit": c.precision_credit,
                "protocol": self.protocol,
            }
        )
        if self.sweep is not None:
            out["sweep"] = [
                {
                    "score_thr": float(t),
                    "precision": 100.0 * s.precision,
                    "recall": 100.0 * s.recall,
                    "hmean": 100.0 * s.hmean,
                }
                for t, s in zip(self.sweep.thresholds, self.sweep.counts)
            ]
        return out


def evaluate_text_detection(
    ground_truth: Mapping[str, ImageGroundTruth],
    detections: Mapping[str, ImageDetections],
    protocol: TextDetProtocol,
    *,
    score_thresholds: Optional[Sequence[float]] = None,
) -> TextDetResult:
    """Score detections against ground truth over a dataset, as the official scripts do.

    The ground truth defines the image set (RRC): an image with no entry in `detections` counts as
    having no detections, and a detection entry whose key is not in the ground truth is an error
    ("sample not present in GT"). Totals are summed over images before P/R/hmean are formed.

    Args:
        ground_truth: image key -> ground truth.
        detections: image key -> detections, in the order matching must use.
        protocol: e.g. ``build_text_det_protocol("iou")``.
        score_thresholds: if given, also run the score sweep over these thresholds (e.g.
            :data:`MMOCR_SCORE_THRESHOLDS`); every detection then needs a score.

    Raises:
        ValueError: on an empty ground truth, keys missing from the ground truth, or missing
            scores when sweeping.
    """
    images = protocol.prepare_images(ground_truth, detections)
    thresholds = None if score_thresholds is None else tuple(float(t) for t in score_thresholds)
    if thresholds is not None and len(thresholds) == 0:
        raise ValueError("score_thresholds is empty")

    total = DetectionCounts()
    per_image: Dict[str, DetectionCounts] = {}
    sweep_totals = [DetectionCounts() for _ in thresholds or ()]
    for key, det, geometry in images:
        counts = protocol.count(geometry)
        per_image[key] = counts
        total = total + counts
        if thresholds is not None:
            scores = np.asarray(det.scores, dtype=np.float64)
            if np.isnan(scores).any():
                raise ValueError(
                    f"image {key!r}: the score sweep needs a score on every detection, "
                    f"{int(np.isnan(scores).sum())} have none"
                )
            for i, thr in enumerate(thresholds):
                sweep_totals[i] = sweep_totals[i] + protocol.count(geometry, scores >= thr)

    sweep = None
    if thresholds is not None:
        hmeans = [c.hmean for c in sweep_totals]
        best = max(range(len(hmeans)), key=lambda i: (hmeans[i], -i))
        sweep = ScoreSweepResult(thresholds, tuple(sweep_totals), best)
    return TextDetResult(protocol.params(), total, per_image, sweep)
