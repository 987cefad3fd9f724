"""Band framings (fasttcm.modeling.recognition.curve_framing) and their place in the crop vote."""

import numpy as np
import pytest
import torch
from shapely.geometry import Polygon

from fasttcm.modeling.recognition.crop_voting import (
    BAND_MIN_BEND,
    framed_outlines,
    framed_quads,
    parse_crop_shapes,
    parse_crop_variants,
)
from fasttcm.modeling.recognition.curve_framing import band_bends, framed_bands
from fasttcm.structures.rectification.rectify import polygon_sampling_grids, sample_crops

CENTRE = np.array([160.0, 160.0])
INNER, OUTER = 80.0, 100.0


def _arc_band(start_deg=225.0, stop_deg=315.0, points_per_side=40):
    """A dense closed contour of an annulus sector above CENTRE (text bent like a smile's
    opposite), listed as a DB contour would be: one loop, no side structure."""
    angles = np.radians(np.linspace(start_deg, stop_deg, points_per_side))
    outer = CENTRE + OUTER * np.stack([np.cos(angles), np.sin(angles)], 1)
    inner = CENTRE + INNER * np.stack([np.cos(angles[::-1]), np.sin(angles[::-1])], 1)
    return np.concatenate([outer, inner])


def _iou(a, b):
    a, b = Polygon(a), Polygon(b)
    return a.intersection(b).area / a.union(b).area


def test_a_rectangle_is_framed_as_itself():
    rect = np.array([[10, 30], [110, 30], [110, 50], [10, 50]], dtype=np.float64)
    (band,), owner = framed_bands([rect], parse_crop_variants([[0, 0, 0, 0]]))
    assert band.shape == (32, 2) and owner.tolist() == [0]
    np.testing.assert_allclose(band[0], [10, 30], atol=0.02)  # top-left, then along the top
    np.testing.assert_allclose(band[15], [110, 30], atol=0.02)
    np.testing.assert_allclose(band[16], [110, 50], atol=0.02)  # bottom, right to left
    np.testing.assert_allclose(band[31], [10, 50], atol=0.02)
    assert _iou(band, rect) > 0.999


def test_offsets_are_multiples_of_the_band_height():
    rect = np.array([[10, 30], [110, 30], [110, 50], [10, 50]], dtype=np.float64)
    (band,), _ = framed_bands([rect], parse_crop_variants([[0.25, 0.5, 0.0, 1.0]]))
    xs, ys = band[:, 0], band[:, 1]
    # height 20: top moves 5 up, right 10 out, left 20 out, bottom stays
    np.testing.assert_allclose(
        [xs.min(), xs.max(), ys.min(), ys.max()], [-10, 120, 25, 50], atol=0.05
    )


def test_a_curved_outline_gets_a_band_that_follows_it():
    arc = _arc_band()
    (band,), _ = framed_bands([arc], parse_crop_variants([[0, 0, 0, 0]]))
    (quad,), _ = framed_quads([arc], parse_crop_variants([[0, 0, 0, 0]]))
    assert _iou(band, arc) > 0.8
    assert _iou(band, arc) > _iou(quad, arc) + 0.3
    # reading direction left to right, top side on the outside of the arc (further from CENTRE)
    top, bottom = band[:16], band[16:][::-1]
    assert top[-1, 0] > top[0, 0]
    assert (np.linalg.norm(top - CENTRE, axis=1) > np.linalg.norm(bottom - CENTRE, axis=1)).all()


def test_band_crops_straighten_curved_text():
    """Image intensity grows with the distance from CENTRE, so a crop whose columns run across
    the arc (normal to it) has rows of nearly constant intensity. On this 90-degree sector the
    band's rows spread by about 24 grey levels (the parabola is a little flat), the rectangle's
    by about 70."""
    yy, xx = np.mgrid[0:320, 0:320].astype(np.float64) + 0.5
    radius = np.hypot(xx - CENTRE[0], yy - CENTRE[1])
    intensity = np.clip((radius - INNER) / (OUTER - INNER), 0, 1) * 255
    image = torch.from_numpy(np.stack([intensity] * 3)).float()
    arc = _arc_band()
    variants = parse_crop_variants([[0, 0, 0, 0]])
    (band,), _ = framed_bands([arc], variants)
    (quad,), _ = framed_quads([arc], variants)

    def row_spread(polygon):
        grids, valid = polygon_sampling_grids([polygon], (32, 128), layout="annotated")
        assert valid.all()
        crop = sample_crops([image], grids, torch.zeros(1, dtype=torch.long))[0, 0]
        return crop[4:-4].std(dim=1).mean().item()  # mean within-row spread (0-255)

    assert row_spread(band) < 30.0
    assert row_spread(quad) > 2.5 * row_spread(band)


