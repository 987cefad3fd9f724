"""The predictor API (``fasttcm.TextSpotter`` and friends).

* the README's usage section opens with three lines, and they run (on a tiny spotter);
* a path, an RGB array, a BGR array (told so), and a PIL image give the same result, which is
  the model's own inference on that image;
* polygons come back in the original image's pixels (a backend with a known probability map),
  crops are read in RGB from where the polygons are, same-size images share one network call;
* results round-trip through JSON and draw onto an image of the input's size;
* incomplete or missing weights are refused by the strict loader;
* DOTA: class names, XYWHA boxes as the model gives them, and polygons that are their corners;
  large scenes are cut into patches;
* word crops are read as the recognizer's test mapper + model read them;
* configs are found by name, also in the package data a regular install carries.

The models are the quick-schedule configs with random weights saved to a temporary file.
"""

import contextlib
import copy
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from detectron2.data import MetadataCatalog
from detectron2.structures import RotatedBoxes

from fasttcm.api import (
    OrientedDetector,
    OrientedResult,
    Recognition,
    TextRecognizer,
    TextResult,
    TextSpotter,
    available_backends,
    get_config_file,
    list_config_files,
    register_backend,
)
from fasttcm.api.config_files import build_predictor_config, config_dirs
from fasttcm.api.images import to_rgb
from fasttcm.data.dota_split import window_origins
from fasttcm.engine import FastTCMPredictor, IncompleteWeightsError
from tests.common import (
    CONFIG_DIR,
    QUICK_DETECTOR,
    QUICK_RECOGNIZER,
    QUICK_RRCNN,
    QUICK_SPOTTER,
    REPO_ROOT,
    build_quick_model,
)

README_CONFIG = "TextSpotting/fasttcm_cr50_fpn_spotter_ic15"


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """``weights(config, *overrides)``: a checkpoint file of the quick model `config` (plus
    overrides), randomly initialised; built once per argument list."""
    folder = tmp_path_factory.mktemp("api_weights")
    saved = {}

    def get(config: str, *overrides) -> str:
        key = (config, *overrides)
        if key not in saved:
            path = folder / f"{Path(config).stem}_{len(saved)}.pth"
            torch.save({"model": build_quick_model(config, *overrides).state_dict()}, path)
            saved[key] = str(path)
        return saved[key]

    return get


@pytest.fixture(scope="module")
def spotter(weights):
    return TextSpotter(QUICK_SPOTTER, weights(QUICK_SPOTTER))


ORIENTED_OPTS = [
    *("INPUT.MIN_SIZE_TEST", 128, "INPUT.MAX_SIZE_TEST", 128),
    *("MODEL.RPN.PRE_NMS_TOPK_TEST", 100, "MODEL.RPN.POST_NMS_TOPK_TEST", 20),
]


@pytest.fixture(scope="module")
def oriented(weights):
    """The quick rotated R-CNN at a 128-pixel test size with 20 proposals (the weights fit any
    size and count), so that the project's rotated NMS has little to do."""
    return OrientedDetector(QUICK_RRCNN, weights(QUICK_RRCNN), opts=ORIENTED_OPTS)


