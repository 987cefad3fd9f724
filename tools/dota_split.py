#!/usr/bin/env python
"""Cut DOTA images and labels into patches, driven by a split config (the devkit's ``splitbase``).

Example (single-scale trainval of DOTA-v1.0 under $DETECTRON2_DATASETS, 4 worker processes)::

    python tools/dota_split.py --config datasets/dota_split_configs/ss_trainval.json \\
        --version dota10 --workers 4

reads ``ROOT/dota10/{train,val}/{images,labelTxt}`` (the config's ``source_splits``) and writes
``ROOT/dota10_split/ss1024/trainval/{images,labelTxt}`` (its ``output``), the layout the
registered ``dota10_trainval_ss1024`` split expects. ``--src`` and ``--out`` split other folders
(e.g. a synthetic aerial set): each ``--src`` is a folder holding ``images/`` and, when labelled,
``labelTxt/``.

Config keys (``datasets/dota_split_configs/{ss,ms}_{train,val,trainval,test}.json``):
``patch_size`` (1024), ``gap`` (200 single-scale, 500 multi-scale), ``rates`` ([1.0] or
[0.5, 1.0, 1.5]), ``iof_thr`` (0.7), ``padding_value`` (BGR), ``image_ext``, ``source_splits``,
``output``. Patches are named ``<image>__<rate>__<x>___<y>``. A config's ``output`` must stay
inside ``--root`` (no absolute path, no ``..`` or link leading out); ``--out`` is used as given.
"""

import argparse
import logging
import os
import sys


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="split config JSON")
    parser.add_argument(
        "--version", default="dota10", choices=("dota10", "dota15"), help="dataset and class list"
    )
    parser.add_argument(
        "--root",
        default=os.environ.get("DETECTRON2_DATASETS", "datasets"),
        help="dataset root (default: $DETECTRON2_DATASETS or ./datasets)",
    )
    parser.add_argument(
        "--src", nargs="+", default=None, help="source folders (override the config's splits)"
    )
    parser.add_argument("--out", default=None, help="output folder (overrides the config's)")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0: this one)")
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from fasttcm.data.dota_split import load_split_config, split_dataset, split_output_dir

    try:
        config = load_split_config(args.config)
        sources = args.src or [
            os.path.join(args.root, args.version, s) for s in config.source_splits
        ]
        if not sources:
            raise ValueError(f"{args.config}: no source_splits, and no --src given")
        out = args.out or split_output_dir(config, args.root, args.version, args.config)
        labelled = [os.path.isdir(os.path.join(s, "labelTxt")) for s in sources]
        stats = split_dataset(
            [os.path.join(s, "images") for s in sources],
            [os.path.join(s, "labelTxt") for s in sources] if all(labelled) else None,
            out,
            config,
            version=args.version,
            workers=args.workers,
        )
    except (ValueError, OSError) as e:
        print(f"dota_split.py: error: {e}", file=sys.stderr)
        return 1
    print(f"{stats['images']} images -> {stats['patches']} patches in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
