"""What every text-detection protocol shares: per-image inputs, counts and the protocol interface.

A protocol scores one image at a time in two steps: :meth:`TextDetProtocol.prepare` does all the
polygon geometry once (areas, intersections, don't-care tests), :meth:`TextDetProtocol.count`
then matches any subset of the detections (kept in their original order) against the ground
truth. The split lets a score-threshold sweep reuse the geometry (see ``text_det.py``).

Counts are summed over the dataset before precision, recall and hmean are formed: the headline
figure of the official scripts is *not* a mean of per-image values (docs/protocols.md, "ICDAR IoU
protocol").

Nothing here imports detectron2.
"""

import abc
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Tuple

import numpy as np

from ...structures.text import DONT_CARE_TEXT
from .polygons import as_vertex_array

__all__ = [
    "DONT_CARE_TEXT",
    "ImageGroundTruth",
    "ImageDetections",
    "DetectionCounts",
    "TextDetProtocol",
]

"""Transcription marking a don't-care ground-truth region (ICDAR/RRC, converted TT/CTW GT)."""


@dataclass(frozen=True)
class ImageGroundTruth:
    """Ground truth of one image.

    Attributes:
        polygons: G arrays of shape ``(N_g, 2)`` (x, y absolute pixels, file order), N_g >= 3.
        texts: G transcriptions.
        dont_care: bool array ``(G,)``; True for ``'###'`` (or an explicitly ignored region).
    """

    polygons: Tuple[np.ndarray, ...]
    texts: Tuple[str, ...]
    dont_care: np.ndarray

    @classmethod
    def from_annotations(
        cls,
        polygons: Sequence,
        texts: Sequence[str],
        ignore: Optional[Sequence[bool]] = None,
    ) -> "ImageGroundTruth":
        """Build from polygons and transcriptions; don't-care = text ``'###'`` or ``ignore``.

        Args:
            polygons: G polygons, each ``(N, 2)`` or flat ``x1, y1, ..., xN, yN``.
            texts: G transcriptions.
            ignore: optional G flags (the dataset dicts' ``"ignore"``), OR-ed with ``'###'``.
        """
        polys = tuple(as_vertex_array(p) for p in polygons)
        texts = tuple(str(t) for t in texts)
        if len(texts) != len(polys):
            raise ValueError(f"{len(polys)} polygons but {len(texts)} transcriptions")
        dont_care = np.array([t == DONT_CARE_TEXT for t in texts], dtype=bool).reshape(len(polys))
        if ignore is not None:
            ignore = np.asarray(ignore, dtype=bool).reshape(-1)
            if len(ignore) != len(polys):
                raise ValueError(f"{len(polys)} polygons but {len(ignore)} ignore flags")
            dont_care |= ignore
        return cls(polys, texts, dont_care)

    @classmethod
    def empty(cls) -> "ImageGroundTruth":
        return cls((), (), np.zeros(0, dtype=bool))

    def __len__(self) -> int:
        return len(self.polygons)


