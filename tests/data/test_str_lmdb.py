"""STR LMDB datasets: writer/loader round trip, label filtering counts, converter, mapper,
synthetic words."""

import importlib.util
import logging
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest
import torch
from PIL import Image

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog

from fasttcm import add_fasttcm_config
from fasttcm.data.converters.source_files import ConversionError
from fasttcm.data.converters.str_lmdb import StrLmdbWriter, convert_crops_to_lmdb, parse_labels_file
from fasttcm.data.datasets.str_lmdb import (
    find_lmdb_dirs,
    load_str_lmdb,
    register_str_lmdb,
    scan_str_lmdb,
)
from fasttcm.data.datasets.synthetic_splits import load_synthetic_words_split
from fasttcm.data.str_mapper import STRDatasetMapper, WordCropRandAugment
from fasttcm.data.synthetic.word_crops import generate_word_crops
from fasttcm.structures.charset import CharsetAdapter, load_charset


def _png(h, w, seed):
    image = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".png", image)
    assert ok
    return image, data.tobytes()


LABELS = ["Hello", "x" * 26, " Caf\u00e9 ", "\u65e5\u672c", "a b", "!!!"]


@pytest.fixture
def lmdb_dir(tmp_path):
    out = tmp_path / "split" / "part1"
    with StrLmdbWriter(out) as writer:
        for i, label in enumerate(LABELS):
            writer.add(_png(8 + i, 20, i)[1], label)
    return out


