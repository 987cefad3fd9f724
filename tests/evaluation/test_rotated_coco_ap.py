"""COCO-style rotated AP (protocols/rotated_coco_ap.py): hand-computed cases and pycocotools.

Boxes are detectron2 XYWHA rows ``(cx, cy, w, h, angle)``, angle in degrees, counter-clockwise.
"""

import contextlib
import io
import math

import numpy as np
import pytest
import torch

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Instances, RotatedBoxes

from fasttcm.data.datasets.dota import register_dota
from fasttcm.data.dota_split import SplitConfig, split_dataset
from fasttcm.data.synthetic.aerial import generate_aerial_dataset
from fasttcm.evaluation.dota_evaluator import DOTAEvaluator
from fasttcm.evaluation.protocols.dota_ap import voc_ap
from fasttcm.evaluation.protocols.rotated_coco_ap import (
    COCO_RECALL_THRESHOLDS,
    RotatedDetections,
    RotatedObjects,
    coco_metrics,
    evaluate_rotated_coco,
)
from fasttcm.utils.geometry import poly_to_xywha

# ------------------------------------------------------------------------------------------------
# hand-computed cases


def _shifted(box, s):
    """`box` moved by `s` pixels along its own width axis (IoU (w - s) / (w + s) for s < w)."""
    cx, cy, w, h, a = box
    rad = math.radians(a)
    return [cx + s * math.cos(rad), cy - s * math.sin(rad), w, h, a]


def _ap101(rec, prec):
    """101-point interpolated AP of a score-ordered curve, written out from COCO's definition."""
    total = 0.0
    for r in np.linspace(0.0, 1.0, 101):
        above = [p for rr, p in zip(rec, prec) if rr >= r]
        total += max(above) if above else 0.0
    return total / 101.0


@pytest.mark.parametrize("angle", [0.0, 30.0, -75.0])
def test_two_gt_three_detections_hand_computed(angle):
    g1, g2 = [50.0, 60.0, 20.0, 10.0, angle], [200.0, 150.0, 20.0, 10.0, angle]
    gt = {"img": RotatedObjects([g1, g2], [0, 0], [False, False])}
    # d1 on g1 with IoU 18/22, d2 on nothing, d3 on g2 with IoU 16/24
    dets = [_shifted(g1, 2.0), [400.0, 400.0, 20.0, 10.0, angle], _shifted(g2, 4.0)]
    det = {"img": RotatedDetections(dets, [0.9, 0.8, 0.7], [0, 0, 0])}
    res = evaluate_rotated_coco(gt, det, ["plane"])

    # IoU 0.5 .. 0.65: TP FP TP -> recall .5 .5 1, precision 1 .5 2/3
    ap_low = (51 * 1.0 + 50 * (2.0 / 3.0)) / 101.0
    # IoU 0.7 .. 0.8: TP FP FP -> recall .5 .5 .5
    ap_mid = 51.0 / 101.0
    # IoU 0.85 .. 0.95: nothing matches
    assert res.stats["AP50"] == pytest.approx(ap_low, abs=1e-12)
    assert res.stats["AP75"] == pytest.approx(ap_mid, abs=1e-12)
    assert res.stats["AP"] == pytest.approx((4 * ap_low + 3 * ap_mid) / 10.0, abs=1e-12)
    assert ap_low == pytest.approx(_ap101([0.5, 0.5, 1.0], [1.0, 0.5, 2.0 / 3.0]), abs=1e-12)
    # 20 x 10 boxes are small: APs is AP, no medium or large ground truth
    assert res.stats["APs"] == pytest.approx(res.stats["AP"], abs=1e-12)
    assert math.isnan(res.stats["APm"]) and math.isnan(res.stats["APl"])
    assert res.per_class_ap["plane"] == pytest.approx(res.stats["AP"], abs=1e-12)
    m = coco_metrics(res)
    assert m["AP50"] == pytest.approx(100.0 * ap_low) and m["AP-plane"] == pytest.approx(
        100.0 * res.stats["AP"]
    )
    assert list(res.recall[:, 0, 0]) == pytest.approx([1.0] * 4 + [0.5] * 3 + [0.0] * 3)


