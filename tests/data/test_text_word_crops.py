"""Recognition datasets of the words of text-detection datasets, and the STR mapper cutting them."""

import cv2
import numpy as np
import pytest
import torch

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog

from fasttcm import add_fasttcm_config
from fasttcm.data.datasets.text_word_crops import register_text_word_crops, text_word_crop_dicts
from fasttcm.data.str_mapper import STRDatasetMapper


def _annotation(points, text, ignore=False):
    return {
        "segmentation": [np.asarray(points, dtype=np.float64).reshape(-1).tolist()],
        "text": text,
        "ignore": ignore,
    }


def _scenes(image_path="scene.png"):
    box = [[10, 20], [50, 20], [50, 30], [10, 30]]
    return [
        {
            "file_name": image_path,
            "image_id": 7,
            "annotations": [
                _annotation(box, "Open now"),  # whitespace removed, as the STR loader does
                _annotation(box, "###"),  # don't care by text
                _annotation(box, "word", ignore=True),  # don't care by flag
                _annotation(box, "x" * 26),  # longer than 25 characters
                _annotation(box, "\u00e9t\u00e9"),  # NFKD folded to ASCII
                {"segmentation": [[0, 0, 4, 0, 4, 4, 0, 4], [5, 5, 9, 5, 9, 9]], "text": "two"},
                _annotation(box[:2], "short"),  # fewer than 4 vertices
            ],
        },
        {"file_name": "empty.png", "image_id": 8, "annotations": []},
    ]


def test_word_dicts_keep_legible_words_with_filtered_labels(caplog):
    with caplog.at_level("INFO"):
        words = text_word_crop_dicts(_scenes(), dataset_name="scenes")
    assert [w["text"] for w in words] == ["Opennow", "ete"]
    assert [w["image_id"] for w in words] == ["7/0", "7/4"]
    assert words[0]["file_name"] == "scene.png"
    assert np.allclose(words[0]["word_polygon"], [[10, 20], [50, 20], [50, 30], [10, 30]])
    message = caplog.text
    assert "2 words of 2 scenes" in message
    for reason in ("'dont_care': 2", "'too_long': 1", "'no_polygon': 2"):
        assert reason in message


def test_registration_loads_the_source_lazily_and_sets_str_metadata():
    calls = []

    def source():
        calls.append(1)
        return _scenes()

    DatasetCatalog.register("_test_word_crops_source", source)
    register_text_word_crops("_test_word_crops", "_test_word_crops_source", note="x")
    try:
        assert calls == []
        assert len(DatasetCatalog.get("_test_word_crops")) == 2
        meta = MetadataCatalog.get("_test_word_crops")
        assert (meta.evaluator_type, meta.source_dataset, meta.note) == (
            "str",
            "_test_word_crops_source",
            "x",
        )
    finally:
        for name in ("_test_word_crops", "_test_word_crops_source"):
            DatasetCatalog.remove(name)
        MetadataCatalog.remove("_test_word_crops")


def _ramp_scene(tmp_path):
    """A 64x128 scene whose pixel (r, c) is (c, 2 r, 100) in RGB, saved losslessly."""
    rows, cols = np.mgrid[0:64, 0:128]
    rgb = np.stack([cols, 2 * rows, np.full_like(cols, 100)], axis=-1).astype(np.uint8)
    path = tmp_path / "ramp.png"
    cv2.imwrite(str(path), rgb[..., ::-1])
    return str(path)


def _mapper(is_train, jitter=(0.0, 0.0), layouts=("annotated",)):
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.MODEL.RECOGNIZER.IMAGE_SIZE = (8, 40)
    cfg.INPUT.FORMAT = "RGB"
    cfg.INPUT.STR_AUG.ENABLED = False
    cfg.INPUT.STR_WORD_CROP.JITTER = jitter
    cfg.INPUT.STR_WORD_CROP.LAYOUTS = list(layouts)
    return STRDatasetMapper(cfg, is_train=is_train)


def _word(path, polygon):
    return {"file_name": path, "image_id": "1/0", "text": "abc", "word_polygon": polygon}


