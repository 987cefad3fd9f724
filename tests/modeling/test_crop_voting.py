"""Crop framings for the spotter's recognizer vote (fasttcm.modeling.recognition.crop_voting)."""

import numpy as np
import pytest
import torch

from detectron2.utils.events import EventStorage

from fasttcm.modeling.recognition.crop_voting import (
    framed_outlines,
    framed_quads,
    parse_crop_shapes,
    parse_crop_variants,
)
from tests.modeling.test_text_spotter import _FixedPolygons, _training_input, model  # noqa: F401

RECT = np.array([[10, 20], [50, 20], [50, 30], [10, 30]], dtype=np.float64)  # 40 x 10, height 10


def test_offsets_move_each_side_by_multiples_of_the_text_height():
    variants = parse_crop_variants([[0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4]])
    quads, owner = framed_quads([RECT], variants)
    np.testing.assert_allclose(quads[0], RECT, atol=1e-9)
    # top moves up 1 px, right out 2 px, bottom down 3 px, left out 4 px
    np.testing.assert_allclose(quads[1], [[6, 19], [52, 19], [52, 33], [6, 33]], atol=1e-9)
    assert owner.tolist() == [0, 0]


def test_outline_order_and_rotation_do_not_change_the_framing():
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = RECT.mean(0)
    rotated = (RECT - centre) @ rotation.T + centre
    octagon = np.concatenate([rotated, (rotated + np.roll(rotated, -1, 0)) / 2])[
        [0, 4, 1, 5, 2, 6, 3, 7]
    ]
    variants = parse_crop_variants([[0.1, 0.1, 0.1, 0.1]])
    (from_quad,), _ = framed_quads([rotated[::-1]], variants)  # counter-clockwise listing
    (from_octagon,), _ = framed_quads([octagon], variants)
    np.testing.assert_allclose(from_quad, from_octagon, atol=1e-6)
    # reading direction along the long side, pointing right; height 10 + 2 x 1 px
    np.testing.assert_allclose(np.linalg.norm(from_quad[1] - from_quad[0]), 40 + 2, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(from_quad[3] - from_quad[0]), 10 + 2, atol=1e-6)
    assert from_quad[1][0] > from_quad[0][0]


def test_flip_adds_the_half_turn_and_groups_by_polygon():
    variants = parse_crop_variants([[0, 0, 0, 0, 1]])
    quads, owner = framed_quads([RECT, RECT + 100], variants)
    assert len(quads) == 4 and owner.tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(quads[1], np.roll(quads[0], 2, axis=0))
    np.testing.assert_allclose(quads[2], RECT + 100, atol=1e-9)


@pytest.mark.parametrize("row", [[0, 0, 0], [0, 0, -0.3, 0], [0, 0, 0, 0, 1, 2]])
def test_bad_variant_rows_are_errors(row):
    with pytest.raises(ValueError, match="CROP_VARIANTS"):
        parse_crop_variants([row])


def test_spotter_votes_for_the_most_confident_framing(model, monkeypatch):  # noqa: F811
    original = [
        np.array([[12, 12], [116, 16], [114, 52], [10, 48]], dtype=np.float32),
        np.array([[20, 70], [150, 70], [150, 100], [20, 100]], dtype=np.float32),
    ]
    monkeypatch.setattr(model, "postprocessor", _FixedPolygons(original, [0.9, 0.8]))
    image = _training_input([], [], [], seed=4)["image"]
    inputs = [{"image": image, "height": 128, "width": 192}]
    model.eval()
    with torch.no_grad(), EventStorage():
        # one framing without offsets = the "rectangle" layout's crop
        monkeypatch.setattr(model, "crop_layout", "rectangle")
        monkeypatch.setattr(model, "crop_shapes", ("rectangle",))
        single = model(inputs)[0]["instances"]
        monkeypatch.setattr(model, "crop_variants", parse_crop_variants([[0, 0, 0, 0]]))
        voted = model(inputs)[0]["instances"]
        assert voted.texts == single.texts
        torch.testing.assert_close(voted.text_scores, single.text_scores)

        # several framings: each detection keeps the best-scored reading among its framings
        variants = parse_crop_variants([[0, 0, 0, 0], [0.2, 0.1, 0.2, 0.1, 1], [-0.1, 0, -0.1, 0]])
        monkeypatch.setattr(model, "crop_variants", variants)
        voted = model(inputs)[0]["instances"]
        scaled = [p.astype(np.float64) / 2 for p in original]
        quads, owner = framed_quads(scaled, variants)
        texts, scores = model.recognize_polygons([{"image": image}], [quads], layout="annotated")
        scores = scores[0].reshape(2, -1)
        best = scores.argmax(1)
        assert voted.texts == [texts[0][i * 4 + b] for i, b in enumerate(best.tolist())]
        torch.testing.assert_close(voted.text_scores, scores.max(1).values)


def test_spotter_votes_across_crop_shapes(model, monkeypatch):  # noqa: F811
    angles = np.radians(np.linspace(235, 305, 12))
    ring = np.stack([np.cos(angles), np.sin(angles)], 1)
    arc = np.concatenate([(96, 140) + 100 * ring, (96, 140) + 75 * ring[::-1]])  # curved word
    original = [
        arc.astype(np.float32),
        np.array([[20, 70], [150, 70], [150, 100], [20, 100]], dtype=np.float32),
    ]
    monkeypatch.setattr(model, "postprocessor", _FixedPolygons(original, [0.9, 0.8]))
    image = _training_input([], [], [], seed=5)["image"]
    inputs = [{"image": image, "height": 128, "width": 192}]
    variants = parse_crop_variants([[0, 0, 0, 0], [0.2, 0.3, 0.2, 0.3, 1]])
    monkeypatch.setattr(model, "crop_variants", variants)
    monkeypatch.setattr(model, "crop_shapes", parse_crop_shapes(["rectangle", "band"]))
    model.eval()
    with torch.no_grad(), EventStorage():
        voted = model(inputs)[0]["instances"]
        scaled = [p.astype(np.float64) / 2 for p in original]
        framings, owner = framed_outlines(scaled, variants, ("rectangle", "band"))
        assert owner.tolist() == [0] * 6 + [1] * 6
        assert [len(f) for f in framings[6:]] == [4] * 3 + [0] * 3  # straight: no bands
        texts, scores = model.recognize_polygons([{"image": image}], [framings], layout="annotated")
        assert texts[0][3] is not None and texts[0][9] is None
    scores = scores[0].reshape(2, -1)
    best = scores.argmax(1)
    assert voted.texts == [texts[0][i * 6 + b] for i, b in enumerate(best.tolist())]
    torch.testing.assert_close(voted.text_scores, scores.max(1).values)
