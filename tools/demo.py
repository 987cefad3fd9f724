#!/usr/bin/env python
"""Run a FastTCM-D2 model on images and draw its predictions (detectron2's demo, for text and DOTA).

Examples::

    tools/demo.py --config-file CONFIG --input img1.jpg dir/ "glob/*.png" --output out/ \
        --opts MODEL.WEIGHTS output/x/model_final.pth MODEL.DEVICE cpu

As in detectron2's demo, config overrides follow ``--opts`` (in ``train_net.py`` they are
positional). Writes one PNG per input into the ``--output`` folder and ``predictions.json``::

    {"<input path>": {"status": "ok", "predictions": [...]},   # polygons or XYWHA rotated boxes
     "<input path>": {"status": "<error message>"}, ...}        # in original-image pixels

An image that cannot be read or run is reported, marked with its error and skipped; the others
go on, ``predictions.json`` is written (atomically) in every case, and the exit status is 1 when
any image failed. A drawn PNG never replaces one of the inputs.

Large images, with bounded memory:

* drawing: an image whose longer side exceeds ``--max-draw-side`` is drawn on a downscaled copy
  (matplotlib takes about 90 bytes per drawn pixel; ``predictions.json`` keeps original pixels);
* rotated-box models (DOTA) on scenes much larger than the model's test size (longer side above
  ``TILE_ABOVE`` times the patch size) run tiled, as the DOTA evaluation does: square patches of
  the test size (``min(INPUT.MIN_SIZE_TEST, INPUT.MAX_SIZE_TEST)``) overlapping by
  ``--tile-gap`` pixels (default: 200 per 1024, as the DOTA split) at the split's window
  origins (:mod:`fasttcm.data.dota_split`), padded like split patches, each run at its own
  resolution; detections are moved back to the image and merged by class-wise rotated NMS at
  ``TEST.DOTA.MERGE_NMS_THRESH`` (:mod:`fasttcm.evaluation.dota_merge`). ``--tile always`` /
  ``never`` force the choice.

Measured peak memory on a 12000 x 12000 PNG (CPU, quick-schedule text detector): 2.5 GB, of
which about 1 GB is the interpreter with torch and the model.

Images are read with the pixel limit ``INPUT.MAX_IMAGE_PIXELS`` (0: the reader's default for
text models, the aerial limit for rotated-box models).

``--backend onnxruntime --onnx DIR`` runs the graphs that ``tools/export_model.py --format onnx``
wrote to DIR instead of the PyTorch model (``MODEL.WEIGHTS`` is then not read; ``--threads`` sets
onnxruntime's intra-op threads); resizing, post-processing and drawing are the same, and so are
the polygons and transcriptions (docs/deployment.md).
"""

import fasttcm_ops.openmp_env  # noqa: F401  (first: OpenMP settings before torch loads)

# isort: split
import argparse
import glob
import json
import os
import sys
import time

import cv2
import numpy as np
import torch

from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog
from detectron2.structures import Instances, RotatedBoxes
from detectron2.utils.logger import setup_logger

from fasttcm import add_fasttcm_config, merge_config_file
from fasttcm.data.dota_patch_names import format_patch_name
from fasttcm.data.dota_split import SplitConfig, window_origins
from fasttcm.data.image_io import read_image
from fasttcm.data.pixel_limit import AERIAL_MAX_IMAGE_PIXELS, config_pixel_limit
from fasttcm.engine import FastTCMPredictor
from fasttcm.evaluation.dota_merge import merge_patch_detections
from fasttcm.utils.atomic_io import atomic_write_bytes, atomic_write_text
from fasttcm.utils.threads import configure_threads
from fasttcm.utils.visualizer import (
    FastTCMVisualizer,
    downscale_for_drawing,
    instances_to_records,
)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
ROTATED_BOX_ARCHITECTURES = ("FastTCMRotatedRCNN",)
TILE_ABOVE = 1.5  # tile when the longer side exceeds this many patch sizes
MAX_DRAW_SIDE = 2048  # default --max-draw-side: drawing takes ~90 bytes per pixel
NOT_PROCESSED = "not processed (the demo was interrupted)"


