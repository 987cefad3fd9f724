"""What the predictors accept as an image, turned into one form: an ``(H, W, 3)`` uint8 RGB array.

Accepted, one image or a list/tuple of them:

* a path (``str`` or ``os.PathLike``): read by the project's image reader
  (:func:`fasttcm.data.image_io.read_image`): EXIF orientation applied, 16-bit scaled, gray and
  RGBA made RGB, the pixel limit checked;
* a numpy array ``(H, W, 3)`` or ``(H, W, 4)`` (alpha dropped) in the channel order given by
  `channel_order` (``"RGB"``, the default, or ``"BGR"`` as ``cv2.imread`` returns), or a
  gray ``(H, W)`` / ``(H, W, 1)`` array; ``uint8``, or ``uint16`` scaled by
  ``round(v * 255 / 65535)`` like 16-bit files;
* a ``PIL.Image.Image``, converted like a decoded file (``"RGB"`` as is, 16-bit gray scaled,
  other modes through ``convert("RGB")``). Its pixels are taken as stored: apply
  ``PIL.ImageOps.exif_transpose`` first, or pass the path, to get the displayed orientation.
"""

import os
from typing import Any, List, Optional, Tuple

import numpy as np
from PIL import Image

from ..data.image_io import read_image

__all__ = ["CHANNEL_ORDERS", "as_image_list", "to_rgb"]

CHANNEL_ORDERS = ("RGB", "BGR")


def _scale_16_to_8(array: np.ndarray) -> np.ndarray:
    """``round(v * 255 / 65535)`` as uint8 (the reader's rule for 16-bit samples)."""
    return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _array_to_rgb(array: np.ndarray, channel_order: str, name: str) -> np.ndarray:
    if array.dtype == np.uint16:
        array = _scale_16_to_8(array)
    elif array.dtype != np.uint8:
        raise TypeError(
            f"{name}: arrays must be uint8 (or uint16), got {array.dtype}; convert float images "
            "with (image * 255).round().astype(np.uint8) if they are in [0, 1]"
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(
            f"{name}: expected an (H, W, 3), (H, W, 4) or (H, W) array, got shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name}: the image is empty (shape {array.shape})")
    array = array[:, :, :3]
    if channel_order == "BGR":
        array = array[:, :, ::-1]
    return np.ascontiguousarray(array)


def _pil_to_rgb(image: Image.Image, name: str) -> np.ndarray:
    mode = image.mode
    if mode.startswith("I;16"):
        return _array_to_rgb(np.asarray(image).astype(np.uint16), "RGB", name)
    if mode in ("I", "F"):
        raise TypeError(f"{name}: unsupported PIL mode {mode!r} (32-bit integer or float samples)")
    if image.width == 0 or image.height == 0:
        raise ValueError(f"{name}: the image is empty ({image.width} x {image.height})")
    return np.array(image if mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


def to_rgb(
    image: Any, channel_order: str = "RGB", *, max_pixels=None, name: str = "image"
) -> Tuple[np.ndarray, Optional[str]]:
    """One accepted image (module docstring) as ``(H, W, 3)`` uint8 RGB.

    Args:
        image: a path, a numpy array or a PIL image.
        channel_order: channel order of numpy arrays, ``"RGB"`` or ``"BGR"`` (paths and PIL
            images carry their own).
        max_pixels: pixel limit of files read from a path (None: the reader's limit in force).
        name: how error messages name the image (e.g. ``"image 3"``).

    Returns:
        ``(rgb, source)``: the C-contiguous array (the caller's own array when it is already a
        contiguous uint8 RGB one, not a copy) and the path for path inputs, else None.

    Raises:
        FileNotFoundError, fasttcm.data.image_io.ImageReadError: a path that cannot be read.
        TypeError, ValueError: an unsupported type, dtype, shape or channel order.
    """
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        return read_image(path, "RGB", max_pixels=max_pixels), path
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image, channel_order, name), None
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image, name), None
    raise TypeError(
        f"{name}: expected a path, a numpy array or a PIL image, got {type(image).__name__}"
    )


def as_image_list(inputs: Any) -> Tuple[List[Any], bool]:
    """``(list of images, whether one image was given)``: a list or tuple is a batch, anything
    else one image."""
    if isinstance(inputs, (list, tuple)):
        return list(inputs), False
    return [inputs], True
