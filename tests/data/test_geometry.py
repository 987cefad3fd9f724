"""poly <-> XYWHA conversions against detectron2's conventions and cv2.minAreaRect."""

import cv2
import numpy as np
import pytest
import torch

from detectron2.structures import BoxMode, RotatedBoxes

from fasttcm.utils.geometry import (
    min_area_rect,
    normalize_angle,
    poly_to_hbb,
    poly_to_xywha,
    polygon_area,
    xywha_to_poly,
)


def _random_boxes(rng, n):
    return np.concatenate(
        [
            rng.uniform(0, 500, (n, 2)),
            rng.uniform(2, 120, (n, 2)),
            rng.uniform(-180, 180, (n, 1)),
        ],
        axis=1,
    )


def test_corners_follow_the_rotated_boxes_docstring_example():
    # detectron2 RotatedBoxes docstring: (5, 3, 4, 2, 90) has corners A(4,5) B(4,1) C(6,1) D(6,5)
    np.testing.assert_allclose(
        xywha_to_poly([5, 3, 4, 2, 90]), [[4, 5, 4, 1, 6, 1, 6, 5]], atol=1e-12
    )
    # angle 0: top-left, top-right, bottom-right, bottom-left (clockwise on screen, like DOTA)
    np.testing.assert_allclose(
        xywha_to_poly([10, 20, 6, 4, 0]), [[7, 18, 13, 18, 13, 22, 7, 22]], atol=1e-12
    )
    # +30 degrees is counter-clockwise on screen: the width direction points up-right
    poly = xywha_to_poly([0, 0, 2, 0, 30])[0]
    assert poly[2] > 0 and poly[3] < 0  # corner B = (+w/2 along width) is right of and above centre


def test_rectangle_round_trip_is_exact_vertex_for_vertex():
    rng = np.random.default_rng(0)
    boxes = _random_boxes(rng, 200)
    polys = xywha_to_poly(boxes)
    back = poly_to_xywha(polys)
    np.testing.assert_allclose(back, boxes, atol=1e-9)
    np.testing.assert_allclose(xywha_to_poly(back), polys, atol=1e-9)
    assert np.all((back[:, 4] >= -180) & (back[:, 4] < 180))


def test_round_trip_follows_the_first_vertex_of_a_rotated_vertex_list():
    box = np.array([[50.0, 40.0, 30.0, 10.0, 20.0]])
    poly = xywha_to_poly(box)[0].reshape(4, 2)
    for shift in range(4):
        rolled = np.roll(poly, -shift, axis=0).reshape(1, 8)
        np.testing.assert_allclose(xywha_to_poly(poly_to_xywha(rolled)), rolled, atol=1e-9)


def _inside_box(points, box, tol=1e-6):
    """Whether points (K, 2) lie in the XYWHA box (local coordinates within the half sizes)."""
    t = np.deg2rad(box[4])
    d = points - box[:2]
    u = d[:, 0] * np.cos(t) - d[:, 1] * np.sin(t)  # along (cos a, -sin a)
    v = d[:, 0] * np.sin(t) + d[:, 1] * np.cos(t)  # along (sin a, cos a)
    return np.all(np.abs(u) <= box[2] / 2 + tol) and np.all(np.abs(v) <= box[3] / 2 + tol)


@pytest.mark.parametrize("kind", ["random", "perturbed_rectangles"])
def test_quadrilaterals_give_the_cv2_min_area_rect(kind):
    rng = np.random.default_rng(1)
    if kind == "random":
        quads = rng.uniform(0, 200, (100, 8))
    else:
        quads = xywha_to_poly(_random_boxes(rng, 100)) + rng.normal(0, 0.3, (100, 8))
    for quad, box in zip(quads, poly_to_xywha(quads)):
        (cx, cy), (w, h), _ = cv2.minAreaRect(quad.reshape(4, 2).astype(np.float32))
        # the minimum area is unique; the rectangle need not be (a triangle hull has three,
        # nearly parallel edges give near ties that cv2's float32 may break the other way)
        np.testing.assert_allclose(box[2] * box[3], w * h, rtol=1e-4)
        assert _inside_box(quad.reshape(4, 2), box, tol=1e-6)


def test_min_area_rect_of_point_sets_matches_cv2():
    rng = np.random.default_rng(2)
    pts = rng.uniform(0, 100, (20, 7, 2))
    rects = min_area_rect(pts)
    for p, r in zip(pts, rects):
        (cx, cy), (w, h), _ = cv2.minAreaRect(p.astype(np.float32))
        np.testing.assert_allclose([r[0], r[1], r[2] * r[3]], [cx, cy, w * h], rtol=1e-4, atol=1e-2)


def test_enclosing_box_agrees_with_detectron2_box_mode():
    boxes = _random_boxes(np.random.default_rng(3), 50)
    hbb = poly_to_hbb(xywha_to_poly(boxes))
    d2 = BoxMode.convert(torch.from_numpy(boxes), BoxMode.XYWHA_ABS, BoxMode.XYXY_ABS).numpy()
    np.testing.assert_allclose(hbb, d2, atol=1e-6)


def test_area_sign_and_value_agree_with_rotated_boxes():
    boxes = _random_boxes(np.random.default_rng(4), 50)
    area = polygon_area(xywha_to_poly(boxes))
    assert np.all(area > 0)  # detectron2 corner order = clockwise on screen = positive shoelace
    np.testing.assert_allclose(
        area, RotatedBoxes(torch.from_numpy(boxes)).area().numpy(), rtol=1e-6
    )
    assert polygon_area([0, 0, 0, 10, 10, 10, 10, 0])[0] == -100.0  # counter-clockwise on screen


def test_normalize_angle_range():
    a = normalize_angle(np.array([-540.0, -180.0, 0.0, 179.9, 180.0, 360.0, 725.0, -1e-18]))
    np.testing.assert_allclose(a, [-180, -180, 0, 179.9, -180, 0, 5, -1e-18], atol=1e-9)
    assert np.all((a >= -180) & (a < 180))


def test_degenerate_and_bad_inputs():
    flat = poly_to_xywha([0, 0, 10, 0, 20, 0, 5, 0])
    assert flat[0, 2] * flat[0, 3] == pytest.approx(0.0)
    assert poly_to_xywha(np.zeros((0, 8))).shape == (0, 5)
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        poly_to_xywha(np.zeros((3, 6)))
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        xywha_to_poly(np.zeros((2, 4)))
