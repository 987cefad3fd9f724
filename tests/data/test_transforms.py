"""Polygon-aware augmentations: text is never cut by the crop, polygons follow the image."""

import numpy as np
import pytest

from detectron2.data import transforms as T

from fasttcm.data.transforms import RandomScale, TextInstanceAwareCrop, polygons_to_boxes


def _image_with_boxes(rng, h=200, w=300, n=6):
    img = np.zeros((h, w, 3), dtype=np.uint8)
    boxes = []
    for _ in range(n):
        x0, y0 = rng.integers(0, w - 40), rng.integers(0, h - 20)
        bw, bh = rng.integers(10, 40), rng.integers(5, 20)
        boxes.append([x0, y0, x0 + bw, y0 + bh])
        img[y0 : y0 + bh, x0 : x0 + bw] = 255
    return img, np.array(boxes, dtype=np.float64)


@pytest.mark.parametrize("seed", range(20))
def test_instance_aware_crop_never_cuts_a_box(seed):
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    img, boxes = _image_with_boxes(rng)
    aug = TextInstanceAwareCrop(crop_size=128, min_crop_side_ratio=0.1)
    inp = T.AugInput(img, boxes=boxes)
    tfm = T.AugmentationList([aug])(inp)
    h, w = inp.image.shape[:2]
    assert max(h, w) == 128
    corners = np.concatenate([boxes[:, [0, 1]], boxes[:, [2, 3]]], axis=0)
    mapped = tfm.apply_coords(corners.copy())
    tl, br = mapped[: len(boxes)], mapped[len(boxes) :]
    inside_tl = (tl >= -1e-6).all(1) & (tl[:, 0] <= w + 1e-6) & (tl[:, 1] <= h + 1e-6)
    inside_br = (br >= -1e-6).all(1) & (br[:, 0] <= w + 1e-6) & (br[:, 1] <= h + 1e-6)
    # each box is either completely inside or does not reach into the crop at all
    for i in range(len(boxes)):
        if inside_tl[i] != inside_br[i]:
            x_out = br[i, 0] < 0 or tl[i, 0] > w
            y_out = br[i, 1] < 0 or tl[i, 1] > h
            assert x_out or y_out, f"box {i} cut by the crop"
    # at least one box survives whole
    assert (inside_tl & inside_br).any()


def test_crop_falls_back_to_full_image_when_text_covers_everything():
    img = np.zeros((50, 60, 3), dtype=np.uint8)
    boxes = np.array([[0, 0, 59, 49]], dtype=np.float64)
    inp = T.AugInput(img, boxes=boxes)
    tfm = T.AugmentationList([TextInstanceAwareCrop(crop_size=120)])(inp)
    assert inp.image.shape[:2] == (100, 120)
    np.testing.assert_allclose(tfm.apply_coords(np.array([[59.0, 49.0]])), [[118.0, 98.0]])


def test_random_scale_moves_polygons_with_the_image():
    np.random.seed(0)
    img = np.zeros((100, 80, 3), dtype=np.uint8)
    inp = T.AugInput(img)
    tfm = T.AugmentationList([RandomScale((2.0, 2.0))])(inp)
    assert inp.image.shape[:2] == (200, 160)
    np.testing.assert_allclose(tfm.apply_coords(np.array([[40.0, 50.0]])), [[80.0, 100.0]])


def test_polygons_to_boxes():
    polys = [
        np.array([[1, 2], [5, 2], [5, 9], [1, 9]], float),
        np.array([[0, 0], [3, 1], [1, 4]], float),
    ]
    np.testing.assert_array_equal(polygons_to_boxes(polys), [[1, 2, 5, 9], [0, 0, 3, 4]])
    assert polygons_to_boxes([]).shape == (0, 4)
