"""The official post-processing variant of DBPostprocessor (TCM's DBParamPostprocessor): a
rectangle by hand, a literal transcription of the official code on random maps, its filters."""

import cv2
import numpy as np
import pyclipper
import pytest
from shapely.geometry import Polygon

from detectron2.config import get_cfg

from fasttcm import add_fasttcm_config
from fasttcm.modeling.text_heads.postprocess import DBPostprocessor, order_points_clockwise


def _official(**kwargs):
    options = dict(
        mask_thresh=0.3,
        min_text_score=0.3,
        unclip_ratio=1.5,
        min_size=5,
        polygon_type="quad",
        max_candidates=3000,
        arc_length_ratio=0.01,
    )
    options.update(kwargs)
    return DBPostprocessor(variant="official", **options)


def _rect_map():
    prob = np.zeros((50, 130), dtype=np.float32)
    prob[20:31, 20:101] = 0.9  # pixels x 20..100, y 20..30: contour (20,20)-(100,30)
    return prob


def test_rectangle_quad_by_hand():
    # Contour (20,20), (20,30), (100,30), (100,20): area 800, length 180, unclip offset
    # 800 * 1.5 / 180 = 6.67 -> Clipper's integer result spans x 13..107, y 13..37.
    polygons, scores = _official()(_rect_map())
    assert len(polygons) == 1 and scores[0] == pytest.approx(0.9, abs=1e-6)
    expected = np.array([[13, 13], [107, 13], [107, 37], [13, 37]], dtype=np.float32)
    np.testing.assert_allclose(polygons[0], expected, atol=1e-4)
    # Output size twice the map: coordinates double, with no half-pixel shift.
    polygons, _ = _official()(_rect_map(), output_size=(100, 260))
    np.testing.assert_allclose(polygons[0], 2 * expected, atol=1e-4)
    # Vertices beyond the image are clamped to it (x 13..107 grown past a 100-px-wide image).
    polygons, _ = _official()(_rect_map()[:, :100], output_size=(50, 100))
    assert polygons[0][:, 0].max() == 100.0 and polygons[0][:, 0].min() == 13.0


def test_rectangle_poly_is_the_clipper_outline():
    polygons, _ = _official(polygon_type="poly")(_rect_map())
    outline = Polygon(polygons[0])
    assert outline.bounds == (13.0, 13.0, 107.0, 37.0)
    # A rounded rectangle: the contour grown by 6.67 with round corners, its vertices rounded to
    # integers (the straight sides land at 7 px): between shapely's round buffers by 6.67 and 7.
    contour = Polygon([(20, 20), (100, 20), (100, 30), (20, 30)])
    assert contour.buffer(800 * 1.5 / 180).area < outline.area < contour.buffer(7).area
    assert len(polygons[0]) > 4


def test_min_text_width_and_four_point_rule():
    prob = _rect_map()
    # Short side of the quad: 24 px. Kept when strictly wider than min_size.
    assert len(_official(min_size=23.9)(prob)[0]) == 1
    assert len(_official(min_size=24.0)(prob)[0]) == 0
    # A single pixel gives a 1-point contour: dropped before scoring (fewer than 4 points).
    dot = np.zeros((20, 20), dtype=np.float32)
    dot[10, 10] = 1.0
    assert _official(min_size=0)(dot)[0] == []


def test_holes_are_contours_and_max_candidates_counts_contours():
    ring = np.zeros((60, 60), dtype=np.float32)
    ring[10:50, 10:50] = 0.9
    ring[20:40, 20:40] = 0.0
    # RETR_LIST: the outer outline and the hole's outline. The latter runs through the 4 x 20
    # region pixels beside the hole (8-connected: no corner pixels), so its score is the mean over
    # 400 hole pixels and those 80: 0.9 x 80 / 480.
    polygons, scores = _official(min_size=0, min_text_score=0.1)(ring)
    assert len(polygons) == 2 and scores[1] == pytest.approx(0.9 * 80 / 480, abs=1e-6)
    # max_candidates = 0 still looks at contour 0 (the official loop breaks when index > it).
    assert len(_official(min_size=0, min_text_score=0.1, max_candidates=0)(ring)[0]) == 1


def test_scores_and_threshold():
    prob = _rect_map()
    prob[20:31, 20:60] = 0.5  # mean over the 81 x 11 pixels: (40 * 0.5 + 41 * 0.9) / 81
    polygons, scores = _official()(prob)
    assert scores[0] == pytest.approx((40 * 0.5 + 41 * 0.9) / 81, abs=1e-6)
    assert _official(min_text_score=0.71)(prob)[0] == []
    assert _official(mask_thresh=0.9)(prob)[0] == []  # P > mask_thresh is strict


# --- a literal transcription of the official code, for the comparison --------------------------


