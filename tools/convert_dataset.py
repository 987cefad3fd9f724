#!/usr/bin/env python
"""Convert a raw scene-text dataset into the project layout under $DETECTRON2_DATASETS.

Example (ICDAR 2015, official zips extracted into ~/raw/icdar2015)::

    python tools/convert_dataset.py icdar2015 --src ~/raw/icdar2015 --dst datasets/icdar2015

writes ``datasets/icdar2015/{train,test}.json``, ``datasets/icdar2015/{train,test}_images/`` and the
evaluation ground truth ``datasets/evaluation/icdar2015_gt/{train,test}/gt_<image stem>.txt``.
Existing outputs are never replaced unless ``--overwrite`` is given; every output is written to a
temporary name and renamed into place. The expected raw layout of each dataset is in
``datasets/README.md`` and in the docstring of its converter module
(``fasttcm.data.converters.<name>``).

More datasets are added by adding an entry to ``CONVERTERS``: a function
``convert(src, dst, *, gt_root, image_mode, overwrite)``.
"""

import argparse
import logging
import sys

from fasttcm.data.converters import art, ctw1500, icdar2015, msra_td500, synthtext, totaltext

# CLI name -> (converter, one-line description)
CONVERTERS = {
    "icdar2015": (icdar2015.convert, "ICDAR 2015 incidental text (gt_img_<n>.txt quadrilaterals)"),
    "totaltext": (
        totaltext.convert,
        "Total-Text (poly_gt_<img>.txt 'x: [[..]], y: [[..]]' polygons)",
    ),
    "ctw1500": (ctw1500.convert, "SCUT-CTW1500 (XML train labels, '####' test labels)"),
    "td500": (msra_td500.convert, "MSRA-TD500 (.gt rotated rectangles, difficult -> ignore)"),
    "art": (art.convert, "ICDAR 2019 ArT (train_labels.json polygons)"),
    "synthtext": (
        synthtext.convert,
        "SynthText 800k (gt.mat word quads; train only, no evaluation GT; --images symlink "
        "recommended)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="datasets: " + "; ".join(f"{k}: {v[1]}" for k, v in CONVERTERS.items()),
    )
    parser.add_argument("dataset", choices=sorted(CONVERTERS), help="which raw dataset --src holds")
    parser.add_argument("--src", required=True, help="folder holding the extracted raw dataset")
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
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(message)s")
    convert, _ = CONVERTERS[args.dataset]
    try:
        outputs = convert(
            args.src,
            args.dst,
            gt_root=args.gt_dir,
            image_mode=args.images,
            overwrite=args.overwrite,
        )
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
