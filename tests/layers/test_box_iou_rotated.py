"""box_iou_rotated against shapely's polygon IoU, directly and through detectron2's entry points."""

import numpy as np
import pytest
import shapely
import torch

from detectron2.layers.rotated_boxes import pairwise_iou_rotated
from detectron2.structures import RotatedBoxes
from detectron2.structures import pairwise_iou_rotated as structures_pairwise_iou_rotated

from fasttcm_ops.rotated_iou import box_iou_rotated, paired_box_iou_rotated, screening_bounds


def rotated_box_corners(boxes: np.ndarray) -> np.ndarray:
    """(N, 5) XYWHA (degrees, CCW on screen) -> (N, 4, 2) corners, written out independently."""
    cx, cy, w, h, a = boxes.T
    t = np.deg2rad(a)
    # The box's width axis is (cos, -sin) and its height axis (sin, cos) in image coordinates.
    wx, wy = np.cos(t) * w / 2, -np.sin(t) * w / 2
    hx, hy = np.sin(t) * h / 2, np.cos(t) * h / 2
    xs = np.stack([cx + wx + hx, cx - wx + hx, cx - wx - hx, cx + wx - hx], 1)
    ys = np.stack([cy + wy + hy, cy - wy + hy, cy - wy - hy, cy + wy - hy], 1)
    return np.stack([xs, ys], -1)


