#!/usr/bin/env python
"""DOTA AP50 three ways from one saved Task-1 submission: how far the 101-point COCO-style AP50
is from the devkit's VOC07 11-point AP50, and why.

Example (after ``make dota-demo``; ``DOTAEvaluator`` writes ``Task1_<class>.txt`` into the
evaluation folder)::

    tools/compare_dota_ap.py --gt datasets/synthetic_aerial/test/labelTxt \\
        --pred output/demo_dota/inference/synthetic_aerial_test_ss1024

GT is a folder of full-image ``labelTxt`` files (it defines the image set), PRED a folder of one
``Task1_<class>.txt`` per class (``<image> <score> x1 y1 ... x4 y4``, full-image pixels). Per class
and on average, in percent:

* ``voc07``: the DOTA devkit's AP50 (``dota_evaluation_task1.py``: 11-point VOC07 interpolation,
  IoU > 0.5 on the label quadrilaterals, best ground truth only; what ``DOTAEvaluator`` reports
  as ``dota/mAP50``);
* ``devkit_101``: the same matches and precision/recall curve, read at COCO's 101 recall points
  instead of 11: the difference to ``voc07`` is the interpolation alone;
* ``coco``: the COCO-style rotated AP50 (``dota_coco/AP50``; ``pycocotools`` rules: IoU >= 0.5 on
  the minimum-area rotated rectangles, fall-back to the best unmatched ground truth, at most
  ``--max-dets`` detections per image and class): the difference to ``devkit_101`` is the
  matching and geometry.

The means follow each protocol: ``voc07`` and ``devkit_101`` average all classes of the version,
a class without ground truth counting 0 (the devkit's mAP); ``coco`` averages the classes with
ground truth (COCO leaves the others out), and ``coco_all_classes`` is that AP50 averaged the
devkit's way. docs/protocols.md ("101-point AP50 and the devkit's VOC07 AP50") explains the
differences. The last stdout line is one JSON object with every figure.
"""

import argparse
import json
import math
import sys
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from fasttcm.data.datasets.dota_meta import canonical_dota_version, dota_class_names
from fasttcm.evaluation.offline_dota import evaluate_task1_coco, load_ground_truth_dir
from fasttcm.evaluation.protocols.dota_ap import ImageObjects, class_average_precision
from fasttcm.evaluation.protocols.dota_task1_io import ClassDetections, read_task1_dir
from fasttcm.evaluation.protocols.rotated_coco_ap import COCO_RECALL_THRESHOLDS


def interpolated_ap(rec: np.ndarray, prec: np.ndarray, recall_points: np.ndarray) -> float:
    """Mean over `recall_points` of the best precision at recall >= each point (0 if none).

    With ``np.arange(0, 1.1, 0.1)`` this is the devkit's VOC07 AP; with COCO's
    ``np.linspace(0, 1, 101)`` the 101-point AP. A NaN recall (no ground truth) reaches no point.

    Args:
        rec, prec: ``(N,)`` recall and precision after each detection, in score order.
        recall_points: ``(R,)`` recall levels.
    """
    rec, prec = np.asarray(rec, dtype=np.float64), np.asarray(prec, dtype=np.float64)
    total = 0.0
    with np.errstate(invalid="ignore"):
        for t in recall_points:
            above = rec >= t
            total += float(np.max(prec[above])) if above.any() else 0.0
    return total / len(recall_points)


def devkit_ap50(
    ground_truth: Mapping[str, ImageObjects],
    detections: Mapping[str, ClassDetections],
    class_names: Sequence[str],
) -> Dict[str, Dict[str, float]]:
    """Per class: ``voc07`` (the devkit's AP50) and ``devkit_101`` (its curve at 101 points).

    Fractions in [0, 1]; the matching is the devkit's
    (:func:`~fasttcm.evaluation.protocols.dota_ap.class_average_precision`).
    """
    names = list(ground_truth)
    index = {name: i for i, name in enumerate(names)}
    objects = [ground_truth[n] for n in names]
    polys = np.concatenate([o.polys for o in objects]) if objects else np.zeros((0, 8))
    cats = np.concatenate([o.category_ids for o in objects]) if objects else np.zeros(0, int)
    difficult = np.concatenate([o.difficult for o in objects]) if objects else np.zeros(0, bool)
    image = np.repeat(np.arange(len(objects)), [len(o.polys) for o in objects])
    out = {}
    for k, name in enumerate(class_names):
        dets = detections.get(name, ClassDetections.empty())
        unknown = sorted(set(dets.image_names.tolist()) - set(index))
        if unknown:
            raise KeyError(
                f"Task1_{name}.txt names {len(unknown)} image(s) without a label file in the "
                f"ground truth, e.g. {unknown[:3]}"
            )
        sel = cats == k
        ap, rec, prec = class_average_precision(
            polys[sel],
            image[sel],
            difficult[sel],
            len(objects),
            np.array([index[n] for n in dets.image_names], dtype=np.int64),
            dets.scores,
            dets.polys,
        )
        out[name] = {"voc07": ap, "devkit_101": interpolated_ap(rec, prec, COCO_RECALL_THRESHOLDS)}
    return out


