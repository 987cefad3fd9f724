"""Official DB targets (MMOCR 0.4 DBNetTargets): hand-computed values on a rectangle, agreement
with a literal transcription of the official code and with shapely's offsets, the mapper's pick."""

import math

import cv2
import numpy as np
import pyclipper
import pytest
import shapely
import torch
from shapely.geometry import Polygon

from fasttcm.data.db_targets_official import (
    make_db_targets_official,
    official_edge_distance,
    official_kernel_offset,
)

RECT = np.array([[10, 10], [110, 10], [110, 40], [10, 40]], dtype=np.float64)  # 100 x 30
# Official float offset D = A (1 - r^2) / L of RECT, r = 0.4.
RECT_D = 3000 * (1 - 0.16) / 260


def _thresh(distance: float) -> float:
    """Threshold-map value at a pixel `distance` from the nearest edge of RECT (before float32)."""
    return 0.3 + 0.4 * (1 - min(distance / RECT_D, 1.0))


@pytest.fixture(scope="module")
def rect_maps():
    maps = make_db_targets_official([RECT], [False], 60, 130)
    return {name: value.numpy() for name, value in maps.items()}


def test_rectangle_kernel_is_shrunk_by_the_rounded_offset(rect_maps):
    # int(3000 * 0.84 / (260 + 0.001) + 0.5) = int(10.19) = 10: the kernel is x 20..100, y 20..30,
    # filled inclusively by cv2.fillPoly (pixel (i, j) is the point (j, i)): 81 x 11 pixels.
    assert official_kernel_offset(RECT.astype(np.int32), 0.4) == 10
    rows, cols = np.nonzero(rect_maps["shrink_map"])
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (20, 100, 20, 30)
    assert rect_maps["shrink_map"].sum() == 81 * 11
    assert rect_maps["shrink_mask"].min() == 1.0
    assert all(v.dtype == np.float32 and v.shape == (60, 130) for v in rect_maps.values())


def test_rectangle_threshold_values_by_hand(rect_maps):
    thresh = rect_maps["thresh_map"]
    # 5 px left of the left edge, level with its middle: the perpendicular distance 5.
    assert thresh[25, 5] == pytest.approx(_thresh(5.0), abs=1e-6)
    # 3 px inside, below the top edge: distance 3.
    assert thresh[13, 60] == pytest.approx(_thresh(3.0), abs=1e-6)
    # Outside a corner: the distance to the corner, sqrt(50).
    assert thresh[5, 5] == pytest.approx(_thresh(math.sqrt(50)), abs=1e-6)
    # On an edge: 0.7 up to the float32-epsilon guard of the official formula.
    assert thresh[25, 10] == pytest.approx(0.7, abs=1e-4)
    # Far inside, and far outside: thresh_min.
    assert thresh[25, 60] == pytest.approx(0.3, abs=1e-7)
    assert thresh[55, 125] == pytest.approx(0.3, abs=1e-7)


def test_edge_distance_beside_a_short_edge_is_the_end_point_distance(rect_maps):
    # (118, 11) is 8 px right of the right edge (x = 110, y 10..40), but sees it under an acute
    # angle (outside the circle on that edge): DBNet's formula takes the nearer end point,
    # sqrt(8^2 + 1^2), not the point-to-segment distance 8.
    expected = math.sqrt(65)
    assert rect_maps["thresh_map"][11, 118] == pytest.approx(_thresh(expected), abs=1e-6)
    distance = official_edge_distance(
        np.array([118.0]), np.array([11.0]), np.array([[110.0, 10.0]]), np.array([[110.0, 40.0]])
    )
    assert distance[0, 0] == pytest.approx(expected, rel=1e-9)
    # Inside that circle the formula is the perpendicular distance.
    inside = official_edge_distance(
        np.array([115.0]), np.array([12.0]), np.array([[110.0, 10.0]]), np.array([[110.0, 40.0]])
    )
    assert inside[0, 0] == pytest.approx(5.0, rel=1e-6)


def test_threshold_mask_is_the_polygon_expanded_by_d(rect_maps):
    mask = rect_maps["thresh_mask"]
    rows, cols = np.nonzero(mask)
    # round(10 - 9.69) = 0 ... round(110 + 9.69) = 120; y 0 ... 50 (Clipper's integer result).
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (0, 120, 0, 50)
    # Independent: shapely's round-join buffer by D, within a pixel's band either way.
    poly = Polygon(RECT)
    assert poly.buffer(RECT_D - 1).area < mask.sum() < poly.buffer(RECT_D + 1).area


