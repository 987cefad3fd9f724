"""Load a CLIP ViT checkpoint into :class:`CLIPVisionTextModel` (the CLIP4STR encoders).

The file is local (``MODEL.RECOGNIZER.CLIP_WEIGHTS``); nothing is downloaded. Both formats of
:func:`~fasttcm.modeling.clip.weights.read_clip_state_dict` are accepted: the OpenAI TorchScript
archive (``ViT-B-16.pt``) and an open_clip state dict.
"""

import logging

from .image_encoder import resize_attnpool_positional_embedding
from .vision_text_model import CLIPVisionTextModel
from .weights import CLIPLoadResult, is_clip_text_key, read_clip_state_dict

__all__ = ["load_clip4str_clip_weights"]

logger = logging.getLogger(__name__)


def load_clip4str_clip_weights(path: str, clip_model: CLIPVisionTextModel) -> CLIPLoadResult:
    """Load a CLIP ViT checkpoint (OpenAI TorchScript ``ViT-B-16.pt`` or open_clip state dict).

    The ViT positional table, (1 + h * w, width) in the file, is resized bilinearly when the
    checkpoint's patch grid h x w differs from the model's; the text positional table,
    (rows, text_width), is cut to the model's rows. Any other shape mismatch is an error.

    Args:
        path: the checkpoint file.
        clip_model: the towers to fill; entries it does not have are reported, not loaded.

    Returns:
        :class:`CLIPLoadResult` with names relative to `clip_model`.

    Raises:
        FileNotFoundError, ValueError: unreadable file or mismatching shapes (the message names
            the file).
    """
    state_dict = read_clip_state_dict(path)
    own = clip_model.state_dict()
    fitted, unexpected = {}, []
    for key, value in state_dict.items():
        if not (key.startswith("visual.") or is_clip_text_key(key)) or key not in own:
            unexpected.append(key)
            continue
        target = own[key].shape
        if value.shape != target:
            if key == "visual.positional_embedding" and value.shape[1] == target[1]:
                grid = clip_model.visual.grid_size
                value = resize_attnpool_positional_embedding(value, grid[0], grid[1])
                logger.info(f"Resized {key} of {path} to the {grid[0]}x{grid[1]} patch grid")
            elif (
                key == "positional_embedding"
                and value.shape[0] >= target[0]
                and value.shape[1] == target[1]
            ):
                value = value[: target[0]]
            else:
                raise ValueError(
                    f"CLIP weights file {path!r}: '{key}' has shape {tuple(value.shape)}, the "
                    f"recognizer expects {tuple(target)}; check "
                    "MODEL.RECOGNIZER.{VISION,TEXT}_* / EMBED_DIM / PATCH_SIZE"
                )
        fitted[key] = value
    result = clip_model.load_state_dict(fitted, strict=False)
    if not any(k.startswith("visual.") for k in fitted):
        raise ValueError(
            f"CLIP weights file {path!r} holds no ViT image tower ('visual.conv1.weight', ...)"
        )
    if result.missing_keys:
        logger.warning(
            f"CLIP weights {path}: {len(result.missing_keys)} missing keys (random init): "
            f"{result.missing_keys}"
        )
    if unexpected:
        logger.info(
            f"CLIP weights {path}: {len(unexpected)} entries unused by the recognizer: "
            f"{unexpected[:10]}"
        )
    logger.info(f"Loaded the recognizer's CLIP weights from {path}")
    return CLIPLoadResult(list(result.missing_keys), unexpected)
