"""Thread counts for CPU work: torch intra-op threads, OpenCV threads, data-loader workers.

On a CPU that other jobs share, more busy threads than cores is the costly case: PyTorch's
OpenMP parallel regions end in a barrier, so a single descheduled thread stalls the whole region,
and a model made of many mid-sized ops (the TCM text branch, the project's rotated-box ops) then
slows far beyond its fair share. The defaults below therefore never ask for more threads than the
CPUs this process may run on, shared among the training processes of one machine:

* torch intra-op threads: ``len(os.sched_getaffinity(0)) // processes`` (at least 1);
* OpenCV: 1 thread (OpenCV runs per image, in data-loader workers or in post-processing, where
  its own thread pool would only compete with torch's);
* data-loader workers: ``DATALOADER.NUM_WORKERS`` capped at the available CPUs minus one (at
  least 1), so the workers and the training threads fit the cores.

Overrides, strongest first:

1. environment: ``FASTTCM_NUM_THREADS`` (torch threads), ``FASTTCM_OPENCV_THREADS``,
   ``FASTTCM_NUM_WORKERS`` (data-loader workers, not capped);
2. config: ``CPU_THREADS.TORCH`` / ``CPU_THREADS.OPENCV`` (0 = automatic / OpenCV's own default),
   ``CPU_THREADS.LIMIT_WORKERS`` (False keeps ``DATALOADER.NUM_WORKERS`` as given);
3. ``OMP_NUM_THREADS`` set by the user is kept as the torch thread count.

``OMP_WAIT_POLICY`` (how idle OpenMP threads wait) is read by the OpenMP runtime when torch is
first imported, so it cannot change afterwards; :func:`configure_threads` sets it to ``PASSIVE``
(unless already set) for the processes started later (CPU workers of ``--num-gpus``, subprocesses).
For the main process, export ``OMP_WAIT_POLICY=PASSIVE`` before starting Python.
"""

import logging
import os
from dataclasses import dataclass
from typing import Mapping, MutableMapping, Optional, Tuple

import torch

__all__ = [
    "ENV_NUM_THREADS",
    "ENV_NUM_WORKERS",
    "ENV_OPENCV_THREADS",
    "ThreadSettings",
    "available_cpus",
    "configure_threads",
    "resolve_thread_settings",
]

logger = logging.getLogger(__name__)

ENV_NUM_THREADS = "FASTTCM_NUM_THREADS"
ENV_OPENCV_THREADS = "FASTTCM_OPENCV_THREADS"
ENV_NUM_WORKERS = "FASTTCM_NUM_WORKERS"


@dataclass(frozen=True)
class ThreadSettings:
    """What :func:`configure_threads` chose, with where each number came from.

    Attributes:
        available_cpus: CPUs this process may run on (``os.sched_getaffinity``).
        processes: processes of one machine sharing them (CPU ``--num-gpus`` workers).
        torch_threads: torch intra-op threads; ``torch_source`` says why ("env", "config",
            "OMP_NUM_THREADS" or "auto").
        opencv_threads: ``cv2.setNumThreads`` value (0 = OpenCV's own default);
            ``opencv_source`` likewise.
        num_workers: data-loader workers (None: no config given); ``workers_source`` likewise
            ("env", "config", "capped" or "").
    """

    available_cpus: int
    processes: int
    torch_threads: int
    torch_source: str
    opencv_threads: int
    opencv_source: str
    num_workers: Optional[int] = None
    workers_source: str = ""


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one, else os.cpu_count()."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def _env_int(environ: Mapping[str, str], name: str, minimum: int) -> Optional[int]:
    """The integer value of environment variable `name`, None when unset or empty."""
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"threads: environment variable {name}={raw!r} is not an integer"
        ) from None
    if value < minimum:
        raise ValueError(f"threads: environment variable {name}={value} must be >= {minimum}")
    return value


def _cfg_key(cfg, name: str, default):
    """``cfg.CPU_THREADS.<name>`` or `default` when cfg lacks the node (a plain detectron2 cfg)."""
    node = getattr(cfg, "CPU_THREADS", None) if cfg is not None else None
    return getattr(node, name, default) if node is not None else default


