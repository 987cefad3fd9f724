"""SynthText converter: a tiny gt.mat written with scipy.io.savemat -> project text JSON."""

import importlib.util
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import shapely
from PIL import Image

from detectron2.data import DatasetCatalog, MetadataCatalog

from fasttcm.data.converters import synthtext, synthtext_gt
from fasttcm.data.converters.source_files import ConversionError
from fasttcm.data.datasets.text_json import load_text_json

REPO = Path(__file__).resolve().parents[2]

# Word quads as (K, 4, 2): corners top-left, top-right, bottom-right, bottom-left (x, y).
QUADS_A = np.array(
    [
        [[10.5, 20.25], [60.0, 22.0], [59.0, 40.0], [9.0, 38.0]],
        [[70.0, 20.0], [120.0, 20.0], [120.0, 40.0], [70.0, 40.0]],
        [[5.0, 50.0], [40.0, 50.0], [40.0, 70.0], [5.0, 70.0]],
        [[45.0, 50.0], [80.0, 50.0], [80.0, 70.0], [45.0, 70.0]],
        [[85.0, 50.0], [110.0, 50.0], [110.0, 70.0], [85.0, 70.0]],
    ]
)
QUAD_B = np.array([[30.0, 10.0], [90.0, 14.0], [88.0, 34.0], [28.0, 30.0]])
QUADS_C = np.array(
    [
        [[1.0, 1.0], [20.0, 1.0], [20.0, 9.0], [1.0, 9.0]],
        [[5.0, 5.0], [10.0, 5.0], [15.0, 5.0], [20.0, 5.0]],  # collinear: degenerate
        [[2.0, 2.0], [2.0, 2.0], [2.0, 2.0], [2.0, 2.0]],  # one point: degenerate
        [[0.0, 20.0], [30.0, 40.0], [30.0, 20.0], [0.0, 40.0]],  # bow-tie: kept
    ]
)


def as_word_bb(quads):
    """(K, 4, 2) quads -> SynthText's wordBB layout (2, 4, K)."""
    return np.ascontiguousarray(np.asarray(quads, dtype=np.float64).transpose(2, 1, 0))


def cell(values):
    out = np.empty((1, len(values)), dtype=object)
    for i, v in enumerate(values):
        out[0, i] = v
    return out


def write_image(path, height, width):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (20, 90, 160)).save(path)


def make_synthtext(src, *, imnames=None, word_bbs=None, txts=None):
    """A 3-image SynthText folder: multi-line text, a one-word (2, 4) wordBB, degenerate quads."""
    write_image(src / "1/ant+hill_1_0.jpg", 80, 128)
    write_image(src / "1/ant+hill_1_1.jpg", 48, 96)
    write_image(src / "2/ballet_106_0.jpg", 50, 40)
    imnames = imnames or ["1/ant+hill_1_0.jpg", "1/ant+hill_1_1.jpg", "2/ballet_106_0.jpg"]
    if word_bbs is None:
        # image 1 has one word: a plain (2, 4) array, as MATLAB stores it
        word_bbs = [as_word_bb(QUADS_A), QUAD_B.T.copy(), as_word_bb(QUADS_C)]
    if txts is None:
        txts = [
            # a char matrix: rows padded with spaces, a multi-line instance
            np.array(["Lines:\nI lost", "Kevin        ", "will     "]),
            np.array(["hello"]),
            np.array(["a b c", "d"]),
        ]
    scipy.io.savemat(
        src / "gt.mat",
        {
            "imnames": cell(imnames),
            "wordBB": cell(word_bbs),
            "txt": cell(txts),
            "charBB": cell([np.zeros((2, 4, 1))] * len(imnames)),
        },
    )
    return src


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_convert_polygons_words_and_sizes(tmp_path, caplog):
    src, dst = make_synthtext(tmp_path / "SynthText"), tmp_path / "datasets" / "synthtext"
    with caplog.at_level(logging.WARNING, logger="fasttcm.data.converters.synthtext"):
        outputs = synthtext.convert(src, dst, workers=2)

    out = outputs["train"]
    assert (out.num_images, out.num_annotations, out.num_ignored) == (3, 8, 0)
    assert out.gt_dir is None and not (tmp_path / "datasets" / "evaluation").exists()
    data = read_json(dst / "train.json")
    assert data["info"]["version"] == 1 and data["categories"] == [{"id": 1, "name": "text"}]
    assert data["images"] == [
        {"id": 1, "file_name": "1/ant+hill_1_0.jpg", "height": 80, "width": 128},
        {"id": 2, "file_name": "1/ant+hill_1_1.jpg", "height": 48, "width": 96},
        {"id": 3, "file_name": "2/ballet_106_0.jpg", "height": 50, "width": 40},
    ]
    anns = data["annotations"]
    assert [a["id"] for a in anns] == list(range(1, 9))
    assert [a["image_id"] for a in anns] == [1] * 5 + [2] + [3] * 2
    assert [a["text"] for a in anns] == ["Lines:", "I", "lost", "Kevin", "will", "hello", "a", "d"]
    assert not any(a["ignore"] for a in anns)
    # Corners come back in wordBB order; x from row 0, y from row 1.
    np.testing.assert_allclose([a["polygon"] for a in anns[:5]], QUADS_A)
    np.testing.assert_allclose(anns[5]["polygon"], QUAD_B)
    np.testing.assert_allclose(anns[6]["polygon"], QUADS_C[0])
    np.testing.assert_allclose(anns[7]["polygon"], QUADS_C[3])
    # The two degenerate quads of image 2 were skipped with one counted warning.
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "skipped 2 degenerate" in warnings[0]
    assert "image 2 (2/ballet_106_0.jpg) word 1" in warnings[0]

    # Copies under train_images/, same sub-folders; the loader reads the split back.
    assert (dst / "train_images/1/ant+hill_1_1.jpg").is_file()
    assert not (dst / "train_images").is_symlink()
    dicts = load_text_json(dst / "train.json", dst / "train_images")
    assert [len(d["annotations"]) for d in dicts] == [5, 1, 2]
    assert dicts[1]["annotations"][0]["segmentation"] == [QUAD_B.reshape(-1).tolist()]
    assert dicts[1]["annotations"][0]["text"] == "hello"


