"""Synthetic scene-text generator: determinism, polygon validity and coverage, schema, CLI."""

import importlib.util
import json
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import shapely

from fasttcm.data.synthetic import (
    BACKGROUND_KINDS,
    DEFAULT_CHARSET,
    DIFFICULTY_PRESETS,
    DONT_CARE_TEXT,
    SceneTextOptions,
    discover_fonts,
    generate_text_dataset,
    make_background,
    make_word_geometry,
    render_scene,
    render_word_mask,
    sample_text,
)

REPO = Path(__file__).resolve().parents[2]
# Small, crowded scenes keep the tests fast while exercising placement and every word style.
SMALL = dict(words_per_image=(4, 8), text_height=(12.0, 36.0))


def _signed_area(poly: np.ndarray) -> float:
    """Shoelace area; positive = clockwise on screen (image coordinates, y pointing down)."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _fonts():
    return discover_fonts(DEFAULT_CHARSET)


@pytest.fixture(scope="module")
def scenes():
    """(difficulty, image, annotations) for a few default and hard scenes at 192x192."""
    out = []
    for difficulty in ("default", "hard"):
        for i in range(8):
            image, anns = render_scene(
                np.random.default_rng([11, i]), (192, 192), difficulty=difficulty, curved_prob=0.5
            )
            out.append((difficulty, image, anns))
    return out


# --------------------------------------------------------------------------------------------
# fonts, text, backgrounds


def test_discover_fonts_keeps_text_fonts_and_rejects_symbol_fonts():
    fonts = _fonts()
    names = {f.name for f in fonts}
    assert {"DejaVu Sans Book", "DejaVu Serif Bold", "DejaVu Sans Mono Oblique"} <= names
    families = {f.family for f in fonts}
    # Math/symbol fonts map ASCII code points to other symbols; LastResort maps all to one box;
    # cmti10 draws a pound sign for '$'.
    assert not families & {"cmsy10", "cmex10", "cmmi10", "cmti10", "Last Resort High-Efficiency"}
    assert [Path(f.path).name for f in fonts] == sorted(Path(f.path).name for f in fonts)
    # cmti10 and cmmi10 do draw lowercase letters correctly.
    assert {"cmti10", "cmmi10"} <= {f.family for f in discover_fonts("abcxyz")}


def test_discover_fonts_bad_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing_fonts"):
        discover_fonts(DEFAULT_CHARSET, (str(tmp_path / "missing_fonts"),))


def test_sample_text_charset_lines_and_determinism():
    rng = np.random.default_rng(0)
    texts = [sample_text(rng, alnum_prob=0.3) for _ in range(300)]
    assert all(set(t) <= set(DEFAULT_CHARSET) for t in texts)  # single words: no spaces
    assert all(any(c.isalnum() for c in t) for t in texts)
    assert any(t.isdigit() for t in texts) and any(t.isupper() for t in texts)
    lines = [sample_text(rng, line_prob=1.0, max_line_words=3) for _ in range(50)]
    assert all(2 <= len(t.split(" ")) <= 3 for t in lines)
    again = np.random.default_rng(0)
    assert [sample_text(again, alnum_prob=0.3) for _ in range(300)] == texts


@pytest.mark.parametrize("kind", sorted(BACKGROUND_KINDS))
def test_backgrounds(kind):
    image = make_background(np.random.default_rng(3), 40, 56, kinds=(kind,), clutter_shapes=(2, 2))
    assert image.shape == (40, 56, 3) and image.dtype == np.float32
    assert image.min() >= 0 and image.max() <= 255
    with pytest.raises(ValueError, match="unknown background kinds"):
        make_background(np.random.default_rng(3), 40, 56, kinds=("photo",))


# --------------------------------------------------------------------------------------------
# word rendering and geometry


@pytest.mark.parametrize("height", [8.0, 23.0, 57.0])
def test_word_mask_has_requested_ink_height(height):
    for font in _fonts()[::4]:
        mask = render_word_mask("Hello", font, height, pad=2)
        ink_rows = np.flatnonzero(mask.alpha.max(axis=1) > 0)
        assert ink_rows[0] == 2 and ink_rows[-1] == mask.shape[0] - 3  # ink-tight, then padded
        assert abs(len(ink_rows) - height) <= max(1.0, 0.06 * height), font.name
        assert mask.alpha.dtype == np.float32 and mask.alpha.max() == 1.0


def test_straight_polygon_known_values():
    geom = make_word_geometry((20, 100), center=(60.0, 40.0))
    np.testing.assert_allclose(geom.polygon(), [[10, 30], [110, 30], [110, 50], [10, 50]])
    # 90 degrees counter-clockwise: the top edge now runs upwards, starting bottom-left.
    geom = make_word_geometry((20, 100), center=(60.0, 60.0), angle_deg=90.0)
    np.testing.assert_allclose(
        geom.polygon(), [[50, 110], [50, 10], [70, 10], [70, 110]], atol=1e-9
    )


def test_curved_polygon_points_and_radius():
    h, w, arc = 20, 120, 90.0
    for sign in (1.0, -1.0):
        geom = make_word_geometry(
            (h, w), center=(200.0, 200.0), arc_deg=sign * arc, num_side_points=7
        )
        poly = geom.polygon()
        assert poly.shape == (14, 2)
        radius = w / np.radians(arc)  # middle-line radius; centre below (arch) or above (smile)
        centre = np.array([200.0, 200.0 + sign * radius])
        dist = np.hypot(*(poly - centre).T)
        inner = dist[7:] if sign > 0 else dist[:7]
        outer = dist[:7] if sign > 0 else dist[7:]
        np.testing.assert_allclose(inner, radius - h / 2)
        # The convex side is pushed out so each chord is tangent to the arc.
        np.testing.assert_allclose(outer, (radius + h / 2) / np.cos(np.radians(arc) / 12))
        assert _signed_area(poly) > 0 and shapely.Polygon(poly).is_valid


def test_make_word_geometry_rejects_bad_input():
    with pytest.raises(ValueError, match="too strong"):
        make_word_geometry((40, 60), arc_deg=120.0)
    with pytest.raises(ValueError, match="tilt_deg"):
        make_word_geometry((40, 60), tilt_deg=(70.0, 0.0))
    geom = make_word_geometry((40, 60))
    with pytest.raises(ValueError, match="does not match"):
        geom.warp(np.zeros((41, 60), np.float32), (100, 100))


def test_warped_ink_inside_polygon():
    """Render words alone on a blank canvas: their ink must lie inside the polygon (>= 99%)."""
    rng = np.random.default_rng(5)
    fonts = _fonts()
    size = (260, 260)
    for i in range(40):
        text = sample_text(rng, line_prob=0.2)
        mask = render_word_mask(text, fonts[i % len(fonts)], rng.uniform(10, 40), pad=1)
        h, w = mask.shape
        arc = 0.0
        if i % 2:  # curved, alternating arch and smile
            arc = min(150.0, 0.9 * np.degrees(w / h)) * rng.uniform(0.3, 1.0) * (-1) ** (i // 2)
        geom = make_word_geometry(
            mask.shape,
            center=(130.0, 130.0),
            angle_deg=rng.uniform(-180, 180),
            tilt_deg=tuple(rng.uniform(-40, 40, size=2)),
            arc_deg=arc,
            num_side_points=None if arc == 0 else 7 + i % 2,
        )
        poly = geom.polygon()
        assert len(poly) == (4 if arc == 0 else 2 * (7 + i % 2))
        assert _signed_area(poly) > 0 and shapely.Polygon(poly).is_valid
        alpha, (x0, y0) = geom.warp(mask.alpha, size, margin=3)
        ys, xs = np.nonzero(alpha > 0.25)
        assert xs.size > 0.3 * (mask.alpha > 0.25).sum()  # the word was drawn
        inside = shapely.contains_xy(shapely.Polygon(poly), xs + x0 + 0.5, ys + y0 + 0.5)
        assert inside.mean() >= 0.99, (text, arc, inside.mean())


# --------------------------------------------------------------------------------------------
# scenes


def test_render_scene_deterministic_and_independent_of_global_rng():
    np.random.seed(1)
    random.seed(1)
    a_img, a_anns = render_scene(np.random.default_rng([3, 4]), (160, 200), **SMALL)
    np.random.seed(2)
    random.seed(2)
    np.random.random(17)
    b_img, b_anns = render_scene(np.random.default_rng([3, 4]), (160, 200), **SMALL)
    assert a_img.shape == (160, 200, 3) and a_img.dtype == np.uint8
    assert np.array_equal(a_img, b_img)
    assert len(a_anns) == len(b_anns) > 0
    for a, b in zip(a_anns, b_anns):
        assert a["text"] == b["text"] and a["ignore"] == b["ignore"]
        assert np.array_equal(a["polygon"], b["polygon"])
    c_img, _ = render_scene(np.random.default_rng([3, 5]), (160, 200), **SMALL)
    assert not np.array_equal(a_img, c_img)


def test_scene_polygons_valid_inside_ordered_and_disjoint(scenes):
    counts = set()
    for difficulty, image, anns in scenes:
        img_h, img_w = image.shape[:2]
        assert anns, difficulty
        shapes = []
        for ann in anns:
            poly = ann["polygon"]
            counts.add(len(poly))
            assert poly.dtype == np.float64 and poly.ndim == 2 and poly.shape[1] == 2
            assert len(poly) in (4, 14, 16)
            assert poly.min() >= 0 and poly[:, 0].max() <= img_w and poly[:, 1].max() <= img_h
            shape = shapely.Polygon(poly)
            assert shape.is_valid and shape.area > 4
            assert _signed_area(poly) > 0  # clockwise in image coordinates
            n = len(poly) // 2
            if difficulty == "default":  # |rotation| <= 30, tilt <= 20: reading order visible
                assert poly[n - 1, 0] > poly[0, 0]  # top edge runs left -> right
                assert poly[:n, 1].mean() < poly[n:, 1].mean()  # top edge above the bottom edge
            shapes.append(shape)
        shapes = np.asarray(shapes, dtype=object)
        touching = shapely.intersects(shapes[:, None], shapes[None, :])
        assert np.array_equal(touching, np.eye(len(shapes), dtype=bool))
    assert counts == {4, 14, 16}


def test_scene_text_pixels_are_inside_polygons():
    """On a flat background without clutter, every changed pixel belongs to some word polygon."""
    covered, total = 0, 0
    for i in range(6):
        image, anns = render_scene(
            np.random.default_rng([21, i]),
            (192, 192),
            background_kinds=("flat",),
            clutter_shapes=(0, 0),
            distractor_strokes=(0, 0),
            non_text_lines=(0, 0),
            illumination=0.0,
            noise_std=(0.0, 0.0),
            shadow_prob=0.0,
            plate_prob=0.0,
            dont_care_prob=0.0,
            outline_prob=0.5,
            curved_prob=0.5,
            **SMALL,
        )
        background = image[0, 0].astype(np.int16)  # words never touch the image border
        ys, xs = np.nonzero(np.abs(image.astype(np.int16) - background).max(axis=2) > 20)
        union = shapely.union_all([shapely.Polygon(a["polygon"]) for a in anns])
        covered += int(shapely.contains_xy(union, xs + 0.5, ys + 0.5).sum())
        total += xs.size
    assert total > 500
    assert covered / total >= 0.95


def test_dont_care_rate_and_marking():
    rate = 0.25
    flags = []
    for i in range(30):
        _, anns = render_scene(
            np.random.default_rng([31, i]), (160, 160), dont_care_prob=rate, **SMALL
        )
        for ann in anns:
            assert ann["ignore"] == (ann["text"] == DONT_CARE_TEXT)
            assert ann["ignore"] or "#" not in ann["text"]
            flags.append(ann["ignore"])
    assert len(flags) > 100
    assert abs(np.mean(flags) - rate) < 0.08
    _, anns = render_scene(np.random.default_rng([31, 0]), (160, 160), dont_care_prob=0.0, **SMALL)
    assert not any(a["ignore"] for a in anns)


def test_options_validation_names_the_problem():
    with pytest.raises(ValueError, match="curvd_prob"):
        SceneTextOptions.from_difficulty("default", curvd_prob=0.5)
    with pytest.raises(ValueError, match="nightmare"):
        SceneTextOptions.from_difficulty("nightmare")
    with pytest.raises(ValueError, match="dont_care_prob"):
        SceneTextOptions(dont_care_prob=1.5)
    with pytest.raises(ValueError, match="text_height"):
        SceneTextOptions(text_height=(30, 10))
    assert SceneTextOptions(text_height=[10, 30]).text_height == (10, 30)  # lists from YAML/JSON
    for name, preset in DIFFICULTY_PRESETS.items():
        SceneTextOptions.from_difficulty(name)
        assert set(preset) <= set(SceneTextOptions.__dataclass_fields__)


# --------------------------------------------------------------------------------------------
# dataset files and CLI


def _check_text_json(json_path: Path, num_images: int, size):
    data = json.loads(json_path.read_text())
    assert set(data) == {"info", "images", "annotations", "categories"}
    assert isinstance(data["info"]["description"], str) and data["info"]["version"] == 1
    assert data["categories"] == [{"id": 1, "name": "text"}]
    assert len(data["images"]) == num_images
    image_ids = [im["id"] for im in data["images"]]
    assert len(set(image_ids)) == num_images and all(isinstance(i, int) for i in image_ids)
    for im in data["images"]:
        assert set(im) == {"id", "file_name", "height", "width"}
        assert "\\" not in im["file_name"] and not Path(im["file_name"]).is_absolute()
        decoded = cv2.imread(str(json_path.parent / im["file_name"]))
        assert decoded.shape == (size[0], size[1], 3) == (im["height"], im["width"], 3)
    ann_ids = [a["id"] for a in data["annotations"]]
    assert len(set(ann_ids)) == len(ann_ids) > 0
    for ann in data["annotations"]:
        assert set(ann) == {"id", "image_id", "polygon", "text", "ignore"}
        assert ann["image_id"] in image_ids
        assert isinstance(ann["ignore"], bool) and isinstance(ann["text"], str)
        assert ann["ignore"] == (ann["text"] == "###")
        assert len(ann["polygon"]) >= 3
        assert all(len(p) == 2 and all(isinstance(v, float) for v in p) for p in ann["polygon"])
    return data


def test_generate_text_dataset_schema_and_byte_identical(tmp_path):
    paths = [
        generate_text_dataset(tmp_path / run, 3, seed=9, image_size=(128, 160), **SMALL)
        for run in ("a", "b")
    ]
    assert paths[0] == tmp_path / "a" / "annotations.json"
    data = _check_text_json(paths[0], 3, (128, 160))
    for rel in ["annotations.json"] + [im["file_name"] for im in data["images"]]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    # No temporary files are left behind by the atomic writes.
    assert not [p for p in (tmp_path / "a").rglob("*") if p.name.endswith(".tmp")]
    # The JSON polygons are the ones render_scene returns for image i drawn from rng([seed, i]).
    _, anns = render_scene(np.random.default_rng([9, 1]), (128, 160), **SMALL)
    json_anns = [a for a in data["annotations"] if a["image_id"] == 2]
    assert [a["text"] for a in json_anns] == [a["text"] for a in anns]
    for a, b in zip(json_anns, anns):
        np.testing.assert_allclose(a["polygon"], b["polygon"], atol=0.006)


def test_generate_text_dataset_bad_input(tmp_path):
    with pytest.raises(ValueError, match="num_images"):
        generate_text_dataset(tmp_path, 0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        generate_text_dataset(tmp_path, 1, seed=-1)
    with pytest.raises(ValueError, match="image_format"):
        generate_text_dataset(tmp_path, 1, seed=0, image_format="gif")
    assert not (tmp_path / "annotations.json").exists()


def test_make_synthetic_cli(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_synthetic", REPO / "tools" / "make_synthetic.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert "text" in tool.KINDS
    argv = [
        "--kind",
        "text",
        "--num",
        "3",
        "--out",
        str(tmp_path / "cli"),
        "--seed",
        "4",
        "--size",
        "96",
        "128",
        "--set",
        "difficulty=hard",
        "--set",
        "text_height=(10,24)",
    ]
    assert tool.main(argv) == 0
    data = _check_text_json(tmp_path / "cli" / "annotations.json", 3, (96, 128))
    assert "difficulty=hard" in data["info"]["description"]
    direct = generate_text_dataset(
        tmp_path / "direct", 3, 4, image_size=(96, 128), difficulty="hard", text_height=(10, 24)
    )
    assert direct.read_bytes() == (tmp_path / "cli" / "annotations.json").read_bytes()
    with pytest.raises(SystemExit):
        tool.main(["--kind", "aerial-typo", "--num", "1", "--out", str(tmp_path / "x")])


@pytest.mark.slow
def test_worker_processes_give_identical_files(tmp_path):
    """Spawned workers import the package (torch, detectron2): slow, so behind the marker."""
    a = generate_text_dataset(tmp_path / "serial", 4, seed=2, image_size=(128, 128))
    b = generate_text_dataset(
        tmp_path / "parallel", 4, seed=2, image_size=(128, 128), num_workers=2
    )
    assert a.read_bytes() == b.read_bytes()
    for name in sorted(p.name for p in (tmp_path / "serial" / "images").iterdir()):
        assert (tmp_path / "serial/images" / name).read_bytes() == (
            tmp_path / "parallel/images" / name
        ).read_bytes()
