#!/usr/bin/env python
"""Where a spotter's end-to-end points go on a dataset (docs/spotting.md).

Runs a ``FastTCMTextSpotter`` over a dataset (detectron2's test loader), scores it end to end
exactly as ``TextSpottingEvaluator`` does (same files, same figures), and splits the errors:
words missed by the detector, words the detector found but the reading gate
(``TEST.SPOTTER.MIN_TEXT_SCORE``) dropped (the spotter runs with the gate off and the evaluator
applies it, so the figures are those of the gated spotter), words detected but misread because
the crop cuts or pads them or on a clean crop, and false positives that carry a reading. To tell
a crop misread from a clean one, the recognizer also reads every ground-truth word from its own
polygon (in the annotated layout it was trained on, and in the spotter's inference layout);
``--no-gt-crops`` leaves the verdict
to geometry alone (``--min-coverage``, ``--max-excess``).

It writes, under ``--output`` (default ``OUTPUT_DIR/spotting_analysis/<dataset>``), the
evaluator's files (``e2e_txt/``, ``e2e_eval.json``, ``text_results.json`` with text scores and
the ground-truth crop readings) and ``spotting_analysis.json``, ``spotting_instances.jsonl`` and
``spotting_instances.csv``; prints a table and, as its last stdout line, one JSON object (the
analysis summary plus ``dataset`` and ``output_dir``).

``--predictions DIR/text_results.json`` reruns the analysis on saved predictions (this tool's,
or any ``TextSpottingEvaluator`` output folder's) without a model.

Example::

    tools/analyze_spotting.py --config-file \\
        projects/FastTCM/configs/TextSpotting/fasttcm_cr50_fpn_spotter_synthetic_cpu.yaml \\
        --dataset synthetic_spotting_val MODEL.WEIGHTS output/spotter/model_final.pth
"""

import argparse
import json
import logging
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from detectron2.config import get_cfg
from detectron2.utils.logger import setup_logger

from fasttcm import add_fasttcm_config, merge_config_file
from fasttcm.engine import AtomicDetectionCheckpointer, FastTCMTrainer
from fasttcm.evaluation.spotting_analysis import SPOTTER_LAYOUT, VERDICT_LAYOUT, CropCriteria
from fasttcm.evaluation.spotting_analysis_evaluator import SpottingAnalysisEvaluator
from fasttcm.evaluation.spotting_report import format_analysis_table

logger = logging.getLogger("fasttcm.analyze_spotting")


@torch.no_grad()
def read_polygons(
    model, batched_inputs: List[Dict], polygons: Sequence[Sequence[np.ndarray]], layout: str
) -> List[List[Optional[str]]]:
    """The spotter's recognizer reading given polygons, cropped as the spotter crops
    (``FastTCMTextSpotter.recognize_polygons``).

    Args:
        model: a ``FastTCMTextSpotter`` in eval mode.
        batched_inputs: the test loader's dicts ("image" (3, H, W), "height", "width").
        polygons: per input, its (K_i, 2) polygons (x, y) in original-image pixels.
        layout: a rectification layout ("annotated", "predicted", "rectangle").

    Returns:
        per input, one reading per polygon; None where the polygon gives no crop.
    """
    texts, _ = model.recognize_polygons(batched_inputs, polygons, layout=layout)
    return texts


def _run_spotter(cfg, dataset: str, evaluator: SpottingAnalysisEvaluator, gt_crops: bool):
    model = FastTCMTrainer.build_model(cfg)
    AtomicDetectionCheckpointer(model).load_trained_weights(cfg.MODEL.WEIGHTS)
    model.eval()
    # the evaluator applies TEST.SPOTTER.MIN_TEXT_SCORE itself (reading_gate), so that it sees
    # the detections the gate drops
    model.min_text_score = 0.0
    ground_truth = evaluator.ground_truth_by_image_id() if gt_crops else {}
    layouts = {VERDICT_LAYOUT: "annotated", SPOTTER_LAYOUT: model.crop_layout}
    with torch.no_grad():
        for inputs in FastTCMTrainer.build_test_loader(cfg, dataset):
            outputs = model(inputs)
            if gt_crops:
                polygons = [
                    ground_truth[x["image_id"]].polygons if x["image_id"] in ground_truth else ()
                    for x in inputs
                ]
                readings = {
                    name: read_polygons(model, inputs, polygons, layout)
                    for name, layout in layouts.items()
                }
                for i, output in enumerate(outputs):
                    output["gt_readings"] = {name: r[i] for name, r in readings.items()}
            evaluator.process(inputs, outputs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", required=True, help="a spotter config")
    parser.add_argument(
        "--dataset", required=True, help="registered dataset with ground truth and transcriptions"
    )
    parser.add_argument(
        "--output", default=None, help="output folder (default OUTPUT_DIR/spotting_analysis/NAME)"
    )
    parser.add_argument(
        "--predictions",
        default=None,
        help="a saved text_results.json to analyse instead of running the model",
    )
    parser.add_argument(
        "--no-gt-crops",
        action="store_true",
        help="do not read the ground-truth crops (crop vs clean misreads by geometry only)",
    )
    parser.add_argument(
        "--min-coverage",
        type=float,
        default=CropCriteria.min_coverage,
        help="a detection covering less of its word cuts it (geometric test)",
    )
    parser.add_argument(
        "--max-excess",
        type=float,
        default=CropCriteria.max_excess,
        help="a detection with more of its area outside its word pads it (geometric test)",
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="config overrides, e.g. MODEL.WEIGHTS path"
    )
    args = parser.parse_args(argv)
    setup_logger(name="fasttcm")

    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    if args.predictions is None and cfg.MODEL.META_ARCHITECTURE != "FastTCMTextSpotter":
        print(
            f"analyze_spotting: {args.config_file} builds {cfg.MODEL.META_ARCHITECTURE}, "
            "not a FastTCMTextSpotter",
            file=sys.stderr,
        )
        return 1
    try:
        criteria = CropCriteria(args.min_coverage, args.max_excess)
    except ValueError as e:
        print(f"analyze_spotting: {e}", file=sys.stderr)
        return 1
    saved = None
    if args.predictions is not None:
        try:
            with open(args.predictions, encoding="utf-8") as f:
                saved = json.load(f)
        except (OSError, ValueError) as e:
            print(f"analyze_spotting: cannot read --predictions: {e}", file=sys.stderr)
            return 1
    output_dir = args.output or os.path.join(cfg.OUTPUT_DIR, "spotting_analysis", args.dataset)
    evaluator = SpottingAnalysisEvaluator(
        cfg,
        args.dataset,
        output_dir,
        distributed=False,
        criteria=criteria,
        reading_gate=None if saved is not None else cfg.TEST.SPOTTER.MIN_TEXT_SCORE,
    )
    if saved is not None:
        evaluator.add_saved_predictions(saved, args.predictions)
    else:
        _run_spotter(cfg, args.dataset, evaluator, gt_crops=not args.no_gt_crops)
    evaluator.evaluate()
    summary = evaluator.analysis.summary()
    print(f"Spotting analysis of {args.dataset} ({summary['num_images']} images):")
    print(format_analysis_table(summary))
    print(f"Files written to {output_dir}")
    print(json.dumps({"dataset": args.dataset, "output_dir": output_dir, **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
