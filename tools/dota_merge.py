#!/usr/bin/env python
"""Merge patch-level DOTA Task-1 results into full-image ones, as the DOTA devkit's merge step.

Example::

    python tools/dota_merge.py --input out/patch_task1 --output out/task1 [--nms-thresh 0.1]

``--input`` holds ``Task1_<class>.txt`` files whose image names are patch names
(``<image>__<rate>__<x>___<y>``); every detection is moved back to its full image (add x, y,
divide by rate), class-wise rotated NMS per image drops boxes overlapping a higher-scoring one by
IoU > ``--nms-thresh`` (the devkit's 0.1), and the kept quadrilaterals are written to
``--output/Task1_<class>.txt``, ready for ``tools/evaluate.py --task dota`` or the DOTA server.
"""

import argparse
import logging
import sys


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", required=True, help="folder of patch-level Task1_<class>.txt")
    parser.add_argument("--output", required=True, help="folder for the merged Task1_<class>.txt")
    parser.add_argument(
        "--nms-thresh", type=float, default=0.1, help="rotated NMS IoU threshold (devkit: 0.1)"
    )
    parser.add_argument(
        "--classes",
        choices=("dota10", "dota15"),
        default=None,
        help="write a file for every class of this version (default: the classes found in --input)",
    )
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from fasttcm.data.datasets.dota_meta import dota_class_names
    from fasttcm.evaluation.dota_merge import merge_task1_dir

    try:
        classes = dota_class_names(args.classes) if args.classes else None
        merged = merge_task1_dir(args.input, args.output, classes, nms_thresh=args.nms_thresh)
    except (ValueError, OSError) as e:
        print(f"dota_merge.py: error: {e}", file=sys.stderr)
        return 1
    print(f"{len(merged)} merged detections written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
