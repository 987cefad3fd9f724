"""FastTCMTextDetector end to end on CPU: training losses, overfitting, inference in
original-image pixels."""

import cv2
import numpy as np
import pytest
import torch
from shapely.geometry import Polygon
from torch import nn

from detectron2.modeling import build_model
from detectron2.modeling.backbone import FPN, ResNet
from detectron2.modeling.backbone.fpn import LastLevelMaxPool
from detectron2.modeling.backbone.resnet import BasicBlock, BasicStem
from detectron2.structures import Boxes, Instances

from fasttcm.data.db_targets import make_db_targets
from fasttcm.modeling.meta_arch.text_detector import FastTCMTextDetector
from fasttcm.modeling.tcm.instance_language_matching import balanced_bce_loss
from fasttcm.modeling.text_heads.db_head import FastTCMDBHead
from fasttcm.modeling.text_heads.postprocess import DBPostprocessor
from tests.common import QUICK_DETECTOR, load_config

PIXEL_MEAN, PIXEL_STD = [103.53, 116.28, 123.675], [57.375, 57.12, 58.395]


# detectron2's R18-FPN (BN, nothing frozen) with detectron2's default BGR pixel statistics
_RESNET18_FPN = (
    "MODEL.BACKBONE.NAME",
    "build_resnet_fpn_backbone",
    "MODEL.BACKBONE.FREEZE_AT",
    0,
    "MODEL.RESNETS.DEPTH",
    18,
    "MODEL.RESNETS.RES2_OUT_CHANNELS",
    64,
    "MODEL.RESNETS.NORM",
    "BN",
    "MODEL.RESNETS.OUT_FEATURES",
    ["res2", "res3", "res4", "res5"],
    "MODEL.PIXEL_MEAN",
    [103.53, 116.28, 123.675],
    "MODEL.PIXEL_STD",
    [1.0, 1.0, 1.0],
    "INPUT.FORMAT",
    "BGR",
    "MODEL.DB_HEAD.IN_FEATURES",
    ["p2", "p3", "p4", "p5"],
    "MODEL.DB_HEAD.FUSE_CONVS",
    True,
)
# the quick schedule's FastTCM-CR50, narrower (embedding 32, 1 text layer, 16-wide decoders),
# without dropout
_NARROW_FASTTCM = (
    "MODEL.FASTTCM.EMBED_DIM",
    32,
    "MODEL.FASTTCM.TEXT_LAYERS",
    1,
    "MODEL.FASTTCM.DECODER_WIDTH",
    16,
    "MODEL.FASTTCM.DECODER_HEADS",
    2,
    "MODEL.FASTTCM.DECODER_DROPOUT",
    0.0,
)


def _tiny_cfg(backbone: str = "resnet"):
    """The detector quick schedule with FPN width 16 on R18-FPN, or a narrower FastTCM-CR50 on the
    schedule's FPNC."""
    variant = _RESNET18_FPN if backbone == "resnet" else _NARROW_FASTTCM
    return load_config(QUICK_DETECTOR, "MODEL.FPN.OUT_CHANNELS", 16, *variant)


def _narrow_resnet_fpn(width: int = 8, out_channels: int = 16) -> FPN:
    """detectron2's FPN over a one-block-per-stage ResNet of width 8 (~0.1 M parameters)."""
    stages, in_channels = [], width
    for index, channels in enumerate([width, 2 * width, 4 * width, 8 * width]):
        stride = 1 if index == 0 else 2
        stages.append(
            ResNet.make_stage(
                BasicBlock,
                1,
                in_channels=in_channels,
                out_channels=channels,
                stride_per_block=[stride],
                norm="BN",
            )
        )
        in_channels = channels
    levels = ["res2", "res3", "res4", "res5"]
    bottom_up = ResNet(BasicStem(3, width, norm="BN"), stages, out_features=levels)
    return FPN(
        bottom_up=bottom_up,
        in_features=levels,
        out_channels=out_channels,
        top_block=LastLevelMaxPool(),
    )


def _narrow_detector(text_head=None, postprocessor=None) -> FastTCMTextDetector:
    """FastTCMTextDetector built without a config, on :func:`_narrow_resnet_fpn`."""
    backbone = _narrow_resnet_fpn()
    shapes = {name: spec for name, spec in backbone.output_shape().items() if name != "p6"}
    return FastTCMTextDetector(
        backbone=backbone,
        text_head=text_head if text_head is not None else FastTCMDBHead(shapes, conv_dims=32),
        postprocessor=postprocessor if postprocessor is not None else DBPostprocessor(),
        pixel_mean=PIXEL_MEAN,
        pixel_std=PIXEL_STD,
    )