def test_difficult_ground_truth_is_ignored():
    g1, g2 = [50.0, 50.0, 40.0, 20.0, 10.0], [150.0, 50.0, 40.0, 20.0, 10.0]
    # d1 (best score) sits on the difficult g2: neither TP nor FP; d2 is exact on g1
    det = {"img": RotatedDetections([g2, g1], [0.95, 0.9], [0, 0])}
    gt = {"img": RotatedObjects([g1, g2], [0, 0], [False, True])}
    res = evaluate_rotated_coco(gt, det, ["ship"])
    assert res.stats["AP"] == pytest.approx(1.0) and res.stats["AP50"] == pytest.approx(1.0)
    # the same ground truth without the flag: d1 becomes a TP on g2, recall needs both
    gt_plain = {"img": RotatedObjects([g1, g2], [0, 0], [False, False])}
    assert evaluate_rotated_coco(gt_plain, det, ["ship"]).stats["AP"] == pytest.approx(1.0)
    # dropping g2 altogether: d1 is a false positive ahead of the TP
    gt_only = {"img": RotatedObjects([g1], [0], [False])}
    res_fp = evaluate_rotated_coco(gt_only, det, ["ship"])
    assert res_fp.stats["AP"] == pytest.approx(0.5)
    # several detections on a difficult object are all ignored (it may be matched again)
    det3 = {"img": RotatedDetections([g2, _shifted(g2, 1.0), g1], [0.95, 0.94, 0.9], [0, 0, 0])}
    assert evaluate_rotated_coco(gt, det3, ["ship"]).stats["AP"] == pytest.approx(1.0)
    # only difficult ground truth: the class has no positives and is left out (NaN)
    gt_hard = {"img": RotatedObjects([g2], [0], [True])}
    assert math.isnan(evaluate_rotated_coco(gt_hard, det, ["ship"]).stats["AP"])


def test_non_crowd_ground_truth_preferred():
    normal, hard = [50.0, 50.0, 40.0, 20.0, 0.0], [52.0, 50.0, 40.0, 20.0, 0.0]
    # the detection overlaps the difficult box more, but takes the normal one (IoU 36/44)
    det = {"img": RotatedDetections([hard], [0.9], [0])}
    gt = {"img": RotatedObjects([hard, normal], [0, 0], [True, False])}
    res = evaluate_rotated_coco(gt, det, ["car"])
    assert res.stats["AP50"] == pytest.approx(1.0)
    assert res.stats["AP75"] == pytest.approx(1.0)  # 36/44 = 0.818
    assert res.precision[-1, 0, 0, 0] == 0.0  # at IoU .95 it falls back to nothing


def test_area_ranges_use_rotated_area():
    # 40 x 20 rotated by 45 degrees: w*h = 800 (small); its axis-aligned box is 42.4^2 (medium)
    small = [100.0, 100.0, 40.0, 20.0, 45.0]
    # 100 x 12 at 30 degrees: w*h = 1200 (medium), axis-aligned hull ~ 92.6 x 60.4 (5600)
    medium = [300.0, 300.0, 100.0, 12.0, 30.0]
    large = [600.0, 600.0, 120.0, 90.0, -20.0]  # 10800 > 96^2
    gt = {"img": RotatedObjects([small, medium, large], [0, 0, 0], [False] * 3)}
    det = {"img": RotatedDetections([small, medium], [0.9, 0.8], [0, 0])}
    res = evaluate_rotated_coco(gt, det, ["c"])
    assert res.stats["APs"] == pytest.approx(1.0)
    assert res.stats["APm"] == pytest.approx(1.0)
    assert res.stats["APl"] == pytest.approx(0.0)
    # all areas: recall 2/3 with precision 1
    assert res.stats["AP"] == pytest.approx(67.0 / 101.0)
    # an unmatched detection outside the range is ignored there, but counts in "all"
    det_fp = {
        "img": RotatedDetections([small, [900.0, 100.0, 50.0, 40.0, 0.0]], [0.5, 0.9], [0, 0])
    }
    gt_small = {"img": RotatedObjects([small], [0], [False])}
    res_fp = evaluate_rotated_coco(gt_small, det_fp, ["c"])
    assert res_fp.stats["APs"] == pytest.approx(1.0)
    assert res_fp.stats["AP"] == pytest.approx(0.5)


