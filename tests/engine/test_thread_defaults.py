"""Thread defaults (fasttcm.utils.threads) and the OpenMP environment (fasttcm_ops.openmp_env):
automatic choices from the available CPUs, and every documented override respected."""

import os
import subprocess
import sys

import pytest
import torch

from fasttcm.utils import threads
from fasttcm.utils.threads import (
    ENV_NUM_THREADS,
    ENV_NUM_WORKERS,
    ENV_OPENCV_THREADS,
    available_cpus,
    configure_threads,
    resolve_thread_settings,
)
from fasttcm_ops import openmp_env
from tests.common import QUICK_DETECTOR, load_config


@pytest.fixture
def restore_threads():
    import cv2

    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)


def test_available_cpus_is_the_affinity_mask():
    if hasattr(os, "sched_getaffinity"):
        assert available_cpus() == len(os.sched_getaffinity(0))
    assert available_cpus() >= 1


def test_auto_uses_the_available_cpus_shared_among_processes():
    s = resolve_thread_settings(environ={}, cpus=8)
    assert (s.torch_threads, s.torch_source, s.opencv_threads) == (8, "auto", 1)
    assert resolve_thread_settings(environ={}, cpus=8, processes=3).torch_threads == 2
    assert resolve_thread_settings(environ={}, cpus=2, processes=4).torch_threads == 1


def test_overrides_in_order_env_then_config_then_omp():
    cfg = load_config(QUICK_DETECTOR)
    assert resolve_thread_settings(cfg, environ={}, cpus=4).torch_threads == 4  # TORCH = 0: auto
    cfg.CPU_THREADS.TORCH = 3
    omp = {"OMP_NUM_THREADS": "2"}
    assert resolve_thread_settings(cfg, environ=omp, cpus=4).torch_source == "config"
    assert resolve_thread_settings(cfg, environ=omp, cpus=4).torch_threads == 3
    env = dict(omp, **{ENV_NUM_THREADS: "5", ENV_OPENCV_THREADS: "0"})
    s = resolve_thread_settings(cfg, environ=env, cpus=4)
    assert (s.torch_threads, s.torch_source, s.opencv_threads, s.opencv_source) == (
        5,
        "env",
        0,
        "env",
    )
    cfg.CPU_THREADS.TORCH = 0
    s = resolve_thread_settings(cfg, environ=omp, cpus=4)
    assert (s.torch_threads, s.torch_source) == (2, "OMP_NUM_THREADS")


def test_workers_are_capped_unless_told_otherwise():
    cfg = load_config(QUICK_DETECTOR, "DATALOADER.NUM_WORKERS", 4)
    s = resolve_thread_settings(cfg, environ={}, cpus=2)
    assert (s.num_workers, s.workers_source) == (1, "capped")
    assert resolve_thread_settings(cfg, environ={}, cpus=8).num_workers == 4
    assert resolve_thread_settings(cfg, environ={}, cpus=8, processes=4).num_workers == 1
    cfg.CPU_THREADS.LIMIT_WORKERS = False
    assert resolve_thread_settings(cfg, environ={}, cpus=2).num_workers == 4
    cfg.CPU_THREADS.LIMIT_WORKERS = True
    s = resolve_thread_settings(cfg, environ={ENV_NUM_WORKERS: "3"}, cpus=2)
    assert (s.num_workers, s.workers_source) == (3, "env")
    cfg.DATALOADER.NUM_WORKERS = 0  # loading in the main process stays so
    assert resolve_thread_settings(cfg, environ={}, cpus=2).num_workers == 0


@pytest.mark.parametrize(
    "environ, match",
    [({ENV_NUM_THREADS: "two"}, ENV_NUM_THREADS), ({ENV_NUM_THREADS: "0"}, ">= 1")],
)
def test_bad_override_names_the_variable(environ, match):
    with pytest.raises(ValueError, match=match):
        resolve_thread_settings(environ=environ, cpus=2)


def test_bad_config_value_names_the_key():
    cfg = load_config(QUICK_DETECTOR, "CPU_THREADS.TORCH", -1)
    with pytest.raises(ValueError, match="CPU_THREADS.TORCH"):
        resolve_thread_settings(cfg, environ={}, cpus=2)


def test_configure_applies_the_settings(restore_threads, monkeypatch):
    import cv2

    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    cfg = load_config(QUICK_DETECTOR, "DATALOADER.NUM_WORKERS", 4)
    environ = {ENV_NUM_THREADS: "1"}
    s = configure_threads(cfg, environ=environ)
    assert torch.get_num_threads() == 1 and s.torch_threads == 1
    assert cv2.getNumThreads() == 1
    assert cfg.DATALOADER.NUM_WORKERS == 1
    assert environ["OMP_WAIT_POLICY"] == "PASSIVE"  # for the processes started later
    environ = {ENV_NUM_THREADS: "1", "OMP_WAIT_POLICY": "ACTIVE"}
    cfg.DATALOADER.NUM_WORKERS = 4
    cfg.freeze()
    configure_threads(cfg, environ=environ)
    assert environ["OMP_WAIT_POLICY"] == "ACTIVE"  # a user's choice is kept
    assert cfg.DATALOADER.NUM_WORKERS == 4  # a frozen config is left alone


def test_openmp_env_keeps_user_choices():
    environ = {}
    assert openmp_env.apply(environ, torch_loaded=False) == (True, True)
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE"}
    environ = {}
    assert openmp_env.apply(environ, torch_loaded=True) == (True, False)
    environ = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert openmp_env.apply(environ, torch_loaded=False) == (False, False)
    assert environ["OMP_WAIT_POLICY"] == "ACTIVE"
    environ = {openmp_env.KEEP_DEFAULTS_ENV: "1"}
    assert openmp_env.apply(environ, torch_loaded=False) == (False, False)
    assert "OMP_WAIT_POLICY" not in environ


def test_openmp_env_imported_first_reaches_the_openmp_runtime():
    """In a fresh interpreter, importing it before torch makes torch's OpenMP runtime sleep
    instead of spinning: libgomp reports a spin count of 0 (300000 by default)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.pop(openmp_env.KEEP_DEFAULTS_ENV, None)
    env["OMP_DISPLAY_ENV"] = "VERBOSE"  # libgomp prints its settings to stderr when it loads
    code = "import fasttcm_ops.openmp_env as e, torch\nprint(e.APPLIED)\n"
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert res.stdout.split() == ["True"]
    if "GOMP_SPINCOUNT" in res.stderr:  # torch built with GNU OpenMP
        assert "GOMP_SPINCOUNT = '0'" in res.stderr
