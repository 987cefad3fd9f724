"""End-to-end text spotting under the RRC rules (ICDAR 2015 Task 4.4; docs/protocols.md,
"End-to-end text spotting").

Reproduces ``text_eval_script.py`` / ``text_eval_script_ic15.py`` as vendored by AdelaiDet, TESTR
and DeepSolo, on top of the detection geometry of :class:`~.iou.IoUProtocol`:

1. **GT don't-care set.** ``'###'`` (or an explicitly ignored region) is don't care. With
   WORD_SPOTTING on, any other word is also don't care unless it passes the dictionary test of
   :func:`is_spotting_word`, and a passing word is replaced by :func:`normalize_spotting_word`.
   Digits, spaces, words shorter than 3 characters and non-Latin letters therefore make a GT word
   don't care under word spotting.
2. **Don't-care detections**: area(G∩D)/area(D) > 0.5 against *this* don't-care set.
3. **Matching**: the greedy GT-major IoU > 0.5 loop of the detection protocol. A pair that passes
   the IoU test is consumed even when its transcription is wrong: the GT cannot be matched later
   by a detection with the right text, and the wrong detection counts as a false positive.
4. **Text correctness** of a matched pair, on upper-cased strings: with word spotting, equality
   with the normalised GT word; otherwise :func:`transcription_match` (equality, or equality after
   deleting one special character from the start, the end, or both ends of the *GT*).
5. **Counts**: TP = correct matched pairs, summed over the dataset with the care GT and care
   detection counts before P = ΣTP/Σdet_care and R = ΣTP/Σgt_care are formed (not per-image means).

The detection-only figure the official script reports beside the end-to-end one
(``DETECTION_ONLY_RESULTS``) is the plain :class:`~.iou.IoUProtocol` count with ``'###'`` as the
only don't-care text; :func:`evaluate_text_spotting` returns it as well.

Lexicon runs (:mod:`.lexicon`) score the same geometry with corrected words, the
far-off words removed (neither TP nor FP).

Polygons are ``(N, 2)`` vertex arrays in original-image pixels (x right, y down), orientation-free.
Nothing here imports detectron2.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .base import DetectionCounts, ImageDetections, ImageGroundTruth, TextDetProtocol
from .iou import IoUImageGeometry, IoUProtocol
from .lexicon import LexiconCorrector

__all__ = [
    "SPECIAL_CHARACTERS",
    "MIN_LENGTH_CARE_WORD",
    "normalize_spotting_word",
    "is_spotting_word",
    "transcription_match",
    "is_correct_transcription",
    "E2EImageGeometry",
    "E2EProtocol",
    "TextSpottingResult",
    "evaluate_text_spotting",
]

SPECIAL_CHARACTERS = "!?.:,*\"()·[]/'"
"""RRC ``SPECIAL_CHARACTERS``: 14 characters (U+00B7 '·' included) a GT word may lose at an end."""

MIN_LENGTH_CARE_WORD = 3
"""RRC ``MIN_LENGTH_CARE_WORD``: shorter normalised words are don't care under word spotting."""

_WORD_SEPARATORS = "'!?.:,*\"()·[]/"  # replaced by spaces when normalising a word-spotting GT word
_NOT_ALLOWED = "×÷·"
_ALLOWED_RANGES = (
    (ord("a"), ord("z")),
    (ord("A"), ord("Z")),
    (0x00C0, 0x01BF),  # À .. ƿ
    (0x01C4, 0x027F),  # Ǆ .. ɿ
    (0x0386, 0x03FF),  # Ά .. Ͽ
    (ord("-"), ord("-")),
)


def normalize_spotting_word(transcription: str) -> str:
    """Word-spotting normalisation of a GT word (RRC ``include_in_dictionary_transcription``).

    Drops a final ``'s``/``'S``, strips ``-`` at both ends, replaces each of ``'!?.:,*"()·[]/`` by
    a space, and strips whitespace: ``"(Hello's)"`` -> ``"Hello"``.
    """
    if transcription[-2:] in ("'s", "'S"):
        transcription = transcription[:-2]
    transcription = transcription.strip("-")
    for character in _WORD_SEPARATORS:
        transcription = transcription.replace(character, " ")
    return transcription.strip()


