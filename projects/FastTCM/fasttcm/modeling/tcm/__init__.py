"""FastTCM-CR50 text-image interaction modules (described in projects/FastTCM/docs/model.md)."""

from .backbone import FastTCMBackbone, resolve_class_prompts
from .bimodal_similarity_matching import BimodalSimilarityMatching
from .context_decoder import (
    ContextDecoder,
    ContextDecoderLayer,
    GatedContextDecoder,
    TextContextDecoder,
)
from .instance_language_matching import balanced_bce_loss, per_class_bce_loss, score_map
from .language_prompt_generator import LanguagePromptGenerator, TextEmbeddingCache
from .prompts import PromptLearner
from .visual_prompt_generator import VisualPromptGenerator

__all__ = [
    "BimodalSimilarityMatching",
    "ContextDecoder",
    "ContextDecoderLayer",
    "FastTCMBackbone",
    "GatedContextDecoder",
    "LanguagePromptGenerator",
    "PromptLearner",
    "TextContextDecoder",
    "TextEmbeddingCache",
    "VisualPromptGenerator",
    "balanced_bce_loss",
    "per_class_bce_loss",
    "resolve_class_prompts",
    "score_map",
]
