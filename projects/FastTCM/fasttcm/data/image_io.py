"""The project's one image reader: pixels and displayed size of image files.

Every image the project decodes (dataset mappers, demo, DOTA splitter, STR LMDB tools, the
converters' size probes) goes through this module, so all of them follow the rules below.

Output of :func:`read_image` / :func:`decode_image`: a C-contiguous, writable ``(H, W, 3)``
``uint8`` array, channels in ``"RGB"`` or ``"BGR"`` order as requested, row ``y`` from the top,
column ``x`` from the left of the *displayed* image.

EXIF orientation (the one rule):
    Pixels are returned in the displayed orientation: the EXIF ``Orientation`` tag (274, values
    2-8) is applied, as ``detectron2.data.detection_utils.read_image`` and image viewers do, and
    :func:`read_image_size` reports the displayed size (orientations 5-8 swap width and height).
    Dataset annotations are therefore expected in the displayed frame; :func:`read_image_header`
    gives the stored size and orientation that
    :func:`fasttcm.data.exif.apply_exif_to_points` needs to map stored-frame coordinates. Where
    the tag is read from, and what a malformed one counts as: :mod:`fasttcm.data.exif`.

Bit depth and colour:
    * 8-bit images: exactly the values of ``PIL.Image.convert("RGB")``, i.e. identical to
      detectron2's ``read_image(path, format)`` for ``format`` in ``{"RGB", "BGR"}``. Gray,
      gray+alpha, RGBA, palette, bilevel, CMYK, YCbCr become RGB; alpha is dropped, not
      composited.
    * 16-bit samples are scaled, not clipped: ``round(v * 255 / 65535)`` (``257 * k -> k``),
      for 16-bit PNG and TIFF files (decoded with OpenCV: PIL keeps only the high byte of 16-bit
      colour PNGs) and PIL's 16-bit gray modes (``I;16*``). 32-bit int/float images are refused.
    * 8-bit RGB non-interlaced PNG files are decoded by OpenCV straight into one preallocated
      array: one copy of the image in memory instead of about three with PIL (aerial scenes
      reach 20000 x 20000 pixels). PNG is lossless, so the values are PIL's.

Errors (every message names the file, or for bytes the given name):
    * missing file: ``FileNotFoundError`` (from ``open``);
    * truncated, corrupt or unrecognized data, unsupported pixel formats:
      :class:`ImageReadError` (an ``OSError``, like PIL's own errors). A partial image is never
      returned, even if other code set ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES``;
    * more pixels than the limit: :class:`ImageTooLargeError` (a subclass), raised from the
      header before any pixel is decoded.

Pixel limit: ``width * height`` must not exceed ``max_pixels``, by default the limit in force
of :mod:`fasttcm.data.pixel_limit` (89.5 megapixels unless set otherwise). PIL's process-wide
check is switched off only while this module opens a header (under a lock).
"""

import contextlib
import io
import math
import os
import struct
import threading
from typing import NamedTuple, Optional, Union

import cv2
import numpy as np
from PIL import Image, ImageFile

from .exif import orientation_of, to_displayed_frame
from .pixel_limit import MAX_IMAGE_PIXELS_ENV, Limit, limit_in_force

__all__ = [
    "ImageReadError",
    "ImageTooLargeError",
    "ImageSize",
    "ImageHeader",
    "read_image",
    "decode_image",
    "read_image_size",
    "read_image_header",
    "exif_orientation",
]

_FORMATS = ("RGB", "BGR")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_RGB = 2  # IHDR colour type of 8/16-bit truecolour without alpha
_PIL_LOCK = threading.RLock()


class ImageReadError(OSError):
    """An image cannot be decoded (corrupt, truncated, unsupported); the message names it.

    Args:
        message: full message, starting with the file name.
        path: the file (or the name given for bytes), kept as ``.path``.
    """

    def __init__(self, message: str, path: Optional[str] = None):
        super().__init__(message)
        self.path = path


class ImageTooLargeError(ImageReadError):
    """The image has more pixels than the limit; the message says how to raise it."""


