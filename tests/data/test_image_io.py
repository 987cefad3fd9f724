"""The project image reader: bit depth, colour modes, EXIF orientation, errors and pixel limit."""

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from detectron2.data.detection_utils import read_image as d2_read_image

from fasttcm.data import pixel_limit
from fasttcm.data.exif import apply_exif_to_points
from fasttcm.data.image_io import (
    ImageReadError,
    ImageTooLargeError,
    decode_image,
    exif_orientation,
    read_image,
    read_image_size,
)
from fasttcm.data.pixel_limit import MAX_IMAGE_PIXELS_ENV, set_max_image_pixels


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch):
    monkeypatch.delenv(MAX_IMAGE_PIXELS_ENV, raising=False)
    set_max_image_pixels(None)
    yield
    set_max_image_pixels(None)


def _noise(shape, seed=0):
    """Smooth-ish random uint8 image, so JPEG keeps detail without being all noise."""
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (5, 5), 1.5)


def _save(array, path, **kwargs) -> Path:
    Image.fromarray(array).save(path, **kwargs)
    return Path(path)


def _exif(orientation):
    exif = Image.Exif()
    exif[274] = orientation
    return exif


# ------------------------------------------------------------------------- 8 bit == detectron2


@pytest.mark.parametrize("ext", ["png", "jpg", "bmp", "webp"])
def test_8bit_rgb_identical_to_detectron2_read_image(tmp_path, ext):
    for seed, (h, w) in enumerate([(31, 47), (120, 90), (257, 3)]):
        path = _save(_noise((h, w, 3), seed), tmp_path / f"img{seed}.{ext}")
        for fmt in ("RGB", "BGR"):
            ours, theirs = read_image(path, fmt), d2_read_image(str(path), format=fmt)
            assert ours.dtype == np.uint8 and ours.shape == (h, w, 3)
            assert ours.flags.c_contiguous and ours.flags.writeable
            np.testing.assert_array_equal(ours, theirs)


def test_rgb_png_with_transparency_key_matches_detectron2(tmp_path):
    array = _noise((20, 30, 3), 5)
    path = _save(array, tmp_path / "trns.png", transparency=tuple(int(v) for v in array[0, 0]))
    assert "transparency" in Image.open(path).info
    np.testing.assert_array_equal(read_image(path), d2_read_image(str(path), format="RGB"))
    np.testing.assert_array_equal(read_image(path), array)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_every_exif_orientation_matches_detectron2(tmp_path, orientation, ext):
    path = _save(_noise((30, 40, 3)), tmp_path / f"o.{ext}", exif=_exif(orientation))
    for fmt in ("RGB", "BGR"):
        ours = read_image(path, fmt)
        np.testing.assert_array_equal(ours, d2_read_image(str(path), format=fmt))
    assert exif_orientation(path) == orientation
    assert read_image_size(path) == ours.shape[:2]
    assert read_image_size(path).width == ours.shape[1]


def test_bgr_is_rgb_reversed(tmp_path):
    array = np.zeros((4, 5, 3), np.uint8)
    array[..., 0], array[..., 1], array[..., 2] = 10, 200, 30
    for ext in ("png", "jpg"):
        path = _save(array, tmp_path / f"c.{ext}", quality=100)
        rgb, bgr = read_image(path, "RGB"), read_image(path, format="BGR")
        np.testing.assert_array_equal(bgr, rgb[..., ::-1])
        assert np.abs(rgb[0, 0].astype(int) - [10, 200, 30]).max() <= 2
    with pytest.raises(ValueError, match="format must be one of"):
        read_image(path, "L")


def test_decode_image_bytes_equals_read_image(tmp_path):
    for ext in ("png", "jpg"):
        path = _save(_noise((17, 23, 3)), tmp_path / f"b.{ext}")
        for fmt in ("RGB", "BGR"):
            decoded = decode_image(path.read_bytes(), fmt)
            np.testing.assert_array_equal(decoded, read_image(path, fmt))


def test_8bit_bytes_match_opencv_imdecode(tmp_path):
    """STR crops were decoded with cv2.imdecode before; 8-bit JPEG/PNG values are unchanged."""
    for seed, ext in enumerate(["jpg", "png", "jpg"]):
        data = _save(_noise((32, 100, 3), seed), tmp_path / f"w{seed}.{ext}").read_bytes()
        old = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        np.testing.assert_array_equal(decode_image(data, "BGR"), old)


