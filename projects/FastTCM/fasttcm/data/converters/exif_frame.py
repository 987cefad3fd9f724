"""EXIF orientation and the frame a dataset's annotation coordinates refer to.

The project's rule (:mod:`fasttcm.data.image_io`): pixels are read in the *displayed*
orientation, the EXIF ``Orientation`` tag applied, so every polygon of the text JSON and of the
evaluation GT is in the displayed frame. A photo taken with the camera turned is often stored
unrotated with a tag (e.g. 6: turn 90 degrees clockwise for display), and the annotation tools
of some datasets drew on the stored pixel grid. Each converter therefore states which frame its
native annotations use, and calls one of these two functions on the images it collected:

* :func:`map_stored_frame`: the dataset is known to annotate the stored frame (MSRA-TD500,
  SCUT-CTW1500). The polygons of every image whose orientation is not 1 are mapped with
  :func:`fasttcm.data.exif.apply_exif_to_points`. Rotations (3, 6, 8) keep the vertex order
  clockwise on screen; mirrorings (2, 4, 5, 7) reverse it, as they reverse the image.
* :func:`warn_unverified_frame`: which frame the dataset uses is not known (ICDAR 2015,
  Total-Text, ArT). Polygons are kept as written, i.e. taken to be in the displayed frame, and a
  warning names every annotated image with an orientation other than 1, so that a wrong guess
  is never silent.

Images without annotations are not probed. No detectron2 import.
"""

import dataclasses
import logging
from typing import List, Sequence

from ..exif import apply_exif_to_points
from ..image_io import ImageHeader, read_image_header
from .annotations import SourceImage
from .source_files import ConversionError

logger = logging.getLogger(__name__)

__all__ = ["map_stored_frame", "warn_unverified_frame"]


def _header(path) -> ImageHeader:
    try:
        return read_image_header(path)
    except OSError as e:  # ImageReadError, FileNotFoundError, ...
        raise ConversionError(path, f"cannot read the image header ({e})") from e


def map_stored_frame(images: Sequence[SourceImage], what: str) -> List[SourceImage]:
    """Annotations drawn on the stored pixel grid -> the displayed frame of the reader.

    Args:
        images: collected images whose polygons are in the stored (unrotated) frame.
        what: dataset and split, for the log (e.g. ``"MSRA-TD500 test"``).

    Returns:
        The images in the same order; those with an EXIF orientation other than 1 get new
        annotations with mapped polygons (the others are returned as they are).

    Raises:
        ConversionError: the header of an annotated image cannot be read.
    """
    out, mapped = [], []
    for src in images:
        header = _header(src.path) if src.annotations else None
        if header is None or header.orientation == 1:
            out.append(src)
            continue
        annotations = [
            dataclasses.replace(
                ann,
                polygon=apply_exif_to_points(
                    ann.polygon, header.orientation, header.width, header.height
                ),
            )
            for ann in src.annotations
        ]
        out.append(dataclasses.replace(src, annotations=annotations))
        mapped.append(f"{src.path} ({header.orientation})")
    if mapped:
        logger.info(
            "%s: %d image(s) have an EXIF orientation; their annotations, drawn on the stored "
            "pixels, were mapped to the displayed image: %s",
            what,
            len(mapped),
            ", ".join(mapped),
        )
    return out


def warn_unverified_frame(images: Sequence[SourceImage], what: str) -> List[SourceImage]:
    """Warn about every annotated image with an EXIF orientation other than 1.

    Args:
        images: collected images, polygons as written in the native files.
        what: dataset and split, for the messages (e.g. ``"ICDAR 2015 train"``).

    Returns:
        `images`, unchanged (as a list).

    Raises:
        ConversionError: the header of an annotated image cannot be read.
    """
    for src in images:
        if not src.annotations:
            continue
        orientation = _header(src.path).orientation
        if orientation != 1:
            logger.warning(
                "%s: %s has EXIF orientation %d: the image is read rotated/mirrored for "
                "display, and its annotations are kept as written, i.e. taken to be drawn on "
                "the displayed image. Which frame this dataset annotates is not known; if the "
                "boxes land on the wrong region, they follow the stored pixels: remove the "
                "Orientation tag from the image file and convert again.",
                what,
                src.path,
                orientation,
            )
    return list(images)
