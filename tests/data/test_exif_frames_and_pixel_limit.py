"""EXIF orientation of annotated images in the converters, and the pixel limit of every reader.

The rule (fasttcm.data.image_io): pixels are read in the displayed orientation, so converted
polygons must be in the displayed frame. MSRA-TD500 and SCUT-CTW1500 annotate the stored frame
(mapped at conversion); ICDAR 2015, Total-Text and ArT are kept as written, with a warning.
"""

import importlib.util
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detectron2.config import get_cfg

from fasttcm import add_fasttcm_config
from fasttcm.data.converters import msra_td500
from fasttcm.data.converters.catalog import convert
from fasttcm.data.converters.source_files import ConversionError
from fasttcm.data.dota_mapper import DOTADatasetMapper
from fasttcm.data.exif import apply_exif_to_points
from fasttcm.data.image_io import (
    ImageHeader,
    ImageTooLargeError,
    read_image,
    read_image_header,
    read_image_size,
)
from fasttcm.data.mappers import TextDatasetMapper
from fasttcm.data.pixel_limit import (
    AERIAL_MAX_IMAGE_PIXELS,
    MAX_IMAGE_PIXELS_ENV,
    config_pixel_limit,
    get_max_image_pixels,
    set_max_image_pixels,
    using_max_image_pixels,
)

REPO = Path(__file__).resolve().parents[2]

# Stored frame of the test photo: W x H = 96 x 64; a bright block at x in [16, 48), y in [8, 24)
# (8-pixel aligned, so JPEG keeps its edges sharp).
STORED_W, STORED_H = 96, 64
BLOCK = (16, 8, 48, 24)  # x0, y0, x1, y1


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch):
    monkeypatch.delenv(MAX_IMAGE_PIXELS_ENV, raising=False)
    set_max_image_pixels(None)
    yield
    set_max_image_pixels(None)