# ------------------------------------------------------------------------------ 16 bit, modes


def _expected_8bit(values16):
    return np.round(values16.astype(np.float64) * 255.0 / 65535.0).astype(np.uint8)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    special = np.array([0, 1, 128, 129, 257, 32767, 32896, 65278, 65534, 65535], np.uint16)
    rng = np.random.default_rng(3)
    gray = np.concatenate([special, rng.integers(0, 65536, 50, dtype=np.uint16)]).reshape(6, 10)
    cv2.imwrite(str(tmp_path / "g16.png"), gray)
    out = read_image(tmp_path / "g16.png")
    assert out.shape == (6, 10, 3) and out.dtype == np.uint8
    expected = _expected_8bit(gray)
    assert expected.ravel()[:10].tolist() == [0, 0, 0, 1, 1, 127, 128, 254, 255, 255]
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], expected)

    rgb16 = rng.integers(0, 65536, (7, 9, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb16[..., ::-1])  # OpenCV writes BGR
    np.testing.assert_array_equal(read_image(tmp_path / "c16.png", "RGB"), _expected_8bit(rgb16))
    np.testing.assert_array_equal(
        read_image(tmp_path / "c16.png", "BGR"), _expected_8bit(rgb16)[..., ::-1]
    )
    bgra16 = np.concatenate([rgb16[..., ::-1], rgb16[..., :1]], axis=2)  # with alpha
    cv2.imwrite(str(tmp_path / "c16a.png"), bgra16)
    np.testing.assert_array_equal(read_image(tmp_path / "c16a.png"), _expected_8bit(rgb16))
    # Exact 8-bit values survive an 8 -> 16 -> 8 round trip (k * 257 -> k).
    cv2.imwrite(str(tmp_path / "rt.png"), (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16))
    np.testing.assert_array_equal(read_image(tmp_path / "rt.png")[..., 0].ravel(), np.arange(256))


def test_16bit_png_with_exif_orientation_and_bytes(tmp_path):
    gray = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    Image.fromarray(gray).save(tmp_path / "g.png", exif=_exif(6))
    assert Image.open(tmp_path / "g.png").mode.startswith("I;16")
    out = read_image(tmp_path / "g.png")
    np.testing.assert_array_equal(out[..., 0], np.rot90(_expected_8bit(gray), -1))
    data = (tmp_path / "g.png").read_bytes()
    np.testing.assert_array_equal(decode_image(data), out)


def test_gray_alpha_rgba_palette_become_rgb(tmp_path):
    gray = np.array([[0, 50], [128, 255]], np.uint8)
    alpha = np.array([[255, 0], [10, 128]], np.uint8)
    rgb = np.array([[[1, 2, 3], [40, 50, 60]], [[200, 100, 0], [255, 255, 255]]], np.uint8)
    cases = {
        "L": (Image.fromarray(gray, "L"), np.repeat(gray[..., None], 3, 2)),
        "LA": (Image.fromarray(np.dstack([gray, alpha]), "LA"), np.repeat(gray[..., None], 3, 2)),
        "RGBA": (Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), rgb),
    }
    palette_image = Image.new("P", (2, 2))
    palette_image.putpalette([9, 8, 7, 100, 150, 200] + [0] * 762)
    palette_image.putdata([0, 1, 1, 0])
    palette_rgb = np.array([[[9, 8, 7], [100, 150, 200]], [[100, 150, 200], [9, 8, 7]]], np.uint8)
    cases["P"] = (palette_image, palette_rgb)
    for mode, (image, expected) in cases.items():
        path = tmp_path / f"{mode}.png"
        image.save(path)
        for fmt in ("RGB", "BGR"):
            out = read_image(path, fmt)
            want = expected if fmt == "RGB" else expected[..., ::-1]
            np.testing.assert_array_equal(out, want, err_msg=mode)
            np.testing.assert_array_equal(out, d2_read_image(str(path), format=fmt))
    palette_image.save(tmp_path / "Pt.png", transparency=1)
    np.testing.assert_array_equal(read_image(tmp_path / "Pt.png"), palette_rgb)


