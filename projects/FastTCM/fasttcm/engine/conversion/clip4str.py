"""Released CLIP4STR checkpoints (PyTorch Lightning ``.ckpt``) -> FastTCM-D2 recognizer weights.

The official ``VL4STR`` Lightning module keeps its weights under ``state_dict`` with the names the
project's :class:`~fasttcm.modeling.recognition.clip4str.CLIP4STR` uses: ``clip_model.*``
(OpenAI CLIP ViT and text-tower names), ``visual_decoder.*`` and ``cross_decoder.*`` (PARSeq-style
two-stream decoders). The converter therefore prefixes the names with the recognizer's place in the
model (``recognizer.``), checks every shape, and drops ``clip_model.logit_scale`` (CLIP's
contrastive temperature, which CLIP4STR never uses) with a note.

The Lightning file also holds ``hyper_parameters`` (an ``AttributeDict``, often with OmegaConf
lists); they are read through inert stand-ins (:mod:`.safe_load`), never by importing Lightning or
OmegaConf. The charsets, the maximum label length, the image and patch sizes and the decoding
settings they give, and the tower sizes the tensors give (heads: width / 64, as CLIP's own builder),
become ``MODEL.RECOGNIZER.*`` config values: the model is built with them and they are reported
(``tools/convert_checkpoint.py`` prints them as a config snippet). A charset that is not one of
the shipped ones (``fasttcm/structures/charsets``) is written next to the output file.
"""

import math
import os
import re
import tempfile
from typing import Any, Dict, Optional, Tuple

import torch

from ...modeling.recognition.clip4str import CLIP4STR
from ...structures.charset import CHARSET_DIR, load_charset, validate_charset
from .report import ConversionError, ConversionReport
from .safe_load import plain_data, read_checkpoint
from .target import Mapped, build_target_state, fill_target, find_module, unwrap_state_dict

__all__ = ["convert_clip4str", "clip4str_settings"]

_PREFIX = "MODEL.RECOGNIZER."
_UNUSED = {"clip_model.logit_scale": "CLIP's contrastive temperature: CLIP4STR never uses it"}
# hyper-parameter of the official VL4STR -> MODEL.RECOGNIZER key
_HPARAMS = {
    "max_label_length": "MAX_LABEL_LENGTH",
    "img_size": "IMAGE_SIZE",
    "patch_size": "PATCH_SIZE",
    "dec_num_heads": "DECODER_HEADS",
    "dec_mlp_ratio": "DECODER_MLP_RATIO",
    "dropout": "DECODER_DROPOUT",
    "perm_num": "PERM_NUM",
    "perm_forward": "PERM_FORWARD",
    "perm_mirrored": "PERM_MIRRORED",
    "refine_iters": "REFINE_ITERS",
    "context_length": "TEXT_CONTEXT_LENGTH",
    "text_freeze_nlayer": "TEXT_FREEZE_LAYERS",
    "image_detach": "IMAGE_DETACH",
    "cross_loss_w": "CROSS_LOSS_WEIGHT",
}
_FLOAT_KEYS = ("DECODER_MLP_RATIO", "DECODER_DROPOUT", "CROSS_LOSS_WEIGHT")
_CLIP_HEAD_WIDTH = 64  # CLIP's builder: heads = width / 64


def _count(state: Dict[str, torch.Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in state for m in [regex.match(k)] if m})


def _hyper_parameters(loaded: Any) -> Dict[str, Any]:
    if not isinstance(loaded, dict):
        return {}
    hparams = plain_data(loaded.get("hyper_parameters") or loaded.get("hparams") or {})
    if not isinstance(hparams, dict):
        return {}
    if "charset_train" not in hparams and isinstance(hparams.get("model"), dict):
        hparams = {**hparams["model"], **hparams}
    return hparams


def _shipped_charset(charset: str) -> Optional[str]:
    for name in sorted(os.listdir(CHARSET_DIR)):
        if name.endswith(".txt") and load_charset(os.path.splitext(name)[0]) == charset:
            return os.path.splitext(name)[0]
    return None