def _exif(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _photo(path, orientation=None, size=(STORED_H, STORED_W), block=BLOCK) -> Path:
    """A dark JPEG (stored pixels) with a bright block, optionally with an EXIF orientation."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = np.full((*size, 3), 20, np.uint8)
    x0, y0, x1, y1 = block
    stored[y0:y1, x0:x1] = 235
    image = Image.fromarray(stored)
    if orientation is None:
        image.save(path, quality=100)
    else:
        image.save(path, quality=100, exif=_exif(orientation))
    return path


def _write(path, text) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _anns(json_file, file_name):
    data = json.loads(Path(json_file).read_text(encoding="utf-8"))
    image = next(i for i in data["images"] if i["file_name"] == file_name)
    return image, [a for a in data["annotations"] if a["image_id"] == image["id"]]


def _bright_box(image: np.ndarray):
    """(x0, y0, x1, y1) of the bright pixels, half-open, and whether they fill that box."""
    bright = image.mean(axis=2) > 128
    ys, xs = np.nonzero(bright)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return (int(x0), int(y0), int(x1), int(y1)), bool(bright[y0:y1, x0:x1].all())


# ------------------------------------------------------------------------------ MSRA-TD500


def test_td500_polygons_of_an_exif_6_photo_cover_its_text_in_the_displayed_image(tmp_path):
    src, dst = tmp_path / "raw", tmp_path / "datasets" / "msra_td500"
    x0, y0, x1, y1 = BLOCK
    # The real case: test IMG_2120 has orientation 6 and a .gt in the stored frame.
    _photo(src / "test/IMG_2120.JPG", orientation=6)
    tilted = "1 1 30 30 20 10 0.3"  # a rotated, don't-care rectangle
    _write(src / "test/IMG_2120.gt", f"0 0 {x0} {y0} {x1 - x0} {y1 - y0} 0\n{tilted}\n")
    _photo(src / "test/IMG_0001.JPG")  # no EXIF: left as it is
    _write(src / "test/IMG_0001.gt", f"0 0 {x0} {y0} {x1 - x0} {y1 - y0} 0\n")
    _photo(src / "train/IMG_0002.JPG")
    _write(src / "train/IMG_0002.gt", "")

    convert("td500", src, dst)

    image, anns = _anns(dst / "test.json", "IMG_2120.JPG")
    assert (image["height"], image["width"]) == (STORED_W, STORED_H)  # displayed: turned
    # Orientation 6 shows the stored image turned 90 degrees clockwise: (x, y) -> (H - y, x).
    expected = [[64 - 8, 16], [64 - 8, 48], [64 - 24, 48], [64 - 24, 16]]
    assert anns[0]["polygon"] == expected
    tilted_corners = msra_td500.td500_rects_to_polygons([[30, 30, 20, 10, 0.3]])[0]
    np.testing.assert_allclose(
        anns[1]["polygon"], apply_exif_to_points(tilted_corners, 6, STORED_W, STORED_H)
    )
    assert [a["ignore"] for a in anns] == [False, True]

    # The written polygon covers exactly the bright block of the image as the mappers read it.
    shown = read_image(dst / "test_images/IMG_2120.JPG")
    assert shown.shape[:2] == (image["height"], image["width"])
    box, filled = _bright_box(shown)
    poly = np.array(anns[0]["polygon"])
    assert box == (*poly.min(axis=0).tolist(), *poly.max(axis=0).tolist()) and filled

    gt_dir = tmp_path / "datasets/evaluation/msra_td500_gt/test"
    first_line = (gt_dir / "gt_IMG_2120.txt").read_text().splitlines()[0]
    assert first_line == "56,16,56,48,40,48,40,16,"

    _, plain = _anns(dst / "test.json", "IMG_0001.JPG")
    assert plain[0]["polygon"] == [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    box, filled = _bright_box(read_image(dst / "test_images/IMG_0001.JPG"))
    assert box == BLOCK and filled


@pytest.mark.parametrize("orientation", range(1, 9))
def test_td500_every_orientation_follows_the_pixels(tmp_path, orientation):
    src = tmp_path / "raw"
    x0, y0, x1, y1 = BLOCK
    path = _photo(src / "test/IMG_1.JPG", orientation=orientation)
    _write(src / "test/IMG_1.gt", f"0 0 {x0} {y0} {x1 - x0} {y1 - y0} 0\n")
    (image,) = msra_td500.collect_split(src, "test")
    poly = image.annotations[0].polygon
    box, filled = _bright_box(read_image(path))
    assert box == (*poly.min(axis=0).tolist(), *poly.max(axis=0).tolist()) and filled


# ------------------------------------------------------------------------------ other datasets


def test_ctw1500_labels_are_mapped_from_the_stored_frame(tmp_path):
    src, dst = tmp_path / "raw", tmp_path / "datasets" / "ctw1500"
    x0, y0, x1, y1 = BLOCK
    xs = np.linspace(x0, x1, 7).round().astype(int).tolist()  # 14 points around the block
    points = [(x, y0) for x in xs] + [(x, y1) for x in xs[::-1]]
    segs = ",".join(f"{x},{y}" for x, y in points)
    _photo(src / "train_images/0001.jpg")
    _write(
        src / "ctw1500_train_labels/0001.xml",
        f'<Annotations><image file="0001.jpg"><box><label>a</label><segs>{segs}</segs></box>'
        "</image></Annotations>",
    )
    _photo(src / "test_images/1001.jpg", orientation=8)
    _write(src / "ctw1500_test_labels/0001001.txt", f"{segs},####word\n")
    convert("ctw1500", src, dst)
    _, anns = _anns(dst / "test.json", "1001.jpg")
    box, filled = _bright_box(read_image(dst / "test_images/1001.jpg"))
    poly = np.array(anns[0]["polygon"])
    assert box == (*poly.min(axis=0).tolist(), *poly.max(axis=0).tolist()) and filled
    # Orientation 8 turns the stored image 90 degrees counter-clockwise: (x, y) -> (y, W - x).
    assert anns[0]["polygon"][0] == [y0, STORED_W - x0]


def test_icdar2015_keeps_polygons_and_warns_naming_the_oriented_image(tmp_path, caplog):
    src, dst = tmp_path / "raw", tmp_path / "datasets" / "icdar2015"
    _photo(src / "ch4_training_images/img_1.jpg", orientation=6)
    _photo(src / "ch4_training_images/img_2.jpg")
    _photo(src / "ch4_training_images/img_3.jpg", orientation=3)  # no annotation: no warning
    gt = src / "ch4_training_localization_transcription_gt"
    _write(gt / "gt_img_1.txt", "1,2,9,2,9,8,1,8,word\n")
    _write(gt / "gt_img_2.txt", "1,2,9,2,9,8,1,8,word\n")
    _write(gt / "gt_img_3.txt", "")
    _photo(src / "ch4_test_images/img_1.jpg")
    _write(src / "Challenge4_Test_Task4_GT/gt_img_1.txt", "1,2,9,2,9,8,1,8,word\n")
    with caplog.at_level(logging.WARNING, logger="fasttcm.data.converters.exif_frame"):
        convert("icdar2015", src, dst)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "ICDAR 2015 train" in warnings[0] and "img_1.jpg has EXIF orientation 6" in warnings[0]
    _, anns = _anns(dst / "train.json", "img_1.jpg")
    assert anns[0]["polygon"] == [[1, 2], [9, 2], [9, 8], [1, 8]]  # as written


def test_art_and_totaltext_warn_naming_the_oriented_image(tmp_path, caplog):
    art_src = tmp_path / "art"
    _photo(art_src / "train_images/gt_0.jpg", orientation=5)
    labels = {"gt_0": [{"transcription": "a", "points": [[1, 1], [9, 1], [9, 5], [1, 5]]}]}
    _write(art_src / "train_labels.json", json.dumps(labels))
    tt_src = tmp_path / "totaltext"
    for split in ("Train", "Test"):
        _photo(tt_src / f"Images/{split}/img1.jpg", orientation=7)
        _write(
            tt_src / f"txt_format/{split}/poly_gt_img1.txt",
            "x: [[1 9 9 1]], y: [[1 1 5 5]], ornt: [u'h'], transcriptions: [u'a']\n",
        )
    with caplog.at_level(logging.WARNING, logger="fasttcm.data.converters.exif_frame"):
        convert("art", art_src, tmp_path / "d" / "art")
        convert("totaltext", tt_src, tmp_path / "d" / "totaltext")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("ArT train" in w and "gt_0.jpg has EXIF orientation 5" in w for w in warnings)
    for split in ("train", "test"):
        assert any(f"Total-Text {split}" in w and "img1.jpg" in w for w in warnings)


# ------------------------------------------------------------------------------ image_io API


def test_read_image_header_and_size_limit(tmp_path):
    path = _photo(tmp_path / "a.jpg", orientation=6)
    assert read_image_header(path) == ImageHeader(STORED_W, STORED_H, 6)
    assert read_image_size(path) == (STORED_W, STORED_H)
    with pytest.raises(ImageTooLargeError, match=r"a\.jpg: image is 96 x 64"):
        read_image_size(path, max_pixels=100)
    assert read_image_size(path, max_pixels=STORED_W * STORED_H) == (STORED_W, STORED_H)
    with using_max_image_pixels(100):
        assert get_max_image_pixels() == 100
        with pytest.raises(ImageTooLargeError):
            read_image_size(path, max_pixels=None)
        assert read_image_size(path) == (STORED_W, STORED_H)  # default: no check
    assert get_max_image_pixels() != 100


def test_config_pixel_limit():
    assert config_pixel_limit(0) is None
    assert config_pixel_limit(0, AERIAL_MAX_IMAGE_PIXELS) == AERIAL_MAX_IMAGE_PIXELS
    assert config_pixel_limit(5000) == 5000
    for bad in (-1, "10", True):
        with pytest.raises(ValueError, match="INPUT.MAX_IMAGE_PIXELS"):
            config_pixel_limit(bad)


# ------------------------------------------------------------------------------ mappers


def _cfg(max_pixels):
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    assert cfg.INPUT.MAX_IMAGE_PIXELS == 0
    cfg.INPUT.FORMAT = "RGB"
    cfg.INPUT.MIN_SIZE_TEST = 32
    cfg.INPUT.MAX_SIZE_TEST = 64
    cfg.INPUT.MAX_IMAGE_PIXELS = max_pixels
    return cfg


@pytest.mark.parametrize("mapper_class", [TextDatasetMapper, DOTADatasetMapper])
def test_mapper_pixel_limit_from_config(tmp_path, mapper_class):
    path = _photo(tmp_path / "big_scene.jpg")
    record = {"file_name": str(path), "image_id": 1, "height": STORED_H, "width": STORED_W}
    small = mapper_class(_cfg(STORED_W * STORED_H - 1), False)
    with pytest.raises(ImageTooLargeError, match=r"big_scene\.jpg: image is 96 x 64"):
        small(dict(record))
    for limit in (STORED_W * STORED_H, 0):  # at the limit; 0 = the reader's default
        out = mapper_class(_cfg(limit), False)(dict(record))
        assert out["image"].shape[0] == 3
    with pytest.raises(ValueError, match="INPUT.MAX_IMAGE_PIXELS"):
        mapper_class(_cfg(-5), False)


def test_dota_mapper_default_is_the_aerial_limit(tmp_path):
    assert DOTADatasetMapper(_cfg(0), False).max_pixels == AERIAL_MAX_IMAGE_PIXELS
    assert TextDatasetMapper(_cfg(0), False).max_pixels is None  # get_max_image_pixels()


# ------------------------------------------------------------------------------ tools


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, REPO / f"tools/{name}.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_convert_dataset_max_image_pixels_flag(tmp_path, capsys):
    tool = _tool("convert_dataset")
    src = tmp_path / "raw"
    path = _photo(src / "test/IMG_1.JPG")
    _write(src / "test/IMG_1.gt", "0 0 1 1 5 5 0\n")
    _photo(src / "train/IMG_2.JPG", size=(32, 32), block=(0, 0, 8, 8))  # under the limits
    _write(src / "train/IMG_2.gt", "")
    dst = tmp_path / "d" / "msra_td500"
    args = ["td500", "--src", str(src), "--dst", str(dst)]

    assert tool.main(args + ["--max-image-pixels", str(STORED_W * STORED_H - 1)]) == 1
    err = capsys.readouterr().err
    assert f"error: {path}: image is 96 x 64" in err and "--max-image-pixels N" in err
    assert err.count(str(path)) == 1
    assert not dst.exists()  # nothing written
    assert get_max_image_pixels() != STORED_W * STORED_H - 1  # the process limit is restored

    with using_max_image_pixels(10):  # the process limit applies without the flag
        with pytest.raises(ConversionError, match="IMG_"):
            convert("td500", src, dst)
    assert tool.main(args + ["--max-image-pixels", "inf"]) == 0
    assert tool.main(args + ["--overwrite", "--max-image-pixels", "0"]) == 0
    assert tool.pixel_limit("inf") == math.inf and tool.pixel_limit("0") is None
    with pytest.raises(SystemExit):
        tool.build_parser().parse_args(args + ["--max-image-pixels", "-3"])
