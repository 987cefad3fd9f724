"""ICDAR/RRC IoU protocol for text detection (docs/protocols.md, "ICDAR IoU protocol").

Rules, per image, as in the RRC scripts vendored by AdelaiDet/TESTR/DeepSolo:

1. IoU = area(G∩D) / (area(D) + area(G) − area(G∩D)), exact polygon clipping; 0 if the union
   is 0 or GEOS throws.
2. A ground truth with transcription ``'###'`` is don't-care.
3. A detection D is don't-care if area(G∩D) / area(D) > 0.5 (strict; 0 when area(D) = 0) for some
   don't-care G; it is removed from the counts. Tested once, before matching.
4. Greedy one-to-one matching in index order, *not* by best IoU: ground truths in file order, and
   for each the first detection in file order that is unmatched, not don't-care and has
   IoU > 0.5 (strict).
5. matched = #pairs, gt_care = #GT − #don't-care GT, det_care = #det − #don't-care det; summed over
   the dataset before P = Σmatched/Σdet_care and R = Σmatched/Σgt_care.

Invalid (self-intersecting, zero-area) detections: AdelaiDet deletes them *before* scoring,
neither TP nor FP (``invalid_detections="drop"``, the default); MMOCR repairs them with
``buffer(0)`` (convex hull when that is a MultiPolygon) (``"repair"``). A detection that cannot
even be built (fewer than 3 vertices, NaN/inf) is dropped under "drop" and is a zero-area false
positive under "repair". Invalid ground-truth polygons are repaired the MMOCR way (the RRC loaders
assert validity instead; a repaired GT keeps the evaluation running rather than aborting it).

Nothing here imports detectron2.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np
import shapely

from ...structures.text import DONT_CARE_TEXT
from .base import DetectionCounts, ImageDetections, ImageGroundTruth, TextDetProtocol
from .polygons import (
    make_ground_truth_polygons,
    make_polygons,
    pairwise_intersection_areas,
    repair_polygons,
)

__all__ = ["IoUProtocol", "IoUImageGeometry"]

INVALID_DETECTION_POLICIES = ("drop", "repair")


@dataclass(frozen=True)
class IoUImageGeometry:
    """Geometry of one image under the IoU protocol (computed once by :meth:`IoUProtocol.prepare`).

    Attributes:
        iou: ``(G, D)`` IoU of every ground truth with every detection (0 for dropped ones).
        gt_dont_care: ``(G,)`` don't-care ground truths.
        det_kept: ``(D,)`` detections taking part in scoring (False: dropped as invalid).
        det_dont_care: ``(D,)`` kept detections that fall in a don't-care region.
        candidate_pairs: ``(K, 2)`` int (gt, det) pairs with IoU above the threshold between a
            care GT and a kept care detection, in row-major (GT-major, then detection) order.
    """

    iou: np.ndarray
    gt_dont_care: np.ndarray
    det_kept: np.ndarray
    det_dont_care: np.ndarray
    candidate_pairs: np.ndarray

    @property
    def num_gt_care(self) -> int:
        return int((~self.gt_dont_care).sum())


class IoUProtocol(TextDetProtocol):
    """ICDAR/RRC IoU protocol; see the module docstring for the exact rules."""

    name = "iou"

    def __init__(
        self,
        *,
        iou_threshold: float = 0.5,
        area_precision_threshold: float = 0.5,
        invalid_detections: str = "drop",
    ):
        """
        Args:
            iou_threshold: a pair matches when IoU is strictly greater (RRC ``IOU_CONSTRAINT``).
            area_precision_threshold: a detection is don't-care when its area precision against a
                don't-care GT is strictly greater (RRC ``AREA_PRECISION_CONSTRAINT``).
            invalid_detections: "drop" (AdelaiDet pipeline) or "repair" (MMOCR).
        """
        if invalid_detections not in INVALID_DETECTION_POLICIES:
            raise ValueError(
                f"invalid_detections must be one of {INVALID_DETECTION_POLICIES}, "
                f"got {invalid_detections!r}"
            )
        self.iou_threshold = float(iou_threshold)
        self.area_precision_threshold = float(area_precision_threshold)
        self.invalid_detections = invalid_detections

    def params(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "iou_threshold": self.iou_threshold,
            "iou_test": "strict >",
            "area_precision_threshold": self.area_precision_threshold,
            "area_precision_test": "strict >",
            "dont_care_text": DONT_CARE_TEXT,
            "matching": "greedy one-to-one, GT file order then detection order",
            "invalid_detections": self.invalid_detections,
            "aggregation": "dataset-level sums of matched / gt_care / det_care",
        }

    def prepare(self, gt: ImageGroundTruth, det: ImageDetections) -> IoUImageGeometry:
        gt_polys = repair_polygons(make_ground_truth_polygons(gt.polygons))

        det_polys, det_buildable = make_polygons(det.polygons)
        if self.invalid_detections == "drop":
            det_kept = det_buildable & shapely.is_valid(det_polys)
            det_polys[~det_kept] = shapely.Polygon()  # out of every computation (IoU 0)
        else:
            det_kept = np.ones(len(det_polys), dtype=bool)
            det_polys = repair_polygons(det_polys)

        inter = pairwise_intersection_areas(gt_polys, det_polys)
        gt_area = shapely.area(gt_polys).reshape(-1)
        det_area = shapely.area(det_polys).reshape(-1)
        union = det_area[None, :] + gt_area[:, None] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)

        gt_dont_care = np.asarray(gt.dont_care, dtype=bool).reshape(len(gt_polys))
        area_precision = np.divide(
            inter[gt_dont_care],
            det_area[None, :],
            out=np.zeros((int(gt_dont_care.sum()), len(det_polys))),
            where=det_area[None, :] > 0,
        )
        det_dont_care = det_kept & (area_precision > self.area_precision_threshold).any(axis=0)

        candidates = (iou > self.iou_threshold) & ~gt_dont_care[:, None]
        candidates &= (det_kept & ~det_dont_care)[None, :]
        pairs = np.argwhere(candidates)  # row-major: GT-major, then detection index
        return IoUImageGeometry(iou, gt_dont_care, det_kept, det_dont_care, pairs)

    def match(self, geometry: IoUImageGeometry, keep: Optional[np.ndarray] = None) -> np.ndarray:
        """Greedy RRC matching of the detections selected by `keep` (default all).

        Returns:
            int array ``(M, 2)`` of matched (gt index, detection index) pairs.
        """
        pairs = geometry.candidate_pairs
        if keep is not None:
            pairs = pairs[np.asarray(keep, dtype=bool)[pairs[:, 1]]]
        gt_used = np.zeros(len(geometry.gt_dont_care), dtype=bool)
        det_used = np.zeros(len(geometry.det_kept), dtype=bool)
        matched = []
        # Sequential by nature (a pair blocks later ones); only IoU-passing pairs are visited.
        for g, d in pairs:
            if not gt_used[g] and not det_used[d]:
                gt_used[g] = det_used[d] = True
                matched.append((g, d))
        return np.array(matched, dtype=np.int64).reshape(-1, 2)

    def count(
        self, geometry: IoUImageGeometry, keep: Optional[np.ndarray] = None
    ) -> DetectionCounts:
        det_care = geometry.det_kept & ~geometry.det_dont_care
        if keep is not None:
            det_care = det_care & np.asarray(keep, dtype=bool)
        num_matched = len(self.match(geometry, keep))
        return DetectionCounts(
            recall_credit=float(num_matched),
            precision_credit=float(num_matched),
            num_gt=geometry.num_gt_care,
            num_det=int(det_care.sum()),
        )
