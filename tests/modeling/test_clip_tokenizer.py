"""tokenize_prompts: known CLIP BPE ids, padding, errors, and no network access."""

import os
import socket

import open_clip
import pytest
import torch

from fasttcm.modeling.clip import tokenize_prompts
from fasttcm.modeling.clip.tokenizer import bpe_tokenizer

SOS, EOS = 49406, 49407


def test_default_prompt_is_14_tokens_with_known_ids():
    ids = tokenize_prompts(["the pixels of many arbitrary-shape text instances."])
    expected = [SOS, 518, 34099, 539, 1346, 22702, 856, 268, 6448, 4160, 1264, 3515, 269, EOS]
    assert ids.tolist() == [expected]


def test_padding_and_eos_is_argmax():
    ids = tokenize_prompts(["plane", "small-vehicle", "ground track field"])
    # "small-vehicle" -> small, -, vehicle: the longest rows have 3 + 2 tokens.
    assert ids.tolist() == [
        [SOS, 5363, EOS, 0, 0],
        [SOS, 2442, 268, 5299, EOS],
        [SOS, 2461, 2700, 1570, EOS],
    ]
    assert ids.argmax(dim=-1).tolist() == [2, 4, 4]
    # Same ids as open_clip's own tokenize (which pads to 77).
    reference = open_clip.tokenize(["plane", "small-vehicle", "ground track field"])
    assert torch.equal(reference[:, :5], ids) and reference[:, 5:].eq(0).all()


def test_vocabulary_is_bundled_and_read_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the tokenizer tried to open a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    bpe_tokenizer.cache_clear()
    tokenizer = bpe_tokenizer()
    assert tokenizer.vocab_size == 49408
    path = open_clip.tokenizer.default_bpe()
    assert os.path.isfile(path) and os.path.dirname(path) == os.path.dirname(open_clip.__file__)
    assert tokenize_prompts(["text"]).tolist() == [[SOS, 4160, EOS]]


def test_errors():
    with pytest.raises(ValueError, match="no class prompts"):
        tokenize_prompts([])
    with pytest.raises(ValueError, match="blank class prompt"):
        tokenize_prompts(["text", "  "])
    with pytest.raises(ValueError, match="list of prompts"):
        tokenize_prompts("text")
    with pytest.raises(ValueError, match="has 6 tokens"):
        tokenize_prompts(["a b c d"], max_length=5)
