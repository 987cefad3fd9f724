"""Learning-rate schedulers: detectron2's, plus the "WarmupPolyLR" of the official FastTCM
configs."""

import torch
from fvcore.common.param_scheduler import PolynomialDecayParamScheduler

from detectron2.solver import build_lr_scheduler as d2_build_lr_scheduler
from detectron2.solver.lr_scheduler import LRMultiplier, WarmupParamScheduler

__all__ = ["build_lr_scheduler"]


def build_lr_scheduler(cfg, optimizer: torch.optim.Optimizer):
    """detectron2's schedulers plus "WarmupPolyLR": lr = base * (1 - it/max_iter) ** power.

    Args:
        cfg: a detectron2 config; ``SOLVER.LR_SCHEDULER_NAME`` picks the schedule,
            ``SOLVER.POLY_LR_POWER`` is the power of "WarmupPolyLR", and its warm-up follows
            ``SOLVER.WARMUP_FACTOR`` / ``WARMUP_ITERS`` / ``WARMUP_METHOD``.
        optimizer: the optimizer whose groups' lr the scheduler multiplies.

    Returns:
        a ``torch.optim.lr_scheduler`` scheduler, stepped once per iteration.
    """
    if cfg.SOLVER.LR_SCHEDULER_NAME != "WarmupPolyLR":
        return d2_build_lr_scheduler(cfg, optimizer)
    sched = WarmupParamScheduler(
        PolynomialDecayParamScheduler(1.0, cfg.SOLVER.POLY_LR_POWER),
        cfg.SOLVER.WARMUP_FACTOR,
        min(cfg.SOLVER.WARMUP_ITERS / max(cfg.SOLVER.MAX_ITER, 1), 1.0),
        cfg.SOLVER.WARMUP_METHOD,
    )
    return LRMultiplier(optimizer, multiplier=sched, max_iter=cfg.SOLVER.MAX_ITER)