def test_max_dets_per_image_and_class():
    g = [50.0, 50.0, 20.0, 20.0, 0.0]
    fps = [[300.0 + 30 * i, 300.0, 20.0, 20.0, 0.0] for i in range(3)]
    det = {"img": RotatedDetections(fps + [g], [0.9, 0.8, 0.7, 0.6], [0] * 4)}
    gt = {"img": RotatedObjects([g], [0], [False])}
    capped = evaluate_rotated_coco(gt, det, ["c"], max_dets=3)
    assert capped.stats["AP"] == 0.0 and capped.num_dropped == 1
    assert evaluate_rotated_coco(gt, det, ["c"]).stats["AP"] == pytest.approx(0.25)


def test_errors():
    gt = {"a": RotatedObjects([[5.0, 5.0, 4.0, 4.0, 0.0]], [0], [False])}
    with pytest.raises(KeyError):
        evaluate_rotated_coco(gt, {"b": RotatedDetections(np.zeros((0, 5)), [], [])}, ["c"])
    with pytest.raises(ValueError):
        evaluate_rotated_coco(gt, {"a": RotatedDetections([gt["a"].boxes[0]], [1.0], [3])}, ["c"])
    with pytest.raises(ValueError):
        evaluate_rotated_coco(gt, {}, ["c"], crowd_iou="giou")
    res = evaluate_rotated_coco(gt, {}, ["c", "d"])
    assert res.stats["AP"] == 0.0 and math.isnan(res.per_class_ap["d"])


# ------------------------------------------------------------------------------------------------
# 101-point AP50 versus the devkit's VOC07 11-point AP50


def test_101_point_ap50_differs_from_voc07():
    # 2 GT; detections TP, FP, TP (IoU 1 each TP): recall .5 .5 1, precision 1 .5 2/3
    g1, g2 = [50.0, 50.0, 30.0, 10.0, 20.0], [150.0, 50.0, 30.0, 10.0, 20.0]
    gt = {"img": RotatedObjects([g1, g2], [0, 0], [False, False])}
    det = {
        "img": RotatedDetections(
            [g1, [400.0, 400.0, 30.0, 10.0, 0.0], g2], [0.9, 0.8, 0.7], [0] * 3
        )
    }
    coco50 = evaluate_rotated_coco(gt, det, ["c"]).stats["AP50"]
    rec, prec = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2.0 / 3.0])
    voc07 = voc_ap(rec, prec, use_07_metric=True)
    # VOC07: recalls 0, .1, .., .5 (6 points) read 1, .6 .. 1 (5 points) read 2/3
    assert voc07 == pytest.approx((6 + 5 * 2.0 / 3.0) / 11.0)  # 0.8485
    # COCO: recalls 0, .01, .., .50 (51 points) read 1, .51 .. 1 (50 points) read 2/3
    assert np.count_nonzero(COCO_RECALL_THRESHOLDS <= 0.5) == 51
    assert coco50 == pytest.approx((51 + 50 * 2.0 / 3.0) / 101.0)  # 0.8350
    assert voc07 - coco50 == pytest.approx(0.01350, abs=1e-4)


# ------------------------------------------------------------------------------------------------
# angle 0: the same numbers as pycocotools' bbox AP


