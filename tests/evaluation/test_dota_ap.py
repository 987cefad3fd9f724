"""DOTA Task-1 protocol (devkit rules), Task-1 files, the offline tool and DOTAEvaluator."""

import json
import math
import os

import numpy as np
import pytest
import shapely
import torch

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Instances, RotatedBoxes

from fasttcm.config import add_fasttcm_config
from fasttcm.data.datasets.dota import register_dota
from fasttcm.data.datasets.dota_meta import DOTA_V1_0_CLASSES
from fasttcm.data.dota_split import SplitConfig, split_dataset
from fasttcm.data.synthetic.aerial import generate_aerial_dataset
from fasttcm.evaluation import EVALUATORS, DOTAEvaluator, build_evaluator
from fasttcm.evaluation.offline_dota import evaluate_task1_dirs
from fasttcm.evaluation.protocols.dota_ap import (
    ImageObjects,
    class_average_precision,
    evaluate_task1,
    voc_ap,
)
from fasttcm.evaluation.protocols.dota_iou import devkit_poly_iou
from fasttcm.evaluation.protocols.dota_task1_io import (
    ClassDetections,
    read_task1_dir,
    read_task1_file,
    write_task1_dir,
)
from fasttcm.utils.geometry import poly_to_xywha, xywha_to_poly

CLASSES = list(DOTA_V1_0_CLASSES)


def _rect(x0, y0, x1, y1):
    """Axis-aligned quadrilateral, clockwise on screen."""
    return [x0, y0, x1, y0, x1, y1, x0, y1]


# ------------------------------------------------------------------------------------------------
# an independent, loop-by-loop port of the devkit's voc_eval (shapely IoU, valid polygons only)


def _reference_voc_eval(gt, dets, class_id, use_07=True):
    """gt: {image: ImageObjects}; dets: (names, scores, polys) in file order."""
    names, scores, polys = dets
    recs, npos = {}, 0
    for image, objs in gt.items():
        sel = objs.category_ids == class_id
        recs[image] = {
            "polys": objs.polys[sel],
            "difficult": objs.difficult[sel],
            "det": [False] * int(sel.sum()),
        }
        npos += int((~objs.difficult[sel]).sum())
    order = np.argsort(-np.asarray(scores, dtype=np.float64))
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for d, idx in enumerate(order):
        r = recs[names[idx]]
        bb = np.asarray(polys[idx], dtype=np.float64)
        ovmax, jmax = -np.inf, -1
        if len(r["polys"]):
            g = r["polys"]
            ixmin = np.maximum(g[:, 0::2].min(1), bb[0::2].min())
            iymin = np.maximum(g[:, 1::2].min(1), bb[1::2].min())
            ixmax = np.minimum(g[:, 0::2].max(1), bb[0::2].max())
            iymax = np.minimum(g[:, 1::2].max(1), bb[1::2].max())
            iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
            ih = np.maximum(iymax - iymin + 1.0, 0.0)
            keep = np.flatnonzero(iw * ih > 0)
            if len(keep):
                det_poly = shapely.Polygon(bb.reshape(4, 2))
                ious = []
                for k in keep:
                    gp = shapely.Polygon(g[k].reshape(4, 2))
                    inter = gp.intersection(det_poly).area
                    ious.append(inter / (gp.area + det_poly.area - inter))
                ovmax = float(np.max(ious))
                jmax = int(keep[int(np.argmax(ious))])
        if ovmax > 0.5:
            if not r["difficult"][jmax]:
                if not r["det"][jmax]:
                    tp[d] = 1.0
                    r["det"][jmax] = True
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    with np.errstate(divide="ignore", invalid="ignore"):
        rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    if use_07:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def _random_problem(seed, num_images=12, num_classes=3):
    rng = np.random.default_rng(seed)
    gt, det_rows = {}, []
    for i in range(num_images):
        n = int(rng.integers(0, 8))
        boxes = np.concatenate(
            [
                rng.uniform(50, 450, (n, 2)),
                rng.uniform(10, 60, (n, 2)),
                rng.uniform(-180, 180, (n, 1)),
            ],
            axis=1,
        )
        cats = rng.integers(0, num_classes, n)
        diff = rng.random(n) < 0.2
        gt[f"img{i}"] = ImageObjects(xywha_to_poly(boxes), cats, diff)
        for b, c in zip(boxes, cats):  # 0-2 noisy detections per object
            for _ in range(int(rng.integers(0, 3))):
                nb = b + np.concatenate(
                    [rng.normal(0, 4, 2), rng.normal(0, 3, 2), rng.normal(0, 8, 1)]
                )
                nb[2:4] = np.abs(nb[2:4]) + 1
                det_rows.append((f"img{i}", c, nb))
        for _ in range(int(rng.integers(0, 4))):  # false positives
            fb = np.concatenate(
                [rng.uniform(0, 500, 2), rng.uniform(5, 50, 2), rng.uniform(-180, 180, 1)]
            )
            det_rows.append((f"img{i}", int(rng.integers(0, num_classes)), fb))
    rng.shuffle(det_rows)
    dets = {}
    for c in range(num_classes):
        rows = [r for r in det_rows if r[1] == c]
        names = np.array([r[0] for r in rows], dtype=object)
        polys = xywha_to_poly(np.array([r[2] for r in rows]).reshape(-1, 5))
        scores = np.round(rng.uniform(0, 1, len(rows)), 1)  # many ties, as with 2-decimal files
        dets[CLASSES[c]] = ClassDetections(names, scores, polys)
    return gt, dets


