"""Optimizer parameter groups of the CLIP4STR recognizer, alone and inside the text spotter.

The official CLIP4STR recipe (AdamW, betas (0.9, 0.98), eps 1e-6) has four groups: the CLIP
towers {no decay, decay} at the base lr, the two character decoders {no decay, decay} at the
base lr x 19. Weight decay applies to parameters with ndim >= 2 except the position queries and
the character embeddings.
"""

from typing import Dict, List, Tuple

import torch

from ..modeling.recognition.clip4str import CLIP4STR
from .param_groups import build_fasttcm_param_groups

__all__ = [
    "clip4str_param_groups",
    "clip4str_param_groups_from_config",
    "text_recognizer_param_groups",
    "text_spotter_param_groups",
]


def clip4str_param_groups(
    model: CLIP4STR,
    *,
    base_lr: float,
    weight_decay: float,
    decoder_lr_factor: float = 19.0,
    betas: Tuple[float, float] = (0.9, 0.98),
    eps: float = 1e-6,
) -> List[Dict]:
    """The official four AdamW groups: CLIP {no decay, decay} at `base_lr`, decoders at x19.

    Weight decay applies to trainable parameters with ndim >= 2 except ``pos_queries`` and the
    character embedding ``text_embed``; norms, biases and embeddings of ndim < 2 get none.
    ``betas`` / ``eps`` ride along in every group (used by Adam-type optimizers).

    Args:
        model: the recognizer; parameters with ``requires_grad=False`` are left out.
        base_lr, weight_decay: lr of the CLIP towers and the weight decay of decayed groups.
        decoder_lr_factor: lr multiplier of ``visual_decoder.*`` and ``cross_decoder.*``.
        betas, eps: Adam hyperparameters stored in every group.

    Returns:
        list of ``{"params", "lr", "weight_decay", "betas", "eps"}``, empty groups left out, in
        the order (CLIP, decay), (CLIP, no decay), (decoders, decay), (decoders, no decay).
    """
    groups = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_decoder = name.startswith(("visual_decoder.", "cross_decoder."))
        no_decay = param.ndim < 2 or "pos_queries" in name or "text_embed" in name
        groups.setdefault((is_decoder, no_decay), []).append(param)
    return [
        {
            "params": params,
            "lr": base_lr * (decoder_lr_factor if is_decoder else 1.0),
            "weight_decay": 0.0 if no_decay else weight_decay,
            "betas": tuple(betas),
            "eps": eps,
        }
        for (is_decoder, no_decay), params in sorted(groups.items())
    ]


def clip4str_param_groups_from_config(model: CLIP4STR, cfg) -> List[Dict]:
    """:func:`clip4str_param_groups` with ``SOLVER.BASE_LR``, ``SOLVER.WEIGHT_DECAY`` and
    ``SOLVER.RECOGNIZER.*``."""
    return clip4str_param_groups(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        decoder_lr_factor=cfg.SOLVER.RECOGNIZER.DECODER_LR_FACTOR,
        betas=tuple(cfg.SOLVER.RECOGNIZER.BETAS),
        eps=cfg.SOLVER.RECOGNIZER.EPS,
    )


def text_recognizer_param_groups(model: torch.nn.Module, cfg) -> List[Dict]:
    """Groups of a ``FastTCMTextRecognizer``: the CLIP4STR groups of ``model.recognizer``."""
    return clip4str_param_groups_from_config(model.recognizer, cfg)


def text_spotter_param_groups(model: torch.nn.Module, cfg) -> List[Dict]:
    """Groups of a ``FastTCMTextSpotter``: detector groups, then the recognizer's CLIP4STR groups.

    The detector part is :func:`build_fasttcm_param_groups` of the whole spotter without the
    parameters of ``model.recognizer``; the recognizer keeps its recipe
    (:func:`clip4str_param_groups`): decoders at ``SOLVER.RECOGNIZER.DECODER_LR_FACTOR`` x
    ``SOLVER.BASE_LR``, no weight decay on norms, biases, position queries and character
    embeddings.
    """
    recognizer_params = {id(p) for p in model.recognizer.parameters()}
    detector_groups = []
    for group in build_fasttcm_param_groups(model, cfg):
        params = [p for p in group["params"] if id(p) not in recognizer_params]
        if params:
            detector_groups.append({**group, "params": params})
    return detector_groups + clip4str_param_groups_from_config(model.recognizer, cfg)