@dataclass(frozen=True)
class ImageDetections:
    """Detections of one image, in the order the model emitted them (the order matching uses).

    Attributes:
        polygons: D arrays of shape ``(N_d, 2)`` (x, y absolute pixels).
        scores: float64 array ``(D,)``; NaN where a submission line carried no score.
        texts: D transcriptions (``''`` when absent); unused by detection protocols.
    """

    polygons: Tuple[np.ndarray, ...]
    scores: np.ndarray
    texts: Tuple[str, ...] = field(default=())

    def __post_init__(self):
        if len(self.scores) != len(self.polygons):
            raise ValueError(f"{len(self.polygons)} polygons but {len(self.scores)} scores")
        if self.texts and len(self.texts) != len(self.polygons):
            raise ValueError(f"{len(self.polygons)} polygons but {len(self.texts)} texts")

    @classmethod
    def from_arrays(cls, polygons: Sequence, scores=None, texts=()) -> "ImageDetections":
        """Build from polygons (``(N, 2)`` arrays/tensors or flat lists) and optional scores."""
        polys = tuple(as_vertex_array(p) for p in polygons)
        if scores is None:
            scores = np.full(len(polys), np.nan)
        if hasattr(scores, "detach"):
            scores = scores.detach().cpu().numpy()
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        return cls(polys, scores, tuple(texts))

    @classmethod
    def empty(cls) -> "ImageDetections":
        return cls((), np.zeros(0, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.polygons)


@dataclass(frozen=True)
class DetectionCounts:
    """Numerators and denominators of precision and recall, summable over images.

    For the IoU protocol both credits are the number of matched pairs; DetEval gives fractional
    credit (0.8) to split and merged matches.

    Attributes:
        recall_credit: matched ground-truth credit (recall numerator).
        precision_credit: matched detection credit (precision numerator).
        num_gt: care ground truths (recall denominator).
        num_det: care detections (precision denominator).
    """

    recall_credit: float = 0.0
    precision_credit: float = 0.0
    num_gt: int = 0
    num_det: int = 0

    def __add__(self, other: "DetectionCounts") -> "DetectionCounts":
        return DetectionCounts(
            self.recall_credit + other.recall_credit,
            self.precision_credit + other.precision_credit,
            self.num_gt + other.num_gt,
            self.num_det + other.num_det,
        )

    @property
    def precision(self) -> float:
        """Fraction in [0, 1]; 0 when there is no care detection (RRC rule)."""
        return self.precision_credit / self.num_det if self.num_det > 0 else 0.0

    @property
    def recall(self) -> float:
        """Fraction in [0, 1]; 0 when there is no care ground truth (RRC rule, not MMOCR's 1)."""
        return self.recall_credit / self.num_gt if self.num_gt > 0 else 0.0

    @property
    def hmean(self) -> float:
        """Harmonic mean 2PR / (P + R); 0 when P + R = 0."""
        p, r = self.precision, self.recall
        return 2.0 * p * r / (p + r) if p + r > 0 else 0.0


class TextDetProtocol(abc.ABC):
    """Interface of a text-detection matching protocol (one instance holds its parameters)."""

    #: short name used in metadata ``eval_protocol`` and on the command line
    name: str = ""

    @abc.abstractmethod
    def prepare(self, gt: ImageGroundTruth, det: ImageDetections) -> Any:
        """Do the geometry of one image once; the result is only meaningful to :meth:`count`."""

    @abc.abstractmethod
    def count(self, prepared: Any, keep: Optional[np.ndarray] = None) -> DetectionCounts:
        """Match the detections selected by `keep` (bool ``(D,)``, default all) on one image."""

    @abc.abstractmethod
    def params(self) -> Dict[str, Any]:
        """The protocol's parameters, JSON-serializable (written to ``eval_protocol.json``)."""

    def evaluate_image(self, gt: ImageGroundTruth, det: ImageDetections) -> DetectionCounts:
        """Counts of one image with all its detections."""
        return self.count(self.prepare(gt, det))

    def prepare_images(
        self,
        ground_truth: Mapping[str, ImageGroundTruth],
        detections: Mapping[str, ImageDetections],
    ) -> Iterator[Tuple[str, ImageDetections, Any]]:
        """Check a dataset's keys now, then :meth:`prepare` its images one by one when iterated.

        As in the official scripts, the ground truth defines the image set: an image absent from
        `detections` has no detections, and a detection key absent from the ground truth is an
        error ("sample not present in GT").

        Args:
            ground_truth: image key -> ground truth.
            detections: image key -> detections.

        Returns:
            Iterator[tuple]: ``(key, detections, prepared)`` of each ground-truth image, in order.

        Raises:
            ValueError: at once, when the ground truth is empty or has not every detection key;
                while iterating, when an image cannot be prepared (the message names it).
        """
        if len(ground_truth) == 0:
            raise ValueError("the ground truth has no images")
        unknown = sorted(set(detections) - set(ground_truth), key=str)
        if unknown:
            raise ValueError(
                f"{len(unknown)} detection sample(s) not present in the ground truth, "
                f"e.g. {unknown[:5]}"
            )
        return _prepare_each(self, ground_truth, detections)


def _prepare_each(
    protocol: TextDetProtocol,
    ground_truth: Mapping[str, ImageGroundTruth],
    detections: Mapping[str, ImageDetections],
) -> Iterator[Tuple[str, ImageDetections, Any]]:
    for key, gt in ground_truth.items():
        det = detections.get(key, ImageDetections.empty())
        try:
            prepared = protocol.prepare(gt, det)
        except ValueError as e:
            raise ValueError(f"image {key!r}: {e}") from e
        yield key, det, prepared
