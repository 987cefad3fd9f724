"""Total-Text DetEval protocol, as the dataset's ``Deteval.py`` computes it.

See docs/protocols.md, "Total-Text DetEval".

Rules, per image, as the official script computes them:

1. **Don't-care filtering.** A detection D is deleted if, for some don't-care GT G (``'###'``),
   area(D∩G) / (area(D) + 1) > 0.5 (note the +1); then the don't-care GTs are deleted.
2. **Tables** between remaining GTs and detections, rounded to 2 decimals (``np.round``):
   σ = area(G∩D) / area(G) (recall side) and τ = area(G∩D) / area(D) (precision side).
   Intersections use ``buffer(0)``-repaired polygons, areas the raw polygons (``polygon_fast.py``).
3. **One-to-one**, for each GT row: exactly one detection with σ > tr, exactly one with τ > tp,
   and in the column(s) of those detections exactly one GT above the same thresholds → credit
   1 / 1; the σ-candidate detection is flagged as matched. (As in the script, the σ- and
   τ-candidates are not required to be the same detection.)
4. **One-to-many (split)**, for each unmatched GT with at least k detections of σ > 0: candidates
   are the unmatched detections with τ ≥ tp. One candidate with τ ≥ tp and σ ≥ tr → 1 / 1;
   otherwise if Σσ of the candidates ≥ tr → recall +fsc_k, precision +fsc_k · n.
5. **Many-to-one (merge)**, symmetric for each unmatched detection with at least k GTs of τ > 0:
   candidates are the unmatched GTs with σ ≥ tp; one candidate with τ ≥ tp and σ ≥ tr → 1 / 1;
   otherwise if Στ ≥ tp → recall +fsc_k · n, precision +fsc_k.
6. P = Σ precision credit / #det, R = Σ recall credit / #GT, over the dataset.

Defaults tr = 0.7, tp = 0.6, k = 2, fsc_k = 0.8 (the official recommendation).

Where the script would crash, this implementation gives a defined value instead: a zero-area GT
has σ = 0 and a zero-area (or unbuildable) detection has τ = 0. Coordinates are used as given;
the script itself reads integers (``y, x`` order in its input files, plain ``x, y`` here), and the
FastTCM evaluator truncates predictions to int before scoring.

Nothing here imports detectron2.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np
import shapely

from ...structures.text import DONT_CARE_TEXT
from .base import DetectionCounts, ImageDetections, ImageGroundTruth, TextDetProtocol
from .polygons import make_ground_truth_polygons, make_polygons, pairwise_intersection_areas

__all__ = ["DetEvalProtocol", "DetEvalImageGeometry"]


@dataclass(frozen=True)
class DetEvalImageGeometry:
    """Geometry of one image under DetEval (computed once by :meth:`DetEvalProtocol.prepare`).

    Attributes:
        sigma: ``(G_care, D)`` σ table (rounded to 2 decimals), all detections as columns.
        tau: ``(G_care, D)`` τ table (rounded to 2 decimals).
        det_filtered: ``(D,)`` detections deleted by the don't-care filter.
    """

    sigma: np.ndarray
    tau: np.ndarray
    det_filtered: np.ndarray


class DetEvalProtocol(TextDetProtocol):
    """Total-Text DetEval; see the module docstring for the exact rules."""

    name = "deteval"

    def __init__(
        self,
        *,
        tr: float = 0.7,
        tp: float = 0.6,
        k: int = 2,
        fsc_k: float = 0.8,
        dont_care_threshold: float = 0.5,
    ):
        """
        Args:
            tr: area-recall threshold on σ.
            tp: area-precision threshold on τ.
            k: minimum number of overlapping partners for a split or merge to be considered.
            fsc_k: credit of a split or merge match.
            dont_care_threshold: a detection is deleted when area(D∩G)/(area(D)+1) exceeds it
                for a don't-care GT.
        """
        self.tr = float(tr)
        self.tp = float(tp)
        self.k = int(k)
        self.fsc_k = float(fsc_k)
        self.dont_care_threshold = float(dont_care_threshold)

    def params(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "tr": self.tr,
            "tp": self.tp,
            "k": self.k,
            "fsc_k": self.fsc_k,
            "dont_care_threshold": self.dont_care_threshold,
            "dont_care_test": "area(D∩G) / (area(D) + 1) > threshold",
            "dont_care_text": DONT_CARE_TEXT,
            "table_rounding": 2,
            "aggregation": "dataset-level sums of credits / #gt / #det",
        }

    def prepare(self, gt: ImageGroundTruth, det: ImageDetections) -> DetEvalImageGeometry:
        gt_polys = make_ground_truth_polygons(gt.polygons)
        det_polys, _ = make_polygons(det.polygons)
        # polygon_fast.py: raw shoelace areas, intersections of buffer(0)-repaired polygons.
        gt_area = shapely.area(gt_polys).reshape(-1)
        det_area = shapely.area(det_polys).reshape(-1)
        inter = pairwise_intersection_areas(
            shapely.buffer(gt_polys, 0), shapely.buffer(det_polys, 0)
        )

        dont_care = np.asarray(gt.dont_care, dtype=bool).reshape(len(gt_polys))
        iod = inter[dont_care] / (det_area[None, :] + 1.0)
        det_filtered = (iod > self.dont_care_threshold).any(axis=0)

        care_inter = inter[~dont_care]
        care_area = gt_area[~dont_care]
        sigma = np.divide(
            care_inter,
            care_area[:, None],
            out=np.zeros_like(care_inter),
            where=care_area[:, None] > 0,
        )
        tau = np.divide(
            care_inter,
            det_area[None, :],
            out=np.zeros_like(care_inter),
            where=det_area[None, :] > 0,
        )
        return DetEvalImageGeometry(np.round(sigma, 2), np.round(tau, 2), det_filtered)

    def count(
        self, geometry: DetEvalImageGeometry, keep: Optional[np.ndarray] = None
    ) -> DetectionCounts:
        columns = ~geometry.det_filtered
        if keep is not None:
            columns = columns & np.asarray(keep, dtype=bool)
        sigma = geometry.sigma[:, columns]
        tau = geometry.tau[:, columns]
        recall_credit, precision_credit = self._match(sigma, tau)
        return DetectionCounts(recall_credit, precision_credit, sigma.shape[0], sigma.shape[1])

    def _match(self, sigma: np.ndarray, tau: np.ndarray):
        """The three matching passes of the official script on one image's tables."""
        tr, tp, k, fsc_k = self.tr, self.tp, self.k, self.fsc_k
        num_gt, num_det = sigma.shape
        gt_flag = np.zeros(num_gt, dtype=bool)
        det_flag = np.zeros(num_det, dtype=bool)
        recall_credit = 0.0
        precision_credit = 0.0
        if num_gt == 0 or num_det == 0:
            return recall_credit, precision_credit

        # One-to-one (vectorized): unique σ- and τ-candidates per row, each unique in its column.
        sigma_hit = sigma > tr
        tau_hit = tau > tp
        row_sigma = sigma_hit.sum(axis=1)
        row_tau = tau_hit.sum(axis=1)
        sigma_det = sigma_hit.argmax(axis=1)
        tau_det = tau_hit.argmax(axis=1)
        one_to_one = (
            (row_sigma == 1)
            & (row_tau == 1)
            & (sigma_hit.sum(axis=0)[sigma_det] == 1)
            & (tau_hit.sum(axis=0)[tau_det] == 1)
        )
        gt_flag[one_to_one] = True
        det_flag[sigma_det[one_to_one]] = True
        recall_credit += float(one_to_one.sum())
        precision_credit += float(one_to_one.sum())

        # One-to-many (split): sequential, earlier rows claim detections first.
        for g in np.flatnonzero(~gt_flag & ((sigma > 0).sum(axis=1) >= k)):
            cand = np.flatnonzero((tau[g] >= tp) & ~det_flag)
            if len(cand) == 1:
                if tau[g, cand[0]] >= tp and sigma[g, cand[0]] >= tr:
                    gt_flag[g] = True
                    det_flag[cand] = True
                    recall_credit += 1.0
                    precision_credit += 1.0
            elif sigma[g, cand].sum() >= tr:
                gt_flag[g] = True
                det_flag[cand] = True
                recall_credit += fsc_k
                precision_credit += len(cand) * fsc_k

        # Many-to-one (merge): sequential over still unmatched detections.
        for d in range(num_det):
            if det_flag[d] or (tau[:, d] > 0).sum() < k:
                continue
            cand = np.flatnonzero((sigma[:, d] >= tp) & ~gt_flag)
            if len(cand) == 1:
                if tau[cand[0], d] >= tp and sigma[cand[0], d] >= tr:
                    gt_flag[cand] = True
                    det_flag[d] = True
                    recall_credit += 1.0
                    precision_credit += 1.0
            elif tau[cand, d].sum() >= tp:
                det_flag[d] = True
                gt_flag[cand] = True
                recall_credit += len(cand) * fsc_k
                precision_credit += fsc_k
        return recall_credit, precision_credit
