#!/usr/bin/env python
"""Benchmark FastTCM-D2 components (in the spirit of detectron2's tools/benchmark.py).

Each task is a function in ``TASKS`` that returns result rows; ``--task`` picks tasks (repeatable,
``all`` for every one). Every figure is the median wall-clock time, in seconds, of ``--runs`` runs
after one warm-up run.

Tasks:
    ops: the rotated-box ops detectron2 compiles into ``detectron2._C``, called through detectron2's
        public entry points, so the figures are those of whichever implementation is installed
        (FastTCM-D2's own ops, or a compiled detectron2 ``_C``): ``pairwise_iou_rotated`` on
        2000 x 2000 boxes, ``nms_rotated`` on 2000 boxes, ``ROIAlignRotated`` forward + backward on
        512 rois of a 2 x 256 x 100 x 100 map (7 x 7 bins, sampling ratio 2).
    backbone: FastTCM-CR50 + FPN latency at 640 x 640, batch 1, eval, random RN50-size weights, for
        mode fasttcm (cached text embedding), mode tcm and the plain CLIP-RN50 + FPN (mode none),
        with the ratios fasttcm/tcm and fasttcm/plain.

Examples::

    tools/benchmark.py --task ops --task backbone
    tools/benchmark.py --task ops --device cuda --runs 10 --json-out output/benchmark_ops.json
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from detectron2.layers import ROIAlignRotated, nms_rotated
from detectron2.layers.rotated_boxes import pairwise_iou_rotated

BASE_CONFIG = (
    Path(__file__).resolve().parents[1] / "projects/FastTCM/configs/Base-FastTCM-CR50-FPN.yaml"
)


def median_seconds(fn: Callable[[], object], runs: int, device: torch.device) -> float:
    """Median wall-clock seconds of ``runs`` calls of ``fn`` after one warm-up call."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()
    sync()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_rotated_boxes(
    n: int, image_size: float, min_size: float, max_size: float, gen: torch.Generator
) -> torch.Tensor:
    """(n, 5) XYWHA boxes: centres uniform over the image, sides uniform in [min, max], angles
    uniform in [-180, 180) degrees."""
    return torch.cat(
        [
            torch.rand(n, 2, generator=gen) * image_size,
            torch.rand(n, 2, generator=gen) * (max_size - min_size) + min_size,
            torch.rand(n, 1, generator=gen) * 360 - 180,
        ],
        dim=1,
    )


def clustered_rotated_boxes(n: int, objects: int, gen: torch.Generator) -> torch.Tensor:
    """(n, 5) proposal-like boxes: jittered copies of ``objects`` random boxes, so most boxes
    overlap several others (the dense case for NMS)."""
    centres = random_rotated_boxes(objects, 1024, 16, 256, gen)
    boxes = centres[torch.randint(0, objects, (n,), generator=gen)]
    jitter = torch.randn(n, 5, generator=gen) * torch.tensor([6.0, 6.0, 8.0, 8.0, 5.0])
    boxes = boxes + jitter
    boxes[:, 2:4] = boxes[:, 2:4].clamp(min=4)
    return boxes


def benchmark_ops(args: argparse.Namespace) -> List[Dict]:
    import detectron2._C

    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    impl = (
        "FastTCM-D2 ops"
        if getattr(detectron2._C, "FASTTCM_PROJECT_OPS", False)
        else "compiled detectron2._C"
    )
    rows = []

    boxes = random_rotated_boxes(2000, 1024, 8, 256, gen).to(device)
    ious = pairwise_iou_rotated(boxes, boxes)
    overlap = float((ious > 0).float().mean())
    rows.append(
        {
            "op": "pairwise_iou_rotated",
            "size": f"2000 x 2000 random boxes ({overlap:.1%} overlap)",
            "seconds": median_seconds(
                lambda: pairwise_iou_rotated(boxes, boxes), args.runs, device
            ),
        }
    )

    scores = torch.rand(2000, generator=gen).to(device)
    for layout, nms_boxes in (
        ("random", boxes),
        ("clustered", clustered_rotated_boxes(2000, 100, gen).to(device)),
    ):
        kept = len(nms_rotated(nms_boxes, scores, 0.5))
        rows.append(
            {
                "op": "nms_rotated",
                "size": f"2000 {layout} boxes, IoU 0.5 ({kept} kept)",
                "seconds": median_seconds(
                    lambda: nms_rotated(nms_boxes, scores, 0.5), args.runs, device
                ),
            }
        )

    features = torch.randn(2, 256, 100, 100, generator=gen).to(device).requires_grad_(True)
    rois = torch.cat(
        [
            torch.randint(0, 2, (512, 1), generator=gen).float(),
            random_rotated_boxes(512, 400, 16, 160, gen),
        ],
        dim=1,
    ).to(device)
    pooler = ROIAlignRotated((7, 7), spatial_scale=0.25, sampling_ratio=2)
    upstream = torch.randn(512, 256, 7, 7, generator=gen).to(device)

    def roi_align_forward_backward():
        features.grad = None
        pooler(features, rois).backward(upstream)

    rows.append(
        {
            "op": "ROIAlignRotated fwd+bwd",
            "size": "512 rois, 2x256x100x100 map, 7x7, sampling 2",
            "seconds": median_seconds(roi_align_forward_backward, args.runs, device),
        }
    )
    for row in rows:
        row.update(
            task="ops",
            implementation=impl,
            device=str(device),
            runs=args.runs,
            threads=torch.get_num_threads(),
        )
    return rows


