"""Where end-to-end spotting points go: every ground truth and detection put in one category.

The categories (docs/spotting.md) follow the end-to-end protocol exactly: the matching is
:meth:`~.protocols.e2e.E2EProtocol.match` (greedy, GT-major, IoU strictly above the threshold,
don't-care regions and invalid detections as the protocol treats them), and a pair is read right
when :func:`~.protocols.e2e.is_correct_transcription` says so (no lexicon). So the counts add up
to the evaluator's figures: correct pairs are its true positives, every care ground truth and
every care detection falls in exactly one category.

**Care ground truths** (recall denominator):

* ``correct``: matched, read right;
* ``missed``: no detection matched it; ``detail``: ``no_overlap`` (no care detection overlaps
  it), ``low_iou`` (the best overlap has IoU <= the threshold), ``taken`` (a detection above the
  threshold was matched to an earlier ground truth), or, when the detections the spotter's
  reading gate (``TEST.SPOTTER.MIN_TEXT_SCORE``) dropped are given (``rejected``),
  ``rejected_right`` / ``rejected_wrong``: the detector found the word (a dropped detection
  matches it under the protocol's matching) but the gate dropped it, with a right / wrong
  reading. The others are the words the detector itself missed;
* ``misread_crop``: matched, read wrong, and the crop is to blame; ``misread_clean``: matched,
  read wrong on a crop that frames the word well.

Crop or clean is decided by the recognizer when its reading of the ground-truth polygon's own
crop is known (``gt_readings``, layout :data:`VERDICT_LAYOUT`): it reads the word right there but
not on the detection's crop = crop; wrong on both = clean (``verdict_source = "recognizer"``).
Otherwise by geometry (:class:`CropCriteria`; ``verdict_source = "geometry"``). Both signals are
kept per instance and cross-tabulated. When the ground truth's crop in the spotter's own
rectification layout (:data:`SPOTTER_LAYOUT`) is read too, a crop misread's ``detail`` says
whether the detected outline (``outline``: the spotter's layout reads the true outline right) or
the rectification itself (``rectification``: it reads even the true outline wrong) lost the word.

**Care detections** (precision denominator): ``correct``, ``misread`` (matched, read wrong: the
partner of a misread ground truth), ``false_positive`` (unmatched; ``detail`` = overlap:
``duplicate`` above the threshold with an already matched ground truth, ``low_iou``, or
``background``, and ``reading`` = ``with_reading`` or ``empty_reading``). Outside the counts:
``dont_care`` ground truths and detections, ``invalid`` detections (dropped by the protocol).

Nothing here imports detectron2.
"""

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from .protocols.base import DetectionCounts, ImageDetections, ImageGroundTruth
from .protocols.e2e import E2EImageGeometry, E2EProtocol, is_correct_transcription
from .protocols.pair_geometry import SIDES, CropCriteria, pair_geometry
from .protocols.polygons import make_ground_truth_polygons, make_polygons, repair_polygons

__all__ = [
    "VERDICT_LAYOUT",
    "SPOTTER_LAYOUT",
    "CropCriteria",
    "RECORD_FIELDS",
    "SpottingAnalysis",
    "analyze_spotting",
]

VERDICT_LAYOUT = "annotated"
"""Reading name whose verdict splits crop from clean misreads: the ground-truth polygon cropped
in its annotated layout, as the recognizer was trained."""

SPOTTER_LAYOUT = "spotter"
"""Reading name of the ground-truth polygon cropped with the spotter's inference layout."""

RECORD_FIELDS = (
    "kind",  # "gt" or "det"
    "image",  # image key
    "index",  # index among the image's ground truths / detections (as scored)
    "category",  # see the module docstring
    "detail",  # missed / false-positive overlap, crop-misread cause, or ""
    "text",  # the ground-truth word as compared / the detection's transcription
    "partner_index",  # matched partner, or the best overlap of an unmatched instance, or None
    "partner_text",
    "iou",  # of the instance and its partner
    "coverage",  # area(G ∩ D) / area(G)
    "excess",  # 1 - area(G ∩ D) / area(D)
    *SIDES,  # side offsets of D around G, in word heights (positive = padding)
    "geometric",  # CropCriteria verdict: "cut", "pad", "cut+pad", "clean"
    "verdict_source",  # misread ground truths: "recognizer" or "geometry"
    "reading",  # detections: "with_reading" or "empty_reading"
    "det_score",  # detection score (of the partner, for a ground truth)
    "text_score",  # recognition confidence (of the partner, for a ground truth)
)
"""Fields every record has (None where they do not apply), in CSV column order."""


