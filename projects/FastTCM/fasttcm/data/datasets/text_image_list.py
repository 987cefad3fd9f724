"""Unannotated text-dataset splits: detectron2 dataset dicts from a list of image file names.

Such a split (e.g. the ArT test images, which have no public annotations) is for inference and
submission only: its dicts carry no ``annotations``. Sizes come from the image headers in the
displayed (EXIF-applied) orientation, as :func:`fasttcm.data.image_io.read_image` returns the
pixels.
"""

import logging
import os
from typing import List, Optional

from ..converters.source_files import ConversionError, image_size
from ..image_io import ImageReadError
from .image_paths import check_relative_file_name, files_exist

logger = logging.getLogger(__name__)

__all__ = ["load_text_image_list"]


def load_text_image_list(list_file, image_root, dataset_name: Optional[str] = None) -> List[dict]:
    """Dataset dicts (without ``annotations``) for the images named in a text file.

    Args:
        list_file: UTF-8 text file, one image path per line relative to `image_root` (blank lines
            and lines starting with ``#`` are ignored).
        image_root: folder the listed paths are relative to.
        dataset_name: registered name, used in messages.

    Returns:
        ``{"file_name", "image_id" (position in the list, from 1), "height", "width"}`` per
        existing image; sizes come from the image headers (EXIF orientation applied, as
        detectron2 does).

    Raises:
        FileNotFoundError: the list is missing, or none of its images exists.
        ValueError: a listed name escapes `image_root`, or the list names no image.
        ImageReadError: an image header cannot be read (the message names the file).
    """
    list_file, image_root = os.fspath(list_file), os.fspath(image_root)
    if not os.path.isfile(list_file):
        label = f"Dataset {dataset_name!r}: image list" if dataset_name else "Image list"
        raise FileNotFoundError(
            f"{label} {list_file} does not exist. This split has no public annotations; create the "
            f"list yourself, one image file name per line, relative to {image_root} "
            "(see datasets/README.md)."
        )
    with open(list_file, "r", encoding="utf-8-sig") as f:
        names = [
            (lineno, s.strip())
            for lineno, s in enumerate(f.read().splitlines(), 1)
            if s.strip() and not s.lstrip().startswith("#")
        ]
    if not names:
        raise ValueError(f"{list_file}: lists no images")
    paths = [
        os.path.normpath(
            os.path.join(image_root, check_relative_file_name(n, f"{list_file}, line {k}"))
        )
        for k, n in names
    ]
    exists = files_exist(paths)
    if not exists.any():
        raise FileNotFoundError(
            f"{list_file}: none of its {len(paths)} images exists under {image_root}"
        )
    if not exists.all():
        logger.warning(
            "%s: %d of %d listed images are missing under %s and were skipped",
            list_file,
            int((~exists).sum()),
            len(paths),
            image_root,
        )
    dicts = []
    for image_id, (path, ok) in enumerate(zip(paths, exists), start=1):
        if not ok:
            continue
        try:
            height, width = image_size(path)
        except ConversionError as e:
            raise ImageReadError(str(e)) from e
        dicts.append(
            {
                "file_name": os.path.abspath(path),
                "image_id": image_id,
                "height": height,
                "width": width,
            }
        )
    logger.info("Loaded %d unannotated images from %s", len(dicts), list_file)
    return dicts