def clip4str_settings(
    state: Dict[str, torch.Tensor], hparams: Dict[str, Any], path: str
) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """``MODEL.RECOGNIZER`` values of an official state dict and its hyper-parameters.

    Returns:
        (settings, charsets): settings with the charsets left out; charsets ``{"CHARSET": str,
        "TEST_CHARSET": str}`` as found in the hyper-parameters.

    Raises:
        ConversionError: the tensors contradict the hyper-parameters (patch size, label length).
    """
    settings: Dict[str, Any] = {"PATCH_EMBED": "linear", "QUICK_GELU": True}
    for hparam, key in _HPARAMS.items():
        if hparam in hparams and hparams[hparam] is not None:
            value = hparams[hparam]
            if isinstance(value, list):
                value = tuple(int(v) for v in value)
            elif key in _FLOAT_KEYS:
                value = float(value)
            settings[key] = value
    conv1 = state.get("clip_model.visual.conv1.weight")
    if conv1 is not None and conv1.dim() == 4:
        width, patch = int(conv1.shape[0]), (int(conv1.shape[2]), int(conv1.shape[3]))
        if "PATCH_SIZE" in settings and tuple(settings["PATCH_SIZE"]) != patch:
            raise ConversionError(
                f"{path}: hyper-parameter patch_size {settings['PATCH_SIZE']} but "
                f"'clip_model.visual.conv1.weight' has {patch} patches"
            )
        settings["PATCH_SIZE"] = patch
        settings["VISION_WIDTH"] = width
        if width % _CLIP_HEAD_WIDTH == 0:
            settings["VISION_HEADS"] = width // _CLIP_HEAD_WIDTH
    for key, pattern in (
        ("VISION_LAYERS", r"clip_model\.visual\.transformer\.resblocks\.(\d+)\."),
        ("TEXT_LAYERS", r"clip_model\.transformer\.resblocks\.(\d+)\."),
        ("DECODER_LAYERS", r"visual_decoder\.layers\.(\d+)\."),
    ):
        if _count(state, pattern):
            settings[key] = _count(state, pattern)
    table = state.get("clip_model.visual.positional_embedding")
    if table is not None and table.dim() == 2 and "PATCH_SIZE" in settings:
        (ph, pw), tokens = settings["PATCH_SIZE"], int(table.shape[0]) - 1
        if "IMAGE_SIZE" not in settings and math.isqrt(tokens) ** 2 == tokens:
            side = math.isqrt(tokens)
            settings["IMAGE_SIZE"] = (side * ph, side * pw)
        height, width = settings.get("IMAGE_SIZE", (ph, pw))
        if "IMAGE_SIZE" in settings and (height // ph) * (width // pw) != tokens:
            raise ConversionError(
                f"{path}: image size {(height, width)} with {(ph, pw)} patches gives "
                f"{(height // ph) * (width // pw)} tokens, but "
                f"'clip_model.visual.positional_embedding' has {tokens} (+1 class token)"
            )
    projection = state.get("clip_model.text_projection")
    if projection is not None and projection.dim() == 2:
        settings["TEXT_WIDTH"], settings["EMBED_DIM"] = map(int, projection.shape)
        if projection.shape[0] % _CLIP_HEAD_WIDTH == 0:
            settings["TEXT_HEADS"] = int(projection.shape[0]) // _CLIP_HEAD_WIDTH
    for key, name in (
        ("TEXT_MAX_LENGTH", "positional_embedding"),
        ("VOCAB_SIZE", "token_embedding.weight"),
    ):
        tensor = state.get(f"clip_model.{name}")
        if tensor is not None:
            settings[key] = int(tensor.shape[0])
    queries = state.get("visual_decoder.pos_queries")
    if queries is not None and queries.dim() == 3:
        slots = int(queries.shape[1])
        if settings.setdefault("MAX_LABEL_LENGTH", slots - 1) != slots - 1:
            raise ConversionError(
                f"{path}: hyper-parameter max_label_length {settings['MAX_LABEL_LENGTH']} but "
                f"'visual_decoder.pos_queries' has {slots} slots (max_label_length + 1)"
            )
    linear1 = state.get("visual_decoder.layers.0.linear1.weight")
    if linear1 is not None and "DECODER_MLP_RATIO" not in settings:
        settings["DECODER_MLP_RATIO"] = float(linear1.shape[0]) / float(linear1.shape[1])
    charsets = {
        key: hparams[hparam]
        for hparam, key in (("charset_train", "CHARSET"), ("charset_test", "TEST_CHARSET"))
        if isinstance(hparams.get(hparam), str) and hparams[hparam]
    }
    return settings, charsets


def _charset_values(
    charsets: Dict[str, str], output: str, folder: str, path: str
) -> Tuple[Dict[str, str], Dict[str, str], Dict[str, str]]:
    """(config values for building now, final config values, files to write {path: text})."""
    build, final, files = {}, {}, {}
    for key, charset in charsets.items():
        validate_charset(charset, f"{path} hyper-parameters ({key})")
        name = _shipped_charset(charset)
        if name is not None:
            build[key] = final[key] = name
            continue
        suffix = "charset_train" if key == "CHARSET" else "charset_test"
        final_path = f"{os.path.splitext(output)[0]}.{suffix}.txt"
        build_path = os.path.join(folder, f"{suffix}.txt")
        with open(build_path, "w", encoding="utf-8") as f:
            f.write(charset + "\n")
        build[key], final[key], files[final_path] = build_path, final_path, charset + "\n"
    return build, final, files


def convert_clip4str(
    path: str, cfg, report: ConversionReport, output: str
) -> Tuple[Dict[str, torch.Tensor], object, Dict[str, str]]:
    """Read a released CLIP4STR checkpoint and map it onto the recognizer `cfg` builds.

    Args:
        path: the Lightning ``.ckpt`` (or a bare state dict with the same names).
        cfg: a recognizer (or spotter) config; values the file determines are overridden.
        report: filled in place.
        output: the checkpoint to be written (charset files go next to it).

    Returns:
        (converted state dict, the config the weights belong to, charset files {path: text} the
        caller writes with the checkpoint).

    Raises:
        FileNotFoundError, ConversionError: unreadable file, not a CLIP4STR checkpoint, refused
            globals, inconsistent hyper-parameters or shape mismatches.
    """
    loaded, stand_ins = read_checkpoint(path)
    state = unwrap_state_dict(loaded, path)
    if not any(k.startswith("clip_model.visual.") for k in state):
        raise ConversionError(
            f"{path}: no 'clip_model.visual.*' weights: not a CLIP4STR (VL4STR) checkpoint "
            f"(first keys: {sorted(state)[:5]})"
        )
    if stand_ins:
        report.notes.append(f"read with inert stand-ins for {stand_ins}")
    hparams = _hyper_parameters(loaded)
    report.notes.append(
        "the official test.py normalises crops with mean = std = 0.5 (its published accuracies); "
        "MODEL.RECOGNIZER.PIXEL_MEAN and PIXEL_STD [127.5, 127.5, 127.5] reproduce that"
    )
    if not hparams:
        report.notes.append("no hyper_parameters: charsets and decoding settings from the config")
    settings, charsets = clip4str_settings(state, hparams, path)
    with tempfile.TemporaryDirectory(prefix="fasttcm_charset_") as folder:
        build_charsets, final_charsets, files = _charset_values(charsets, output, folder, path)
        cfg = cfg.clone()
        cfg.defrost()
        rc = cfg.MODEL.RECOGNIZER
        for key, value in {**settings, **build_charsets}.items():
            if key not in rc:
                continue
            if rc[key] != value and key not in build_charsets:
                report.notes.append(
                    f"{_PREFIX}{key}: the config has {rc[key]!r}, the file needs {value!r}"
                )
            rc[key] = value
            report.config[_PREFIX + key] = value
        model, target = build_target_state(cfg)
    for key, value in final_charsets.items():
        rc[key] = value
        report.config[_PREFIX + key] = value
    prefix = find_module(model, CLIP4STR, "CLIP4STR recognizer")
    if prefix is None:
        raise ConversionError(
            "the config builds no CLIP4STR recognizer (MODEL.META_ARCHITECTURE "
            f"{cfg.MODEL.META_ARCHITECTURE!r}); give a recognizer or spotter config"
        )
    mapped: Mapped = {}
    for key, tensor in state.items():
        if key in _UNUSED:
            report.unused[key] = _UNUSED[key]
            report.notes.append(f"{key} dropped: {_UNUSED[key]}")
        elif prefix + key in target:
            mapped[key] = (prefix + key, tensor)
        else:
            report.unused[key] = "no counterpart in the FastTCM-D2 recognizer"
    hints = {
        prefix + "clip_model.visual.": "check MODEL.RECOGNIZER.VISION_* / IMAGE_SIZE / PATCH_SIZE",
        prefix + "clip_model.": "check MODEL.RECOGNIZER.TEXT_* / EMBED_DIM",
        prefix: "check MODEL.RECOGNIZER.CHARSET / MAX_LABEL_LENGTH / DECODER_*",
    }
    return fill_target(mapped, target, report, path, hints=hints), cfg, files
