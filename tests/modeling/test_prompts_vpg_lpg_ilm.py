"""Prompt learner, LPG, BSM, context decoders/VPG, score map and aux losses: inits and known
values."""

import math

import pytest
import torch
import torch.nn.functional as F

from fasttcm.modeling.tcm import (
    BimodalSimilarityMatching,
    ContextDecoder,
    LanguagePromptGenerator,
    PromptLearner,
    TextContextDecoder,
    TextEmbeddingCache,
    VisualPromptGenerator,
    balanced_bce_loss,
    per_class_bce_loss,
    score_map,
)


def _softplus(x: float) -> float:
    """BCE-with-logits of logit x against target 0 (= log(1 + e^x))."""
    return math.log1p(math.exp(x))


# ---------------------------------------------------------------------------------------------
# Prompts and language prompt generator
# ---------------------------------------------------------------------------------------------
def test_prompt_learner_context_init_and_tokens():
    torch.manual_seed(0)
    learner = PromptLearner(
        class_prompts=["plane", "small vehicle"], context_length=4, token_width=512
    )
    token_ids, contexts = learner()
    assert contexts.shape == (1, 4, 512) and contexts.requires_grad
    assert contexts.abs().max() <= 2.0  # trunc_normal std 1 truncated at +-2
    assert 0.8 < contexts.std().item() < 0.95  # std of N(0, 1) truncated at +-2 is 0.880
    assert token_ids.shape == (2, 4) and learner.num_prompts == 2
    assert "token_ids" not in learner.state_dict()  # follows the config, not checkpoints
    with pytest.raises(ValueError, match="n_ctx"):
        PromptLearner(class_prompts=["text"], context_length=-1)


def test_language_prompt_generator_modes_and_init():
    torch.manual_seed(0)
    tcm = LanguagePromptGenerator(mode="tcm", visual_dim=1024, token_width=512)
    linears = [m for m in tcm.mlp if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(1024, 1024), (512, 1024)]
    assert all(m.bias.eq(0).all() for m in linears)
    assert linears[0].weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert [type(m).__name__ for m in tcm.mlp] == [
        "LayerNorm",
        "Linear",
        "ReLU",
        "LayerNorm",
        "Linear",
    ]
    assert tcm.meta_query is None and tcm.is_image_conditioned
    assert tcm(torch.randn(3, 1024)).shape == (3, 512)
    with pytest.raises(ValueError, match="needs the global image embedding"):
        tcm()

    fast = LanguagePromptGenerator(mode="fasttcm", visual_dim=1024, token_width=512)
    assert (
        fast.meta_query.shape == (1024,) and 0.9 < fast.meta_query.std().item() < 1.1
    )  # MQ ~ N(0, 1)
    cue = fast(torch.randn(3, 1024))  # the image is ignored: the cue depends on MQ only
    assert cue.shape == (1, 512)
    torch.testing.assert_close(cue, fast())
    with pytest.raises(ValueError, match="mode must be one of"):
        LanguagePromptGenerator(mode="clip")


# ---------------------------------------------------------------------------------------------
# Bimodal similarity matching
# ---------------------------------------------------------------------------------------------
def test_bsm_identity_init_and_hand_computed_value():
    bsm = BimodalSimilarityMatching(embed_dim=1024)
    assert torch.equal(bsm.projection.weight, torch.eye(1024)) and bsm.projection.bias is None

    bsm = BimodalSimilarityMatching(embed_dim=2)
    text = torch.tensor([[[3.0, 4.0]]])  # (1, K=1, 2): unit vector (0.6, 0.8)
    image = torch.tensor([[5.0, 0.0], [0.0, 2.0]])  # (B=2, 2): g = (1, 0) and (0, 1)
    out = bsm(text, image)
    # t-hat = <t, g> g + t: (0.6 * (1, 0) + (0.6, 0.8)) and (0.8 * (0, 1) + (0.6, 0.8))
    torch.testing.assert_close(out, torch.tensor([[[1.2, 0.8]], [[0.6, 1.6]]]))


