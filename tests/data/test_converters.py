"""Converters: native annotation files written here -> project text JSON + evaluation GT."""

import importlib.util
import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import shapely
from PIL import Image

from fasttcm.data.converters import (
    annotations,
    art,
    ctw1500,
    icdar2015,
    icdar_gt,
    msra_td500,
    totaltext,
)
from fasttcm.data.converters.catalog import convert
from fasttcm.data.converters.source_files import ConversionError, image_size
from fasttcm.data.datasets.text_json import load_text_json

REPO = Path(__file__).resolve().parents[2]


def write_image(path, size=(48, 64), exif_orientation=None):
    """A small solid-colour image of (height, width) `size`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (size[1], size[0]), (120, 30, 200))
    if exif_orientation is None:
        img.save(path)
    else:
        exif = Image.Exif()
        exif[274] = exif_orientation
        img.save(path, exif=exif)
    return path


def write_text(path, text, encoding="utf-8"):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def anns_of(data, file_name):
    image_id = next(i["id"] for i in data["images"] if i["file_name"] == file_name)
    return [a for a in data["annotations"] if a["image_id"] == image_id]


# ------------------------------------------------------------------------------------ ICDAR 2015


def make_icdar2015(src):
    write_image(src / "ch4_training_images/img_1.jpg", (240, 640))
    write_image(src / "ch4_training_images/img_2.jpg", (30, 40))
    write_image(src / "ch4_training_images/img_10.jpg", (30, 40))
    # UTF-8 BOM, a transcription with commas, a don't-care region, a blank line.
    write_text(
        src / "ch4_training_localization_transcription_gt/gt_img_1.txt",
        "\ufeff377,117,463,117,465,130,378,130,Genaxis Theatre\n"
        "493,115,519,115,519,131,493,131,[06]\n"
        "\n"
        "374,155,409,155,409,170,374,170,###\n"
        "1,2,9,2,9,8,1,8,a,b, c\n",
    )
    write_text(src / "ch4_training_localization_transcription_gt/gt_img_2.txt", "")
    write_text(
        src / "ch4_training_localization_transcription_gt/gt_img_10.txt", "0,0,9,0,9,9,0,9,x\r\n"
    )
    write_image(src / "ch4_test_images/img_1.jpg", (20, 30))
    write_text(
        src / "Challenge4_Test_Task4_GT/gt_img_1.txt", "\ufeff10,10,20,10,20,15,10,15,Café\n"
    )


def test_icdar2015_parse_and_convert(tmp_path):
    src, dst = tmp_path / "raw", tmp_path / "datasets" / "icdar2015"
    make_icdar2015(src)
    outputs = convert("icdar2015", src, dst)

    assert set(outputs) == {"train", "test"}
    train = read_json(dst / "train.json")
    assert train["info"]["version"] == 1 and train["categories"] == [{"id": 1, "name": "text"}]
    # Natural order: img_2 before img_10; ids from 1.
    assert [i["file_name"] for i in train["images"]] == ["img_1.jpg", "img_2.jpg", "img_10.jpg"]
    assert [i["id"] for i in train["images"]] == [1, 2, 3]
    assert (train["images"][0]["height"], train["images"][0]["width"]) == (240, 640)
    anns = anns_of(train, "img_1.jpg")
    assert [a["text"] for a in anns] == ["Genaxis Theatre", "[06]", "###", "a,b, c"]
    assert [a["ignore"] for a in anns] == [False, False, True, False]
    assert anns[0]["polygon"] == [[377, 117], [463, 117], [465, 130], [378, 130]]
    assert anns_of(train, "img_2.jpg") == []
    assert len({a["id"] for a in train["annotations"]}) == len(train["annotations"]) == 5

    # Images copied, evaluation GT in the ICDAR format under <parent>/evaluation/icdar2015_gt.
    assert (dst / "train_images/img_10.jpg").is_file()
    gt_dir = tmp_path / "datasets/evaluation/icdar2015_gt/train"
    assert outputs["train"].gt_dir == str(gt_dir)
    assert (gt_dir / "gt_img_1.txt").read_text(encoding="utf-8").splitlines() == [
        "377,117,463,117,465,130,378,130,Genaxis Theatre",
        "493,115,519,115,519,131,493,131,[06]",
        "374,155,409,155,409,170,374,170,###",
        "1,2,9,2,9,8,1,8,a,b, c",
    ]
    assert (gt_dir / "gt_img_2.txt").read_text() == ""
    test = read_json(dst / "test.json")
    assert anns_of(test, "img_1.jpg")[0]["text"] == "Café"
    assert (tmp_path / "datasets/evaluation/icdar2015_gt/test/gt_img_1.txt").read_text(
        encoding="utf-8"
    ) == "10,10,20,10,20,15,10,15,Café\n"

    # The loader reads the converted split back.
    dicts = load_text_json(dst / "train.json", dst / "train_images")
    assert len(dicts) == 3 and len(dicts[0]["annotations"]) == 4
    assert dicts[0]["annotations"][0]["segmentation"] == [[377, 117, 463, 117, 465, 130, 378, 130]]


@pytest.mark.parametrize(
    "line, problem",
    [("1,2,3,4,5,6,7,8", "expected 8 coordinates"), ("1,2,3,x,5,6,7,8,word", "non-numeric")],
)
def test_icdar2015_malformed_line_names_file_and_line(tmp_path, line, problem):
    path = write_text(tmp_path / "gt_img_3.txt", f"1,1,2,1,2,2,1,2,ok\n{line}\n")
    with pytest.raises(ConversionError, match=problem) as info:
        icdar2015.parse_icdar2015_gt_file(path)
    assert f"{path}, line 2" in str(info.value)


def test_icdar2015_missing_folders_and_gt(tmp_path):
    with pytest.raises(FileNotFoundError, match="ch4_training_images"):
        icdar2015.collect_split(tmp_path, "train")
    write_image(tmp_path / "ch4_training_images/img_1.jpg")
    (tmp_path / "ch4_training_localization_transcription_gt").mkdir()
    with pytest.raises(FileNotFoundError, match="gt_img_1.txt"):
        icdar2015.collect_split(tmp_path, "train")


def test_no_overwrite_unless_asked_and_atomic_failure(tmp_path):
    src, dst = tmp_path / "raw", tmp_path / "out" / "icdar2015"
    make_icdar2015(src)
    convert("icdar2015", src, dst, image_mode="symlink")
    assert os.path.islink(dst / "train_images/img_1.jpg")
    before = (dst / "train.json").read_bytes()
    with pytest.raises(FileExistsError, match="train.json"):
        convert("icdar2015", src, dst)
    assert (dst / "train.json").read_bytes() == before

    # Replace one label; --overwrite swaps every output in.
    write_text(
        src / "ch4_training_localization_transcription_gt/gt_img_2.txt", "1,1,5,1,5,5,1,5,new\n"
    )
    convert("icdar2015", src, dst, overwrite=True)
    assert anns_of(read_json(dst / "train.json"), "img_2.jpg")[0]["text"] == "new"
    assert not os.path.islink(dst / "train_images/img_1.jpg")  # copies now

    # A corrupt image aborts before anything is written, leaving no partial output behind.
    (src / "ch4_test_images/img_1.jpg").write_bytes(b"not an image")
    dst2 = tmp_path / "out2" / "icdar2015"
    with pytest.raises(ConversionError, match="img_1.jpg"):
        convert("icdar2015", src, dst2)
    leftovers = list((tmp_path / "out2").rglob("*"))
    assert all(p.is_dir() for p in leftovers)  # at most the empty parents
    assert not any(p.name.endswith(".tmp") for p in leftovers)


def test_cli(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "convert_dataset", REPO / "tools/convert_dataset.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert set(tool.CONVERTERS) == {
        "icdar2015",
        "totaltext",
        "ctw1500",
        "td500",
        "art",
        "synthtext",
    }

    src, dst = tmp_path / "raw", tmp_path / "d" / "icdar2015"
    make_icdar2015(src)
    args = ["icdar2015", "--src", str(src), "--dst", str(dst), "--gt-dir", str(tmp_path / "gt")]
    assert tool.main(args) == 0
    out = capsys.readouterr().out
    assert "icdar2015 train: 3 images, 5 instances (1 don't care)" in out
    assert (tmp_path / "gt/test/gt_img_1.txt").is_file()
    assert tool.main(args) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert tool.main(args + ["--overwrite"]) == 0
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        convert("nope", src, dst)


# ------------------------------------------------------------------------------------ Total-Text


def test_totaltext(tmp_path):
    src, dst = tmp_path / "raw", tmp_path / "datasets" / "totaltext"
    write_image(src / "Images/Train/img11.jpg", (480, 640))
    write_image(src / "Images/Train/img2.JPG")
    write_image(src / "Images/Test/img1.jpg")
    write_text(
        src / "txt_format/Train/poly_gt_img11.txt",
        "x: [[115 503 494 115]], y: [[322 346 426 404]], ornt: [u'm'], "
        "transcriptions: [u'nauGHTY']\n"
        # A record wrapped over two lines, curved, 6 points.
        "x: [[ 10  20  30\n  30  20  10]], y: [[5 3 5 15 13 15]], ornt: [u'c'], "
        'transcriptions: [u"it\'s"]\n'
        "x: [[1 9 9 1]], y: [[1 1 9 9]], ornt: [u'#'], transcriptions: [u'#']\n"
        # A 2-point record cannot be a polygon: skipped with a warning.
        "x: [[1 9]], y: [[1 1]], ornt: [u'h'], transcriptions: [u'no']\n"
        "x: [[0 4 4 0]], y: [[0 0 4 4]], ornt: [u'h'], transcriptions: [u',']\n",
    )
    write_text(src / "txt_format/Train/poly_gt_img2.txt", "")
    write_text(
        src / "txt_format/Test/poly_gt_img1.txt",
        "x: [[1 9 9 1]], y: [[1 1 9 9]], ornt: [u'h'], transcriptions: [u'Hi']\n",
    )
    convert("totaltext", src, dst)
    train = read_json(dst / "train.json")
    assert [i["file_name"] for i in train["images"]] == ["img2.JPG", "img11.jpg"]
    anns = anns_of(train, "img11.jpg")
    assert [a["text"] for a in anns] == ["nauGHTY", "it's", "###", ","]
    assert [a["ignore"] for a in anns] == [False, False, True, False]
    assert anns[0]["polygon"] == [[115, 322], [503, 346], [494, 426], [115, 404]]
    assert anns[1]["polygon"] == [[10, 5], [20, 3], [30, 5], [30, 15], [20, 13], [10, 15]]
    gt = (tmp_path / "datasets/evaluation/totaltext_gt/train/gt_img11.txt").read_text(
        encoding="utf-8"
    )
    assert gt.splitlines()[1] == "10,5,20,3,30,5,30,15,20,13,10,15,it's"
    assert gt.splitlines()[2] == "1,1,9,1,9,9,1,9,###"


def test_totaltext_bad_record(tmp_path):
    path = write_text(
        tmp_path / "poly_gt_img1.txt",
        "x: [[1 2 3]], y: [[1 2]], ornt: [u'h'], transcriptions: [u'a']\n",
    )
    with pytest.raises(ConversionError, match="x has 3 values but y has 2"):
        totaltext.parse_totaltext_gt_file(path)
    path = write_text(tmp_path / "poly_gt_img2.txt", "garbage line\n")
    with pytest.raises(ConversionError, match=r"poly_gt_img2.txt, line 1"):
        totaltext.parse_totaltext_gt_file(path)


# ------------------------------------------------------------------------------------ CTW1500

CTW_SEGS = [
    131,
    58,
    208,
    49,
    279,
    56,
    346,
    76,
    412,
    101,
    473,
    141,
    530,
    192,
    510,
    246,
    458,
    210,
    405,
    175,
    350,
    151,
    291,
    137,
    228,
    133,
    165,
    134,
]


def test_ctw1500(tmp_path):
    src, dst = tmp_path / "raw", tmp_path / "datasets" / "ctw1500"
    write_image(src / "train_images/0200.jpg", (300, 600))
    segs = ",".join(map(str, CTW_SEGS))
    write_text(
        src / "ctw1500_train_labels/0200.xml",
        '<Annotations><image file="0200.jpg">'
        '<box height="197" left="131" top="49" width="399"><label>OLATHE</label>'
        f"<segs>{segs}</segs>"
        '<pts x="183" y="95" /><pts x="251" y="89" /></box>'
        f'<box height="9" left="1" top="1" width="9"><label>###</label><segs>{segs}</segs></box>'
        "</image></Annotations>",
    )
    write_image(src / "test_images/1001.jpg", (300, 600))
    write_text(
        src / "ctw1500_test_labels/0001001.txt",
        f"{segs},####Latin 9\n{segs},#######\n{segs},####a,b\n",
    )
    convert("ctw1500", src, dst)
    train = read_json(dst / "train.json")
    anns = anns_of(train, "0200.jpg")
    assert [a["text"] for a in anns] == ["OLATHE", "###"] and [a["ignore"] for a in anns] == [
        False,
        True,
    ]
    assert np.array_equal(np.array(anns[0]["polygon"]).reshape(-1), CTW_SEGS)
    test = read_json(dst / "test.json")
    anns = anns_of(test, "1001.jpg")
    assert [a["text"] for a in anns] == ["Latin 9", "###", "a,b"]
    assert [a["ignore"] for a in anns] == [False, True, False]
    assert len(anns[0]["polygon"]) == 14
    gt = (tmp_path / "datasets/evaluation/ctw1500_gt/test/gt_1001.txt").read_text().splitlines()
    assert gt == [f"{segs},Latin 9", f"{segs},###", f"{segs},a,b"]


def test_ctw1500_old_offset_format(tmp_path):
    xmin, ymin = 100, 50
    offsets = np.arange(28).reshape(14, 2)
    values = [xmin, ymin, 200, 90] + offsets.reshape(-1).tolist()
    path = write_text(tmp_path / "0001.txt", ",".join(map(str, values)) + "\n")
    (ann,) = ctw1500.parse_ctw1500_label_file(path)
    assert np.array_equal(ann.polygon, offsets + [xmin, ymin]) and ann.text == "" and not ann.ignore
    path = write_text(tmp_path / "0002.txt", "1,2,3\n")
    with pytest.raises(ConversionError, match=r"0002.txt, line 1: expected 32 values"):
        ctw1500.parse_ctw1500_label_file(path)


def test_ctw1500_malformed_xml(tmp_path):
    path = write_text(tmp_path / "0001.xml", "<Annotations><image><box><label>a</label></box>")
    with pytest.raises(ConversionError, match="0001.xml: malformed XML"):
        ctw1500.parse_ctw1500_xml_file(path)


# ------------------------------------------------------------------------------------ MSRA-TD500


def test_td500_rect_to_polygon_matches_opencv():
    rects = np.array([[10, 20, 40, 10, 0.0], [10, 20, 40, 10, 0.3], [5, 5, 20, 8, -1.2]])
    polys = msra_td500.td500_rects_to_polygons(rects)
    assert polys.shape == (3, 4, 2)
    np.testing.assert_allclose(polys[0], [[10, 20], [50, 20], [50, 30], [10, 30]])
    for rect, poly in zip(rects, polys):
        x, y, w, h, theta = rect
        # OpenCV's RotatedRect angle is in degrees, clockwise on screen: an independent check of
        # the corner positions (order-free) and of the area.
        ref = cv2.boxPoints(((x + w / 2, y + h / 2), (w, h), math.degrees(theta)))
        dist = np.linalg.norm(poly[:, None] - ref[None], axis=-1)
        assert dist.min(axis=1).max() < 1e-3
        assert shapely.Polygon(poly).area == pytest.approx(w * h)
        # TL -> TR -> BR -> BL is clockwise on screen: positive shoelace area with y down.
        assert shapely.Polygon(poly).exterior.is_ccw  # shapely's ccw is y-up


def test_td500(tmp_path):
    src, dst = tmp_path / "raw", tmp_path / "datasets" / "msra_td500"
    write_image(src / "train/IMG_0001.JPG")
    write_text(src / "train/IMG_0001.gt", "0 0 10 20 40 10 0\n1 1 5 5 20 8 0.5\n")
    write_image(src / "test/IMG_0002.JPG")
    write_text(src / "test/IMG_0002.gt", "")
    convert("td500", src, dst)
    train = read_json(dst / "train.json")
    anns = anns_of(train, "IMG_0001.JPG")
    assert [a["ignore"] for a in anns] == [False, True] and [a["text"] for a in anns] == ["", "###"]
    assert anns[0]["polygon"] == [[10, 20], [50, 20], [50, 30], [10, 30]]
    gt = (
        (tmp_path / "datasets/evaluation/msra_td500_gt/train/gt_IMG_0001.txt")
        .read_text()
        .splitlines()
    )
    assert gt[0] == "10,20,50,20,50,30,10,30,"
    bad = write_text(tmp_path / "IMG_9.gt", "0 0 1 2 3 4\n")
    with pytest.raises(ConversionError, match=r"IMG_9.gt, line 1: expected 7 values"):
        msra_td500.parse_msra_td500_gt_file(bad)


# ------------------------------------------------------------------------------------ ArT


def test_art(tmp_path):
    src, dst = tmp_path / "raw", tmp_path / "datasets" / "art"
    write_image(src / "train_images/gt_0.jpg")
    write_image(src / "train_images/gt_1.jpg")
    labels = {
        "gt_0": [
            {
                "transcription": "HELLO",
                "points": [[1, 1], [20, 1], [20, 9], [10, 12], [1, 9]],
                "language": "Latin",
                "illegibility": False,
            },
            {
                "transcription": "x",
                "points": [[2, 2], [5, 2], [5, 5], [2, 5]],
                "language": "Latin",
                "illegibility": True,
            },
            {
                "transcription": "中文",
                "points": [[3, 3], [8, 3], [8, 8], [3, 8]],
                "language": "Chinese",
                "illegibility": False,
            },
        ],
        "gt_1": [],
        "gt_99": [],
    }
    write_text(src / "train_labels.json", json.dumps(labels, ensure_ascii=False))
    outputs = convert("art", src, dst)
    assert set(outputs) == {"train"}
    train = read_json(dst / "train.json")
    anns = anns_of(train, "gt_0.jpg")
    assert [a["text"] for a in anns] == ["HELLO", "###", "中文"]
    assert [a["ignore"] for a in anns] == [False, True, False]
    assert anns[0]["polygon"] == labels["gt_0"][0]["points"]
    gt_file = tmp_path / "datasets/evaluation/art_gt/train/gt_gt_0.txt"
    assert gt_file.read_text(encoding="utf-8").splitlines() == [
        "1,1,20,1,20,9,10,12,1,9,HELLO",
        "2,2,5,2,5,5,2,5,###",
        "3,3,8,3,8,8,3,8,中文",
    ]
    write_text(
        src / "train_labels.json", json.dumps({"gt_0": [{"transcription": "a"}], "gt_1": []})
    )
    with pytest.raises(ConversionError, match=r"'gt_0', instance 0.*without 'points'"):
        art.collect_split(src, "train")


# ------------------------------------------------------------------------------------ common


def test_image_size_applies_exif_orientation(tmp_path):
    assert image_size(write_image(tmp_path / "a.jpg", (30, 40))) == (30, 40)
    # Orientation 6 (rotate 90 degrees): detectron2's read_image returns a 40x30 image.
    assert image_size(write_image(tmp_path / "b.jpg", (30, 40), exif_orientation=6)) == (
        40,
        30,
    )


def test_format_icdar_gt_line_and_gt_name():
    poly = np.array([[1.0, 2.0], [3.25, 4.0], [5.0, -0.0001]])
    assert icdar_gt.format_icdar_gt_line(poly, "a,b\nc") == "1,2,3.25,4,5,0,a,b c"
    assert icdar_gt.format_icdar_gt_line(poly, "2015") == "1,2,3.25,4,5,0,2015"
    # Text that would read as more coordinates, or as a quoted string, is quoted (RRC rule).
    assert icdar_gt.format_icdar_gt_line(poly, "1,000") == '1,2,3.25,4,5,0,"1,000"'
    assert icdar_gt.format_icdar_gt_line(poly, '"a\\b"') == '1,2,3.25,4,5,0,"\\"a\\\\b\\""'
    assert icdar_gt.eval_gt_file_name("sub/img_12.jpg") == "gt_img_12.txt"


def test_make_annotation_skips_unrepresentable(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        assert annotations.make_annotation([1, 2, 3, 4], "a", False, path="f.txt", line=7) is None
        assert (
            annotations.make_annotation(
                [[0, 0], [1, 0], [float("nan"), 1]], "a", False, path="f.txt"
            )
            is None
        )
    assert "f.txt, line 7: skipping a polygon with 2 point(s)" in caplog.text
    assert "non-finite" in caplog.text
    closed = annotations.make_annotation([0, 0, 4, 0, 4, 4, 0, 0], "###", False, path="f.txt")
    assert closed.polygon.shape == (3, 2) and closed.ignore
    with pytest.raises(ConversionError, match="odd number"):
        annotations.make_annotation([1, 2, 3], "a", False, path="f.txt")
