"""DOTA split into patches and merge back (docs/protocols.md, "DOTA split and merge")."""

import json
import os

import cv2
import numpy as np
import pytest
import shapely

from fasttcm.data.datasets.dota_labels import read_dota_labels
from fasttcm.data.datasets.dota_meta import DOTA_V1_0_CLASSES
from fasttcm.data.dota_patch_names import PatchOrigin, format_patch_name, parse_patch_name
from fasttcm.data.dota_split import (
    SplitConfig,
    load_split_config,
    split_dataset,
    split_image,
    window_origins,
)
from fasttcm.data.synthetic.aerial import generate_aerial_dataset
from fasttcm.evaluation.dota_merge import merge_patch_detections, merge_task1_dir
from fasttcm.evaluation.protocols.dota_task1_io import (
    ClassDetections,
    read_task1_dir,
    write_task1_dir,
)
from fasttcm.utils.geometry import poly_to_xywha, xywha_to_poly

CLASSES = list(DOTA_V1_0_CLASSES)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_window_origins_are_the_devkits():
    assert window_origins(2000, 1024, 200) == [0, 824, 976]
    assert window_origins(1500, 1024, 200) == [0, 476]
    assert window_origins(1024, 1024, 200) == [0]
    assert window_origins(500, 1024, 200) == [0]
    assert window_origins(1848, 1024, 200) == [0, 824]
    assert window_origins(4000, 1024, 500) == [0, 524, 1048, 1572, 2096, 2620, 2976]
    with pytest.raises(ValueError, match="gap"):
        window_origins(100, 64, 64)


def test_patch_names_round_trip():
    assert format_patch_name("P0003", 1.0, 824, 0) == "P0003__1__824___0"
    assert format_patch_name("P0003", 0.5, 0, 476) == "P0003__0.5__0___476"
    assert parse_patch_name("dir/P0003__1.5__10___20.png") == PatchOrigin("P0003", 1.5, 10, 20)
    assert parse_patch_name("my__img__1__0___0") == PatchOrigin("my__img", 1.0, 0, 0)
    assert parse_patch_name("P0007") == PatchOrigin("P0007", 1.0, 0, 0)  # an unsplit image
    with pytest.raises(ValueError, match="rate"):
        parse_patch_name("P1__0__0___0")


def test_split_configs_load():
    folder = os.path.join(REPO, "datasets", "dota_split_configs")
    names = sorted(os.listdir(folder))
    assert names == sorted(
        f"{s}_{p}.json" for s in ("ss", "ms") for p in ("train", "val", "trainval", "test")
    )
    ss = load_split_config(os.path.join(folder, "ss_trainval.json"))
    assert (ss.patch_size, ss.gap, ss.rates, ss.iof_thr) == (1024, 200, (1.0,), 0.7)
    assert ss.source_splits == ("train", "val") and ss.output == "ss1024/trainval"
    ms = load_split_config(os.path.join(folder, "ms_test.json"))
    assert (ms.gap, ms.rates, ms.source_splits) == (500, (0.5, 1.0, 1.5), ("test",))


def test_bad_split_config_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"patch_size": 1024, "gaps": [200]}))
    with pytest.raises(ValueError, match=r"bad\.json: unknown keys \['gaps'\]"):
        load_split_config(str(path))
    path.write_text(json.dumps({"patch_size": 100, "gap": 100}))
    with pytest.raises(ValueError, match=r"bad\.json: .*gap < patch_size"):
        load_split_config(str(path))


def _write_scene(folder, image, lines):
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labelTxt").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "images" / "S0001.png"), image)
    (folder / "labelTxt" / "S0001.txt").write_text("imagesource:test\n" + "".join(lines))


