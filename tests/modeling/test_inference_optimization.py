"""Inference speed-ups keep the outputs: the attention pool against the attention formula written
out, BatchNorm folding against the unfolded layers, and ``optimize_for_inference`` on whole
models (quick-schedule detector and spotter)."""

import copy
from collections import OrderedDict

import pytest
import torch
from open_clip.modified_resnet import Bottleneck
from torch import nn

from detectron2.layers import Conv2d, get_norm

from fasttcm.modeling.batchnorm_folding import fold_batchnorm
from fasttcm.modeling.clip.image_encoder import DenseAttentionPool2d
from fasttcm.modeling.inference_optimization import optimize_for_inference
from tests.common import QUICK_DETECTOR, QUICK_SPOTTER, build_quick_model


def _randomize_batchnorms(module: nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics and affine parameters, so a wrong fold shows."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5, generator=gen)
            m.running_var.uniform_(0.25, 2.0, generator=gen)
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
            m.bias.data.uniform_(-0.2, 0.2, generator=gen)


def _reference_dense_pool(pool: DenseAttentionPool2d, x: torch.Tensor, pos: torch.Tensor):
    """Multi-head self-attention over [mean; tokens] written out with einsum and softmax."""
    batch, channels, height, width = x.shape
    heads = pool.num_heads
    tokens = x.reshape(batch, channels, height * width).permute(0, 2, 1)
    tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1) + pos
    q = tokens @ pool.q_proj.weight.T + pool.q_proj.bias
    k = tokens @ pool.k_proj.weight.T + pool.k_proj.bias
    v = tokens @ pool.v_proj.weight.T + pool.v_proj.bias
    split = lambda t: t.reshape(batch, -1, heads, channels // heads)  # noqa: E731
    logits = torch.einsum("bqhd,bkhd->bhqk", split(q), split(k)) / (channels // heads) ** 0.5
    out = torch.einsum("bhqk,bkhd->bqhd", logits.softmax(dim=-1), split(v))
    out = out.reshape(batch, -1, channels) @ pool.c_proj.weight.T + pool.c_proj.bias
    dense = out[:, 1:].permute(0, 2, 1).reshape(batch, -1, height, width)
    return out[:, 0], dense


@pytest.mark.parametrize("channels_last", [False, True])
def test_dense_attention_pool_matches_the_attention_formula(channels_last):
    torch.manual_seed(0)
    pool = DenseAttentionPool2d(3, 64, 4, 32).eval()  # stored 3x3 grid, 4 heads of 16 channels
    x = torch.randn(2, 64, 3, 3)  # the stored grid size: no positional resize involved
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        global_embedding, dense_embedding = pool(x)
        ref_global, ref_dense = _reference_dense_pool(pool, x, pool.positional_embedding)
    assert global_embedding.shape == (2, 32) and dense_embedding.shape == (2, 32, 3, 3)
    torch.testing.assert_close(global_embedding, ref_global, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dense_embedding, ref_dense, rtol=1e-5, atol=1e-5)


def test_fold_sequential_conv_and_transposed_conv():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.ConvTranspose2d(8, 4, 2, stride=2),
        nn.BatchNorm2d(4),
    )
    _randomize_batchnorms(model)
    model.eval()
    x = torch.randn(2, 3, 5, 7)
    with torch.no_grad():
        expected = model(x)
        assert fold_batchnorm(model) == 2
        folded = model(x)
    assert isinstance(model[1], nn.Identity) and isinstance(model[4], nn.Identity)
    assert model[0].bias is not None
    torch.testing.assert_close(folded, expected, rtol=1e-5, atol=1e-5)


def test_fold_detectron2_conv_and_open_clip_bottleneck():
    torch.manual_seed(0)
    conv = Conv2d(4, 6, 3, padding=1, bias=False, norm=get_norm("BN", 6), activation=torch.relu)
    block = Bottleneck(6, 4, stride=2)  # conv1/bn1 .. conv3/bn3 and an avgpool + conv + bn branch
    model = nn.Sequential(OrderedDict(conv=conv, block=block))
    _randomize_batchnorms(model, seed=1)
    model.eval()
    x = torch.randn(1, 4, 8, 10)
    with torch.no_grad():
        expected = model(x)
        assert fold_batchnorm(model) == 1 + 3 + 1
        folded = model(x)
    assert conv.norm is None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(folded, expected, rtol=1e-5, atol=1e-5)


def test_fold_refuses_training_mode():
    with pytest.raises(ValueError, match="eval"):
        fold_batchnorm(nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)))


def _inputs(seed: int, height: int = 96, width: int = 128):
    gen = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (3, height, width), generator=gen).float()
    return [{"image": image, "height": height, "width": width}]


def test_optimized_detector_keeps_its_maps():
    model = build_quick_model(QUICK_DETECTOR).eval()
    _randomize_batchnorms(model)
    optimized = copy.deepcopy(model)
    counts = optimize_for_inference(optimized)
    assert counts["folded_batchnorms"] > 0 and counts["channels_last_tensors"] > 0
    inputs = _inputs(0)
    with torch.no_grad():
        expected = model.inference(inputs, return_maps=True)[0]["db_maps"]
    with torch.inference_mode():
        got = optimized.inference(inputs, return_maps=True)[0]["db_maps"]
    for name in ("prob", "thresh"):
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5)


def test_optimized_spotter_reads_the_same_texts():
    model = build_quick_model(QUICK_SPOTTER).eval()
    _randomize_batchnorms(model)
    optimized = copy.deepcopy(model)
    optimize_for_inference(optimized)
    # a known probability map: two words, so both models crop and read the same regions
    prob = torch.zeros(1, 1, 96, 128)
    prob[0, 0, 10:30, 8:60] = 0.9
    prob[0, 0, 50:70, 40:120] = 0.9

    def inject(module, args, output):
        maps, losses = output
        return dict(maps, prob=prob.clone()), losses

    inputs = _inputs(1)
    results = []
    for m in (model, optimized):
        handle = m.text_head.register_forward_hook(inject)
        with torch.no_grad():
            results.append(m.inference(inputs)[0]["instances"])
        handle.remove()
    expected, got = results
    assert len(expected) == 2
    assert got.texts == expected.texts
    torch.testing.assert_close(got.text_scores, expected.text_scores, rtol=1e-4, atol=1e-6)
