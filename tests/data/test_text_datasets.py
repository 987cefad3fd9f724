"""Text-JSON loading and registration, bad inputs, few-shot subsets, builtin splits."""

import json
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
import shapely
from PIL import Image

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.detection_utils import check_image_size
from detectron2.structures import BoxMode

from fasttcm import add_fasttcm_config
from fasttcm.data.datasets.builtin_meta import TEXT_DATASETS, get_text_dataset_metadata
from fasttcm.data.datasets.fractions import select_fraction
from fasttcm.data.datasets.synthetic_splits import load_synthetic_text_split
from fasttcm.data.datasets.text_image_list import load_text_image_list
from fasttcm.data.datasets.text_json import load_text_json
from fasttcm.data.datasets.text_registration import register_text_instances
from fasttcm.data.image_io import ImageReadError, read_image

REPO = Path(__file__).resolve().parents[2]


def write_image(path, hw=(40, 60)):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (hw[1], hw[0]), (10, 200, 30)).save(path)
    return path


def make_split(tmp_path, annotations, images=None, write_images=True):
    """A text JSON in tmp_path/split.json with images under tmp_path/images."""
    images = images or [
        {"id": 7, "file_name": "a.jpg", "height": 40, "width": 60},
        {"id": 3, "file_name": "sub/b.png", "height": 40, "width": 60},
    ]
    root = tmp_path / "images"
    if write_images:
        for img in images:
            write_image(root / img["file_name"], (img["height"], img["width"]))
    data = {
        "info": {"description": "test", "version": 1},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "text"}],
    }
    json_file = tmp_path / "split.json"
    json_file.write_text(json.dumps(data), encoding="utf-8")
    return json_file, root


def ann(ann_id, image_id, polygon, text="word", ignore=False):
    return {"id": ann_id, "image_id": image_id, "polygon": polygon, "text": text, "ignore": ignore}


SQUARE = [[10, 5], [30, 5], [30, 15], [10, 15]]


@pytest.fixture
def unique_name():
    name = f"test_text_{uuid.uuid4().hex[:8]}"
    yield name
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
    if name in MetadataCatalog.list():
        MetadataCatalog.remove(name)


# ------------------------------------------------------------------------------------ loading


def test_register_and_load_custom_split(tmp_path, unique_name):
    curved = [[1, 1], [5, 0], [9, 1], [9, 4], [5, 3], [1, 4]]
    json_file, root = make_split(
        tmp_path,
        [
            ann(1, 7, SQUARE, "Hello"),
            ann(2, 3, curved, "###", ignore=True),
            ann(3, 7, [[0, 0], [4, 0], [4, 4], [0, 0]]),
        ],
    )
    register_text_instances(unique_name, {"word_spotting": True}, json_file, root)
    meta = MetadataCatalog.get(unique_name)
    assert meta.evaluator_type == "text_det" and meta.eval_protocol == "iou"
    assert meta.thing_classes == ["text"] and meta.word_spotting is True
    assert meta.json_file == str(json_file) and meta.image_root == str(root)

    dicts = DatasetCatalog.get(unique_name)
    assert [d["image_id"] for d in dicts] == [7, 3]  # JSON order
    d0 = dicts[0]
    assert d0["file_name"] == str(root / "a.jpg") and os.path.isabs(d0["file_name"])
    assert (d0["height"], d0["width"]) == (40, 60)
    a0, a_closed = d0["annotations"]
    assert a0 == {
        "segmentation": [[10.0, 5.0, 30.0, 5.0, 30.0, 15.0, 10.0, 15.0]],
        "bbox": [10.0, 5.0, 30.0, 15.0],
        "bbox_mode": BoxMode.XYXY_ABS,
        "category_id": 0,
        "text": "Hello",
        "ignore": False,
    }
    assert a_closed["segmentation"] == [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0]]  # closing vertex dropped
    (a1,) = dicts[1]["annotations"]
    assert a1["ignore"] and a1["text"] == "###" and a1["bbox"] == [1.0, 0.0, 9.0, 4.0]
    assert dicts[1]["file_name"].endswith(os.path.join("sub", "b.png"))


def test_missing_json_says_how_to_create_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_text_json(tmp_path / "nope.json", tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "nope.json") in msg and "tools/convert_dataset.py" in msg


