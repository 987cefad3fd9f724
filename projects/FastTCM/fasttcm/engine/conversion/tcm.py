"""Official TCM / FastTCM (OCRCLIP, mmocr) checkpoints -> FastTCM-D2 text-detector weights.

The official detector ``OCRCLIP`` keeps its weights under ``state_dict`` (mmcv checkpoints, maybe
with DDP ``module.`` prefixes). Names map as follows (``<B>`` = the model's
:class:`~fasttcm.modeling.tcm.backbone.FastTCMBackbone`, ``<N>`` = its FPNC neck, ``<H>`` = the
:class:`~fasttcm.modeling.text_heads.db_head.FastTCMDBHead`):

======================================================  ===========================================
official                                                FastTCM-D2
======================================================  ===========================================
``backbone.*`` (CLIP ModifiedResNet + attention pool)    ``<B>visual.*`` (same names)
``text_encoder.*``                                      ``<B>text_encoder.*`` (same names; a
                                                        shorter positional table is zero-padded)
``context_decoder.*``                                   ``<B>text_context_decoder.decoder.*``
``visual_prompt_generator.*``                           ``<B>visual_prompt_generator.decoder.*``
  (both: ``text_proj`` -> ``query_proj``, ``decoder.<i>`` -> ``layers.<i>``,
  ``*_attn.proj`` -> ``*_attn.out_proj``)
``prompt_generator.prompt_proj.<j>.*``                  ``<B>language_prompt_generator.mlp.<j>.*``
``contexts``                                            ``<B>prompt_learner.contexts``
``gamma`` / ``vis_gamma``                               ``<B>text_context_decoder.gamma`` /
                                                        ``<B>visual_prompt_generator.gamma``
``meta_query`` (FastTCM)                                ``<B>language_prompt_generator.meta_query``
``pix_w`` (FastTCM, D x D)                              ``<B>bimodal_similarity_matching.projection
                                                        .weight`` = ``pix_w`` transposed
``neck.lateral_convs.<i>.conv.weight``                  ``<N>lateral_convs.<i>.weight``
``neck.smooth_convs.<i>.conv.weight``                   ``<N>smooth_convs.<i>.weight``
``bbox_head.binarize.{0,1,3,4,6}.*``                    ``<H>`` probability branch, in layer order
``bbox_head.threshold.{0,1,3,4,6}.*``                   ``<H>`` threshold branch, in layer order
======================================================  ===========================================

The official code computes BSM's image vector as ``g = normalize(I-bar @ pix_w)``, which is
``normalize(W I-bar)`` with ``W = pix_w`` transposed. The released FastTCM code builds ``pix_w`` as
(1024, 512): ``I-bar @ pix_w`` is 512-d while the text embedding is 1024-d, so the official forward
cannot run with it; such a file is refused (or, with ``bsm_identity``, the projection keeps the
project's identity initialisation).

Settings the file determines are derived from it and put into the config the model is built with
(and reported): ``MODEL.FASTTCM.MODE`` (``meta_query`` present: "fasttcm"), ``CONTEXT_LENGTH``
(``contexts``), ``ATTNPOOL_GRID`` (rows of the attention-pool table) and ``LANGUAGE_PROMPT``.
"""

import math
import re
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from ...modeling.tcm.backbone import FastTCMBackbone
from ...modeling.text_heads.db_head import FastTCMDBHead
from .report import ConversionError, ConversionReport
from .safe_load import read_checkpoint
from .target import Mapped, build_target_state, fill_target, find_module, unwrap_state_dict

__all__ = ["convert_tcm", "tcm_settings", "rename_context_decoder"]

# official DBHead branch: Conv2d (no bias), BN, ReLU, ConvTranspose2d, BN, ReLU, ConvTranspose2d
_DB_BRANCH_INDICES = (0, 1, 3, 4, 6)
_DB_BRANCH_KINDS = ("conv", "bn", "deconv", "bn", "deconv")
_DB_BRANCHES = {"binarize": "prob_branch", "threshold": "thresh_branch"}  # official -> project
_UNUSED_REASONS = {
    "logit_scale": "learnable score-map scale (official scale_matching_score_map=True): "
    "FastTCM-D2 divides the score map by the fixed MODEL.FASTTCM.TAU",
    "identity_head.": "training-only auxiliary head (the ILM loss has no parameters here)",
}


