"""Finding and reading a raw dataset's files: folders, images, annotation files, image sizes.

Every converter locates its images and native annotation files with these helpers and reports a
file it cannot read as a :class:`ConversionError` naming the file (and line). No detectron2
import.
"""

import logging
import math
import os
import re
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..image_io import ImageTooLargeError, read_image_size

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGE_EXTENSIONS",
    "ConversionError",
    "natural_key",
    "read_text_lines",
    "check_split",
    "find_existing_dir",
    "find_images",
    "image_size",
    "pair_images_with_annotations",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff")
"""Image file suffixes (compared case-insensitively) that the converters pick up."""


class ConversionError(ValueError):
    """A native annotation file cannot be converted; the message names the file (and line)."""

    def __init__(self, path, message: str, line: Optional[int] = None):
        where = f"{path}" if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line


def natural_key(name: str) -> list:
    """Sort key that orders ``img_2`` before ``img_10`` (digit runs compare as numbers)."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def read_text_lines(path) -> List[str]:
    """Read a UTF-8 text file (a leading BOM is removed) into lines without line endings.

    Raises:
        ConversionError: if the file is not valid UTF-8.
    """
    try:
        with open(path, "r", encoding="utf-8-sig", newline=None) as f:
            return f.read().splitlines()
    except UnicodeDecodeError as e:
        raise ConversionError(path, f"not valid UTF-8 text ({e})") from e


def check_split(dataset: str, split: str, splits: Sequence[str]) -> None:
    """Check that `split` is one of the `splits` of `dataset`.

    Raises:
        ValueError: naming the dataset's splits, if it is not.
    """
    if split not in splits:
        raise ValueError(f"{dataset} has splits {splits}, got {split!r}")


def find_existing_dir(root, candidates: Sequence[str], what: str) -> Path:
    """Return the first of ``root/<candidate>`` that is a folder.

    Raises:
        FileNotFoundError: naming every path that was tried.
    """
    root = Path(root)
    for cand in candidates:
        path = root / cand
        if path.is_dir():
            return path
    tried = ", ".join(str(root / c) for c in candidates)
    raise FileNotFoundError(f"{what} not found; looked for a folder at: {tried}")


def find_images(image_dir) -> Dict[str, Path]:
    """Map image stem -> path for the image files directly inside `image_dir`.

    Raises:
        ValueError: if two images share a stem (e.g. ``a.jpg`` and ``a.png``), which would make
            the annotation pairing ambiguous.
    """
    images: Dict[str, Path] = {}
    for entry in sorted(os.scandir(image_dir), key=lambda e: e.name):
        if not entry.is_file() or os.path.splitext(entry.name)[1].lower() not in IMAGE_EXTENSIONS:
            continue
        stem = os.path.splitext(entry.name)[0]
        if stem in images:
            raise ValueError(
                f"{image_dir}: images {images[stem].name} and {entry.name} share the stem "
                f"{stem!r}; cannot tell which one the annotation file belongs to"
            )
        images[stem] = Path(entry.path)
    return images


def image_size(path, *, max_pixels=math.inf) -> Tuple[int, int]:
    """(height, width) of an image as :func:`fasttcm.data.image_io.read_image` returns it.

    Only the header is read; EXIF orientations 5-8 swap height and width (the reader returns
    pixels in the displayed orientation). See :func:`fasttcm.data.image_io.read_image_size`.

    Args:
        path: image file.
        max_pixels: pixel limit checked against the header, as ``read_image_size`` takes it
            (None: the reader's process-wide limit); by default none.

    Raises:
        ConversionError: if the file cannot be opened as an image, or has more pixels than
            `max_pixels`.
    """
    try:
        return tuple(read_image_size(path, max_pixels=max_pixels))
    except ImageTooLargeError as e:
        message = str(e).removeprefix(f"{os.fspath(path)}: ")  # ConversionError names the file
        raise ConversionError(
            path, f"{message} (tools/convert_dataset.py: --max-image-pixels N)"
        ) from e
    except OSError as e:  # ImageReadError, FileNotFoundError, ...
        raise ConversionError(path, f"cannot read the image header ({e})") from e


def pair_images_with_annotations(
    image_dir, ann_dir, ann_name_for_stem: Callable[[str], Sequence[str]], what: str
) -> List[Tuple[Path, Path]]:
    """Pair each image in `image_dir` with its annotation file in `ann_dir`.

    Args:
        image_dir: folder holding the images (not searched recursively).
        ann_dir: folder holding the annotation files (may be `image_dir` itself).
        ann_name_for_stem: candidate annotation file names for an image stem (first match wins).
        what: dataset/split label used in messages.

    Returns:
        ``(image_path, annotation_path)`` pairs in natural order of the image names.

    Raises:
        FileNotFoundError: an image has no annotation file (the message lists the names tried).
        ValueError: `image_dir` holds no images.
    """
    images = find_images(image_dir)
    if not images:
        raise ValueError(f"{what}: no images ({', '.join(IMAGE_EXTENSIONS)}) in {image_dir}")
    ann_files = {
        e.name: Path(e.path)
        for e in os.scandir(ann_dir)
        if e.is_file() and os.path.splitext(e.name)[1].lower() not in IMAGE_EXTENSIONS
    }
    pairs, used = [], set()
    for stem in sorted(images, key=natural_key):
        names = list(ann_name_for_stem(stem))
        match = next((n for n in names if n in ann_files), None)
        if match is None:
            raise FileNotFoundError(
                f"{what}: no annotation file for image {images[stem]} in {ann_dir} "
                f"(looked for {', '.join(names)})"
            )
        used.add(match)
        pairs.append((images[stem], ann_files[match]))
    unused = sorted(set(ann_files) - used)
    if unused:
        logger.warning(
            "%s: %d annotation file(s) in %s have no image and are ignored (e.g. %s)",
            what,
            len(unused),
            ann_dir,
            unused[0],
        )
    return pairs