def test_32bit_integer_images_are_refused(tmp_path):
    Image.fromarray(np.full((3, 3), 70000, np.int32), "I").save(tmp_path / "i32.tif")
    with pytest.raises(ImageReadError, match="i32.tif: unsupported pixel format 'I'"):
        read_image(tmp_path / "i32.tif")


# ---------------------------------------------------------------------------- EXIF orientation


def test_exif_orientation_6_rotates_pixels_and_points(tmp_path):
    stored = np.zeros((30, 40, 3), np.uint8)  # stored frame: W=40, H=30
    stored[3:8, 2:12] = (255, 0, 0)  # red block: x in [2, 12), y in [3, 8)
    for ext in ("png", "jpg"):
        path = _save(stored, tmp_path / f"six.{ext}", exif=_exif(6), quality=100)
        assert exif_orientation(path) == 6
        assert read_image_size(path) == (40, 30)  # (height, width) displayed
        shown = read_image(path, "RGB")
        assert shown.shape == (40, 30, 3)
        corners = [[2, 3], [12, 3], [12, 8], [2, 8]]
        mapped = apply_exif_to_points(corners, 6, stored_width=40, stored_height=30)
        # Rotated 90 degrees clockwise for display: x' = H - y, y' = x.
        np.testing.assert_allclose(mapped, [[27, 2], [27, 12], [22, 12], [22, 2]])
        x0, y0 = mapped.min(axis=0).astype(int)
        x1, y1 = mapped.max(axis=0).astype(int)
        red = (shown[..., 0] > 200) & (shown[..., 1] < 60) & (shown[..., 2] < 60)
        box = np.zeros_like(red)
        box[y0:y1, x0:x1] = True
        if ext == "png":
            np.testing.assert_array_equal(red, box)
        else:  # JPEG blurs the edges: compare away from them
            assert red[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1].all() and not (red & ~box).any()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_points_follow_the_pixels_for_every_orientation(tmp_path, orientation):
    stored = np.zeros((6, 9, 3), np.uint8)
    stored[1, 6] = (255, 255, 255)  # one marked pixel: x in [6, 7), y in [1, 2)
    path = _save(stored, tmp_path / "p.png", exif=_exif(orientation))
    shown = read_image(path)
    corners = apply_exif_to_points([[6, 1], [7, 2]], orientation, 9, 6)
    x0, y0 = corners.min(axis=0).astype(int)
    assert (corners.max(axis=0) - corners.min(axis=0)).tolist() == [1, 1]
    assert np.argwhere(shown[..., 0] == 255).tolist() == [[y0, x0]]


def test_apply_exif_to_points_checks_its_input():
    assert apply_exif_to_points(np.zeros((0, 2)), 3, 5, 4).shape == (0, 2)
    with pytest.raises(ValueError, match="shape"):
        apply_exif_to_points([1, 2, 3], 1, 5, 4)
    with pytest.raises(ValueError, match="1-8"):
        apply_exif_to_points([[1, 2]], 9, 5, 4)


def test_malformed_or_out_of_range_orientation_counts_as_1(tmp_path):
    path = _save(_noise((8, 6, 3)), tmp_path / "bad.jpg", exif=_exif(42))
    assert exif_orientation(path) == 1 and read_image(path).shape == (8, 6, 3)


# ---------------------------------------------------------------------------- errors


def test_missing_file_raises_file_not_found(tmp_path):
    for fn in (read_image, read_image_size, exif_orientation):
        with pytest.raises(FileNotFoundError, match="nope.png"):
            fn(tmp_path / "nope.png")


