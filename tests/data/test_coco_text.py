"""COCO-format text datasets: the loader, its registration, the converter and their errors."""

import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from detectron2.data import DatasetCatalog, MetadataCatalog

from fasttcm.data.converters.coco_text import (
    ADELAIDET_CHARSET,
    coco_to_text_json,
    convert_json_file,
    decode_rec,
)
from fasttcm.data.datasets.coco_text import load_coco_text_json, register_coco_text_instances
from fasttcm.data.datasets.text_json import load_text_json
from fasttcm.data.datasets.text_registration import register_text_instances
from fasttcm.data.mappers import TextDatasetMapper
from tests.common import QUICK_DETECTOR, load_config

REPO = Path(__file__).resolve().parents[2]

POLYS = {
    1: [10, 10, 60, 10, 60, 30, 10, 30],
    2: [5, 40, 40, 40, 40, 60, 5, 60],
    3: [70, 5, 90, 5, 90, 25, 70, 25],
    4: [20, 70, 80, 70, 80, 90, 20, 90],
}


def _rec(word, length=25, pad=96):
    return [ADELAIDET_CHARSET.index(c) for c in word] + [pad] * (length - len(word))


def _coco(text_field="text"):
    """Two images; annotation 3 is iscrowd, annotation 4 is '###'."""
    words = {1: "Hello", 2: "w0rld!", 3: "crowd", 4: "###"}
    anns = []
    for ann_id, image_id in ((1, 1), (2, 1), (3, 2), (4, 2)):
        ann = {
            "id": ann_id,
            "image_id": image_id,
            "category_id": 1,
            "segmentation": [POLYS[ann_id]],
            "bbox": [0, 0, 1, 1],
            "iscrowd": int(ann_id == 3),
        }
        if text_field == "text":
            ann["text"] = words[ann_id]
        else:
            ann["rec"] = _rec(words[ann_id])
        anns.append(ann)
    return {
        "info": {"version": "1.0"},
        "images": [
            {"id": 1, "file_name": "a.jpg", "height": 100, "width": 100},
            {"id": 2, "file_name": "sub/b.jpg", "height": 100, "width": 100},
        ],
        "annotations": anns,
        "categories": [{"id": 1, "name": "text"}],
    }


@pytest.fixture
def root(tmp_path):
    image_root = tmp_path / "images"
    (image_root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "sub/b.jpg"):
        Image.fromarray(rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)).save(image_root / name)
    return tmp_path


