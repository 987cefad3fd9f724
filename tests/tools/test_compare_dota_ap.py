"""tools/compare_dota_ap.py: the devkit's VOC07 AP50, its curve at 101 recall points and the
COCO-style rotated AP50 from one saved Task-1 submission."""

import json

import numpy as np
import pytest

from fasttcm.data.datasets.dota_meta import dota_class_names
from fasttcm.evaluation.protocols.dota_ap import voc_ap
from fasttcm.evaluation.protocols.rotated_coco_ap import COCO_RECALL_THRESHOLDS

CLASSES = dota_class_names("1.0")  # 15 classes


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("compare_dota_ap")


def _quad(x0, y0, x1, y1):
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def _write_case(tmp_path, gt_boxes, dets):
    """One image 'A'; ``gt_boxes`` of class plane; ``dets``: (score, box) of class plane."""
    gt, pred = tmp_path / "labelTxt", tmp_path / "task1"
    gt.mkdir()
    pred.mkdir()
    lines = [" ".join(f"{v:g}" for v in _quad(*b)) + " plane 0" for b in gt_boxes]
    (gt / "A.txt").write_text("imagesource:GoogleEarth\ngsd:null\n" + "\n".join(lines) + "\n")
    for name in CLASSES:
        rows = dets if name == "plane" else []
        text = "".join(f"A {s} " + " ".join(f"{v:g}" for v in _quad(*b)) + "\n" for s, b in rows)
        (pred / f"Task1_{name}.txt").write_text(text)
    return str(gt), str(pred)


def test_interpolated_ap_reads_the_envelope_at_the_given_recalls(tool):
    rng = np.random.default_rng(0)
    for _ in range(20):
        hits = rng.random(30) < 0.6
        rec = np.cumsum(hits) / 25.0
        prec = np.cumsum(hits) / np.arange(1, 31)
        expected = voc_ap(rec, prec, use_07_metric=True)
        assert tool.interpolated_ap(rec, prec, np.arange(0.0, 1.1, 0.1)) == pytest.approx(expected)
    # TP, FP, TP on 2 objects: recall .5 .5 1, precision 1 .5 2/3
    rec, prec = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    assert tool.interpolated_ap(rec, prec, COCO_RECALL_THRESHOLDS) == pytest.approx(
        (51 + 50 * 2 / 3) / 101
    )
    assert tool.interpolated_ap(np.full(2, np.nan), np.zeros(2), COCO_RECALL_THRESHOLDS) == 0.0


def test_interpolation_alone(tool, tmp_path, capsys):
    """Exact boxes, TP FP TP: both matchings agree; only the recall points differ."""
    g1, g2 = (10, 10, 40, 20), (100, 10, 130, 20)
    gt, pred = _write_case(tmp_path, [g1, g2], [(0.9, g1), (0.8, (300, 300, 330, 310)), (0.7, g2)])
    assert tool.main(["--gt", gt, "--pred", pred]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    plane = out["per_class"]["plane"]
    voc07, p101 = 100 * (6 + 5 * 2 / 3) / 11, 100 * (51 + 50 * 2 / 3) / 101
    assert (plane["num_gt"], plane["num_det"]) == (2, 3)
    assert plane["voc07"] == pytest.approx(voc07)  # 84.85
    assert plane["devkit_101"] == pytest.approx(p101)  # 83.50
    assert plane["coco"] == pytest.approx(p101, abs=1e-6)
    mean = out["mean"]
    assert mean["voc07"] == pytest.approx(voc07 / 15)  # the devkit divides by all 15 classes
    assert mean["devkit_101"] == pytest.approx(p101 / 15)
    assert mean["coco"] == pytest.approx(p101, abs=1e-6)  # COCO: classes with ground truth
    assert mean["coco_all_classes"] == pytest.approx(p101 / 15, abs=1e-6)
    diff = out["difference"]
    assert diff["interpolation (devkit_101 - voc07)"] == pytest.approx((p101 - voc07) / 15)
    assert diff["matching and geometry (coco_all_classes - devkit_101)"] == pytest.approx(
        0.0, abs=1e-6
    )
    assert np.isnan(out["per_class"]["ship"]["coco"]) and out["per_class"]["ship"]["voc07"] == 0


def test_matching_difference(tool, tmp_path):
    """The second detection's best object is taken: a false positive for the devkit, a match
    with the next best object (IoU 0.54) for COCO."""
    g1, g2 = (0, 0, 10, 10), (5, 0, 15, 10)
    d2 = (2, 0, 12, 10)  # IoU 0.667 with g1, 0.538 with g2
    gt, pred = _write_case(tmp_path, [g1, g2], [(0.9, g1), (0.8, d2)])
    plane = tool.compare(gt, pred)["per_class"]["plane"]
    assert plane["voc07"] == pytest.approx(100 * 6 / 11)  # TP, FP: recall .5 at precision 1
    assert plane["devkit_101"] == pytest.approx(100 * 51 / 101)
    assert plane["coco"] == pytest.approx(100.0)  # TP, TP


def test_an_image_without_labels_is_an_error(tool, tmp_path, capsys):
    gt, pred = _write_case(tmp_path, [(0, 0, 10, 10)], [(0.9, (0, 0, 10, 10))])
    with open(f"{pred}/Task1_plane.txt", "a") as f:
        f.write("B 0.5 0 0 10 0 10 10 0 10\n")
    assert tool.main(["--gt", gt, "--pred", pred]) == 1
    assert "Task1_plane.txt names 1 image(s) without a label file" in capsys.readouterr().err