def test_word_box_count_mismatch_names_the_image(tmp_path):
    txts = [
        np.array(["Lines:\nI lost", "Kevin        ", "will\nand     "]),  # 6 words, 5 boxes
        np.array(["hello"]),
        np.array(["a b c", "d"]),
    ]
    src = make_synthtext(tmp_path / "SynthText", txts=txts)
    with pytest.raises(ConversionError, match=r"image 0 \(1/ant\+hill_1_0.jpg\): 5 word box") as e:
        synthtext.convert(src, tmp_path / "out")
    assert str(src / "gt.mat") in str(e.value) and "6 word(s)" in str(e.value)
    assert not (tmp_path / "out" / "train.json").exists()
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "out").iterdir())


def test_symlink_mode_no_overwrite_and_cli(tmp_path, capsys):
    src = make_synthtext(tmp_path / "SynthText")
    dst = tmp_path / "d" / "synthtext"
    synthtext.convert(src, dst, image_mode="symlink")
    link = dst / "train_images"
    assert link.is_symlink() and Path(os.readlink(link)) == src.resolve()
    before = (dst / "train.json").read_bytes()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        synthtext.convert(src, dst)
    assert (dst / "train.json").read_bytes() == before

    spec = importlib.util.spec_from_file_location(
        "convert_dataset", REPO / "tools/convert_dataset.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert "synthtext" in tool.CONVERTERS
    # --src may name gt.mat itself; --overwrite swaps the symlink for copies.
    args = ["synthtext", "--src", str(src / "gt.mat"), "--dst", str(dst)]
    assert tool.main(args + ["--overwrite"]) == 0
    assert "synthtext train: 3 images, 8 instances (0 don't care)" in capsys.readouterr().out
    assert not link.is_symlink() and (link / "2/ballet_106_0.jpg").is_file()
    assert (dst / "train.json").read_bytes() == before  # same content from either mode
    assert tool.main(args + ["--gt-dir", str(tmp_path / "gt")]) == 1
    assert "no evaluation ground truth" in capsys.readouterr().err


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"word_bbs": [np.zeros((3, 4, 2))]}, r"image 0 \(a.jpg\): wordBB has shape \(3, 4, 2\)"),
        ({"imnames": ["../a.jpg"]}, r"image 0: image name '../a.jpg' must be relative"),
        ({"imnames": ["missing.jpg"]}, r"image 0 \(missing.jpg\): .*cannot read the image"),
    ],
)
def test_malformed_cells_name_the_image(tmp_path, change, problem):
    src = tmp_path / "SynthText"
    write_image(src / "a.jpg", 20, 30)
    kwargs = {
        "imnames": ["a.jpg"],
        "word_bbs": [QUAD_B.T.copy()],
        "txts": [np.array(["word"])],
        **change,
    }
    make_synthtext(src, **kwargs)
    with pytest.raises(ConversionError, match=problem):
        synthtext.convert(src, tmp_path / "out")


