"""COCO-style evaluation of text detection: the detector's COCO fields, the ground truth with
don't-care text as crowd, tools/evaluate.py --task coco against pycocotools, text_det+coco."""

import contextlib
import io
import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from shapely.geometry import Polygon
from torch import nn

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import DatasetEvaluators
from detectron2.modeling import Backbone
from detectron2.structures import Boxes, BoxMode, Instances

from fasttcm.config import add_fasttcm_config
from fasttcm.evaluation import TextCOCOEvaluator, TextDetEvaluator, build_evaluator
from fasttcm.evaluation.coco_text_evaluator import (
    COCO_GT_FILE_NAME,
    text_dicts_to_coco,
    text_instances_to_coco_json,
)
from fasttcm.modeling.meta_arch.text_detector import FastTCMTextDetector
from fasttcm.modeling.text_heads.postprocess import DBPostprocessor, polygons_to_masks
from tests.common import tiny_text_dataset_dicts

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


class _StrideFourBackbone(Backbone):
    """A backbone whose only feature is an empty stride-4 "p2" map."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return {"p2": x.new_zeros(x.shape[0], 1, x.shape[2] // 4, x.shape[3] // 4)}

    @property
    def size_divisibility(self):
        return 4


class _FixedProbabilityHead(nn.Module):
    """A DB head double: probability 0.9 on fixed input-pixel rectangles (x0, y0, x1, y1)."""

    def __init__(self, rectangles):
        super().__init__()
        self.rectangles = rectangles

    def forward(self, features, targets=None, return_all_maps=False):
        p2 = features["p2"]
        prob = p2.new_zeros(p2.shape[0], 1, p2.shape[2] * 4, p2.shape[3] * 4)
        for x0, y0, x1, y1 in self.rectangles:
            prob[:, :, y0:y1, x0:x1] = 0.9
        return {"prob": prob}, {}


def _detector(rectangles, pred_masks):
    return FastTCMTextDetector(
        backbone=_StrideFourBackbone(),
        text_head=_FixedProbabilityHead(rectangles),
        postprocessor=DBPostprocessor(),
        pixel_mean=(0.0, 0.0, 0.0),
        pixel_std=(1.0, 1.0, 1.0),
        pred_masks=pred_masks,
    ).eval()


@pytest.mark.parametrize("pred_masks", [False, True])
def test_detector_instances_have_coco_fields_consistent_with_polygons(pred_masks):
    model = _detector([(20, 16, 60, 32), (8, 60, 28, 100), (70, 40, 110, 56)], pred_masks)
    image = torch.zeros(3, 120, 160, dtype=torch.uint8)
    with torch.no_grad():
        (output,) = model([{"image": image, "height": 240, "width": 320}])
    instances = output["instances"]
    assert len(instances) == 3
    assert instances.pred_classes.dtype == torch.int64
    assert instances.pred_classes.tolist() == [0, 0, 0]
    assert instances.scores.shape == (3,)
    assert not pred_masks or instances.has("pred_masks")
    if not pred_masks:
        assert not instances.has("pred_masks")
        return
    masks = instances.pred_masks
    assert masks.dtype == torch.bool and masks.shape == (3, 240, 320)
    for mask, polygon in zip(masks.numpy(), instances.polygons):
        shape = Polygon(polygon)
        # fillPoly also sets the pixels the outline crosses: about half the perimeter more.
        assert shape.area <= mask.sum() <= shape.area + shape.length
        ys, xs = np.nonzero(mask)
        x0, y0, x1, y1 = shape.bounds
        assert xs.min() >= np.floor(x0) and xs.max() <= np.ceil(x1)
        assert ys.min() >= np.floor(y0) and ys.max() <= np.ceil(y1)


def test_polygons_to_masks_area_and_degenerate_polygons():
    square = np.array([[10, 10], [30, 10], [30, 30], [10, 30]], dtype=np.float32)
    masks = polygons_to_masks([square, square[:2]], (40, 50))
    assert masks.shape == (2, 40, 50) and masks.dtype == bool
    assert 400 <= masks[0].sum() <= 441  # 20 x 20 pixels, at most one extra row and column
    assert masks[0][10:30, 10:30].all()
    assert masks[1].sum() == 0


def rect(x0, y0, x1, y1):
    return [float(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1)]


def annotation(polygon, text, ignore=False):
    xs, ys = polygon[0::2], polygon[1::2]
    return {
        "segmentation": [polygon],
        "bbox": [min(xs), min(ys), max(xs), max(ys)],
        "bbox_mode": BoxMode.XYXY_ABS,
        "category_id": 0,
        "text": text,
        "ignore": ignore or text == "###",
    }


# Image 0: one word and a don't-care region; image 1: two words; image 2: an ignored region.
GT = {
    0: [annotation(rect(10, 10, 50, 30), "hello"), annotation(rect(100, 100, 140, 120), "###")],
    1: [annotation(rect(0, 0, 40, 20), "abc"), annotation(rect(60, 0, 100, 20), "def")],
    2: [annotation(rect(0, 0, 30, 30), "smudge", ignore=True)],
}


def dataset_dicts():
    return tiny_text_dataset_dicts(GT)


@pytest.fixture
def dataset():
    name = f"fasttcm_test_coco_text_{uuid.uuid4().hex[:8]}"
    DatasetCatalog.register(name, dataset_dicts)
    MetadataCatalog.get(name).set(
        evaluator_type="text_det", eval_protocol="iou", thing_classes=["text"]
    )
    yield name
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def test_dont_care_and_ignored_text_are_crowd():
    coco = text_dicts_to_coco(dataset_dicts())
    crowd = {(a["image_id"], a["iscrowd"]) for a in coco["annotations"]}
    assert crowd == {(0, 0), (0, 1), (1, 0), (2, 1)}
    first = coco["annotations"][0]
    assert first["bbox"] == [10.0, 10.0, 40.0, 20.0] and first["area"] == pytest.approx(800.0)
    assert first["segmentation"] == [rect(10, 10, 50, 30)]
    assert coco["categories"] == [{"id": 1, "name": "text"}]


def _instances(polygons, scores, image_size=(200, 200)):
    instances = Instances(image_size)
    instances.polygons = [np.asarray(p, dtype=np.float32).reshape(-1, 2) for p in polygons]
    instances.scores = torch.tensor(scores, dtype=torch.float32)
    bounds = [np.concatenate([p.min(axis=0), p.max(axis=0)]) for p in instances.polygons]
    instances.pred_boxes = Boxes(torch.tensor(np.array(bounds).reshape(-1, 4)))
    instances.pred_classes = torch.zeros(len(polygons), dtype=torch.int64)
    return instances


def _run(evaluator, predictions):
    evaluator.reset()
    for image_id, (polygons, scores) in predictions.items():
        evaluator.process([{"image_id": image_id}], [{"instances": _instances(polygons, scores)}])
    return evaluator.evaluate()


def test_detection_on_dont_care_text_is_not_a_false_positive(dataset, tmp_path):
    evaluator = TextCOCOEvaluator(dataset, str(tmp_path), distributed=False)
    exact = {0: ([rect(10, 10, 50, 30)], [0.9]), 1: ([rect(0, 0, 40, 20)], [0.8])}
    exact[1][0].append(rect(60, 0, 100, 20))
    exact[1][1].append(0.7)
    perfect = _run(evaluator, exact)
    assert perfect["bbox"]["AP"] == pytest.approx(100.0)
    assert perfect["segm"]["AP"] == pytest.approx(100.0)
    # Highest-scored detections on the "###" region and on the ignored region: no penalty.
    on_crowd = {
        0: ([rect(100, 100, 140, 120), rect(10, 10, 50, 30)], [0.99, 0.9]),
        1: exact[1],
        2: ([rect(0, 0, 30, 30)], [0.99]),
    }
    result = _run(evaluator, on_crowd)
    for iou_type in ("bbox", "segm"):
        assert set(result[iou_type]) >= set(METRICS)
        assert result[iou_type]["AP"] == pytest.approx(100.0)
    # The same detection away from any text is a false positive ranked first: AP drops.
    elsewhere = {0: ([rect(150, 150, 190, 170), rect(10, 10, 50, 30)], [0.99, 0.9]), 1: exact[1]}
    assert _run(evaluator, elsewhere)["bbox"]["AP"] < 90.0
    assert os.path.isfile(tmp_path / COCO_GT_FILE_NAME)
    assert os.path.isfile(tmp_path / "coco_instances_results.json")


def _cocoeval_directly(gt_path, pred_path, iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(gt_path)
        results = json.load(open(pred_path))
        if iou_type == "segm":
            results = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return [float(v) * 100 for v in coco_eval.stats[:6]]


def test_tools_evaluate_coco_equals_pycocotools(tmp_path):
    rng = np.random.default_rng(0)
    records, results = [], []
    for image_id in range(4):
        anns = []
        for k in range(6):
            x, y = rng.uniform(0, 500), rng.uniform(0, 300)
            w, h = rng.choice([12.0, 50.0, 120.0]) * rng.uniform(0.8, 1.2), rng.uniform(8, 40)
            polygon = rect(x, y, x + w, y + h)
            anns.append(annotation(polygon, "###" if k == 5 else "word"))
            if rng.random() < 0.8:
                jitter = rng.normal(0, 2.0, 8)
                detected = np.asarray(polygon) + jitter
                instances = _instances([detected], [float(rng.random())], (360, 640))
                results.extend(text_instances_to_coco_json(instances, image_id))
        records.append(
            {
                "file_name": "",
                "image_id": image_id,
                "height": 360,
                "width": 640,
                "annotations": anns,
            }
        )
    for r in results:
        r["category_id"] = 1  # as COCOEvaluator writes them: the dataset's category id
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(text_dicts_to_coco(records)))
    pred_path.write_text(json.dumps(results))
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "tools", "evaluate.py"),
            "--task",
            "coco",
            "--gt",
            str(gt_path),
            "--pred",
            str(pred_path),
            "--iou-type",
            "bbox",
            "segm",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["task"] == "coco" and set(summary) == {"task", "bbox", "segm"}
    for iou_type in ("bbox", "segm"):
        expected = _cocoeval_directly(str(gt_path), str(pred_path), iou_type)
        got = [summary[iou_type][name] for name in METRICS]
        for value, reference in zip(got, expected):
            assert (value is None and reference < 0) or value == pytest.approx(reference)


def test_text_det_plus_coco_builds_both_evaluators(dataset, tmp_path):
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.OUTPUT_DIR = str(tmp_path)
    cfg.TEST.EVALUATOR_TYPE = "text_det+coco"
    evaluator = build_evaluator(cfg, dataset)
    assert isinstance(evaluator, DatasetEvaluators)
    kinds = [type(e) for e in evaluator._evaluators]
    assert kinds == [TextDetEvaluator, TextCOCOEvaluator]
    cfg.TEST.EVALUATOR_TYPE = "coco"
    assert isinstance(build_evaluator(cfg, dataset), TextCOCOEvaluator)
    cfg.TEST.EVALUATOR_TYPE = "text_det+nope"
    with pytest.raises(KeyError, match="nope"):
        build_evaluator(cfg, dataset)
