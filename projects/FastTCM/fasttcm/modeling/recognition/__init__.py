"""CLIP4STR scene-text recognition (CLIP4STR, Zhao et al.): tokenizer, permutation LM, decoders,
decoding. The optimizer recipe of the recognizer is in :mod:`fasttcm.solver`."""

from ..clip.vision_text_model import CLIPVisionTextModel
from ..clip.vision_text_weights import load_clip4str_clip_weights
from .clip4str import CLIP4STR, build_clip4str_recognizer
from .decoder import CharacterDecoder
from .decoding import autoregressive_decode, refine_decode
from .plm import generate_permutations, permutation_attention_masks
from .tokenizer import CharsetTokenizer

__all__ = [
    "CLIP4STR",
    "CLIPVisionTextModel",
    "CharacterDecoder",
    "CharsetTokenizer",
    "autoregressive_decode",
    "build_clip4str_recognizer",
    "generate_permutations",
    "load_clip4str_clip_weights",
    "permutation_attention_masks",
    "refine_decode",
]
