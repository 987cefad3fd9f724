"""FastTCMDBHead: shapes at the input resolution, the DB binarization formula, losses, cfg build."""

import pytest
import torch

from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY

from fasttcm import add_fasttcm_config
from fasttcm.modeling.text_heads.db_head import FastTCMDBHead

CHANNELS = 16
SHAPES = {f"p{level}": ShapeSpec(channels=CHANNELS, stride=2**level) for level in range(2, 6)}


def _features(batch, height, width):
    return {
        name: torch.randn(batch, CHANNELS, height // s.stride, width // s.stride)
        for name, s in SHAPES.items()
    }


def _targets(batch, height, width):
    shape = (batch, 1, height, width)
    shrink = torch.zeros(shape)
    shrink[..., 8:20, 10:40] = 1
    return {
        "shrink_map": shrink,
        "shrink_mask": torch.ones(shape),
        "thresh_map": torch.full(shape, 0.3),
        "thresh_mask": (shrink > 0).float(),
    }


def test_eval_maps_are_at_the_input_resolution():
    torch.manual_seed(0)
    head = FastTCMDBHead(SHAPES, conv_dims=32, k=50.0).eval()
    with torch.no_grad():
        maps, losses = head(_features(2, 64, 96))
        assert losses == {} and set(maps) == {"prob_logits", "prob"}
        assert maps["prob"].shape == (2, 1, 64, 96)
        assert torch.allclose(maps["prob"], maps["prob_logits"].sigmoid())

        maps, _ = head(_features(2, 64, 96), return_all_maps=True)
    prob, thresh, binary = maps["prob"], maps["thresh"], maps["binary"]
    assert thresh.shape == binary.shape == (2, 1, 64, 96)
    assert ((thresh > 0) & (thresh < 1)).all()
    assert torch.allclose(binary, 1.0 / (1.0 + torch.exp(-50.0 * (prob - thresh))), atol=1e-6)


def test_training_returns_finite_losses_and_gradients():
    torch.manual_seed(0)
    head = FastTCMDBHead(SHAPES, conv_dims=32).train()
    features = _features(2, 32, 64)
    for value in features.values():
        value.requires_grad_(True)
    maps, losses = head(features, _targets(2, 32, 64))
    assert set(losses) == {"loss_prob", "loss_binary", "loss_thresh"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in head.parameters())
    with pytest.raises(ValueError, match="targets are required"):
        head(features)


def test_fused_feature_concatenates_all_levels():
    head = FastTCMDBHead(SHAPES, conv_dims=32)
    assert head.fuse(_features(1, 64, 64)).shape == (1, 32, 16, 16)
    assert head.in_features == ["p2", "p3", "p4", "p5"]


def test_built_from_cfg_through_the_registry():
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.MODEL.DB_HEAD.CONV_DIMS = 32
    cfg.MODEL.DB_HEAD.K = 20.0
    shapes = dict(SHAPES, p6=ShapeSpec(channels=CHANNELS, stride=64))
    head = SEM_SEG_HEADS_REGISTRY.get(cfg.MODEL.DB_HEAD.NAME)(cfg, shapes)
    assert isinstance(head, FastTCMDBHead)
    assert head.in_features == ["p2", "p3", "p4", "p5"] and head.k == 20.0
    assert (head.loss.alpha, head.loss.beta, head.loss.negative_ratio) == (5.0, 10.0, 3.0)

    cfg.MODEL.DB_HEAD.IN_FEATURES = ["p2", "p7"]
    with pytest.raises(ValueError, match="p7"):
        SEM_SEG_HEADS_REGISTRY.get(cfg.MODEL.DB_HEAD.NAME)(cfg, shapes)


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="stride 4"):
        FastTCMDBHead({"p3": ShapeSpec(channels=8, stride=8)}, conv_dims=32)
    with pytest.raises(ValueError, match="divisible"):
        FastTCMDBHead(SHAPES, conv_dims=30)
