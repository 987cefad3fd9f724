"""CLIP encoders (open_clip layers): the RN50 encoders of FastTCM, the ViT and text towers of
CLIP4STR, the BPE tokenizer and weight loading. Needs no detectron2."""

from .conv_stem import ConvPatchStem
from .image_encoder import (
    CLIPImageEncoder,
    DenseAttentionPool2d,
    resize_attnpool_positional_embedding,
)
from .text_encoder import CLIPTextContextEncoder
from .tokenizer import bpe_tokenizer, tokenize_prompts
from .vision_text_model import CLIPVisionTextModel
from .vision_text_weights import load_clip4str_clip_weights
from .weights import (
    CLIPLoadResult,
    clip_to_detectron2_state_dict,
    load_clip_weights,
    read_clip_state_dict,
)

__all__ = [
    "CLIPImageEncoder",
    "CLIPLoadResult",
    "CLIPTextContextEncoder",
    "CLIPVisionTextModel",
    "ConvPatchStem",
    "DenseAttentionPool2d",
    "bpe_tokenizer",
    "clip_to_detectron2_state_dict",
    "load_clip4str_clip_weights",
    "load_clip_weights",
    "read_clip_state_dict",
    "resize_attnpool_positional_embedding",
    "tokenize_prompts",
]