def test_split_image_pixels_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (700, 900, 3), dtype=np.uint8), (0, 0), 2)
    objects = [
        ([10, 10, 60, 10, 60, 40, 10, 40], "plane", 1),  # inside the first window only
        ([380, 100, 460, 100, 460, 140, 380, 140], "ship", 0),  # cut by a window border
        ([395, 300, 405, 300, 405, 330, 395, 330], "small-vehicle", 0),  # mostly outside one
        ([10, 10, 10, 10, 10, 10, 10, 10], "ship", 0),  # zero area: left out
    ]
    _write_scene(tmp_path, image, [" ".join(map(str, p)) + f" {c} {d}\n" for p, c, d in objects])
    config = SplitConfig(patch_size=400, gap=100, padding_value=(1, 2, 3))
    out_img, out_lab = tmp_path / "out" / "images", tmp_path / "out" / "labelTxt"
    out_img.mkdir(parents=True)
    out_lab.mkdir(parents=True)
    n = split_image(
        str(tmp_path / "images" / "S0001.png"),
        str(tmp_path / "labelTxt" / "S0001.txt"),
        str(out_img),
        str(out_lab),
        config,
        CLASSES,
    )
    xs, ys = window_origins(900, 400, 100), window_origins(700, 400, 100)
    assert (xs, ys) == ([0, 300, 500], [0, 300])
    assert n == 6 and len(os.listdir(out_img)) == 6 and len(os.listdir(out_lab)) == 6
    for x in xs:
        for y in ys:
            patch = cv2.imread(str(out_img / f"S0001__1__{x}___{y}.png"))
            np.testing.assert_array_equal(patch, image[y : y + 400, x : x + 400])

    def labels(name):
        lab = read_dota_labels(out_lab / f"{name}.txt", CLASSES)
        return lab.polys, [CLASSES[c] for c in lab.category_ids], lab.difficulty.tolist()

    polys, names, diff = labels("S0001__1__0___0")
    # ship: 20 of its 80 px width inside, small vehicle: 5 of 10 -> truncated, difficult 2
    assert names == ["plane", "ship", "small-vehicle"] and diff == [1, 2, 2]
    np.testing.assert_allclose(polys[0], objects[0][0])
    np.testing.assert_allclose(polys[1], [380, 100, 400, 100, 400, 140, 380, 140])
    np.testing.assert_allclose(polys[2], [395, 300, 400, 300, 400, 330, 395, 330])
    polys, names, diff = labels("S0001__1__300___0")
    assert names == ["ship", "small-vehicle"] and diff == [0, 0]
    np.testing.assert_allclose(polys[0], np.array(objects[1][0]) - [300, 0] * 4)
    polys, names, diff = labels("S0001__1__0___300")
    assert names == ["small-vehicle"] and diff == [2]
    polys, names, diff = labels("S0001__1__300___300")
    assert names == ["small-vehicle"] and diff == [0]
    np.testing.assert_allclose(polys[0], np.array(objects[2][0]) - [300, 300] * 4)
    assert labels("S0001__1__500___0")[1] == []


def test_truncation_ratio_and_vertex_order_follow_shapely(tmp_path):
    # a rotated rectangle cut by a window corner: the piece's polygon, area ratio and order
    box = np.array([380.0, 370.0, 90.0, 40.0, 35.0])
    poly = xywha_to_poly(box)[0]
    _write_scene(
        tmp_path,
        np.zeros((600, 600, 3), np.uint8),
        [" ".join(f"{v:.3f}" for v in poly) + " bridge 0\n"],
    )
    split_dataset(
        [str(tmp_path / "images")],
        [str(tmp_path / "labelTxt")],
        str(tmp_path / "out"),
        SplitConfig(patch_size=400, gap=100),
        progress=False,
    )
    whole = shapely.Polygon(poly.reshape(4, 2))
    for x in (0, 200):
        for y in (0, 200):
            lab = read_dota_labels(
                tmp_path / "out" / "labelTxt" / f"S0001__1__{x}___{y}.txt", CLASSES
            )
            ratio = whole.intersection(shapely.box(x, y, x + 400, y + 400)).area / whole.area
            if ratio == 0:
                assert len(lab) == 0
                continue
            assert len(lab) == 1
            assert lab.difficulty[0] == (0 if ratio >= 0.7 else 2)
            piece = shapely.Polygon(lab.polys[0].reshape(4, 2) + [x, y])
            if ratio == 1:
                np.testing.assert_allclose(lab.polys[0] + [x, y] * 4, poly, atol=6e-3)
            else:  # the devkit's rule: 4 vertices kept, 5 -> shortest edge merged to its midpoint
                inter = shapely.orient_polygons(
                    whole.intersection(shapely.box(x, y, x + 400, y + 400))
                )
                corners = np.array(inter.exterior.coords)[:-1]
                if len(corners) == 5:
                    edges = np.linalg.norm(np.roll(corners, -1, 0) - corners, axis=1)
                    k = int(np.argmin(edges))
                    mid = (corners[k] + corners[(k + 1) % 5]) / 2
                    corners = np.array(
                        [c for i, c in enumerate(corners) if i not in (k, (k + 1) % 5)] + [mid]
                    )
                assert len(corners) == 4
                got = lab.polys[0].reshape(4, 2) + [x, y]
                assert np.linalg.norm(got[:, None] - corners[None], axis=2).min(1).max() < 6e-3
                assert piece.difference(whole).area < 1e-2
            # first vertex follows the original's first vertex as well as the piece allows
            assert shapely.Point(lab.polys[0][:2] + [x, y]).distance(shapely.Point(poly[:2])) < 60