@dataclass
class SpottingAnalysis:
    """Outcome of :func:`analyze_spotting`.

    Attributes:
        records: one dict per ground truth (``kind = "gt"``), then per detection (``"det"``) of
            each image, in image order: the fields of :data:`RECORD_FIELDS`, plus
            ``gt_crop_<name>`` (the reading) and ``gt_crop_<name>_correct`` for each reading name
            of the image's ground truths.
        e2e: end-to-end totals (no lexicon), as :func:`~.protocols.e2e.evaluate_text_spotting`.
        detection: detection-only totals of the same detections.
        criteria: the geometric crop test.
        protocol: the end-to-end protocol's parameters.
        num_images: images analysed.
    """

    records: List[Dict[str, Any]]
    e2e: DetectionCounts
    detection: DetectionCounts
    criteria: CropCriteria
    protocol: Dict[str, Any]
    num_images: int

    def counts(self) -> Dict[str, Dict[str, int]]:
        """Category counts: ``{"gt": {...}, "det": {...}, "misread_signals": {...}}``.

        ``gt["missed_by_detector"]`` counts the missed words no detection found, gate or no gate
        (``missed`` less ``missed_rejected_right`` and ``missed_rejected_wrong``).
        """
        gt = [r for r in self.records if r["kind"] == "gt"]
        det = [r for r in self.records if r["kind"] == "det"]
        gt_cat = Counter(r["category"] for r in gt)
        det_cat = Counter(r["category"] for r in det)
        missed = Counter(r["detail"] for r in gt if r["category"] == "missed")
        misread = [r for r in gt if r["category"] in ("misread_crop", "misread_clean")]
        fp = [r for r in det if r["category"] == "false_positive"]
        fp_overlap = Counter(r["detail"] for r in fp)
        fp_reading = Counter(r["reading"] for r in fp)
        signals = Counter()
        for r in misread:
            geometric = "crop" if r["geometric"] != "clean" else "clean"
            signals[f"geometric_{r['geometric'].replace('+', '_')}"] += 1
            signals[f"by_{r['verdict_source']}"] += 1
            recognizer = r.get(f"gt_crop_{VERDICT_LAYOUT}_correct")
            if recognizer is not None:
                verdict = "crop" if recognizer else "clean"
                signals[f"recognizer_{verdict}"] += 1
                signals[f"geometric_{geometric}_recognizer_{verdict}"] += 1
            if r["category"] == "misread_crop" and r["detail"]:
                signals[f"crop_{r['detail']}"] += 1
        signal_names = [f"geometric_{v}" for v in ("clean", "cut", "pad", "cut_pad")]
        signal_names += ["by_recognizer", "by_geometry", "recognizer_crop", "recognizer_clean"]
        signal_names += [
            f"geometric_{g}_recognizer_{v}" for g in ("crop", "clean") for v in ("crop", "clean")
        ]
        signal_names += ["crop_outline", "crop_rectification"]
        return {
            "gt": {
                "care": self.e2e.num_gt,
                "correct": gt_cat["correct"],
                "missed": gt_cat["missed"],
                "missed_no_overlap": missed["no_overlap"],
                "missed_low_iou": missed["low_iou"],
                "missed_taken": missed["taken"],
                "missed_rejected_right": missed["rejected_right"],
                "missed_rejected_wrong": missed["rejected_wrong"],
                "missed_by_detector": gt_cat["missed"]
                - missed["rejected_right"]
                - missed["rejected_wrong"],
                "misread": len(misread),
                "misread_crop": gt_cat["misread_crop"],
                "misread_clean": gt_cat["misread_clean"],
                "dont_care": gt_cat["dont_care"],
            },
            "det": {
                "total": len(det),
                "care": self.e2e.num_det,
                "correct": det_cat["correct"],
                "misread": det_cat["misread"],
                "false_positive": len(fp),
                "fp_with_reading": fp_reading["with_reading"],
                "fp_empty_reading": fp_reading["empty_reading"],
                "fp_duplicate": fp_overlap["duplicate"],
                "fp_low_iou": fp_overlap["low_iou"],
                "fp_background": fp_overlap["background"],
                "dont_care": det_cat["dont_care"],
                "invalid": det_cat["invalid"],
            },
            "misread_signals": {name: signals[name] for name in signal_names},
        }

    def summary(self) -> Dict[str, Any]:
        """JSON-serializable report: metrics (percent), counts, what-ifs, readings, geometry."""
        counts = self.counts()
        gt, det = counts["gt"], counts["det"]

        def percent(c: DetectionCounts) -> Dict[str, float]:
            return {k: 100.0 * getattr(c, k) for k in ("precision", "recall", "hmean")}

        def scored(correct: int, num_det: int) -> Dict[str, float]:
            return percent(DetectionCounts(correct, correct, gt["care"], num_det))

        return {
            "num_images": self.num_images,
            "metrics": {"e2e_none": percent(self.e2e), "text_det": percent(self.detection)},
            "metric_units": "percent",
            "counts": counts,
            "what_if": {
                "crop_misreads_read_right": scored(gt["correct"] + gt["misread_crop"], det["care"]),
                "all_misreads_read_right": scored(gt["correct"] + gt["misread"], det["care"]),
                "false_positives_rejected": scored(
                    gt["correct"], det["care"] - det["false_positive"]
                ),
            },
            "gt_crop_readings": self._reading_accuracy(),
            "sides": self._side_percentiles(),
            "text_scores": self._text_score_summary(),
            "criteria": asdict(self.criteria),
            "protocol": self.protocol,
        }

    # ------------------------------------------------------------------------------------------
    def _reading_accuracy(self) -> Dict[str, Dict[str, Any]]:
        """Per reading layout: care ground truths cropped, read right, and the accuracy (%)."""
        out = {}
        care = [r for r in self.records if r["kind"] == "gt" and r["category"] != "dont_care"]
        layouts = sorted({k[len("gt_crop_") :] for r in care for k in r if _is_reading_key(k)})
        for layout in layouts:
            verdicts = [r.get(f"gt_crop_{layout}_correct") for r in care]
            read = [v for v in verdicts if v is not None]
            by_category = Counter(r["category"] for r in care if r.get(f"gt_crop_{layout}_correct"))
            out[layout] = {
                "cropped": len(read),
                "correct": int(sum(read)),
                "accuracy": 100.0 * sum(read) / len(read) if read else 0.0,
                "correct_by_category": dict(sorted(by_category.items())),
            }
        return out

    def _side_percentiles(self) -> Dict[str, Dict[str, Dict[str, float]]]:
        """10th/50th/90th percentiles of the side offsets of matched pairs, right vs wrong."""
        groups = {"correct": ("correct",), "misread": ("misread_crop", "misread_clean")}
        out = {}
        for name, categories in groups.items():
            rows = [
                [r[s] for s in SIDES]
                for r in self.records
                if r["kind"] == "gt" and r["category"] in categories and r["start"] is not None
            ]
            if not rows:
                continue
            percentiles = np.percentile(np.asarray(rows, dtype=np.float64), [10, 50, 90], axis=0)
            out[name] = {
                side: {f"p{q}": float(v) for q, v in zip((10, 50, 90), percentiles[:, i])}
                for i, side in enumerate(SIDES)
            }
        return out

    def _text_score_summary(self) -> Dict[str, Dict[str, float]]:
        """Mean and median recognition confidence of the care detections of each category."""
        out = {}
        for category in ("correct", "misread", "false_positive"):
            scores = [
                r["text_score"]
                for r in self.records
                if r["kind"] == "det" and r["category"] == category and r["text_score"] is not None
            ]
            if scores:
                out[category] = {
                    "count": len(scores),
                    "mean": float(np.mean(scores)),
                    "median": float(np.median(scores)),
                }
        return out