def _random_case(rng, num_images=6, num_classes=3, crowd_rate=0.0):
    gts, dets = {}, {}
    for i in range(num_images):
        n = int(rng.integers(0, 12))
        centres = rng.uniform(0, 400, size=(n, 2))
        sizes = np.exp(rng.uniform(np.log(4), np.log(200), size=(n, 2)))
        boxes = np.concatenate([centres, sizes, np.zeros((n, 1))], axis=1)
        cats = rng.integers(0, num_classes, size=n)
        crowd = rng.random(n) < crowd_rate
        gts[f"im{i}"] = RotatedObjects(boxes, cats, crowd)
        # jittered copies of some ground truths (varying overlap) plus random false positives
        keep = rng.random(n) < 0.8
        jit = boxes[keep].copy()
        jit[:, :2] += rng.normal(0, 1, size=(len(jit), 2)) * jit[:, 2:4] * 0.15
        jit[:, 2:4] *= np.exp(rng.normal(0, 0.15, size=(len(jit), 2)))
        jit_cats = cats[keep].copy()
        flip = rng.random(len(jit_cats)) < 0.1
        jit_cats[flip] = rng.integers(0, num_classes, size=int(flip.sum()))
        m = int(rng.integers(0, 6))
        extra = np.concatenate(
            [
                rng.uniform(0, 400, size=(m, 2)),
                np.exp(rng.uniform(np.log(4), np.log(200), size=(m, 2))),
                np.zeros((m, 1)),
            ],
            axis=1,
        )
        all_boxes = np.concatenate([jit, extra])
        all_cats = np.concatenate([jit_cats, rng.integers(0, num_classes, size=m)])
        dets[f"im{i}"] = RotatedDetections(all_boxes, rng.random(len(all_boxes)), all_cats)
    return gts, dets


