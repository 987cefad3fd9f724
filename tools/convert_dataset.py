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

More datasets are added by adding an entry to
``fasttcm.data.converters.catalog.CONVERTERS``: the reader of the dataset's native files and its
splits.
"""

import argparse
import logging
import sys

from fasttcm.data.converters.catalog import CONVERTERS, convert


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="datasets: " + "; ".join(f"{k}: {v.summary}" for k, v in CONVERTERS.items()),
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
    try:
        outputs = convert(
            args.dataset,
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