def shapely_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Paired IoU with shapely polygons, (P, 5) x (P, 5) -> (P,)."""
    p1 = shapely.polygons(rotated_box_corners(boxes1))
    p2 = shapely.polygons(rotated_box_corners(boxes2))
    inter = shapely.area(shapely.intersection(p1, p2))
    return inter / (shapely.area(p1) + shapely.area(p2) - inter)


def random_boxes(gen, n, center_range, size_range):
    lo, hi = size_range
    return torch.cat(
        [
            torch.rand(n, 2, generator=gen, dtype=torch.float64) * center_range,
            torch.rand(n, 2, generator=gen, dtype=torch.float64) * (hi - lo) + lo,
            torch.rand(n, 1, generator=gen, dtype=torch.float64) * 360 - 180,
        ],
        dim=1,
    )


def hard_pairs(n_per_kind=500):
    """Random, identical, nearly parallel, contained, tiny and quarter-turned box pairs."""
    g = torch.Generator().manual_seed(0)
    kinds = {}
    a = random_boxes(g, n_per_kind, 60, (1, 30))
    b = random_boxes(g, n_per_kind, 60, (1, 30))
    b[:, :2] = a[:, :2] + torch.randn(n_per_kind, 2, generator=g, dtype=torch.float64) * 8
    kinds["random"] = (a, b)
    a = random_boxes(g, n_per_kind, 60, (1, 30))
    kinds["identical"] = (a, a.clone())
    a = random_boxes(g, n_per_kind, 60, (1, 30))
    b = a.clone()
    b[:, 4] += (torch.rand(n_per_kind, generator=g, dtype=torch.float64) - 0.5) * 2e-4
    b[:, :2] += torch.randn(n_per_kind, 2, generator=g, dtype=torch.float64) * 1e-3
    kinds["nearly_parallel"] = (a, b)
    a = random_boxes(g, n_per_kind, 60, (5, 30))
    b = a.clone()
    b[:, 2:4] *= 0.3
    b[:, 4] = torch.rand(n_per_kind, generator=g, dtype=torch.float64) * 360 - 180
    kinds["contained"] = (a, b)
    a = random_boxes(g, n_per_kind, 60, (1e-3, 5e-3))
    b = a.clone()
    b[:, :2] += torch.randn(n_per_kind, 2, generator=g, dtype=torch.float64) * 2e-3
    b[:, 4] = torch.rand(n_per_kind, generator=g, dtype=torch.float64) * 360 - 180
    kinds["tiny"] = (a, b)
    a = random_boxes(g, n_per_kind, 60, (1, 30))
    half_turns = 180.0 * torch.randint(-2, 3, (n_per_kind,), generator=g).double()
    swapped = torch.arange(n_per_kind) % 2 == 0  # same footprint as (w, h) swapped, a quarter turn
    b = torch.where(swapped[:, None], a[:, [0, 1, 3, 2, 4]], a)
    b[:, 4] += half_turns + 90.0 * swapped.double()
    kinds["quarter_turns"] = (a, b)
    return kinds


@pytest.mark.parametrize(
    "kind", ["random", "identical", "nearly_parallel", "contained", "tiny", "quarter_turns"]
)
def test_paired_iou_matches_shapely(kind):
    a, b = hard_pairs()[kind]
    ours = paired_box_iou_rotated(a, b).numpy()
    ref = shapely_iou(a.numpy(), b.numpy())
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4)
    assert ours.min() >= 0 and ours.max() <= 1
    if kind in ("identical", "quarter_turns"):
        np.testing.assert_allclose(ours, 1.0, rtol=0, atol=1e-12)


def test_pairwise_matrix_matches_shapely_and_is_symmetric():
    g = torch.Generator().manual_seed(1)
    boxes1 = random_boxes(g, 60, 80, (2, 40))
    boxes2 = random_boxes(g, 45, 80, (2, 40))
    boxes2[:10] = boxes1[:10]  # identical pairs on the diagonal of that block
    ious = box_iou_rotated(boxes1, boxes2)
    assert ious.shape == (60, 45) and ious.dtype == torch.float64
    i, j = np.meshgrid(np.arange(60), np.arange(45), indexing="ij")
    ref = shapely_iou(boxes1.numpy()[i.ravel()], boxes2.numpy()[j.ravel()]).reshape(60, 45)
    np.testing.assert_allclose(ious.numpy(), ref, rtol=0, atol=1e-4)
    assert (ref > 0).sum() > 100 and (ref == 0).sum() > 100  # both overlapping and disjoint pairs
    np.testing.assert_allclose(box_iou_rotated(boxes2, boxes1).numpy(), ious.numpy().T, atol=1e-12)
    np.testing.assert_allclose(torch.diagonal(ious[:10, :10]).numpy(), 1.0, atol=1e-12)


def test_known_values():
    square = torch.tensor([[0.0, 0.0, 2.0, 2.0, 0.0]])
    cases = {
        (2.0, 0.0, 2.0, 2.0, 0.0): 0.0,  # shares an edge, outside
        (1.0, 0.0, 2.0, 2.0, 0.0): 1 / 3,
        (1.0, 1.0, 2.0, 2.0, 0.0): 1 / 7,
        (0.0, 0.0, 2.0, 2.0, 180.0): 1.0,
        (0.0, 0.0, 2.0, 2.0, -90.0): 1.0,
        (0.0, 0.0, 4.0, 1.0, 0.0): 2 / 6,
        (0.0, 0.0, 2.0, 2.0, 45.0): 2**0.5 / 2,  # octagon 8(sqrt2 - 1) over 8 - that
        (1 + 2**0.5, 0.0, 2.0, 2.0, 45.0): 0.0,  # touches at a vertex
    }
    others = torch.tensor(list(cases.keys()))
    np.testing.assert_allclose(
        box_iou_rotated(square, others)[0].numpy(), list(cases.values()), atol=1e-6
    )


def test_degenerate_and_empty_inputs():
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0, 0.0], [0.0, 0.0, 0.0, 2.0, 0.0]])
    ious = box_iou_rotated(boxes, boxes)
    assert ious[1].tolist() == [0.0, 0.0] and ious[:, 1].tolist() == [0.0, 0.0]
    assert box_iou_rotated(boxes[:0], boxes).shape == (0, 2)
    assert box_iou_rotated(boxes, boxes[:0]).shape == (2, 0)
    assert box_iou_rotated(boxes.float(), boxes.float()).dtype == torch.float32


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"shape \(N, 5\)"):
        box_iou_rotated(torch.zeros(3, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="NaN or infinite"):
        box_iou_rotated(torch.tensor([[0.0, 0.0, float("nan"), 1.0, 0.0]]), torch.zeros(1, 5))
    with pytest.raises(TypeError, match="floating point"):
        box_iou_rotated(torch.zeros(1, 5, dtype=torch.int64), torch.zeros(1, 5))


def test_detectron2_entry_points_use_it():
    g = torch.Generator().manual_seed(2)
    boxes1 = random_boxes(g, 20, 50, (3, 30)).float()
    boxes2 = random_boxes(g, 30, 50, (3, 30)).float()
    expected = box_iou_rotated(boxes1, boxes2)
    torch.testing.assert_close(pairwise_iou_rotated(boxes1, boxes2), expected)
    torch.testing.assert_close(
        structures_pairwise_iou_rotated(RotatedBoxes(boxes1), RotatedBoxes(boxes2)), expected
    )
    i, j = np.meshgrid(np.arange(20), np.arange(30), indexing="ij")
    ref = shapely_iou(boxes1.double().numpy()[i.ravel()], boxes2.double().numpy()[j.ravel()])
    np.testing.assert_allclose(expected.numpy().ravel(), ref, atol=1e-4)


@pytest.mark.parametrize("center_range", [100.0, 1e5])
def test_screening_bounds_contain_every_corner(center_range):
    """The float32 screen never cuts a box: every corner lies inside its bounds, also far from the
    origin (large DOTA images) where float32 has ~0.01 px resolution."""
    g = torch.Generator().manual_seed(4)
    boxes = random_boxes(g, 2000, center_range, (0.5, 300))
    boxes[:10, 4] = torch.tensor(
        [0.0, 90.0, -90.0, 180.0, 270.0, 45.0, -45.0, 360.0, 1e-7, 89.999999]
    )
    corners = torch.from_numpy(rotated_box_corners(boxes.numpy()))  # (N, 4, 2) float64
    x0, y0, x1, y1 = screening_bounds(boxes).double()
    assert bool((corners[..., 0] >= x0[:, None]).all() and (corners[..., 0] <= x1[:, None]).all())
    assert bool((corners[..., 1] >= y0[:, None]).all() and (corners[..., 1] <= y1[:, None]).all())
    # and they stay tight: at most the relative widening beyond the corners' own bounds
    slack = x1 - corners[..., 0].amax(1)
    assert bool((slack <= 1e-5 * (boxes[:, 0].abs() + boxes[:, 2] + boxes[:, 3]) + 1e-3).all())
    empty = screening_bounds(torch.tensor([[5.0, 5.0, 0.0, 3.0, 10.0]], dtype=torch.float64))
    assert empty[0, 0] == float("inf") and empty[2, 0] == float("-inf")


def test_barely_overlapping_far_boxes_are_not_screened_out():
    """Two boxes far from the origin that overlap by 1e-3 px get their (tiny) IoU, as shapely."""
    a = torch.tensor([[1.0e5, 2.0e5, 10.0, 4.0, 0.0]], dtype=torch.float64)
    b = a.clone()
    b[0, 0] += 10.0 - 1e-3  # right edge of a and left edge of b overlap by 1e-3
    got = box_iou_rotated(a, b)[0, 0].item()
    want = shapely_iou(a.numpy(), b.numpy())[0]
    assert got > 0 and got == pytest.approx(want, rel=1e-6)


def test_many_boxes_are_chunked_consistently(monkeypatch):
    """Small prefilter and pair chunks give the same matrix as one chunk."""
    import fasttcm_ops.rotated_iou as rotated_iou

    g = torch.Generator().manual_seed(3)
    boxes = random_boxes(g, 300, 100, (2, 30))
    whole = box_iou_rotated(boxes, boxes)
    monkeypatch.setattr(rotated_iou, "PREFILTER_CHUNK", 1000)
    monkeypatch.setattr(rotated_iou, "PAIR_CHUNK", 257)
    torch.testing.assert_close(box_iou_rotated(boxes, boxes), whole, rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(4)
    boxes1 = random_boxes(g, 700, 300, (2, 60)).float()
    boxes2 = random_boxes(g, 500, 300, (2, 60)).float()
    expected = box_iou_rotated(boxes1, boxes2)
    ious = pairwise_iou_rotated(boxes1.cuda(), boxes2.cuda())
    assert ious.is_cuda and ious.dtype == torch.float32
    torch.testing.assert_close(ious.cpu(), expected, rtol=0, atol=1e-6)
