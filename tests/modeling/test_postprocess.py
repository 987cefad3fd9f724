"""DB post-processing on synthetic probability maps with known text regions (checked with
shapely)."""

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from fasttcm.modeling.text_heads.postprocess import DBPostprocessor, order_points_clockwise

HEIGHT, WIDTH = 240, 320
RECT_A = np.array([[20, 20], [140, 20], [140, 60], [20, 60]], dtype=np.float64)
RECT_B = np.array(
    [[180, 30], [300, 50], [295, 90], [175, 70]], dtype=np.float64
)  # slanted quadrilateral


def _curved_band(cx=160.0, cy=90.0, outer=140.0, inner=105.0):
    t = np.linspace(np.pi * 0.15, np.pi * 0.85, 12)
    top = np.stack([cx + inner * np.cos(t), cy + inner * np.sin(t)], axis=1)
    bottom = np.stack([cx + outer * np.cos(t), cy + outer * np.sin(t)], axis=1)
    return np.concatenate([bottom, top[::-1]])


BAND = _curved_band()
TRUTH = [RECT_A, RECT_B, BAND]


def _kernel(polygon, unclip_ratio):
    """The inward offset K = P - d with d = area(K) * ratio / perimeter(K): what unclip inverts
    exactly."""
    geometry = Polygon(polygon)
    low, high = 0.0, 0.5 * min(np.ptp(polygon, axis=0))
    for _ in range(60):  # bisection on d
        d = 0.5 * (low + high)
        kernel = geometry.buffer(-d, join_style="mitre")
        if kernel.is_empty or kernel.area * unclip_ratio / kernel.length < d:
            high = d
        else:
            low = d
    return geometry.buffer(-low, join_style="mitre")


def _prob_map(values, unclip_ratio=1.5, background=0.05):
    """Probability map with the kernels of TRUTH filled with `values` (pixel centres inside)."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH] + 0.5
    prob = np.full((HEIGHT, WIDTH), background, dtype=np.float32)
    for polygon, value in zip(TRUTH, values):
        prob[shapely.contains_xy(_kernel(polygon, unclip_ratio), xs, ys)] = value
    return prob


def _iou(a, b):
    a, b = Polygon(a), Polygon(b)
    return a.intersection(b).area / a.union(b).area


def _match(polygons, truth):
    """IoU of every truth polygon with its best detection."""
    return [max(_iou(p, t) for p in polygons) for t in truth]


def test_poly_mode_recovers_rectangles_and_a_curved_band():
    prob = _prob_map([0.9, 0.8, 0.7])
    polygons, scores = DBPostprocessor(unclip_ratio=1.5, polygon_type="poly")(prob)
    assert len(polygons) == 3
    np.testing.assert_allclose(
        scores, [0.9, 0.8, 0.7], atol=1e-6
    )  # mean P inside each region, sorted
    for polygon, truth in zip(polygons, TRUTH):
        assert polygon.dtype == np.float32 and polygon.ndim == 2 and polygon.shape[1] == 2
        assert _iou(polygon, truth) > 0.9
        assert Polygon(polygon).is_valid


def test_polygons_are_rescaled_to_the_original_image():
    prob = _prob_map([0.9, 0.9, 0.9])
    out_h, out_w = 480, 400  # y x2, x x1.25
    polygons, _ = DBPostprocessor(unclip_ratio=1.5)(prob, output_size=(out_h, out_w))
    scaled_truth = [t * [out_w / WIDTH, out_h / HEIGHT] for t in TRUTH]
    assert min(_match(polygons, scaled_truth)) > 0.9
    assert min(_match(polygons, TRUTH)) < 0.7  # really moved


def test_quad_mode_gives_clockwise_min_area_rectangles():
    prob = _prob_map([0.9, 0.8, 0.7])
    polygons, scores = DBPostprocessor(unclip_ratio=1.5, polygon_type="quad")(prob)
    assert len(polygons) == 3
    for quad in polygons:
        assert quad.shape == (4, 2)
        sides = np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1)
        assert sides[0] == pytest.approx(sides[2], rel=1e-4) and sides[1] == pytest.approx(
            sides[3], rel=1e-4
        )
        # Clockwise on the image (y down) = positive shoelace area; starts at the top-left vertex.
        x, y = quad[:, 0], quad[:, 1]
        assert np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y) > 0
        assert np.argmin(quad.sum(axis=1)) == 0
    assert _iou(polygons[0], RECT_A) > 0.9 and _iou(polygons[1], RECT_B) > 0.9
    assert Polygon(polygons[2]).contains(Polygon(BAND).buffer(-3))  # the band's bounding rectangle


def test_score_threshold_min_size_and_candidate_limit():
    prob = _prob_map([0.9, 0.8, 0.5])
    polygons, scores = DBPostprocessor(min_text_score=0.6)(prob)
    assert len(polygons) == 2 and (scores >= 0.6).all()
    # The largest region (the band) is the only candidate kept with max_candidates=1.
    polygons, scores = DBPostprocessor(max_candidates=1)(prob)
    assert len(polygons) == 1 and _iou(polygons[0], BAND) > 0.9 and scores[0] == pytest.approx(0.5)
    # min_size applies to the short side (probability-map pixels) of the unclipped region's
    # min-area rectangle: about 41 for the quadrilaterals, about 90 for the band's bounding
    # rectangle.
    polygons, _ = DBPostprocessor(min_size=60)(prob)
    assert len(polygons) == 1 and _iou(polygons[0], BAND) > 0.9
    polygons, _ = DBPostprocessor(min_size=100)(prob)
    assert len(polygons) == 0


def test_polygon_vertex_count_is_bounded():
    prob = _prob_map([0.9, 0.9, 0.9])
    full = DBPostprocessor(max_polygon_points=32)(prob)[0]
    coarse = DBPostprocessor(max_polygon_points=10)(prob)[0]
    assert max(len(p) for p in full) > 10 and all(4 <= len(p) <= 10 for p in coarse)
    assert _match(coarse, [BAND])[0] > 0.8


def test_empty_and_tiny_regions():
    polygons, scores = DBPostprocessor()(np.zeros((32, 48), dtype=np.float32))
    assert polygons == [] and scores.shape == (0,) and scores.dtype == np.float32
    prob = np.zeros((32, 48), dtype=np.float32)
    prob[10, 10] = (
        1.0  # a single pixel: its outline is 1 x 1, unclipped to 1.75 x 1.75 (< min_size 3)
    )
    prob[20, 5:40] = 1.0  # a one-pixel line, unclipped to a 36.9 x 1.9 box
    assert DBPostprocessor(min_size=3)(prob)[0] == []
    polygons, _ = DBPostprocessor(min_size=1, polygon_type="quad")(prob)
    assert len(polygons) == 2


def test_order_points_clockwise():
    counter_clockwise_on_image = np.array([[0, 0], [0, 10], [20, 10], [20, 0]], dtype=np.float64)
    np.testing.assert_array_equal(
        order_points_clockwise(counter_clockwise_on_image), [[0, 0], [20, 0], [20, 10], [0, 10]]
    )


def test_bad_input_raises():
    with pytest.raises(ValueError, match="2-D"):
        DBPostprocessor()(np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        DBPostprocessor()(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="polygon_type"):
        DBPostprocessor(polygon_type="box")