class ImageSize(NamedTuple):
    """Displayed size of an image in pixels, in the ``(height, width)`` order of ``shape[:2]``."""

    height: int
    width: int


class ImageHeader(NamedTuple):
    """What an image's header says: its *stored* size and its EXIF orientation.

    Attributes:
        width, height: size of the stored pixel grid, before the orientation is applied.
        orientation: EXIF orientation, 1 (as stored) to 8.
    """

    width: int
    height: int
    orientation: int


# ---------------------------------------------------------------------------------------------
# Pixel limit


def _check_limit(name: str, width: int, height: int, max_pixels: Optional[Limit]) -> None:
    limit = limit_in_force(max_pixels)
    if width * height > limit:
        raise ImageTooLargeError(
            f"{name}: image is {width} x {height} (W x H) = {width * height} pixels, more than the "
            f"limit of {limit} pixels (a guard against decompression bombs). If the file is "
            f"trusted, raise the limit: read_image(..., max_pixels=N), "
            f"fasttcm.data.pixel_limit.set_max_image_pixels(N) or the environment variable "
            f"{MAX_IMAGE_PIXELS_ENV}=N (N an integer, or 'inf' for no limit)",
            name,
        )


# ---------------------------------------------------------------------------------------------
# PIL access with this module's rules


@contextlib.contextmanager
def _pil_overrides(bomb_check_off: bool):
    """Temporarily disable PIL's pixel check and force strict truncation handling, under a lock.

    Only globals that differ from what this module needs are touched, so the common case
    (``LOAD_TRUNCATED_IMAGES`` False, no header being opened) takes no lock.
    """
    need_bomb = bomb_check_off and Image.MAX_IMAGE_PIXELS is not None
    need_trunc = bool(ImageFile.LOAD_TRUNCATED_IMAGES)
    if not (need_bomb or need_trunc):
        yield
        return
    with _PIL_LOCK:
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        if need_bomb:
            Image.MAX_IMAGE_PIXELS = None
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _decode_error(name: str, error: BaseException) -> ImageReadError:
    return ImageReadError(
        f"{name}: cannot decode the image ({type(error).__name__}: {error}); the file is "
        "corrupt, truncated or not an image",
        name,
    )


def _open_pil(fp, name: str) -> Image.Image:
    """Open the header of `fp` with PIL (no pixel is decoded)."""
    try:
        with _pil_overrides(bomb_check_off=True):
            image = Image.open(fp)
    except Exception as e:  # UnidentifiedImageError, SyntaxError, struct.error, ...
        raise _decode_error(name, e) from e
    if image.width <= 0 or image.height <= 0:
        raise ImageReadError(f"{name}: the image is empty ({image.width} x {image.height})", name)
    return image


class _PngHeader(NamedTuple):
    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlaced: bool


def _png_header(head: bytes) -> Optional[_PngHeader]:
    """IHDR fields of a PNG from its first 29 bytes, or None if `head` is not a PNG."""
    if len(head) < 29 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return _PngHeader(width, height, depth, colour, interlace != 0)


# ---------------------------------------------------------------------------------------------
# Decoders


