"""``tools/benchmark.py --task contention``: training step time alone and beside a competing
process, in one script.

The training step is the one of ``make demo`` (``tools/run_demo.py --task text``): the synthetic
CPU text detector (``TextDetection/fasttcm_cr50_fpn_dbnet_synthetic_cpu.yaml``), batch 4, on
``synthetic_text_train`` under ``$DETECTRON2_DATASETS`` (generated on first use). Each measurement
is a fresh child process (so environment settings read at start-up, like ``OMP_WAIT_POLICY``,
apply) that trains ``--contention-iters`` steps after ``--contention-warmup`` unmeasured ones, with
the thread defaults that ``tools/train_net.py`` applies (:mod:`fasttcm.utils.threads`), and
reports the median step time (data loading included, as detectron2's ``time`` metric).

The competitor is one process running a steady loop of 1024 x 1024 float32 matrix products on
2 torch threads, started with the environment the benchmark itself was started with (another
user's job). Runs alternate "alone" and "beside the competitor" for ``--contention-rounds``
rounds, so slow drifts of the machine's load hit both alike; the ratio is the median of the
contended steps over the median of the lone ones (fair share on a fully used machine: 2x).

Variants: ``default`` (the project's defaults, as ``tools/train_net.py`` applies them) and
``untuned`` (torch's and OpenMP's own defaults: the user's environment, no thread settings) are
always measured; ``--contention-variant 1thread`` adds the defaults with one torch thread.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = (
    REPO / "projects/FastTCM/configs/TextDetection/fasttcm_cr50_fpn_dbnet_synthetic_cpu.yaml"
)

#: variant name -> (environment of the child, whether the child applies the project's defaults:
#: ``fasttcm_ops.openmp_env`` imported before torch and ``configure_threads(cfg)``, as
#: ``tools/train_net.py`` does)
VARIANTS: Dict[str, tuple] = {
    "default": ({}, True),
    "untuned": ({}, False),
    "1thread": ({"FASTTCM_NUM_THREADS": "1"}, True),
    "spin20k": ({"GOMP_SPINCOUNT": "20000"}, True),
    "spin100k": ({"GOMP_SPINCOUNT": "100000"}, True),
}
#: variants measured by default (--contention-variant adds others)
DEFAULT_VARIANTS = ("default", "untuned")

COMPETITOR_CODE = (
    "import torch\n"
    "torch.set_num_threads(2)\n"
    "a = torch.randn(1024, 1024)\n"
    "while True:\n"
    "    a = torch.tanh(a @ a)\n"
)


def child_main(argv: List[str]) -> int:
    """Child process: train ``iters`` steps of the demo config, print one JSON line of step times.

    argv: ``[iters, warmup, apply_defaults (0/1), output_dir]``.
    """
    iters, warmup, apply_defaults, output_dir = int(argv[0]), int(argv[1]), argv[2] == "1", argv[3]
    if apply_defaults:
        import fasttcm_ops.openmp_env  # noqa: F401  (before torch, as tools/train_net.py)
    import torch

    from detectron2.config import get_cfg
    from detectron2.engine import SimpleTrainer
    from detectron2.utils.events import EventStorage

    from fasttcm import add_fasttcm_config, merge_config_file
    from fasttcm.engine import FastTCMTrainer
    from fasttcm.utils.threads import configure_threads

    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, str(DEMO_CONFIG))
    cfg.OUTPUT_DIR = output_dir
    cfg.SEED = 0
    settings = configure_threads(cfg) if apply_defaults else None
    cfg.freeze()
    torch.manual_seed(0)
    model = FastTCMTrainer.build_model(cfg)
    optimizer = FastTCMTrainer.build_optimizer(cfg, model)
    loader = FastTCMTrainer.build_train_loader(cfg)
    trainer = SimpleTrainer(model, loader, optimizer)
    times = []
    with EventStorage(0) as storage:
        for i in range(warmup + iters):
            start = time.perf_counter()
            trainer.iter = i
            trainer.run_step()
            storage.step()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    record = {
        "step_times": times,
        "torch_threads": torch.get_num_threads(),
        "num_workers": cfg.DATALOADER.NUM_WORKERS,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")
        + (
            f", GOMP_SPINCOUNT={os.environ['GOMP_SPINCOUNT']}"
            if "GOMP_SPINCOUNT" in os.environ
            else ""
        ),
        "cv2_threads": __import__("cv2").getNumThreads(),
        "defaults": None if settings is None else settings.torch_source,
    }
    print("CONTENTION_CHILD " + json.dumps(record), flush=True)
    return 0


def user_environment() -> Dict[str, str]:
    """This process's environment without what ``fasttcm_ops.openmp_env`` added to it (so
    "untuned" children and the competitor see the user's own settings)."""
    import fasttcm_ops.openmp_env as openmp_env

    env = dict(os.environ)
    if openmp_env.SET_BY_PROJECT:
        env.pop("OMP_WAIT_POLICY", None)
    return env


