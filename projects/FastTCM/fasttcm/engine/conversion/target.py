"""The target side of a conversion: the model a config builds, its parameter names and shapes,
and the checked, atomic write of the converted weights.

Converters produce ``{official name: (project name, tensor)}``; :func:`fill_target` checks every
project name and shape against the model built from the config, and :func:`write_checkpoint`
writes ``{"model": ...}`` for ``MODEL.WEIGHTS`` through :mod:`fasttcm.utils.atomic_io`.
"""

import copy
import logging
import os
from typing import Dict, Optional, Sequence, Tuple, Type

import torch
from torch import nn

from detectron2.modeling import build_model

from ...utils.atomic_io import atomic_open
from .report import ConversionError, ConversionReport

__all__ = [
    "Mapped",
    "build_target_state",
    "fill_target",
    "find_module",
    "write_checkpoint",
    "check_output_path",
    "unwrap_state_dict",
]

logger = logging.getLogger(__name__)

Mapped = Dict[str, Tuple[str, torch.Tensor]]
"""official name -> (project name in the model's state dict, tensor already transformed)."""


def build_target_state(cfg) -> Tuple[nn.Module, Dict[str, torch.Tensor]]:
    """Build the model of `cfg` on the CPU (CLIP weights not read) and return it and its state
    dict; only names and shapes of the state dict are used."""
    cfg = copy.deepcopy(cfg)
    cfg.defrost()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    for node in (cfg.MODEL.FASTTCM, cfg.MODEL.RECOGNIZER):
        node.CLIP_WEIGHTS = ""  # names and shapes only: no file is read, nothing downloaded
    level = logging.getLogger("fasttcm").level
    logging.getLogger("fasttcm").setLevel(logging.ERROR)  # "random init" warnings are moot here
    try:
        model = build_model(cfg)
    finally:
        logging.getLogger("fasttcm").setLevel(level)
    return model, model.state_dict()


def find_module(model: nn.Module, kind: Type[nn.Module], what: str) -> Optional[str]:
    """The state-dict prefix (``"backbone.bottom_up."``) of the one submodule of type `kind`.

    Returns None when the model has none; raises ConversionError when it has several.
    """
    names = [name for name, module in model.named_modules() if isinstance(module, kind)]
    if len(names) > 1:
        raise ConversionError(f"the model holds {len(names)} {what} modules ({names}); expected 1")
    if not names:
        return None
    return names[0] + "." if names[0] else ""


def fill_target(
    mapped: Mapped,
    target: Dict[str, torch.Tensor],
    report: ConversionReport,
    path: str,
    hints: Optional[Dict[str, str]] = None,
) -> Dict[str, torch.Tensor]:
    """Check `mapped` against the model's state dict and build the converted state dict.

    Official names whose project name the model lacks go to ``report.unused`` (with the reason);
    project names nothing filled go to ``report.unfilled``. Floating-point tensors take the
    model's dtype; integer buffers (``num_batches_tracked``) keep theirs.

    Args:
        mapped: see :data:`Mapped`.
        target: the model's state dict (names and shapes).
        report: filled in place (consumed, unused, unfilled).
        path: the input file, for messages.
        hints: project-name prefix -> the config setting to check when a shape differs there.

    Returns:
        ``{project name: tensor}``.

    Raises:
        ConversionError: a tensor's shape differs from the model's (the message names both keys,
            both shapes and, where known, the config key to check); two official names map to
            one project name.
    """
    out: Dict[str, torch.Tensor] = {}
    source_of: Dict[str, str] = {}
    for official, (name, tensor) in mapped.items():
        if name not in target:
            report.unused[official] = (
                f"the model built from the config has no '{name}' (the config builds no such part)"
            )
            continue
        want = target[name]
        if tuple(tensor.shape) != tuple(want.shape):
            hint = next((h for p, h in (hints or {}).items() if name.startswith(p)), "")
            raise ConversionError(
                f"{path}: '{official}' has shape {tuple(tensor.shape)}, but the model's "
                f"'{name}' has shape {tuple(want.shape)}" + (f"; {hint}" if hint else "")
            )
        if name in source_of:
            raise ConversionError(
                f"{path}: '{official}' and '{source_of[name]}' both map to '{name}'"
            )
        source_of[name] = official
        if tensor.is_floating_point() and want.is_floating_point():
            tensor = tensor.to(want.dtype)
        out[name] = tensor.detach().contiguous()
        report.consumed.append(official)
    report.unfilled.extend(sorted(set(target) - set(out)))
    return out


def check_output_path(output: str, overwrite: bool) -> None:
    """Refuse a non-``.pth`` output, and an existing one without `overwrite`."""
    if not output.endswith(".pth"):
        raise ConversionError(
            f"output {output!r} must be a .pth file "
            "(DetectionCheckpointer reads .pkl files as pickled numpy)"
        )
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f"output {output!r} exists; pass --overwrite to replace it")


def write_checkpoint(
    state: Dict[str, torch.Tensor], output: str, report: ConversionReport, overwrite: bool
) -> None:
    """Write ``{"model": state, "__author__", "matching_heuristics": False}`` atomically."""
    check_output_path(output, overwrite)
    checkpoint = {
        "model": state,
        "__author__": (
            f"fasttcm-d2 tools/convert_checkpoint.py --from {report.source} "
            f"{os.path.basename(report.input)}"
        ),
        "matching_heuristics": False,
    }
    with atomic_open(output, "wb") as f:
        torch.save(checkpoint, f)
    report.output = output
    logger.info(f"Wrote {len(state)} tensors to {output}")


def unwrap_state_dict(loaded, path: str, prefixes: Sequence[str] = ("module.",)) -> Dict:
    """``{"state_dict": sd}`` or a bare state dict -> ``{name: tensor}`` without DDP prefixes.

    Raises:
        ConversionError: no mapping of names to tensors is found.
    """
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict):
        raise ConversionError(f"{path}: holds no state dict (expected {{'state_dict': {{...}}}})")
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and torch.is_tensor(v)}
    if not tensors:
        raise ConversionError(f"{path}: its state dict holds no tensors")
    if len(tensors) != len(state):
        odd = sorted(str(k) for k, v in state.items() if not torch.is_tensor(v))[:5]
        raise ConversionError(f"{path}: state dict entries that are not tensors: {odd}")
    cleaned = {}
    for key, value in tensors.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        cleaned[key] = value
    return cleaned
