"""DB targets (shrink map / mask, threshold map / mask) on hand-made polygons."""

import numpy as np
import pytest
import shapely
import torch
from shapely.geometry import Polygon

from fasttcm.data.db_targets import make_db_targets, shrink_distance

SQUARE = np.array(
    [[10, 10], [110, 10], [110, 110], [10, 110]], dtype=np.float64
)  # 100 x 100, corners on pixel edges


def _pixel_centres(height, width):
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    return xs, ys


def test_outputs_are_float32_tensors_of_image_size():
    targets = make_db_targets([SQUARE], [False], 120, 130)
    assert set(targets) == {"shrink_map", "shrink_mask", "thresh_map", "thresh_mask"}
    for value in targets.values():
        assert isinstance(value, torch.Tensor) and value.dtype == torch.float32
        assert tuple(value.shape) == (120, 130)


def test_square_kernel_matches_the_shrink_formula():
    # D = A (1 - r^2) / L = 100^2 * 0.84 / 400 = 21: the kernel is [31, 89]^2, i.e. 58 x 58 pixels.
    assert shrink_distance(100.0 * 100.0, 400.0, 0.4) == pytest.approx(21.0)
    shrink = make_db_targets([SQUARE], [False], 128, 128)["shrink_map"].numpy()
    assert shrink.sum() == 58 * 58
    rows, cols = np.nonzero(shrink)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (31, 88, 31, 88)


def test_rotated_rectangle_kernel_area_matches_the_formula():
    w, h, angle = 120.0, 40.0, np.deg2rad(25.0)
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    polygon = corners @ rotation.T + [100.0, 80.0]
    d = w * h * (1 - 0.4**2) / (2 * (w + h))
    expected_area = (w - 2 * d) * (h - 2 * d)  # an inward offset of a rectangle is a rectangle
    shrink = make_db_targets([polygon], [False], 160, 200)["shrink_map"].numpy()
    assert shrink.sum() == pytest.approx(expected_area, rel=0.03)


def test_threshold_map_at_known_points():
    targets = make_db_targets([SQUARE], [False], 140, 140, thresh_min=0.3, thresh_max=0.7)
    thresh, mask = targets["thresh_map"].numpy(), targets["thresh_mask"].numpy()

    def expected(distance):
        return 0.3 + 0.4 * max(0.0, 1.0 - distance / 21.0)

    # Pixel (row 60, col c) has its centre at x = c + 0.5; the nearest edge is x = 10 (or x = 110).
    assert thresh[60, 10] == pytest.approx(expected(0.5), abs=1e-6)  # just inside the left edge
    assert thresh[60, 9] == pytest.approx(expected(0.5), abs=1e-6)  # just outside it
    assert thresh[60, 20] == pytest.approx(0.5, abs=1e-6)  # d = 10.5 = D / 2
    assert thresh[60, 120] == pytest.approx(0.5, abs=1e-6)  # d = 10.5 outside the right edge
    assert thresh[60, 60] == pytest.approx(0.3, abs=1e-6)  # the centre, beyond D from any edge
    assert thresh[0, 0] == pytest.approx(
        expected(np.hypot(9.5, 9.5)), abs=1e-6
    )  # nearest: the corner
    assert thresh[135, 135] == pytest.approx(0.3, abs=1e-6)
    assert mask[60, 60] == 1 and mask[0, 0] == 1 and mask[135, 135] == 0
    assert thresh.min() >= 0.3 - 1e-6 and thresh.max() <= 0.7 + 1e-6


def test_threshold_map_and_mask_agree_with_shapely_distances():
    polygon = np.array([[20.3, 15.2], [95.7, 30.1], [88.4, 70.6], [30.2, 62.9], [25.5, 40.0]])
    height, width = 96, 120
    targets = make_db_targets([polygon], [False], height, width, thresh_min=0.2, thresh_max=0.8)
    geometry = Polygon(polygon)
    d_max = shrink_distance(geometry.area, geometry.length, 0.4)
    xs, ys = _pixel_centres(height, width)
    points = shapely.points(xs, ys)
    edge_distance = shapely.distance(geometry.exterior, points)
    expected_thresh = 0.2 + 0.6 * np.clip(1.0 - edge_distance / d_max, 0.0, 1.0)
    expected_mask = shapely.distance(geometry, points) <= d_max
    np.testing.assert_allclose(targets["thresh_map"].numpy(), expected_thresh, atol=1e-5)
    np.testing.assert_array_equal(targets["thresh_mask"].numpy().astype(bool), expected_mask)