# ------------------------------------------------------------------------------------------------
# polygon IoU


def test_poly_iou_matches_shapely_on_convex_quadrilaterals_in_any_orientation():
    rng = np.random.default_rng(0)
    a = np.concatenate(
        [
            rng.uniform(0, 60, (500, 2)),
            rng.uniform(5, 40, (500, 2)),
            rng.uniform(-180, 180, (500, 1)),
        ],
        1,
    )
    b = a + np.concatenate(
        [rng.normal(0, 8, (500, 2)), rng.normal(0, 4, (500, 2)), rng.normal(0, 20, (500, 1))], 1
    )
    b[:, 2:4] = np.abs(b[:, 2:4]) + 1
    pa, pb = xywha_to_poly(a), xywha_to_poly(b)
    pb[::2] = pb[::2].reshape(-1, 4, 2)[:, ::-1].reshape(-1, 8)  # counter-clockwise half
    ga, gb = shapely.polygons(pa.reshape(-1, 4, 2)), shapely.polygons(pb.reshape(-1, 4, 2))
    inter = shapely.area(shapely.intersection(ga, gb))
    expected = inter / (shapely.area(ga) + shapely.area(gb) - inter)
    np.testing.assert_allclose(devkit_poly_iou(pa, pb), expected, atol=1e-12)


def test_poly_iou_matches_shapely_on_non_convex_simple_quadrilaterals():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 50, (3000, 8))
    b = a + rng.normal(0, 10, (3000, 8))
    ga, gb = shapely.polygons(a.reshape(-1, 4, 2)), shapely.polygons(b.reshape(-1, 4, 2))
    ok = shapely.is_valid(ga) & shapely.is_valid(gb)
    convex = shapely.area(shapely.convex_hull(ga)) > shapely.area(ga) * (1 + 1e-9)
    assert (ok & convex).sum() > 100  # the fan path is exercised
    inter = shapely.area(shapely.intersection(ga[ok], gb[ok]))
    expected = inter / (shapely.area(ga[ok]) + shapely.area(gb[ok]) - inter)
    np.testing.assert_allclose(devkit_poly_iou(a[ok], b[ok]), expected, atol=1e-10)


def test_poly_iou_of_self_intersecting_quadrilaterals_is_the_winding_number_integral():
    # polyiou's signed fans integrate w_a * w_b (winding numbers); check on a fine grid
    bowtie = np.array([[0, 0, 20, 20, 20, 0, 0, 20]], dtype=float)
    square = np.array([_rect(5, 2, 25, 12)], dtype=float)
    ys, xs = np.mgrid[0:30:0.02, 0:30:0.02] + 0.01
    pts = np.stack([xs.ravel(), ys.ravel()], 1)

    def winding(poly):
        p = poly.reshape(4, 2)
        w = np.zeros(len(pts))
        for a, b in zip(p, np.roll(p, -1, 0)):
            up = (a[1] <= pts[:, 1]) & (b[1] > pts[:, 1])
            down = (a[1] > pts[:, 1]) & (b[1] <= pts[:, 1])
            side = (b[0] - a[0]) * (pts[:, 1] - a[1]) - (pts[:, 0] - a[0]) * (b[1] - a[1])
            w += np.where(up & (side > 0), 1, 0) - np.where(down & (side < 0), 1, 0)
        return w

    cell = 0.02**2
    wa, wb = winding(bowtie[0]), winding(square[0])
    inter = np.sum(wa * wb) * cell
    area_a = abs(np.sum(wa) * cell)  # shoelace of a bowtie: the signed lobes cancel (here 0)
    area_b = abs(np.sum(wb) * cell)
    expected = inter / (area_a + area_b - inter)
    assert devkit_poly_iou(bowtie, square)[0] == pytest.approx(expected, abs=2e-3)


