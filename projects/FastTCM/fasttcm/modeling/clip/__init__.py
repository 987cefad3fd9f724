"""CLIP RN50 encoders (open_clip layers), tokenizer and weight loading. Needs no detectron2."""
from .image_encoder import CLIPImageEncoder, DenseAttentionPool2d, resize_attnpool_positional_embedding
from .text_encoder import CLIPTextContextEncoder
from .tokenizer import bpe_tokenizer, tokenize_prompts
from .weights import CLIPLoadResult, clip_to_detectron2_state_dict, load_clip_weights, read_clip_state_dict

__all__ = [
    "CLIPImageEncoder",
    "CLIPLoadResult",
    "CLIPTextContextEncoder",
    "DenseAttentionPool2d",
    "bpe_tokenizer",
    "clip_to_detectron2_state_dict",
    "load_clip_weights",
    "read_clip_state_dict",
    "resize_attnpool_positional_embedding",
    "tokenize_prompts",
]