def _child_env(base: Dict[str, str], overrides: Dict[str, str]) -> Dict[str, str]:
    env = dict(base)
    env.update(overrides)
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return env


def _run_child(
    iters: int, warmup: int, variant: str, base_env: Dict[str, str], timeout: float
) -> Dict:
    overrides, apply_defaults = VARIANTS[variant]
    with tempfile.TemporaryDirectory(prefix="fasttcm_contention_") as out:
        res = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                str(iters),
                str(warmup),
                "1" if apply_defaults else "0",
                out,
            ],
            cwd=REPO,
            env=_child_env(base_env, overrides),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    lines = [line for line in res.stdout.splitlines() if line.startswith("CONTENTION_CHILD ")]
    if res.returncode != 0 or not lines:
        raise RuntimeError(
            f"contention child ({variant}) failed with status {res.returncode}:\n"
            f"{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
        )
    return json.loads(lines[-1][len("CONTENTION_CHILD ") :])


def start_competitor(base_env: Dict[str, str]) -> subprocess.Popen:
    """The competing process: a steady 2-thread matrix-product loop (stopped by the caller)."""
    env = dict(base_env)
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return subprocess.Popen(
        [sys.executable, "-c", COMPETITOR_CODE],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_competitor(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def benchmark_contention(args) -> List[Dict]:
    """Rows: median step time alone and contended per variant, and their ratio."""
    base_env = user_environment()
    variants = list(dict.fromkeys([*DEFAULT_VARIANTS, *(args.contention_variant or [])]))
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"--contention-variant: unknown {unknown}; choose from {sorted(VARIANTS)}")
    steps: Dict[tuple, List[float]] = {}
    info: Dict[str, Dict] = {}
    timeout = 60.0 + 30.0 * (args.contention_iters + args.contention_warmup)
    for round_index in range(args.contention_rounds):
        # odd rounds run in the reverse order, so a drifting machine load favours no run
        order = [(v, c) for v in variants for c in (False, True)]
        for variant, contended in order if round_index % 2 == 0 else order[::-1]:
            competitor = start_competitor(base_env) if contended else None
            try:
                if competitor is not None:
                    time.sleep(1.0)  # let the competitor reach its loop
                record = _run_child(
                    args.contention_iters,
                    args.contention_warmup,
                    variant,
                    base_env,
                    timeout,
                )
            finally:
                if competitor is not None:
                    stop_competitor(competitor)
            steps.setdefault((variant, contended), []).extend(record["step_times"])
            info[variant] = record
    rows = []
    for variant in variants:
        alone = statistics.median(steps[(variant, False)])
        contended = statistics.median(steps[(variant, True)])
        detail = (
            f"{info[variant]['torch_threads']} torch threads, "
            f"{info[variant]['num_workers']} loader workers, "
            f"OMP_WAIT_POLICY={info[variant]['omp_wait_policy'] or 'unset'}"
        )
        for name, label, value, unit in (
            ("alone", "step alone", alone, "s"),
            ("contended", "step beside 2-thread matmul", contended, "s"),
            ("ratio", "ratio contended/alone", contended / alone, "ratio"),
        ):
            rows.append(
                {
                    "task": "contention",
                    "op": f"{variant}: {label}",
                    "size": detail,
                    "seconds": value,
                    "unit": unit,
                    "key": f"contention/{variant}/{name}",
                }
            )
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return child_main(argv[1:])
    raise SystemExit("run through tools/benchmark.py --task contention")


if __name__ == "__main__":
    sys.exit(main())
