"""ROIAlignRotated (through detectron2.layers) against an independent per-sample loop, torchvision's
ROIAlign at angle 0, gradcheck, and the angle convention."""

import math

import pytest
import torch
from torchvision.ops import roi_align

from detectron2.layers import ROIAlignRotated

import fasttcm_ops.roi_align_rotated as roi_align_rotated_ops
from fasttcm_ops.roi_align_rotated import roi_align_rotated_backward, roi_align_rotated_forward


def loop_reference(features, rois, spatial_scale, pooled_h, pooled_w, sampling_ratio):
    """Sample by sample, written from detectron2's documented ROIAlignRotated semantics.

    Differentiable with autograd in ``features``.
    """
    _, channels, height, width = features.shape
    out = []
    for r in rois.tolist():
        b = int(r[0])
        cx, cy = r[1] * spatial_scale - 0.5, r[2] * spatial_scale - 0.5
        w, h, theta = r[3] * spatial_scale, r[4] * spatial_scale, math.radians(r[5])
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(h / pooled_h)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(w / pooled_w)
        bins = []
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                acc = features.new_zeros(channels)
                for iy in range(gh):
                    v = -h / 2 + (ph + (iy + 0.5) / gh) * h / pooled_h
                    for ix in range(gw):
                        u = -w / 2 + (pw + (ix + 0.5) / gw) * w / pooled_w
                        x = cx + u * math.cos(theta) + v * math.sin(theta)
                        y = cy - u * math.sin(theta) + v * math.cos(theta)
                        if y < -1 or y > height or x < -1 or x > width:
                            continue
                        y, x = max(y, 0.0), max(x, 0.0)
                        y0, x0 = min(int(y), height - 1), min(int(x), width - 1)
                        y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
                        ly = y - y0 if y0 < height - 1 else 0.0
                        lx = x - x0 if x0 < width - 1 else 0.0
                        f = features[b]
                        acc = acc + (
                            (1 - ly) * (1 - lx) * f[:, y0, x0]
                            + (1 - ly) * lx * f[:, y0, x1]
                            + ly * (1 - lx) * f[:, y1, x0]
                            + ly * lx * f[:, y1, x1]
                        )
                bins.append(acc / max(gh * gw, 1))
        out.append(torch.stack(bins, dim=1).view(channels, pooled_h, pooled_w))
    return torch.stack(out)


def random_rois(gen, k, batch, extent, max_size, dtype=torch.float64):
    return torch.cat(
        [
            torch.randint(0, batch, (k, 1), generator=gen).to(dtype),
            torch.rand(k, 2, generator=gen, dtype=dtype) * (extent + 6) - 3,  # some leave the map
            torch.rand(k, 2, generator=gen, dtype=dtype) * max_size + 0.5,
            torch.rand(k, 1, generator=gen, dtype=dtype) * 360 - 180,
        ],
        dim=1,
    )


