"""Optimizer parameter groups of FastTCM models (detectors with CLIP RN50 encoders).

The official TCM / FastTCM recipe keeps the CLIP text encoder frozen, trains the CLIP image
encoder at a tenth of the base lr and the new modules at the base lr:

* CLIP text encoder: frozen (``requires_grad=False``), so it is left out; gradients still flow
  through it to the context vectors, the meta query and the prompt generator.
* CLIP image encoder (attention pool included): lr x ``MODEL.FASTTCM.IMAGE_ENCODER_LR_FACTOR``.
* everything else (prompts, LPG, BSM, VPG, decoders, gates, FPN, heads): lr x 1.

Weight decay follows detectron2's keys: ``SOLVER.WEIGHT_DECAY``, ``SOLVER.WEIGHT_DECAY_NORM`` for
normalization layers, ``SOLVER.BIAS_LR_FACTOR`` / ``SOLVER.WEIGHT_DECAY_BIAS`` for biases.
"""

from typing import Any, Dict, List, Optional

import torch

from detectron2.solver.build import reduce_param_groups

from ..modeling.clip.image_encoder import CLIPImageEncoder
from ..modeling.clip.text_encoder import CLIPTextContextEncoder

__all__ = ["build_fasttcm_param_groups", "get_fasttcm_optimizer_params"]

_NORM_TYPES = (
    torch.nn.modules.batchnorm._BatchNorm,
    torch.nn.GroupNorm,
    torch.nn.modules.instancenorm._InstanceNorm,
    torch.nn.LayerNorm,
    torch.nn.LocalResponseNorm,
)


def get_fasttcm_optimizer_params(
    model: torch.nn.Module,
    *,
    base_lr: float,
    weight_decay: float,
    weight_decay_norm: float,
    bias_lr_factor: float = 1.0,
    weight_decay_bias: Optional[float] = None,
    image_encoder_lr_factor: float = 0.1,
    text_encoder_lr_factor: float = 0.1,
) -> List[Dict[str, Any]]:
    """Parameter groups for ``torch.optim``, explicit ``lr`` and ``weight_decay`` in every group.

    Modules are recognised by type (:class:`CLIPImageEncoder`, :class:`CLIPTextContextEncoder`),
    so wrappers (e.g. DistributedDataParallel) and attribute names do not matter. Parameters with
    ``requires_grad=False`` are skipped; each parameter appears once.

    Args:
        model: any module containing FastTCM encoders.
        base_lr, weight_decay: the defaults (``SOLVER.BASE_LR``, ``SOLVER.WEIGHT_DECAY``).
        weight_decay_norm: weight decay of normalization-layer parameters.
        bias_lr_factor, weight_decay_bias: bias overrides (weight_decay_bias None = weight_decay).
        image_encoder_lr_factor: lr multiplier of the image encoder's parameters.
        text_encoder_lr_factor: lr multiplier of trainable text-encoder parameters (only when the
            text encoder is not frozen).

    Returns:
        list of ``{"params": [...], "lr": float, "weight_decay": float}``, merged by equal settings.
    """
    lr_factors: Dict[int, float] = {}
    for module in model.modules():
        if isinstance(module, (CLIPImageEncoder, CLIPTextContextEncoder)):
            if isinstance(module, CLIPImageEncoder):
                factor = image_encoder_lr_factor
            else:
                factor = text_encoder_lr_factor
            for param in module.parameters():
                lr_factors[id(param)] = factor

    groups: List[Dict[str, Any]] = []
    seen = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            lr = base_lr * lr_factors.get(id(param), 1.0)
            decay = weight_decay_norm if isinstance(module, _NORM_TYPES) else weight_decay
            if name == "bias":
                lr *= bias_lr_factor
                if weight_decay_bias is not None:
                    decay = weight_decay_bias
            groups.append({"params": [param], "lr": lr, "weight_decay": decay})
    return reduce_param_groups(groups)


def build_fasttcm_param_groups(model: torch.nn.Module, cfg) -> List[Dict[str, Any]]:
    """:func:`get_fasttcm_optimizer_params` with the values of a detectron2 config."""
    return get_fasttcm_optimizer_params(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
        weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
        image_encoder_lr_factor=cfg.MODEL.FASTTCM.IMAGE_ENCODER_LR_FACTOR,
        text_encoder_lr_factor=cfg.MODEL.FASTTCM.TEXT_ENCODER_LR_FACTOR,
    )