def _is_reading_key(key: str) -> bool:
    return key.startswith("gt_crop_") and not key.endswith("_correct")


def _pair_fields(gt_vertices, det_vertices, gt_polygon, det_polygon, iou, criteria):
    geometry = pair_geometry(gt_vertices, det_vertices, gt_polygon, det_polygon)
    return {
        "iou": float(iou),
        "coverage": geometry.coverage,
        "excess": geometry.excess,
        **geometry.sides_dict(),
        "geometric": criteria.verdict(geometry.coverage, geometry.excess),
    }


_NO_PAIR = {
    "iou": None,
    "coverage": None,
    "excess": None,
    **dict.fromkeys(SIDES),
    "geometric": None,
}


def _analyze_image(
    key: str,
    gt: ImageGroundTruth,
    det: ImageDetections,
    geometry: E2EImageGeometry,
    protocol: E2EProtocol,
    criteria: CropCriteria,
    readings: Mapping[str, Sequence[Optional[str]]],
    text_scores: Optional[Sequence[float]],
    rejected: Optional[ImageDetections] = None,
) -> List[Dict[str, Any]]:
    """The records of one image (``geometry`` from ``protocol.prepare(gt, det)``; `rejected`:
    the detections the reading gate dropped)."""
    for layout, texts in readings.items():
        if len(texts) != len(gt):
            raise ValueError(
                f"image {key!r}: {len(gt)} ground truths but {len(texts)} '{layout}' readings"
            )
    if text_scores is not None and len(text_scores) != len(det):
        raise ValueError(f"image {key!r}: {len(det)} detections but {len(text_scores)} scores")
    pairs, correct = protocol.match(geometry)
    e2e = geometry.e2e
    threshold = protocol.iou.iou_threshold
    gt_polys = repair_polygons(make_ground_truth_polygons(gt.polygons))
    det_polys, _ = make_polygons(det.polygons)
    if protocol.iou.invalid_detections == "repair":
        det_polys = repair_polygons(det_polys)
    gt_care = ~e2e.gt_dont_care
    det_care = e2e.det_kept & ~e2e.det_dont_care
    # IoU of the care pairs only: the pairs the matching could use
    iou = np.where(gt_care[:, None] & det_care[None, :], e2e.iou, 0.0)
    gt_partner = {int(g): (int(d), bool(ok)) for (g, d), ok in zip(pairs, correct)}
    gated = {}  # missed ground truth -> whether the gate-dropped detection matching it read it
    if rejected is not None and len(rejected):
        rejected_pairs, rejected_correct = protocol.match(protocol.prepare(gt, rejected))
        gated = {int(g): bool(ok) for (g, _), ok in zip(rejected_pairs, rejected_correct)}
    det_partner = {d: (g, ok) for g, (d, ok) in gt_partner.items()}

    def scores(d: Optional[int]) -> Dict[str, Optional[float]]:
        if d is None:
            return {"det_score": None, "text_score": None}
        text_score = None if text_scores is None else float(text_scores[d])
        return {"det_score": float(det.scores[d]), "text_score": text_score}

    def pair(g: Optional[int], d: Optional[int]) -> Dict[str, Any]:
        if g is None or d is None:
            return dict(_NO_PAIR)
        return _pair_fields(
            gt.polygons[g], det.polygons[d], gt_polys[g], det_polys[d], e2e.iou[g, d], criteria
        )

    def overlap(values: np.ndarray, above: str, low: str, none: str):
        """(detail, index of the best overlap or None) of an unmatched instance."""
        if len(values) and (values > threshold).any():
            return above, int(np.argmax(values))
        if len(values) and values.max() > 0:
            return low, int(np.argmax(values))
        return none, None

    records = []
    for g in range(len(gt)):
        detail, source, partner = "", None, None
        if not gt_care[g]:
            category = "dont_care"
        elif g in gt_partner:
            partner, ok = gt_partner[g]
            category = "correct" if ok else "misread"
        else:
            category = "missed"
            detail, partner = overlap(iou[g], "taken", "low_iou", "no_overlap")
            if g in gated:
                detail = "rejected_right" if gated[g] else "rejected_wrong"
        record = {
            "kind": "gt",
            "image": key,
            "index": g,
            "text": geometry.gt_texts[g],
            "partner_index": partner,
            "partner_text": None if partner is None else det.texts[partner],
            **scores(partner),
            **pair(g, partner),
        }
        for layout, texts in readings.items():
            text = None if texts[g] is None else texts[g].strip()
            record[f"gt_crop_{layout}"] = text
            record[f"gt_crop_{layout}_correct"] = (
                None
                if text is None
                else is_correct_transcription(geometry.gt_texts[g], text, protocol.word_spotting)
            )
        if category == "misread":
            verdict = record.get(f"gt_crop_{VERDICT_LAYOUT}_correct")
            if verdict is not None:
                crop, source = verdict, "recognizer"
            else:
                crop, source = record["geometric"] != "clean", "geometry"
            category = "misread_crop" if crop else "misread_clean"
            spotter = record.get(f"gt_crop_{SPOTTER_LAYOUT}_correct")
            if crop and source == "recognizer" and spotter is not None:
                detail = "outline" if spotter else "rectification"
        record.update(category=category, detail=detail, verdict_source=source, reading=None)
        records.append(record)

    for d in range(len(det)):
        detail, partner = "", None
        if not e2e.det_kept[d]:
            category = "invalid"
        elif e2e.det_dont_care[d]:
            category = "dont_care"
        elif d in det_partner:
            partner, ok = det_partner[d]
            category = "correct" if ok else "misread"
        else:
            category = "false_positive"
            detail, partner = overlap(iou[:, d], "duplicate", "low_iou", "background")
        records.append(
            {
                "kind": "det",
                "image": key,
                "index": d,
                "text": det.texts[d],
                "partner_index": partner,
                "partner_text": None if partner is None else geometry.gt_texts[partner],
                **scores(d),
                **pair(partner, d),
                "category": category,
                "detail": detail,
                "verdict_source": None,
                "reading": "with_reading" if det.texts[d].strip() else "empty_reading",
            }
        )
    return records