def test_degenerate_polygons_are_skipped_with_warning(tmp_path, caplog):
    json_file, root = make_split(
        tmp_path,
        [
            ann(11, 7, [[1, 1], [5, 5]]),
            ann(12, 7, [[1, 1], [5, float("nan")], [3, 3]]),
            ann(13, 7, [[1, 1], [float("inf"), 1], [3, 3]]),
            ann(14, 7, [[0, 0], [1, 1], [2, 2], [3, 3]]),  # collinear: no area even after repair
            ann(15, 7, []),
            ann(16, 3, SQUARE),
        ],
    )
    with caplog.at_level(logging.WARNING):
        dicts = load_text_json(json_file, root)
    assert [len(d["annotations"]) for d in dicts] == [0, 1]
    for ann_id, reason in [
        (11, "2 point(s)"),
        (12, "NaN/inf"),
        (13, "NaN/inf"),
        (14, "no area"),
        (15, "0 point(s)"),
    ]:
        assert f"{json_file}: annotation {ann_id} (image 7): skipped" in caplog.text
        assert reason in caplog.text


def test_self_intersecting_polygon_is_repaired(tmp_path, caplog):
    # A bow-tie: edges y = 0.6 x and y = 10 - 0.6 x cross at (25/3, 5); the left lobe is larger.
    bowtie = [[0, 0], [10, 6], [10, 4], [0, 10]]
    json_file, root = make_split(tmp_path, [ann(1, 7, bowtie)])
    with caplog.at_level(logging.WARNING):
        (ann0,) = load_text_json(json_file, root)[0]["annotations"]
    assert f"{json_file}: annotation 1 (image 7): self-intersecting polygon repaired" in caplog.text
    repaired = shapely.Polygon(np.reshape(ann0["segmentation"][0], (-1, 2)))
    assert repaired.is_valid
    # Independent computation: the left triangle (0,0)-(25/3,5)-(0,10) is the largest valid part.
    expected = shapely.Polygon([[0, 0], [25 / 3, 5.0], [0, 10]])
    assert repaired.area == pytest.approx(0.5 * 10 * 25 / 3)
    assert repaired.symmetric_difference(expected).area < 1e-9
    np.testing.assert_allclose(ann0["bbox"], [0, 0, 25 / 3, 10])
    # Orientation of the original kept: its shoelace area is positive (clockwise on screen with y
    # down), which shapely, working in a y-up frame, calls counter-clockwise.
    assert repaired.exterior.is_ccw


def test_missing_images_are_skipped_and_counted(tmp_path, caplog):
    json_file, root = make_split(tmp_path, [ann(1, 7, SQUARE), ann(2, 3, SQUARE)])
    os.remove(root / "sub/b.png")
    with caplog.at_level(logging.WARNING):
        dicts = load_text_json(json_file, root)
    assert [d["image_id"] for d in dicts] == [7]
    assert "1 of 2 images are missing" in caplog.text and "b.png" in caplog.text
    os.remove(root / "a.jpg")
    with pytest.raises(FileNotFoundError, match="none of its 2 images exists"):
        load_text_json(json_file, root)


@pytest.mark.parametrize(
    "file_name", ["../outside.jpg", "sub/../../x.jpg", "/etc/passwd", "C:/x.jpg", "a\\b.jpg"]
)
def test_file_name_escaping_the_root_is_an_error(tmp_path, file_name):
    images = [{"id": 1, "file_name": file_name, "height": 4, "width": 4}]
    json_file, root = make_split(tmp_path, [], images=images, write_images=False)
    with pytest.raises(ValueError, match="file_name") as info:
        load_text_json(json_file, root)
    assert str(json_file) in str(info.value)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["images"].append(dict(d["images"][0])), "duplicate image id 7"),
        (lambda d: d["annotations"].append(ann(1, 3, SQUARE)), "duplicate annotation id 1"),
        (lambda d: d["annotations"].append(ann(5, 99, SQUARE)), "annotation 5 .* not in 'images'"),
        (lambda d: d["annotations"][0].pop("ignore"), r"lacks key\(s\) \['ignore'\]"),
        (
            lambda d: d["annotations"][0].update(polygon=[1, 2, 3, 4, 5, 6]),
            "list of \\[x, y\\] pairs",
        ),
        (lambda d: d["annotations"][0].update(polygon=[[1, "a"], [2, 2], [3, 1]]), "number pairs"),
        (lambda d: d["images"][0].update(height=0), "height/width"),
        (lambda d: d["info"].update(version=2), "version 2"),
        (lambda d: d.update(images=[]), "lists no images"),
    ],
)
def test_schema_violations_name_the_file(tmp_path, mutate, message):
    json_file, root = make_split(tmp_path, [ann(1, 7, SQUARE)])
    data = json.loads(json_file.read_text())
    mutate(data)
    json_file.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message) as info:
        load_text_json(json_file, root)
    assert str(json_file) in str(info.value)


