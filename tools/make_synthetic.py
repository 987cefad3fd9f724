#!/usr/bin/env python
"""Write a synthetic dataset to disk (data that needs no download; see
projects/FastTCM/docs/design_choices.md).

Example::

    python tools/make_synthetic.py --kind text --num 300 --out datasets/synthetic_text/train \\
        --seed 0
    python tools/make_synthetic.py --kind text --num 100 --out /tmp/hard --seed 1 --size 512 512 \\
        --set difficulty=hard --set curved_prob=0.5 --workers 2

``--kind text`` writes ``OUT/images/*.jpg`` and ``OUT/annotations.json`` in the project's text-JSON
schema (polygons, transcriptions, ``ignore`` for "###" don't-care regions).
``--kind words`` writes word crops for recognition as an STR LMDB folder ``OUT`` (``data.mdb``;
``--size`` is ignored: crops keep their rendering size).

Each entry of :data:`KINDS` is a generator with the signature
``fn(out_dir, num_images, seed, image_size=(H, W), *, num_workers=0, **options) -> Path`` that
writes the dataset and returns the path of its annotation file; ``--set KEY=VALUE`` pairs become
``**options`` (values are Python literals, e.g. ``text_height=(10,40)``, or plain strings).
"""

import argparse
import ast
import logging
import sys
import time
from typing import Callable, Dict

from fasttcm.data.synthetic.aerial import make_aerial_dataset
from fasttcm.data.synthetic.scene_text_dataset import generate_text_dataset
from fasttcm.data.synthetic.word_crops import generate_word_crops

#: Synthetic dataset kinds by name: generator functions with the signature described above.
KINDS: Dict[str, Callable] = {
    "text": generate_text_dataset,
    "aerial": make_aerial_dataset,
    "words": generate_word_crops,
}


def parse_option(item: str):
    """Split "KEY=VALUE" into (key, value), reading VALUE as a Python literal when it is one."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE, got {item!r}")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key.strip(), value


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--kind", required=True, choices=sorted(KINDS), help="kind of synthetic data"
    )
    parser.add_argument("--num", required=True, type=int, help="number of images")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=(320, 320),
        metavar=("H", "W"),
        help="image height and width in pixels",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="worker processes (0: render in this process); the output does not depend on it",
    )
    parser.add_argument(
        "--set",
        dest="options",
        type=parse_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="generator option, repeatable (e.g. difficulty=hard)",
    )
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    path = KINDS[args.kind](
        args.out,
        args.num,
        args.seed,
        image_size=tuple(args.size),
        num_workers=args.workers,
        **dict(args.options),
    )
    elapsed = time.perf_counter() - start
    print(
        f"Wrote {args.num} '{args.kind}' images and {path} in {elapsed:.1f} s "
        f"({args.num / max(elapsed, 1e-9):.1f} images/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
