#!/usr/bin/env python
"""Choose a spotter's ``TEST.SPOTTER.MIN_TEXT_SCORE`` on a validation split.

A spotter keeps a detection whose transcription is wrong as a false positive, so dropping the
detections it reads with low confidence raises precision more than it costs recall, up to a
point. This tool runs the spotter once over a dataset with the threshold at 0, then scores the
same outputs end to end (the dataset's ``text_e2e`` protocol, no files written) at each
threshold, and prints a table and, as its last stdout line, one JSON object::

    {"dataset": ..., "best_min_text_score": t, "best_hmean": h,
     "sweep": [{"min_text_score": t, "precision": p, "recall": r, "hmean": h}, ...]}

Choose the threshold on a split the model is not tested on (the synthetic data has
``synthetic_spotting_val``), then set it in the config.

Example::

    tools/sweep_text_score.py --config-file \\
        projects/FastTCM/configs/TextSpotting/fasttcm_cr50_fpn_spotter_synthetic_cpu.yaml \\
        --dataset synthetic_spotting_val MODEL.WEIGHTS output/spotter/model_final.pth
"""

import argparse
import json
import logging
import sys
from typing import Dict, List, Sequence, Tuple

import torch

from detectron2.config import get_cfg
from detectron2.evaluation import DatasetEvaluator
from detectron2.structures import Instances
from detectron2.utils.logger import setup_logger

from fasttcm import add_fasttcm_config, merge_config_file
from fasttcm.engine import AtomicDetectionCheckpointer, FastTCMTrainer
from fasttcm.evaluation import build_evaluator

logger = logging.getLogger("fasttcm.sweep_text_score")

DEFAULT_THRESHOLDS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def select_instances(instances: Instances, keep: torch.Tensor) -> Instances:
    """The instances at the (K,) indices `keep`; list fields (polygons, texts) are indexed too."""
    index = keep.tolist()
    selected = Instances(instances.image_size)
    for name, value in instances.get_fields().items():
        selected.set(name, [value[i] for i in index] if isinstance(value, list) else value[keep])
    return selected


def sweep_min_text_score(
    evaluator: DatasetEvaluator,
    runs: Sequence[Tuple[List[Dict], List[Dict]]],
    thresholds: Sequence[float],
) -> List[Dict[str, float]]:
    """End-to-end scores of the same spotter outputs at each recognition-confidence threshold.

    Args:
        evaluator: an end-to-end evaluator (``TextSpottingEvaluator``); reset before each threshold.
        runs: (inputs, outputs) pairs of the spotter, run with ``MIN_TEXT_SCORE`` 0; every output
            has "instances" with ``text_scores``.
        thresholds: the values of ``MIN_TEXT_SCORE`` to try (a detection is kept when its
            ``text_scores >= threshold``, as the spotter does).

    Returns:
        one dict per threshold: "min_text_score", "precision", "recall", "hmean" (percent, the
        evaluator's first metric group, the one without a lexicon).
    """
    rows = []
    for threshold in thresholds:
        evaluator.reset()
        for inputs, outputs in runs:
            kept = []
            for output in outputs:
                instances = output["instances"]
                keep = (instances.text_scores.cpu() >= threshold).nonzero()[:, 0]
                kept.append({"instances": select_instances(instances, keep)})
            evaluator.process(inputs, kept)
        results = evaluator.evaluate()
        metrics = next(iter(results.values()))
        rows.append(
            {
                "min_text_score": float(threshold),
                **{k: float(metrics[k]) for k in ("precision", "recall", "hmean")},
            }
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config-file", required=True, help="a spotter config (FastTCMTextSpotter)"
    )
    parser.add_argument(
        "--dataset",
        required=True,
        help="registered dataset with ground truth, e.g. synthetic_spotting_val",
    )
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(DEFAULT_THRESHOLDS))
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="config overrides, e.g. MODEL.WEIGHTS path"
    )
    args = parser.parse_args(argv)
    setup_logger(name="fasttcm")

    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, args.config_file)
    cfg.merge_from_list(args.opts)
    if cfg.MODEL.META_ARCHITECTURE != "FastTCMTextSpotter":
        print(
            f"sweep_text_score: {args.config_file} builds {cfg.MODEL.META_ARCHITECTURE}, "
            "not a FastTCMTextSpotter",
            file=sys.stderr,
        )
        return 1
    if any(not 0.0 <= t <= 1.0 for t in args.thresholds):
        print(
            "sweep_text_score: thresholds must lie in [0, 1] "
            f"(text scores are probabilities), got {args.thresholds}",
            file=sys.stderr,
        )
        return 1
    cfg.TEST.SPOTTER.MIN_TEXT_SCORE = 0.0
    cfg.freeze()

    model = FastTCMTrainer.build_model(cfg)
    AtomicDetectionCheckpointer(model).load_trained_weights(cfg.MODEL.WEIGHTS)
    model.eval()
    runs = []
    with torch.no_grad():
        for inputs in FastTCMTrainer.build_test_loader(cfg, args.dataset):
            runs.append((inputs, model(inputs)))
    evaluator = build_evaluator(cfg, args.dataset, output_folder="")  # "" = write no files
    rows = sweep_min_text_score(evaluator, runs, sorted(set(args.thresholds)))
    best = max(rows, key=lambda row: row["hmean"])
    print(f"{'min_text_score':>14} {'precision':>9} {'recall':>7} {'hmean':>7}")
    for row in rows:
        print(
            f"{row['min_text_score']:>14.2f} {row['precision']:>9.2f} "
            f"{row['recall']:>7.2f} {row['hmean']:>7.2f}"
        )
    print(
        json.dumps(
            {
                "dataset": args.dataset,
                "best_min_text_score": best["min_text_score"],
                "best_hmean": best["hmean"],
                "sweep": rows,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
