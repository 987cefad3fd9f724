"""Optimizers of FastTCM models: parameter-group recipes, gradient clipping, lr schedules."""

from .build import PARAM_GROUP_RECIPES, build_optimizer, build_param_groups
from .grad_clipping import add_gradient_clipping, with_full_model_clipping
from .lr_scheduler import build_lr_scheduler
from .param_groups import build_fasttcm_param_groups, get_fasttcm_optimizer_params
from .recognizer_param_groups import (
    clip4str_param_groups,
    clip4str_param_groups_from_config,
    text_recognizer_param_groups,
    text_spotter_param_groups,
)

__all__ = [
    "PARAM_GROUP_RECIPES",
    "add_gradient_clipping",
    "build_fasttcm_param_groups",
    "build_lr_scheduler",
    "build_optimizer",
    "build_param_groups",
    "clip4str_param_groups",
    "clip4str_param_groups_from_config",
    "get_fasttcm_optimizer_params",
    "text_recognizer_param_groups",
    "text_spotter_param_groups",
    "with_full_model_clipping",
]