# ------------------------------------------------------------------------------------- README
def test_readme_usage_opens_with_three_lines_that_run(spotter, weights, tmp_path):
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Usage\n\n```python\n(.*?)```", readme, re.S | re.M)
    assert match, "README.md has no '## Usage' section opening with a python block"
    lines = match.group(1).strip().splitlines()
    assert len(lines) == 3 and lines[0] == "from fasttcm import TextSpotter", lines
    assert '"model_final.pth"' in lines[1] and '"photo.jpg"' in lines[2]
    assert f'"{README_CONFIG}"' in lines[1]
    assert Path(get_config_file(README_CONFIG)).is_file()  # the README names a real config

    photo = tmp_path / "photo.png"
    Image.fromarray(_image(150, 220)).save(photo)
    code = (
        "\n".join(lines)
        .replace(f'"{README_CONFIG}"', repr(QUICK_SPOTTER))
        .replace('"model_final.pth"', repr(weights(QUICK_SPOTTER)))
        .replace('"photo.jpg"', repr(str(photo)))
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md usage", "exec"), {})
    expected = [f"{word.text} {word.polygon}" for word in spotter(str(photo))]
    assert expected and out.getvalue().splitlines() == expected


# ------------------------------------------------------------------------------------- inputs
def test_path_rgb_bgr_and_pil_inputs_give_the_models_own_result(spotter, tmp_path):
    rgb = _image(150, 220, seed=1)
    path = tmp_path / "scene.png"
    Image.fromarray(rgb).save(path)
    from_path = spotter(path)
    results = [
        spotter(rgb),
        spotter(np.ascontiguousarray(rgb[:, :, ::-1]), channel_order="BGR"),
        spotter(Image.fromarray(rgb)),
    ]
    assert from_path.source == str(path) and from_path.image_size == (150, 220)
    assert len(from_path) >= 1
    for result in results:
        assert result.source is None
        assert result.instances == from_path.instances

    # the engine's predictor (BGR in, Instances out) on the same image: the same predictions, at
    # the config's threshold and at one that splits the map into a few words
    reference = FastTCMPredictor(spotter.cfg)
    prob = spotter.runner.maps(spotter.network_input(rgb)[None])["prob"][0]
    probe = copy.copy(spotter.postprocessor)
    for probe.mask_thresh in np.quantile(prob, np.linspace(0.7, 0.8, 21)).tolist():
        if 2 <= len(probe(prob)[0]) <= 12:
            break
    saved = spotter.postprocessor.mask_thresh
    try:
        for thresh, ours in ((saved, results[0]), (probe.mask_thresh, None)):
            spotter.postprocessor.mask_thresh = reference.model.postprocessor.mask_thresh = thresh
            ours = ours or spotter(rgb)
            theirs = reference(np.ascontiguousarray(rgb[:, :, ::-1]))["instances"]
            assert len(ours) == len(theirs) >= 1
            for word, polygon in zip(ours, theirs.polygons):
                np.testing.assert_allclose(word.polygon, polygon, atol=1e-4)
            assert ours.texts == theirs.texts
            np.testing.assert_allclose([w.score for w in ours], theirs.scores.numpy(), atol=1e-6)
            np.testing.assert_allclose(
                [w.text_score for w in ours], theirs.text_scores.numpy(), rtol=1e-4, atol=1e-30
            )
    finally:
        spotter.postprocessor.mask_thresh = saved
    assert len(ours) >= 2  # the second threshold found several words


def test_image_conversion_rules():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb, source = to_rgb(gray)
    assert source is None and rgb.shape == (3, 4, 3) and (rgb == gray[:, :, None]).all()
    assert (to_rgb(gray[:, :, None])[0] == rgb).all()
    rgba = np.dstack([_image(3, 4), np.full((3, 4), 7, np.uint8)])
    assert (to_rgb(rgba)[0] == rgba[:, :, :3]).all()
    assert (to_rgb(rgba, "BGR")[0] == rgba[:, :, 2::-1]).all()  # BGRA: alpha dropped, flipped
    sixteen = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 257)[:, :, None].repeat(3, axis=2)
    assert (to_rgb(sixteen)[0] == np.arange(12).reshape(3, 4)[:, :, None]).all()
    assert (to_rgb(Image.fromarray(gray, "L"))[0] == rgb).all()
    pil16 = Image.fromarray(np.arange(12, dtype=np.uint16).reshape(3, 4) * 257)
    assert pil16.mode.startswith("I;16")
    assert (to_rgb(pil16)[0] == rgb).all()
    with pytest.raises(TypeError, match="uint8"):
        to_rgb(np.zeros((3, 4, 3), np.float32), name="image 2")
    with pytest.raises(ValueError, match="empty"):
        to_rgb(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        to_rgb(np.zeros((3, 4, 2), np.uint8))
    with pytest.raises(TypeError, match="path, a numpy array or a PIL image"):
        to_rgb([[1, 2, 3]])
    with pytest.raises(ValueError, match="channel_order"):
        to_rgb(rgb, "RGBA")
    with pytest.raises(FileNotFoundError):
        to_rgb("/nonexistent/photo.jpg")


# ----------------------------------------------------------- coordinates, crops, batching
class _FixedMapsRunner:
    """A backend whose network answers a known probability map: a rectangle of text at rows
    [32, 64) and columns [64, 192) of the network input, and "word" for every crop."""

    meta_architecture = "FastTCMTextSpotter"
    recognizer_input_size = (32, 64)

    def __init__(self):
        self.map_batches, self.crop_batches = [], []

    def maps(self, images, all_maps=False):
        self.map_batches.append(images.clone())
        prob = np.zeros((len(images), *images.shape[-2:]), np.float32)
        prob[:, 32:64, 64:192] = 0.9
        return {"prob": prob}

    def read(self, crops):
        self.crop_batches.append(crops.clone())
        return ["word"] * len(crops), np.full(len(crops), 0.75, np.float32)


if "test-fixed-maps" not in available_backends():
    register_backend("test-fixed-maps")(lambda cfg, weights: _FixedMapsRunner())


@pytest.mark.parametrize("input_format", ["RGB", "BGR"])
def test_polygons_in_original_pixels_and_crops_in_rgb(input_format):
    """A 150 x 300 image runs at 128 x 256 (the test resize): the rectangle found there comes
    back scaled by 300/256 and 150/128, and its crop shows the red the original has there."""
    predictor = TextSpotter(
        QUICK_SPOTTER,
        None,
        backend="test-fixed-maps",
        opts=["TEST.TEXT.UNCLIP_RATIO", 0.0, "INPUT.FORMAT", input_format],
    )
    runner = predictor.runner
    scene = np.full((150, 300, 3), 128, np.uint8)
    scene[38:75, 75:225] = (255, 0, 0)  # the rectangle's place in original pixels, in red
    other = np.full((120, 90, 3), 128, np.uint8)
    results = predictor([scene, scene.copy(), other])

    # one network call per input size: the two scenes together, then the other image
    shapes = [tuple(b.shape) for b in runner.map_batches]
    assert shapes[0] == (2, 3, 128, 256) and len(shapes) == 2 and shapes[1][:2] == (1, 3)
    red = 0 if input_format == "RGB" else 2  # INPUT.FORMAT channel order at the network
    assert runner.map_batches[0][0, red, 40:60, 70:180].float().mean() > 250
    assert len(runner.crop_batches) == 1 and len(runner.crop_batches[0]) == 3  # one read call

    for result, (height, width), (net_height, net_width) in zip(
        results, [(150, 300), (150, 300), (120, 90)], [(128, 256), (128, 256), shapes[1][2:]]
    ):
        (word,) = result
        assert word.text == "word" and word.text_score == pytest.approx(0.75)
        assert result.image_size == (height, width)
        xs, ys = np.asarray(word.polygon).T  # the map's rectangle, clipped to the input
        scale_x, scale_y = width / net_width, height / net_height
        assert xs.min() == pytest.approx(64 * scale_x, abs=1.5)
        assert xs.max() == pytest.approx(min(192, net_width) * scale_x, abs=1.5)
        assert ys.min() == pytest.approx(32 * scale_y, abs=1.5)
        assert ys.max() == pytest.approx(64 * scale_y, abs=1.5)
    assert results[1].instances == results[0].instances
    crop = runner.crop_batches[0][0]  # RGB whatever INPUT.FORMAT is
    assert tuple(crop.shape) == (3, 32, 64)
    assert crop[0].mean() > 200 and crop[1].mean() < 60 and crop[2].mean() < 60


# ------------------------------------------------------------------------ JSON and drawing
def test_results_round_trip_through_json_and_draw_at_input_size(spotter, tmp_path):
    rgb = _image(150, 220, seed=2)
    result = spotter(rgb)
    record = json.loads(result.to_json())
    assert record["image_size"] == [150, 220] and "source" not in record
    assert set(record["instances"][0]) == {"polygon", "score", "text", "text_score"}
    again = TextResult.from_json(result.to_json(indent=1))
    assert again == result

    drawn = result.draw()
    assert drawn.shape == rgb.shape and drawn.dtype == np.uint8
    assert not np.array_equal(drawn, rgb)  # the polygon and the label are on it
    assert np.array_equal(again.draw(image=rgb), drawn)
    with pytest.raises(ValueError, match="holds no image"):
        again.draw()
    with pytest.raises(ValueError, match="150 x 220"):
        result.draw(image=rgb[:100])

    path = tmp_path / "scene.png"  # a path result is drawn from its file
    Image.fromarray(rgb).save(path)
    assert np.array_equal(spotter(str(path)).draw(), drawn)


# ----------------------------------------------------------------------------------- weights
def test_weights_missing_or_incomplete_are_refused(weights, tmp_path):
    with pytest.raises(IncompleteWeightsError, match="no weights file"):
        TextSpotter(QUICK_SPOTTER, None)
    with pytest.raises(IncompleteWeightsError, match="missing: .*recognizer"):
        TextSpotter(QUICK_SPOTTER, weights(QUICK_DETECTOR))  # a detector's weights
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        TextSpotter(QUICK_SPOTTER, tmp_path / "nope.pth")
    with pytest.raises(ValueError, match="FastTCMTextDetector.*fasttcm.TextDetector"):
        TextSpotter(QUICK_DETECTOR, weights(QUICK_DETECTOR))
    with pytest.raises(ValueError, match="unknown predictor backend 'tensorrt'.*torch"):
        TextSpotter(QUICK_SPOTTER, weights(QUICK_SPOTTER), backend="tensorrt")


# -------------------------------------------------------------------------------------- DOTA
def _corners(box) -> np.ndarray:
    """Corners of a detectron2 rotated box by OpenCV, whose angle turns clockwise on screen."""
    cx, cy, w, h, angle = box
    return cv2.boxPoints(((cx, cy), (w, h), -angle)).astype(np.float64)


def test_oriented_detector_gives_class_names_and_consistent_boxes(oriented):
    rgb = _image(100, 120, seed=3)
    result = oriented(rgb)
    reference = FastTCMPredictor(oriented.cfg)(np.ascontiguousarray(rgb[:, :, ::-1]))["instances"]
    assert len(result) == len(reference) > 0 and result.num_patches == 1

    names = MetadataCatalog.get(oriented.cfg.DATASETS.TRAIN[0]).thing_classes
    assert result.class_names == list(names) and "small-vehicle" in names
    order = np.argsort(-reference.scores.numpy(), kind="stable")
    boxes = reference.pred_boxes.tensor.numpy()[order]
    np.testing.assert_allclose([o.rbox for o in result], boxes, rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(
        [o.class_id for o in result], reference.pred_classes.numpy()[order]
    )
    areas = RotatedBoxes(torch.as_tensor(boxes)).area().numpy()
    for obj, area in zip(result, areas):
        assert obj.class_name == names[obj.class_id]
        polygon = np.asarray(obj.polygon)
        expected = _corners(obj.rbox)
        for corner in polygon:  # the same four corners (OpenCV orders them its own way)
            assert np.abs(expected - corner).max(axis=1).min() < 1e-2
        x, y = polygon.T
        signed = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
        assert signed == pytest.approx(area, rel=1e-4)  # clockwise on screen (y down)
    assert [o.score for o in result] == sorted((o.score for o in result), reverse=True)

    again = OrientedResult.from_json(result.to_json())
    assert again == result and again.draw(image=rgb).shape == rgb.shape


def test_large_scenes_run_in_patches(oriented):
    size, gap = oriented.tile_size, oriented.tile_gap
    assert (size, gap) == (128, 25) and oriented.tile == "auto"  # test size; 200 per 1024
    assert not oriented.uses_tiles(128, 190) and oriented.uses_tiles(128, 200)  # > 1.5 patches
    # a large scene between two small images: run alone, results in input order
    results = oriented(
        [_image(100, 120, seed=5), _image(128, 200, seed=4), _image(90, 128, seed=6)]
    )
    assert [r.image_size for r in results] == [(100, 120), (128, 200), (90, 128)]
    assert [r.num_patches for r in results] == [1, 2, 1]
    result = results[1]
    assert result.num_patches == len(window_origins(128, size, gap)) * len(
        window_origins(200, size, gap)
    )
    assert result.num_patches == 2 and len(result) > 0
    centres = np.asarray([o.rbox[:2] for o in result])
    assert (centres > -size).all() and (centres[:, 0] < 200 + size).all()
    assert [o.score for o in result] == sorted((o.score for o in result), reverse=True)


# ------------------------------------------------------------------------------- recognizer
def test_recognizer_reads_crops_like_its_test_mapper_and_model(weights):
    short = ["MODEL.RECOGNIZER.MAX_LABEL_LENGTH", 8]  # 9 decoding steps: a short test
    reader = TextRecognizer(QUICK_RECOGNIZER, weights(QUICK_RECOGNIZER, *short), opts=short)
    crops = [_image(20, 70, seed=5), _image(32, 64, seed=6), _image(48, 30, seed=7)]
    results = reader(crops)
    assert all(isinstance(r, Recognition) and isinstance(r.text, str) for r in results)
    height, width = reader.cfg.MODEL.RECOGNIZER.IMAGE_SIZE
    inputs = [
        {
            "image": torch.from_numpy(
                np.asarray(Image.fromarray(c).resize((width, height), Image.BICUBIC))
                .transpose(2, 0, 1)
                .copy()
            )
        }
        for c in crops
    ]
    with torch.no_grad():
        expected = reader.runner.model(inputs)
    assert [r.text for r in results] == [e["text"] for e in expected]
    np.testing.assert_allclose([r.score for r in results], [e["score"] for e in expected])
    assert Recognition.from_json(results[1].to_json()) == results[1]


# ---------------------------------------------------------------------------------- configs
def test_configs_are_found_by_name():
    path = str(CONFIG_DIR / "TextSpotting" / "fasttcm_cr50_fpn_spotter_ic15.yaml")
    assert get_config_file(README_CONFIG) == path
    assert get_config_file(README_CONFIG + ".yaml") == path
    assert get_config_file(path) == path
    names = list_config_files()
    assert README_CONFIG in names and not any("Base-" in n for n in names)
    with pytest.raises(FileNotFoundError, match="known names: .*" + README_CONFIG):
        get_config_file("TextSpotting/no_such_config")
    with pytest.raises(FileNotFoundError):
        get_config_file("../configs/" + README_CONFIG)  # names stay inside the folder


def test_configs_ship_as_package_data(tmp_path):
    """``setup.py build_py`` (what a wheel holds) puts every YAML under ``fasttcm/configs/``, and
    names resolve there without a source checkout."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ["setup.py", "README.md", *(p.name for p in REPO_ROOT.glob("requirements*.txt"))]:
        shutil.copy(REPO_ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("fasttcm", "fasttcm_ops", "configs"):
        shutil.copytree(
            REPO_ROOT / "projects" / "FastTCM" / folder,
            source / "projects" / "FastTCM" / folder,
            ignore=ignore,
        )
    lib = tmp_path / "lib"
    res = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    package = lib / "fasttcm"
    shipped = sorted(p.relative_to(package / "configs") for p in package.rglob("*.yaml"))
    assert shipped == sorted(p.relative_to(CONFIG_DIR) for p in CONFIG_DIR.rglob("*.yaml"))
    assert config_dirs(package) == [package / "configs"]  # no checkout beside it
    path = get_config_file(README_CONFIG, package_dir=package)
    assert path == str(package / "configs" / (README_CONFIG + ".yaml"))
    cfg = build_predictor_config(path, None)  # its _BASE_ chain resolves inside the package
    assert cfg.MODEL.META_ARCHITECTURE == "FastTCMTextSpotter"


def test_root_package_serves_the_api_lazily():
    code = (
        "import sys, fasttcm\n"
        "print('fasttcm.api' in sys.modules, 'fasttcm.deploy' in sys.modules)\n"
        "from fasttcm import TextSpotter, OrientedDetector\n"
        "import fasttcm.api as api\n"
        "print(TextSpotter is api.TextSpotter, 'TextDetector' in dir(fasttcm))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split() == ["False", "False", "True", "True"]


# ----------------------------------------------------------------------- optimized backends
def test_torch_opt_and_bf16_backends_follow_the_float32_model(spotter, weights):
    """'torch-opt' (BatchNorm folding + channels_last) gives the 'torch' maps to float rounding;
    'torch-bf16' autocasts the networks: maps within bfloat16 precision, float32 outputs, and for
    a rotated R-CNN only the backbone is autocast (its boxes and scores stay float32)."""
    assert {"torch", "torch-opt", "torch-bf16"} <= set(available_backends())
    images = spotter.network_input(_image(96, 128, seed=5))[None]
    reference = spotter.runner.maps(images, all_maps=True)
    opt = TextSpotter(QUICK_SPOTTER, weights(QUICK_SPOTTER), backend="torch-opt")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in opt.runner.model.modules())
    bf16 = TextSpotter(QUICK_SPOTTER, weights(QUICK_SPOTTER), backend="torch-bf16")
    for runner, max_diff, mean_diff in ((opt.runner, 1e-5, 1e-6), (bf16.runner, 0.1, 0.01)):
        maps = runner.maps(images, all_maps=True)
        for name, value in reference.items():
            assert maps[name].dtype == np.float32 and maps[name].shape == value.shape
            if runner is bf16.runner and name == "binary":
                continue  # sigmoid(50 (P - T)) magnifies bfloat16's 8-bit mantissa 50 times
            diff = np.abs(maps[name] - value)
            assert diff.max() < max_diff and diff.mean() < mean_diff, (name, diff.max())
    crops = torch.rand(3, 3, *spotter.runner.recognizer_input_size) * 255
    texts, scores = bf16.runner.read(crops)
    assert len(texts) == 3 and scores.dtype == np.float32

    rgb = _image(100, 120, seed=3)
    rotated = OrientedDetector(
        QUICK_RRCNN, weights(QUICK_RRCNN), opts=ORIENTED_OPTS, backend="torch-bf16"
    )
    assert type(rotated.runner.model.backbone).__name__ == "_AutocastBackbone"
    captured = {}

    def record_feature_dtypes(module, args):  # RPN(images, features, ...)
        captured["dtypes"] = {feature.dtype for feature in args[1].values()}

    rotated.runner.model.proposal_generator.register_forward_pre_hook(record_feature_dtypes)
    result = rotated(rgb)
    assert captured["dtypes"] == {torch.float32}
    assert all(isinstance(o.score, float) for o in result)
