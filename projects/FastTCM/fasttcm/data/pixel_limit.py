"""The pixel limit of every image read: a guard against decompression bombs.

An image's ``width * height`` must not exceed ``max_pixels``. Default
:data:`DEFAULT_MAX_IMAGE_PIXELS` (PIL's default, 89.5 megapixels); override per call
(``max_pixels=`` of :func:`fasttcm.data.image_io.read_image`), per process
(:func:`set_max_image_pixels`) or with the environment variable ``FASTTCM_MAX_IMAGE_PIXELS``
(an integer, or ``inf`` for no limit). The config key ``INPUT.MAX_IMAGE_PIXELS`` sets
``max_pixels`` of the text and DOTA mappers and of ``tools/demo.py``
(:func:`config_pixel_limit`); ``tools/convert_dataset.py --max-image-pixels`` checks every
image header against the limit at conversion (:func:`using_max_image_pixels`).

The check itself, which raises :class:`fasttcm.data.image_io.ImageTooLargeError` from the
header before any pixel is decoded, is done by the reader.
"""

import contextlib
import math
import os
from typing import Optional, Union

import numpy as np

__all__ = [
    "DEFAULT_MAX_IMAGE_PIXELS",
    "AERIAL_MAX_IMAGE_PIXELS",
    "MAX_IMAGE_PIXELS_ENV",
    "Limit",
    "set_max_image_pixels",
    "get_max_image_pixels",
    "limit_in_force",
    "using_max_image_pixels",
    "config_pixel_limit",
]

DEFAULT_MAX_IMAGE_PIXELS = 89_478_485  # PIL.Image.MAX_IMAGE_PIXELS: 2**30 bytes / 4 / 3
AERIAL_MAX_IMAGE_PIXELS = 1 << 30  # 32768 x 32768; DOTA scenes reach 20000 x 20000
MAX_IMAGE_PIXELS_ENV = "FASTTCM_MAX_IMAGE_PIXELS"
_max_pixels_override: Optional[float] = None

Limit = Union[int, float]  # a positive pixel count; math.inf for no limit


def _parse_limit(value, what: str) -> Limit:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("inf", "none"):
            return math.inf
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{what} must be a positive integer or 'inf', got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value > 0:
        raise ValueError(f"{what} must be a positive number or math.inf, got {value!r}")
    return math.inf if value == math.inf else int(value)


def set_max_image_pixels(limit: Optional[Limit]) -> None:
    """Set the process-wide pixel limit used when ``max_pixels`` is not given.

    Args:
        limit: a positive number of pixels, ``math.inf`` for no limit, or None to go back to
            ``$FASTTCM_MAX_IMAGE_PIXELS`` or :data:`DEFAULT_MAX_IMAGE_PIXELS`.
    """
    global _max_pixels_override
    _max_pixels_override = None if limit is None else _parse_limit(limit, "max image pixels")


def get_max_image_pixels() -> Limit:
    """The pixel limit in force: :func:`set_max_image_pixels`, the environment, or the default.

    Raises:
        ValueError: ``$FASTTCM_MAX_IMAGE_PIXELS`` is neither a positive integer nor ``inf``.
    """
    if _max_pixels_override is not None:
        return _max_pixels_override
    env = os.environ.get(MAX_IMAGE_PIXELS_ENV, "").strip()
    if env:
        return _parse_limit(env, f"${MAX_IMAGE_PIXELS_ENV}")
    return DEFAULT_MAX_IMAGE_PIXELS


def limit_in_force(max_pixels: Optional[Limit]) -> Limit:
    """The limit a read with ``max_pixels=`` `max_pixels` checks against.

    Args:
        max_pixels: a positive number of pixels or ``math.inf``; None for
            :func:`get_max_image_pixels`.

    Raises:
        ValueError: `max_pixels` is not a positive number.
    """
    return get_max_image_pixels() if max_pixels is None else _parse_limit(max_pixels, "max_pixels")


def config_pixel_limit(value, default: Optional[Limit] = None) -> Optional[Limit]:
    """The ``max_pixels`` argument for a config value such as ``INPUT.MAX_IMAGE_PIXELS``.

    Args:
        value: a number of pixels, or 0 for `default`.
        default: what 0 stands for (None: :func:`get_max_image_pixels` at each read).

    Returns:
        `value` as a limit, or `default` when it is 0.

    Raises:
        ValueError: `value` is negative or not a number.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or value < 0:
        raise ValueError(f"INPUT.MAX_IMAGE_PIXELS must be an integer >= 0, got {value!r}")
    return default if value == 0 else _parse_limit(value, "INPUT.MAX_IMAGE_PIXELS")


@contextlib.contextmanager
def using_max_image_pixels(limit: Optional[Limit]):
    """Within a ``with`` block, :func:`set_max_image_pixels` (`limit`); the setting before after.

    Args:
        limit: as for :func:`set_max_image_pixels`; None changes nothing.
    """
    global _max_pixels_override
    saved = _max_pixels_override
    if limit is not None:
        set_max_image_pixels(limit)
    try:
        yield
    finally:
        _max_pixels_override = saved