def resolve_thread_settings(
    cfg=None,
    *,
    processes: int = 1,
    environ: Optional[Mapping[str, str]] = None,
    cpus: Optional[int] = None,
) -> ThreadSettings:
    """Choose the thread counts (see the module docstring) without applying them.

    Args:
        cfg: a config with ``CPU_THREADS`` and ``DATALOADER`` keys, or None (threads only).
        processes: processes on this machine that share its CPUs (>= 1).
        environ: the environment to read (default ``os.environ``).
        cpus: the available CPUs (default :func:`available_cpus`).

    Raises:
        ValueError: a non-integer or negative override, naming the variable or key.
    """
    environ = os.environ if environ is None else environ
    cpus = available_cpus() if cpus is None else max(1, int(cpus))
    if processes < 1:
        raise ValueError(f"threads: processes must be >= 1, got {processes}")

    torch_threads, torch_source = _choose_torch_threads(cfg, environ, cpus, processes)

    opencv_threads = _env_int(environ, ENV_OPENCV_THREADS, 0)
    opencv_source = "env"
    if opencv_threads is None:
        opencv_threads = int(_cfg_key(cfg, "OPENCV", 1))
        opencv_source = "config" if cfg is not None and hasattr(cfg, "CPU_THREADS") else "auto"
        if opencv_threads < 0:
            raise ValueError(f"threads: CPU_THREADS.OPENCV must be >= 0, got {opencv_threads}")

    num_workers, workers_source = _choose_workers(cfg, environ, cpus, processes)
    return ThreadSettings(
        available_cpus=cpus,
        processes=processes,
        torch_threads=torch_threads,
        torch_source=torch_source,
        opencv_threads=opencv_threads,
        opencv_source=opencv_source,
        num_workers=num_workers,
        workers_source=workers_source,
    )


def _choose_torch_threads(
    cfg, environ: Mapping[str, str], cpus: int, processes: int
) -> Tuple[int, str]:
    from_env = _env_int(environ, ENV_NUM_THREADS, 1)
    if from_env is not None:
        return from_env, "env"
    from_cfg = int(_cfg_key(cfg, "TORCH", 0))
    if from_cfg < 0:
        raise ValueError(f"threads: CPU_THREADS.TORCH must be >= 0, got {from_cfg}")
    if from_cfg:
        return from_cfg, "config"
    from_omp = _env_int(environ, "OMP_NUM_THREADS", 1)
    if from_omp is not None:
        return from_omp, "OMP_NUM_THREADS"
    return max(1, cpus // processes), "auto"


def _choose_workers(
    cfg, environ: Mapping[str, str], cpus: int, processes: int
) -> Tuple[Optional[int], str]:
    from_env = _env_int(environ, ENV_NUM_WORKERS, 0)
    if from_env is not None:
        return from_env, "env"
    dataloader = getattr(cfg, "DATALOADER", None) if cfg is not None else None
    if dataloader is None or not hasattr(dataloader, "NUM_WORKERS"):
        return None, ""
    requested = int(dataloader.NUM_WORKERS)
    if requested <= 0 or not bool(_cfg_key(cfg, "LIMIT_WORKERS", True)):
        return requested, "config"
    cap = max(1, cpus // processes - 1)
    if requested > cap:
        return cap, "capped"
    return requested, "config"


def configure_threads(
    cfg=None, *, processes: int = 1, environ: Optional[MutableMapping[str, str]] = None
) -> ThreadSettings:
    """Apply the thread defaults (module docstring) to this process, and to `cfg` when given.

    Sets ``torch.set_num_threads``, ``cv2.setNumThreads`` (when OpenCV is installed) and, for an
    unfrozen `cfg`, ``cfg.DATALOADER.NUM_WORKERS``; sets ``OMP_WAIT_POLICY=PASSIVE`` in `environ`
    (default ``os.environ``) unless it is already set, for the processes started afterwards.

    Args:
        cfg: the run's config (optional); frozen configs keep their worker count.
        processes: processes of this machine sharing its CPUs (the CPU ``--num-gpus`` count).
        environ: the environment to read and update (default ``os.environ``).

    Returns:
        the :class:`ThreadSettings` applied.
    """
    environ = os.environ if environ is None else environ
    settings = resolve_thread_settings(cfg, processes=processes, environ=environ)
    if torch.get_num_threads() != settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    try:
        import cv2
    except ImportError:  # pragma: no cover - OpenCV is a dependency of the package
        cv2 = None
    if cv2 is not None:
        cv2.setNumThreads(settings.opencv_threads)
    if (
        cfg is not None
        and settings.num_workers is not None
        and not cfg.is_frozen()
        and cfg.DATALOADER.NUM_WORKERS != settings.num_workers
    ):
        logger.info(
            f"DATALOADER.NUM_WORKERS {cfg.DATALOADER.NUM_WORKERS} -> {settings.num_workers} "
            f"({settings.workers_source}; {settings.available_cpus} CPUs available; "
            f"set CPU_THREADS.LIMIT_WORKERS False or {ENV_NUM_WORKERS} to keep it)"
        )
        cfg.DATALOADER.NUM_WORKERS = settings.num_workers
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logger.info(
        f"threads: torch {settings.torch_threads} ({settings.torch_source}), "
        f"OpenCV {settings.opencv_threads} ({settings.opencv_source}), "
        f"{settings.available_cpus} CPUs available to {settings.processes} process(es)"
    )
    return settings