# ---------------------------------------------------------------------------------------------
# Context decoders and visual prompt generator
# ---------------------------------------------------------------------------------------------
def test_context_decoder_structure_shapes_and_memory_broadcast():
    torch.manual_seed(0)
    decoder = ContextDecoder(embed_dim=64, width=32, heads=4, layers=3, dropout=0.1).eval()
    assert len(decoder.layers) == 3
    for layer in decoder.layers:
        for attn in (layer.self_attn, layer.cross_attn):
            assert (
                attn.q_proj.bias is None and attn.k_proj.bias is None and attn.v_proj.bias is None
            )
            assert attn.out_proj.bias is not None
        assert layer.mlp[0].out_features == 128  # MLP 4x width
    assert [type(m).__name__ for m in decoder.memory_proj] == ["LayerNorm", "Linear", "LayerNorm"]
    queries, memory = torch.randn(3, 10, 64), torch.randn(1, 5, 64)
    out = decoder(queries, memory)
    assert out.shape == (3, 10, 64)
    torch.testing.assert_close(out, decoder(queries, memory.expand(3, -1, -1)))
    torch.testing.assert_close(out[1:2], decoder(queries[1:2], memory))


def test_decoder_attention_matches_torch_multi_head_attention():
    torch.manual_seed(0)
    attn = ContextDecoder(embed_dim=16, width=32, heads=4, layers=1).layers[0].cross_attn.eval()
    query, memory = torch.randn(2, 6, 32), torch.randn(2, 9, 32)
    out, _ = F.multi_head_attention_forward(
        query.transpose(0, 1),
        memory.transpose(0, 1),
        memory.transpose(0, 1),
        32,
        4,
        in_proj_weight=None,
        in_proj_bias=None,
        bias_k=None,
        bias_v=None,
        add_zero_attn=False,
        dropout_p=0.0,
        out_proj_weight=attn.out_proj.weight,
        out_proj_bias=attn.out_proj.bias,
        use_separate_proj_weight=True,
        q_proj_weight=attn.q_proj.weight,
        k_proj_weight=attn.k_proj.weight,
        v_proj_weight=attn.v_proj.weight,
        need_weights=False,
    )
    torch.testing.assert_close(attn(query, memory), out.transpose(0, 1), rtol=1e-4, atol=1e-6)


def test_gate_init_values_and_zero_gates_are_identity():
    torch.manual_seed(0)
    vpg = VisualPromptGenerator(embed_dim=64, width=32, heads=2, layers=1)
    text_side = TextContextDecoder(embed_dim=64, width=32, heads=2, layers=1)
    assert vpg.gamma.shape == () and vpg.gamma.item() == pytest.approx(1e-3)
    assert text_side.gamma.shape == (64,) and torch.allclose(
        text_side.gamma, torch.full((64,), 1e-3)
    )

    dense, text, global_embedding = (
        torch.randn(2, 64, 3, 4),
        torch.randn(2, 5, 64),
        torch.randn(2, 64),
    )
    prompted = vpg(dense, text)
    assert prompted.shape == dense.shape
    assert 0 < (prompted - dense).abs().max() < 0.1  # small gated residual at init
    with torch.no_grad():
        vpg.gamma.zero_()
        text_side.gamma.zero_()
    assert torch.equal(vpg(dense, text), dense)
    assert torch.equal(text_side(text, global_embedding, dense), text)


def test_vpg_residual_is_gamma_times_decoder_output():
    torch.manual_seed(0)
    vpg = VisualPromptGenerator(embed_dim=64, width=32, heads=2, layers=2).eval()
    dense, text = torch.randn(1, 64, 2, 3), torch.randn(1, 1, 64)
    expected = (
        vpg.decoder(dense.flatten(2).transpose(1, 2), text).transpose(1, 2).reshape(1, 64, 2, 3)
    )
    torch.testing.assert_close(vpg(dense, text), dense + 1e-3 * expected)


# ---------------------------------------------------------------------------------------------
# Score map and auxiliary losses
# ---------------------------------------------------------------------------------------------
def test_score_map_is_cosine_in_range():
    torch.manual_seed(0)
    dense, text = torch.randn(2, 16, 3, 4), torch.randn(1, 3, 16)
    scores = score_map(dense, text)
    assert scores.shape == (2, 3, 3, 4)
    assert scores.min() >= -1 and scores.max() <= 1
    torch.testing.assert_close(
        scores[1, 2, 0, 3], F.cosine_similarity(dense[1, :, 0, 3], text[0, 2], dim=0)
    )
    # A text embedding parallel to a pixel embedding scores 1 there, anti-parallel -1.
    aligned = torch.stack([dense[0, :, 1, 1] * 3, -dense[0, :, 1, 1]])[None]
    scores = score_map(dense[:1], aligned)
    torch.testing.assert_close(scores[0, :, 1, 1], torch.tensor([1.0, -1.0]))


