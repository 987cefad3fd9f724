"""Run ``tools/demo.py`` on one large image with a stand-in predictor and report peak memory.

Usage: ``python tests/tools/demo_memory_probe.py CONFIG WARMUP_IMAGE IMAGE OUTPUT_DIR [demo args]``.

The model is replaced by a stand-in (``FastTCMPredictor`` in the demo module) that returns one
prediction per call and records the shape of every image it is given, so that the measured
memory is the demo's own: reading, tiling, merging and drawing. The demo first runs on
WARMUP_IMAGE (imports, matplotlib and its fonts); the peak resident set size
(``ru_maxrss``) is taken after that and again after the run on IMAGE. The last stdout line is
JSON: ``{"baseline_mb", "peak_mb", "inputs": [[h, w, c], ...], "record": predictions.json entry}``.
"""

import importlib.util
import json
import os
import resource
import sys

import torch

from detectron2.structures import Instances, RotatedBoxes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class StandInPredictor:
    """One prediction per call, in the given image's pixels: a rotated box, or a text polygon."""

    inputs = []

    def __init__(self, cfg):
        self.rotated = cfg.MODEL.META_ARCHITECTURE == "FastTCMRotatedRCNN"

    def __call__(self, image):
        StandInPredictor.inputs.append(list(image.shape))
        height, width = image.shape[:2]
        out = Instances((height, width))
        out.scores = torch.tensor([0.9])
        if self.rotated:
            box = [width / 2, height / 2, width / 4, height / 8, 30.0]
            out.pred_boxes = RotatedBoxes(torch.tensor([box]))
            out.pred_classes = torch.tensor([0])
        else:
            x0, y0, x1, y1 = width / 4, height / 4, width / 2, height / 3
            out.polygons = [torch.tensor([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]).numpy()]
        return {"instances": out}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def main() -> None:
    config, warmup, image, output, extra = *sys.argv[1:5], sys.argv[5:]
    spec = importlib.util.spec_from_file_location("demo", os.path.join(REPO, "tools", "demo.py"))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    demo.FastTCMPredictor = StandInPredictor

    def run(path, out):
        argv = ["--config-file", config, "--input", path, "--output", out]
        argv += extra[: extra.index("--opts")] if "--opts" in extra else extra
        argv += extra[extra.index("--opts") :] if "--opts" in extra else []
        return demo.main(argv)[path]

    run(warmup, os.path.join(output, "warmup"))
    StandInPredictor.inputs = []
    baseline = peak_mb()
    record = run(image, os.path.join(output, "large"))
    print(
        json.dumps(
            {
                "baseline_mb": baseline,
                "peak_mb": peak_mb(),
                "inputs": StandInPredictor.inputs,
                "record": record,
            }
        )
    )


if __name__ == "__main__":
    main()