def _cut_points(size):
    """Cuts inside the header and the pixel data (a file that only lacks its end marker and
    checksum still holds every pixel; PIL reads it, and so does the reader)."""
    return sorted({12, 30, 60, 100, size // 3, size // 2, size - 40})


@pytest.mark.parametrize("kind", ["rgb.png", "gray.png", "rgb.jpg", "rgb16.png"])
def test_truncated_files_raise_naming_the_file(tmp_path, kind):
    array = _noise((64, 80, 3), 4)
    full = tmp_path / f"full_{kind}"
    if kind == "gray.png":
        _save(array[..., 0], full)
    elif kind == "rgb16.png":
        cv2.imwrite(str(full), array.astype(np.uint16) * 257)
    else:
        _save(array, full)
    data = full.read_bytes()
    for cut in _cut_points(len(data)):
        bad = tmp_path / f"cut{cut}_{kind}"
        bad.write_bytes(data[:cut])
        with pytest.raises(ImageReadError, match=f"cut{cut}_{kind}: cannot decode"):
            read_image(bad)
        with pytest.raises(ImageReadError, match="crop-7: cannot decode"):
            decode_image(data[:cut], name="crop-7")


def test_truncated_png_is_an_error_even_if_pil_is_told_to_load_truncated_images(
    tmp_path, monkeypatch
):
    data = _save(_noise((50, 70, 3)), tmp_path / "x.png").read_bytes()
    (tmp_path / "half.png").write_bytes(data[: len(data) // 2])
    gray = _save(_noise((50, 70)), tmp_path / "g.png").read_bytes()
    (tmp_path / "ghalf.png").write_bytes(gray[: len(gray) // 2])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    for name in ("half.png", "ghalf.png"):
        with pytest.raises(ImageReadError, match=name):
            read_image(tmp_path / name)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_png_without_iend_but_complete_pixels_reads_as_pil_does(tmp_path):
    array = _noise((40, 50, 3))
    data = _save(array, tmp_path / "x.png").read_bytes()
    assert data.endswith(b"IEND\xaeB`\x82")
    (tmp_path / "noend.png").write_bytes(data[:-12])
    np.testing.assert_array_equal(read_image(tmp_path / "noend.png"), array)


def test_garbage_and_empty_data(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"\x00\x01 not an image at all")
    with pytest.raises(ImageReadError, match="junk.jpg: cannot decode the image"):
        read_image(tmp_path / "junk.jpg")
    with pytest.raises(ImageReadError, match="junk.jpg"):
        read_image_size(tmp_path / "junk.jpg")
    with pytest.raises(ImageReadError, match="word-1: no image data"):
        decode_image(b"", name="word-1")
    assert isinstance(ImageReadError("x"), OSError)


# ---------------------------------------------------------------------------- pixel limit


def test_pixel_limit_names_file_size_and_override(tmp_path, monkeypatch):
    path = _save(_noise((30, 40, 3)), tmp_path / "bomb.png")
    with pytest.raises(ImageTooLargeError) as info:
        read_image(path, max_pixels=1000)
    message = str(info.value)
    assert str(path) in message and "40 x 30" in message and "1200 pixels" in message
    assert "max_pixels=N" in message and MAX_IMAGE_PIXELS_ENV in message
    assert "set_max_image_pixels" in message and isinstance(info.value, ImageReadError)
    assert read_image(path, max_pixels=1200).shape == (30, 40, 3)
    assert read_image(path, max_pixels=math.inf).shape == (30, 40, 3)

    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "1199")
    with pytest.raises(ImageTooLargeError, match="limit of 1199 pixels"):
        read_image(path)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "inf")
    assert read_image(path).shape == (30, 40, 3)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=MAX_IMAGE_PIXELS_ENV):
        read_image(path)
    monkeypatch.delenv(MAX_IMAGE_PIXELS_ENV)

    set_max_image_pixels(500)
    with pytest.raises(ImageTooLargeError, match="limit of 500 pixels"):
        decode_image(path.read_bytes(), name="in-memory")
    assert read_image(path, max_pixels=2000).shape == (30, 40, 3)  # the argument wins
    set_max_image_pixels(None)
    assert pixel_limit.get_max_image_pixels() == pixel_limit.DEFAULT_MAX_IMAGE_PIXELS
    with pytest.raises(ValueError):
        set_max_image_pixels(0)


def test_pil_global_limit_does_not_interfere(tmp_path, monkeypatch):
    """This module's limit applies, not PIL's; PIL's setting is left as it was."""
    path = _save(_noise((30, 40, 3)), tmp_path / "a.jpg")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL alone would refuse 1200 pixels
    assert read_image(path).shape == (30, 40, 3)
    assert read_image_size(path) == (30, 40)
    assert Image.MAX_IMAGE_PIXELS == 100
    with pytest.raises(ImageTooLargeError, match="a.jpg"):
        read_image(path, max_pixels=1199)