def rename_context_decoder(name: str) -> str:
    """Official ``ContextDecoder`` names -> :class:`~fasttcm.modeling.tcm.context_decoder
    .ContextDecoder` names (``text_proj``/``decoder.<i>``/``*_attn.proj`` renamed)."""
    name = re.sub(r"^text_proj\.", "query_proj.", name)
    name = re.sub(r"^decoder\.(\d+)\.", r"layers.\1.", name)
    return re.sub(r"\.(self_attn|cross_attn)\.proj\.", r".\1.out_proj.", name)


def tcm_settings(state: Dict[str, torch.Tensor]) -> Dict[str, object]:
    """The ``MODEL.FASTTCM`` values an official state dict determines (see the module doc)."""
    settings: Dict[str, object] = {
        "MODEL.FASTTCM.MODE": "fasttcm" if "meta_query" in state or "pix_w" in state else "tcm",
        "MODEL.FASTTCM.LANGUAGE_PROMPT": any(k.startswith("prompt_generator.") for k in state),
    }
    if "contexts" in state and state["contexts"].dim() == 3:
        settings["MODEL.FASTTCM.CONTEXT_LENGTH"] = int(state["contexts"].shape[1])
    table = state.get("backbone.attnpool.positional_embedding")
    if table is not None and table.dim() == 2:
        side = math.isqrt(table.shape[0] - 1)
        if side * side + 1 == table.shape[0]:
            settings["MODEL.FASTTCM.ATTNPOOL_GRID"] = side
    return settings


def _kind(module: nn.Module) -> str:
    if isinstance(module, nn.ConvTranspose2d):
        return "deconv"
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "bn"
    return type(module).__name__


def _branch_layers(head: nn.Module, attribute: str) -> Optional[Dict[int, str]]:
    """official branch index -> project module name inside the head, matched in layer order."""
    branch = getattr(head, attribute, None)
    if branch is None:
        return None
    leaves = [
        (name, module)
        for name, module in branch.named_modules()
        if any(True for _ in module.parameters(recurse=False))
        or any(True for _ in module.buffers(recurse=False))
    ]
    kinds = tuple(_kind(m) for _, m in leaves)
    if kinds != _DB_BRANCH_KINDS:
        raise ConversionError(
            f"the DB head's {attribute} has layers {kinds}; the official branch has "
            f"{_DB_BRANCH_KINDS}, so its weights cannot be placed"
        )
    return {index: f"{attribute}.{name}" for index, (name, _) in zip(_DB_BRANCH_INDICES, leaves)}


def _find_neck(model: nn.Module) -> Optional[str]:
    """Prefix of the FPNC-exact neck (a module with ``lateral_convs`` and ``smooth_convs``)."""
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(getattr(module, "lateral_convs", None), nn.ModuleList)
        and isinstance(getattr(module, "smooth_convs", None), nn.ModuleList)
    ]
    if len(names) > 1:
        raise ConversionError(f"the model holds {len(names)} FPNC necks ({names}); expected 1")
    return (names[0] + "." if names[0] else "") if names else None


