"""Total-Text DetEval protocol: split / merge credits, rounding, the +1 don't-care test."""

import numpy as np
import pytest

from fasttcm.evaluation.protocols.base import DetectionCounts, ImageDetections, ImageGroundTruth
from fasttcm.evaluation.protocols.deteval import DetEvalProtocol
from fasttcm.evaluation.protocols.iou import IoUProtocol
from fasttcm.evaluation.protocols.text_det import MMOCR_SCORE_THRESHOLDS, evaluate_text_detection


def rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def gt_of(*items):
    return ImageGroundTruth.from_annotations([p for p, _ in items], [t for _, t in items])


def dets_of(*polygons, scores=None):
    return ImageDetections.from_arrays(list(polygons), scores)


def test_split_detection_scores_under_deteval_but_not_under_iou():
    # one 20x10 word detected as two 10x10 halves: sigma 0.5 each, tau 1.0 each
    gt = {"1": gt_of((rect(0, 0, 20, 10), "word"))}
    det = {"1": dets_of(rect(0, 0, 10, 10), rect(10, 0, 20, 10))}
    deteval = evaluate_text_detection(gt, det, DetEvalProtocol())
    # one-to-many: recall +0.8, precision +0.8 * 2, over 1 GT and 2 detections
    assert deteval.counts == DetectionCounts(0.8, 1.6, 1, 2)
    assert deteval.metrics() == pytest.approx({"precision": 80.0, "recall": 80.0, "hmean": 80.0})
    iou = evaluate_text_detection(gt, det, IoUProtocol())
    assert iou.metrics() == {"precision": 0.0, "recall": 0.0, "hmean": 0.0}


def test_merged_detection_scores_many_to_one():
    gt = gt_of((rect(0, 0, 10, 10), "a"), (rect(10, 0, 20, 10), "b"))
    c = DetEvalProtocol().evaluate_image(gt, dets_of(rect(0, 0, 20, 10)))
    # recall +0.8 * 2 over 2 GTs, precision +0.8 over 1 detection
    assert c == DetectionCounts(1.6, 0.8, 2, 1)
    assert (c.precision, c.recall) == pytest.approx((0.8, 0.8))


def test_one_to_one_needs_a_unique_partner_in_the_column_too():
    # two identical GTs share one detection: no one-to-one; the merge rule credits it instead
    gt = gt_of((rect(0, 0, 10, 10), "a"), (rect(0, 0, 10, 10), "b"))
    c = DetEvalProtocol().evaluate_image(gt, dets_of(rect(0, 0, 10, 10)))
    assert c == DetectionCounts(1.6, 0.8, 2, 1)


def test_perfect_one_to_one():
    gt = gt_of((rect(0, 0, 10, 10), "a"), (rect(30, 0, 40, 10), "b"))
    c = DetEvalProtocol().evaluate_image(gt, dets_of(rect(30, 0, 40, 10), rect(0, 0, 10, 10)))
    assert c == DetectionCounts(2, 2, 2, 2)


def test_tables_are_rounded_to_two_decimals():
    gt = gt_of((rect(0, 0, 100, 10), "long"))
    # sigma = 0.704 rounds to 0.70, which is not > tr = 0.7: no match
    assert DetEvalProtocol().evaluate_image(gt, dets_of(rect(0, 0, 70.4, 10))).recall_credit == 0
    # sigma = 0.71 > 0.7 and tau = 1 > 0.6: one-to-one
    assert DetEvalProtocol().evaluate_image(gt, dets_of(rect(0, 0, 71, 10))).recall_credit == 1
    geometry = DetEvalProtocol().prepare(gt, dets_of(rect(0, 0, 70.4, 10)))
    np.testing.assert_array_equal(geometry.sigma, [[0.7]])
    np.testing.assert_array_equal(geometry.tau, [[1.0]])


def test_dont_care_filter_divides_by_area_plus_one():
    # intersection 50.25 with a 100 px detection: 50.25 / 101 < 0.5 keeps it under DetEval,
    # while the RRC test 50.25 / 100 > 0.5 makes it don't-care
    gt = gt_of((rect(4.975, 0, 20, 10), "###"))
    det = dets_of(rect(0, 0, 10, 10))
    assert DetEvalProtocol().evaluate_image(gt, det) == DetectionCounts(0, 0, 0, 1)
    assert IoUProtocol().evaluate_image(gt, det) == DetectionCounts(0, 0, 0, 0)
    # well inside the region: deleted
    inside = DetEvalProtocol().evaluate_image(gt, dets_of(rect(6, 1, 19, 9)))
    assert inside == DetectionCounts(0, 0, 0, 0)


