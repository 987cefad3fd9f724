"""CLIP4STR scene-text recognition (CLIP4STR, Zhao et al.): tokenizer, permutation LM, decoders, decoding."""

from .tokenizer import CharsetTokenizer
from .clip4str import (
    CLIP4STR,
    CharacterDecoder,
    CLIPVisionTextModel,
    build_clip4str_recognizer,
    clip4str_param_groups,
    load_clip4str_clip_weights,
)
from .decoding import autoregressive_decode, refine_decode
from .plm import generate_permutations, permutation_attention_masks

__all__ = [
    "CLIP4STR",
    "CLIPVisionTextModel",
    "CharacterDecoder",
    "CharsetTokenizer",
    "autoregressive_decode",
    "build_clip4str_recognizer",
    "clip4str_param_groups",
    "generate_permutations",
    "load_clip4str_clip_weights",
    "permutation_attention_masks",
    "refine_decode",
]
