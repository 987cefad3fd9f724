#!/usr/bin/env python
"""Convert a raw scene-text dataset into the project layout under $DETECTRON2_DATASETS.

Example (ICDAR 2015, official zips extracted into ~/raw/icdar2015)::

    python tools/convert_dataset.py icdar2015 --src ~/raw/icdar2015 --dst datasets/icdar2015

writes ``datasets/icdar2015/{train,test}.json``, ``datasets/icdar2015/{train,test}_images/`` and the
evaluation ground truth ``datasets/evaluation/icdar2015_gt/{train,test}/gt_<image stem>.txt``.
Existing outputs are never replaced unless ``--overwrite`` is given; every output is written to a
temporary name and renamed into place. Every image header is checked against the image reader's
pixel limit (``--max-image-pixels``), so no image that the mappers would refuse is converted.
The expected raw layout of each dataset is in ``datasets/README.md`` and in the docstring of its
converter module (``fasttcm.data.converters.<name>``); so is the frame (stored or displayed, EXIF
orientation) of its annotation coordinates.

More datasets are added by adding an entry to
``fasttcm.data.converters.catalog.CONVERTERS``: the reader of the dataset's native files and its
splits.

COCO format (``fasttcm.data.converters.coco_text``): ``--coco`` also writes each split as a COCO
JSON, ``DST/<split>.coco.json`` (``text`` fields, ``iscrowd = ignore``). One file converts either
way with the ``tococo`` / ``fromcoco`` commands, whose ``--src`` and ``--dst`` are JSON files::

    python tools/convert_dataset.py tococo --src datasets/totaltext/train.json --dst train.coco.json
    python tools/convert_dataset.py fromcoco --src adet/train.json --dst train.json --text-field rec
"""

import argparse
import logging
import math
import os
import sys

from fasttcm.data.converters.catalog import CONVERTERS, convert
from fasttcm.data.converters.coco_text import TEXT_FIELDS, convert_json_file
from fasttcm.data.pixel_limit import DEFAULT_MAX_IMAGE_PIXELS, using_max_image_pixels

COCO_COMMANDS = ("tococo", "fromcoco")  # one-file conversions, not raw datasets


def pixel_limit(text: str):
    """``--max-image-pixels`` value: a positive integer, ``inf`` (no limit) or 0 (the default).

    Returns:
        The limit (an int or ``math.inf``), or None for 0.
    """
    if text.strip().lower() == "inf":
        return math.inf
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 or 'inf', got {text!r}")
    return value or None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="datasets: " + "; ".join(f"{k}: {v.summary}" for k, v in CONVERTERS.items()),
    )
    parser.add_argument(
        "dataset",
        choices=sorted(CONVERTERS) + list(COCO_COMMANDS),
        help="which raw dataset --src holds, or tococo / fromcoco: convert the one JSON --src "
        "into the JSON --dst (project text JSON -> COCO, or COCO -> project text JSON)",
    )
    parser.add_argument(
        "--src",
        required=True,
        help="folder holding the extracted raw dataset (a JSON file for tococo / fromcoco)",
    )
    parser.add_argument(
        "--dst", required=True, help="output folder, e.g. $DETECTRON2_DATASETS/icdar2015"
    )
    parser.add_argument(
        "--gt-dir",
        default=None,
        help="root of the evaluation ground truth "
        "(default: <parent of DST>/evaluation/<DST name>_gt)",
    )
    parser.add_argument(
        "--images",
        choices=("copy", "symlink"),
        default="copy",
        help="copy the images into DST/<split>_images, or symlink them (saves space; the raw "
        "folder must then stay in place)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument(
        "--coco",
        action="store_true",
        help="also write each split as a COCO JSON, DST/<split>.coco.json (text fields, "
        "iscrowd=1 for don't-care regions)",
    )
    parser.add_argument(
        "--text-field",
        choices=TEXT_FIELDS,
        default="text",
        help="fromcoco: read transcriptions from 'text' strings or AdelaiDet 'rec' indices",
    )
    parser.add_argument(
        "--charset",
        default=None,
        help="fromcoco --text-field rec: the characters of indices 0..n-1 (default: "
        "AdelaiDet's 95 printable ASCII characters, space first)",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=pixel_limit,
        default=None,
        metavar="N",
        help="refuse images with more than N pixels (width x height), a guard against "
        "decompression bombs; 'inf' for no limit; default 0: the image reader's limit "
        f"($FASTTCM_MAX_IMAGE_PIXELS, else {DEFAULT_MAX_IMAGE_PIXELS}). Train with the same "
        "INPUT.MAX_IMAGE_PIXELS",
    )
    return parser


def convert_coco(args) -> int:
    """The ``tococo`` / ``fromcoco`` commands: one JSON file converted into another."""
    try:
        out = convert_json_file(
            args.dataset,
            args.src,
            args.dst,
            overwrite=args.overwrite,
            text_field=args.text_field,
            charset=args.charset,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"convert_dataset.py {args.dataset}: error: {e}", file=sys.stderr)
        return 1
    print(
        f"{args.dataset}: {len(out['images'])} images, {len(out['annotations'])} instances "
        f"-> {args.dst}"
    )
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(message)s")
    if args.dataset in COCO_COMMANDS:
        return convert_coco(args)
    try:
        with using_max_image_pixels(args.max_image_pixels):
            outputs = convert(
                args.dataset,
                args.src,
                args.dst,
                gt_root=args.gt_dir,
                image_mode=args.images,
                overwrite=args.overwrite,
            )
            for out in outputs.values() if args.coco else ():
                coco_file = os.path.splitext(out.json_file)[0] + ".coco.json"
                convert_json_file("tococo", out.json_file, coco_file, overwrite=args.overwrite)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"convert_dataset.py {args.dataset}: error: {e}", file=sys.stderr)
        return 1
    for out in outputs.values():
        print(
            f"{args.dataset} {out.split}: {out.num_images} images, {out.num_annotations} instances "
            f"({out.num_ignored} don't care) -> {out.json_file}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