def get_parser():
    """The command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config-file", required=True, metavar="FILE")
    p.add_argument(
        "--input", nargs="+", required=True, help="image files, directories or glob patterns"
    )
    p.add_argument("--output", help="output folder (one PNG per input + predictions.json)")
    p.add_argument(
        "--confidence-threshold", type=float, default=0.0, help="hide predictions scored below this"
    )
    p.add_argument(
        "--max-draw-side",
        type=int,
        default=MAX_DRAW_SIDE,
        help="images with a longer side are drawn on a copy downscaled to it (0: never)",
    )
    p.add_argument(
        "--tile",
        choices=("auto", "always", "never"),
        default="auto",
        help="tiled inference of rotated-box models (auto: scenes much larger than a patch)",
    )
    p.add_argument(
        "--tile-gap",
        type=int,
        default=None,
        help="overlap of neighbouring patches in pixels (default: the DOTA split's ratio, "
        "200 for 1024 patches)",
    )
    p.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        default="torch",
        help="run the PyTorch model, or the ONNX export given by --onnx",
    )
    p.add_argument("--onnx", metavar="DIR", help="ONNX export folder (--backend onnxruntime)")
    p.add_argument(
        "--threads", type=int, default=None, help="onnxruntime intra-op threads (default: its own)"
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
    """get_cfg -> FastTCM keys -> the config file -> ``--opts``, frozen."""
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, args.config_file)
    cfg.merge_from_list(args.opts)
    configure_threads(cfg)  # fasttcm.utils.threads defaults (torch, OpenCV)
    cfg.freeze()
    return cfg


def tile_size(cfg) -> int:
    """Side of the square patches of tiled inference: the side the model tests a patch at."""
    return int(min(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST))


def tile_gap(size: int, gap) -> int:
    """The patch overlap: `gap` when given, else the single-scale DOTA split's share of `size`."""
    if gap is None:
        return SplitConfig.gap * size // SplitConfig.patch_size
    if not 0 <= gap < size:
        raise ValueError(f"--tile-gap must be in [0, {size}) for patches of {size}, got {gap}")
    return gap


def use_tiles(cfg, mode: str, height: int, width: int) -> bool:
    """Whether an image of this size is run tiled (``--tile`` `mode`, see the module docstring)."""
    if cfg.MODEL.META_ARCHITECTURE not in ROTATED_BOX_ARCHITECTURES or mode == "never":
        return False
    return mode == "always" or max(height, width) > TILE_ABOVE * tile_size(cfg)


def predict_tiled(predictor, image: np.ndarray, size: int, gap: int, nms_thresh: float):
    """Rotated-box predictions on a large BGR image, patch by patch, merged.

    Args:
        predictor: a :class:`FastTCMPredictor` of a rotated-box model.
        image: ``(H, W, 3)`` uint8 BGR; only one patch-sized copy is made at a time.
        size: patch side in pixels.
        gap: overlap of neighbouring patches in pixels.
        nms_thresh: rotated IoU at which the class-wise merge drops the lower-scored box.

    Returns:
        ``({"instances": Instances}, number of patches)``, the instances in image pixels.
    """
    height, width = image.shape[:2]
    padding = np.asarray(SplitConfig.padding_value, dtype=np.uint8)
    names, boxes, scores, classes = [], [], [], []
    patch = np.empty((size, size, 3), dtype=np.uint8)
    origins = [
        (x, y) for y in window_origins(height, size, gap) for x in window_origins(width, size, gap)
    ]
    for x0, y0 in origins:
        view = image[y0 : y0 + size, x0 : x0 + size]
        patch[...] = padding
        patch[: view.shape[0], : view.shape[1]] = view
        instances = predictor(patch)["instances"].to("cpu")
        names += [format_patch_name("scene", 1.0, x0, y0)] * len(instances)
        boxes.append(instances.pred_boxes.tensor.numpy().reshape(-1, 5))
        scores.append(instances.scores.numpy())
        classes.append(instances.pred_classes.numpy())
    merged = merge_patch_detections(
        names,
        np.concatenate(boxes),
        np.concatenate(scores),
        np.concatenate(classes),
        nms_thresh=nms_thresh,
    )
    result = Instances((height, width))
    result.pred_boxes = RotatedBoxes(torch.as_tensor(merged.boxes, dtype=torch.float32))
    result.scores = torch.as_tensor(merged.scores, dtype=torch.float32)
    result.pred_classes = torch.as_tensor(merged.classes, dtype=torch.int64)
    return {"instances": result}, len(origins)


def check_output_dir(output: str) -> None:
    """Create the ``--output`` folder; an existing file there (or on its way) is an error."""
    if os.path.exists(output) and not os.path.isdir(output):
        raise SystemExit(f"demo.py: error: --output {output} is an existing file, not a folder")
    try:
        os.makedirs(output, exist_ok=True)
    except OSError as e:
        raise SystemExit(f"demo.py: error: --output {output}: cannot create the folder ({e})")


def drawn_name(path: str, output: str, used: set, inputs: set) -> str:
    """A PNG path in `output` for input `path`: unique in this run, never one of the inputs."""
    stem = os.path.splitext(os.path.basename(path))[0]
    name, k = stem, 1
    while name in used or os.path.realpath(os.path.join(output, name + ".png")) in inputs:
        name, k = f"{stem}_{k}", k + 1
    used.add(name)
    return os.path.join(output, name + ".png")


