"""tools/demo.py: bad images are skipped and reported, predictions.json is always written, large
images are drawn downscaled, and rotated-box models run tiled on large scenes."""

import json
import os

import cv2
import numpy as np
import pytest
import torch

from detectron2.structures import Instances, RotatedBoxes

from fasttcm.data.dota_split import window_origins
from fasttcm.utils.visualizer import FastTCMVisualizer, downscale_for_drawing
from tests.common import QUICK_DETECTOR, QUICK_RRCNN, build_quick_model, get_config_file


@pytest.fixture(scope="module")
def demo(load_tool):
    return load_tool("demo")


def _weights(tmp_path_factory, config):
    """A complete weights file of the quick-schedule model (random init): what demo.py loads."""
    path = tmp_path_factory.mktemp("weights") / "model.pth"
    torch.save({"model": build_quick_model(config).state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def detector_weights(tmp_path_factory):
    return _weights(tmp_path_factory, QUICK_DETECTOR)


@pytest.fixture(scope="module")
def rrcnn_weights(tmp_path_factory):
    return _weights(tmp_path_factory, QUICK_RRCNN)


def _image(path, height, width, seed=0):
    image = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


def _args(config, weights, inputs, output, *extra):
    return [
        "--config-file",
        get_config_file(config),
        "--input",
        *map(str, inputs),
        "--output",
        str(output),
        *extra,
        "--opts",
        "MODEL.WEIGHTS",
        str(weights),
        "MODEL.DEVICE",
        "cpu",
    ]


def test_a_bad_image_is_reported_and_skipped(demo, detector_weights, tmp_path):
    good_a = _image(tmp_path / "a.png", 96, 128, seed=1)
    bad = tmp_path / "b.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"truncated" * 5)
    good_c = _image(tmp_path / "c.jpg", 64, 80, seed=2)
    out = tmp_path / "out"
    results = demo.main(_args(QUICK_DETECTOR, detector_weights, [good_a, bad, good_c], out))
    assert [results[str(p)]["status"] for p in (good_a, good_c)] == ["ok", "ok"]
    status = results[str(bad)]["status"]
    assert status.startswith("ImageReadError: ") and str(bad) in status
    assert "predictions" not in results[str(bad)]
    for p in (good_a, good_c):
        for r in results[str(p)]["predictions"]:
            assert len(r["polygon"]) >= 3 and 0.0 <= r["score"] <= 1.0
    saved = json.loads((out / "predictions.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert sorted(os.listdir(out)) == ["a.png", "c.png", "predictions.json"]  # no temp file
    assert cv2.imread(str(out / "a.png")).shape == (96, 128, 3)


def test_an_output_that_is_a_file_is_a_clear_error(demo, detector_weights, tmp_path):
    image = _image(tmp_path / "a.png", 32, 32)
    output = tmp_path / "results.txt"
    output.write_text("user data")
    with pytest.raises(SystemExit, match=f"--output {output} is an existing file, not a folder"):
        demo.main(_args(QUICK_DETECTOR, detector_weights, [image], output))
    assert output.read_text() == "user data"


def test_a_drawing_never_replaces_an_input(demo, detector_weights, tmp_path):
    """Input out/a.png drawn into out/: the drawing goes to a_1.png, the input is kept."""
    out = tmp_path / "out"
    out.mkdir()
    image = _image(out / "a.png", 48, 64)
    before = image.read_bytes()
    results = demo.main(_args(QUICK_DETECTOR, detector_weights, [image], out))
    assert results[str(image)]["status"] == "ok"
    assert image.read_bytes() == before
    assert sorted(os.listdir(out)) == ["a.png", "a_1.png", "predictions.json"]


def test_large_images_are_drawn_downscaled(demo, detector_weights, tmp_path):
    image = _image(tmp_path / "wide.png", 300, 600)
    out = tmp_path / "out"
    extra = ["--max-draw-side", "200"]
    results = demo.main(_args(QUICK_DETECTOR, detector_weights, [image], out, *extra))
    assert results[str(image)]["drawn_scale"] == pytest.approx(1 / 3)
    assert cv2.imread(str(out / "wide.png")).shape == (100, 200, 3)


def test_coord_scale_draws_predictions_on_the_downscaled_copy():
    image = np.zeros((200, 400, 3), np.uint8)
    small, scale = downscale_for_drawing(image, 200)
    assert small.shape == (100, 200, 3) and scale == 0.5
    assert downscale_for_drawing(image, 400)[0] is image  # small enough: no copy
    text = Instances((200, 400))
    text.polygons = [np.array([[200, 100], [360, 100], [360, 180], [200, 180]], np.float64)]
    text.scores = torch.tensor([0.9])
    drawn = FastTCMVisualizer(small).draw_predictions({"instances": text}, coord_scale=scale)
    drawn = drawn.get_image()
    assert drawn.shape == (100, 200, 3)
    assert drawn[70, 140].sum() > 0  # inside the polygon scaled to (100..180, 50..90)
    assert drawn[20, 20].sum() == 0 and drawn[95, 195].sum() == 0  # outside it: untouched

    boxes = Instances((200, 400))
    boxes.pred_boxes = RotatedBoxes(torch.tensor([[300.0, 150.0, 120.0, 60.0, 0.0]]))
    boxes.scores = torch.tensor([0.8])
    boxes.pred_classes = torch.tensor([0])
    drawn = FastTCMVisualizer(small).draw_predictions({"instances": boxes}, coord_scale=scale)
    drawn = drawn.get_image()
    # the box scaled: centre (150, 75), 60 x 30, so edges at x = 120, 180 and y = 60, 90
    assert drawn[60, 150].sum() > 0 and drawn[90, 150].sum() > 0
    assert drawn[75, 120].sum() > 0 and drawn[75, 180].sum() > 0
    assert drawn[75, 150].sum() == 0 and drawn[20, 20].sum() == 0  # inside and outside: untouched


class _WhiteBoxDetector:
    """Stand-in predictor: one rotated box per colour channel over that channel's 255 pixels.

    Channel 0 gives class 0, channel 1 class 1; the score is the number of such pixels / 1e4, so
    a patch that sees an object whole scores higher than one that sees part of it.
    """

    def __init__(self, size, padding):
        self.size, self.padding, self.calls = size, padding, 0

    def __call__(self, patch):
        assert patch.shape == (self.size, self.size, 3) and patch.dtype == np.uint8
        self.calls += 1
        boxes, scores, classes = [], [], []
        for channel in (0, 1):
            ys, xs = np.nonzero(patch[..., channel] == 255)
            if len(xs):
                x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
                boxes.append([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, 0.0])
                scores.append(len(xs) / 1e4)
                classes.append(channel)
        out = Instances((self.size, self.size))
        out.pred_boxes = RotatedBoxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 5))
        out.scores = torch.tensor(scores, dtype=torch.float32)
        out.pred_classes = torch.tensor(classes, dtype=torch.int64)
        return {"instances": out}


def test_tiled_prediction_shifts_and_merges_per_class(demo):
    height, width, size, gap = 500, 700, 256, 100
    image = np.zeros((height, width, 3), np.uint8)
    image[300:340, 400:480] = (255, 255, 0)  # one object seen as class 0 and as class 1
    image[20:60, 10:50, 0] = 255  # a class-0 object near the top-left corner
    detector = _WhiteBoxDetector(size, demo.SplitConfig.padding_value)
    preds, patches = demo.predict_tiled(detector, image, size, gap, nms_thresh=0.1)
    xs, ys = window_origins(width, size, gap), window_origins(height, size, gap)
    assert patches == detector.calls == len(xs) * len(ys) == 12
    inst = preds["instances"]
    assert inst.image_size == (height, width)
    got = sorted(
        (int(c), *np.round(b, 3).tolist(), round(float(s), 4))
        for b, s, c in zip(inst.pred_boxes.tensor.numpy(), inst.scores, inst.pred_classes)
    )
    # every copy seen by overlapping patches collapses into the whole-view box, in image pixels
    assert got == [
        (0, 30.0, 40.0, 40.0, 40.0, 0.0, 0.16),
        (0, 440.0, 320.0, 80.0, 40.0, 0.0, 0.32),
        (1, 440.0, 320.0, 80.0, 40.0, 0.0, 0.32),
    ]
    empty, _ = demo.predict_tiled(detector, np.zeros_like(image), size, gap, nms_thresh=0.1)
    assert len(empty["instances"]) == 0 and empty["instances"].image_size == (height, width)


def test_tiling_is_chosen_for_large_scenes_of_rotated_models(demo):
    from tests.common import load_config

    rotated = load_config(QUICK_RRCNN)  # patches of min(MIN_SIZE_TEST, MAX_SIZE_TEST) = 256
    text = load_config(QUICK_DETECTOR)
    assert demo.tile_size(rotated) == 256
    assert demo.use_tiles(rotated, "auto", 300, 385)  # 385 > 1.5 x 256
    assert not demo.use_tiles(rotated, "auto", 300, 384)
    assert demo.use_tiles(rotated, "always", 10, 10)
    assert not demo.use_tiles(rotated, "never", 5000, 5000)
    assert not demo.use_tiles(text, "always", 5000, 5000)  # text models never tile
    assert demo.tile_gap(1024, None) == 200 and demo.tile_gap(256, None) == 50
    assert demo.tile_gap(256, 0) == 0
    with pytest.raises(ValueError, match=r"--tile-gap must be in \[0, 256\) .* got 256"):
        demo.tile_gap(256, 256)


def test_rotated_model_runs_tiled_end_to_end(demo, rrcnn_weights, tmp_path):
    image = _image(tmp_path / "scene.png", 500, 700)
    out = tmp_path / "out"
    extra = ["--tile-gap", "56"]
    results = demo.main(_args(QUICK_RRCNN, rrcnn_weights, [image], out, *extra))
    record = results[str(image)]
    assert record["status"] == "ok"
    assert record["tiles"] == {
        "patches": 12,
        "size": 256,
        "gap": 56,
    }  # x 0,200,400,444; y 0,200,244
    for r in record["predictions"]:
        assert len(r["rbox_xywha"]) == 5 and isinstance(r["category_id"], int)
    assert cv2.imread(str(out / "scene.png")).shape == (500, 700, 3)
    assert json.loads((out / "predictions.json").read_text())[str(image)]["status"] == "ok"
