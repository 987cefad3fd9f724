#!/usr/bin/env python
"""Benchmark FastTCM-D2 components (in the spirit of detectron2's tools/benchmark.py).

Each task is a function in ``TASKS`` that returns result rows; ``--task`` picks tasks (repeatable,
``all`` for every one). The last line printed is one JSON object mapping a key per figure (task,
model, backend, threads, image size, ...) to its value: seconds, or a ratio where the key ends
in ``ratio``.

Tasks:
    ops: the rotated-box ops detectron2 compiles into ``detectron2._C``, called through detectron2's
        public entry points, so the figures are those of whichever implementation is installed
        (FastTCM-D2's own ops, or a compiled detectron2 ``_C``): ``pairwise_iou_rotated`` on
        2000 x 2000 boxes, ``nms_rotated`` on 2000 boxes, ``ROIAlignRotated`` forward + backward on
        512 rois of a 2 x 256 x 100 x 100 map (7 x 7 bins, sampling ratio 2). Median of ``--runs``.
    backbone: FastTCM-CR50 + FPN latency at 640 x 640, batch 1, eval, random RN50-size weights, for
        mode fasttcm (cached text embedding), mode tcm and the plain CLIP-RN50 + FPN (mode none),
        with the ratios fasttcm/tcm and fasttcm/plain. Median of ``--runs``.
    inference: per-image latency of the CR50 text detector and spotter (CPU-size recognizer) per
        backend (``--backend``), thread count (``--threads``) and input size (``--sizes``), and of
        the spotter against the number of words (``--instances-sweep``); keys
        ``<model>/<backend>/<threads>t/<size>[/n<words>]``. See ``benchmark_inference.py``.
    profile: torch.profiler's top ops and the time by part of the detector at the first
        ``--sizes`` entry, per backend (before / after ``optimize_for_inference``).
    fasttcm-speedup: fasttcm/tcm inference time of the DOTA model's backbone (K = 15 class
        prompts) at batch 1 and 4 (``--speedup-batch``), with the DOTA config's text branch (no
        LPG) and with the LPG, same weights, interleaved; plus the time by part of each mode.
        See ``benchmark_profile.py``.
    contention: the ``make demo`` training step alone and beside a steady 2-thread matmul process,
        in one run, and their ratio; see ``benchmark_contention.py``.

Examples::

    tools/benchmark.py --task ops --task backbone
    tools/benchmark.py --task ops --device cuda --runs 10 --json-out output/benchmark_ops.json
    tools/benchmark.py --task inference                      # everything: a long run
    tools/benchmark.py --task inference --sizes 800x600 --threads 2 --repeat 3 \
        --instances-sweep 0 10 100 --backend pytorch pytorch-opt
    tools/benchmark.py --task fasttcm-speedup --speedup-size 1024 --threads 2 --repeat 3
    tools/benchmark.py --task contention --contention-iters 30
"""

import fasttcm_ops.openmp_env  # noqa: F401  (first: OpenMP settings before torch loads)

