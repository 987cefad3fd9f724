"""detectron2's COCOeval_opt, running on the project's COCO evaluation kernels, reports what
pycocotools' COCOeval reports, on synthetic bbox data with several images and categories."""

import contextlib
import copy
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detectron2.evaluation.fast_eval_api import COCOeval_opt


def synthetic_coco(seed=0, num_images=7, num_categories=3):
    """Ground truth (with crowd boxes, all three COCO area ranges) and noisy detections
    (duplicates, misses, false positives, tied scores)."""
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": 640, "height": 480} for i in range(num_images)]
    categories = [{"id": c + 1, "name": f"class{c}"} for c in range(num_categories)]
    annotations, detections = [], []
    for image in images:
        for _ in range(rng.integers(0, 9)):
            side = float(rng.choice([20.0, 60.0, 150.0])) * rng.uniform(0.6, 1.4)
            w, h = side * rng.uniform(0.6, 1.4), side * rng.uniform(0.6, 1.4)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            category = int(rng.integers(1, num_categories + 1))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image["id"],
                    "category_id": category,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": int(rng.random() < 0.1),
                }
            )
            for _ in range(rng.integers(0, 3)):  # 0..2 detections per object
                jitter = rng.normal(0, 0.15 * side, 4)
                detections.append(
                    {
                        "image_id": image["id"],
                        "category_id": category if rng.random() < 0.85 else int(rng.integers(1, 4)),
                        "bbox": [
                            x + jitter[0],
                            y + jitter[1],
                            max(w + jitter[2], 2.0),
                            max(h + jitter[3], 2.0),
                        ],
                        "score": round(float(rng.random()), 1),  # coarse: many tied scores
                    }
                )
        for _ in range(rng.integers(0, 4)):  # false positives
            w, h = rng.uniform(10, 120, 2)
            detections.append(
                {
                    "image_id": image["id"],
                    "category_id": int(rng.integers(1, num_categories + 1)),
                    "bbox": [rng.uniform(0, 500), rng.uniform(0, 350), w, h],
                    "score": round(float(rng.random()), 1),
                }
            )
    gt = COCO()
    gt.dataset = {"images": images, "categories": categories, "annotations": annotations}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(detections)
    return gt, dt


def run(evaluator_cls, gt, dt, configure):
    evaluator = evaluator_cls(copy.deepcopy(gt), copy.deepcopy(dt), "bbox")
    configure(evaluator.params)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def default_params(params):
    pass


def no_categories(params):
    params.useCats = 0


def few_detections(params):
    params.maxDets = [1, 3, 10]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("configure", [default_params, no_categories, few_detections])
def test_same_results_as_pycocotools(seed, configure):
    gt, dt = synthetic_coco(seed)
    reference = run(COCOeval, gt, dt, configure)
    fast = run(COCOeval_opt, gt, dt, configure)
    assert reference.stats.max() > 0.05  # a meaningful case, not all -1 / 0
    np.testing.assert_array_equal(fast.eval["precision"].shape, reference.eval["precision"].shape)
    np.testing.assert_allclose(
        fast.eval["precision"], reference.eval["precision"], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(fast.eval["recall"], reference.eval["recall"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.eval["scores"], reference.eval["scores"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.stats, reference.stats, rtol=0, atol=1e-12)


def test_matching_rules_on_hand_made_cases():
    """Non-ignored ground truth is preferred over a better-overlapping ignored (crowd) one; crowd
    regions absorb several detections; area ranges ignore ground truth and unmatched detections."""
    boxes = {
        1: ([0, 0, 100, 100], 0),
        2: ([5, 5, 100, 100], 1),  # plain; crowd, hence ignored
        3: ([300, 300, 100, 100], 1),  # crowd
        4: ([0, 300, 30, 30], 0),
        5: ([500, 0, 8, 8], 0),  # medium / small
    }
    annotations = [
        {"id": i, "image_id": 1, "category_id": 1, "bbox": b, "area": b[2] * b[3], "iscrowd": crowd}
        for i, (b, crowd) in boxes.items()
    ]
    gt = COCO()
    gt.dataset = {
        "images": [{"id": 1, "width": 640, "height": 480}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": annotations,
    }
    detections = [
        ([5, 5, 100, 100], 0.9),  # IoU 1 with the ignored crowd box 2, ~0.82 with box 1
        ([310, 310, 20, 20], 0.8),
        ([350, 350, 40, 40], 0.7),
        ([300, 300, 90, 90], 0.6),  # crowd
        ([1, 301, 30, 30], 0.5),
        ([500, 0, 9, 9], 0.4),
        ([600, 400, 30, 30], 0.3),
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(
            [{"image_id": 1, "category_id": 1, "bbox": b, "score": s} for b, s in detections]
        )
    reference = run(COCOeval, gt, dt, default_params)
    fast = run(COCOeval_opt, gt, dt, default_params)
    assert reference.eval["recall"][0, 0, 0, -1] == 1.0  # box 1 matched at IoU 0.5, not box 2
    np.testing.assert_allclose(fast.eval["precision"], reference.eval["precision"], atol=1e-12)
    np.testing.assert_allclose(fast.eval["recall"], reference.eval["recall"], atol=1e-12)
    np.testing.assert_allclose(fast.stats, reference.stats, atol=1e-12)


def test_empty_detections_and_images_without_annotations():
    gt, _ = synthetic_coco(3, num_images=4)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}])
    reference = run(COCOeval, gt, dt, default_params)
    fast = run(COCOeval_opt, gt, dt, default_params)
    np.testing.assert_allclose(fast.eval["precision"], reference.eval["precision"], atol=1e-12)
    np.testing.assert_allclose(fast.stats, reference.stats, atol=1e-12)
