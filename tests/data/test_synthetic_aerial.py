"""Synthetic aerial images: determinism, label validity, class coverage."""

import collections
import os

import cv2
import numpy as np
import pytest
import shapely

from fasttcm.data.datasets.dota_labels import read_dota_labels
from fasttcm.data.datasets.dota_meta import DOTA_V1_0_CLASSES
from fasttcm.data.synthetic.aerial import (
    ensure_aerial_dataset,
    generate_aerial_dataset,
    make_aerial_dataset,
    render_aerial_image,
)
from fasttcm.utils.geometry import poly_to_xywha, xywha_to_poly

CLASSES = list(DOTA_V1_0_CLASSES)
SMALL = dict(image_size_range=(600, 800), object_scale=0.5)


def _files(folder):
    out = {}
    for sub in ("images", "labelTxt"):
        for name in sorted(os.listdir(os.path.join(folder, sub))):
            with open(os.path.join(folder, sub, name), "rb") as f:
                out[f"{sub}/{name}"] = f.read()
    return out


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    a = generate_aerial_dataset(str(tmp_path / "a"), 2, seed=5, **SMALL)
    generate_aerial_dataset(str(tmp_path / "b"), 2, seed=5, **SMALL, workers=2)
    generate_aerial_dataset(str(tmp_path / "c"), 2, seed=6, **SMALL)
    assert a == ["A0000", "A0001"]
    files_a, files_b, files_c = (_files(tmp_path / k) for k in "abc")
    assert files_a == files_b  # workers do not change the output
    assert files_a["images/A0000.png"] != files_c["images/A0000.png"]
    # image i depends on (seed, i) only
    generate_aerial_dataset(str(tmp_path / "d"), 1, seed=5, **SMALL)
    assert _files(tmp_path / "d")["images/A0000.png"] == files_a["images/A0000.png"]


def test_labels_are_valid_rotated_boxes_inside_the_image(tmp_path):
    generate_aerial_dataset(
        str(tmp_path), 3, seed=0, image_size_range=(900, 1100), object_scale=0.6
    )
    for name in ("A0000", "A0001", "A0002"):
        image = cv2.imread(str(tmp_path / "images" / f"{name}.png"))
        h, w = image.shape[:2]
        assert 900 <= h <= 1100 and 900 <= w <= 1100
        labels = read_dota_labels(tmp_path / "labelTxt" / f"{name}.txt", CLASSES)  # strict parse
        assert labels.image_source == "FastTCM-D2-synthetic" and len(labels) > 0
        assert set(labels.difficulty.tolist()) <= {0, 1}
        xs, ys = labels.polys[:, 0::2], labels.polys[:, 1::2]
        assert xs.min() >= 0 and ys.min() >= 0 and xs.max() <= w and ys.max() <= h
        # every quadrilateral is a rectangle listed like xywha_to_poly lists its corners
        np.testing.assert_allclose(
            xywha_to_poly(poly_to_xywha(labels.polys)), labels.polys, atol=0.02
        )
        # objects do not overlap (except round objects' labels with their neighbours' corners)
        polys = shapely.polygons(labels.polys.reshape(-1, 4, 2))
        tree = shapely.STRtree(polys)
        i, j = tree.query(polys, predicate="intersects")
        pairs = i < j
        inter = shapely.area(shapely.intersection(polys[i[pairs]], polys[j[pairs]]))
        smaller = np.minimum(shapely.area(polys[i[pairs]]), shapely.area(polys[j[pairs]]))
        assert np.all(inter <= 0.2 * smaller)
        # objects are drawn: their boxes differ from the local background
        assert image.std() > 10


def test_every_class_is_drawn_with_its_own_size():
    counts, sizes = collections.Counter(), collections.defaultdict(list)
    for index in range(3):
        rng = np.random.default_rng([11, index])
        _, objects = render_aerial_image(rng, 2400, 2400, object_scale=1.0)
        for obj in objects:
            counts[obj.category] += 1
            sizes[obj.category].append(max(obj.box[2], obj.box[3]))
    assert set(counts) == set(CLASSES)
    median = {c: float(np.median(v)) for c, v in sizes.items()}
    assert median["small-vehicle"] < median["large-vehicle"] < median["soccer-ball-field"]
    assert median["small-vehicle"] < 30 and median["ground-track-field"] > 200
    difficult = sum(o.difficult for o in objects)
    assert 0 < difficult < len(objects) / 4


def test_round_objects_are_axis_aligned(tmp_path):
    rng = np.random.default_rng([3, 0])
    _, objects = render_aerial_image(rng, 2400, 2400)
    round_objects = [o for o in objects if o.category in ("storage-tank", "roundabout")]
    assert round_objects and all(o.box[4] == 0.0 and o.box[2] == o.box[3] for o in round_objects)


def test_ensure_is_idempotent_and_tool_adapter(tmp_path):
    out = ensure_aerial_dataset(str(tmp_path / "set"), 1, 0, (300, 400), object_scale=0.4)
    stamp = os.path.getmtime(os.path.join(out, "images", "A0000.png"))
    ensure_aerial_dataset(str(tmp_path / "set"), 1, 0, (300, 400), object_scale=0.4)
    assert os.path.getmtime(os.path.join(out, "images", "A0000.png")) == stamp
    assert [f for f in os.listdir(tmp_path) if f.startswith(".")] == []  # no temporary left

    labels = make_aerial_dataset(
        str(tmp_path / "tool"), 1, 0, image_size=(400, 300), object_scale=0.4
    )
    assert labels == tmp_path / "tool" / "labelTxt" and (labels / "A0000.txt").is_file()
    with pytest.raises(TypeError, match="unknown aerial generator options"):
        make_aerial_dataset(str(tmp_path / "x"), 1, 0, density=2)
    with pytest.raises(ValueError, match="image_size_range"):
        generate_aerial_dataset(str(tmp_path / "y"), 1, 0, image_size_range=(500, 400))