def build_fasttcm_backbone(mode: str, device: torch.device) -> torch.nn.Module:
    """Full-size FastTCM-CR50 + FPN (RN50 widths, random weights) in eval mode."""
    from detectron2.config import get_cfg
    from detectron2.layers import ShapeSpec
    from detectron2.modeling import build_backbone

    from fasttcm import add_fasttcm_config, merge_config_file

    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, str(BASE_CONFIG))
    cfg.MODEL.FASTTCM.MODE = mode
    backbone = build_backbone(cfg, ShapeSpec(channels=3))
    return backbone.to(device).eval()


def benchmark_backbone(args: argparse.Namespace) -> List[Dict]:
    """Per-image latency of FastTCM-CR50 + FPN at 640 x 640, batch 1, eval mode, random weights:
    mode fasttcm (text embedding cached after the warm-up), mode tcm (text encoder per image),
    and the plain CLIP-RN50 + FPN without TCM modules (mode none)."""
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(1, 3, 640, 640, generator=gen).to(device)
    rows = []
    for mode, label in (
        ("fasttcm", "fasttcm (cached text)"),
        ("tcm", "tcm"),
        ("none", "plain CLIP-RN50 + FPN"),
    ):
        backbone = build_fasttcm_backbone(mode, device)
        with torch.no_grad():
            seconds = median_seconds(lambda: backbone.forward_with_aux(image), args.runs, device)
        rows.append(
            {
                "task": "backbone",
                "op": label,
                "mode": mode,
                "size": "1x3x640x640, RN50 widths",
                "seconds": seconds,
            }
        )
        backbone = None  # free the model before the next one is built
    t = {r["mode"]: r["seconds"] for r in rows}
    rows.append(
        {
            "task": "backbone",
            "op": "ratio fasttcm/tcm",
            "size": "",
            "seconds": t["fasttcm"] / t["tcm"],
            "unit": "ratio",
        }
    )
    rows.append(
        {
            "task": "backbone",
            "op": "ratio fasttcm/plain",
            "size": "",
            "seconds": t["fasttcm"] / t["none"],
            "unit": "ratio",
        }
    )
    return rows


# Task name -> function(args) returning rows of {"op", "size", "seconds", ...}.
TASKS: Dict[str, Callable[[argparse.Namespace], List[Dict]]] = {
    "ops": benchmark_ops,
    "backbone": benchmark_backbone,
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--task",
        action="append",
        choices=sorted(TASKS) + ["all"],
        help="task to run (repeatable); default: all",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (>= 5)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json-out", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.runs < 5:
        parser.error("--runs must be at least 5 (figures are medians)")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tasks = sorted(TASKS) if not args.task or "all" in args.task else list(dict.fromkeys(args.task))
    rows = []
    for task in tasks:
        rows.extend(TASKS[task](args))
    width = max(len(r["op"]) for r in rows)
    for r in rows:
        unit = "x" if r.get("unit") == "ratio" else "s"
        print(f"{r['task']:8s} {r['op']:{width}s} {r['seconds']:8.3f} {unit}   {r['size']}")
    if args.json_out:
        from fasttcm.utils.atomic_io import atomic_write_text

        atomic_write_text(args.json_out, json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
