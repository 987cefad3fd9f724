"""Gradient clipping of FastTCM optimizers: detectron2's per-parameter modes and full-model norm.

``SOLVER.CLIP_GRADIENTS.CLIP_TYPE`` "value" / "norm" clip each parameter's gradient on its own
(detectron2); "full_model" clips the norm of all gradients together, as mmcv's ``grad_clip``
does in the official DOTA configs (detectron2 v0.6 has no such mode).
"""

import torch

from detectron2.solver.build import maybe_add_gradient_clipping

__all__ = ["add_gradient_clipping", "with_full_model_clipping"]


def with_full_model_clipping(
    optimizer: torch.optim.Optimizer, max_norm: float, norm_type: float
) -> torch.optim.Optimizer:
    """Clip the norm of all gradients together before each step (mmcv's ``grad_clip``).

    The optimizer's class is swapped in place for a subclass whose ``step`` first calls
    :func:`torch.nn.utils.clip_grad_norm_` over every parameter that has a gradient; its state
    and parameter groups are untouched.

    Args:
        optimizer: any torch optimizer.
        max_norm: largest total gradient norm.
        norm_type: the p of the p-norm (2.0: Euclidean norm over all gradient entries).

    Returns:
        `optimizer` itself, now clipping.
    """
    base = type(optimizer)

    class FullModelGradientClipping(base):
        def step(self, closure=None):
            params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
            return super().step(closure)

    optimizer.__class__ = FullModelGradientClipping
    return optimizer


def add_gradient_clipping(cfg, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """`optimizer` with the clipping of ``cfg.SOLVER.CLIP_GRADIENTS`` (itself when disabled).

    Args:
        cfg: a detectron2 config.
        optimizer: the optimizer over the model's parameter groups.

    Returns:
        "full_model": `optimizer`, clipped in place (:func:`with_full_model_clipping`); "value" /
        "norm": a new optimizer of detectron2's clipping subclass over the same parameter groups.
    """
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if clip.ENABLED and clip.CLIP_TYPE == "full_model":
        return with_full_model_clipping(optimizer, clip.CLIP_VALUE, clip.NORM_TYPE)
    if clip.ENABLED:
        optimizer = maybe_add_gradient_clipping(cfg, type(optimizer))(optimizer.param_groups)
    return optimizer
