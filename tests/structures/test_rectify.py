"""Polygon rectification (fasttcm.structures.rectification.rectify) against analytic warps and
OpenCV."""

import math

import cv2
import numpy as np
import pytest
import torch

from fasttcm.structures.rectification.quad_warp import quad_homographies
from fasttcm.structures.rectification.rectify import (
    RectifiedCrops,
    polygon_sampling_grids,
    polygon_validity,
    rectify_polygons,
    sample_crops,
)


def _pattern(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A smooth 3-channel texture over the crop's unit square (0-255), shape (3, *u.shape)."""
    return np.stack(
        [
            128 + 100 * np.sin(2 * np.pi * 1.5 * u),
            255 * v,
            128 + 100 * np.cos(2 * np.pi * (2 * u + v)),
        ]
    )


def _render(height: int, width: int, to_unit) -> np.ndarray:
    """Image whose pixel centres (x + 0.5, y + 0.5) show the pattern at `to_unit(x, y) -> (u, v)`
    (0 outside)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    u, v = to_unit(xs, ys)
    inside = (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
    return np.where(inside, _pattern(u, v), 0.0)


def _expected_crop(h: int, w: int) -> np.ndarray:
    v, u = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
    return _pattern(u, v)


QUAD = np.array(
    [[30.0, 20.0], [170.0, 45.0], [160.0, 110.0], [40.0, 90.0]]
)  # clockwise from top-left


def test_quad_homography_matches_opencv():
    unit = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float32)
    reference = cv2.getPerspectiveTransform(unit, QUAD.astype(np.float32))
    H, ok = quad_homographies(torch.from_numpy(QUAD)[None])
    assert ok.tolist() == [True]
    np.testing.assert_allclose(H[0].numpy(), reference / reference[2, 2], rtol=1e-5, atol=1e-6)


def test_quad_perspective_warp_recovers_pattern():
    """A texture warped onto a quad by a known homography comes back from the quad."""
    unit = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float32)
    to_unit = np.linalg.inv(cv2.getPerspectiveTransform(unit, QUAD.astype(np.float32)))

    def inverse(xs, ys):
        p = np.einsum("ij,jhw->ihw", to_unit, np.stack([xs, ys, np.ones_like(xs)]))
        return p[0] / p[2], p[1] / p[2]

    image = torch.from_numpy(_render(140, 200, inverse)).float()
    h, w = 24, 64
    result = rectify_polygons([image], [QUAD], [0], (h, w), layout="annotated")
    assert isinstance(result, RectifiedCrops) and result.num_skipped == 0
    assert result.crops.shape == (1, 3, h, w)
    error = (result.crops[0].numpy() - _expected_crop(h, w)).__abs__()
    assert (
        error.mean() < 0.5 and error.max() < 8.0
    )  # bilinear resampling of a smooth texture (0-255)

    # the same outline listed from another corner is another warp: the check discriminates
    rolled = rectify_polygons([image], [np.roll(QUAD, 1, axis=0)], [0], (h, w), layout="annotated")
    assert (rolled.crops[0].numpy() - _expected_crop(h, w)).__abs__().mean() > 20.0
    # counter-clockwise listing from the same first vertex: reversed, identical crop
    ccw = QUAD[[0, 3, 2, 1]]
    mirrored = rectify_polygons([image], [ccw], [0], (h, w), layout="annotated")
    torch.testing.assert_close(mirrored.crops, result.crops)


def _arch(n: int, center=(100.0, 130.0), radii=(90.0, 60.0), angles=(200.0, 340.0)):
    """2n-point annotation of a band along a circular arch: outer arc left->right, inner
    right->left."""
    theta = np.deg2rad(np.linspace(angles[0], angles[1], n))
    outer = np.stack(
        [center[0] + radii[0] * np.cos(theta), center[1] + radii[0] * np.sin(theta)], 1
    )
    inner = np.stack(
        [center[0] + radii[1] * np.cos(theta), center[1] + radii[1] * np.sin(theta)], 1
    )
    return np.concatenate([outer, inner[::-1]])


def _arch_image(center=(100.0, 130.0), radii=(90.0, 60.0), angles=(200.0, 340.0)) -> torch.Tensor:
    def inverse(xs, ys):
        dx, dy = xs - center[0], ys - center[1]
        angle = np.rad2deg(np.arctan2(dy, dx)) % 360.0
        u = (angle - angles[0]) / (angles[1] - angles[0])
        v = (radii[0] - np.hypot(dx, dy)) / (radii[0] - radii[1])
        return u, v

    return torch.from_numpy(_render(140, 200, inverse)).float()


def test_curved_band_is_unrolled():
    """A texture laid along a 140-degree arch is unrolled into a straight crop."""
    image = _arch_image()
    h, w = 16, 96
    result = rectify_polygons(image[None], [_arch(24)], [0], (h, w), layout="annotated")
    assert result.keep.tolist() == [True]
    crop = result.crops[0].numpy()
    expected = _expected_crop(h, w)
    error = np.abs(crop - expected)
    assert (
        error.mean() < 1.5 and np.percentile(error, 99) < 8.0
    )  # chords of 24-point arcs, bilinear
    # every column holds the same u: the along-text stripes are straight in the crop
    stripes = crop[0].mean(axis=0)
    assert np.corrcoef(stripes, expected[0].mean(axis=0))[0, 1] > 0.999
    # a plain axis-aligned crop of the bounding box would not read it
    x0, y0 = _arch(24).min(0).astype(int)
    x1, y1 = _arch(24).max(0).astype(int)
    naive = torch.nn.functional.interpolate(
        image[None, :, y0:y1, x0:x1], size=(h, w), mode="bilinear"
    )[0].numpy()
    assert np.abs(naive - expected).mean() > 5 * error.mean()


def test_predicted_layout_is_orientation_free():
    """Detector outlines: any start vertex and orientation of a rotated box give the same reading
    grid."""
    angle = math.radians(25.0)  # text rising to the right
    axis = np.array([math.cos(angle), -math.sin(angle)])
    down = np.array([math.sin(angle), math.cos(angle)])
    center, half_w, half_h = np.array([100.0, 80.0]), 50.0, 12.0
    corners = np.stack(
        [
            center + sa * half_w * axis + sb * half_h * down
            for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ]
    )  # reading order: TL, TR, BR, BL
    h, w = 8, 32
    v, u = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
    expected = corners[0] + u[..., None] * (2 * half_w * axis) + v[..., None] * (2 * half_h * down)

    variants = [np.roll(corners, k, axis=0) for k in range(4)] + [
        np.roll(corners[::-1], k, axis=0) for k in range(4)
    ]
    # a DB-like contour with extra vertices on the long sides (contour fallback, no side structure)
    mid_top, mid_bottom = corners[:2].mean(0), corners[2:].mean(0)
    contour = np.stack([corners[1], corners[2], mid_bottom, corners[3], corners[0], mid_top])
    variants += [contour, contour[::-1]]
    grids, valid = polygon_sampling_grids(variants, (h, w), layout="predicted")
    assert valid.all()
    for grid in grids:
        np.testing.assert_allclose(grid.numpy(), expected, atol=1e-6)

    # vertical text is read top to bottom: the top side is the right edge, running down
    tall = np.array([[10.0, 10.0], [30.0, 10.0], [30.0, 110.0], [10.0, 110.0]])
    grid, _ = polygon_sampling_grids([tall], (4, 16), layout="predicted")
    first, last = grid[0, 0, 0].numpy(), grid[0, 0, -1].numpy()
    assert first[0] > 25 and first[1] < 15 and last[0] > 25 and last[1] > 100


def test_predicted_straight_outline_with_bevelled_ends_uses_its_rectangle():
    """A DB-like outline of straight text (bevelled corners, any start) is warped by its min-area
    rectangle."""
    angle = math.radians(20.0)
    axis = np.array([math.cos(angle), -math.sin(angle)])
    down = np.array([math.sin(angle), math.cos(angle)])
    center, half_w, half_h, bevel = np.array([90.0, 70.0]), 50.0, 12.0, 3.0
    corners = [
        center + sa * half_w * axis + sb * half_h * down
        for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1))
    ]
    outline = []
    for k, corner in enumerate(
        corners
    ):  # each corner cut by a bevel: points towards both neighbours
        for neighbour in (corners[k - 1], corners[(k + 1) % 4]):
            outline.append(
                corner + bevel * (neighbour - corner) / np.linalg.norm(neighbour - corner)
            )
    outline = np.roll(np.array(outline)[::-1], 3, axis=0)  # counter-clockwise, arbitrary start
    rect = cv2.boxPoints(cv2.minAreaRect(outline.astype(np.float32)))
    assert abs(cv2.contourArea(rect) - 4 * half_w * half_h) < 1e-2  # the bevels keep the rectangle
    h, w = 6, 24
    v, u = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
    top_left = center - half_w * axis - half_h * down
    expected = top_left + u[..., None] * (2 * half_w * axis) + v[..., None] * (2 * half_h * down)
    grid, valid = polygon_sampling_grids([outline], (h, w), layout="predicted")
    assert valid.tolist() == [True]
    np.testing.assert_allclose(grid[0].numpy(), expected, atol=1e-4)


def test_rectangle_layout_warps_the_minimum_area_rectangle_of_any_outline():
    """Any outline -> its min-area rectangle (checked against OpenCV), read along the long side."""
    arch = _arch(8, angles=(240.0, 300.0))
    outlines = [QUAD, np.roll(QUAD[::-1], 2, axis=0), arch, np.roll(arch, 5, axis=0)]
    h, w = 6, 24
    grids, valid = polygon_sampling_grids(outlines, (h, w), layout="rectangle")
    assert valid.all()
    for outline, grid in zip(outlines, grids.numpy()):
        box = cv2.boxPoints(cv2.minAreaRect(outline.astype(np.float32))).astype(np.float64)
        # the grid's corner samples lie half a pixel step inside the rectangle's corners
        corners = np.stack([grid[0, 0], grid[0, -1], grid[-1, -1], grid[-1, 0]])
        u_step, v_step = (grid[0, -1] - grid[0, 0]) / (w - 1), (grid[-1, 0] - grid[0, 0]) / (h - 1)
        outer = corners + 0.5 * np.stack(
            [-u_step - v_step, u_step - v_step, u_step + v_step, -u_step + v_step]
        )
        for corner in outer:  # every corner of the sampled rectangle is a corner of OpenCV's
            assert np.linalg.norm(box - corner, axis=1).min() < 0.05
        assert np.linalg.norm(u_step) * (w - 1) > np.linalg.norm(v_step) * (
            h - 1
        )  # long side = reading axis
        assert u_step[0] > 0  # read left to right
    # the arch's two listings give one grid; QUAD's listings too
    np.testing.assert_allclose(grids[2].numpy(), grids[3].numpy(), atol=1e-6)
    np.testing.assert_allclose(grids[0].numpy(), grids[1].numpy(), atol=1e-6)
    _, valid = polygon_sampling_grids([QUAD[:2], np.zeros((4, 2))], (h, w), layout="rectangle")
    assert valid.tolist() == [False, False]


def test_predicted_contour_of_gentle_arch_follows_both_sides():
    """A 60-degree arch listed from an arbitrary vertex (no side structure) gives the annotated
    grid."""
    arch = _arch(8, angles=(240.0, 300.0))
    annotated, _ = polygon_sampling_grids([arch], (8, 48), layout="annotated")
    predicted, valid = polygon_sampling_grids(
        [np.roll(arch, 5, axis=0)], (8, 48), layout="predicted"
    )
    assert valid.tolist() == [True]
    np.testing.assert_allclose(predicted.numpy(), annotated.numpy(), atol=1e-6)


def test_degenerate_polygons_are_skipped_and_counted():
    image = torch.rand(3, 50, 60) * 255
    good = np.array([[5.0, 5.0], [40.0, 5.0], [40.0, 20.0], [5.0, 20.0]])
    polygons = [
        np.zeros((0, 2)),  # no vertex
        np.array([[0.0, 0.0], [10.0, 10.0]]),  # 2 points
        np.array([[0.0, 0.0], [10.0, 10.0], [20.0, 20.0], [5.0, 5.0]]),  # collinear: zero area
        np.array([[1.0, 1.0], [np.nan, 3.0], [5.0, 9.0]]),  # NaN
        np.array([[1.0, 1.0], [np.inf, 3.0], [5.0, 9.0], [2.0, 8.0]]),  # inf
        np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.5]]),  # area 0.25 < min_area
        good,
        np.array([[0.0, 0.0], [10.0, 10.0], [10.0, 0.0], [0.0, 10.0]]),  # bow tie: zero signed area
    ]
    for layout in ("annotated", "predicted"):
        result = rectify_polygons(
            [image], polygons, [0] * len(polygons), (8, 16), layout=layout, min_area=1.0
        )
        assert result.keep.tolist() == [False] * 6 + [True, False]
        assert polygon_validity(polygons, min_area=1.0).tolist() == result.keep.tolist()
        assert result.num_skipped == 7 and result.crops.shape == (1, 3, 8, 16)
        assert torch.isfinite(result.crops).all()
    empty = rectify_polygons([image], polygons[:2], [0, 0], (8, 16))
    assert empty.crops.shape == (0, 3, 8, 16) and empty.num_skipped == 2
    nothing = rectify_polygons([image], [], [], (8, 16))
    assert nothing.crops.shape == (0, 3, 8, 16) and nothing.keep.shape == (0,)
    with pytest.raises(ValueError, match=r"polygon 0 has shape \(8,\)"):
        polygon_sampling_grids([np.zeros(8)], (8, 16))
    with pytest.raises(ValueError, match="unknown layout"):
        polygon_sampling_grids([good], (8, 16), layout="bezier")


def test_concave_quad_and_triangle_fall_back_inside_their_outline():
    concave = np.array(
        [[0.0, 0.0], [40.0, 0.0], [10.0, 8.0], [0.0, 30.0]]
    )  # homography would pass infinity
    triangle = np.array([[0.0, 0.0], [30.0, 0.0], [15.0, 12.0]])
    odd = np.array(
        [[10.0, 10.0], [50.0, 10.0], [50.0, 20.0], [30.0, 22.0], [10.0, 20.0]]
    )  # 5 points
    grids, valid = polygon_sampling_grids([concave, triangle, odd], (6, 12), layout="annotated")
    assert valid.all() and torch.isfinite(grids).all()
    for grid, poly in zip(grids, (concave, triangle, odd)):
        lo, hi = poly.min(0) - 1e-6, poly.max(0) + 1e-6
        pts = grid.reshape(-1, 2).numpy()
        assert ((pts >= lo) & (pts <= hi)).all()
    # the 5-point outline keeps its long sides: the first crop row runs along the top edge y = 10
    assert np.all(np.abs(grids[2, 0, :, 1].numpy() - 10.0) < 1.5)


def test_crops_are_batched_per_image_and_differentiable():
    images = torch.rand(2, 3, 40, 50, requires_grad=True)
    quad = np.array([[5.0, 5.0], [45.0, 5.0], [45.0, 25.0], [5.0, 25.0]])
    shifted = quad + np.array([2.0, 10.0])
    result = rectify_polygons(images, [quad, shifted, quad], [1, 0, 0], (10, 20))
    alone = rectify_polygons(images[1:2], [quad], [0], (10, 20))
    torch.testing.assert_close(result.crops[0], alone.crops[0])
    torch.testing.assert_close(
        result.crops[2], rectify_polygons(images[:1], [quad], [0], (10, 20)).crops[0]
    )
    # an axis-aligned box whose size matches the crop samples pixel centres exactly
    exact = rectify_polygons(
        images, [np.array([[10.0, 4.0], [30.0, 4.0], [30.0, 14.0], [10.0, 14.0]])], [0], (10, 20)
    )
    torch.testing.assert_close(exact.crops[0], images[0, :, 4:14, 10:30])

    result.crops.sum().backward()
    grad = images.grad
    assert grad[0, :, 5:35, 7:47].abs().sum() > 0 and grad[1, :, 5:25, 5:45].abs().sum() > 0
    assert grad[1, :, 30:, :].abs().sum() == 0  # image 1 only feeds the first crop

    uint8 = (images.detach() * 255).to(torch.uint8)
    crops = sample_crops(
        list(uint8), polygon_sampling_grids([quad], (10, 20))[0], torch.tensor([1])
    )
    assert crops.dtype == torch.float32 and crops.shape == (1, 3, 10, 20)
    with pytest.raises(ValueError, match="image indices span"):
        sample_crops(list(uint8), polygon_sampling_grids([quad], (10, 20))[0], torch.tensor([2]))
