#!/usr/bin/env python
"""`make demo` / `make dota-demo`: a whole FastTCM pipeline on generated data, on the CPU, nothing to download.

1. the synthetic splits are generated under $DETECTRON2_DATASETS (default ./datasets) the first time
   they are loaded (scene text: ``synthetic_text_{train,test}``; aerial: ``synthetic_aerial_*``,
   split into 1024 patches);
2. the CPU-sized config is trained from random weights with ``tools/train_net.py``, which evaluates
   the final model on the test split (text: ICDAR IoU protocol; aerial: DOTA Task-1 mAP on merged
   full images);
3. ``tools/demo.py`` draws the predictions on test images.

Extra ``KEY VALUE`` arguments go to training as config overrides, e.g.
``tools/run_demo.py --task text MODEL.FASTTCM.MODE none`` trains the same detector without the TCM
modules.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "projects/FastTCM/configs")

#: task -> (config, test images glob relative to $DETECTRON2_DATASETS, metric prefix, metric keys)
TASKS = {
    "text": (
        os.path.join(CONFIGS, "TextDetection/fasttcm_cr50_fpn_dbnet_synthetic_cpu.yaml"),
        "synthetic_text/test/images/*",
        "text_det",
        ("precision", "recall", "hmean"),
    ),
    "dota": (
        os.path.join(CONFIGS, "DOTA/fasttcm_cr50_fpn_rrcnn_synthetic_aerial_cpu.yaml"),
        "synthetic_aerial_split/ss1024/test/images/*",
        "dota",
        ("mAP50",),
    ),
}


def run(cmd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def last_eval(out_dir, prefix):
    """The last evaluation of `prefix` (percent) in metrics.json, written by detectron2's EvalHook."""
    path = os.path.join(out_dir, "metrics.json")
    found = None
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                vals = {k.split("/", 1)[1]: v for k, v in rec.items() if k.startswith(prefix + "/")}
                if vals:
                    found = vals
    return found


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", choices=sorted(TASKS), default="text")
    p.add_argument("--output-dir", default=None, help="default: output/demo_<task>")
    p.add_argument("--num-images", type=int, default=8, help="test images to draw")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides for training")
    args = p.parse_args()
    config, images_glob, prefix, keys = TASKS[args.task]
    out = args.output_dir or os.path.join(REPO, "output", f"demo_{args.task}")
    py = sys.executable
    start = time.time()
    run([py, "tools/train_net.py", "--config-file", config, "OUTPUT_DIR", out, *args.opts])
    train_minutes = (time.time() - start) / 60
    weights = os.path.join(out, "model_final.pth")
    metrics = last_eval(out, prefix)
    root = os.environ.get("DETECTRON2_DATASETS", os.path.join(REPO, "datasets"))
    images = sorted(glob.glob(os.path.join(root, images_glob)))[: args.num_images]
    vis_dir = os.path.join(out, "demo_images")
    if images:
        run([py, "tools/demo.py", "--config-file", config, "--input", *images,
             "--output", vis_dir, "--opts", "MODEL.WEIGHTS", weights, *args.opts])
    print()
    print(f"FastTCM-D2 {args.task} demo finished in {(time.time() - start) / 60:.1f} min "
          f"(data + training + evaluation: {train_minutes:.1f} min)")
    print(f"  checkpoint:    {weights}")
    print(f"  evaluation:    {os.path.join(out, 'inference')}")
    print(f"  drawn images:  {vis_dir}")
    if metrics:
        shown = "  ".join(f"{k} {metrics[k]:.2f}" for k in keys if k in metrics)
        print(f"  test split ({prefix}, %): {shown}")
    else:
        print("  no evaluation results found in metrics.json")


if __name__ == "__main__":
    main()
