#!/usr/bin/env python
"""Export a trained FastTCM-D2 model to ONNX graphs for onnxruntime (docs/deployment.md).

Examples::

    tools/export_model.py --format onnx --config-file CONFIG --output export/ \
        --opts MODEL.WEIGHTS output/x/model_final.pth
    tools/export_model.py --format onnx --config-file SPOTTER_CONFIG --task recognizer \
        --output export_rec/ --opts MODEL.WEIGHTS spotter.pth

``--task`` defaults to the config's architecture: "detector" (FastTCMTextDetector), "spotter"
(FastTCMTextSpotter: detector and recognizer graphs), "recognizer" (FastTCMTextRecognizer), "dota"
(FastTCMRotatedRCNN: backbone + FPN graph, RPN and ROI head weights beside it); a spotter config
also exports its "detector" or "recognizer" alone.

The weights (``MODEL.WEIGHTS``) are loaded as for serving: weights-only, and refused when any
model tensor is missing or mis-shaped. The folder is written next to ``--output`` and renamed into
place, with ``manifest.json`` describing its graphs. After the export, each graph runs in
onnxruntime on random inputs against PyTorch (``--no-verify`` skips it). The last stdout line is
a JSON summary: output folder, task, opset, files, the graphs' input and output names, whether
FastTCM's text branch was folded into a constant, and the largest |onnxruntime - PyTorch| per
output.
"""

import argparse
import json
import logging
import sys

from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.utils.logger import setup_logger

from fasttcm import add_fasttcm_config, merge_config_file
from fasttcm.deploy import TASK_OF_ARCHITECTURE, export_onnx
from fasttcm.deploy.manifest import TASKS
from fasttcm.engine import AtomicDetectionCheckpointer


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--format", choices=("onnx",), required=True, help="export format")
    p.add_argument("--config-file", required=True, metavar="FILE")
    p.add_argument(
        "--task",
        choices=TASKS,
        default=None,
        help="what to export (default: the config's architecture: "
        + ", ".join(f"{a} -> {t}" for a, t in TASK_OF_ARCHITECTURE.items())
        + ")",
    )
    p.add_argument("--output", required=True, metavar="DIR", help="export folder")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    p.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip the onnxruntime-vs-PyTorch check on random inputs",
    )
    p.add_argument(
        "--opts", default=[], nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs"
    )
    return p


def setup_cfg(args):
    """get_cfg -> FastTCM keys -> the config file -> ``--opts``; CPU; frozen."""
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.MODEL.DEVICE = "cpu"  # graphs are traced on the CPU; onnxruntime picks its own device
    cfg.freeze()
    return cfg


def main(argv=None) -> dict:
    """Export; returns the summary printed as the last stdout line."""
    args = get_parser().parse_args(argv)
    setup_logger(name="fasttcm")
    logger = setup_logger(name="export_model")
    cfg = setup_cfg(args)
    model = build_model(cfg)
    model.eval()
    AtomicDetectionCheckpointer(model).load_trained_weights(cfg.MODEL.WEIGHTS)
    summary = export_onnx(
        model,
        cfg,
        args.output,
        task=args.task,
        opset=args.opset,
        verify=args.verify,
        progress=logger.info,
    )
    worst = max(summary["max_abs_diff"].values(), default=0.0)
    if worst > 1e-3:
        logging.getLogger("export_model").warning(
            f"onnxruntime differs from PyTorch by up to {worst:.3g} (see max_abs_diff)"
        )
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
    sys.exit(0)