def test_empty_inputs():
    protocol = DetEvalProtocol()
    assert protocol.evaluate_image(ImageGroundTruth.empty(), dets_of()) == DetectionCounts()
    assert protocol.evaluate_image(gt_of((rect(0, 0, 5, 5), "a")), dets_of()) == DetectionCounts(
        0, 0, 1, 0
    )
    assert protocol.evaluate_image(
        ImageGroundTruth.empty(), dets_of(rect(0, 0, 5, 5))
    ) == DetectionCounts(0, 0, 0, 1)


def test_score_sweep_works_with_deteval():
    gt = {"1": gt_of((rect(0, 0, 20, 10), "word"))}
    det = {"1": dets_of(rect(0, 0, 10, 10), rect(10, 0, 20, 10), scores=[0.9, 0.45])}
    result = evaluate_text_detection(
        gt, det, DetEvalProtocol(), score_thresholds=MMOCR_SCORE_THRESHOLDS
    )
    # thr 0.3, 0.4: split match (0.8 / 0.8); from 0.5 on only one half is left: sigma 0.5 < tr
    np.testing.assert_allclose([c.hmean for c in result.sweep.counts], [0.8, 0.8] + [0.0] * 5)


def _reference_deteval(sigma, tau, tr=0.7, tp=0.6, k=2, fsc_k=0.8):
    """The official script's three passes, written with np.where loops as the script does."""
    num_gt, num_det = sigma.shape
    gt_flag, det_flag = np.zeros((1, num_gt)), np.zeros((1, num_det))
    rec = prec = 0.0
    for g in range(num_gt):
        s_c = np.where(sigma[g, :] > tr)
        t_c = np.where(tau[g, :] > tp)
        ds = np.where(sigma[:, s_c[0]] > tr)[0].shape[0]
        dt = np.where(tau[:, t_c[0]] > tp)[0].shape[0]
        if s_c[0].shape[0] == 1 and t_c[0].shape[0] == 1 and ds == 1 and dt == 1:
            rec, prec = rec + 1, prec + 1
            gt_flag[0, g] = 1
            det_flag[0, np.where(sigma[g, :] > tr)] = 1
    for g in range(num_gt):
        if gt_flag[0, g] > 0 or np.where(sigma[g, :] > 0)[0].shape[0] < k:
            continue
        cand = np.where((tau[g, :] >= tp) & (det_flag[0, :] == 0))
        n = cand[0].shape[0]
        if n == 1:
            if tau[g, cand] >= tp and sigma[g, cand] >= tr:
                rec, prec = rec + 1, prec + 1
                gt_flag[0, g] = 1
                det_flag[0, cand] = 1
        elif np.sum(sigma[g, cand]) >= tr:
            gt_flag[0, g] = 1
            det_flag[0, cand] = 1
            rec, prec = rec + fsc_k, prec + n * fsc_k
    for d in range(num_det):
        if det_flag[0, d] > 0 or np.where(tau[:, d] > 0)[0].shape[0] < k:
            continue
        cand = np.where((sigma[:, d] >= tp) & (gt_flag[0, :] == 0))
        n = cand[0].shape[0]
        if n == 1:
            if tau[cand, d] >= tp and sigma[cand, d] >= tr:
                rec, prec = rec + 1, prec + 1
                gt_flag[0, cand] = 1
                det_flag[0, d] = 1
        elif np.sum(tau[cand, d]) >= tp:
            det_flag[0, d] = 1
            gt_flag[0, cand] = 1
            rec, prec = rec + n * fsc_k, prec + fsc_k
    return rec, prec


def test_matching_agrees_with_the_script_structure_on_random_tables():
    rng = np.random.default_rng(0)
    values = np.array([0.0, 0.0, 0.0, 0.1, 0.3, 0.5, 0.6, 0.65, 0.7, 0.75, 0.9, 1.0])
    protocol = DetEvalProtocol()
    nontrivial = 0
    for _ in range(300):
        shape = tuple(rng.integers(1, 6, size=2))
        sigma, tau = rng.choice(values, size=shape), rng.choice(values, size=shape)
        expected = _reference_deteval(sigma, tau)
        assert protocol._match(sigma, tau) == pytest.approx(expected)
        nontrivial += expected[0] > 0
    assert nontrivial > 50