def test_invalid_json_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=f"{bad}: not a valid UTF-8 JSON file"):
        load_text_json(bad, tmp_path)


def test_image_read_as_the_mappers_do(tmp_path):
    good = write_image(tmp_path / "good.png", (12, 20))
    img = read_image(good, format="BGR")
    check_image_size({"file_name": str(good), "height": 12, "width": 20}, img)
    assert img.shape == (12, 20, 3) and img.dtype == np.uint8
    assert tuple(img[0, 0]) == (30, 200, 10)  # BGR of the RGB (10, 200, 30) fill
    with pytest.raises(ValueError, match="good.png"):
        check_image_size({"file_name": str(good), "height": 20, "width": 12}, img)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        read_image(tmp_path / "missing.jpg")
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\x00\x01 definitely not an image")
    with pytest.raises(ImageReadError, match="garbage.jpg: cannot decode"):
        read_image(garbage)
    full = write_image(tmp_path / "full.jpg", (64, 64)).read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(full[: len(full) // 2])
    with pytest.raises(ImageReadError, match="truncated.jpg"):
        read_image(truncated, format="RGB")


def test_load_text_image_list(tmp_path, caplog):
    write_image(tmp_path / "imgs/x.jpg", (10, 12))
    write_image(tmp_path / "imgs/y.jpg", (11, 13))
    lst = tmp_path / "list.txt"
    lst.write_text("# night images\nx.jpg\n\nmissing.jpg\ny.jpg\n")
    with caplog.at_level(logging.WARNING):
        dicts = load_text_image_list(lst, tmp_path / "imgs")
    assert [(Path(d["file_name"]).name, d["image_id"], d["height"], d["width"]) for d in dicts] == [
        ("x.jpg", 1, 10, 12),
        ("y.jpg", 3, 11, 13),
    ]
    assert all("annotations" not in d for d in dicts)
    assert "1 of 3 listed images are missing" in caplog.text
    lst.write_text("../x.jpg\n")
    with pytest.raises(ValueError, match="escapes the image root"):
        load_text_image_list(lst, tmp_path / "imgs")


# ------------------------------------------------------------------------------------ fractions


def fake_dicts(n):
    return [{"image_id": i, "file_name": f"{i}.jpg"} for i in range(n)]


def test_select_fraction_deterministic_and_order_independent():
    dicts = fake_dicts(50)
    a = select_fraction(dicts, 0.1, seed=0)
    assert len(a) == 5 and a == select_fraction(list(reversed(dicts)), 0.1, seed=0)
    assert [d["image_id"] for d in a] == sorted(d["image_id"] for d in a)
    assert select_fraction(dicts, 0.1, seed=1) != a
    # Nested for one seed: the 10% subset is inside the 30% subset.
    b = select_fraction(dicts, 0.3, seed=0)
    assert len(b) == 15 and {d["image_id"] for d in a} <= {d["image_id"] for d in b}
    assert all(any(x is y for y in dicts) for x in a)  # the same objects


def test_select_fraction_bounds():
    dicts = fake_dicts(10)
    assert len(select_fraction(dicts, 0.001, seed=0)) == 1  # at least one image
    assert len(select_fraction(dicts, 0.25, seed=0)) == 3  # round(2.5) -> 3 (half up)
    assert select_fraction(dicts, 1.0, seed=3) == dicts  # all, input order
    for bad in (0, 0.0, -0.1, 1.5, float("nan"), float("inf"), True, "0.1", None):
        with pytest.raises(ValueError, match="fraction"):
            select_fraction(dicts, bad, seed=0)
    with pytest.raises(ValueError, match="empty"):
        select_fraction([], 0.5, seed=0)
    with pytest.raises(TypeError, match="seed"):
        select_fraction(dicts, 0.5, seed=0.5)


def test_dataset_config_keys():
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    assert cfg.DATASETS.TRAIN_FRACTION == 1.0 and cfg.DATASETS.TRAIN_FRACTION_SEED == 0


# ------------------------------------------------------------------------------------ builtin


def test_builtin_splits_registered_with_metadata():
    names = set(DatasetCatalog.list())
    expected = {
        "icdar2015_train",
        "icdar2015_test",
        "totaltext_train",
        "totaltext_test",
        "ctw1500_train",
        "ctw1500_test",
        "msra_td500_train",
        "msra_td500_test",
        "art_train",
        "art_nighttime_test",
        "synthetic_text_train",
        "synthetic_text_test",
    }
    assert expected <= names
    for name in expected:
        meta = MetadataCatalog.get(name)
        assert meta.evaluator_type == "text_det" and meta.thing_classes == ["text"]
        assert meta.eval_protocol == "iou"
    assert MetadataCatalog.get("totaltext_test").word_spotting is True
    assert MetadataCatalog.get("ctw1500_test").word_spotting is False
    assert "deteval" in MetadataCatalog.get("totaltext_test").alternative_eval_protocols
    assert MetadataCatalog.get("icdar2015_test").gt_geometry == "quadrilateral"
    assert MetadataCatalog.get("msra_td500_test").has_transcriptions is False
    assert MetadataCatalog.get("icdar2015_test").gt_dir.endswith(
        os.path.join("evaluation", "icdar2015_gt", "test")
    )
    assert MetadataCatalog.get("art_nighttime_test").has_annotations is False
    assert MetadataCatalog.get("synthetic_text_train").num_images == 400
    assert set(get_text_dataset_metadata("ctw1500")) >= {
        "eval_protocol",
        "word_spotting",
        "lexicon_types",
    }
    with pytest.raises(KeyError, match="unknown text dataset"):
        get_text_dataset_metadata("coco")
    assert set(TEXT_DATASETS) == {
        "icdar2015",
        "totaltext",
        "ctw1500",
        "msra_td500",
        "art",
        "synthtext",
        "synthetic_text",
    }


def test_missing_builtin_split_fails_on_load_with_message(tmp_path):
    """Under an empty $DETECTRON2_DATASETS every split registers; loading says what to run."""
    script = textwrap.dedent("""
        import json, os, sys
        import fasttcm
        from detectron2.data import DatasetCatalog, MetadataCatalog
        root = sys.argv[1]
        out = {"json_file": MetadataCatalog.get("totaltext_test").json_file, "errors": {}}
        for name in ("totaltext_test", "msra_td500_train", "art_nighttime_test"):
            try:
                DatasetCatalog.get(name)
            except FileNotFoundError as e:
                out["errors"][name] = str(e)
        print(json.dumps(out))
        """)
    env = dict(os.environ, DETECTRON2_DATASETS=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["json_file"] == os.path.join(str(tmp_path), "totaltext", "test.json")
    errors = out["errors"]
    assert set(errors) == {"totaltext_test", "msra_td500_train", "art_nighttime_test"}
    assert os.path.join(str(tmp_path), "totaltext", "test.json") in errors["totaltext_test"]
    assert (
        "python tools/convert_dataset.py totaltext --src /path/to/raw/totaltext "
        f"--dst {tmp_path}/totaltext" in errors["totaltext_test"]
    )
    assert "tools/convert_dataset.py td500" in errors["msra_td500_train"]
    assert "nighttime_test.txt does not exist" in errors["art_nighttime_test"]
    assert not any(tmp_path.iterdir())  # registration and failed loads created nothing


def test_synthetic_split_generated_on_first_load(tmp_path, caplog):
    dicts = load_synthetic_text_split(tmp_path, "test", num_images=2, seed=1)
    split_dir = tmp_path / "synthetic_text" / "test"
    json_file = split_dir / "annotations.json"
    assert json_file.is_file() and len(dicts) == 2
    assert all(
        Path(d["file_name"]).is_file() and Path(d["file_name"]).is_relative_to(split_dir)
        for d in dicts
    )
    assert sum(len(d["annotations"]) for d in dicts) > 0
    assert [p.name for p in (tmp_path / "synthetic_text").iterdir()] == [
        "test"
    ]  # no temp folders left
    mtime = json_file.stat().st_mtime_ns
    with caplog.at_level(logging.WARNING):
        again = load_synthetic_text_split(tmp_path, "test", num_images=3, seed=1)
    assert json_file.stat().st_mtime_ns == mtime and len(again) == 2  # not regenerated
    assert "was built with" in caplog.text