def run_one(path, args, cfg, predictor, metadata, max_pixels, logger):
    """Predict and draw one image.

    Returns:
        ``(record for predictions.json, drawn RGB image)``.
    """
    image = read_image(path, format="BGR", max_pixels=max_pixels)  # the predictor takes BGR
    height, width = image.shape[:2]
    record = {"status": "ok"}
    start = time.perf_counter()
    if use_tiles(cfg, args.tile, height, width):
        size = tile_size(cfg)
        gap = tile_gap(size, args.tile_gap)
        preds, patches = predict_tiled(predictor, image, size, gap, cfg.TEST.DOTA.MERGE_NMS_THRESH)
        record["tiles"] = {"patches": patches, "size": size, "gap": gap}
    else:
        preds = predictor(image)
    instances = preds["instances"]
    logger.info(
        f"{path}: {len(instances)} detections in {time.perf_counter() - start:.2f}s"
        + (f" ({record['tiles']['patches']} patches)" if "tiles" in record else "")
    )
    class_names = metadata.get("thing_classes", None)
    record["predictions"] = instances_to_records(instances, args.confidence_threshold, class_names)
    small, scale = downscale_for_drawing(image, args.max_draw_side)
    del image
    if scale < 1.0:
        record["drawn_scale"] = scale
    visualizer = FastTCMVisualizer(small[:, :, ::-1], metadata)
    drawn = visualizer.draw_predictions(preds, args.confidence_threshold, coord_scale=scale)
    return record, drawn.get_image()


def main(argv=None):
    """Run the demo; returns ``{input path: record}`` as written to predictions.json."""
    args = get_parser().parse_args(argv)
    setup_logger(name="fasttcm")
    logger = setup_logger()
    if args.output:
        check_output_dir(args.output)
    elif not os.environ.get("DISPLAY"):
        raise SystemExit("--output is required when there is no display")
    cfg = setup_cfg(args)
    paths = expand_inputs(args.input)
    if not paths:
        raise SystemExit("no input images found")
    if args.backend == "onnxruntime":
        if not args.onnx:
            raise SystemExit("demo.py: error: --backend onnxruntime needs --onnx DIR")
        from fasttcm.deploy import OnnxPredictor

        predictor = OnnxPredictor(args.onnx, cfg=cfg, threads=args.threads)
    else:
        predictor = FastTCMPredictor(cfg)  # refuses missing or incomplete weights
    meta_name = (cfg.DATASETS.TEST or cfg.DATASETS.TRAIN or ["__unused"])[0]
    metadata = MetadataCatalog.get(meta_name)
    rotated = cfg.MODEL.META_ARCHITECTURE in ROTATED_BOX_ARCHITECTURES
    if rotated:
        try:
            tile_gap(tile_size(cfg), args.tile_gap)
        except ValueError as e:
            raise SystemExit(f"demo.py: error: {e}")
    max_pixels = config_pixel_limit(  # --opts INPUT.MAX_IMAGE_PIXELS N
        cfg.INPUT.MAX_IMAGE_PIXELS, AERIAL_MAX_IMAGE_PIXELS if rotated else None
    )
    inputs = {os.path.realpath(p) for p in paths}
    results = {p: {"status": NOT_PROCESSED} for p in paths}
    used = set()
    try:
        for path in paths:
            try:
                results[path], drawn = run_one(
                    path, args, cfg, predictor, metadata, max_pixels, logger
                )
            except Exception as e:  # one bad image is reported and skipped, never the run
                results[path] = {"status": f"{type(e).__name__}: {e}"}
                logger.error(f"{path}: skipped: {results[path]['status']}")
                continue
            if args.output:
                ok, png = cv2.imencode(".png", drawn[:, :, ::-1])
                if not ok:
                    raise IOError(f"cannot encode the drawing of {path} as PNG")
                atomic_write_bytes(drawn_name(path, args.output, used, inputs), png.tobytes())
            else:
                cv2.imshow("FastTCM-D2", drawn[:, :, ::-1])
                if cv2.waitKey(0) == 27:  # Esc: the images not shown are left out
                    results = {p: r for p, r in results.items() if r["status"] != NOT_PROCESSED}
                    break
    finally:
        if args.output:
            atomic_write_text(
                os.path.join(args.output, "predictions.json"), json.dumps(results, indent=1)
            )
            failed = [p for p, r in results.items() if r["status"] != "ok"]
            logger.info(
                f"wrote {len(paths) - len(failed)} drawing(s) and predictions.json to "
                f"{args.output}" + (f"; {len(failed)} image(s) failed: {failed}" if failed else "")
            )
    return results


if __name__ == "__main__":
    outcome = main()
    sys.exit(0 if all(r["status"] == "ok" for r in outcome.values()) else 1)
