#!/usr/bin/env python
"""`make demo`: the whole text-detection pipeline on synthetic data, on the CPU, with nothing to download.

1. generates the synthetic scene-text splits (``synthetic_text_train`` / ``synthetic_text_test``)
   under $DETECTRON2_DATASETS (default ./datasets) if they are not there yet;
2. trains the CPU-sized FastTCM DBNet config (``tools/train_net.py``) from random weights;
3. evaluates the final checkpoint on the test split (ICDAR IoU protocol);
4. draws the predictions on the test images (``tools/demo.py``).

Extra ``KEY VALUE`` arguments are passed to training as config overrides, e.g.
``tools/run_demo.py MODEL.FASTTCM.MODE none`` trains the same detector without the TCM modules.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(
    REPO, "projects/FastTCM/configs/TextDetection/fasttcm_cr50_fpn_dbnet_synthetic_cpu.yaml"
)


def run(cmd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config-file", default=DEFAULT_CONFIG)
    p.add_argument("--output-dir", default=os.path.join(REPO, "output", "demo"))
    p.add_argument("--num-images", type=int, default=8, help="test images to draw")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides for training")
    args = p.parse_args()
    py = sys.executable
    out = args.output_dir
    start = time.time()
    run([py, "tools/train_net.py", "--config-file", args.config_file,
         "OUTPUT_DIR", out, *args.opts])
    weights = os.path.join(out, "model_final.pth")
    results_file = os.path.join(out, "inference", "synthetic_text_test", "text_results.json")
    metrics = _last_eval(out)
    images = sorted(glob.glob(os.path.join(
        os.environ.get("DETECTRON2_DATASETS", os.path.join(REPO, "datasets")),
        "synthetic_text", "test", "images", "*")))[: args.num_images]
    vis_dir = os.path.join(out, "demo_images")
    run([py, "tools/demo.py", "--config-file", args.config_file, "--input", *images,
         "--output", vis_dir, "--opts", "MODEL.WEIGHTS", weights, *args.opts])
    print()
    print(f"FastTCM-D2 demo finished in {(time.time() - start) / 60:.1f} min")
    print(f"  checkpoint:      {weights}")
    print(f"  eval results:    {results_file}")
    print(f"  drawn images:    {vis_dir}")
    if metrics:
        print("  synthetic_text_test (%): precision {precision:.2f}  recall {recall:.2f}  "
              "hmean {hmean:.2f}".format(**metrics))


def _last_eval(out_dir):
    """The last text_det metrics (percent) in metrics.json (written by detectron2's EvalHook)."""
    path = os.path.join(out_dir, "metrics.json")
    found = None
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if "text_det/hmean" in rec:
                    found = {k: rec[f"text_det/{k}"] for k in ("precision", "recall", "hmean")}
    return found


if __name__ == "__main__":
    main()
