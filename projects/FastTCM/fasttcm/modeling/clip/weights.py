"""Read CLIP RN50 weights from a local file and load them into the FastTCM encoders.

Two formats are accepted; nothing is ever downloaded:

* OpenAI ``RN50.pt``: a TorchScript archive, read with ``torch.jit.load``. Its state dict is
  partly float16 and carries the scalar entries ``input_resolution``, ``context_length`` and
  ``vocab_size``.
* an open_clip state dict saved with ``torch.save`` (read with ``weights_only=True``), possibly
  wrapped as ``{"state_dict": ...}`` and/or with ``module.`` prefixes (DDP), and with the text
  tower under ``text.`` (open_clip's ``CustomTextCLIP``).

CLIP names (``visual.*``, ``token_embedding.weight``, ``positional_embedding``,
``transformer.resblocks.*``, ``ln_final.*``, ``text_projection``) map onto
:class:`~fasttcm.modeling.clip.image_encoder.CLIPImageEncoder` (``visual.`` stripped) and
:class:`~fasttcm.modeling.clip.text_encoder.CLIPTextContextEncoder` (same names).

The attention-pool positional table is the one entry whose shape may differ: CLIP's is 7 x 7 (plus
the mean-token row), the model learns it on ``MODEL.FASTTCM.ATTNPOOL_GRID`` (the training input /
32, 20 in the paper configs). Both loading paths resize it once, bilinearly, as the official code
does at CLIP load: :func:`load_clip_weights` (``MODEL.FASTTCM.CLIP_WEIGHTS``) to the encoder's grid,
and :func:`clip_to_detectron2_state_dict` (checkpoints for ``MODEL.WEIGHTS``) to ``attnpool_grid``.
"""

import logging
import os
import warnings
import zipfile
from typing import Dict, List, NamedTuple, Optional

import torch
from torch import nn

from .image_encoder import CLIPImageEncoder, resize_attnpool_positional_embedding
from .pretrained import resolve_clip_weights
from .text_encoder import CLIPTextContextEncoder

__all__ = [
    "CLIPLoadResult",
    "read_clip_state_dict",
    "is_clip_text_key",
    "load_clip_weights",
    "clip_to_detectron2_state_dict",
    "resize_clip_attnpool_table",
]

logger = logging.getLogger(__name__)

_IMAGE_PREFIX = "visual."
_TEXT_KEYS = (
    "token_embedding.",
    "positional_embedding",
    "transformer.",
    "ln_final.",
    "text_projection",
)
# Entries of CLIP checkpoints that no FastTCM module uses.
_UNUSED_KEYS = (
    "input_resolution",
    "context_length",
    "vocab_size",
    "logit_scale",
    "logit_bias",
    "attn_mask",
)
_ATTNPOOL_POSITIONAL = "attnpool.positional_embedding"


class CLIPLoadResult(NamedTuple):
    """Outcome of :func:`load_clip_weights`. Names are relative to the encoders' owner."""

    missing_keys: List[str]  # encoder parameters/buffers the file did not provide
    unexpected_keys: List[str]  # file entries that match no encoder parameter


