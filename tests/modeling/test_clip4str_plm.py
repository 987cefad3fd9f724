"""Permutation language modelling: permutation sets and attention masks (docs/recognizer.md)."""

import math

import pytest
import torch

from fasttcm.modeling.recognition.decoding import causal_mask, cloze_query_mask
from fasttcm.modeling.recognition.plm import generate_permutations, permutation_attention_masks

X = float("-inf")


def test_masks_of_the_canonical_order_are_causal():
    content, query = permutation_attention_masks(torch.tensor([0, 1, 2, 3]))
    expected = torch.tensor([[0, X, X], [0, 0, X], [0, 0, 0]])
    assert torch.equal(content, expected)
    assert torch.equal(query, expected)  # query of position i + 1 sees BOS, c_1..c_i


def test_masks_of_the_eos_first_reverse_order():
    # order: BOS, EOS, c2, c1 -> EOS sees only BOS (null context), c2 sees BOS, c1 sees BOS and c2
    content, query = permutation_attention_masks(torch.tensor([0, 3, 2, 1]))
    assert torch.equal(content, torch.tensor([[0, X, X], [0, 0, 0], [0, X, 0]]))
    assert torch.equal(query, torch.tensor([[0, X, 0], [0, X, X], [0, X, X]]))


def test_masks_of_the_plain_reverse_order():
    # order: BOS, c2, c1, EOS -> c1 sees BOS and c2, c2 sees BOS, EOS sees everything
    content, query = permutation_attention_masks(torch.tensor([0, 2, 1, 3]))
    assert torch.equal(content, torch.tensor([[0, X, X], [0, 0, 0], [0, X, 0]]))
    assert torch.equal(query, torch.tensor([[0, X, 0], [0, X, X], [0, 0, 0]]))


def test_decoding_masks():
    assert torch.equal(causal_mask(3), torch.tensor([[0, X, X], [0, 0, X], [0, 0, 0]]))
    # cloze: query i sees everything but position i + 1 (the token it predicts)
    assert torch.equal(
        cloze_query_mask(4, 3), torch.tensor([[0, X, 0], [0, 0, X], [0, 0, 0], [0, 0, 0]])
    )


def _is_valid(perm, num_chars):
    return perm[0] == 0 and sorted(perm.tolist()) == list(range(num_chars + 2))


def test_one_character_uses_only_the_canonical_order():
    assert generate_permutations(1).tolist() == [[0, 1, 2]]


def test_two_characters_give_canonical_and_eos_first_reverse():
    assert generate_permutations(2).tolist() == [[0, 1, 2, 3], [0, 3, 2, 1]]


@pytest.mark.parametrize("num_chars", [3, 4, 7])
def test_six_orders_canonical_reverse_and_mirrored_random(num_chars):
    perms = generate_permutations(num_chars, generator=torch.Generator().manual_seed(num_chars))
    assert perms.shape == (6, num_chars + 2)
    assert all(_is_valid(p, num_chars) for p in perms)
    eos = num_chars + 1
    assert perms[0].tolist() == list(range(num_chars + 2))
    assert perms[1].tolist() == [0, eos] + list(range(num_chars, 0, -1))  # EOS first, then reverse
    for i in (2, 4):  # random orders, each followed by its mirror
        assert perms[i, -1] == eos and perms[i + 1, -1] == eos
        assert torch.equal(perms[i + 1, 1:-1], perms[i, 1:-1].flip(0))
    if num_chars < 5:  # drawn from the pool without replacement: the two random pairs differ
        pairs = {
            frozenset([tuple(perms[i, 1:-1].tolist()), tuple(perms[i + 1, 1:-1].tolist())])
            for i in (2, 4)
        }
        assert len(pairs) == 2
        assert all(tuple(range(1, num_chars + 1)) not in pair for pair in pairs)


def test_unmirrored_permutations():
    perms = generate_permutations(
        3, num_perms=6, mirrored=False, generator=torch.Generator().manual_seed(0)
    )
    assert len(perms) == min(6, math.factorial(3))
    assert len({tuple(p.tolist()) for p in perms}) == len(perms)
    assert all(_is_valid(p, 3) for p in perms)


def test_permutation_arguments_are_checked():
    with pytest.raises(ValueError, match="max_num_chars"):
        generate_permutations(0)