def test_ignored_and_too_small_polygons_are_masked_out():
    ignored = np.array([[5, 5], [45, 5], [45, 25], [5, 25]], dtype=np.float64)
    small = np.array([[60, 10], [90, 10], [90, 14], [60, 14]], dtype=np.float64)  # short side 4 < 8
    kept = np.array([[10, 40], [90, 40], [90, 70], [10, 70]], dtype=np.float64)
    targets = make_db_targets(
        [ignored, small, kept], [True, False, False], 80, 100, min_text_size=8
    )
    shrink, mask = targets["shrink_map"].numpy(), targets["shrink_mask"].numpy()
    thresh_mask = targets["thresh_mask"].numpy()
    # The ignored and the small polygon: mask 0 on exactly their pixels, no kernel, no border.
    assert (mask[5:25, 5:45] == 0).all() and (mask[10:14, 60:90] == 0).all()
    assert mask.sum() == 80 * 100 - 40 * 20 - 30 * 4
    assert shrink[:30].sum() == 0 and thresh_mask[:14, 50:].sum() == 0
    # The kept polygon is supervised normally.
    assert shrink[40:70, 10:90].sum() > 0 and thresh_mask[55, 10] == 1


def test_polygon_whose_kernel_has_no_pixel_is_ignored():
    # Covers pixel rows 4 and 5 (centres 4.5, 5.5); its kernel y in [4.93, 5.07] holds no pixel
    # centre.
    thin = np.array([[2.0, 4.45], [30.0, 4.45], [30.0, 5.55], [2.0, 5.55]])
    targets = make_db_targets([thin], [False], 12, 40, min_text_size=0)
    assert targets["shrink_map"].sum() == 0
    assert targets["thresh_mask"].sum() == 0
    mask = targets["shrink_mask"].numpy()
    assert (mask[4:6, 2:30] == 0).all() and mask.sum() == 12 * 40 - 2 * 28


def test_self_intersecting_polygon_is_ignored():
    bow_tie = np.array([[10, 10], [50, 40], [50, 10], [10, 40]], dtype=np.float64)
    targets = make_db_targets([bow_tie], [False], 50, 60)
    assert targets["shrink_map"].sum() == 0 and targets["thresh_mask"].sum() == 0
    assert (
        targets["shrink_mask"][25, 20] == 0 and targets["shrink_mask"][25, 30] == 1
    )  # a lobe vs the crossing


def test_empty_image_and_degenerate_polygons():
    for polygons, ignore in (
        ([], []),
        ([np.zeros((2, 2)), np.array([[1, 1], [5, 5], [9, 9]])], [False, False]),
    ):
        targets = make_db_targets(polygons, ignore, 16, 24)
        assert targets["shrink_map"].sum() == 0 and targets["thresh_mask"].sum() == 0
        assert (targets["shrink_mask"] == 1).all()
        assert torch.allclose(targets["thresh_map"], torch.full((16, 24), 0.3))


def test_polygons_crossing_the_image_border_are_clipped():
    outside = SQUARE + [-60.0, -60.0]  # [-50, 50]^2: the kernel [-29, 29]^2 keeps 29 x 29 pixels
    targets = make_db_targets([outside, SQUARE + 500.0], [False, False], 64, 64)
    assert targets["shrink_map"].sum() == 29 * 29


def test_bad_input_raises_a_clear_error():
    with pytest.raises(ValueError, match="polygon 1 has shape"):
        make_db_targets([SQUARE, np.zeros((4, 3))], [False, False], 32, 32)
    with pytest.raises(ValueError, match="non-finite"):
        make_db_targets([np.array([[0, 0], [5, np.nan], [5, 5]])], [False], 32, 32)
    with pytest.raises(ValueError, match="2 polygons but 1 ignore"):
        make_db_targets([SQUARE, SQUARE], [False], 32, 32)
    with pytest.raises(ValueError, match="image size"):
        make_db_targets([], [], 0, 32)
