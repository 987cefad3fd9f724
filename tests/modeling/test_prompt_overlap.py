"""Class prompts whose text embeddings cannot be told apart are found and reported at build time."""

import logging

import pytest
import torch

from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone

from fasttcm import add_fasttcm_config
from fasttcm.modeling.tcm.prompt_overlap import overlapping_prompt_pairs
from fasttcm.modeling.tcm.prompts import PromptLearner

DOTA_NAMES = [
    "plane",
    "baseball diamond",
    "bridge",
    "ground track field",
    "small vehicle",
    "large vehicle",
    "ship",
    "tennis court",
    "basketball court",
    "storage tank",
    "soccer ball field",
    "roundabout",
    "harbor",
    "swimming pool",
    "helicopter",
]


class _FixedEncoder(torch.nn.Module):
    """Maps prompt k to a given embedding row (the signature of CLIPTextContextEncoder)."""

    def __init__(self, rows):
        super().__init__()
        self.rows = torch.tensor(rows, dtype=torch.float32)

    def forward(self, token_ids, context, conditional_cue=None):
        return self.rows[None]


def test_pairs_above_the_threshold_are_listed_most_similar_first():
    learner = PromptLearner(class_prompts=["a", "b", "c", "d"], context_length=2, token_width=8)
    rows = [[1.0, 0.0, 0.0], [0.999, 0.04, 0.0], [0.0, 1.0, 0.0], [2.0, 0.0, 0.0]]
    pairs = overlapping_prompt_pairs(_FixedEncoder(rows), learner)
    assert [(a, b) for a, b, _ in pairs] == [
        ("a", "d"),
        ("a", "b"),
        ("b", "d"),
    ]  # ties keep prompt order
    assert pairs[0][2] == pytest.approx(1.0)
    assert all(c >= 0.98 for _, _, c in pairs)
    assert (
        overlapping_prompt_pairs(
            _FixedEncoder([[1.0, 0.0], [0.0, 1.0]]),
            PromptLearner(class_prompts=["x", "y"], context_length=1, token_width=8),
        )
        == []
    )
    single = PromptLearner(class_prompts=["text"], context_length=1, token_width=8)
    assert overlapping_prompt_pairs(_FixedEncoder([[1.0, 0.0]]), single) == []


def _dota_prompts_cfg():
    """A tiny FastTCM backbone whose K = 15 prompts are the DOTA-v1.0 class names."""
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.MODEL.BACKBONE.NAME = "build_fasttcm_cr50_fpn_backbone"
    cfg.MODEL.FPN.OUT_CHANNELS = 16
    fc = cfg.MODEL.FASTTCM
    fc.IMAGE_LAYERS, fc.IMAGE_WIDTH, fc.IMAGE_HEADS, fc.EMBED_DIM = [1, 1, 1, 1], 8, 2, 64
    fc.TEXT_WIDTH, fc.TEXT_LAYERS, fc.TEXT_HEADS = 128, 2, 4
    fc.DECODER_WIDTH, fc.DECODER_HEADS, fc.DECODER_LAYERS = 16, 2, 1
    fc.CLASS_PROMPTS = DOTA_NAMES
    return cfg


def test_random_text_encoder_with_many_prompts_warns_at_build_time(caplog):
    cfg = _dota_prompts_cfg()
    torch.manual_seed(0)
    with caplog.at_level(logging.WARNING, logger="fasttcm"):
        build_backbone(cfg, ShapeSpec(channels=3))
    warnings = [r.getMessage() for r in caplog.records if "nearly parallel" in r.getMessage()]
    assert len(warnings) == 1 and "CLIP_WEIGHTS" in warnings[0] and "stays frozen" in warnings[0]
    assert "LANGUAGE_PROMPT False" in warnings[0]


def test_the_language_prompt_cue_is_what_makes_random_prompts_parallel():
    """Same seed, same random text encoder: with the LPG's cue nearly all DOTA prompt pairs are
    parallel; without it (LANGUAGE_PROMPT False) nearly none are."""
    cfg = _dota_prompts_cfg()
    counts = {}
    for with_cue in (True, False):
        cfg.MODEL.FASTTCM.LANGUAGE_PROMPT = with_cue
        torch.manual_seed(0)
        bottom_up = build_backbone(cfg, ShapeSpec(channels=3)).bottom_up
        cue = bottom_up.language_prompt_generator() if with_cue else None
        counts[with_cue] = len(
            overlapping_prompt_pairs(bottom_up.text_encoder, bottom_up.prompt_learner, cue)
        )
    assert counts[True] >= 90 and counts[False] <= 10, counts