@pytest.mark.parametrize("rate", [0.5, 1.5])
def test_resized_patches_match_a_full_cv2_resize(tmp_path, rate):
    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 255, (500, 620, 3), dtype=np.uint8), (0, 0), 3)
    _write_scene(tmp_path, image, ["100 100 160 100 160 130 100 130 plane 0\n"])
    config = SplitConfig(patch_size=256, gap=56, rates=(rate,), padding_value=(7, 8, 9))
    split_dataset(
        [str(tmp_path / "images")],
        [str(tmp_path / "labelTxt")],
        str(tmp_path / "out"),
        config,
        progress=False,
    )
    full = cv2.resize(image, None, fx=rate, fy=rate, interpolation=cv2.INTER_CUBIC)
    hr, wr = full.shape[:2]
    padded = np.empty((hr + 256, wr + 256, 3), np.uint8)
    padded[...] = (7, 8, 9)
    padded[:hr, :wr] = full
    for x in window_origins(wr, 256, 56):
        for y in window_origins(hr, 256, 56):
            name = format_patch_name("S0001", rate, x, y)
            patch = cv2.imread(str(tmp_path / "out" / "images" / f"{name}.png")).astype(int)
            assert np.abs(patch - padded[y : y + 256, x : x + 256]).max() <= 1
    lab = read_dota_labels(
        tmp_path / "out" / "labelTxt" / f"{format_patch_name('S0001', rate, 0, 0)}.txt", CLASSES
    )
    np.testing.assert_allclose(
        lab.polys[0], np.array([100, 100, 160, 100, 160, 130, 100, 130]) * rate
    )