def test_writer_layout_and_atomicity(lmdb_dir):
    env = lmdb.open(str(lmdb_dir), readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.get(b"num-samples") == b"6"
        assert txn.get(b"label-000000001").decode() == "Hello"
        image = cv2.imdecode(np.frombuffer(txn.get(b"image-000000003"), np.uint8), cv2.IMREAD_COLOR)
    env.close()
    assert np.array_equal(image, _png(10, 20, 2)[0])
    assert [p.name for p in lmdb_dir.parent.iterdir()] == ["part1"]  # no temporary folder left
    with pytest.raises(FileExistsError):
        with StrLmdbWriter(lmdb_dir):
            pass
    failed = lmdb_dir.parent / "failed"
    with pytest.raises(RuntimeError):
        with StrLmdbWriter(failed) as writer:
            writer.add(b"x", "y")
            raise RuntimeError("interrupted")
    assert not failed.exists() and [p.name for p in lmdb_dir.parent.iterdir()] == ["part1"]


def test_label_filtering_counts(lmdb_dir):
    kept, skipped = scan_str_lmdb(
        str(lmdb_dir), CharsetAdapter(load_charset("94_full")), max_label_length=25
    )
    assert kept == [(1, "Hello"), (3, "Cafe"), (5, "ab"), (6, "!!!")]
    assert skipped == {"too_long": 1, "empty": 1}
    kept36, skipped36 = scan_str_lmdb(
        str(lmdb_dir), CharsetAdapter(load_charset("36_lowercase")), max_label_length=25
    )
    assert kept36 == [(1, "hello"), (3, "cafe"), (5, "ab")]
    assert skipped36 == {"too_long": 1, "empty": 2}


def test_loader_finds_nested_environments_and_logs_skips(lmdb_dir, caplog):
    with StrLmdbWriter(lmdb_dir.parent / "part2") as writer:
        writer.add(_png(9, 9, 9)[1], "two")
    root = str(lmdb_dir.parent)
    assert [d.rsplit("/", 1)[1] for d in find_lmdb_dirs(root)] == ["part1", "part2"]
    with caplog.at_level(logging.INFO, logger="fasttcm.data.datasets.str_lmdb"):
        dicts = load_str_lmdb(root, dataset_name="toy")
    assert [d["text"] for d in dicts] == ["Hello", "Cafe", "ab", "!!!", "two"]
    assert dicts[-1]["image_id"] == "toy/part2/1" and dicts[-1]["image_key"] == "image-000000001"
    assert "Loaded 5 of 7 samples" in caplog.text and "'too_long': 1" in caplog.text


def test_missing_or_broken_splits_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no LMDB environment"):
        load_str_lmdb(str(tmp_path), dataset_name="empty_split")
    env = lmdb.open(str(tmp_path / "broken"), map_size=1 << 20)
    env.close()
    with pytest.raises(ValueError, match="num-samples"):
        load_str_lmdb(str(tmp_path), dataset_name="broken_split")


def test_converter_counts_skips_and_parses_both_formats(tmp_path):
    images = tmp_path / "crops"
    images.mkdir()
    for i in range(3):
        (images / f"w{i}.png").write_bytes(_png(12, 30, i)[1])
    (images / "corrupt.jpg").write_bytes(b"not an image")
    labels = tmp_path / "gt.txt"
    labels.write_text(
        "w0.png\tHello World\nw1.png\tok\n\nmissing.png\tgone\ncorrupt.jpg\tbad\nw2.png\t$5\n"
    )
    stats = convert_crops_to_lmdb(labels, images, tmp_path / "lmdb")
    assert (stats.written, stats.missing_image, stats.unreadable_image) == (3, 1, 1)
    dicts = load_str_lmdb(str(tmp_path / "lmdb"))
    assert [d["text"] for d in dicts] == ["HelloWorld", "ok", "$5"]

    icdar = tmp_path / "icdar.txt"
    icdar.write_text('w0.png, "Genaxis Theatre"\nw1.png, "say \\"hi\\""\n')
    assert [e[:2] for e in parse_labels_file(icdar, "icdar")] == [
        ("w0.png", "Genaxis Theatre"),
        ("w1.png", 'say "hi"'),
    ]
    bad = tmp_path / "bad.txt"
    bad.write_text("w0.png\tok\nno-tab-here\n")
    with pytest.raises(ConversionError, match="bad.txt, line 2"):
        parse_labels_file(bad)


def _mapper_cfg():
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.MODEL.RECOGNIZER.IMAGE_SIZE = (16, 48)
    cfg.INPUT.FORMAT = "RGB"
    return cfg


def test_mapper_reads_resizes_and_handles_unreadable_crops(tmp_path):
    out = tmp_path / "lmdb"
    image, data = _png(10, 30, 0)
    with StrLmdbWriter(out) as writer:
        writer.add(data, "abc")
        writer.add(b"garbage", "bad")
    dicts = load_str_lmdb(str(out), dataset_name="m")
    cfg = _mapper_cfg()
    test_mapper = STRDatasetMapper(cfg, is_train=False)
    sample = test_mapper(dicts[0])
    assert sample["image"].shape == (3, 16, 48) and sample["image"].dtype == torch.uint8
    assert (sample["text"], sample["height"], sample["width"]) == ("abc", 10, 30)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    expected = np.asarray(Image.fromarray(rgb).resize((48, 16), Image.BICUBIC))
    assert np.array_equal(sample["image"].permute(1, 2, 0).numpy(), expected)  # RGB, PIL bicubic
    broken = test_mapper(dicts[1])
    assert broken["image_error"] == "unreadable" and broken["image"].shape == (3, 16, 48)
    assert (
        STRDatasetMapper(cfg, is_train=True)(dicts[1]) is None
    )  # training: another sample is drawn
    cfg.INPUT.FORMAT = "BGR"
    bgr = STRDatasetMapper(cfg, is_train=False)(dicts[0])["image"]
    assert torch.equal(bgr, sample["image"].flip(0))


def test_rand_augment_ops_keep_shape_and_type():
    image = np.random.default_rng(0).integers(0, 256, size=(20, 60, 3), dtype=np.uint8)
    aug = WordCropRandAugment(num_ops=1, magnitude=5, op_prob=1.0)
    for name in aug.names:
        out = aug.ops[name](image.copy(), aug.level, -1.0)
        assert out.shape == image.shape and out.dtype == np.uint8, name
    assert not np.array_equal(aug.ops["invert"](image, 0.5, 1.0), image)
    np.random.seed(0)
    assert aug(image).shape == image.shape
    with pytest.raises(ValueError, match="magnitude"):
        WordCropRandAugment(magnitude=11)


def test_synthetic_word_crops_are_deterministic_and_loadable(tmp_path):
    a = generate_word_crops(tmp_path / "a", 6, seed=3)
    b = generate_word_crops(tmp_path / "b", 6, seed=3)
    da, db = load_str_lmdb(str(a)), load_str_lmdb(str(b))
    assert [d["text"] for d in da] == [d["text"] for d in db] and len(da) == 6
    assert all(" " not in d["text"] and 0 < len(d["text"]) <= 25 for d in da)
    mapper = STRDatasetMapper(_mapper_cfg(), is_train=False)
    assert torch.equal(mapper(da[0])["image"], mapper(db[0])["image"])
    with pytest.raises(ValueError, match="unknown options"):
        generate_word_crops(tmp_path / "c", 2, seed=0, fancy=True)


def test_registration_and_generation_on_first_load(tmp_path, lmdb_dir):
    # builtin names are registered at import (fasttcm.data.datasets.builtin)
    assert MetadataCatalog.get("str_iiit5k_test").evaluator_type == "str"
    assert MetadataCatalog.get("str_iiit5k_test").expected_num_samples == 3000
    assert MetadataCatalog.get("synthetic_words_test").evaluator_type == "str"
    assert {"str_real_train", "str_synth_train", "synthetic_words_train"} <= set(
        DatasetCatalog.list()
    )

    register_str_lmdb("toy_str_split", str(lmdb_dir.parent))
    assert [d["text"] for d in DatasetCatalog.get("toy_str_split")] == [
        "Hello",
        "Cafe",
        "ab",
        "!!!",
    ]
    register_str_lmdb("absent_str_split", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="absent_str_split"):
        DatasetCatalog.get("absent_str_split")

    dicts = load_synthetic_words_split(
        str(tmp_path), "tiny", num_crops=4, seed=7, dataset_name="tiny_words"
    )
    assert len(dicts) == 4 and (tmp_path / "synthetic_words" / "tiny" / "data.mdb").is_file()
    assert not [p for p in (tmp_path / "synthetic_words").iterdir() if p.name.startswith(".")]
    again = load_synthetic_words_split(
        str(tmp_path), "tiny", num_crops=4, seed=7, dataset_name="tiny_words"
    )
    assert [d["text"] for d in again] == [d["text"] for d in dicts]


def test_create_lmdb_dataset_tool(tmp_path, capsys):
    path = Path(__file__).resolve().parents[2] / "tools" / "create_lmdb_dataset.py"
    spec = importlib.util.spec_from_file_location("create_lmdb_dataset", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    (tmp_path / "a.png").write_bytes(_png(10, 20, 0)[1])
    (tmp_path / "gt.txt").write_text('a.png, "Word"\nb.png, "gone"\n')
    args = ["--images", str(tmp_path), "--labels", str(tmp_path / "gt.txt"), "--format", "icdar"]
    assert tool.main(args + ["--out", str(tmp_path / "db")]) == 0
    out = capsys.readouterr().out
    assert "Wrote 1 samples" in out and "skipped 1 missing" in out
    assert [d["text"] for d in load_str_lmdb(str(tmp_path / "db"))] == ["Word"]
    assert tool.main(args + ["--out", str(tmp_path / "db")]) == 1  # exists, no --overwrite
    assert "already exists" in capsys.readouterr().err