def is_spotting_word(transcription: str) -> bool:
    """Whether a GT word counts under word spotting (RRC ``include_in_dictionary``).

    The normalised word must contain no space, have at least :data:`MIN_LENGTH_CARE_WORD`
    characters, use only a-z, A-Z, U+00C0-U+01BF, U+01C4-U+027F, U+0386-U+03FF and ``-``, and
    none of ``×÷·``. Digits fail the test.
    """
    word = normalize_spotting_word(transcription)
    if " " in word or len(word) < MIN_LENGTH_CARE_WORD:
        return False
    for char in word:
        if char in _NOT_ALLOWED:
            return False
        code = ord(char)
        if not any(lo <= code <= hi for lo, hi in _ALLOWED_RANGES):
            return False
    return True


def transcription_match(gt: str, det: str, special_characters: str = SPECIAL_CHARACTERS) -> bool:
    """RRC ``transcription_match`` with ``ONLY_REMOVE_FIRST_LAST_CHARACTER`` (case-sensitive).

    True if ``gt == det``, or if `det` equals `gt` with one special character removed from its
    start, its end, or both. Nothing is removed from `det`. An empty `gt` matches only an empty
    `det` (the official code throws on indexing it, and the exception counts as a mismatch).
    """
    if gt == det:
        return True
    if not gt:
        return False
    first_special = gt[0] in special_characters
    last_special = gt[-1] in special_characters
    if first_special and gt[1:] == det:
        return True
    if last_special and gt[:-1] == det:
        return True
    return first_special and last_special and gt[1:-1] == det


def is_correct_transcription(gt: str, det: str, word_spotting: bool) -> bool:
    """Text test of a matched pair, case-insensitive (both strings upper-cased).

    Args:
        gt: the GT transcription (already normalised under word spotting).
        det: the predicted transcription.
        word_spotting: exact equality when True, :func:`transcription_match` when False.
    """
    gt, det = gt.upper(), det.upper()
    return gt == det if word_spotting else transcription_match(gt, det)


@dataclass(frozen=True)
class E2EImageGeometry:
    """One image prepared by :meth:`E2EProtocol.prepare`.

    Attributes:
        e2e: IoU geometry with the end-to-end don't-care set (larger under word spotting).
        det: IoU geometry with the detection don't-care set (``'###'``/ignored only); the same
            object as `e2e` when word spotting is off.
        gt_texts: G GT words as compared (normalised under word spotting).
        det_texts: D predicted words.
    """

    e2e: IoUImageGeometry
    det: IoUImageGeometry
    gt_texts: Tuple[str, ...]
    det_texts: Tuple[str, ...]