def _text_image(height, width, polygons, seed=0):
    """A uint8 (3, H, W) image: noise background, text polygons painted bright."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 90, size=(height, width, 3), dtype=np.uint8)
    for polygon in polygons:
        cv2.fillPoly(image, [np.round(polygon).astype(np.int32)], (230, 230, 230))
    return torch.from_numpy(image).permute(2, 0, 1).contiguous()


def _training_input(height, width, polygons, seed=0):
    return {
        "image": _text_image(height, width, polygons, seed),
        "file_name": f"synthetic_{seed}.jpg",
        "db_targets": make_db_targets(polygons, [False] * len(polygons), height, width),
    }


def _random_quads(rng, count, height, width):
    quads = []
    for _ in range(count):
        cx, cy = rng.uniform(20, width - 20), rng.uniform(12, height - 12)
        w, h, a = rng.uniform(16, 36), rng.uniform(9, 16), rng.uniform(-0.5, 0.5)
        corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
        rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        quads.append(corners @ rotation.T + [cx, cy])
    return quads


def test_train_step_with_random_and_empty_instances():
    torch.manual_seed(0)
    model = build_model(_tiny_cfg("resnet"))
    model.train()
    rng = np.random.default_rng(0)
    batch = [
        _training_input(70, 90, _random_quads(rng, 3, 70, 90), seed=1),  # padded to 96 x 96
        _training_input(64, 64, [], seed=2),  # an image without text
    ]
    losses = model(batch)
    assert set(losses) == {"loss_prob", "loss_binary", "loss_thresh"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)

    only_empty = model([_training_input(64, 64, [], seed=3)])
    assert all(torch.isfinite(v) for v in only_empty.values())


def test_targets_are_padded_like_the_images_with_padding_masked_out():
    model = _narrow_detector()
    quad = np.array([[10, 10], [60, 10], [60, 40], [10, 40]], dtype=np.float64)
    batch = [_training_input(70, 90, [quad]), _training_input(40, 50, [])]
    images = model.preprocess_image(batch)
    targets = model.prepare_targets(batch, images)
    assert images.tensor.shape[-2:] == (96, 96)
    for key, value in targets.items():
        assert value.shape == (2, 1, 96, 96), key
    mask = targets["shrink_mask"]
    assert (
        mask[0, 0, :70, :90].eq(1).all()
        and mask[0, 0, 70:].eq(0).all()
        and mask[0, 0, :, 90:].eq(0).all()
    )
    assert mask[1, 0, :40, :50].eq(1).all() and mask[1].sum() == 40 * 50
    assert targets["thresh_mask"][0, 0, 70:].sum() == 0
    torch.testing.assert_close(
        targets["shrink_map"][0, 0, :70, :90], batch[0]["db_targets"]["shrink_map"]
    )


def test_bad_training_inputs_raise():
    model = _narrow_detector().train()
    sample = _training_input(64, 64, [])
    with pytest.raises(ValueError, match="synthetic_0.jpg has no 'db_targets'"):
        model([{"image": sample["image"], "file_name": "synthetic_0.jpg"}])
    sample["db_targets"] = make_db_targets([], [], 32, 64)
    with pytest.raises(ValueError, match="shrink_map"):
        model([sample])


def test_losses_fall_when_overfitting_one_image():
    torch.manual_seed(0)
    model = _narrow_detector().train()
    quads = [
        np.array([[8, 8], [56, 8], [56, 24], [8, 24]], dtype=np.float64),
        np.array([[12, 38], [58, 34], [60, 52], [14, 56]], dtype=np.float64),
    ]
    batch = [_training_input(64, 64, quads)]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    totals = []
    for _ in range(30):
        losses = model(batch)
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(total.item())
    assert np.isfinite(totals).all()
    assert np.mean(totals[-5:]) < 0.6 * totals[0], totals


class _FixedProbabilityHead(nn.Module):
    """Test double for the DB head: a probability map that is `value` on fixed input-pixel
    rectangles."""

    def __init__(self, rectangles, value=0.9):
        super().__init__()
        self.rectangles, self.value = rectangles, value

    def forward(self, features, targets=None, return_all_maps=False):
        p2 = features["p2"]
        prob = p2.new_zeros(p2.shape[0], 1, p2.shape[2] * 4, p2.shape[3] * 4)
        for x0, y0, x1, y1 in self.rectangles:
            prob[:, :, y0:y1, x0:x1] = self.value
        maps = {"prob": prob, "prob_logits": torch.logit(prob.clamp(1e-6, 1 - 1e-6))}
        if return_all_maps:
            maps["thresh"] = torch.full_like(prob, 0.3)
            maps["binary"] = torch.sigmoid(50 * (prob - maps["thresh"]))
        return maps, {}


def _detector_with_fixed_maps(rectangles, unclip_ratio=1.5):
    return _narrow_detector(
        _FixedProbabilityHead(rectangles), DBPostprocessor(unclip_ratio=unclip_ratio)
    ).eval()


def test_inference_reports_polygons_in_original_image_pixels():
    # Kernel: input pixels x in [20, 60), y in [16, 32): unclipped by D' = 40 * 16 * 1.5 / 112 in
    # input pixels.
    model = _detector_with_fixed_maps([(20, 16, 60, 32)])
    image = torch.zeros(3, 60, 80, dtype=torch.uint8)
    with torch.no_grad():
        (output,) = model([{"image": image, "height": 120, "width": 200}])
    instances = output["instances"]
    assert isinstance(instances, Instances) and instances.image_size == (120, 200)
    assert len(instances) == 1
    assert instances.scores.shape == (1,) and instances.scores[0].item() == pytest.approx(
        0.9, abs=1e-5
    )
    d = 40 * 16 * 1.5 / 112
    sx, sy = 200 / 80, 120 / 60
    expected = np.array(
        [[20 - d, 16 - d], [60 + d, 16 - d], [60 + d, 32 + d], [20 - d, 32 + d]]
    ) * [sx, sy]
    (polygon,) = instances.polygons
    assert polygon.dtype == np.float32 and polygon.shape[1] == 2
    assert (
        Polygon(polygon).intersection(Polygon(expected)).area
        / Polygon(polygon).union(Polygon(expected)).area
        > 0.97
    )
    assert isinstance(instances.pred_boxes, Boxes)
    bounds = np.concatenate([polygon.min(axis=0), polygon.max(axis=0)])
    np.testing.assert_allclose(instances.pred_boxes.tensor[0].numpy(), bounds, rtol=1e-6)
    np.testing.assert_allclose(bounds, expected[[0, 2]].ravel(), atol=0.6 * max(sx, sy))


def test_inference_without_detections_and_without_original_size():
    model = _detector_with_fixed_maps([])
    with torch.no_grad():
        outputs = model(
            [
                {"image": torch.zeros(3, 50, 70, dtype=torch.uint8)},
                {"image": torch.zeros(3, 64, 64)},
            ]
        )
    for output, size in zip(outputs, [(50, 70), (64, 64)]):
        instances = output["instances"]
        assert instances.image_size == size and len(instances) == 0
        assert instances.polygons == [] and instances.scores.shape == (0,)
        assert instances.pred_boxes.tensor.shape == (0, 4)


def test_inference_with_the_db_head_can_return_the_maps():
    torch.manual_seed(0)
    model = build_model(_tiny_cfg("resnet")).eval()
    with torch.no_grad():
        outputs = model.inference(
            [{"image": _text_image(40, 72, []), "height": 80, "width": 100}], return_maps=True
        )
    (output,) = outputs
    instances = output["instances"]
    assert instances.image_size == (80, 100)
    assert len(instances.polygons) == len(instances.scores) == len(instances.pred_boxes)
    for polygon in instances.polygons:
        assert (polygon >= 0).all() and (polygon <= [100, 80]).all()
    assert set(output["db_maps"]) == {"prob", "thresh", "binary"}
    assert all(v.shape == (1, 80, 100) for v in output["db_maps"].values())
    assert model.device == torch.device("cpu")


def test_fasttcm_backbone_adds_the_instance_language_matching_loss():
    torch.manual_seed(0)
    cfg = _tiny_cfg("fasttcm")
    cfg.MODEL.FASTTCM.AUX_LOSS_WEIGHT = 2.0
    model = build_model(cfg).train()
    rng = np.random.default_rng(1)
    batch = [
        _training_input(64, 96, _random_quads(rng, 2, 64, 96), seed=4),
        _training_input(50, 60, [], seed=5),
    ]
    losses = model(batch)
    assert set(losses) == {"loss_prob", "loss_binary", "loss_thresh", "loss_ilm"}
    assert all(torch.isfinite(v) for v in losses.values())

    # loss_ilm = lambda * balanced BCE of the backbone's S / tau against the padded kernels.
    with torch.no_grad():
        images = model.preprocess_image(batch)
        targets = model.prepare_targets(batch, images)
        _, aux = model.backbone.forward_with_aux(images.tensor)
        expected = 2.0 * balanced_bce_loss(
            aux["logits"], targets["shrink_map"][:, 0], targets["shrink_mask"][:, 0]
        )
    assert losses["loss_ilm"].item() == pytest.approx(expected.item(), rel=1e-4)

    sum(losses.values()).backward()
    prompt_grads = [
        p.grad for p in model.backbone.bottom_up.prompt_learner.parameters() if p.requires_grad
    ]
    assert prompt_grads and all(g is not None and torch.isfinite(g).all() for g in prompt_grads)

    model.eval()
    with torch.no_grad():
        (output,) = model([{"image": batch[0]["image"], "height": 128, "width": 192}])
    assert output["instances"].image_size == (128, 192)
