"""TEST.DOTA.COCO_AP / COCO_MAX_DETS reach DOTAEvaluator through build_evaluator, and
tools/run_demo.py reports the COCO-style figures the evaluator emits (make dota-demo)."""

import json

import numpy as np
import pytest
import torch

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation.testing import flatten_results_dict
from detectron2.structures import Instances, RotatedBoxes

from fasttcm import add_fasttcm_config
from fasttcm.evaluation import DOTAEvaluator, build_evaluator
from tests.common import get_config_files, load_config

NAME = "dota_test_coco_config"


def _cfg(*overrides):
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.merge_from_list(list(overrides))
    return cfg


@pytest.fixture
def tiny_dota(tmp_path):
    """One 200 x 200 image "A" with two planes; its only patch is the image itself."""
    gt = tmp_path / "labelTxt"
    gt.mkdir()
    (gt / "A.txt").write_text(
        "10 10 40 10 40 30 10 30 plane 0\n100 50 160 50 160 80 100 80 plane 0\n"
    )
    DatasetCatalog.register(NAME, lambda: [])
    MetadataCatalog.get(NAME).set(evaluator_type="dota", thing_classes=["plane"], gt_dir=str(gt))
    yield NAME
    DatasetCatalog.remove(NAME)
    MetadataCatalog.remove(NAME)


def _evaluate(evaluator):
    """Two detections per class on "A": both planes exactly, the second scored lower."""
    evaluator.reset()
    inst = Instances((200, 200))
    inst.pred_boxes = RotatedBoxes(
        torch.tensor([[25.0, 20.0, 30.0, 20.0, 0.0], [130.0, 65.0, 60.0, 30.0, 0.0]])
    )
    inst.scores = torch.tensor([0.9, 0.8])
    inst.pred_classes = torch.tensor([0, 0])
    evaluator.process([{"file_name": "/images/A.png"}], [{"instances": inst}])
    return evaluator.evaluate()


def test_defaults_and_every_dota_config_report_coco_ap():
    cfg = _cfg()
    assert cfg.TEST.DOTA.COCO_AP is True and cfg.TEST.DOTA.COCO_MAX_DETS == 100
    dota_configs = [p for p in get_config_files() if "/DOTA/" in p]
    assert len(dota_configs) >= 2
    for path in dota_configs:
        loaded = load_config(path)
        assert loaded.TEST.DOTA.COCO_AP is True and loaded.TEST.DOTA.COCO_MAX_DETS == 100, path


def test_keys_reach_the_evaluator(tiny_dota, tmp_path):
    base = ("TEST.DOTA.PATCH_LEVEL", False)
    evaluator = build_evaluator(_cfg(*base), tiny_dota, str(tmp_path / "a"))
    assert isinstance(evaluator, DOTAEvaluator)
    results = _evaluate(evaluator)
    assert results["dota"]["mAP50"] == pytest.approx(100.0)
    assert results["dota_coco"]["AP"] == pytest.approx(100.0)
    assert results["dota_coco"]["AP50"] == pytest.approx(100.0)
    assert results["dota_coco"]["AP75"] == pytest.approx(100.0)

    # one detection per image and class: recall 1/2 at precision 1 -> 51 of 101 recall points
    one = build_evaluator(_cfg(*base, "TEST.DOTA.COCO_MAX_DETS", 1), tiny_dota, str(tmp_path / "b"))
    results = _evaluate(one)
    assert results["dota_coco"]["AP50"] == pytest.approx(100.0 * 51 / 101)
    assert results["dota"]["mAP50"] == pytest.approx(100.0)  # the devkit caps nothing

    off = build_evaluator(_cfg(*base, "TEST.DOTA.COCO_AP", False), tiny_dota, str(tmp_path / "c"))
    assert set(_evaluate(off)) == {"dota"}


def test_run_demo_reports_what_the_evaluator_emits(tiny_dota, tmp_path, load_tool):
    """The evaluator's results, flattened as detectron2's EvalHook writes them to metrics.json,
    give the demo's DOTA report: VOC07 mAP50 and COCO-style AP, AP50, AP75 on both levels."""
    run_demo = load_tool("run_demo")
    results = _evaluate(build_evaluator(_cfg(), tiny_dota, str(tmp_path / "eval")))
    # patch level: the dataset has no patch records, so copy the merged figures under its keys
    results["dota_patch"] = dict(results["dota"])
    results["dota_patch_coco"] = {k: v / 2 for k, v in results["dota_coco"].items()}
    record = {"iteration": 999, **flatten_results_dict(results)}
    (tmp_path / "metrics.json").write_text(json.dumps(record) + "\n")

    stage = run_demo.ROTATED
    headline = run_demo.report("test split", stage, run_demo.last_eval(str(tmp_path), "dota"))
    assert headline == "  test split (dota, %): mAP50 100.00"
    assert run_demo.report_more("test split", stage, str(tmp_path)) == [
        "  test split, merged, COCO-style rotated (dota_coco, %): AP 100.00  AP50 100.00  "
        "AP75 100.00",
        "  test split, patches, VOC07 (dota_patch, %): mAP50 100.00",
        "  test split, patches, COCO-style rotated (dota_patch_coco, %): AP 50.00  AP50 50.00  "
        "AP75 50.00",
    ]
    # a run without the COCO figures (TEST.DOTA.COCO_AP False) reports the VOC07 ones only
    (tmp_path / "metrics.json").write_text(json.dumps({"iteration": 1, "dota/mAP50": 3.0}) + "\n")
    assert run_demo.report_more("test split", stage, str(tmp_path)) == []
    assert np.isclose(run_demo.last_eval(str(tmp_path), "dota")["mAP50"], 3.0)