def test_balanced_bce_hand_case():
    logits = torch.tensor([[[[2.0, -1.0, 0.0], [1.0, 3.0, -2.0]]]])
    target = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    mask = torch.ones_like(target)
    # 1 positive (logit 2), 5 negatives; 3 hardest negatives: logits 3, 1, 0.
    expected = (_softplus(-2.0) + _softplus(3.0) + _softplus(1.0) + _softplus(0.0)) / 4
    assert balanced_bce_loss(logits, target, mask).item() == pytest.approx(expected, rel=1e-5)
    # Masking out the hardest negative: the next ones (1, 0, -1) are mined instead.
    mask[0, 1, 1] = 0
    expected = (_softplus(-2.0) + _softplus(1.0) + _softplus(0.0) + _softplus(-1.0)) / 4
    assert balanced_bce_loss(logits, target, mask).item() == pytest.approx(expected, rel=1e-5)
    # negative_ratio 1 keeps one negative.
    expected = (_softplus(-2.0) + _softplus(1.0)) / 2
    assert balanced_bce_loss(logits, target, mask, negative_ratio=1.0).item() == pytest.approx(
        expected, rel=1e-5
    )


def test_balanced_bce_without_positives_is_zero_and_differentiable():
    logits = torch.randn(2, 1, 4, 4, requires_grad=True)
    target = torch.zeros(2, 128, 128)
    loss = balanced_bce_loss(logits, target, torch.ones_like(target))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_balanced_bce_upsamples_logits_to_the_target():
    logits = torch.full((1, 1, 2, 2), 0.5)  # stride-32 map of an input of 64 x 64
    target = torch.zeros(1, 64, 64)
    target[0, :32] = 1  # 2048 positives, 2048 negatives (all kept)
    expected = (_softplus(-0.5) + _softplus(0.5)) / 2
    assert balanced_bce_loss(logits, target, torch.ones_like(target)).item() == pytest.approx(
        expected, rel=1e-5
    )
    assert balanced_bce_loss(logits[:, 0], target, torch.ones_like(target)).item() == pytest.approx(
        expected, rel=1e-5
    )
    with pytest.raises(ValueError, match="target"):
        balanced_bce_loss(logits, target, torch.ones(1, 32, 32))


def test_per_class_bce_known_value_and_upsampling():
    logits = torch.zeros(2, 3, 2, 2)
    logits[:, 1] = 2.0
    targets = torch.zeros(2, 3, 64, 64)
    targets[:, 1] = 1.0
    # class 0 and 2: BCE(0, 0) = log 2; class 1: BCE(2, 1) = softplus(-2)
    expected = (2 * math.log(2.0) + _softplus(-2.0)) / 3
    assert per_class_bce_loss(logits, targets).item() == pytest.approx(expected, rel=1e-5)
    assert math.isfinite(per_class_bce_loss(logits, torch.zeros_like(targets)).item())
    with pytest.raises(ValueError, match="per_class_bce_loss"):
        per_class_bce_loss(logits, targets[:, :2])


# ---------------------------------------------------------------------------------------------
# Text-embedding cache
# ---------------------------------------------------------------------------------------------
def test_text_embedding_cache_invalidation():
    weight = torch.nn.Parameter(torch.ones(3))
    calls = []

    def compute():
        calls.append(1)
        return weight * 2

    cache = TextEmbeddingCache()
    first = cache.get([weight], compute)
    assert not first.requires_grad  # computed under no_grad
    assert cache.get([weight], compute) is first and len(calls) == 1
    with torch.no_grad():
        weight.add_(1.0)  # in-place update (optimizer step, load_state_dict)
    torch.testing.assert_close(cache.get([weight], compute), torch.full((3,), 4.0))
    assert len(calls) == 2
    weight.data = torch.zeros(3)  # new storage
    torch.testing.assert_close(cache.get([weight], compute), torch.zeros(3))
    cache.clear()
    cache.get([weight], compute)
    assert len(calls) == 4