def analyze_spotting(
    ground_truth: Mapping[str, ImageGroundTruth],
    detections: Mapping[str, ImageDetections],
    protocol: E2EProtocol,
    *,
    criteria: CropCriteria = CropCriteria(),
    gt_readings: Optional[Mapping[str, Mapping[str, Sequence[Optional[str]]]]] = None,
    text_scores: Optional[Mapping[str, Sequence[float]]] = None,
    rejected: Optional[Mapping[str, ImageDetections]] = None,
) -> SpottingAnalysis:
    """Put every ground truth and detection of a dataset in one category (module docstring).

    The inputs are those of :func:`~.protocols.e2e.evaluate_text_spotting` (the ground truth
    defines the image set; a missing image has no detections), so the returned totals are its
    ``e2e["none"]`` and ``detection`` totals.

    Args:
        ground_truth: image key -> ground truth.
        detections: image key -> detections with transcriptions, in matching order.
        protocol: the end-to-end protocol.
        criteria: the geometric crop test.
        gt_readings: image key -> reading name (:data:`VERDICT_LAYOUT`, :data:`SPOTTER_LAYOUT`,
            or any other) -> the recognizer's reading of each of the image's G ground-truth
            crops (None: no crop could be made); images or names may be absent.
        text_scores: image key -> the recognition confidence of each detection.
        rejected: image key -> the detections (with their readings) that the spotter's reading
            gate dropped; a missed word one of them matches is put down to the gate
            (``detail`` ``rejected_right`` / ``rejected_wrong``), not to the detector.

    Raises:
        ValueError: as :func:`~.protocols.e2e.evaluate_text_spotting`, or readings / scores
            whose length does not match the image's ground truths / detections.
    """
    gt_readings = gt_readings or {}
    text_scores = text_scores or {}
    rejected = rejected or {}
    records: List[Dict[str, Any]] = []
    e2e_total, det_total = DetectionCounts(), DetectionCounts()
    num_images = 0
    for key, det, geometry in protocol.prepare_images(ground_truth, detections):
        records += _analyze_image(
            key,
            ground_truth[key],
            det,
            geometry,
            protocol,
            criteria,
            gt_readings.get(key, {}),
            text_scores.get(key),
            rejected.get(key),
        )
        e2e_total += protocol.count(geometry)
        det_total += protocol.count_detection(geometry)
        num_images += 1
    analysis = SpottingAnalysis(
        records, e2e_total, det_total, criteria, protocol.params(), num_images
    )
    _check_totals(analysis)
    return analysis


def _check_totals(analysis: SpottingAnalysis) -> None:
    """The categories partition the protocol's care sets; anything else is a bug here."""
    counts = analysis.counts()
    gt, det = counts["gt"], counts["det"]
    e2e = analysis.e2e
    checks = {
        "care GT": (gt["correct"] + gt["missed"] + gt["misread"], e2e.num_gt),
        "care detections": (det["correct"] + det["misread"] + det["false_positive"], e2e.num_det),
        "true positives": (gt["correct"], int(e2e.recall_credit)),
        "misread pairs": (gt["misread"], det["misread"]),
    }
    wrong = {name: pair for name, pair in checks.items() if pair[0] != pair[1]}
    if wrong:
        raise AssertionError(f"spotting analysis disagrees with the protocol: {wrong}")