@pytest.mark.parametrize("sampling_ratio", [2, 1, 0])
def test_forward_backward_match_loop_reference(sampling_ratio):
    g = torch.Generator().manual_seed(sampling_ratio)
    features = torch.randn(2, 3, 9, 11, generator=g, dtype=torch.float64, requires_grad=True)
    rois = random_rois(g, 7, 2, 22, 14)
    rois[0, 3:5] = 0.0  # an empty roi: zero-size grid when adaptive
    pooler = ROIAlignRotated((3, 4), spatial_scale=0.5, sampling_ratio=sampling_ratio)
    out = pooler(features, rois)
    expected_features = features.detach().clone().requires_grad_(True)
    expected = loop_reference(expected_features, rois, 0.5, 3, 4, sampling_ratio)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    upstream = torch.randn(out.shape, generator=g, dtype=torch.float64)
    out.backward(upstream)
    expected.backward(upstream)
    torch.testing.assert_close(features.grad, expected_features.grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sampling_ratio", [2, 0])
def test_angle_zero_matches_torchvision_roi_align_aligned(sampling_ratio):
    g = torch.Generator().manual_seed(10 + sampling_ratio)
    features = torch.randn(2, 8, 24, 20, generator=g)
    rois = random_rois(g, 40, 2, 80, 50, dtype=torch.float32)
    rois[:, 5] = 0.0
    half_w, half_h = rois[:, 3] / 2, rois[:, 4] / 2
    boxes = torch.stack(
        [
            rois[:, 0],
            rois[:, 1] - half_w,
            rois[:, 2] - half_h,
            rois[:, 1] + half_w,
            rois[:, 2] + half_h,
        ],
        dim=1,
    )
    ours = ROIAlignRotated((5, 6), 0.25, sampling_ratio)(features, rois)
    reference = roi_align(features, boxes, (5, 6), 0.25, sampling_ratio, aligned=True)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(20)
    features = torch.randn(2, 2, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    rois = random_rois(g, 3, 2, 7, 5)
    pooler = ROIAlignRotated((2, 3), spatial_scale=1.0, sampling_ratio=2)
    assert torch.autograd.gradcheck(lambda x: pooler(x, rois), (features,), eps=1e-6, atol=1e-5)
    pooler = ROIAlignRotated((2, 2), spatial_scale=1.0, sampling_ratio=0)
    assert torch.autograd.gradcheck(lambda x: pooler(x, rois), (features,), eps=1e-6, atol=1e-5)


def test_angle_is_counter_clockwise_degrees():
    """A roi turned by +90 degrees over content turned 90 degrees counter-clockwise on screen (about
    the same centre) samples what the unturned roi samples in the original content."""
    g = torch.Generator().manual_seed(30)
    image = torch.randn(1, 1, 16, 16, generator=g, dtype=torch.float64)
    turned = torch.rot90(image, k=1, dims=(2, 3))  # counter-clockwise as displayed (y down)
    assert turned[0, 0, 0, 0] == image[0, 0, 0, -1]  # top-right corner moved to top-left
    pooler = ROIAlignRotated((4, 6), spatial_scale=1.0, sampling_ratio=2)
    upright = pooler(image, torch.tensor([[0, 8.0, 8.0, 9.0, 5.0, 0.0]], dtype=torch.float64))
    quarter = pooler(turned, torch.tensor([[0, 8.0, 8.0, 9.0, 5.0, 90.0]], dtype=torch.float64))
    torch.testing.assert_close(quarter, upright, rtol=0, atol=1e-12)
    clockwise = pooler(turned, torch.tensor([[0, 8.0, 8.0, 9.0, 5.0, -90.0]], dtype=torch.float64))
    assert not torch.allclose(clockwise, upright)


def test_chunked_plans_give_the_same_result(monkeypatch):
    g = torch.Generator().manual_seed(40)
    features = torch.randn(2, 4, 12, 12, generator=g)
    rois = random_rois(g, 25, 2, 12, 10, dtype=torch.float32)
    grad = torch.randn(25, 4, 3, 3, generator=g)
    args = (0.9, 3, 3, 0)
    out = roi_align_rotated_forward(features, rois, *args)
    grad_in = roi_align_rotated_backward(grad, rois, 0.9, 3, 3, 2, 4, 12, 12, 0)
    monkeypatch.setattr(roi_align_rotated_ops, "_MAX_ENTRIES_PER_CHUNK", 300)
    torch.testing.assert_close(roi_align_rotated_forward(features, rois, *args), out)
    torch.testing.assert_close(
        roi_align_rotated_backward(grad, rois, 0.9, 3, 3, 2, 4, 12, 12, 0), grad_in
    )


def test_empty_rois_and_bad_inputs():
    features = torch.randn(1, 3, 5, 5)
    assert roi_align_rotated_forward(features, torch.zeros(0, 6), 1.0, 2, 2, 2).shape == (
        0,
        3,
        2,
        2,
    )
    grad = roi_align_rotated_backward(
        torch.zeros(0, 3, 2, 2), torch.zeros(0, 6), 1.0, 2, 2, 1, 3, 5, 5, 2
    )
    assert grad.shape == (1, 3, 5, 5) and not grad.any()
    with pytest.raises(ValueError, match="batch indices"):
        roi_align_rotated_forward(features, torch.tensor([[1.0, 2, 2, 2, 2, 0]]), 1.0, 2, 2, 2)
    with pytest.raises(ValueError, match="non-negative width and height"):
        roi_align_rotated_forward(features, torch.tensor([[0.0, 2, 2, -2, 2, 0]]), 1.0, 2, 2, 2)
    with pytest.raises(ValueError, match=r"shape \(K, 6\)"):
        roi_align_rotated_forward(features, torch.zeros(2, 5), 1.0, 2, 2, 2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_and_gradchecks():
    g = torch.Generator().manual_seed(50)
    features = torch.randn(2, 16, 30, 40, generator=g)
    rois = random_rois(g, 64, 2, 120, 60, dtype=torch.float32)
    upstream = torch.randn(64, 16, 7, 7, generator=g)
    for sampling_ratio in (2, 0):
        pooler = ROIAlignRotated((7, 7), 0.25, sampling_ratio)
        x_cpu = features.clone().requires_grad_(True)
        x_cuda = features.cuda().requires_grad_(True)
        out_cpu, out_cuda = pooler(x_cpu, rois), pooler(x_cuda, rois.cuda())
        torch.testing.assert_close(out_cuda.cpu(), out_cpu, rtol=1e-5, atol=1e-5)
        out_cpu.backward(upstream)
        out_cuda.backward(upstream.cuda())
        torch.testing.assert_close(x_cuda.grad.cpu(), x_cpu.grad, rtol=1e-5, atol=1e-5)
    x = torch.randn(1, 2, 6, 7, generator=g, dtype=torch.float64).cuda().requires_grad_(True)
    small_rois = random_rois(g, 3, 1, 7, 5).cuda()
    pooler = ROIAlignRotated((2, 3), 1.0, 2)
    assert torch.autograd.gradcheck(lambda t: pooler(t, small_rois), (x,), eps=1e-6, atol=1e-5)