class E2EProtocol(TextDetProtocol):
    """RRC end-to-end protocol (module docstring); a :class:`TextDetProtocol` whose count is TP."""

    name = "e2e"

    def __init__(
        self,
        *,
        word_spotting: bool = False,
        iou_threshold: float = 0.5,
        area_precision_threshold: float = 0.5,
        invalid_detections: str = "drop",
    ):
        """
        Args:
            word_spotting: RRC ``WORD_SPOTTING`` (True for Total-Text in the official pipelines).
            iou_threshold: a pair matches when IoU is strictly greater (``IOU_CONSTRAINT``).
            area_precision_threshold: don't-care test threshold (``AREA_PRECISION_CONSTRAINT``).
            invalid_detections: "drop" (AdelaiDet: self-intersecting predictions removed before
                scoring) or "repair" (MMOCR), as in :class:`~.iou.IoUProtocol`.
        """
        self.word_spotting = bool(word_spotting)
        self.iou = IoUProtocol(
            iou_threshold=iou_threshold,
            area_precision_threshold=area_precision_threshold,
            invalid_detections=invalid_detections,
        )

    def params(self) -> Dict[str, Any]:
        return {
            **self.iou.params(),
            "name": self.name,
            "word_spotting": self.word_spotting,
            "min_length_care_word": MIN_LENGTH_CARE_WORD,
            "special_characters": SPECIAL_CHARACTERS,
            "only_remove_first_last_character": True,
            "text_comparison": "case-insensitive",
            "wrong_text_matches": "consume the GT and count as false positives",
        }

    def spotting_ground_truth(self, gt: ImageGroundTruth) -> ImageGroundTruth:
        """The GT as the end-to-end test sees it: word-spotting don't-care set, normalised words."""
        if not self.word_spotting:
            return gt
        dont_care = np.array(gt.dont_care, dtype=bool).reshape(len(gt))
        texts = list(gt.texts)
        for i, text in enumerate(texts):
            if dont_care[i]:
                continue
            if is_spotting_word(text):
                texts[i] = normalize_spotting_word(text)
            else:
                dont_care[i] = True
        return ImageGroundTruth(gt.polygons, tuple(texts), dont_care)

    def prepare(self, gt: ImageGroundTruth, det: ImageDetections) -> E2EImageGeometry:
        """Geometry of one image; `det` must carry one transcription per detection.

        Raises:
            ValueError: detections without transcriptions.
        """
        if len(det) and len(det.texts) != len(det):
            raise ValueError(
                f"{len(det)} detections but {len(det.texts)} transcriptions; end-to-end "
                "evaluation needs a transcription on every detection"
            )
        spotting_gt = self.spotting_ground_truth(gt)
        det_geometry = self.iou.prepare(gt, det)
        e2e_geometry = det_geometry if spotting_gt is gt else self.iou.prepare(spotting_gt, det)
        return E2EImageGeometry(e2e_geometry, det_geometry, spotting_gt.texts, tuple(det.texts))

    def match(
        self,
        geometry: E2EImageGeometry,
        keep: Optional[np.ndarray] = None,
        texts: Optional[Sequence[str]] = None,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Greedy matching and the text test of each pair.

        Args:
            geometry: from :meth:`prepare`.
            keep: bool ``(D,)``, the detections taking part (default all).
            texts: D transcriptions to test instead of the prepared ones (lexicon runs).

        Returns:
            pairs: int ``(M, 2)`` matched (gt index, detection index), in matching order.
            correct: bool ``(M,)``, whether each pair's transcription is right.
        """
        texts = geometry.det_texts if texts is None else texts
        if len(texts) != len(geometry.det.det_kept):
            raise ValueError(f"{len(geometry.det.det_kept)} detections but {len(texts)} texts")
        pairs = self.iou.match(geometry.e2e, keep)
        correct = np.array(
            [
                is_correct_transcription(geometry.gt_texts[g], texts[d], self.word_spotting)
                for g, d in pairs
            ],
            dtype=bool,
        ).reshape(len(pairs))
        return pairs, correct

    def count(
        self,
        geometry: E2EImageGeometry,
        keep: Optional[np.ndarray] = None,
        texts: Optional[Sequence[str]] = None,
    ) -> DetectionCounts:
        """End-to-end counts of one image: credits = correct pairs, with the e2e care counts."""
        _, correct = self.match(geometry, keep, texts)
        num_correct = float(correct.sum())
        det_care = geometry.e2e.det_kept & ~geometry.e2e.det_dont_care
        if keep is not None:
            det_care = det_care & np.asarray(keep, dtype=bool)
        return DetectionCounts(
            recall_credit=num_correct,
            precision_credit=num_correct,
            num_gt=geometry.e2e.num_gt_care,
            num_det=int(det_care.sum()),
        )

    def count_detection(
        self, geometry: E2EImageGeometry, keep: Optional[np.ndarray] = None
    ) -> DetectionCounts:
        """Detection-only counts of one image (``DETECTION_ONLY_RESULTS``)."""
        return self.iou.count(geometry.det, keep)


@dataclass(frozen=True)
class TextSpottingResult:
    """Outcome of :func:`evaluate_text_spotting`.

    Attributes:
        protocol: the protocol's parameters.
        e2e: run name (``"none"`` or a lexicon type) -> dataset totals.
        detection: detection-only dataset totals for the same predictions.
        per_image: image key -> run name -> totals of that image.
        corrections: lexicon type -> image key -> ``(corrected words, distances (D,), keep (D,))``.
        lexicons: lexicon type -> the corrector's parameters.
    """

    protocol: Dict[str, Any]
    e2e: Dict[str, DetectionCounts]
    detection: DetectionCounts
    per_image: Dict[str, Dict[str, DetectionCounts]] = field(default_factory=dict)
    corrections: Dict[str, Dict[str, Tuple[List[str], np.ndarray, np.ndarray]]] = field(
        default_factory=dict
    )
    lexicons: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    def metrics(self) -> Dict[str, Dict[str, float]]:
        """``{"e2e_none": {...}, "e2e_<lexicon>": {...}, "text_det": {...}}``, in percent."""

        def percent(c: DetectionCounts) -> Dict[str, float]:
            return {
                "precision": 100.0 * c.precision,
                "recall": 100.0 * c.recall,
                "hmean": 100.0 * c.hmean,
            }

        out = {f"e2e_{run}": percent(counts) for run, counts in self.e2e.items()}
        out["text_det"] = percent(self.detection)
        return out

    def summary(self) -> Dict[str, Any]:
        """JSON-serializable record: metrics, dataset totals per run, protocol, lexicon settings."""

        def totals(c: DetectionCounts) -> Dict[str, float]:
            return {"num_gt_care": c.num_gt, "num_det_care": c.num_det, "correct": c.recall_credit}

        return {
            "metrics": self.metrics(),
            "metric_units": "percent",
            "num_images": len(self.per_image),
            "totals": {
                **{f"e2e_{run}": totals(c) for run, c in self.e2e.items()},
                "text_det": totals(self.detection),
            },
            "protocol": self.protocol,
            "lexicons": self.lexicons,
        }


def evaluate_text_spotting(
    ground_truth: Mapping[str, ImageGroundTruth],
    detections: Mapping[str, ImageDetections],
    protocol: E2EProtocol,
    *,
    lexicons: Optional[Mapping[str, LexiconCorrector]] = None,
) -> TextSpottingResult:
    """Score spotting results over a dataset as the official end-to-end script does.

    The ground truth defines the image set: an image absent from `detections` has no detections,
    and a detection key absent from the ground truth is an error ("sample not present in GT").
    Each run (no lexicon, then each lexicon) uses the same geometry; a lexicon run scores the
    corrected words of the detections its far-off rule keeps.

    Args:
        ground_truth: image key -> ground truth.
        detections: image key -> detections with transcriptions, in the order matching uses.
        protocol: the end-to-end protocol.
        lexicons: lexicon type -> corrector (see :func:`~.lexicon.build_lexicon_corrector`).

    Raises:
        ValueError: empty ground truth, detection keys missing from the ground truth, detections
            without transcriptions (naming the image).
    """
    images = protocol.prepare_images(ground_truth, detections)
    lexicons = dict(lexicons or {})
    runs = ["none"] + list(lexicons)
    totals = {run: DetectionCounts() for run in runs}
    detection_total = DetectionCounts()
    per_image: Dict[str, Dict[str, DetectionCounts]] = {}
    corrections: Dict[str, Dict[str, Tuple[List[str], np.ndarray, np.ndarray]]] = {
        t: {} for t in lexicons
    }
    for key, _, geometry in images:
        image = {"none": protocol.count(geometry), "text_det": protocol.count_detection(geometry)}
        for lexicon_type, corrector in lexicons.items():
            words, distances, keep = corrector.apply(key, geometry.det_texts)
            corrections[lexicon_type][key] = (words, distances, keep)
            image[lexicon_type] = protocol.count(geometry, keep, words)
        per_image[key] = image
        for run in runs:
            totals[run] = totals[run] + image[run]
        detection_total = detection_total + image["text_det"]
    return TextSpottingResult(
        protocol=protocol.params(),
        e2e=totals,
        detection=detection_total,
        per_image=per_image,
        corrections=corrections,
        lexicons={t: c.params() for t, c in lexicons.items()},
    )