def test_test_crop_samples_the_annotated_box(tmp_path):
    path = _ramp_scene(tmp_path)
    x0, y0, x1, y1 = 20.0, 16.0, 100.0, 32.0
    out = _mapper(False)(_word(path, [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    crop = out["image"].numpy().astype(np.float64)
    assert out["image"].shape == (3, 8, 40) and out["text"] == "abc"
    # crop pixel (i, j) samples the scene at x = x0 + (j + 0.5) * 80 / 40 (pixel centres at c + 0.5)
    expected_x = x0 + (np.arange(40) + 0.5) * (x1 - x0) / 40 - 0.5
    expected_y = y0 + (np.arange(8) + 0.5) * (y1 - y0) / 8 - 0.5
    assert np.abs(crop[0] - expected_x[None, :]).max() <= 1.0
    assert np.abs(crop[1] - 2 * expected_y[:, None]).max() <= 1.0
    assert (crop[2] == 100).all()


def test_training_jitter_moves_the_sides_by_multiples_of_the_height(tmp_path):
    path = _ramp_scene(tmp_path)
    x0, y0, x1, y1 = 30.0, 20.0, 90.0, 30.0  # height 10: offsets of 0.5 move each side by 5 px
    word = _word(path, [[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    crop = _mapper(True, jitter=(0.5, 0.5))(word)["image"].numpy().astype(np.float64)
    left, right, top, bottom = x0 - 5, x1 + 5, y0 - 5, y1 + 5
    expected_x = left + (np.arange(40) + 0.5) * (right - left) / 40 - 0.5
    expected_y = top + (np.arange(8) + 0.5) * (bottom - top) / 8 - 0.5
    assert np.abs(crop[0] - expected_x[None, :]).max() <= 1.0
    assert np.abs(crop[1] - 2 * expected_y[:, None]).max() <= 1.0


def test_rectangle_layout_frames_a_curved_word_by_its_min_area_rectangle(tmp_path):
    path = _ramp_scene(tmp_path)
    # an arch: 4 points along the top, 4 along the bottom (right to left)
    top = [[20, 30], [50, 18], [80, 18], [110, 30]]
    bottom = [[110, 44], [80, 32], [50, 32], [20, 44]]
    word = _word(path, top + bottom)
    annotated = _mapper(False)(word)["image"].numpy().astype(np.float64)
    rectangle = _mapper(True, layouts=("rectangle",))(word)["image"].numpy().astype(np.float64)
    # the min-area rectangle of the arch is its bounding box [20, 110] x [18, 44]
    expected_y = 18 + (np.arange(8) + 0.5) * 26 / 8 - 0.5
    assert np.abs(rectangle[1] - 2 * expected_y[:, None]).max() <= 1.0
    # the annotated layout follows the arch: its middle row is higher in the middle columns
    assert annotated[1, 4, 20] < annotated[1, 4, 0] - 10


def test_unusable_polygons_and_bad_settings(tmp_path):
    path = _ramp_scene(tmp_path)
    flat = _word(path, [[10, 10], [40, 10], [40, 10], [10, 10]])  # no area
    assert _mapper(True)(flat) is None  # training: another sample is drawn
    out = _mapper(False)(flat)
    assert out["image_error"] == "unreadable" and out["image"].shape == (3, 8, 40)
    assert torch.count_nonzero(out["image"]) == 0
    with pytest.raises(ValueError, match="word_crop_jitter"):
        _mapper(True, jitter=(0.3, 0.1))
    with pytest.raises(ValueError, match="word_crop_layouts"):
        _mapper(True, layouts=("bent",))


def test_builtin_word_splits_name_registered_sources():
    from fasttcm.data.datasets.builtin import SYNTHETIC_SCENE_WORD_SPLITS

    registered = set(DatasetCatalog.list())
    for name, source in SYNTHETIC_SCENE_WORD_SPLITS.items():
        assert {name, source} <= registered
        meta = MetadataCatalog.get(name)
        assert (meta.evaluator_type, meta.source_dataset) == ("str", source)