def test_kernel_agrees_with_a_shapely_offset():
    # A slanted quadrilateral: Clipper's kernel (integer offset d, round joins) against shapely's
    # buffer by -d of the same integer polygon. Pixel (i, j) is the point (j, i); the inclusive
    # cv2.fillPoly adds the pixels the outline passes through, so the kernel holds every pixel
    # centre inside shapely's offset, and none farther than a pixel outside it.
    quad = np.array([[30, 20], [150, 35], [145, 75], [25, 60]], dtype=np.float64)
    kernel = make_db_targets_official([quad], [False], 100, 180)["shrink_map"].numpy() > 0
    d = official_kernel_offset(quad.astype(np.int32), 0.4)
    assert d == int(Polygon(quad).area * 0.84 / (Polygon(quad).length + 0.001) + 0.5)
    shrunk = Polygon(quad.astype(np.int32)).buffer(-d)
    ys, xs = np.mgrid[0:100, 0:180]
    inside = shapely.contains_xy(shrunk, xs, ys)
    near = shapely.contains_xy(shrunk.buffer(1.0), xs, ys)
    assert np.all(kernel[inside]) and not np.any(kernel & ~near)
    assert kernel.sum() > inside.sum()


def test_ignored_invalid_and_vanishing_polygons_only_mask():
    flagged = np.array([[5, 5], [45, 5], [45, 25], [5, 25]], dtype=np.float64)  # '###'
    thin = np.array([[60, 5], [120, 5], [120, 10], [60, 10]], dtype=np.float64)  # 5 px < 8
    tiny = np.array([[5, 40], [5.5, 40], [5.5, 41.5]], dtype=np.float64)  # area < 1
    maps = make_db_targets_official([flagged, thin, tiny], [True, False, False], 60, 130)
    assert maps["shrink_map"].sum() == 0 and maps["thresh_mask"].sum() == 0
    assert torch.all(maps["thresh_map"] == torch.tensor(0.3))
    mask = maps["shrink_mask"].numpy()
    # Each ignored polygon is filled with 0 from its integer coordinates (inclusive fill).
    assert mask[5:26, 5:46].sum() == 0 and mask[5:11, 60:121].sum() == 0
    assert mask[40, 5] == 0
    assert mask.sum() == 60 * 130 - 21 * 41 - 6 * 61 - 2


def test_coordinates_are_truncated_for_the_kernel():
    # 10.9 and 110.9 truncate to 10 and 110: the same kernel as RECT's.
    shifted = RECT + np.array([0.9, 0.9])
    a = make_db_targets_official([shifted], [False], 60, 130)["shrink_map"]
    b = make_db_targets_official([RECT], [False], 60, 130)["shrink_map"]
    assert torch.equal(a, b)


# --- a literal transcription of the official algorithm, loops and all, for the comparison ------


def _ref_point2line(xs, ys, p1, p2):
    a2 = np.square(xs - p1[0]) + np.square(ys - p1[1])
    b2 = np.square(xs - p2[0]) + np.square(ys - p2[1])
    c2 = np.square(p1[0] - p2[0]) + np.square(p1[1] - p2[1])
    eps = np.finfo(np.float32).eps
    with np.errstate(invalid="ignore", divide="ignore"):
        cosin = (c2 - a2 - b2) / (eps + 2 * np.sqrt(a2 * b2))
        square_sin = np.nan_to_num(1 - np.square(cosin))
        result = np.sqrt(a2 * b2 * square_sin / (eps + c2))
    result[cosin < 0] = np.sqrt(np.fmin(a2, b2))[cosin < 0]
    return result