def test_flipped_framings_are_the_half_turn_and_vertical_text_reads_downwards():
    rect = np.array([[10, 30], [110, 30], [110, 50], [10, 50]], dtype=np.float64)
    bands, owner = framed_bands([rect], parse_crop_variants([[0, 0, 0, 0, 1]]), num_points=5)
    assert len(bands) == 2 and owner.tolist() == [0, 0]
    np.testing.assert_allclose(bands[1], np.roll(bands[0], 5, axis=0))
    vertical = np.array([[40, 10], [60, 10], [60, 110], [40, 110]], dtype=np.float64)
    (band,), _ = framed_bands([vertical], parse_crop_variants([[0, 0, 0, 0]]), num_points=5)
    assert band[4, 1] > band[0, 1]  # the top side runs down the image


def test_framed_outlines_groups_every_shape_by_outline():
    outlines = [_arc_band(), np.array([[0, 0], [50, 0], [50, 10], [0, 10]], dtype=np.float64)]
    variants = parse_crop_variants([[0, 0, 0, 0], [0.1, 0.2, 0.1, 0.2, 1]])
    framings, owner = framed_outlines(outlines, variants, ("rectangle", "band"))
    quads, _ = framed_quads(outlines, variants)
    bands, _ = framed_bands(outlines, variants)
    assert owner.tolist() == [0] * 6 + [1] * 6
    # the straight outline (1) gets no bands: empty framings, which give no crop
    expected = quads[:3] + bands[:3] + quads[3:] + [np.zeros((0, 2))] * 3
    for got, want in zip(framings, expected):
        np.testing.assert_array_equal(got, want)
    only_bands, _ = framed_outlines(outlines, variants, ("band",))
    assert [len(b) for b in only_bands] == [32] * 6  # bands alone: straight outlines too


def test_bends_tell_curved_outlines_from_straight_ones():
    rect = np.array([[10, 30], [110, 30], [110, 50], [10, 50]], dtype=np.float64)
    tilted = rect @ np.array([[0.8, 0.6], [-0.6, 0.8]])  # rotated by about 37 degrees
    bends = band_bends([rect, tilted, _arc_band(250, 290), _arc_band()])
    assert bends[0] < 0.01 and bends[1] < 0.01
    assert BAND_MIN_BEND < bends[2] < bends[3]  # a 40-degree and a 90-degree sector


@pytest.mark.parametrize("shapes", [[], ["band", "band"], ["curve"]])
def test_bad_crop_shapes_are_refused(shapes):
    with pytest.raises(ValueError, match="CROP_SHAPES"):
        parse_crop_shapes(shapes)


def test_min_area_rectangles_match_opencv_on_random_and_curved_outlines():
    """The rectangles come from the convex hull's edges only; their areas equal OpenCV's."""
    import cv2

    from fasttcm.structures.rectification.polygon_batch import pad_polygons, signed_areas
    from fasttcm.structures.rectification.quad_warp import min_area_rect_quads

    rng = np.random.default_rng(0)
    outlines = [rng.normal(size=(int(rng.integers(3, 40)), 2)) * 50 for _ in range(60)]
    outlines += [_arc_band(a, a + 80, 30) for a in range(200, 300, 20)]
    points, _, _ = pad_polygons(outlines)
    quads = min_area_rect_quads(points)
    areas = signed_areas(quads, torch.full((len(outlines),), 4)).abs().numpy()
    for outline, area in zip(outlines, areas):
        (_, _), (w, h), _ = cv2.minAreaRect(outline.astype(np.float32))
        assert area == pytest.approx(w * h, rel=1e-4, abs=1e-3)