def test_merge_shifts_undoes_rate_and_suppresses_per_class():
    boxes = np.array(
        [
            [10, 10, 20, 10, 0],  # A, class 0
            [11, 10, 20, 10, 0],  # overlaps the first: suppressed
            [10, 10, 20, 10, 0],  # same place, other class: kept
            [100, 50, 40, 20, 30],  # on a 0.5-rate patch at (100, 0)
        ],
        dtype=float,
    )
    merged = merge_patch_detections(
        ["A__1__0___0", "A__1__824___0", "A__1__0___0", "B__0.5__100___0"],
        boxes - [[0, 0, 0, 0, 0], [824, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
        [0.9, 0.8, 0.7, 0.5],
        [0, 0, 1, 2],
    )
    assert merged.image_names.tolist() == ["A", "A", "B"]
    np.testing.assert_allclose(merged.scores, [0.9, 0.7, 0.5])
    np.testing.assert_allclose(merged.boxes[2], [400, 100, 80, 40, 30])
    np.testing.assert_allclose(merged.polys[2], xywha_to_poly([400, 100, 80, 40, 30])[0])
    empty = merge_patch_detections([], np.zeros((0, 5)), [], [])
    assert len(empty) == 0 and empty.polys.shape == (0, 8)


@pytest.mark.parametrize("rates", [(1.0,), (0.5, 1.5)])
def test_split_then_merge_gives_the_ground_truth_back(tmp_path, rates):
    """Patch labels fed back as detections (score = area in the full image, so whole objects
    beat their cut pieces) merge into the full-image ground truth."""
    generate_aerial_dataset(
        str(tmp_path / "raw"), 1, seed=3, image_size_range=(1700, 2100), object_scale=0.6
    )
    split_dataset(
        [str(tmp_path / "raw" / "images")],
        [str(tmp_path / "raw" / "labelTxt")],
        str(tmp_path / "split"),
        SplitConfig(patch_size=800, gap=200, rates=rates),
        workers=2,
        progress=False,
    )
    names, polys, classes = [], [], []
    for f in sorted(os.listdir(tmp_path / "split" / "labelTxt")):
        lab = read_dota_labels(tmp_path / "split" / "labelTxt" / f, CLASSES)
        keep = lab.difficulty != 2  # whole objects and pieces with >= 70% of their area
        names += [f[:-4]] * int(keep.sum())
        polys.append(lab.polys[keep])
        classes.append(lab.category_ids[keep])
    polys, classes = np.concatenate(polys), np.concatenate(classes)
    boxes = poly_to_xywha(polys)
    rate = np.array([parse_patch_name(n).rate for n in names])
    area = boxes[:, 2] * boxes[:, 3] / rate**2  # in full-image pixels
    merged = merge_patch_detections(names, boxes, area, classes)

    gt = read_dota_labels(tmp_path / "raw" / "labelTxt" / "A0000.txt", CLASSES)
    assert len(gt) > 20 and len(merged) == len(gt)
    assert set(merged.image_names) == {"A0000"}
    # match by centre: every ground truth comes back once, same class, same corners
    centres = merged.boxes[:, :2]
    gt_centres = poly_to_xywha(gt.polys)[:, :2]
    nearest = np.argmin(np.linalg.norm(gt_centres[:, None] - centres[None], axis=2), axis=1)
    assert sorted(nearest.tolist()) == list(range(len(gt)))
    np.testing.assert_array_equal(merged.classes[nearest], gt.category_ids)
    np.testing.assert_allclose(merged.polys[nearest], gt.polys, atol=0.02 / min(rates))


def test_merge_task1_tool(tmp_path):
    import tools.dota_merge as merge_tool

    polys = xywha_to_poly(np.array([[50, 60, 30, 10, 20], [50, 60, 30, 10, 20], [10, 10, 8, 4, 0]]))
    patch_dets = {
        "ship": ClassDetections(
            ["P1__1__0___0", "P1__1__40___0", "P2__1__0___0"],
            [0.9, 0.6, 0.8],
            polys - np.array([[0] * 8, [40, 0] * 4, [0] * 8]),
        )
    }
    write_task1_dir(tmp_path / "patches", patch_dets, ["ship", "plane"])
    assert (
        merge_tool.main(
            [
                "--input",
                str(tmp_path / "patches"),
                "--output",
                str(tmp_path / "merged"),
                "--classes",
                "dota10",
            ]
        )
        == 0
    )
    merged = read_task1_dir(tmp_path / "merged", CLASSES)
    assert merged["ship"].image_names.tolist() == ["P1", "P2"]
    np.testing.assert_allclose(merged["ship"].scores, [0.9, 0.8])
    np.testing.assert_allclose(merged["ship"].polys, polys[[0, 2]], atol=5e-3)
    assert len(merged["plane"]) == 0
    (tmp_path / "nothing").mkdir()
    with pytest.raises(FileNotFoundError, match="no Task1_<class>.txt"):
        merge_task1_dir(str(tmp_path / "nothing"), str(tmp_path / "x"))


def test_split_tool_with_config(tmp_path):
    import tools.dota_split as split_tool

    _write_scene(
        tmp_path / "src", np.zeros((300, 500, 3), np.uint8), ["10 10 50 10 50 30 10 30 plane 0\n"]
    )
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"patch_size": 256, "gap": 56, "rates": [1.0]}))
    code = split_tool.main(
        ["--config", str(config), "--src", str(tmp_path / "src"), "--out", str(tmp_path / "out")]
    )
    assert code == 0
    assert sorted(os.listdir(tmp_path / "out" / "images")) == [
        f"S0001__1__{x}___{y}.png" for x in (0, 200, 244) for y in (0, 44)
    ]
    saved = json.loads((tmp_path / "out" / "split_config.json").read_text())
    assert saved["patch_size"] == 256 and saved["gap"] == 56
    assert split_tool.main(["--config", str(tmp_path / "missing.json"), "--out", "x"]) == 1


def test_an_image_that_fails_to_decode_is_named(tmp_path):
    """A corrupt image stops the split with a message naming the file, writing no patch."""
    from fasttcm.data.dota_split import SplitConfig, split_image

    bad = tmp_path / "P9999.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(IOError, match="P9999.png"):
        split_image(str(bad), None, str(out), None, SplitConfig(), ["plane"])
    assert not list(out.iterdir())


def test_dota_mapper_names_an_undecodable_patch(tmp_path):
    """The training mapper reports a corrupt patch by file name instead of crashing obscurely."""
    from detectron2.config import get_cfg

    from fasttcm import add_fasttcm_config
    from fasttcm.data.dota_mapper import DOTADatasetMapper

    bad = tmp_path / "P0001__1__0___0.png"
    bad.write_bytes(b"garbage")
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.INPUT.FORMAT = "RGB"
    mapper = DOTADatasetMapper(cfg, True)
    with pytest.raises(Exception, match="P0001__1__0___0.png"):
        mapper({"file_name": str(bad), "height": 8, "width": 8, "image_id": 0, "annotations": []})