def test_gt_mat_problems(tmp_path):
    with pytest.raises(FileNotFoundError, match="gt.mat"):
        synthtext.convert(tmp_path, tmp_path / "out")
    (tmp_path / "gt.mat").write_bytes(b"not a MATLAB file at all" * 8)
    with pytest.raises(ConversionError, match="gt.mat"):
        synthtext_gt.read_synthtext_gt(tmp_path / "gt.mat")
    scipy.io.savemat(tmp_path / "gt.mat", {"imnames": cell(["a.jpg"]), "txt": cell(["a"])})
    with pytest.raises(ConversionError, match=r"missing variable\(s\) \['wordBB'\]"):
        synthtext_gt.read_synthtext_gt(tmp_path / "gt.mat")
    scipy.io.savemat(
        tmp_path / "gt.mat",
        {"imnames": cell(["a.jpg", "b.jpg"]), "wordBB": cell([QUAD_B.T]), "txt": cell(["a"])},
    )
    with pytest.raises(ConversionError, match="different lengths"):
        synthtext_gt.read_synthtext_gt(tmp_path / "gt.mat")


def test_quad_hull_area_matches_shapely():
    rng = np.random.default_rng(0)
    quads = rng.uniform(-50, 50, size=(300, 4, 2))
    quads[:10, 2] = quads[:10, 0]  # repeated corners
    quads[10:20] = quads[10:20, :1] + rng.uniform(0, 1, (10, 4, 1)) * [[3.0, -2.0]]  # collinear
    expected = shapely.area(shapely.convex_hull(shapely.multipoints(quads)))
    np.testing.assert_allclose(synthtext.quad_hull_area(quads), expected, atol=1e-9)
    assert np.all(synthtext.quad_hull_area(quads[10:20]) < 1e-9)
    bad = np.array([[[0, 0], [np.nan, 1], [1, 1], [1, 0]], [[0, 0], [np.inf, 1], [1, 1], [1, 0]]])
    assert np.isnan(synthtext.quad_hull_area(bad)).all()


def test_registered_split(tmp_path):
    meta = MetadataCatalog.get("synthtext_train")
    assert "synthtext_train" in DatasetCatalog.list()
    assert meta.evaluator_type == "text_det" and meta.thing_classes == ["text"]
    assert meta.json_file.endswith(os.path.join("synthtext", "train.json"))
    assert meta.image_root.endswith(os.path.join("synthtext", "train_images"))
    assert not hasattr(meta, "gt_dir") and "convert_dataset.py synthtext" in meta.convert_command
    # A missing JSON fails on load with the conversion command of the split.
    with pytest.raises(FileNotFoundError, match="tools/convert_dataset.py synthtext --src"):
        load_text_json(tmp_path / "train.json", tmp_path / "train_images", "synthtext_train")


def test_parse_cell_variants():
    """(2, 4, 1) and empty wordBB, txt as a char matrix or as a cell of strings."""
    one = synthtext_gt.parse_synthtext_image(
        "gt.mat", 4, np.array(["3/x.jpg"]), as_word_bb(QUAD_B[None]), np.array(["  only\n"])
    )
    assert one.file_name == "3/x.jpg" and one.words == ["only"]
    np.testing.assert_array_equal(one.quads, QUAD_B[None])
    empty = synthtext_gt.parse_synthtext_image(
        "gt.mat", 5, "3/y.jpg", np.zeros((0, 0)), np.zeros(0, dtype="<U1")
    )
    assert empty.quads.shape == (0, 4, 2) and empty.words == []
    words_cell = np.empty(2, dtype=object)
    words_cell[0], words_cell[1] = np.array(["big\nsale"]), np.array(["now"])
    three = synthtext_gt.parse_synthtext_image(
        "gt.mat", 6, "3/z.jpg", as_word_bb(QUADS_C[:3]), words_cell
    )
    assert three.words == ["big", "sale", "now"]
    np.testing.assert_array_equal(three.quads, QUADS_C[:3])
    with pytest.raises(ConversionError, match=r"gt.mat: image 7 \(3/w.jpg\): 1 word box"):
        synthtext_gt.parse_synthtext_image("gt.mat", 7, "3/w.jpg", QUAD_B.T, words_cell)