def compare(gt_dir: str, pred_dir: str, version="1.0", *, max_dets: int = 100) -> dict:
    """Every figure of the module docstring, in percent (NaN for a COCO class without GT)."""
    classes = dota_class_names(version)
    ground_truth = load_ground_truth_dir(gt_dir, classes)
    detections = read_task1_dir(pred_dir, classes)
    devkit = devkit_ap50(ground_truth, detections, classes)
    coco = evaluate_task1_coco(ground_truth, detections, classes, max_dets=max_dets)
    t50 = int(np.flatnonzero(np.isclose(coco.params["iou_thresholds"], 0.5))[0])
    area_all = list(coco.params["area_ranges"]).index("all")
    per_class = {}
    for k, name in enumerate(classes):
        curve = coco.precision[t50, :, k, area_all]  # -1 without ground truth
        coco50 = float(np.mean(curve)) if np.all(curve > -1) else math.nan
        per_class[name] = {
            "num_gt": sum(
                int(np.sum((o.category_ids == k) & ~o.difficult)) for o in ground_truth.values()
            ),
            "num_det": len(detections.get(name, ClassDetections.empty())),
            "voc07": 100.0 * devkit[name]["voc07"],
            "devkit_101": 100.0 * devkit[name]["devkit_101"],
            "coco": 100.0 * coco50,
        }
    mean = {
        key: float(np.mean([c[key] for c in per_class.values()])) for key in ("voc07", "devkit_101")
    }
    with_gt = [c["coco"] for c in per_class.values() if not math.isnan(c["coco"])]
    mean["coco"] = float(np.mean(with_gt)) if with_gt else math.nan
    mean["coco_all_classes"] = float(
        np.mean([0.0 if math.isnan(c["coco"]) else c["coco"] for c in per_class.values()])
    )
    return {
        "task": "compare_dota_ap",
        "num_images": len(ground_truth),
        "mean": mean,
        "difference": {
            "interpolation (devkit_101 - voc07)": mean["devkit_101"] - mean["voc07"],
            "matching and geometry (coco_all_classes - devkit_101)": (
                mean["coco_all_classes"] - mean["devkit_101"]
            ),
            "coco - voc07": mean["coco"] - mean["voc07"],
        },
        "per_class": per_class,
        "max_dets": max_dets,
    }


def _fmt(value: float) -> str:
    return "   nan" if math.isnan(value) else f"{value:6.2f}"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gt", required=True, help="folder of full-image labelTxt files")
    parser.add_argument("--pred", required=True, help="folder of Task1_<class>.txt files")
    parser.add_argument(
        "--classes", choices=("dota10", "dota15"), default="dota10", help="class list"
    )
    parser.add_argument(
        "--max-dets", type=int, default=100, help="COCO maxDets per image and class"
    )
    args = parser.parse_args(argv)
    try:
        result = compare(
            args.gt, args.pred, canonical_dota_version(args.classes), max_dets=args.max_dets
        )
    except (ValueError, KeyError, OSError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"compare_dota_ap.py: error: {message}", file=sys.stderr)
        return 1
    width = max(len(name) for name in result["per_class"])
    print(f"AP50 in percent on {result['num_images']} images:")
    print(f"  {'class':<{width}}  {'gt':>5}  {'det':>6}   voc07  dev101    coco")
    for name, c in result["per_class"].items():
        print(
            f"  {name:<{width}}  {c['num_gt']:5d}  {c['num_det']:6d}  {_fmt(c['voc07'])}  "
            f"{_fmt(c['devkit_101'])}  {_fmt(c['coco'])}"
        )
    m = result["mean"]
    print(
        f"  {'mean':<{width}}  {'':5}  {'':6}  {_fmt(m['voc07'])}  {_fmt(m['devkit_101'])}  "
        f"{_fmt(m['coco'])}  (COCO over all classes: {_fmt(m['coco_all_classes']).strip()})"
    )
    for what, value in result["difference"].items():
        print(f"  {what}: {value:+.2f} points")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
