"""DOTA labelTxt parser, dataset dicts, metadata and registration."""

import logging

import cv2
import numpy as np
import pytest

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from fasttcm.data.datasets.builtin import SYNTHETIC_AERIAL_SPLITS, register_all_dota
from fasttcm.data.datasets.dota import load_dota_dicts, register_dota
from fasttcm.data.datasets.dota_labels import DOTAFormatError, read_dota_labels
from fasttcm.data.datasets.dota_meta import (
    DOTA_V1_0_CLASSES,
    canonical_dota_version,
    dota_class_names,
    dota_metadata,
)
from fasttcm.utils.geometry import xywha_to_poly

V10 = list(DOTA_V1_0_CLASSES)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_metadata_of_both_versions():
    assert len(dota_class_names("1.0")) == 15 and dota_class_names("dota10")[0] == "plane"
    v15 = dota_metadata("dota15")
    assert v15["thing_classes"][-1] == "container-crane" and len(v15["thing_classes"]) == 16
    assert len(v15["thing_colors"]) == 16 and len(set(v15["thing_colors"])) == 16
    assert v15["evaluator_type"] == "dota" and v15["dota_version"] == "1.5"
    assert canonical_dota_version("v1.0") == "1.0"
    with pytest.raises(ValueError, match="unknown DOTA version"):
        dota_class_names("2.0")


def test_parse_v1_file_with_headers_and_difficulty(tmp_path):
    path = _write(
        tmp_path / "P0001.txt",
        "imagesource:GoogleEarth\n"
        "gsd:0.146343590398\n"
        "10 10 50 10 50 30 10 30 plane 0\n"
        "\n"
        "100.5 100 140 100 140 120 100 120 small-vehicle 1\n"
        "200 200 260 200 260 230 200 230 harbor\n"  # 9 fields: difficulty 0
        "300 300 330 300 330 310 300 310 ship 2\n",
    )
    labels = read_dota_labels(path, V10)
    assert labels.image_source == "GoogleEarth" and labels.gsd == pytest.approx(0.146343590398)
    np.testing.assert_array_equal(labels.category_ids, [0, 4, 12, 6])
    np.testing.assert_array_equal(labels.difficulty, [0, 1, 0, 2])
    np.testing.assert_array_equal(labels.difficult, [False, True, False, True])
    np.testing.assert_array_equal(labels.line_numbers, [3, 5, 6, 7])
    np.testing.assert_allclose(labels.polys[1], [100.5, 100, 140, 100, 140, 120, 100, 120])


def test_v15_class_and_null_gsd(tmp_path):
    path = _write(tmp_path / "a.txt", "gsd:null\n0 0 40 0 40 20 0 20 container-crane 0\n")
    labels = read_dota_labels(path, dota_class_names("1.5"))
    assert labels.gsd is None and labels.category_ids.tolist() == [15]
    with pytest.raises(DOTAFormatError, match=r"a\.txt:2: unknown class 'container-crane'"):
        read_dota_labels(path, V10)


