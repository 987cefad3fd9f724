"""Names of DOTA patches: ``<image>__<rate>__<x>___<y>``, the DOTA devkit's convention.

A patch named ``P0003__1__824___0`` was cut from image ``P0003`` resized by rate ``1`` (printed
as ``1``, ``0.5``, ``1.5``), its window's top-left corner at ``x = 824``, ``y = 0`` in pixels of
the *resized* image (x right, y down). :mod:`fasttcm.data.dota_split` writes such names and the
merge of patch detections back into full images reads them.
"""

import os
import re
from dataclasses import dataclass

__all__ = ["PatchOrigin", "format_patch_name", "parse_patch_name"]

_FILE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".txt")
_PATCH_NAME = re.compile(r"^(?P<image>.+)__(?P<rate>\d+(?:\.\d+)?)__(?P<x>\d+)___(?P<y>\d+)$")


@dataclass(frozen=True)
class PatchOrigin:
    """Where a patch comes from: full image `image`, resized by `rate`, window corner `(x, y)`
    in pixels of the resized image."""

    image: str
    rate: float
    x: int
    y: int


def format_patch_name(image: str, rate: float, x: int, y: int) -> str:
    """``<image>__<rate>__<x>___<y>``, the devkit's patch name (``rate`` 1.0 is written ``1``)."""
    return f"{image}__{float(rate):g}__{int(x)}___{int(y)}"


def parse_patch_name(name: str) -> PatchOrigin:
    """Inverse of :func:`format_patch_name`; a directory and an image/``.txt`` extension are
    stripped first.

    A name without the ``__<rate>__<x>___<y>`` suffix is an unsplit image: its own single patch,
    ``PatchOrigin(name, 1.0, 0, 0)``.

    Raises:
        ValueError: a rate of 0.
    """
    stem = os.path.basename(name)
    root, ext = os.path.splitext(stem)
    if ext.lower() in _FILE_EXTENSIONS:  # not ".5__0___0" of a rate-0.5 name
        stem = root
    m = _PATCH_NAME.match(stem)
    if m is None:
        return PatchOrigin(stem, 1.0, 0, 0)
    rate = float(m.group("rate"))
    if rate <= 0:
        raise ValueError(f"patch name {name!r} has rate {rate}; rates must be > 0")
    return PatchOrigin(m.group("image"), rate, int(m.group("x")), int(m.group("y")))
