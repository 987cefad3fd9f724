#!/usr/bin/env python
"""`make demo` / `make dota-demo` / `make spotting-demo`: whole FastTCM pipelines on the CPU.

The data is generated and nothing is downloaded: every model starts from random weights.

* ``--task text`` (``make demo``): the DB text detector on ``synthetic_text_{train,test}``
  (ICDAR IoU protocol).
* ``--task dota`` (``make dota-demo``): the rotated R-CNN on ``synthetic_aerial_*`` cut into 1024
  patches: DOTA Task-1 mAP50 (the devkit's VOC07 AP) and COCO-style rotated AP, AP50, AP75, on
  merged full images and on the patches.
* ``--task recognition``: the CLIP4STR recognizer on ``synthetic_words_{train,test}`` (word
  accuracy, 36-character protocol).
* ``--task spotting`` (``make spotting-demo``): trains the detector (as ``text``) and the recognizer
  (as ``recognition``, plus words cut from generated scenes:
  ``TextRecognition/clip4str_tiny_spotting_words_cpu.yaml``) unless ``--detector-weights`` /
  ``--recognizer-weights`` give trained ones,
  joins them with ``tools/compose_spotter_weights.py``, fine-tunes the spotter jointly on
  ``synthetic_spotting_train`` and scores it end to end (no lexicon) on ``synthetic_spotting_test``.

Each training stage runs ``tools/train_net.py``, which generates the synthetic splits under
$DETECTRON2_DATASETS (default ./datasets) the first time they are loaded and evaluates the final
model on the test split; ``tools/demo.py`` then draws predictions on test images.

Extra ``KEY VALUE`` arguments go to the last training stage as config overrides, e.g.
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
from dataclasses import dataclass
from typing import List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "projects/FastTCM/configs")


@dataclass(frozen=True)
class Stage:
    """One training run: config, metric prefix in metrics.json, the keys to report, and further
    ``(label, prefix, keys)`` results of the same evaluation to report below them."""

    config: str
    prefix: str
    keys: Tuple[str, ...]
    more: Tuple[Tuple[str, str, Tuple[str, ...]], ...] = ()


DETECTOR = Stage(
    os.path.join(CONFIGS, "TextDetection/fasttcm_cr50_fpn_dbnet_synthetic_cpu.yaml"),
    "text_det",
    ("precision", "recall", "hmean"),
)
COCO_KEYS = ("AP", "AP50", "AP75")
ROTATED = Stage(
    os.path.join(CONFIGS, "DOTA/fasttcm_cr50_fpn_rrcnn_synthetic_aerial_cpu.yaml"),
    "dota",
    ("mAP50",),
    # DOTAEvaluator's other results (TEST.DOTA.COCO_AP, TEST.DOTA.PATCH_LEVEL)
    (
        ("merged, COCO-style rotated", "dota_coco", COCO_KEYS),
        ("patches, VOC07", "dota_patch", ("mAP50",)),
        ("patches, COCO-style rotated", "dota_patch_coco", COCO_KEYS),
    ),
)
RECOGNIZER = Stage(
    os.path.join(CONFIGS, "TextRecognition/clip4str_tiny_synthetic_cpu.yaml"),
    "str",
    ("accuracy", "one_minus_NED"),
)
# the spotting schedule's recognizer: the same model, also trained on words cut from scenes; its
# evaluation reads the words of synthetic_spotting_val
SPOTTING_RECOGNIZER = Stage(
    os.path.join(CONFIGS, "TextRecognition/clip4str_tiny_spotting_words_cpu.yaml"),
    "str",
    ("accuracy", "one_minus_NED"),
)
SPOTTER = Stage(
    os.path.join(CONFIGS, "TextSpotting/fasttcm_cr50_fpn_spotter_synthetic_cpu.yaml"),
    "e2e_none",
    ("precision", "recall", "hmean"),
)

#: task -> (final stage, test images to draw (glob relative to $DETECTRON2_DATASETS) or None)
TASKS = {
    "text": (DETECTOR, "synthetic_text/test/images/*"),
    "dota": (ROTATED, "synthetic_aerial_split/ss1024/test/images/*"),
    "recognition": (RECOGNIZER, None),
    "spotting": (SPOTTER, "synthetic_text/spotting_test/images/*"),
}


def run(cmd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def last_eval(out_dir, prefix):
    """The last evaluation of `prefix` (percent) in metrics.json, written by detectron2's
    EvalHook."""
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


def train(stage: Stage, out_dir: str, opts=()) -> Optional[dict]:
    """Train (and evaluate) `stage` into `out_dir`; returns its last evaluation (percent) or
    None."""
    run(
        [
            sys.executable,
            "tools/train_net.py",
            "--config-file",
            stage.config,
            "OUTPUT_DIR",
            out_dir,
            *opts,
        ]
    )
    return last_eval(out_dir, stage.prefix)


def report(name: str, stage: Stage, metrics: Optional[dict]) -> str:
    if not metrics:
        return f"  {name}: no evaluation results found in metrics.json"
    shown = "  ".join(f"{k} {metrics[k]:.2f}" for k in stage.keys if k in metrics)
    return f"  {name} ({stage.prefix}, %): {shown}"


def report_more(name: str, stage: Stage, out_dir: str) -> List[str]:
    """One line per ``stage.more`` result found in `out_dir`'s metrics.json (none missing)."""
    lines = []
    for label, prefix, keys in stage.more:
        metrics = last_eval(out_dir, prefix)
        if metrics:
            shown = "  ".join(f"{k} {metrics[k]:.2f}" for k in keys if k in metrics)
            lines.append(f"  {name}, {label} ({prefix}, %): {shown}")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", choices=sorted(TASKS), default="text")
    p.add_argument("--output-dir", default=None, help="default: output/demo_<task>")
    p.add_argument("--num-images", type=int, default=8, help="test images to draw")
    p.add_argument(
        "--detector-weights",
        default=None,
        help="spotting: a trained detector checkpoint instead of training one "
        "(e.g. output/demo_text/model_final.pth)",
    )
    p.add_argument(
        "--recognizer-weights",
        default=None,
        help="spotting: a trained recognizer checkpoint instead of training one",
    )
    p.add_argument(
        "opts", nargs=argparse.REMAINDER, help="config overrides for the last training stage"
    )
    args = p.parse_args()
    stage, images_glob = TASKS[args.task]
    out = args.output_dir or os.path.join(REPO, "output", f"demo_{args.task}")
    py = sys.executable
    start = time.time()
    lines = []
    opts = list(args.opts)
    if args.task == "spotting":
        parts = {}
        for name, part_stage, given in (
            ("detector", DETECTOR, args.detector_weights),
            ("recognizer", SPOTTING_RECOGNIZER, args.recognizer_weights),
        ):
            if given:
                parts[name] = given
                lines.append(f"  {name}: given, {given}")
                continue
            part_dir = os.path.join(out, name)
            lines.append(report(f"{name} alone", part_stage, train(part_stage, part_dir)))
            parts[name] = os.path.join(part_dir, "model_final.pth")
        init = os.path.join(out, "spotter_init.pth")
        run(
            [
                py,
                "tools/compose_spotter_weights.py",
                "--detector",
                parts["detector"],
                "--recognizer",
                parts["recognizer"],
                "--config-file",
                stage.config,
                "--output",
                init,
                "--overwrite",
                "--opts",
                *opts,
            ]
        )
        opts = ["MODEL.WEIGHTS", init, *opts]
        out = os.path.join(out, "spotter")
    metrics = train(stage, out, opts)
    train_minutes = (time.time() - start) / 60
    weights = os.path.join(out, "model_final.pth")
    root = os.environ.get("DETECTRON2_DATASETS", os.path.join(REPO, "datasets"))
    images = (
        sorted(glob.glob(os.path.join(root, images_glob)))[: args.num_images] if images_glob else []
    )
    vis_dir = os.path.join(out, "demo_images")
    if images:
        run(
            [
                py,
                "tools/demo.py",
                "--config-file",
                stage.config,
                "--input",
                *images,
                "--output",
                vis_dir,
                "--opts",
                "MODEL.WEIGHTS",
                weights,
                *args.opts,
            ]
        )
    print()
    print(
        f"FastTCM-D2 {args.task} demo finished in {(time.time() - start) / 60:.1f} min "
        f"(data + training + evaluation: {train_minutes:.1f} min)"
    )
    print(f"  checkpoint:    {weights}")
    print(f"  evaluation:    {os.path.join(out, 'inference')}")
    if images:
        print(f"  drawn images:  {vis_dir}")
    for line in lines:
        print(line)
    print(report("test split", stage, metrics))
    for line in report_more("test split", stage, out):
        print(line)


if __name__ == "__main__":
    main()
