"""The FPNC-exact neck of TCM-DBNet (``build_fasttcm_cr50_fpnc_backbone``) and the DB head on it.

The neck's output is checked against the fusion written out here with ``F.conv2d`` on the same
weights (laterals -> top-down nearest sum -> smooth convs -> nearest upsampling -> concat); the DB
head without fuse convs against the official ``DBHead`` layout built from plain torch layers.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, build_backbone, build_model
from detectron2.utils.events import EventStorage

from fasttcm.data.db_targets import make_db_targets
from fasttcm.modeling.backbone import FastTCMFPNC
from fasttcm.modeling.text_heads.db_head import FastTCMDBHead
from tests.common import (
    QUICK_DETECTOR,
    config_id,
    get_paper_config_files,
    load_config,
)

LEVELS = ["res2", "res3", "res4", "res5"]


def _backbone(*overrides):
    torch.manual_seed(0)
    cfg = load_config(QUICK_DETECTOR, "MODEL.FASTTCM.DECODER_DROPOUT", 0.0, *overrides)
    return build_backbone(cfg, ShapeSpec(channels=3))


def _reference_fpnc(features, lateral_weights, smooth_weights):
    """FPNC written out: 1x1 laterals, coarse-to-fine nearest-upsample-and-add, 3x3 smooth convs,
    nearest upsampling to level 0, concat level 0..3."""
    laterals = [F.conv2d(features[name], w) for name, w in zip(LEVELS, lateral_weights)]
    for level in (3, 2, 1):
        coarse = F.interpolate(laterals[level], size=laterals[level - 1].shape[-2:])
        laterals[level - 1] = laterals[level - 1] + coarse
    smoothed = [F.conv2d(x, w, padding=1) for x, w in zip(laterals, smooth_weights)]
    size = smoothed[0].shape[-2:]
    return torch.cat([F.interpolate(x, size=size, mode="nearest") for x in smoothed], dim=1)


@pytest.mark.parametrize("mode", ["fasttcm", "none"])
def test_fused_map_equals_the_fusion_written_out(mode):
    backbone = _backbone("MODEL.FASTTCM.MODE", mode).eval()
    assert isinstance(backbone, FastTCMFPNC) and backbone.size_divisibility == 32
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        features, aux = backbone.forward_with_aux(x)
        plain = backbone(x)
        bottom_up, _ = backbone.bottom_up.forward_with_aux(x)
        expected = _reference_fpnc(
            bottom_up,
            [conv.weight for conv in backbone.lateral_convs],
            [conv.weight for conv in backbone.smooth_convs],
        )
    assert list(features) == ["fused"] and features["fused"].shape == (1, 32, 16, 24)
    assert backbone.output_shape() == {"fused": ShapeSpec(channels=32, stride=4)}
    torch.testing.assert_close(features["fused"], expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(plain["fused"], features["fused"], rtol=0, atol=0)
    assert set(aux) == (set() if mode == "none" else {"score_map", "logits", "text_embeddings"})


def test_neck_parameters_are_the_official_ones_and_have_no_bias():
    backbone = _backbone("MODEL.FPNC.LATERAL_CHANNELS", 256, "MODEL.FPNC.OUT_CHANNELS", 64)
    # res5 carries the K = 1 score-map channel after its 32 w = 256 channels (w = 8)
    in_channels = [backbone.bottom_up.output_shape()[name].channels for name in LEVELS]
    assert in_channels == [32, 64, 128, 256 + 1]
    neck = {n: p.shape for n, p in backbone.named_parameters() if not n.startswith("bottom_up.")}
    assert neck == {
        **{f"lateral_convs.{i}.weight": (256, c, 1, 1) for i, c in enumerate(in_channels)},
        **{f"smooth_convs.{i}.weight": (64, 256, 3, 3) for i in range(4)},
    }
    convs = [*backbone.lateral_convs, *backbone.smooth_convs]
    assert all(type(conv) is nn.Conv2d and conv.bias is None for conv in convs)
    assert not any(n.endswith("bias") for n in neck)
    assert backbone.output_shape()["fused"].channels == 256


def test_bad_neck_settings_are_clear_errors():
    with pytest.raises(ValueError, match=r"MODEL\.FPNC\.IN_FEATURES \['p2'\]"):
        _backbone("MODEL.FPNC.IN_FEATURES", ["res2", "p2"])
    with pytest.raises(ValueError, match="fine to coarse"):
        _backbone("MODEL.FPNC.IN_FEATURES", ["res3", "res2"])
    assert "build_fasttcm_cr50_fpnc_backbone" in BACKBONE_REGISTRY


# --- DB head on the fused map ---------------------------------------------------------------------
def _official_branch(channels):
    """MMOCR DBHead's ``binarize`` / ``threshold`` Sequential (sigmoid included)."""
    mid = channels // 4
    return nn.Sequential(
        nn.Conv2d(channels, mid, 3, padding=1, bias=False),
        nn.BatchNorm2d(mid),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(mid, mid, 2, 2),
        nn.BatchNorm2d(mid),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(mid, 1, 2, 2),
        nn.Sigmoid(),
    )


# official DBHead Sequential index -> project branch module name
OFFICIAL_TO_PROJECT = {"0": "0", "1": "0.norm", "3": "1", "4": "2", "6": "4"}


