#!/usr/bin/env python
"""Run a FastTCM-D2 model on images and draw its predictions (detectron2's demo, for text and DOTA).

Examples::

    tools/demo.py --config-file CONFIG --input img1.jpg dir/ "glob/*.png" --output out/ \
        --opts MODEL.WEIGHTS output/x/model_final.pth MODEL.DEVICE cpu

As in detectron2's demo, config overrides follow ``--opts`` (in ``train_net.py`` they are
positional). Writes one PNG per input into ``--output`` and ``predictions.json`` with every
prediction (polygons or XYWHA rotated boxes in original-image pixels, scores, texts, classes).
"""

import argparse
import glob
import json
import os
import sys
import time

from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog
from detectron2.utils.logger import setup_logger

from fasttcm import add_fasttcm_config, merge_config_file
from fasttcm.data.image_io import read_image
from fasttcm.engine import FastTCMPredictor
from fasttcm.utils.atomic_io import atomic_write_text
from fasttcm.utils.visualizer import FastTCMVisualizer, instances_to_records

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config-file", required=True, metavar="FILE")
    p.add_argument(
        "--input", nargs="+", required=True, help="image files, directories or glob patterns"
    )
    p.add_argument("--output", help="output directory (one PNG per input + predictions.json)")
    p.add_argument(
        "--confidence-threshold", type=float, default=0.0, help="hide predictions scored below this"
    )
    p.add_argument(
        "--opts", default=[], nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs"
    )
    return p


def expand_inputs(inputs):
    """Files, directories (their images, sorted) and globs -> sorted unique list of image paths."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            paths += [
                os.path.join(item, f)
                for f in sorted(os.listdir(item))
                if f.lower().endswith(IMAGE_EXTS)
            ]
        elif os.path.isfile(item):
            paths.append(item)
        else:
            matched = sorted(glob.glob(os.path.expanduser(item)))
            if not matched:
                raise FileNotFoundError(f"--input {item!r}: no such file, directory or glob match")
            paths += [m for m in matched if m.lower().endswith(IMAGE_EXTS)]
    seen, out = set(), []
    for p in paths:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def setup_cfg(args):
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    return cfg


def main(argv=None):
    args = get_parser().parse_args(argv)
    setup_logger(name="fasttcm")
    logger = setup_logger()
    cfg = setup_cfg(args)
    paths = expand_inputs(args.input)
    if not paths:
        raise SystemExit("no input images found")
    if not args.output and not os.environ.get("DISPLAY"):
        raise SystemExit("--output is required when there is no display")
    predictor = FastTCMPredictor(cfg)  # refuses missing or incomplete weights
    meta_name = (cfg.DATASETS.TEST or cfg.DATASETS.TRAIN or ["__unused"])[0]
    metadata = MetadataCatalog.get(meta_name)
    class_names = metadata.get("thing_classes", None)
    all_preds = {}
    names_used = set()
    for path in paths:
        img = read_image(path, format="BGR")  # DefaultPredictor takes BGR and converts to RGB
        start = time.perf_counter()
        preds = predictor(img)
        elapsed = time.perf_counter() - start
        inst = preds["instances"]
        logger.info(f"{path}: {len(inst)} detections in {elapsed:.2f}s")
        all_preds[path] = instances_to_records(inst, args.confidence_threshold, class_names)
        vis = FastTCMVisualizer(img[:, :, ::-1], metadata)
        out = vis.draw_predictions(preds, args.confidence_threshold)
        if args.output:
            stem = os.path.splitext(os.path.basename(path))[0]
            name, k = stem, 1
            while name in names_used:  # same file name from different folders: keep both
                name, k = f"{stem}_{k}", k + 1
            names_used.add(name)
            os.makedirs(args.output, exist_ok=True)
            out.save(os.path.join(args.output, name + ".png"))
        else:
            import cv2

            cv2.imshow("FastTCM-D2", out.get_image()[:, :, ::-1])
            if cv2.waitKey(0) == 27:
                break
    if args.output:
        atomic_write_text(
            os.path.join(args.output, "predictions.json"), json.dumps(all_preds, indent=1)
        )
        logger.info(f"wrote {len(paths)} image(s) and predictions.json to {args.output}")
    return all_preds


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
