"""Random side offsets of annotated polygons (fasttcm.structures.rectification.crop_jitter)."""

import numpy as np
import pytest
from shapely.geometry import Polygon

from fasttcm.structures.rectification.crop_jitter import jitter_side_polygons


class _Fixed:
    """Stands in for a numpy Generator: every polygon gets the same offsets (top, right, bottom,
    left)."""

    def __init__(self, offsets):
        self.offsets = np.asarray(offsets, dtype=np.float64)

    def uniform(self, low, high, size):
        return np.tile(self.offsets, (size[0], 1))


RECT = np.array([[0, 0], [100, 0], [100, 20], [0, 20]], dtype=np.float64)  # height 20


def test_each_side_of_a_rectangle_moves_by_its_offset_times_the_height():
    (moved,), _ = jitter_side_polygons([RECT], -1, 1, _Fixed([0.5, 0.25, -0.25, 1.0]))
    # top up by 10, right by 5, bottom up by 5 (inwards), left by 20
    np.testing.assert_allclose(moved, [[-20, -10], [105, -10], [105, 15], [-20, 15]])


def test_a_rotated_quad_grows_like_a_shapely_buffer_with_mitre_joins():
    """Equal outward offsets d x h on every side of a rectangle = shapely's mitre buffer by
    d x h."""
    angle = np.radians(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    quad = RECT @ rotation.T + [40, 7]
    (moved,), _ = jitter_side_polygons([quad], -1, 1, _Fixed([0.3] * 4))
    expected = Polygon(quad).buffer(0.3 * 20, join_style="mitre")
    assert Polygon(moved).is_valid
    assert Polygon(moved).symmetric_difference(expected).area < 1e-6 * expected.area


def test_two_sided_polygon_sides_move_along_their_columns():
    curved = np.array([[0, 10], [50, 0], [100, 10], [100, 30], [50, 20], [0, 30]], dtype=np.float64)
    (moved,), _ = jitter_side_polygons([curved], -1, 1, _Fixed([0.5, 0.0, 0.0, 0.0]))
    # every column is vertical and 20 high: the top points rise by 10, the bottom side stays
    np.testing.assert_allclose(moved[:3], curved[:3] - [0, 10])
    np.testing.assert_allclose(moved[3:], curved[3:])
    (moved,), _ = jitter_side_polygons([curved], -1, 1, _Fixed([0.0, 0.0, 0.0, 0.5]))
    # left end: points 0 (top) and 5 (bottom) move away from their side neighbours by 10 pixels
    for index, neighbour in ((0, 1), (5, 4)):
        step = moved[index] - curved[index]
        direction = (curved[index] - curved[neighbour]) / np.linalg.norm(
            curved[index] - curved[neighbour]
        )
        np.testing.assert_allclose(step, 10 * direction)
    np.testing.assert_allclose(moved[1:5], curved[1:5])


def test_offsets_are_drawn_in_range_and_other_vertex_counts_are_untouched():
    rng = np.random.default_rng(0)
    polygons = [RECT, RECT[:3], np.zeros((5, 2)), RECT * 2]
    moved, offsets = jitter_side_polygons(polygons, -0.1, 0.3, rng)
    assert offsets.shape == (4, 4) and offsets.min() >= -0.1 and offsets.max() <= 0.3
    np.testing.assert_array_equal(moved[1], RECT[:3])
    np.testing.assert_array_equal(moved[2], np.zeros((5, 2)))
    assert not np.allclose(moved[0], RECT) and not np.allclose(moved[3], RECT * 2)
    # the same seed gives the same polygons
    again, _ = jitter_side_polygons(polygons, -0.1, 0.3, np.random.default_rng(0))
    for a, b in zip(moved, again):
        np.testing.assert_array_equal(a, b)


def test_zero_range_is_the_identity_and_bad_input_is_named():
    moved, _ = jitter_side_polygons([RECT], 0.0, 0.0, np.random.default_rng(0))
    np.testing.assert_allclose(moved[0], RECT)
    with pytest.raises(ValueError, match="low <= high"):
        jitter_side_polygons([RECT], 0.3, 0.1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="polygon 1 has shape"):
        jitter_side_polygons([RECT, np.zeros(4)], 0.0, 0.1, np.random.default_rng(0))


def test_inward_end_offsets_never_fold_a_short_word_over():
    """A one-letter box 8 wide and 20 high: ends pulled in by 0.25 h = 5 each would cross; each
    stops at 8 / 4."""
    narrow = np.array([[0, 0], [8, 0], [8, 20], [0, 20]], dtype=np.float64)
    (moved,), _ = jitter_side_polygons([narrow], -1, 1, _Fixed([0.0, -0.25, 0.0, -0.25]))
    np.testing.assert_allclose(moved, [[2, 0], [6, 0], [6, 20], [2, 20]])
    assert Polygon(moved).is_valid and Polygon(moved).area == pytest.approx(4 * 20)
    (moved,), _ = jitter_side_polygons(
        [narrow], -1, 1, _Fixed([0.0, -0.05, 0.0, -0.05])
    )  # 1 each: room enough
    np.testing.assert_allclose(moved, [[1, 0], [7, 0], [7, 20], [1, 20]])
    (moved,), _ = jitter_side_polygons(
        [narrow], -1, 1, _Fixed([0.0, 0.25, 0.0, 0.25])
    )  # outwards: no limit
    np.testing.assert_allclose(moved, [[-5, 0], [13, 0], [13, 20], [-5, 20]])