def _is_torchscript_archive(path: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") for name in archive.namelist())


def is_clip_text_key(key: str) -> bool:
    """Whether a CLIP checkpoint entry belongs to the text tower (OpenAI/open_clip names)."""
    return key.startswith(_TEXT_KEYS)


def read_clip_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Read a CLIP checkpoint into a float32 state dict with OpenAI/open_clip names.

    Args:
        path: a local OpenAI ``RN50.pt`` (TorchScript) or an open_clip state dict file, or an
            open_clip pretrained name such as ``"RN50-quickgelu:openai"`` (see ``pretrained.py``).

    Returns:
        ``{name: tensor}`` with the wrapper, ``module.`` / ``text.`` prefixes and unused scalar
        entries removed; floating-point tensors are float32 and contiguous.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file cannot be read, or holds no CLIP image or text weights. The message
            names the file.
    """
    path = resolve_clip_weights(path)  # an open_clip name ("RN50-quickgelu:openai") -> its file
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CLIP weights file {path!r} does not exist")
    if _is_torchscript_archive(path):
        try:
            with (
                warnings.catch_warnings()
            ):  # TorchScript is deprecated, yet it is the RN50.pt format
                warnings.simplefilter("ignore", FutureWarning)
                state_dict = torch.jit.load(path, map_location="cpu").state_dict()
        except Exception as e:
            raise ValueError(
                f"CLIP weights file {path!r}: cannot read the TorchScript archive ({e})"
            ) from e
    else:
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(
                f"CLIP weights file {path!r} is neither a TorchScript archive "
                "(OpenAI RN50.pt) nor a torch state dict (open_clip); "
                f"the file may be corrupt or truncated ({e})"
            ) from e
    if isinstance(state_dict, dict) and isinstance(state_dict.get("state_dict"), dict):
        state_dict = state_dict["state_dict"]
    if not isinstance(state_dict, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()
    ):
        raise ValueError(f"CLIP weights file {path!r} does not hold a state dict (name -> tensor)")

    cleaned = {}
    for key, value in state_dict.items():
        key = key[len("module.") :] if key.startswith("module.") else key
        key = (
            key[len("text.") :]
            if key.startswith("text.") and is_clip_text_key(key[len("text.") :])
            else key
        )
        if key in _UNUSED_KEYS:
            continue
        if value.is_floating_point():
            value = value.float()
        cleaned[key] = value.contiguous()
    if not any(k.startswith(_IMAGE_PREFIX) or is_clip_text_key(k) for k in cleaned):
        raise ValueError(
            f"CLIP weights file {path!r} has no CLIP image ('visual.*') or text "
            f"('token_embedding', 'transformer.*', ...) entries; first keys: {sorted(cleaned)[:5]}"
        )
    return cleaned


def resize_clip_attnpool_table(
    table: torch.Tensor, grid: int, *, source: str, channels: Optional[int] = None
) -> torch.Tensor:
    """The one-time load resize of a CLIP attention-pool positional table to a ``grid x grid`` one.

    Args:
        table: (1 + S*S, C) CLIP table (mean-token row first, then the S x S grid row-major).
        grid: the model's learned grid side (``MODEL.FASTTCM.ATTNPOOL_GRID``).
        source: the file and entry name, for messages.
        channels: the model's C, checked when given.

    Returns:
        (1 + grid*grid, C): bilinear, ``align_corners=False``; `table` itself if already that size.

    Raises:
        ValueError: `table` is not (1 + S*S, C) or has another C than the model; names `source`.
    """
    if grid < 1:
        raise ValueError(f"{source}: attention-pool grid must be >= 1, got {grid}")
    if table.dim() != 2 or (channels is not None and table.shape[1] != channels):
        expected = "(1 + S*S, C)" if channels is None else f"(1 + S*S, {channels})"
        raise ValueError(
            f"{source}: attention-pool positional table has shape {tuple(table.shape)}, the model "
            f"expects {expected}; check MODEL.FASTTCM.IMAGE_WIDTH"
        )
    try:
        resized = resize_attnpool_positional_embedding(table, grid, grid)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from e
    if resized is not table:
        logger.info(
            f"Resized {source} from {tuple(table.shape)} to {tuple(resized.shape)} "
            f"(attention-pool grid {grid}, MODEL.FASTTCM.ATTNPOOL_GRID)"
        )
    return resized


def _fit_to_module(
    state_dict: Dict[str, torch.Tensor], module: nn.Module, path: str, prefix: str
) -> Dict[str, torch.Tensor]:
    """Check shapes against `module`; resize the attention-pool positional grid when it differs."""
    own = module.state_dict()
    fitted = {}
    for key, value in state_dict.items():
        if key in own and own[key].shape != value.shape:
            if key == _ATTNPOOL_POSITIONAL:
                side = int(round((own[key].shape[0] - 1) ** 0.5))
                value = resize_clip_attnpool_table(
                    value,
                    side,
                    source=f"CLIP weights file {path!r}, '{prefix}{key}'",
                    channels=own[key].shape[1],
                )
            else:
                raise ValueError(
                    f"CLIP weights file {path!r}: '{prefix}{key}' has shape "
                    f"{tuple(value.shape)}, the model expects {tuple(own[key].shape)}; "
                    "check MODEL.FASTTCM.IMAGE_*/TEXT_*/EMBED_DIM"
                )
        fitted[key] = value
    return fitted


def load_clip_weights(
    path: str,
    *,
    image_encoder: CLIPImageEncoder,
    text_encoder: Optional[CLIPTextContextEncoder] = None,
    image_prefix: str = "visual.",
    text_prefix: str = "text_encoder.",
) -> CLIPLoadResult:
    """Load a CLIP checkpoint into the image encoder and (optionally) the text encoder.

    Missing and unexpected keys are logged (as warnings) and returned; a shape mismatch is an error.
    Entries for parts that are not built (the text encoder and the attention pool in MODE "none")
    are reported at info level only.

    Args:
        path: the checkpoint file (see :func:`read_clip_state_dict`).
        image_encoder: a :class:`CLIPImageEncoder`.
        text_encoder: a :class:`CLIPTextContextEncoder`, or None when the model has no text branch.
        image_prefix, text_prefix: how the encoders are named in their owner; used in the returned
            and logged key names only.

    Returns:
        :class:`CLIPLoadResult` with names prefixed by `image_prefix` / `text_prefix`.
    """
    state_dict = read_clip_state_dict(path)
    image_sd = {
        k[len(_IMAGE_PREFIX) :]: v for k, v in state_dict.items() if k.startswith(_IMAGE_PREFIX)
    }
    text_sd = {k: v for k, v in state_dict.items() if is_clip_text_key(k)}
    other = sorted(
        k for k in state_dict if not k.startswith(_IMAGE_PREFIX) and not is_clip_text_key(k)
    )

    missing, unexpected = [], other
    if image_encoder.attnpool is None:
        pool_keys = [k for k in image_sd if k.startswith("attnpool.")]
        image_sd = {k: v for k, v in image_sd.items() if not k.startswith("attnpool.")}
        if pool_keys:
            logger.info(
                f"{len(pool_keys)} attention-pool entries of {path} unused: "
                "the model has no attention pool"
            )
    parts = [(image_encoder, image_sd, image_prefix)]
    if text_encoder is not None:
        parts.append((text_encoder, text_sd, text_prefix))
    elif text_sd:
        logger.info(
            f"{len(text_sd)} text-encoder entries of {path} unused: the model has no text branch"
        )
    for module, part_sd, prefix in parts:
        result = module.load_state_dict(_fit_to_module(part_sd, module, path, prefix), strict=False)
        missing += [prefix + k for k in result.missing_keys]
        unexpected += [prefix + k for k in result.unexpected_keys]

    if missing:
        logger.warning(
            f"CLIP weights {path}: {len(missing)} missing keys (left at random init): {missing}"
        )
    if unexpected:
        logger.warning(
            f"CLIP weights {path}: {len(unexpected)} unexpected keys (ignored): {unexpected}"
        )
    logger.info(f"Loaded CLIP weights from {path}")
    return CLIPLoadResult(missing, unexpected)


def clip_to_detectron2_state_dict(
    state_dict: Dict[str, torch.Tensor],
    *,
    image_prefix: str = "backbone.bottom_up.visual.",
    text_prefix: str = "backbone.bottom_up.text_encoder.",
    attnpool_grid: Optional[int] = None,
) -> Dict[str, torch.Tensor]:
    """Rename a CLIP state dict (from :func:`read_clip_state_dict`) to FastTCM module names.

    The defaults are the names inside a meta-architecture whose ``backbone`` is
    ``build_fasttcm_cr50_fpn_backbone`` or ``build_fasttcm_cr50_fpnc_backbone`` (both hold the
    FastTCM backbone as ``bottom_up``). Entries that are neither image nor text weights are
    dropped.

    Args:
        attnpool_grid: the target model's ``MODEL.FASTTCM.ATTNPOOL_GRID``; when given, the
            attention-pool positional table is resized to it here, once (detectron2's checkpointer
            skips entries whose shape differs from the model's, so it must match). None keeps
            the file's grid (CLIP: 7).

    Returns:
        ``{prefixed name: tensor}``, ready to be saved as ``{"model": ...}`` for ``MODEL.WEIGHTS``.
    """
    renamed = {}
    for key, value in state_dict.items():
        if key.startswith(_IMAGE_PREFIX):
            if attnpool_grid is not None and key == _IMAGE_PREFIX + _ATTNPOOL_POSITIONAL:
                value = resize_clip_attnpool_table(value, attnpool_grid, source=f"'{key}'")
            renamed[image_prefix + key[len(_IMAGE_PREFIX) :]] = value
        elif is_clip_text_key(key):
            renamed[text_prefix + key] = value
    return renamed