@pytest.mark.parametrize(
    "line, message",
    [
        ("10 10 50 10 50 30 10 plane", r"bad\.txt:2: expected .* got 8 fields"),
        ("10 10 50 10 50 30 10 plane 0", r"bad\.txt:2: the first 8 fields must be numbers"),
        ("10 10 50 10 50 30 10 30 plane 0 extra", r"bad\.txt:2: .*got 11 fields"),
        ("10 10 50 10 50 30 ten 30 plane 0", r"bad\.txt:2: the first 8 fields must be numbers"),
        ("10 10 50 10 50 30 10 30 aeroplane 0", r"bad\.txt:2: unknown class 'aeroplane'"),
        ("10 10 50 10 50 30 10 30 plane -1", r"bad\.txt:2: difficulty must be"),
        ("10 10 50 10 50 30 10 30 plane x", r"bad\.txt:2: difficulty must be"),
        ("10 10 nan 10 50 30 10 30 plane 0", r"bad\.txt:2: non-finite coordinate"),
        ("10 10 50 10 50 10 10 10 plane 0", r"bad\.txt:2: zero-area quadrilateral"),
        ("gsd:abc", r"bad\.txt:2: 'gsd:' header with a non-number"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, line, message):
    path = _write(tmp_path / "bad.txt", "imagesource:GoogleEarth\n" + line + "\n")
    with pytest.raises(DOTAFormatError, match=message):
        read_dota_labels(path, V10)


def test_zero_area_policies(tmp_path, caplog):
    path = _write(
        tmp_path / "z.txt",
        "0 0 10 0 10 10 0 10 plane 0\n5 5 5 5 5 5 5 5 ship 0\n20 20 30 20 30 30 20 30 ship 1\n",
    )
    with caplog.at_level(logging.WARNING):
        skipped = read_dota_labels(path, V10, degenerate="skip")
    assert skipped.category_ids.tolist() == [0, 6] and skipped.line_numbers.tolist() == [1, 3]
    assert any("z.txt:2: skipping zero-area" in r.getMessage() for r in caplog.records)
    kept = read_dota_labels(path, V10, degenerate="keep")
    assert len(kept) == 3
    with pytest.raises(ValueError, match="degenerate must be one of"):
        read_dota_labels(path, V10, degenerate="ignore")


def test_dataset_dicts(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labelTxt"
    images.mkdir()
    labels.mkdir()
    cv2.imwrite(str(images / "P0001.png"), np.zeros((60, 90, 3), np.uint8))
    cv2.imwrite(str(images / "P0002.jpg"), np.zeros((40, 30, 3), np.uint8))
    box = np.array([45.0, 30.0, 40.0, 20.0, 30.0])
    poly = xywha_to_poly(box)[0]
    _write(labels / "P0001.txt", " ".join(f"{v:.6f}" for v in poly) + " bridge 1\n")
    _write(labels / "P0002.txt", "imagesource:GoogleEarth\ngsd:0.1\n")

    dicts = load_dota_dicts(images, labels, V10)
    assert [d["image_id"] for d in dicts] == ["P0001", "P0002"]
    assert (dicts[0]["height"], dicts[0]["width"]) == (60, 90)
    assert (dicts[1]["height"], dicts[1]["width"]) == (40, 30)  # non-PNG size from the header
    (ann,) = dicts[0]["annotations"]
    assert ann["bbox_mode"] == BoxMode.XYWHA_ABS and ann["category_id"] == 2
    assert ann["difficult"] is True
    np.testing.assert_allclose(ann["bbox"], box, atol=1e-5)
    np.testing.assert_allclose(ann["poly"], poly, atol=1e-5)
    assert dicts[1]["annotations"] == []

    unlabelled = load_dota_dicts(images, None, V10)
    assert all("annotations" not in d for d in unlabelled)

    (labels / "P0002.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"P0002\.jpg has no label file .*P0002\.txt"):
        load_dota_dicts(images, labels, V10)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dota_dicts(tmp_path / "missing", labels, V10)


@pytest.fixture
def isolated_catalogs():
    """Let a test register names that may already exist, and put everything back afterwards."""
    saved_data = dict(DatasetCatalog)
    saved_meta = dict(MetadataCatalog)
    DatasetCatalog.clear()
    MetadataCatalog.clear()
    yield
    DatasetCatalog.clear()
    MetadataCatalog.clear()
    DatasetCatalog.update(saved_data)
    MetadataCatalog.update(saved_meta)


def test_register_dota_loads_lazily_with_prepare(tmp_path, isolated_catalogs):
    calls = []

    def prepare():
        calls.append(1)
        (tmp_path / "images").mkdir()
        (tmp_path / "labelTxt").mkdir()
        cv2.imwrite(str(tmp_path / "images" / "A.png"), np.zeros((8, 8, 3), np.uint8))
        _write(tmp_path / "labelTxt" / "A.txt", "1 1 5 1 5 4 1 4 plane 0\n")

    register_dota(
        "dota_test_lazy",
        str(tmp_path / "images"),
        str(tmp_path / "labelTxt"),
        "dota10",
        gt_dir=str(tmp_path / "labelTxt"),
        prepare=prepare,
    )
    assert calls == []  # nothing happens at registration
    meta = MetadataCatalog.get("dota_test_lazy")
    assert meta.evaluator_type == "dota" and meta.thing_classes == V10
    assert meta.gt_dir == str(tmp_path / "labelTxt")
    (record,) = DatasetCatalog.get("dota_test_lazy")
    assert calls == [1] and record["annotations"][0]["category_id"] == 0


def test_register_all_dota_names_and_layout(tmp_path, isolated_catalogs):
    register_all_dota(str(tmp_path))
    names = set(DatasetCatalog.list())
    for prefix in ("dota10", "dota15"):
        assert {f"{prefix}_{s}" for s in ("train", "val", "test")} <= names
        for scheme in ("ss1024", "ms1024"):
            assert {f"{prefix}_{s}_{scheme}" for s in ("train", "val", "trainval", "test")} <= names
    assert {f"synthetic_aerial_{s}" for s in ("train", "val", "test")} <= names
    assert {f"synthetic_aerial_{s}_ss1024" for s in ("train", "val", "test")} <= names
    assert set(SYNTHETIC_AERIAL_SPLITS) == {"train", "val", "test"}
    # Distinct seeds: the val split chooses test-time settings without repeating test images.
    assert len({seed for _, seed in SYNTHETIC_AERIAL_SPLITS.values()}) == 3

    trainval = MetadataCatalog.get("dota15_trainval_ss1024")
    assert len(trainval.thing_classes) == 16 and trainval.dota_version == "1.5"
    assert trainval.gt_dir == [
        str(tmp_path / "dota15" / "train" / "labelTxt"),
        str(tmp_path / "dota15" / "val" / "labelTxt"),
    ]
    assert trainval.image_root == str(tmp_path / "dota15_split" / "ss1024" / "trainval" / "images")
    test = MetadataCatalog.get("dota10_test_ss1024")
    assert test.gt_dir is None and test.ann_dir is None
    synth = MetadataCatalog.get("synthetic_aerial_test_ss1024")
    assert synth.gt_dir == str(tmp_path / "synthetic_aerial" / "test" / "labelTxt")
    # a split whose files are missing registers, and fails clearly only when loaded
    with pytest.raises(FileNotFoundError, match=r"dota10[/\\]val[/\\]images does not exist"):
        DatasetCatalog.get("dota10_val")


def test_synthetic_splits_are_generated_and_cut_on_first_load(
    tmp_path, isolated_catalogs, monkeypatch
):
    import fasttcm.data.datasets.builtin as builtin

    monkeypatch.setitem(builtin.SYNTHETIC_AERIAL_SPLITS, "test", (1, 1))  # one image, seed 1
    register_all_dota(str(tmp_path))
    assert not (tmp_path / "synthetic_aerial").exists()  # nothing generated at registration
    patches = DatasetCatalog.get("synthetic_aerial_test_ss1024")
    raw = tmp_path / "synthetic_aerial" / "test"
    assert sorted(p.name for p in (raw / "images").iterdir()) == ["A0000.png"]
    h, w = cv2.imread(str(raw / "images" / "A0000.png")).shape[:2]
    assert 2048 <= min(h, w) and max(h, w) <= 4096
    assert len(patches) >= 4 and all((p["height"], p["width"]) == (1024, 1024) for p in patches)
    assert all(p["image_id"].startswith("A0000__1__") for p in patches)
    assert sum(len(p["annotations"]) for p in patches) > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # a second load reuses the files
    stamp = (raw / "images" / "A0000.png").stat().st_mtime
    assert len(DatasetCatalog.get("synthetic_aerial_test")) == 1
    assert (raw / "images" / "A0000.png").stat().st_mtime == stamp