def _map_key(
    key: str, parts: Dict[str, Optional[str]], branches: Dict[str, Optional[Dict[int, str]]]
) -> Tuple[Optional[str], str]:
    """(project name or None, reason when None) of one official key."""
    backbone, neck, head = parts["backbone"], parts["neck"], parts["head"]
    simple = {
        "contexts": "prompt_learner.contexts",
        "gamma": "text_context_decoder.gamma",
        "vis_gamma": "visual_prompt_generator.gamma",
        "meta_query": "language_prompt_generator.meta_query",
        "pix_w": "bimodal_similarity_matching.projection.weight",
    }
    for prefix, reason in _UNUSED_REASONS.items():
        if key == prefix or (prefix.endswith(".") and key.startswith(prefix)):
            return None, reason
    relative = None
    if key in simple:
        relative = simple[key]
    elif key.startswith("backbone."):
        relative = "visual." + key[len("backbone.") :]
    elif key.startswith("text_encoder."):
        relative = key
    elif key.startswith("context_decoder."):
        relative = "text_context_decoder.decoder." + rename_context_decoder(
            key[len("context_decoder.") :]
        )
    elif key.startswith("visual_prompt_generator."):
        relative = "visual_prompt_generator.decoder." + rename_context_decoder(
            key[len("visual_prompt_generator.") :]
        )
    elif key.startswith("prompt_generator.prompt_proj."):
        relative = "language_prompt_generator.mlp." + key[len("prompt_generator.prompt_proj.") :]
    if relative is not None:
        if backbone is None:
            return None, "the model built from the config has no FastTCM backbone"
        return backbone + relative, ""

    match = re.fullmatch(r"neck\.(lateral_convs|smooth_convs)\.(\d+)\.conv\.(\w+)", key)
    if match:
        if neck is None:
            return None, (
                "the config builds no FPNC-exact neck (detectron2's FPN has no counterpart of "
                "the official FPNC convs); use a config whose backbone is the FPNC neck"
            )
        return f"{neck}{match.group(1)}.{match.group(2)}.{match.group(3)}", ""
    match = re.fullmatch(r"bbox_head\.(binarize|threshold)\.(\d+)\.(\w+)", key)
    if match:
        layers = branches.get(match.group(1))
        if head is None or layers is None:
            return None, "the model built from the config has no DB head"
        index = int(match.group(2))
        if index not in layers:
            return None, f"official DB-head layer {index} has no counterpart"
        return f"{head}{layers[index]}.{match.group(3)}", ""
    return None, "no counterpart in FastTCM-D2 (not part of the official OCRCLIP detector)"


def _hints(parts: Dict[str, Optional[str]]) -> Dict[str, str]:
    backbone = parts["backbone"] or "<none>."
    hints = {
        backbone + "visual.attnpool.positional_embedding": "check MODEL.FASTTCM.ATTNPOOL_GRID",
        backbone + "visual.": "check MODEL.FASTTCM.IMAGE_LAYERS / IMAGE_WIDTH / EMBED_DIM",
        backbone + "text_encoder.": "check MODEL.FASTTCM.TEXT_WIDTH / TEXT_LAYERS / VOCAB_SIZE",
        backbone + "prompt_learner.": "check MODEL.FASTTCM.CONTEXT_LENGTH / TEXT_WIDTH",
        backbone: "check MODEL.FASTTCM.EMBED_DIM / DECODER_WIDTH / DECODER_LAYERS",
    }
    if parts["neck"]:
        hints[parts["neck"] + "lateral_convs.3."] = (
            "the res5 lateral conv reads 2048 + K channels: check MODEL.FASTTCM.CLASS_PROMPTS (K)"
        )
        hints[parts["neck"]] = "check MODEL.FPN.OUT_CHANNELS and the neck's widths"
    if parts["head"]:
        hints[parts["head"]] = "check MODEL.DB_HEAD.CONV_DIMS"
    return hints


def _apply_settings(cfg, settings: Dict[str, object], report: ConversionReport):
    cfg = cfg.clone()
    cfg.defrost()
    for dotted, value in settings.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        if node[leaf] != value:
            report.notes.append(
                f"{dotted}: the config has {node[leaf]!r}, the file needs {value!r}"
            )
        node[leaf] = value
        report.config[dotted] = value
    return cfg


def _fit_text_positions(
    mapped: Mapped, target: Dict[str, torch.Tensor], prefix: Optional[str], report, path: str
) -> None:
    """Zero-pad an official positional table shorter than the model's (the official table has
    n_ctx + 14 rows; later rows only reach padding positions, never the EOS output: causal
    attention)."""
    key = "text_encoder.positional_embedding"
    if key not in mapped or prefix is None:
        return
    name, table = mapped[key]
    want = target.get(name)
    if want is None or table.dim() != 2 or want.dim() != 2 or table.shape[1] != want.shape[1]:
        return
    rows, model_rows = table.shape[0], want.shape[0]
    if rows > model_rows:
        raise ConversionError(
            f"{path}: '{key}' has {rows} rows, the model's '{name}' only {model_rows}; "
            f"set MODEL.FASTTCM.TEXT_MAX_LENGTH to at least {rows}"
        )
    if rows < model_rows:
        padded = torch.zeros((model_rows, table.shape[1]), dtype=table.dtype)
        padded[:rows] = table
        mapped[key] = (name, padded)
        report.notes.append(
            f"{key}: the official {rows} rows fill rows 0..{rows - 1} of the model's "
            f"{model_rows}; rows {rows}..{model_rows - 1} are zero and never reach the text "
            f"embedding (causal attention, EOS at row <= {rows - 1}); "
            f"MODEL.FASTTCM.TEXT_MAX_LENGTH {rows} gives the official table exactly"
        )


