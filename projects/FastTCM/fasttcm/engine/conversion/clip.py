"""CLIP weights (OpenAI ``.pt`` archives, open_clip state dicts, open_clip pretrained names) ->
detectron2 checkpoints with FastTCM-D2 names.

The file is read by :func:`~fasttcm.modeling.clip.weights.read_clip_state_dict` (TorchScript or
weights-only state dict; ``module.``/``text.`` prefixes and CLIP's scalar entries removed; an
open_clip name such as ``RN50-quickgelu:openai`` resolves to open_clip's cached file). The
targets are the towers of the model the config builds:

* a FastTCM backbone: ``visual.*`` -> ``<backbone>visual.*`` (the attention-pool table resized
  bilinearly to ``MODEL.FASTTCM.ATTNPOOL_GRID``), text tower -> ``<backbone>text_encoder.*``;
* a CLIP4STR recognizer: ``visual.*`` and the text tower -> ``<recognizer>clip_model.*`` (the ViT
  positional table resized to the patch grid).

The text positional table is cut to the model's rows. Everything the CLIP file cannot provide
(prompts, decoders, heads) is reported as unfilled: the output initialises a model for training.
"""

import math
from typing import Dict, Optional, Tuple

import torch

from ...modeling.clip.image_encoder import resize_attnpool_positional_embedding
from ...modeling.clip.weights import is_clip_text_key, read_clip_state_dict
from ...modeling.recognition.clip4str import CLIP4STR
from ...modeling.tcm.backbone import FastTCMBackbone
from .report import ConversionError, ConversionReport
from .target import Mapped, build_target_state, fill_target, find_module

__all__ = ["convert_clip"]


def _fit(
    key: str,
    name: str,
    tensor: torch.Tensor,
    target: Dict[str, torch.Tensor],
    grid: Optional[Tuple[int, int]],
    report,
) -> torch.Tensor:
    """Resize positional tables that legitimately differ in length; other tensors unchanged.

    `grid` is the model's (rows, columns) of its image positional table.
    """
    want = target.get(name)
    if want is None or tuple(want.shape) == tuple(tensor.shape) or tensor.dim() != 2:
        return tensor
    if want.dim() != 2 or want.shape[1] != tensor.shape[1]:
        return tensor  # fill_target reports the mismatch
    if key in ("visual.attnpool.positional_embedding", "visual.positional_embedding") and grid:
        if grid[0] * grid[1] + 1 == want.shape[0]:
            report.notes.append(
                f"{key}: resized bilinearly from {tuple(tensor.shape)} to {tuple(want.shape)}"
            )
            return resize_attnpool_positional_embedding(tensor, *grid)
    if key == "positional_embedding" and tensor.shape[0] > want.shape[0]:
        report.notes.append(f"{key}: first {want.shape[0]} of {tensor.shape[0]} rows kept")
        return tensor[: want.shape[0]]
    return tensor


def convert_clip(
    path: str, cfg, report: ConversionReport
) -> Tuple[Dict[str, torch.Tensor], object]:
    """Map a CLIP checkpoint onto the CLIP towers of the model `cfg` builds.

    Returns:
        (converted state dict, `cfg`).

    Raises:
        FileNotFoundError, ValueError: the file or pretrained name cannot be read.
        ConversionError: the config builds no CLIP tower, or a shape differs.
    """
    state = read_clip_state_dict(path)
    model, target = build_target_state(cfg)
    backbone = find_module(model, FastTCMBackbone, "FastTCM backbone")
    recognizer = find_module(model, CLIP4STR, "CLIP4STR recognizer")
    grid = None
    if backbone is not None:
        image_prefix, text_prefix = backbone + "visual.", backbone + "text_encoder."
        table = target.get(image_prefix + "attnpool.positional_embedding")
        if table is not None:
            side = math.isqrt(table.shape[0] - 1)
            grid = (side, side)
    elif recognizer is not None:
        image_prefix = recognizer + "clip_model.visual."
        text_prefix = recognizer + "clip_model."
        grid = tuple(model.get_submodule(image_prefix[:-1]).grid_size)
    else:
        raise ConversionError(
            "the config builds neither a FastTCM backbone nor a CLIP4STR recognizer "
            f"(MODEL.META_ARCHITECTURE {cfg.MODEL.META_ARCHITECTURE!r})"
        )
    mapped: Mapped = {}
    for key, tensor in state.items():
        if key.startswith("visual."):
            name = image_prefix + key[len("visual.") :]
        elif is_clip_text_key(key):
            name = text_prefix + key
        else:
            report.unused[key] = "neither a CLIP image nor a CLIP text tower entry"
            continue
        if name not in target:
            report.unused[key] = f"the model built from the config has no '{name}'"
            continue
        mapped[key] = (name, _fit(key, name, tensor, target, grid, report))
    report.notes.append(
        "CLIP scalars (input_resolution, context_length, vocab_size, logit_scale) are not weights "
        "of any FastTCM-D2 module and are dropped on reading"
    )
    hints = {image_prefix: "check the image-encoder widths and depths of the config"}
    hints[text_prefix] = "check the text-encoder widths and depths of the config"
    return fill_target(mapped, target, report, path, hints=hints), cfg