def test_head_without_fuse_convs_is_the_official_db_head():
    torch.manual_seed(0)
    head = FastTCMDBHead(
        {"fused": ShapeSpec(channels=32, stride=4)}, conv_dims=32, fuse_convs=False
    )
    assert head.fuse_convs is None
    names = {n for n in head.state_dict() if not n.endswith("num_batches_tracked")}
    expected = set()
    for branch in ("prob_branch", "thresh_branch"):
        expected |= {f"{branch}.0.weight", f"{branch}.1.weight", f"{branch}.1.bias"}
        expected |= {f"{branch}.4.weight", f"{branch}.4.bias"}
        for norm in ("0.norm", "2"):
            stats = ("weight", "bias", "running_mean", "running_var")
            expected |= {f"{branch}.{norm}.{s}" for s in stats}
    assert names == expected

    official = {"binarize": _official_branch(32), "threshold": _official_branch(32)}
    with torch.no_grad():  # non-trivial BN statistics, then the same tensors in both
        for module in head.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    state = head.state_dict()
    for official_name, branch in (("binarize", "prob_branch"), ("threshold", "thresh_branch")):
        official[official_name].load_state_dict(
            {
                f"{index}.{key}": state[f"{branch}.{name}.{key}"]
                for index, name in OFFICIAL_TO_PROJECT.items()
                for key in official[official_name][int(index)].state_dict()
            }
        )
    fused = torch.randn(2, 32, 8, 12)
    head.eval()
    with torch.no_grad():
        maps, _ = head({"fused": fused}, return_all_maps=True)
        prob = official["binarize"].eval()(fused)
        thresh = official["threshold"].eval()(fused)
    torch.testing.assert_close(maps["prob"], prob, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(maps["thresh"], thresh, rtol=1e-5, atol=1e-6)
    binary = torch.reciprocal(1.0 + torch.exp(-50.0 * (prob - thresh)))
    torch.testing.assert_close(maps["binary"], binary, rtol=1e-5, atol=1e-6)


def test_head_without_fuse_convs_refuses_levels_or_wrong_channels():
    with pytest.raises(ValueError, match=r"FUSE_CONVS False.*'fused' \(64 channels\)"):
        FastTCMDBHead({"fused": ShapeSpec(channels=64, stride=4)}, conv_dims=32, fuse_convs=False)
    levels = {f"p{i}": ShapeSpec(channels=32, stride=2**i) for i in (2, 3)}
    with pytest.raises(ValueError, match="FUSE_CONVS False"):
        FastTCMDBHead(levels, conv_dims=32, fuse_convs=False)
    with_convs = FastTCMDBHead(levels, conv_dims=32)  # the default keeps the fuse convs
    assert len(with_convs.fuse_convs) == 2


# --- the detector on the FPNC neck ----------------------------------------------------------------
def _training_input(seed, polygons):
    generator = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (3, 64, 96), dtype=torch.uint8, generator=generator)
    targets = make_db_targets(polygons, [False] * len(polygons), 64, 96)
    return {"image": image, "db_targets": {k: torch.as_tensor(v) for k, v in targets.items()}}


def test_detector_on_the_fpnc_config_trains_one_step_and_infers():
    torch.manual_seed(0)
    model = build_model(load_config(QUICK_DETECTOR))
    assert isinstance(model.backbone, FastTCMFPNC) and model.text_head.fuse_convs is None
    quad = np.array([[6, 6], [58, 8], [57, 26], [5, 24]], dtype=np.float32)
    batch = [_training_input(0, [quad]), _training_input(1, [])]
    lateral_before = model.backbone.lateral_convs[0].weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    with EventStorage():
        losses = model(batch)
    assert set(losses) == {"loss_prob", "loss_binary", "loss_thresh", "loss_ilm"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.backbone.smooth_convs[3].weight.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(model.backbone.lateral_convs[0].weight, lateral_before)

    model.eval()
    with torch.no_grad():
        (output,) = model([{"image": batch[0]["image"], "height": 128, "width": 192}])
    assert output["instances"].image_size == (128, 192)


@pytest.mark.parametrize(
    "config_file",
    [
        p
        for p in get_paper_config_files()
        if config_id(p).startswith(("TextDetection/", "TextSpotting/"))
    ],
    ids=config_id,
)
def test_text_configs_use_the_fpnc_neck(config_file):
    cfg = load_config(config_file)
    assert cfg.MODEL.BACKBONE.NAME == "build_fasttcm_cr50_fpnc_backbone"
    assert list(cfg.MODEL.FPNC.IN_FEATURES) == LEVELS
    assert cfg.MODEL.DB_HEAD.IN_FEATURES == ["fused"] and not cfg.MODEL.DB_HEAD.FUSE_CONVS
    assert cfg.MODEL.DB_HEAD.CONV_DIMS == 4 * cfg.MODEL.FPNC.OUT_CHANNELS
    if "synthetic_cpu" not in config_file:  # official sizes: FPNC(lateral 256) -> DBHead(256)
        assert (cfg.MODEL.FPNC.LATERAL_CHANNELS, cfg.MODEL.FPNC.OUT_CHANNELS) == (256, 64)