def _scale_16_to_8(array: np.ndarray) -> np.ndarray:
    """``round(v * 255 / 65535)`` of a uint16 array, as uint8 (no ties: 65535 is odd)."""
    return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _cv2_to_rgb(array: np.ndarray, name: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an OpenCV ``IMREAD_UNCHANGED`` result (gray/GA/BGR/BGRA)."""
    if array.dtype == np.uint16:
        array = _scale_16_to_8(array)
    elif array.dtype != np.uint8:
        raise ImageReadError(f"{name}: unsupported sample type {array.dtype}", name)
    if array.ndim == 2 or array.shape[2] <= 2:  # gray, gray + alpha
        gray = array if array.ndim == 2 else array[..., 0]
        return np.repeat(gray[..., None], 3, axis=2)
    return np.ascontiguousarray(array[..., 2::-1])  # BGR(A) -> RGB, alpha dropped


def _decode_16bit(fp, name: str, path: Optional[str]) -> np.ndarray:
    """RGB uint8 of a 16-bit PNG/TIFF with OpenCV (stored orientation)."""
    try:
        if path is not None:
            array = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        else:
            fp.seek(0)
            array = cv2.imdecode(np.frombuffer(fp.read(), np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        raise _decode_error(name, e) from e
    if array is None or array.size == 0:
        raise _decode_error(name, ValueError("OpenCV could not decode the 16-bit image"))
    return _cv2_to_rgb(array, name)


def _decode_png_into_buffer(path: str, height: int, width: int) -> Optional[np.ndarray]:
    """BGR uint8 of an 8-bit RGB non-interlaced PNG decoded into one new array, or None.

    OpenCV returns the destination array even when decoding failed part-way, so success is
    checked on the last row, which a non-interlaced decode writes last: it is pre-filled with
    a pattern and must have changed; a row that happens to equal the pattern is told apart by
    a second decode with another pattern. None means "decode with PIL" (which then reports
    a proper error, or succeeds on a file libpng is stricter about, e.g. without ``IEND``).
    """
    buffer = np.empty((height, width, 3), np.uint8)
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    ramp = np.arange(width * 3, dtype=np.uint32).reshape(width, 3)
    for seed in (7, 101):
        pattern = ((ramp * seed + 13) % 251).astype(np.uint8)
        buffer[-1] = pattern
        try:
            out = cv2.imread(path, buffer, flags)
        except (cv2.error, TypeError):  # TypeError: OpenCV < 4.10 has no `dst` argument
            return None
        if out is None or out.shape != (height, width, 3):
            return None
        if out is not buffer:  # OpenCV allocated its own array: a normal return value
            return out
        if not np.array_equal(buffer[-1], pattern):
            return buffer
    return None  # the last row kept both patterns: nothing was written


def _decode_pil(image: Image.Image, name: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an opened PIL image (stored orientation)."""
    try:
        with _pil_overrides(bomb_check_off=False):
            image.load()
        mode = image.mode
        if mode.startswith("I;16"):
            gray = _scale_16_to_8(np.asarray(image))
            return np.repeat(gray[..., None], 3, axis=2)
        if mode in ("I", "F"):
            raise ImageReadError(
                f"{name}: unsupported pixel format {mode!r} (32-bit integer or float samples)",
                name,
            )
        array = np.asarray(image if mode == "RGB" else image.convert("RGB"))
    except ImageReadError:
        raise
    except Image.DecompressionBombError as e:  # a frame bigger than the header said
        raise ImageTooLargeError(f"{name}: {e}", name) from e
    except Exception as e:  # OSError "image file is truncated", SyntaxError, ValueError, ...
        raise _decode_error(name, e) from e
    return array


def _tiff_bits(image: Image.Image) -> int:
    """Largest BitsPerSample of a TIFF (8 for other formats)."""
    if image.format != "TIFF":
        return 8
    bits = image.tag_v2.get(258, 8)
    return max(bits) if isinstance(bits, tuple) and bits else int(bits) if bits else 8


def _decode(fp, name: str, format: str, max_pixels, path: Optional[str]) -> np.ndarray:
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS}, got {format!r}")
    png = _png_header(fp.read(29))
    fp.seek(0)
    with _open_pil(fp, name) as image:
        width, height = image.size
        _check_limit(name, width, height, max_pixels)
        orientation = orientation_of(image)
        bgr = None
        if (png is not None and png.bit_depth == 16) or _tiff_bits(image) == 16:
            rgb = _decode_16bit(fp, name, path)
        else:
            if path is not None and png == _PngHeader(width, height, 8, _PNG_RGB, False):
                bgr = _decode_png_into_buffer(path, height, width)
            rgb = _decode_pil(image, name) if bgr is None else None
    if bgr is not None:  # one buffer in BGR: reverse the channels in place, a band at a time
        if format == "RGB":
            for top in range(0, bgr.shape[0], 256):
                band = bgr[top : top + 256]
                band[...] = band[..., ::-1]
        array = bgr
    else:
        array = rgb[..., ::-1] if format == "BGR" else rgb
    array = to_displayed_frame(array, orientation)
    if not (array.flags.c_contiguous and array.flags.writeable):
        array = np.array(array, order="C")
    return array


