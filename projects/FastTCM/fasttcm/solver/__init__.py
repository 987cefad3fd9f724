"""Optimizer parameter groups of FastTCM models."""
from .param_groups import build_fasttcm_param_groups, get_fasttcm_optimizer_params

__all__ = ["build_fasttcm_param_groups", "get_fasttcm_optimizer_params"]
