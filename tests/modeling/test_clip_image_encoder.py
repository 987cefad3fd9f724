"""CLIPImageEncoder: stage shapes/strides, and agreement with open_clip and with PyTorch's MHA."""

import pytest
import torch
import torch.nn.functional as F
from open_clip.modified_resnet import ModifiedResNet

from fasttcm.modeling.clip import CLIPImageEncoder, resize_attnpool_positional_embedding

TINY = dict(layers=(1, 1, 1, 1), width=8, heads=2, output_dim=64)


@pytest.fixture
def encoder():
    torch.manual_seed(0)
    model = CLIPImageEncoder(**TINY).eval()
    with torch.no_grad():  # CLIP zero-inits bn3; give every BN non-trivial values
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.running_mean.uniform_(-0.1, 0.1)
    return model


def test_stage_shapes_and_strides(encoder):
    features, global_embedding, dense_embedding = encoder(torch.randn(2, 3, 64, 96))
    widths = {"res2": 32, "res3": 64, "res4": 128, "res5": 256}
    for name, stride in {"res2": 4, "res3": 8, "res4": 16, "res5": 32}.items():
        assert features[name].shape == (2, widths[name], 64 // stride, 96 // stride)
    assert encoder.stage_channels == widths
    assert global_embedding.shape == (2, 64)
    assert dense_embedding.shape == (2, 64, 2, 3)


def test_rn50_stage_channels():
    encoder = CLIPImageEncoder()
    assert encoder.stage_channels == {"res2": 256, "res3": 512, "res4": 1024, "res5": 2048}
    assert encoder.stage_strides == {"res2": 4, "res3": 8, "res4": 16, "res5": 32}
    assert encoder.attnpool.positional_embedding.shape == (50, 2048)
    assert encoder.attnpool.c_proj.out_features == 1024


def test_global_embedding_equals_open_clip_attention_pool(encoder):
    """At CLIP's 224 input the mean token's output is exactly CLIP's pooled image embedding."""
    reference = ModifiedResNet(
        layers=[1, 1, 1, 1], output_dim=64, heads=2, image_size=224, width=8
    ).eval()
    reference.load_state_dict(encoder.state_dict())
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        features, global_embedding, _ = encoder(x)
        torch.testing.assert_close(global_embedding, reference(x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(
            features["res5"],
            reference.layer4(
                reference.layer3(reference.layer2(reference.layer1(reference.stem(x))))
            ),
        )


def test_dense_embedding_equals_full_self_attention(encoder):
    """Every token is a query: compare with F.multi_head_attention_forward over all 1 + HW
    tokens."""
    pool = encoder.attnpool
    x = torch.randn(2, 256, 3, 5)
    with torch.no_grad():
        global_embedding, dense_embedding = pool(x)
        tokens = x.flatten(2).permute(2, 0, 1)  # (HW, B, C)
        tokens = torch.cat([tokens.mean(0, keepdim=True), tokens])
        tokens = (
            tokens + resize_attnpool_positional_embedding(pool.positional_embedding, 3, 5)[:, None]
        )
        out, _ = F.multi_head_attention_forward(
            tokens,
            tokens,
            tokens,
            256,
            pool.num_heads,
            in_proj_weight=None,
            in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
            bias_k=None,
            bias_v=None,
            add_zero_attn=False,
            dropout_p=0.0,
            out_proj_weight=pool.c_proj.weight,
            out_proj_bias=pool.c_proj.bias,
            use_separate_proj_weight=True,
            q_proj_weight=pool.q_proj.weight,
            k_proj_weight=pool.k_proj.weight,
            v_proj_weight=pool.v_proj.weight,
            need_weights=False,
        )
    torch.testing.assert_close(global_embedding, out[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        dense_embedding, out[1:].permute(1, 2, 0).reshape(2, 64, 3, 5), rtol=1e-4, atol=1e-5
    )


def test_positional_table_resize():
    table = torch.randn(1 + 7 * 7, 16)
    assert resize_attnpool_positional_embedding(table, 7, 7) is table
    resized = resize_attnpool_positional_embedding(table, 3, 5)
    assert resized.shape == (1 + 15, 16)
    assert torch.equal(resized[0], table[0])
    # Bilinear, align_corners=False: a constant grid stays constant, a grid of the same size is
    # kept, and downsizing a 7-grid to 1x1 samples its centre.
    constant = torch.cat([torch.zeros(1, 4), torch.full((49, 4), 2.5)])
    torch.testing.assert_close(
        resize_attnpool_positional_embedding(constant, 4, 9)[1:], torch.full((36, 4), 2.5)
    )
    centre = resize_attnpool_positional_embedding(table, 1, 1)[1]
    torch.testing.assert_close(centre, table[1 + 3 * 7 + 3])
    with pytest.raises(ValueError, match="1 \\+ S\\*S"):
        resize_attnpool_positional_embedding(torch.randn(11, 4), 2, 2)


def test_positional_table_is_resized_at_every_forward(encoder):
    """Gradients reach every cell of the stored 7x7 table through the upsampled 8x10 grid."""
    encoder.train()
    _, global_embedding, dense_embedding = encoder(torch.randn(1, 3, 256, 320))  # 8 x 10 grid
    (global_embedding.sum() + dense_embedding.sum()).backward()
    grad = encoder.attnpool.positional_embedding.grad
    assert grad.shape == (50, 256)
    assert grad[1:].abs().sum(dim=1).gt(0).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="4 stage depths"):
        CLIPImageEncoder(layers=(1, 1, 1))
    with pytest.raises(ValueError, match="not divisible by heads"):
        CLIPImageEncoder(layers=(1, 1, 1, 1), width=8, heads=3)


def test_without_attention_pool_only_stage_features():
    encoder = CLIPImageEncoder(**TINY, with_attention_pool=False)
    assert encoder.attnpool is None and not any(
        k.startswith("attnpool") for k in encoder.state_dict()
    )
    features, global_embedding, dense_embedding = encoder(torch.randn(1, 3, 64, 64))
    assert global_embedding is None and dense_embedding is None
    assert features["res5"].shape == (1, 256, 2, 2)