def _write(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _native(root):
    """The project text JSON with the same content as :func:`_coco`."""
    data = coco_to_text_json(_coco(), "x", description="native")
    return _write(root / "native.json", data)


@pytest.mark.parametrize("text_field", ["text", "rec"])
def test_loader_matches_native_loader(root, text_field):
    coco_file = _write(root / f"coco_{text_field}.json", _coco(text_field))
    dicts = load_coco_text_json(coco_file, root / "images", text_field=text_field)
    expected = load_text_json(_native(root), root / "images")
    assert dicts == expected
    anns = [a for d in dicts for a in d["annotations"]]
    assert [a["text"] for a in anns] == ["Hello", "w0rld!", "crowd", "###"]
    assert [a["ignore"] for a in anns] == [False, False, True, True]
    assert anns[0]["segmentation"] == [[float(v) for v in POLYS[1]]]
    assert anns[0]["bbox"] == [10.0, 10.0, 60.0, 30.0]
    assert dicts[1]["file_name"] == str((root / "images/sub/b.jpg").resolve())


def test_round_trip_native_to_coco_to_loader(root):
    native = _native(root)
    coco_file = root / "out" / "native.coco.json"
    convert_json_file("tococo", native, coco_file)
    coco = json.loads(coco_file.read_text())
    assert [a["iscrowd"] for a in coco["annotations"]] == [0, 0, 1, 1]
    assert coco["annotations"][0]["bbox"] == [10, 10, 50, 20]
    assert coco["annotations"][0]["area"] == 1000
    assert load_coco_text_json(coco_file, root / "images") == load_text_json(
        native, root / "images"
    )
    back = root / "back.json"
    convert_json_file("fromcoco", coco_file, back)
    assert load_text_json(back, root / "images") == load_text_json(native, root / "images")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        convert_json_file("tococo", native, coco_file)


def test_registration_metadata_and_mapper(root):
    coco_file = _write(root / "coco.json", _coco("rec"))
    name, native_name = "_test_coco_text_rec", "_test_coco_text_native"
    try:
        register_coco_text_instances(name, {}, coco_file, root / "images", text_field="rec")
        register_text_instances(native_name, {}, _native(root), root / "images")
        meta, native_meta = MetadataCatalog.get(name), MetadataCatalog.get(native_name)
        assert set(meta.as_dict()) == set(native_meta.as_dict())
        assert meta.evaluator_type == "text_det" and meta.thing_classes == ["text"]
        assert meta.json_file == str(coco_file)
        dicts = DatasetCatalog.get(name)
        assert dicts == DatasetCatalog.get(native_name)

        # Without the random rotate/scale augmentation the 100x100 image fits the 128 crop
        # whole, so both instances survive whatever the random state.
        cfg = load_config(QUICK_DETECTOR, "INPUT.TEXT_AUG.ENABLED", False)
        out = TextDatasetMapper(cfg, is_train=True)(copy.deepcopy(dicts[0]))
        assert out["image"].dtype == torch.uint8 and out["image"].shape[0] == 3
        inst = out["instances"]
        assert sorted(inst.gt_texts) == ["Hello", "w0rld!"]
        assert not inst.gt_ignore.any()
        assert "shrink_map" in out["db_targets"]
    finally:
        for n in (name, native_name):
            if n in DatasetCatalog.list():
                DatasetCatalog.remove(n)
                MetadataCatalog.remove(n)
    with pytest.raises(ValueError, match="text_field must be one of"):
        register_coco_text_instances(name, {}, coco_file, root, text_field="word")
    with pytest.raises(ValueError, match="repeats the characters"):
        register_coco_text_instances(name, {}, coco_file, root, text_field="rec", charset="aa")


def test_rec_convention():
    assert len(ADELAIDET_CHARSET) == 95 and ADELAIDET_CHARSET[0] == " "
    assert decode_rec(_rec("Ab c", pad=95), ADELAIDET_CHARSET, "x") == ("Ab c", 0)
    assert decode_rec(_rec("Ab", pad=96), ADELAIDET_CHARSET, "x") == ("Ab", 0)
    # a marker followed by a character: an unknown character, dropped and counted
    assert decode_rec([33, 95, 34, 96, 96], ADELAIDET_CHARSET, "x") == ("AB", 1)
    assert decode_rec([0, 1, 2, 3], "abc", "x") == ("abc", 0)
    with pytest.raises(ValueError, match="x: 'rec' must be a list of non-negative integers"):
        decode_rec([1, -1], ADELAIDET_CHARSET, "x")


def _bad(edit):
    data = _coco()
    edit(data)
    return data


def _set(obj, key, value):
    obj[key] = value


BAD_CASES = {
    "missing_images": (lambda d: d.pop("images"), "missing or non-list top-level key 'images'"),
    "image_key": (
        lambda d: d["images"][0].pop("height"),
        r"images\[0\] lacks key\(s\) \['height'\]",
    ),
    "image_id_type": (lambda d: _set(d["images"][0], "id", "1"), "id must be an integer"),
    "escape": (
        lambda d: _set(d["images"][1], "file_name", "../b.jpg"),
        r"images\[1\] \(id 2\): file_name '../b.jpg' escapes the image root",
    ),
    "absolute": (
        lambda d: _set(d["images"][1], "file_name", "/etc/b.jpg"),
        "escapes the image root",
    ),
    "ann_key": (
        lambda d: d["annotations"][1].pop("segmentation"),
        r"annotations\[1\] lacks key\(s\) \['segmentation'\]",
    ),
    "unknown_image": (
        lambda d: _set(d["annotations"][1], "image_id", 7),
        "annotation 2 \\(image 7\\) refers to an image id that is not in 'images'",
    ),
    "duplicate": (lambda d: _set(d["annotations"][1], "id", 1), "duplicate annotation id 1"),
    "text_type": (
        lambda d: _set(d["annotations"][0], "text", 5),
        r"annotation 1 \(image 1\): 'text' must be a string",
    ),
    "odd": (
        lambda d: _set(d["annotations"][2], "segmentation", [[1, 2, 3, 4, 5, 6, 7]]),
        r"annotation 3 \(image 2\): the polygon has an odd number of coordinates \(7\)",
    ),
    "non_numeric": (
        lambda d: _set(d["annotations"][3], "segmentation", [[1, 2, "3", 4, 5, 6]]),
        r"annotation 4 \(image 2\): the polygon must be a flat list of numbers",
    ),
    "rle": (
        lambda d: _set(d["annotations"][0], "segmentation", {"size": [9, 9], "counts": "ab"}),
        r"annotation 1 \(image 1\): 'segmentation' is an RLE mask; text instances need a polygon",
    ),
    "two_polygons": (
        lambda d: _set(d["annotations"][0], "segmentation", [POLYS[1], POLYS[2]]),
        "exactly one polygon .*got 2 polygon",
    ),
    "iscrowd": (
        lambda d: _set(d["annotations"][0], "iscrowd", 2),
        r"annotation 1 \(image 1\): 'iscrowd' must be 0 or 1",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_files_name_the_file_and_id(root, case):
    edit, message = BAD_CASES[case]
    path = _write(root / "bad.json", _bad(edit))
    with pytest.raises(ValueError, match=message) as info:
        load_coco_text_json(path, root / "images")
    assert str(path) in str(info.value)


def test_bad_files_other(root):
    with pytest.raises(FileNotFoundError, match="COCO annotation file .* does not exist"):
        load_coco_text_json(root / "nope.json", root / "images")
    path = root / "broken.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="not a valid UTF-8 JSON file"):
        load_coco_text_json(path, root / "images")
    path = _write(root / "rec.json", _coco("text"))
    with pytest.raises(ValueError, match=r"annotations\[0\] lacks key\(s\) \['rec'\]"):
        load_coco_text_json(path, root / "images", text_field="rec")
    bad_rec = _coco("rec")
    bad_rec["annotations"][0]["rec"] = [1, "a"]
    path = _write(root / "rec2.json", bad_rec)
    with pytest.raises(ValueError, match=r"annotation 1 \(image 1\): 'rec' must be a list"):
        load_coco_text_json(path, root / "images", text_field="rec")


def _tool():
    spec = importlib.util.spec_from_file_location(
        "convert_dataset", REPO / "tools/convert_dataset.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_cli_tococo_fromcoco(root, capsys):
    tool = _tool()
    native = _native(root)
    coco_file = root / "t.coco.json"
    assert tool.main(["tococo", "--src", str(native), "--dst", str(coco_file)]) == 0
    assert "tococo: 2 images, 4 instances" in capsys.readouterr().out
    assert tool.main(["tococo", "--src", str(native), "--dst", str(coco_file)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    rec_file = _write(root / "rec.json", _coco("rec"))
    args = ["fromcoco", "--src", str(rec_file), "--dst", str(root / "from_rec.json")]
    assert tool.main(args + ["--text-field", "rec"]) == 0
    images = root / "images"
    assert load_text_json(root / "from_rec.json", images) == load_text_json(native, images)
    bad = _write(root / "bad.json", _bad(BAD_CASES["odd"][0]))
    assert tool.main(["fromcoco", "--src", str(bad), "--dst", str(root / "o.json")]) == 1
    assert "odd number of coordinates" in capsys.readouterr().err


def test_cli_coco_flag_writes_each_split(tmp_path):
    from tests.data.test_converters import make_icdar2015

    src, dst = tmp_path / "raw", tmp_path / "d" / "icdar2015"
    make_icdar2015(src)
    args = ["icdar2015", "--src", str(src), "--dst", str(dst), "--gt-dir", str(tmp_path / "gt")]
    assert _tool().main(args + ["--coco"]) == 0
    for split in ("train", "test"):
        images = dst / f"{split}_images"
        coco = load_coco_text_json(dst / f"{split}.coco.json", images)
        assert coco == load_text_json(dst / f"{split}.json", images)
        assert any(a["ignore"] for d in coco for a in d["annotations"]) or split == "test"