def test_iou_of_identical_and_disjoint_boxes():
    p = np.array([_rect(0, 0, 10, 5), _rect(0, 0, 10, 5)], dtype=float)
    q = np.array([_rect(0, 0, 10, 5), _rect(20, 20, 30, 25)], dtype=float)
    np.testing.assert_allclose(devkit_poly_iou(p, q), [1.0, 0.0])


# ------------------------------------------------------------------------------------------------
# AP


def test_voc07_grid_is_np_arange():
    # recall exactly 0.3 does not reach the grid point 0.30000000000000004
    rec, prec = np.array([0.3]), np.array([1.0])
    assert voc_ap(rec, prec) == pytest.approx(3 / 11)  # t = 0, 0.1, 0.2 only
    assert voc_ap(np.array([0.5]), np.array([1.0])) == pytest.approx(6 / 11)


def test_hand_computed_partial_case():
    # 2 GT; detections by score: hit (0.9), miss (0.8), hit (0.7)
    # rec = [.5, .5, 1], prec = [1, .5, 2/3] -> 11-point: 6 * 1 + 5 * 2/3 over 11
    gt = {"a": ImageObjects([_rect(0, 0, 10, 10), _rect(50, 50, 60, 60)], [0, 0], [False, False])}
    dets = {
        "plane": ClassDetections(
            ["a", "a", "a"],
            [0.7, 0.9, 0.8],
            [_rect(50, 50, 60, 61), _rect(0, 0, 10, 10), _rect(100, 100, 110, 110)],
        )
    }
    res = evaluate_task1(gt, dets, ["plane"])
    assert res.ap["plane"] == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert res.num_gt["plane"] == 2 and res.num_det["plane"] == 3 and res.recall["plane"] == 1.0
    area = evaluate_task1(gt, dets, ["plane"], use_07_metric=False)
    assert area.ap["plane"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_perfect_and_empty_predictions():
    gt = {
        "a": ImageObjects([_rect(0, 0, 10, 10), _rect(20, 0, 40, 8)], [0, 1], [False, False]),
        "b": ImageObjects([_rect(5, 5, 25, 15)], [1], [False]),
    }
    perfect = {
        "plane": ClassDetections(["a"], [0.5], [_rect(0, 0, 10, 10)]),
        "baseball-diamond": ClassDetections(
            ["b", "a"], [0.9, 0.8], [_rect(5, 5, 25, 15), _rect(20, 0, 40, 8)]
        ),
    }
    two = ["plane", "baseball-diamond"]
    res = evaluate_task1(gt, perfect, two)
    # 11 * (1 / 11) sums to 1.0000000000000002 in the devkit too
    assert res.ap == pytest.approx({"plane": 1.0, "baseball-diamond": 1.0})
    assert res.mAP == pytest.approx(1.0)
    none = evaluate_task1(gt, {}, two)
    assert none.ap == {"plane": 0.0, "baseball-diamond": 0.0} and none.mAP == 0.0
    # the devkit divides by all classes of the version: 13 classes without GT count 0
    assert evaluate_task1(gt, perfect, CLASSES).mAP == pytest.approx(2 / 15)


def test_strict_threshold_and_no_fallback_to_the_second_best_ground_truth():
    gt = {"a": ImageObjects([_rect(0, 0, 10, 10), _rect(0, 0, 10, 9)], [0, 0], [False, False])}
    # IoU exactly 0.5 is not a hit
    half = evaluate_task1(
        {"a": ImageObjects([_rect(0, 0, 10, 10)], [0], [False])},
        {"plane": ClassDetections(["a"], [1.0], [_rect(0, 0, 10, 5)])},
        ["plane"],
    )
    assert half.ap["plane"] == 0.0
    # both detections' best GT is the first one (IoU 1 and 0.9 > 0.9 * ...); the second
    # detection is a false positive although GT 2 is free and overlaps it by IoU 1
    dets = {
        "plane": ClassDetections(["a", "a"], [0.9, 0.8], [_rect(0, 0, 10, 10), _rect(0, 0, 10, 10)])
    }
    _, rec, prec = class_average_precision(
        gt["a"].polys, [0, 0], [False, False], 1, [0, 0], [0.9, 0.8], dets["plane"].polys
    )
    np.testing.assert_allclose(rec, [0.5, 0.5])
    np.testing.assert_allclose(prec, [1.0, 0.5])


def test_difficult_ground_truth_is_ignored():
    gt = {"a": ImageObjects([_rect(0, 0, 10, 10), _rect(30, 30, 40, 40)], [0, 0], [False, True])}
    dets = {
        "plane": ClassDetections(
            ["a", "a"], [0.9, 0.8], [_rect(30, 30, 40, 40), _rect(0, 0, 10, 10)]
        )
    }
    res = evaluate_task1(gt, dets, ["plane"])
    assert res.num_gt["plane"] == 1
    assert res.ap["plane"] == pytest.approx(1.0)  # the difficult hit is neither TP nor FP
    # a class whose GT is all difficult: AP 0 with 11 points, NaN with the area metric
    only_difficult = {"a": ImageObjects([_rect(0, 0, 10, 10)], [0], [True])}
    hit = {"plane": ClassDetections(["a"], [0.9], [_rect(0, 0, 10, 10)])}
    assert evaluate_task1(only_difficult, hit, ["plane"]).ap["plane"] == 0.0
    area = evaluate_task1(only_difficult, hit, ["plane"], use_07_metric=False)
    assert math.isnan(area.ap["plane"]) and math.isnan(area.mAP)


def test_detection_on_an_unknown_image_is_an_error():
    gt = {"a": ImageObjects.empty()}
    with pytest.raises(KeyError, match="outside the ground truth image set"):
        evaluate_task1(gt, {"plane": ClassDetections(["b"], [1.0], [_rect(0, 0, 1, 1)])}, ["plane"])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("use_07", [True, False])
def test_agrees_with_a_loop_by_loop_port_of_the_devkit(seed, use_07):
    gt, dets = _random_problem(seed)
    res = evaluate_task1(gt, dets, CLASSES[:3], use_07_metric=use_07)
    for c in range(3):
        d = dets[CLASSES[c]]
        ref = _reference_voc_eval(gt, (d.image_names, d.scores, d.polys), c, use_07)
        assert res.ap[CLASSES[c]] == pytest.approx(ref, abs=1e-12, nan_ok=True)


# ------------------------------------------------------------------------------------------------
# Task-1 files and the offline tool


def _write_labels(folder, gt):
    os.makedirs(folder, exist_ok=True)
    for image, objs in gt.items():
        with open(os.path.join(folder, image + ".txt"), "w") as f:
            f.write("imagesource:GoogleEarth\ngsd:0.2\n")
            for p, c, d in zip(objs.polys, objs.category_ids, objs.difficult):
                f.write(" ".join(f"{v:.3f}" for v in p) + f" {CLASSES[c]} {int(d)}\n")


def test_task1_files_round_trip_and_offline_tool(tmp_path, capsys):
    import tools.evaluate as evaluate_tool

    gt, dets = _random_problem(3)
    gt = {k: ImageObjects(np.round(v.polys, 3), v.category_ids, v.difficult) for k, v in gt.items()}
    _write_labels(tmp_path / "labelTxt", gt)
    write_task1_dir(tmp_path / "task1", dets, CLASSES)  # 12 classes get empty files
    assert (tmp_path / "task1" / "Task1_helicopter.txt").read_text() == ""
    back = read_task1_dir(tmp_path / "task1", CLASSES)
    np.testing.assert_array_equal(back["plane"].scores, dets["plane"].scores)
    np.testing.assert_allclose(back["plane"].polys, dets["plane"].polys, atol=5e-3)

    expected = evaluate_task1(gt, back, CLASSES)
    offline = evaluate_task1_dirs(str(tmp_path / "labelTxt"), str(tmp_path / "task1"), "dota10")
    assert offline.ap == pytest.approx(expected.ap) and offline.mAP == pytest.approx(expected.mAP)

    code = evaluate_tool.main(
        ["--task", "dota", "--gt", str(tmp_path / "labelTxt"), "--pred", str(tmp_path / "task1")]
    )
    assert code == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["mAP"] == pytest.approx(100 * expected.mAP)
    assert last["AP"]["small-vehicle"] == pytest.approx(100 * expected.ap["small-vehicle"])

    (tmp_path / "task1" / "Task1_ship.txt").write_text("img0 0.5 1 2 3\n")
    with pytest.raises(ValueError, match=r"Task1_ship\.txt:1: expected"):
        read_task1_file(tmp_path / "task1" / "Task1_ship.txt")


# ------------------------------------------------------------------------------------------------
# DOTAEvaluator on a split synthetic image


@pytest.fixture(scope="module")
def split_synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("dota_eval")
    generate_aerial_dataset(
        str(root / "raw"), 1, seed=7, image_size_range=(1500, 1700), object_scale=0.6
    )
    split_dataset(
        [str(root / "raw" / "images")],
        [str(root / "raw" / "labelTxt")],
        str(root / "split"),
        SplitConfig(patch_size=800, gap=200),
        progress=False,
    )
    name = "dota_test_eval_synthetic"
    register_dota(
        name,
        str(root / "split" / "images"),
        str(root / "split" / "labelTxt"),
        "1.0",
        gt_dir=str(root / "raw" / "labelTxt"),
    )
    yield root, name
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def _run_evaluator(evaluator, records, keep):
    evaluator.reset()
    for r in records:
        annos = [a for a in r["annotations"] if keep(a)]
        inst = Instances((r["height"], r["width"]))
        boxes = np.array([poly_to_xywha(a["poly"])[0] for a in annos]).reshape(-1, 5)
        inst.pred_boxes = RotatedBoxes(torch.tensor(boxes, dtype=torch.float32))
        # bigger pieces score higher, so the whole object survives the merge NMS
        inst.scores = torch.tensor([b[2] * b[3] / 1e5 for b in boxes], dtype=torch.float32)
        inst.pred_classes = torch.tensor([a["category_id"] for a in annos], dtype=torch.int64)
        evaluator.process(
            [{"file_name": r["file_name"], "image_id": r["image_id"]}], [{"instances": inst}]
        )
    return evaluator.evaluate()


def test_evaluator_scores_ground_truth_fed_as_predictions(split_synthetic, tmp_path):
    root, name = split_synthetic
    records = DatasetCatalog.get(name)
    assert EVALUATORS["dota"] is DOTAEvaluator
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    evaluator = build_evaluator(cfg, name, str(tmp_path))
    assert isinstance(evaluator, DOTAEvaluator) and evaluator._merge_nms_thresh == 0.1
    # every object lies whole in some patch; difficult objects and pieces cut below the 0.7
    # area ratio (difficult 2) are not "detected", pieces above it are and must merge away
    results = _run_evaluator(evaluator, records, keep=lambda a: not a["difficult"])

    gt = {}
    for line in open(root / "raw" / "labelTxt" / "A0000.txt").read().splitlines()[2:]:
        gt.setdefault(line.split()[8], []).append(line)
    present = [c for c in CLASSES if any(not row.endswith(" 1") for row in gt.get(c, []))]
    assert len(present) >= 3
    expected = {f"AP50-{c}": (100.0 if c in present else 0.0) for c in CLASSES}
    assert results["dota"] == pytest.approx({"mAP50": 100.0 * len(present) / 15, **expected})
    assert results["dota_patch"]["mAP50"] == pytest.approx(results["dota"]["mAP50"])

    # the written files give the same numbers offline
    assert sorted(f for f in os.listdir(tmp_path) if f.startswith("Task1_")) == sorted(
        f"Task1_{c}.txt" for c in CLASSES
    )
    offline = evaluate_task1_dirs(str(root / "raw" / "labelTxt"), str(tmp_path), "1.0")
    assert 100 * offline.mAP == pytest.approx(results["dota"]["mAP50"])
    protocol = json.loads((tmp_path / "eval_protocol.json").read_text())
    assert protocol["num_images"] == 1 and protocol["merged"]["use_07_metric"] is True


def test_evaluator_with_no_detections_and_format_only(split_synthetic, tmp_path):
    root, name = split_synthetic
    records = DatasetCatalog.get(name)
    evaluator = DOTAEvaluator(name, output_dir=str(tmp_path), distributed=False, patch_level=False)
    results = _run_evaluator(evaluator, records, keep=lambda a: False)
    assert results["dota"]["mAP50"] == 0.0 and "dota_patch" not in results
    assert all((tmp_path / f"Task1_{c}.txt").read_text() == "" for c in CLASSES)

    # without gt_dir (e.g. the DOTA test split) the evaluator only writes the submission files
    register_dota("dota_test_format_only", str(root / "split" / "images"), None, "1.0")
    try:
        out = tmp_path / "format_only"
        evaluator = DOTAEvaluator("dota_test_format_only", output_dir=str(out), distributed=False)
        assert _run_evaluator(evaluator, records, keep=lambda a: True) == {}
        assert sum(os.path.getsize(out / f"Task1_{c}.txt") for c in CLASSES) > 0
    finally:
        DatasetCatalog.remove("dota_test_format_only")
        MetadataCatalog.remove("dota_test_format_only")