# isort: split
import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from benchmark_contention import benchmark_contention
from benchmark_inference import BACKENDS, benchmark_inference, parse_size
from benchmark_profile import benchmark_fasttcm_speedup, benchmark_profile

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
    "inference": benchmark_inference,
    "profile": benchmark_profile,
    "fasttcm-speedup": benchmark_fasttcm_speedup,
    "contention": benchmark_contention,
}
# `--task all` (and no --task): the quick component tasks; the long ones are asked for by name.
DEFAULT_TASKS = ("ops", "backbone")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--task",
        action="append",
        choices=sorted(TASKS) + ["all"],
        help=f"task to run (repeatable); default and 'all': {', '.join(DEFAULT_TASKS)}",
    )
    parser.add_argument("--runs", type=int, default=5, help="ops/backbone: timed runs (>= 5)")
    parser.add_argument("--device", default="cpu", help="ops/backbone: torch device (cpu, cuda)")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        help="torch CPU threads: ops/backbone use the largest; inference, profile and "
        "fasttcm-speedup time each (default 1 2)",
    )
    parser.add_argument("--json-out", default=None, help="also write the rows to this JSON file")
    group = parser.add_argument_group("inference, profile, fasttcm-speedup")
    group.add_argument("--repeat", type=int, default=5, help="timed runs per figure (median)")
    group.add_argument("--warmup", type=int, default=1, help="untimed runs before them")
    group.add_argument(
        "--sizes",
        nargs="+",
        default=["800x600", "1280x720", "ic15"],
        help="input sizes WIDTHxHEIGHT, or ic15 (an IC15 frame at the IC15 config's test scale)",
    )
    group.add_argument(
        "--spotter-config",
        default="TextSpotting/fasttcm_cr50_fpn_spotter_ic15.yaml",
        help="spotter config (its detector is the detector timed), relative to "
        "projects/FastTCM/configs or absolute; its test resize defines the ic15 size",
    )
    group.add_argument(
        "--recognizer-config",
        default="TextRecognition/clip4str_tiny_synthetic_cpu.yaml",
        help="config whose MODEL.RECOGNIZER replaces the spotter's",
    )
    group.add_argument(
        "--models", nargs="+", choices=("detector", "spotter"), default=["detector", "spotter"]
    )
    group.add_argument(
        "--backend",
        nargs="+",
        choices=BACKENDS,
        default=None,
        help="pytorch (as the predictor runs it), pytorch-opt (BatchNorm folding + "
        "channels_last + inference_mode), pytorch-bf16 (pytorch-opt under bfloat16 autocast), "
        "onnxruntime (the ONNX export); default: all "
        "available",
    )
    group.add_argument(
        "--instances", type=int, default=10, help="words in the injected DB map of every image"
    )
    group.add_argument(
        "--instances-sweep",
        type=int,
        nargs="*",
        default=[0, 1, 10, 30, 100],
        help="spotter latency against these word counts (none: skip)",
    )
    group.add_argument("--sweep-size", default="800x600", help="input size of the sweep")
    group.add_argument("--top-ops", type=int, default=15, help="profile: ops listed per backend")
    group.add_argument(
        "--speedup-size", type=int, default=1024, help="fasttcm-speedup: square input side"
    )
    group.add_argument(
        "--speedup-batch", type=int, nargs="+", default=[1, 4], help="fasttcm-speedup: batches"
    )
    group.add_argument(
        "--speedup-full-model",
        action="store_true",
        help="fasttcm-speedup: also time the whole model (RPN and ROI heads included)",
    )
    group = parser.add_argument_group("contention")
    group.add_argument("--contention-iters", type=int, default=30, help="timed training steps")
    group.add_argument("--contention-warmup", type=int, default=5, help="untimed steps before")
    group.add_argument(
        "--contention-rounds",
        type=int,
        default=2,
        help="rounds of runs (every variant alone and contended; odd rounds reversed)",
    )
    group.add_argument(
        "--contention-variant",
        action="append",
        help="also measure the defaults with one torch thread: 1thread (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.runs < 5:
        parser.error("--runs must be at least 5 (figures are medians)")
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be >= 1 and --warmup >= 0")
    if args.threads is not None and min(args.threads) < 1:
        parser.error("--threads must be >= 1")
    if args.instances < 0 or any(n < 0 for n in args.instances_sweep):
        parser.error("--instances and --instances-sweep must be >= 0")
    for name in [*args.sizes, args.sweep_size]:
        try:
            parse_size(name, (0, 0))
        except ValueError as e:
            parser.error(str(e))
    if args.contention_iters < 1 or args.contention_rounds < 1:
        parser.error("--contention-iters and --contention-rounds must be >= 1")
    return args


def row_key(row: Dict) -> str:
    """The JSON key of a row: its own "key", else "<task>/<op>"."""
    return row.get("key") or f"{row['task']}/{row['op']}"


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(max(args.threads))
    else:
        args.threads = [1, 2]
    if not args.task or "all" in args.task:
        tasks = list(DEFAULT_TASKS)
    else:
        tasks = list(dict.fromkeys(args.task))
    rows = []
    for task in tasks:
        task_rows = TASKS[task](args)
        width = max((len(r["op"]) for r in task_rows), default=0)
        for r in task_rows:  # printed per task, so a long run shows its figures as it goes
            unit = "x" if r.get("unit") == "ratio" else "s"
            print(f"{r['task']:8s} {r['op']:{width}s} {r['seconds']:8.3f} {unit}   {r['size']}")
        sys.stdout.flush()
        rows.extend(task_rows)
    if args.json_out:
        from fasttcm.utils.atomic_io import atomic_write_text

        atomic_write_text(args.json_out, json.dumps(rows, indent=2) + "\n")
    print(json.dumps({row_key(r): round(r["seconds"], 6) for r in rows}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
