#!/usr/bin/env python
"""Pack a folder of word crops and its labels file into a scene-text-recognition LMDB.

The output is the standard STR layout (``num-samples``, ``image-%09d``, ``label-%09d``) that
``fasttcm.data.datasets.str_lmdb`` loads and PARSeq/CLIP4STR use. Image bytes are copied as they
are; missing and (unless ``--no-check``) undecodable or empty images are skipped and counted.
Every image path must lie inside ``--images``, with or without ``--no-check``: an absolute path, a
``..`` or a symbolic link leading out of it is an error naming the labels file and the line, and
nothing is written. The LMDB folder is written under a temporary name and renamed when complete.

Examples::

    # labels.txt: "relative/path.jpg<TAB>label" per line
    python tools/create_lmdb_dataset.py --images crops/ --labels crops/labels.txt \\
        --out $DETECTRON2_DATASETS/str_lmdb/train/real/my_set

    # ICDAR word-recognition ground truth: 'word_1.png, "label"' per line
    python tools/create_lmdb_dataset.py --images ch4_test_word_images_gt --format icdar \\
        --labels Challenge4_Test_Task3_GT.txt --out $DETECTRON2_DATASETS/str_lmdb/test/IC15_2077
"""

import argparse
import logging
import sys

from fasttcm.data.converters.source_files import ConversionError
from fasttcm.data.converters.str_lmdb import LABEL_FORMATS, convert_crops_to_lmdb


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--images", required=True, help="folder the image paths of the labels file are relative to"
    )
    parser.add_argument("--labels", required=True, help="labels file (see --format)")
    parser.add_argument("--out", required=True, help="LMDB folder to create")
    parser.add_argument(
        "--format", default="tsv", choices=LABEL_FORMATS, help="labels file format (default: tsv)"
    )
    parser.add_argument(
        "--no-check", action="store_true", help="do not decode images to skip broken ones"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        stats = convert_crops_to_lmdb(
            args.labels,
            args.images,
            args.out,
            label_format=args.format,
            check_images=not args.no_check,
            overwrite=args.overwrite,
        )
    except (ConversionError, FileExistsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"Wrote {stats.written} samples to {args.out}; skipped {stats.missing_image} missing and "
        f"{stats.unreadable_image} unreadable images"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
