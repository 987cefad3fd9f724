"""``tools/benchmark.py --task inference`` on a tiny config: one timed run per figure, and the
last stdout line is the JSON object of every figure (keys: model/backend/threads/size)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
QUICK_SPOTTER = "quick_schedules/fasttcm_cr50_fpn_spotter_instant_test.yaml"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, "tools/benchmark.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_inference_task_prints_one_json_line_of_latencies():
    res = _run(
        "--task",
        "inference",
        "--spotter-config",
        QUICK_SPOTTER,
        "--recognizer-config",
        QUICK_SPOTTER,
        "--backend",
        "pytorch",
        "pytorch-opt",
        "pytorch-bf16",
        "--sizes",
        "128x96",
        "--threads",
        "1",
        "--repeat",
        "1",
        "--warmup",
        "0",
        "--instances",
        "2",
        "--instances-sweep",
        "0",
        "1",
        "--sweep-size",
        "128x96",
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    figures = json.loads(res.stdout.strip().splitlines()[-1])
    expected = {
        f"{model}/{backend}/1t/128x96"
        for model in ("detector", "spotter")
        for backend in ("pytorch", "pytorch-opt", "pytorch-bf16")
    } | {
        f"spotter/{backend}/1t/128x96/n{n}"
        for backend in ("pytorch", "pytorch-opt", "pytorch-bf16")
        for n in (0, 1)
    }
    assert set(figures) == expected
    assert all(isinstance(v, float) and 0 < v < 60 for v in figures.values())


def test_unknown_backend_and_bad_size_are_refused(capsys):
    sys.path.insert(0, str(REPO / "tools"))  # benchmark.py imports its sibling modules
    try:
        spec = importlib.util.spec_from_file_location(
            "fasttcm_benchmark", REPO / "tools/benchmark.py"
        )
        benchmark = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(benchmark)
    finally:
        sys.path.remove(str(REPO / "tools"))
    for argv, message in (
        (["--task", "inference", "--backend", "tensorrt"], "tensorrt"),
        (["--task", "inference", "--sizes", "big"], "WIDTHxHEIGHT"),
        (["--task", "inference", "--threads", "0"], "--threads"),
    ):
        with pytest.raises(SystemExit):
            benchmark.parse_args(argv)
        assert message in capsys.readouterr().err
