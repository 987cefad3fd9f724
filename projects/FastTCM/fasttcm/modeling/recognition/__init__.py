"""CLIP4STR scene-text recognition (clip4str.md): charsets, permutation LM, decoders, decoding."""

from .charset import CharsetAdapter, CharsetTokenizer, evaluation_charset, load_charset, preprocess_label
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
    "CharsetAdapter",
    "CharsetTokenizer",
    "autoregressive_decode",
    "build_clip4str_recognizer",
    "clip4str_param_groups",
    "evaluation_charset",
    "generate_permutations",
    "load_charset",
    "load_clip4str_clip_weights",
    "permutation_attention_masks",
    "preprocess_label",
    "refine_decode",
]