def _ref_offset(path, delta):
    pco = pyclipper.PyclipperOffset()
    pco.AddPath(path, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return pco.Execute(delta)


def _ref_targets(polygons, ignore, h, w, r=0.4, min_short=8):
    kept, ignored = [], []
    for poly, flag in zip(polygons, ignore):
        area = 0.0
        for i in range(len(poly)):
            j = (i + 1) % len(poly)
            area += (poly[j, 0] - poly[i, 0]) * (poly[j, 1] + poly[i, 1])
        short = min(cv2.minAreaRect(poly.astype(np.int32))[1])
        (ignored if flag or abs(area / 2) < 1 or short < min_short else kept).append(poly)
    kernel = np.zeros((h, w), np.float32)
    still = []
    for ind, poly in enumerate(kept):
        inst = poly.astype(np.int32)
        d = int(Polygon(inst).area * (1 - r * r) / (cv2.arcLength(inst, True) + 0.001) + 0.5)
        shrunk = _ref_offset(inst, -d)
        if not shrunk:
            ignored.append(poly)
            continue
        cv2.fillPoly(kernel, [np.array(shrunk[0]).astype(np.int32)], ind + 1)
        still.append(poly)
    mask = np.ones((h, w), np.uint8)
    for poly in ignored:
        cv2.fillPoly(mask, poly.astype(np.int32).reshape(1, -1, 2), 0)
    canvas, thr_mask = np.zeros((h, w), np.float32), np.zeros((h, w), np.uint8)
    for poly in still:
        poly = poly.copy()
        shape = Polygon(poly)
        dist = shape.area * (1 - r**2) / shape.length
        padded = np.array(_ref_offset([tuple(p) for p in poly], dist)[0])
        x_min, x_max = padded[:, 0].min(), padded[:, 0].max()
        y_min, y_max = padded[:, 1].min(), padded[:, 1].max()
        width, height = x_max - x_min + 1, y_max - y_min + 1
        poly[:, 0] -= x_min
        poly[:, 1] -= y_min
        xs = np.broadcast_to(
            np.linspace(0, width - 1, num=width).reshape(1, width), (height, width)
        )
        ys = np.broadcast_to(
            np.linspace(0, height - 1, num=height).reshape(height, 1), (height, width)
        )
        dmap = np.zeros((len(poly), height, width), np.float32)
        for i in range(len(poly)):
            j = (i + 1) % len(poly)
            dmap[i] = np.clip(_ref_point2line(xs, ys, poly[i], poly[j]) / dist, 0, 1)
        dmap = dmap.min(axis=0)
        x0, x1 = min(max(0, x_min), w - 1), min(max(0, x_max), w - 1)
        y0, y1 = min(max(0, y_min), h - 1), min(max(0, y_max), h - 1)
        cv2.fillPoly(thr_mask, [padded.astype(np.int32)], 1.0)
        canvas[y0 : y1 + 1, x0 : x1 + 1] = np.fmax(
            1 - dmap[y0 - y_min : y1 - y_max + height, x0 - x_min : x1 - x_max + width],
            canvas[y0 : y1 + 1, x0 : x1 + 1],
        )
    return {
        "shrink_map": (kernel > 0).astype(np.float32),
        "shrink_mask": mask.astype(np.float32),
        "thresh_map": canvas * np.float32(0.4) + np.float32(0.3),
        "thresh_mask": thr_mask.astype(np.float32),
    }


def _random_polygons(rng, count, h, w):
    polygons = []
    for _ in range(count):
        cx, cy = rng.uniform(10, w - 10), rng.uniform(10, h - 10)
        angle = rng.uniform(-0.6, 0.6)
        half_w, half_h = rng.uniform(3, 40), rng.uniform(2, 14)
        n = int(rng.integers(2, 5))  # points per long side
        top = np.stack([np.linspace(-half_w, half_w, n), -half_h + rng.normal(0, 1.5, n)], 1)
        bottom = np.stack([np.linspace(half_w, -half_w, n), half_h + rng.normal(0, 1.5, n)], 1)
        local = np.concatenate([top, bottom])
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        polygons.append(local @ rot.T + np.array([cx, cy]))
    return polygons


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_a_literal_transcription_of_the_official_code(seed):
    rng = np.random.default_rng(seed)
    h, w = 96, 128
    polygons = _random_polygons(rng, 6, h, w)  # some reach past the borders, some are thin
    ignore = [bool(flag) for flag in rng.random(len(polygons)) < 0.2]
    ours = make_db_targets_official(polygons, ignore, h, w)
    ref = _ref_targets(polygons, ignore, h, w)
    assert ref["thresh_mask"].sum() > 0 and ref["shrink_mask"].min() == 0  # both paths taken
    for name, value in ref.items():
        np.testing.assert_array_equal(ours[name].numpy(), value, err_msg=name)


def test_same_signature_as_the_project_variant_and_clear_errors():
    empty = make_db_targets_official([], [], 8, 9)
    assert set(empty) == {"shrink_map", "shrink_mask", "thresh_map", "thresh_mask"}
    assert empty["shrink_mask"].sum() == 72 and empty["thresh_map"].max() == pytest.approx(0.3)
    with pytest.raises(ValueError, match="db_targets_official.*polygon 0 has shape"):
        make_db_targets_official([np.zeros((4, 3))], [False], 8, 8)
    with pytest.raises(ValueError, match="db_targets_official.*2 polygons but 1 ignore"):
        make_db_targets_official([RECT, RECT], [False], 8, 8)
    with pytest.raises(ValueError, match="db_targets_official.*non-finite"):
        make_db_targets_official([np.full((4, 2), np.nan)], [False], 8, 8)


def test_mapper_picks_the_implementation_from_the_config():
    from detectron2.config import get_cfg

    from fasttcm import add_fasttcm_config
    from fasttcm.data.db_targets import make_db_targets
    from fasttcm.data.mappers import TextDatasetMapper

    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.INPUT.DB_TARGETS = True
    cfg.INPUT.TEXT_AUG.ENABLED = False
    assert cfg.INPUT.DB_TARGETS_IMPL == "official"
    assert TextDatasetMapper(cfg, is_train=True).make_db_targets is make_db_targets_official
    cfg.INPUT.DB_TARGETS_IMPL = "shapely"
    assert TextDatasetMapper(cfg, is_train=True).make_db_targets is make_db_targets
    cfg.INPUT.DB_TARGETS_IMPL = "mmocr"
    with pytest.raises(ValueError, match="INPUT.DB_TARGETS_IMPL 'mmocr'"):
        TextDatasetMapper(cfg, is_train=True)
