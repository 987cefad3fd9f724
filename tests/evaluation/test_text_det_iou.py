"""ICDAR/RRC IoU protocol on hand-made polygons whose P/R/hmean are known by construction."""

import numpy as np
import pytest
from shapely.geometry import Polygon

from fasttcm.evaluation.protocols.base import DetectionCounts, ImageDetections, ImageGroundTruth
from fasttcm.evaluation.protocols.iou import IoUProtocol
from fasttcm.evaluation.protocols.text_det import (
    MMOCR_SCORE_THRESHOLDS,
    build_text_det_protocol,
    evaluate_text_detection,
)


def rect(x0, y0, x1, y1):
    """Axis-aligned rectangle as a clockwise-on-screen (N, 2) polygon."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def gt_of(*items):
    """items: (polygon, text) pairs."""
    return ImageGroundTruth.from_annotations([p for p, _ in items], [t for _, t in items])


def dets_of(*polygons, scores=None):
    return ImageDetections.from_arrays(list(polygons), scores)


def counts(gt, det, **kwargs):
    return IoUProtocol(**kwargs).evaluate_image(gt, det)


def test_perfect_detections():
    gt = gt_of((rect(0, 0, 10, 10), "a"), (rect(20, 0, 30, 10), "b"))
    c = counts(gt, dets_of(rect(20, 0, 30, 10), rect(0, 0, 10, 10)))
    assert c == DetectionCounts(2, 2, 2, 2)
    assert (c.precision, c.recall, c.hmean) == (1.0, 1.0, 1.0)


def test_iou_threshold_is_strict():
    gt = gt_of((rect(0, 0, 10, 10), "a"))
    # area 100 inside a 10x20 detection: IoU = 100 / 200 = 0.5 exactly -> no match
    assert counts(gt, dets_of(rect(0, 0, 10, 20))).recall_credit == 0
    # 10x19: IoU = 100 / 190 > 0.5 -> match
    assert counts(gt, dets_of(rect(0, 0, 10, 19))).recall_credit == 1


def test_dont_care_region_removes_detections_with_area_precision_above_half():
    gt = gt_of((rect(100, 0, 110, 10), "care"), (rect(0, 0, 10, 10), "###"))
    det = dets_of(
        rect(100, 0, 110, 10),  # matches the care GT
        rect(1, 1, 9, 9),  # inside the don't-care region: removed from the counts
        rect(5, 0, 15, 10),  # area precision exactly 0.5 (not > 0.5): an ordinary false positive
    )
    c = counts(gt, det)
    assert c == DetectionCounts(1, 1, 1, 2)
    assert c.precision == pytest.approx(0.5)
    assert c.recall == 1.0
    assert c.hmean == pytest.approx(2 / 3)


def test_detection_matching_a_dont_care_gt_is_not_a_true_positive():
    gt = gt_of((rect(0, 0, 10, 10), "###"))
    c = counts(gt, dets_of(rect(0, 0, 10, 10)))
    assert c == DetectionCounts(0, 0, 0, 0)


def test_greedy_matching_follows_file_order_not_the_best_assignment():
    # A=[0,10], B=[4,14] (heights 10). d1=[2,12]: IoU(A)=8/12, IoU(B)=8/12. d2=[0,10]: IoU(A)=1,
    # IoU(B)=6/14 < 0.5. A takes the first passing detection (d1), so B stays unmatched although
    # the assignment A-d2, B-d1 exists.
    gt = gt_of((rect(0, 0, 10, 10), "A"), (rect(4, 0, 14, 10), "B"))
    d1, d2 = rect(2, 0, 12, 10), rect(0, 0, 10, 10)
    protocol = IoUProtocol()
    geometry = protocol.prepare(gt, dets_of(d1, d2))
    np.testing.assert_array_equal(protocol.match(geometry), [[0, 0]])
    assert protocol.count(geometry) == DetectionCounts(1, 1, 2, 2)
    # the same detections in the other order: A-d2 first, then B-d1
    assert counts(gt, dets_of(d2, d1)) == DetectionCounts(2, 2, 2, 2)


def test_gt_takes_the_first_passing_detection_not_the_best():
    gt = gt_of((rect(0, 0, 10, 10), "a"))
    ok, best = rect(0, 0, 10, 16), rect(0, 0, 10, 10)  # IoU 0.625 then 1.0
    protocol = IoUProtocol()
    np.testing.assert_array_equal(protocol.match(protocol.prepare(gt, dets_of(ok, best))), [[0, 0]])


def test_split_detections_do_not_match_under_iou():
    gt = gt_of((rect(0, 0, 20, 10), "word"))
    c = counts(gt, dets_of(rect(0, 0, 10, 10), rect(10, 0, 20, 10)))  # IoU 0.5 each
    assert c == DetectionCounts(0, 0, 1, 2)


def test_dataset_level_totals_are_not_a_mean_of_images():
    ground_truth = {
        "1": gt_of((rect(0, 0, 10, 10), "a")),
        "2": gt_of(*[(rect(20 * i, 0, 20 * i + 10, 10), "b") for i in range(3)]),
    }
    detections = {"1": dets_of(rect(0, 0, 10, 10))}  # image 2 has no result: no detections
    result = evaluate_text_detection(ground_truth, detections, IoUProtocol())
    assert result.counts == DetectionCounts(1, 1, 4, 1)
    assert result.metrics() == pytest.approx({"precision": 100.0, "recall": 25.0, "hmean": 40.0})
    assert result.per_image["2"] == DetectionCounts(0, 0, 3, 0)


def test_empty_images_and_no_predictions():
    protocol = IoUProtocol()
    empty = evaluate_text_detection({"1": ImageGroundTruth.empty()}, {}, protocol)
    assert empty.metrics() == {"precision": 0.0, "recall": 0.0, "hmean": 0.0}
    # an image with neither GT nor detections changes nothing
    gt = {"1": gt_of((rect(0, 0, 10, 10), "a")), "2": ImageGroundTruth.empty()}
    both = evaluate_text_detection(gt, {"1": dets_of(rect(0, 0, 10, 10))}, protocol)
    assert both.metrics() == {"precision": 100.0, "recall": 100.0, "hmean": 100.0}
    # no predictions at all: recall 0 and precision 0 (no care detection)
    none = evaluate_text_detection(gt, {}, protocol)
    assert none.counts == DetectionCounts(0, 0, 1, 0)
    assert none.metrics() == {"precision": 0.0, "recall": 0.0, "hmean": 0.0}


def test_no_ground_truth_gives_zero_recall_not_one():
    # RRC returns 0 at dataset level when there is no care GT (MMOCR 1.x would say recall 1).
    result = evaluate_text_detection(
        {"1": ImageGroundTruth.empty()}, {"1": dets_of(rect(0, 0, 5, 5))}, IoUProtocol()
    )
    assert result.counts == DetectionCounts(0, 0, 0, 1)
    assert result.metrics() == {"precision": 0.0, "recall": 0.0, "hmean": 0.0}


def test_result_for_an_image_missing_from_the_ground_truth_is_an_error():
    with pytest.raises(ValueError, match="not present in the ground truth"):
        evaluate_text_detection(
            {"1": ImageGroundTruth.empty()}, {"7": dets_of(rect(0, 0, 5, 5))}, IoUProtocol()
        )
    with pytest.raises(ValueError, match="no images"):
        evaluate_text_detection({}, {}, IoUProtocol())


def test_invalid_detections_are_dropped_or_repaired():
    gt = gt_of((rect(0, 0, 10, 10), "a"))
    bowtie = np.array([[0, 0], [10, 10], [10, 0], [0, 10]], dtype=np.float64)
    two_points = np.array([[0, 0], [10, 10]], dtype=np.float64)
    det = dets_of(rect(0, 0, 10, 10), bowtie, two_points)
    # AdelaiDet: invalid polygons are deleted before scoring, neither TP nor FP
    assert counts(gt, det) == DetectionCounts(1, 1, 1, 1)
    # MMOCR: buffer(0) keeps one lobe (area 25, IoU 0.25): a false positive, like the 2-point one
    assert counts(gt, det, invalid_detections="repair") == DetectionCounts(1, 1, 1, 3)
    with pytest.raises(ValueError, match="invalid_detections"):
        IoUProtocol(invalid_detections="ignore")


def test_invalid_ground_truth_is_repaired_not_fatal():
    bowtie = np.array([[0, 0], [10, 10], [10, 0], [0, 10]], dtype=np.float64)
    c = counts(gt_of((bowtie, "x")), dets_of(rect(0, 0, 10, 10)))
    assert c.num_gt == 1 and c.num_det == 1  # evaluated, no exception
    with pytest.raises(ValueError, match="fewer than 3 vertices"):
        counts(gt_of((np.array([[0.0, 0.0], [1.0, 1.0]]), "x")), dets_of())


def test_iou_matrix_equals_analytic_rectangle_iou():
    rng = np.random.default_rng(0)
    boxes_g = rng.uniform(0, 50, size=(6, 2))
    boxes_d = rng.uniform(0, 50, size=(7, 2))
    size_g, size_d = rng.uniform(5, 30, size=(6, 2)), rng.uniform(5, 30, size=(7, 2))
    g = np.concatenate([boxes_g, boxes_g + size_g], axis=1)
    d = np.concatenate([boxes_d, boxes_d + size_d], axis=1)
    gt = gt_of(*[(rect(*b), "t") for b in g])
    geometry = IoUProtocol().prepare(gt, dets_of(*[rect(*b) for b in d]))
    lt = np.maximum(g[:, None, :2], d[None, :, :2])
    rb = np.minimum(g[:, None, 2:], d[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_g = (g[:, 2:] - g[:, :2]).prod(axis=1)
    area_d = (d[:, 2:] - d[:, :2]).prod(axis=1)
    expected = inter / (area_g[:, None] + area_d[None, :] - inter)
    np.testing.assert_allclose(geometry.iou, expected, rtol=1e-12, atol=1e-12)


def _reference_rrc_counts(gt_polys, dont_care, det_polys):
    """The RRC per-image loop written out with scalar shapely calls (independent of STRtree)."""
    gp = [Polygon(p) for p in gt_polys]
    dp = [Polygon(p) for p in det_polys]
    det_dc = []
    for j, d in enumerate(dp):
        for i, g in enumerate(gp):
            if dont_care[i]:
                precision = 0 if d.area == 0 else g.intersection(d).area / d.area
                if precision > 0.5:
                    det_dc.append(j)
                    break
    gt_used, det_used, matched = set(), set(), 0
    for i, g in enumerate(gp):
        for j, d in enumerate(dp):
            if i in gt_used or j in det_used or dont_care[i] or j in det_dc:
                continue
            inter = g.intersection(d).area
            union = g.area + d.area - inter
            if union > 0 and inter / union > 0.5:
                gt_used.add(i)
                det_used.add(j)
                matched += 1
    return matched, len(gp) - int(np.sum(dont_care)), len(dp) - len(det_dc)


def _rotated_rect(cx, cy, w, h, angle_deg):
    """Corners of a rotated rectangle (detectron2 XYWHA convention: degrees, counter-clockwise)."""
    t = np.deg2rad(angle_deg)
    u, v = np.array([np.cos(t), -np.sin(t)]), np.array([np.sin(t), np.cos(t)])
    c = np.array([cx, cy])
    return np.stack(
        [
            c - u * w / 2 - v * h / 2,
            c + u * w / 2 - v * h / 2,
            c + u * w / 2 + v * h / 2,
            c - u * w / 2 + v * h / 2,
        ]
    )


def test_agrees_with_a_scalar_reference_on_random_rotated_boxes():
    rng = np.random.default_rng(1)
    ground_truth, detections, expected = {}, {}, np.zeros(3)
    for image in range(15):
        num_gt = int(rng.integers(0, 6))
        gt_boxes = [
            (
                rng.uniform(0, 200),
                rng.uniform(0, 200),
                rng.uniform(20, 60),
                rng.uniform(8, 20),
                rng.uniform(-90, 90),
            )
            for _ in range(num_gt)
        ]
        gt_polys = [_rotated_rect(*b) for b in gt_boxes]
        dont_care = rng.random(num_gt) < 0.25
        det_polys = [
            _rotated_rect(
                b[0] + rng.normal(0, 4),
                b[1] + rng.normal(0, 3),
                b[2] * rng.uniform(0.7, 1.3),
                b[3] * rng.uniform(0.7, 1.3),
                b[4] + rng.normal(0, 8),
            )
            for b in gt_boxes
            for _ in range(int(rng.integers(0, 3)))
        ]
        det_polys += [
            _rotated_rect(*rng.uniform([0, 0, 10, 5, -90], [200, 200, 60, 20, 90]))
            for _ in range(2)
        ]
        order = rng.permutation(len(det_polys))
        det_polys = [det_polys[k] for k in order]
        texts = ["###" if dc else "w" for dc in dont_care]
        ground_truth[str(image)] = ImageGroundTruth.from_annotations(gt_polys, texts)
        detections[str(image)] = dets_of(*det_polys)
        expected += _reference_rrc_counts(gt_polys, dont_care, det_polys)
    result = evaluate_text_detection(ground_truth, detections, IoUProtocol())
    c = result.counts
    assert (c.recall_credit, c.num_gt, c.num_det) == tuple(expected)
    assert c.recall_credit > 5  # the case is not trivial


def test_score_sweep_reports_the_best_hmean_over_tcm_thresholds():
    gt = {"1": gt_of((rect(0, 0, 10, 10), "a"), (rect(20, 0, 30, 10), "b"))}
    det = {
        "1": dets_of(
            rect(0, 0, 10, 10), rect(50, 0, 60, 10), rect(20, 0, 30, 10), scores=[0.95, 0.5, 0.35]
        )
    }
    result = evaluate_text_detection(
        gt, det, IoUProtocol(), score_thresholds=MMOCR_SCORE_THRESHOLDS
    )
    # all (thr 0.3): P 2/3, R 1 -> 0.8; thr 0.4, 0.5: P 1/2, R 1/2; thr >= 0.6: P 1, R 1/2 -> 2/3
    hmeans = [c.hmean for c in result.sweep.counts]
    np.testing.assert_allclose(hmeans, [0.8, 0.5, 0.5, 2 / 3, 2 / 3, 2 / 3, 2 / 3])
    m = result.metrics()
    assert m["sweep_hmean"] == pytest.approx(80.0) and m["hmean"] == pytest.approx(80.0)
    assert m["sweep_score_thr"] == MMOCR_SCORE_THRESHOLDS[0]
    assert len(result.summary()["sweep"]) == 7


def test_score_sweep_thresholds_are_tcm_floats_and_ties_keep_the_first():
    assert MMOCR_SCORE_THRESHOLDS[0] == 0.30000000000000004 and len(MMOCR_SCORE_THRESHOLDS) == 7
    gt = {"1": gt_of((rect(0, 0, 10, 10), "a"))}
    # a score of exactly 0.3 is below i * 0.1 for i = 3, as in mmocr 0.4
    det = {"1": dets_of(rect(0, 0, 10, 10), scores=[0.3])}
    result = evaluate_text_detection(
        gt, det, IoUProtocol(), score_thresholds=MMOCR_SCORE_THRESHOLDS
    )
    assert result.sweep.counts[0] == DetectionCounts(0, 0, 1, 0)
    det = {"1": dets_of(rect(0, 0, 10, 10), scores=[0.99])}
    result = evaluate_text_detection(
        gt, det, IoUProtocol(), score_thresholds=MMOCR_SCORE_THRESHOLDS
    )
    assert result.sweep.best_index == 0  # every threshold ties at hmean 1


def test_score_sweep_needs_scores():
    gt = {"1": gt_of((rect(0, 0, 10, 10), "a"))}
    with pytest.raises(ValueError, match="needs a score"):
        evaluate_text_detection(
            gt, {"1": dets_of(rect(0, 0, 10, 10))}, IoUProtocol(), score_thresholds=[0.5]
        )


def test_protocols_by_name():
    assert build_text_det_protocol("iou").name == "iou"
    assert build_text_det_protocol("iou0.5").name == "iou"
    assert build_text_det_protocol("deteval", tr=0.8).tr == 0.8
    with pytest.raises(KeyError, match="known"):
        build_text_det_protocol("td500")
