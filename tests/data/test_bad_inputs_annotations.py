"""Bad and tricky annotations: polygons outside their image, malformed numbers in native label
files, the CTW1500 '#### ' transcriptions and the Total-Text .mat ground truth."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from fasttcm.data.converters.annotations import SourceImage, drop_unusable_polygons, make_annotation
from fasttcm.data.converters.catalog import convert
from fasttcm.data.converters.ctw1500 import parse_ctw1500_test_txt_file
from fasttcm.data.converters.source_files import ConversionError
from fasttcm.data.converters.totaltext import parse_totaltext_gt_file
from fasttcm.data.converters.totaltext_mat import parse_totaltext_mat_file
from fasttcm.data.datasets.text_json import load_text_json
from fasttcm.data.image_bounds import unusable_polygons_in_image
from fasttcm.evaluation.protocols.submission_io import read_ground_truth


def write_image(path, hw):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (hw[1], hw[0]), (10, 200, 30)).save(path)
    return path


def write_text(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# ------------------------------------------------------- polygons outside the image (item 1)

INSIDE = [[10, 5], [30, 5], [30, 15], [10, 15]]
PARTLY_OUTSIDE = [[-10, 5], [30, 5], [30, 15], [-10, 15]]  # kept as annotated
OUTSIDE = [[70, 5], [90, 5], [90, 15], [70, 15]]  # right of a 60-pixel-wide image
SLIVER = [[59.5, 5], [80, 5], [80, 6], [59.5, 6]]  # 0.5 square pixel inside
CORNER = [[60, 40], [70, 40], [70, 50]]  # touches the corner only


def test_geometry_of_unusable_polygons():
    polygons = [np.array(p, dtype=float) for p in (INSIDE, PARTLY_OUTSIDE, OUTSIDE, SLIVER, CORNER)]
    unusable = unusable_polygons_in_image(polygons, 40, 60)
    assert unusable.tolist() == [False, False, True, True, True]
    # a tiny polygon entirely inside is not judged here
    assert not unusable_polygons_in_image([np.array([[1, 1], [1.5, 1], [1, 1.5]])], 40, 60)[0]
    # a self-intersecting bow tie outside the image
    bow_tie = np.array([[70, 5], [90, 15], [90, 5], [70, 15]], dtype=float)
    assert unusable_polygons_in_image([bow_tie], 40, 60).tolist() == [True]


def make_json(tmp_path, annotations):
    images = [
        {"id": 1, "file_name": "a.jpg", "height": 40, "width": 60},
        {"id": 2, "file_name": "b.jpg", "height": 40, "width": 60},
        {"id": 3, "file_name": "c.jpg", "height": 40, "width": 60},
    ]
    for img in images:
        write_image(tmp_path / "images" / img["file_name"], (40, 60))
    anns = [
        {"id": k, "image_id": i, "polygon": p, "text": "w", "ignore": False}
        for k, (i, p) in enumerate(annotations, start=1)
    ]
    data = {"info": {"version": 1}, "images": images, "annotations": anns, "categories": []}
    json_file = tmp_path / "split.json"
    json_file.write_text(json.dumps(data))
    return json_file


def test_loader_drops_and_counts_polygons_outside_the_image(tmp_path, caplog):
    json_file = make_json(
        tmp_path,
        [(1, INSIDE), (1, PARTLY_OUTSIDE), (1, OUTSIDE), (1, SLIVER), (2, CORNER)],  # image 3: none
    )
    with caplog.at_level(logging.WARNING):
        dicts = load_text_json(json_file, tmp_path / "images")
    assert [len(d["annotations"]) for d in dicts] == [2, 0, 0]
    assert dicts[0]["annotations"][1]["segmentation"] == [np.ravel(PARTLY_OUTSIDE).tolist()]
    messages = warnings_of(caplog)
    dropped = [m for m in messages if "outside their image" in m]
    assert dropped == [
        f"{json_file}: dropped 3 polygon(s) lying outside their image or degenerate after "
        f"clipping to it (less than 1 square pixel inside), e.g. {json_file}: annotation 3 "
        "(image 1)"
    ]
    empty = [m for m in messages if "no valid text polygon" in m]
    assert empty == [
        f"{json_file}: 2 of 3 images have no valid text polygon (1 had polygons, all dropped or "
        "skipped above; 1 have none in the file), e.g. image 2: they add no positive to the "
        "text loss"
    ]


def test_loader_is_quiet_when_every_polygon_is_usable(tmp_path, caplog):
    json_file = make_json(tmp_path, [(1, INSIDE), (2, PARTLY_OUTSIDE), (3, INSIDE)])
    with caplog.at_level(logging.WARNING):
        dicts = load_text_json(json_file, tmp_path / "images")
    assert [len(d["annotations"]) for d in dicts] == [1, 1, 1]
    assert warnings_of(caplog) == []


def test_converter_drops_outside_polygons_from_the_json_only(tmp_path, caplog):
    src, dst = tmp_path / "raw", tmp_path / "datasets" / "icdar2015"
    write_image(src / "ch4_training_images/img_1.jpg", (40, 60))
    write_image(src / "ch4_training_images/img_2.jpg", (40, 60))
    write_text(
        src / "ch4_training_localization_transcription_gt/gt_img_1.txt",
        "10,5,30,5,30,15,10,15,inside\n70,5,90,5,90,15,70,15,outside\n",
    )
    write_text(
        src / "ch4_training_localization_transcription_gt/gt_img_2.txt",
        "59.5,5,80,5,80,6,59.5,6,sliver\n",
    )
    write_image(src / "ch4_test_images/img_1.jpg", (40, 60))
    write_text(src / "Challenge4_Test_Task4_GT/gt_img_1.txt", "10,5,30,5,30,15,10,15,ok\n")
    with caplog.at_level(logging.WARNING):
        convert("icdar2015", src, dst)
    train = read_json(dst / "train.json")
    assert [a["text"] for a in train["annotations"]] == ["inside"]
    # the evaluation GT keeps the official annotation
    gt = read_ground_truth(str(tmp_path / "datasets/evaluation/icdar2015_gt/train"))
    assert gt["1"].texts == ("inside", "outside") and gt["2"].texts == ("sliver",)
    messages = [m for m in warnings_of(caplog) if "outside their image" in m]
    assert len(messages) == 1
    assert messages[0].startswith(f"{dst / 'train.json'}: dropped 2 polygon(s)")
    assert messages[0].endswith(
        "; 1 of 2 image(s) are left with no text instance by these drops, e.g. "
        f"{src / 'ch4_training_images/img_2.jpg'}: they add no positive to the text loss"
    )


def test_drop_unusable_polygons_keeps_untouched_images():
    ann = make_annotation(INSIDE, "w", False, path="x")
    outside = make_annotation(OUTSIDE, "w", False, path="x")
    kept = SourceImage("a.jpg", "a.jpg", [ann])
    cut = SourceImage("b.jpg", "b.jpg", [ann, outside])
    records = drop_unusable_polygons([(kept, (40, 60)), (cut, (40, 60))], "split.json")
    assert records[0][0] is kept and records[1][0].annotations == [ann]
    assert cut.annotations == [ann, outside]  # the input is not changed


# ------------------------------------------------- malformed numbers in label files (item 2)


def test_ctw1500_and_totaltext_malformed_coordinates_name_file_and_line(tmp_path):
    path = write_text(tmp_path / "0001001.txt", "1,2,3,4,5,6,####ok\n1,2,3,1O,5,6,####bad\n")
    with pytest.raises(ConversionError, match=r"0001001\.txt, line 2: coordinate 4 \('1O'\)"):
        parse_ctw1500_test_txt_file(path)
    path = write_text(
        tmp_path / "poly_gt_img1.txt",
        "x: [[1 9 9 1]], y: [[1 1 9 9]], ornt: [u'h'], transcriptions: [u'a']\n"
        "x: [[1 9 9 1O]], y: [[1 1 9 9]], ornt: [u'h'], transcriptions: [u'b']\n",
    )
    with pytest.raises(ConversionError, match=r"poly_gt_img1\.txt, line 2: non-numeric value in x"):
        parse_totaltext_gt_file(path)


# -------------------------------------------------------- CTW1500 '#### text' (item 5)


def test_ctw1500_space_after_the_marker_is_dropped(tmp_path):
    src, dst = tmp_path / "raw", tmp_path / "datasets" / "ctw1500"
    write_image(src / "train_images/0001.jpg", (100, 200))
    write_text(
        src / "ctw1500_train_labels/0001.xml",
        '<Annotations><image file="0001.jpg"><box><label>A</label>'
        "<segs>10,10,50,10,50,30,10,30</segs></box></image></Annotations>",
    )
    write_image(src / "test_images/1001.jpg", (100, 200))
    write_text(
        src / "ctw1500_test_labels/0001001.txt",
        "10,10,50,10,50,30,10,30,#### ILLY YMPHONY\n60,10,90,10,90,30,60,30,####Latin 9 \n",
    )
    convert("ctw1500", src, dst)
    test = read_json(dst / "test.json")
    assert [a["text"] for a in test["annotations"]] == ["ILLY YMPHONY", "Latin 9"]
    gt = (tmp_path / "datasets/evaluation/ctw1500_gt/test/gt_1001.txt").read_text().splitlines()
    assert gt == ["10,10,50,10,50,30,10,30,ILLY YMPHONY", "60,10,90,10,90,30,60,30,Latin 9"]


# ------------------------------------------------------------ Total-Text .mat (item 7)


def mat_rows(rows):
    """A MATLAB cell array (N, len(row)) as the official files hold it."""
    cells = np.empty((len(rows), len(rows[0])), dtype=object)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            cells[i, j] = np.array(value, dtype=np.float64) if isinstance(value, list) else value
    return cells


OFFICIAL_ROWS = [
    ["x:", [[115, 503, 494, 115]], "y:", [[322, 346, 426, 404]], "nauGHTY", "m"],
    ["x:", [[10, 20, 30, 30, 20, 10]], "y:", [[5, 3, 5, 15, 13, 15]], "2015", "c"],
    ["x:", [[1, 9, 9, 1]], "y:", [[1, 1, 9, 9]], "#", "#"],
    ["x:", [[1, 9, 9]], "y:", [[20, 20, 28]], "", "h"],  # an empty transcription: don't care
    ["x:", [[1, 9]], "y:", [[1, 1]], "two", "h"],  # 2 points: skipped with a warning
]


@pytest.mark.parametrize("variable", ["polygt", "gt"])
def test_totaltext_mat_official_layout(tmp_path, variable, caplog):
    path = tmp_path / "poly_gt_img11.mat"
    scipy.io.savemat(path, {variable: mat_rows(OFFICIAL_ROWS)})
    with caplog.at_level(logging.WARNING):
        anns = parse_totaltext_mat_file(path)
    assert [a.text for a in anns] == ["nauGHTY", "2015", "###", "###"]
    assert [a.ignore for a in anns] == [False, False, True, True]
    np.testing.assert_array_equal(anns[0].polygon, [[115, 322], [503, 346], [494, 426], [115, 404]])
    assert len(anns[1].polygon) == 6
    assert any(f"{variable} instance 5" in m and "2 point(s)" in m for m in warnings_of(caplog))


def test_totaltext_mat_bad_layouts_are_errors(tmp_path):
    path = tmp_path / "poly_gt_img1.mat"
    scipy.io.savemat(path, {"other": np.zeros(3)})
    with pytest.raises(
        ConversionError, match=r"poly_gt_img1\.mat: no variable polygt or gt .*other"
    ):
        parse_totaltext_mat_file(path)
    rectangular = [[1, 2, 9, 8, 8, 6, "text", "h"]]
    cells = np.empty((1, 8), dtype=object)
    cells[0, :] = [
        np.array([[v]], dtype=float) if not isinstance(v, str) else v for v in rectangular[0]
    ]
    scipy.io.savemat(path, {"polygt": cells})
    with pytest.raises(ConversionError, match="Rectangular layout .* not supported"):
        parse_totaltext_mat_file(path)
    rows = [["x:", [[1, 9, 9, 1]], "y:", [[1, 1, 9]], "a", "h"]]
    scipy.io.savemat(path, {"polygt": mat_rows(rows)})
    with pytest.raises(ConversionError, match="polygt instance 1: 4 x but 3 y coordinates"):
        parse_totaltext_mat_file(path)


def test_convert_totaltext_from_mat_files(tmp_path):
    src, dst = tmp_path / "raw", tmp_path / "datasets" / "totaltext"
    write_image(src / "Images/Train/img11.jpg", (480, 640))
    write_image(src / "Images/Test/img1.jpg", (40, 60))
    for split in ("Train", "Test"):
        (src / "Groundtruth/Polygon" / split).mkdir(parents=True)
    train_rows = mat_rows(OFFICIAL_ROWS)
    scipy.io.savemat(src / "Groundtruth/Polygon/Train/poly_gt_img11.mat", {"polygt": train_rows})
    test_rows = mat_rows([["x:", [[1, 9, 9, 1]], "y:", [[1, 1, 9, 9]], "Hi", "h"]])
    scipy.io.savemat(src / "Groundtruth/Polygon/Test/poly_gt_img1.mat", {"gt": test_rows})
    convert("totaltext", src, dst)
    train = read_json(dst / "train.json")
    assert [a["text"] for a in train["annotations"]] == ["nauGHTY", "2015", "###", "###"]
    gt_dir = tmp_path / "datasets/evaluation/totaltext_gt/train"
    assert (gt_dir / "gt_img11.txt").read_text().splitlines()[1] == (
        "10,5,20,3,30,5,30,15,20,13,10,15,2015"
    )
    assert read_ground_truth(str(gt_dir))["img11"].texts == ("nauGHTY", "2015", "###", "###")
    assert read_json(dst / "test.json")["annotations"][0]["text"] == "Hi"