def _bsm_projection(
    mapped: Mapped, target: Dict[str, torch.Tensor], report, path: str, bsm_identity: bool
) -> None:
    if "pix_w" not in mapped:
        return
    name, pix_w = mapped["pix_w"]
    rows, cols = tuple(pix_w.shape) if pix_w.dim() == 2 else (None, None)
    if rows is not None and rows == cols:
        mapped["pix_w"] = (name, pix_w.t())
        report.notes.append(
            "pix_w: transposed into the BSM projection W (official g = normalize(I-bar @ pix_w) "
            "= normalize(W I-bar) with W = pix_w^T)"
        )
        return
    explanation = (
        f"{path}: 'pix_w' has shape {tuple(pix_w.shape)}. The official FastTCM code computes "
        "g = normalize(I-bar @ pix_w): with I-bar of dim "
        f"{rows} this g has dim {cols}, while the text embedding t it is multiplied with "
        f"(t * g) has dim {rows}, so the official code cannot run with this tensor either "
        f"({rows} vs {cols} mismatch) and it carries no trained BSM projection. FastTCM-D2's BSM "
        "projection W is a D x D map initialised to the identity "
        "(fasttcm.modeling.tcm.bimodal_similarity_matching); convert with --bsm-identity to "
        "keep that identity and take everything else from the file"
    )
    if not bsm_identity:
        raise ConversionError(explanation)
    del mapped["pix_w"]
    report.unused["pix_w"] = f"shape {tuple(pix_w.shape)} cannot run in the official code"
    if name in target:
        mapped["<identity>"] = (name, torch.eye(target[name].shape[0]))
        report.notes.append(f"{name}: identity (--bsm-identity; the file's pix_w is unusable)")


def convert_tcm(
    path: str, cfg, report: ConversionReport, *, bsm_identity: bool = False
) -> Tuple[Dict[str, torch.Tensor], object]:
    """Read an official OCRCLIP checkpoint and map it onto the model `cfg` builds.

    Args:
        path: the official checkpoint (``.pth``).
        cfg: a FastTCM text-detection config (values the file determines are overridden).
        report: filled in place.
        bsm_identity: with an unusable (D, D/2) ``pix_w``, keep the identity BSM projection
            instead of refusing the file.

    Returns:
        (the converted state dict, the config the weights belong to).

    Raises:
        FileNotFoundError, ConversionError: unreadable file, not an OCRCLIP checkpoint, shape
            mismatch, unusable ``pix_w`` (messages name the file and key).
    """
    loaded, stand_ins = read_checkpoint(path)
    state = unwrap_state_dict(loaded, path)
    if not any(k.startswith("backbone.") for k in state):
        raise ConversionError(
            f"{path}: no 'backbone.*' weights: not an official OCRCLIP (TCM / FastTCM) detector "
            f"checkpoint (first keys: {sorted(state)[:5]})"
        )
    if stand_ins:
        report.notes.append(f"read with inert stand-ins for {stand_ins}")
    cfg = _apply_settings(cfg, tcm_settings(state), report)
    model, target = build_target_state(cfg)
    parts = {
        "backbone": find_module(model, FastTCMBackbone, "FastTCM backbone"),
        "neck": _find_neck(model),
        "head": find_module(model, FastTCMDBHead, "DB head"),
    }
    head_module = model.get_submodule(parts["head"][:-1]) if parts["head"] else None
    branches = {
        official: _branch_layers(head_module, attribute) if head_module is not None else None
        for official, attribute in _DB_BRANCHES.items()
    }
    mapped: Mapped = {}
    for key, tensor in state.items():
        name, reason = _map_key(key, parts, branches)
        if name is None:
            report.unused[key] = reason
        else:
            mapped[key] = (name, tensor)
    _fit_text_positions(mapped, target, parts["backbone"], report, path)
    _bsm_projection(mapped, target, report, path, bsm_identity)
    converted = fill_target(mapped, target, report, path, hints=_hints(parts))
    if "<identity>" in report.consumed:
        report.consumed.remove("<identity>")
    return converted, cfg