def _ref_box_score_fast(bitmap, _box):
    h, w = bitmap.shape[:2]
    box = _box.copy()
    xmin = np.clip(np.floor(box[:, 0].min()).astype(np.int32), 0, w - 1)
    xmax = np.clip(np.ceil(box[:, 0].max()).astype(np.int32), 0, w - 1)
    ymin = np.clip(np.floor(box[:, 1].min()).astype(np.int32), 0, h - 1)
    ymax = np.clip(np.ceil(box[:, 1].max()).astype(np.int32), 0, h - 1)
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    box[:, 0] = box[:, 0] - xmin
    box[:, 1] = box[:, 1] - ymin
    cv2.fillPoly(mask, box.reshape(1, -1, 2).astype(np.int32), 1)
    return cv2.mean(bitmap[ymin : ymax + 1, xmin : xmax + 1], mask)[0]


def _ref_unclip(box, unclip_ratio):
    poly = Polygon(box)
    distance = poly.area * unclip_ratio / poly.length
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(box, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    paths = offset.Execute(distance)
    if len({len(p) for p in paths}) > 1:  # numpy < 1.24 made a ragged object array of lists
        return [list(p) for p in paths]
    return np.array(paths)


def _ref_db_param(prob, mask_thr, min_text_score, min_text_width, unclip_ratio, arc, max_cand, rep):
    text_mask = (prob > mask_thr).astype(np.uint8)
    contours, _ = cv2.findContours(text_mask * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    boundaries = []
    for i, poly in enumerate(contours):
        if i > max_cand:
            break
        approx = cv2.approxPolyDP(poly, arc * cv2.arcLength(poly, True), True) if arc > 0 else poly
        points = approx.reshape((-1, 2))
        if points.shape[0] < 4:
            continue
        score = _ref_box_score_fast(prob, points)
        if score < min_text_score:
            continue
        poly = _ref_unclip(points, unclip_ratio)
        if len(poly) == 0 or isinstance(poly[0], list):
            continue
        poly = poly.reshape(-1, 2)
        if rep == "quad":
            rect = cv2.minAreaRect(poly.astype(np.int32))
            if not min(rect[1]) > min_text_width:
                continue
            boundaries.append((cv2.boxPoints(rect), score))
        elif len(poly) >= 4:
            boundaries.append((poly.astype(np.float64), score))
    return boundaries


def _blobs(seed):
    rng = np.random.default_rng(seed)
    prob = np.zeros((96, 128), dtype=np.float32)
    for _ in range(7):
        center = (float(rng.uniform(10, 118)), float(rng.uniform(10, 86)))
        size = (float(rng.uniform(4, 50)), float(rng.uniform(2, 14)))
        box = cv2.boxPoints((center, size, float(rng.uniform(-40, 40))))
        cv2.fillPoly(prob, [box.astype(np.int32)], float(rng.uniform(0.2, 1.0)))
    noise = rng.normal(0, 0.08, prob.shape).astype(np.float32)
    return np.clip(prob + noise, 0, 1)


@pytest.mark.parametrize("polygon_type", ["quad", "poly"])
@pytest.mark.parametrize("seed,arc", [(0, 0.01), (1, 0.001), (2, 0.0)])
def test_equals_a_literal_transcription_of_the_official_code(seed, arc, polygon_type):
    prob = _blobs(seed)
    params = dict(mask_thresh=0.3, min_text_score=0.4, unclip_ratio=1.6, min_size=2)
    polygons, scores = _official(polygon_type=polygon_type, arc_length_ratio=arc, **params)(prob)
    ref = _ref_db_param(prob, 0.3, 0.4, 2, 1.6, arc, 3000, polygon_type)
    assert len(ref) >= 3 and len(polygons) == len(ref)
    ref_sorted = sorted(ref, key=lambda item: -np.float32(item[1]))
    for polygon, score, (ref_polygon, ref_score) in zip(polygons, scores, ref_sorted):
        assert score == pytest.approx(ref_score, abs=1e-6)
        clamped = np.asarray(ref_polygon, dtype=np.float64).clip(0, [128, 96])
        expected = order_points_clockwise(clamped)
        np.testing.assert_allclose(polygon, expected, atol=1e-4)


def test_from_config_reads_test_text():
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    post = DBPostprocessor.from_config(cfg)
    assert post.variant == "official" and post.arc_length_ratio == 0.01
    cfg.TEST.TEXT.POSTPROCESS_IMPL = "project"
    cfg.TEST.TEXT.MIN_SIZE = 7.0
    post = DBPostprocessor.from_config(cfg)
    assert post.variant == "project" and post.min_size == 7.0
    with pytest.raises(ValueError, match="TEST.TEXT.POSTPROCESS_IMPL"):
        DBPostprocessor(variant="mmocr")