# ---------------------------------------------------------------------------------------------
# Public API


def read_image(
    path: Union[str, os.PathLike], format: str = "RGB", *, max_pixels: Optional[Limit] = None
) -> np.ndarray:
    """Read an image file into a uint8 array in the displayed (EXIF-applied) orientation.

    Args:
        path: image file (any format PIL reads; 16-bit PNG/TIFF through OpenCV).
        format: channel order of the result, ``"RGB"`` or ``"BGR"``.
        max_pixels: largest ``width * height`` accepted (``math.inf``: no limit); None uses
            :func:`fasttcm.data.pixel_limit.get_max_image_pixels`.

    Returns:
        (H, W, 3) uint8, C-contiguous and writable; H, W of the displayed image.

    Raises:
        FileNotFoundError: `path` does not exist.
        ImageTooLargeError: more than `max_pixels` pixels (nothing decoded).
        ImageReadError: corrupt, truncated, unrecognized or unsupported image.
        ValueError: `format` is neither ``"RGB"`` nor ``"BGR"``.
    """
    path = os.fspath(path)
    with open(path, "rb") as fp:
        return _decode(fp, path, format, max_pixels, path)


def decode_image(
    data: bytes,
    format: str = "RGB",
    *,
    max_pixels: Optional[Limit] = None,
    name: str = "<image bytes>",
) -> np.ndarray:
    """:func:`read_image` of an encoded image held in memory (e.g. an LMDB value).

    Args:
        data: the bytes of an image file.
        format, max_pixels: as for :func:`read_image`.
        name: how error messages name the image (e.g. ``"<lmdb dir>:image-000000001"``).

    Returns:
        (H, W, 3) uint8 array, as :func:`read_image`.

    Raises:
        ImageReadError: empty, corrupt, truncated or unsupported data (ImageTooLargeError
            beyond the pixel limit).
    """
    if not data:
        raise ImageReadError(f"{name}: no image data (0 bytes)", name)
    return _decode(io.BytesIO(bytes(data)), name, format, max_pixels, None)


def read_image_header(path: Union[str, os.PathLike]) -> ImageHeader:
    """Stored size and EXIF orientation of an image, from its header (no pixel is decoded).

    Returns:
        :class:`ImageHeader` ``(width, height, orientation)``, the size before orientation: what
        :func:`fasttcm.data.exif.apply_exif_to_points` needs to map stored-frame coordinates.

    Raises:
        FileNotFoundError: `path` does not exist.
        ImageReadError: the header cannot be read.
    """
    path = os.fspath(path)
    with open(path, "rb") as fp, _open_pil(fp, path) as image:
        return ImageHeader(int(image.width), int(image.height), orientation_of(image))


def read_image_size(
    path: Union[str, os.PathLike], *, max_pixels: Optional[Limit] = math.inf
) -> ImageSize:
    """Displayed size of an image, read from its header (no pixel data is decoded).

    Equals ``read_image(path).shape[:2]``: EXIF orientations 5-8 swap width and height.

    Args:
        path: image file.
        max_pixels: the pixel limit the size is checked against, as in :func:`read_image`
            (None: :func:`fasttcm.data.pixel_limit.get_max_image_pixels`); by default none, the
            size is only reported.

    Returns:
        :class:`ImageSize` ``(height, width)``.

    Raises:
        FileNotFoundError: `path` does not exist.
        ImageTooLargeError: more than `max_pixels` pixels.
        ImageReadError: the header cannot be read.
    """
    width, height, orientation = read_image_header(path)
    _check_limit(os.fspath(path), width, height, max_pixels)
    if orientation >= 5:
        width, height = height, width
    return ImageSize(height, width)


def exif_orientation(path: Union[str, os.PathLike]) -> int:
    """EXIF orientation of an image file, 1 (as stored) to 8; 1 without or with a bad tag.

    Raises:
        FileNotFoundError: `path` does not exist.
        ImageReadError: the header cannot be read.
    """
    return read_image_header(path).orientation
