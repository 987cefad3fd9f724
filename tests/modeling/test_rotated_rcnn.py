"""FastTCMRotatedRCNN + FastTCMRROIHeads: tiny model, CPU, train and eval steps on random data."""

import pytest
import torch

from detectron2.data import MetadataCatalog
from detectron2.modeling import build_model
from detectron2.structures import Instances, RotatedBoxes
from detectron2.utils.events import EventStorage

from fasttcm.data.datasets.dota_meta import dota_class_names
from fasttcm.modeling.meta_arch.rotated_rcnn import rasterize_rotated_boxes
from tests.common import QUICK_RRCNN, load_config

CLASSES = dota_class_names("1.0")


def _cfg(mode="fasttcm"):
    name = "_test_rrcnn_meta"
    if "thing_classes" not in MetadataCatalog.get(name).as_dict():
        MetadataCatalog.get(name).set(thing_classes=list(CLASSES))
    return load_config(QUICK_RRCNN, "DATASETS.TRAIN", (name,), "MODEL.FASTTCM.MODE", mode)


def _inputs(with_boxes=True):
    img = torch.randint(0, 255, (3, 128, 160), dtype=torch.uint8)
    inst = Instances((128, 160))
    if with_boxes:
        inst.gt_boxes = RotatedBoxes(
            torch.tensor([[40.0, 50.0, 40.0, 12.0, 30.0], [100.0, 80.0, 24.0, 24.0, -45.0]])
        )
        inst.gt_classes = torch.tensor([0, 9])
    else:
        inst.gt_boxes = RotatedBoxes(torch.zeros(0, 5))
        inst.gt_classes = torch.zeros(0, dtype=torch.int64)
    return {"image": img, "instances": inst, "height": 256, "width": 320}


@pytest.mark.parametrize("mode", ["fasttcm", "tcm", "none"])
def test_train_step_losses_finite_and_backprop(mode):
    torch.manual_seed(0)
    model = build_model(_cfg(mode))
    model.train()
    with EventStorage():
        losses = model([_inputs(True), _inputs(False)])
    expected = {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"}
    assert expected <= set(losses)
    assert ("loss_ilm" in losses) == (mode != "none")
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    head = model.roi_heads.box_predictor
    if mode != "none":
        # the classifier uses the class-name text embeddings: its projection gets gradients
        assert (
            head.embed_proj.weight.grad is not None and head.embed_proj.weight.grad.abs().sum() > 0
        )
    else:
        assert not hasattr(head, "embed_proj")  # detectron2's linear classifier without text
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, (
        f"parameters without gradient (DDP would need find_unused_parameters): {unused}"
    )


def test_eval_returns_rotated_boxes_in_original_size():
    torch.manual_seed(0)
    model = build_model(_cfg())
    model.eval()
    with torch.no_grad():
        out = model([_inputs(False)])[0]["instances"]
    assert out.image_size == (256, 320)
    assert isinstance(out.pred_boxes, RotatedBoxes)
    assert out.scores.shape == out.pred_classes.shape == (len(out),)
    assert (out.pred_classes < len(CLASSES)).all()


def test_rasterize_rotated_boxes_follows_detectron2_angle_convention():
    # a 16x4 box turned by +90 degrees (counter-clockwise) is 4 wide and 16 tall
    m = rasterize_rotated_boxes(
        torch.tensor([[20.0, 10.0, 16.0, 4.0, 90.0]]), torch.tensor([1]), 3, 32, 32, stride=1
    )
    ys, xs = torch.nonzero(m[1], as_tuple=True)
    assert m[0].sum() == 0 and m[2].sum() == 0
    assert (xs.min().item(), xs.max().item()) == (18, 21)
    assert (ys.min().item(), ys.max().item()) == (2, 17)
    # corners from RotatedBoxes agree: every sampled pixel centre lies inside the polygon
    from shapely.geometry import Point, Polygon

    from fasttcm.utils.geometry import xywha_to_poly

    poly = Polygon(
        xywha_to_poly(torch.tensor([[20.0, 10.0, 16.0, 4.0, 90.0]]).numpy())[0].reshape(4, 2)
    )
    assert all(poly.contains(Point(x + 0.5, y + 0.5)) for x, y in zip(xs.tolist(), ys.tolist()))


def test_vertical_flip_moves_rotated_boxes_like_their_corners():
    """The DOTA mapper's vertical flip keeps boxes on the same pixels (checked on the corners)."""
    import numpy as np
    from fvcore.transforms.transform import VFlipTransform
    from shapely.geometry import Polygon

    import fasttcm.data.dota_mapper  # noqa: F401  (registers VFlip apply_rotated_box)
    from fasttcm.utils.geometry import xywha_to_poly

    box = np.array([[30.0, 20.0, 24.0, 8.0, 35.0]])
    t = VFlipTransform(64)
    flipped = t.apply_rotated_box(box)
    corners = xywha_to_poly(box).reshape(4, 2)
    corners[:, 1] = 64 - corners[:, 1]
    a, b = Polygon(corners), Polygon(xywha_to_poly(flipped).reshape(4, 2))
    assert a.symmetric_difference(b).area < 1e-6