def _pycocotools_eval(gts, dets, num_classes, max_dets=100):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b):
        return [b[0] - b[2] / 2, b[1] - b[3] / 2, b[2], b[3]]

    images, annos, results = [], [], []
    for i, name in enumerate(gts):
        images.append({"id": i + 1, "width": 1000, "height": 1000})
        g = gts[name]
        for b, c, crowd in zip(g.boxes, g.category_ids, g.iscrowd):
            annos.append(
                {
                    "id": len(annos) + 1,
                    "image_id": i + 1,
                    "category_id": int(c) + 1,
                    "bbox": xywh(b),
                    "area": float(b[2] * b[3]),
                    "iscrowd": int(crowd),
                }
            )
        d = dets[name]
        for b, s, c in zip(d.boxes, d.scores, d.category_ids):
            results.append(
                {"image_id": i + 1, "category_id": int(c) + 1, "bbox": xywh(b), "score": float(s)}
            )
    coco = COCO()
    coco.dataset = {
        "images": images,
        "annotations": annos,
        "categories": [{"id": k + 1, "name": f"c{k}"} for k in range(num_classes)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        coco_dt = coco.loadRes(results)
        ev = COCOeval(coco, coco_dt, "bbox")
        # COCOeval sorts maxDets: keep max_dets the largest, so it is the last index
        ev.params.maxDets = [1, 2, max_dets] if max_dets < 10 else [1, 10, max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


@pytest.mark.parametrize(
    "seed, crowd_rate, max_dets", [(0, 0.0, 100), (1, 0.0, 100), (2, 0.0, 3), (3, 0.2, 100)]
)
def test_angle_zero_equals_pycocotools_bbox(seed, crowd_rate, max_dets):
    pytest.importorskip("pycocotools")
    rng = np.random.default_rng(seed)
    num_classes = 3
    gts, dets = _random_case(rng, num_classes=num_classes, crowd_rate=crowd_rate)
    names = [f"c{k}" for k in range(num_classes)]
    # COCO's crowd overlap is intersection over the detection area
    crowd_iou = "ioa" if crowd_rate else "iou"
    ours = evaluate_rotated_coco(gts, dets, names, max_dets=max_dets, crowd_iou=crowd_iou)
    ev = _pycocotools_eval(gts, dets, num_classes, max_dets=max_dets)
    ref_prec = ev.eval["precision"][..., -1]  # (T, R, K, A) at the largest max_dets
    if max_dets == 100:  # COCOeval.summarize reads maxDets=100 only
        ref_stats = ev.stats[:6]
    else:
        ref_stats = []
        for t, a in [(slice(None), 0), ([0], 0), ([5], 0), (slice(None), 1), (slice(None), 2)]:
            p = ref_prec[t, :, :, a]
            ref_stats.append(float(np.mean(p[p > -1])) if np.any(p > -1) else -1.0)
        p = ref_prec[:, :, :, 3]
        ref_stats.append(float(np.mean(p[p > -1])) if np.any(p > -1) else -1.0)
    for ref, key in zip(ref_stats, ["AP", "AP50", "AP75", "APs", "APm", "APl"]):
        if ref < 0:
            assert math.isnan(ours.stats[key]), key
        else:
            assert ours.stats[key] == pytest.approx(ref, abs=1e-6), key
    np.testing.assert_allclose(ours.precision, ref_prec, atol=1e-6)
    for k, name in enumerate(names):
        p = ref_prec[:, :, k, 0]
        p = p[p > -1]
        ref = float(np.mean(p)) if p.size else math.nan
        if math.isnan(ref):
            assert math.isnan(ours.per_class_ap[name])
        else:
            assert ours.per_class_ap[name] == pytest.approx(ref, abs=1e-6)
    # the cases are not trivial
    assert 0.05 < ours.stats["AP"] < 0.95


# ------------------------------------------------------------------------------------------------
# the DOTAEvaluator adapter: COCO-style figures next to the VOC07 mAP50


def test_dota_evaluator_reports_coco_style_ap(tmp_path):
    generate_aerial_dataset(
        str(tmp_path / "raw"), 1, seed=7, image_size_range=(1500, 1700), object_scale=0.6
    )
    split_dataset(
        [str(tmp_path / "raw" / "images")],
        [str(tmp_path / "raw" / "labelTxt")],
        str(tmp_path / "split"),
        SplitConfig(patch_size=800, gap=200),
        progress=False,
    )
    name = "dota_test_rotated_coco_synthetic"
    register_dota(
        name,
        str(tmp_path / "split" / "images"),
        str(tmp_path / "split" / "labelTxt"),
        "1.0",
        gt_dir=str(tmp_path / "raw" / "labelTxt"),
    )
    try:
        evaluator = DOTAEvaluator(name, output_dir=str(tmp_path / "out"), distributed=False)
        evaluator.reset()
        for r in DatasetCatalog.get(name):
            annos = [a for a in r["annotations"] if not a["difficult"]]
            inst = Instances((r["height"], r["width"]))
            boxes = np.array([poly_to_xywha(a["poly"])[0] for a in annos]).reshape(-1, 5)
            inst.pred_boxes = RotatedBoxes(torch.tensor(boxes, dtype=torch.float32))
            # bigger pieces score higher, so the whole object survives the merge NMS
            inst.scores = torch.tensor([b[2] * b[3] / 1e5 for b in boxes], dtype=torch.float32)
            inst.pred_classes = torch.tensor([a["category_id"] for a in annos])
            evaluator.process([{"file_name": r["file_name"]}], [{"instances": inst}])
        results = evaluator.evaluate()
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)

    for key in ("dota_coco", "dota_patch_coco"):
        coco = results[key]
        assert {"AP", "AP50", "AP75", "APs", "APm", "APl"} <= set(coco)
        # the ground truth itself: every class with ground truth scores 100, others are NaN
        present = [k for k, v in coco.items() if k.startswith("AP-") and not math.isnan(v)]
        assert len(present) >= 3
        assert all(coco[k] == pytest.approx(100.0, abs=1e-6) for k in present)
        assert coco["AP"] == pytest.approx(100.0, abs=1e-6)
        assert coco["AP50"] == pytest.approx(100.0, abs=1e-6)
    assert results["dota"]["mAP50"] < 100.0  # the devkit divides by all 15 classes
    protocol = (tmp_path / "out" / "eval_protocol.json").read_text()
    assert "merged_coco" in protocol and "patch_level_coco" in protocol
