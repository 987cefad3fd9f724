"""EXIF orientation: reading the tag, and mapping pixels and points to the displayed frame.

The project reads pixels in the displayed orientation (:mod:`fasttcm.data.image_io`): the EXIF
``Orientation`` tag (274, values 2-8) is applied, as ``detectron2.data.detection_utils.read_image``
and image viewers do. Dataset annotations are therefore expected in the displayed frame; a
format whose coordinates refer to the stored (unrotated) pixel grid must map them with
``apply_exif_to_points(points, header.orientation, header.width, header.height)``, where
``header = fasttcm.data.image_io.read_image_header(path)`` holds the stored size. The
scene-text converters do so where the dataset is known to annotate the stored frame, and warn
where that is not known (:mod:`fasttcm.data.converters.exif_frame`; ``datasets/README.md``).

The tag comes from JPEG APP1, the TIFF IFD, the WebP EXIF chunk (from XMP when EXIF lacks it,
as in PIL) and a PNG ``eXIf`` chunk before the image data; one after the image data is ignored
(finding it needs a full decode; detectron2 honours it; writers put it first). A malformed
EXIF block or a value outside 1-8 counts as 1 (no change), as in detectron2.
"""

import numpy as np
from PIL import Image

__all__ = ["EXIF_ORIENTATION_TAG", "orientation_of", "to_displayed_frame", "apply_exif_to_points"]

EXIF_ORIENTATION_TAG = 274

# EXIF orientation -> view of a stored-frame (H, W, C) array in the displayed frame
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def orientation_of(image: Image.Image) -> int:
    """EXIF orientation of an opened (not necessarily loaded) PIL image.

    Args:
        image: the image, as ``PIL.Image.open`` returns it.

    Returns:
        The orientation, 1 (as stored) to 8; 1 without the tag, with a malformed EXIF block or
        a value outside 1-8.
    """
    try:
        if image.format == "PNG" and "exif" not in image.info:
            return 1  # PngImageFile.getexif would decode the whole image to look further
        value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # malformed EXIF: ignored, as in detectron2
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def to_displayed_frame(array: np.ndarray, orientation: int) -> np.ndarray:
    """A stored-frame ``(H, W, ...)`` array seen in the displayed frame.

    Args:
        array: pixels as stored, row 0 at the top of the stored grid.
        orientation: EXIF orientation; any value outside 2-8 leaves `array` as it is.

    Returns:
        A view of `array` (not necessarily contiguous) in the displayed orientation.
    """
    return _ORIENT.get(orientation, np.asarray)(array)


def apply_exif_to_points(
    points, orientation: int, stored_width: float, stored_height: float
) -> np.ndarray:
    """Map points from the stored (unrotated) pixel frame to the displayed frame.

    Coordinates are continuous pixel coordinates, x right and y down, with pixel ``(i, j)``
    covering ``[j, j + 1) x [i, i + 1)`` (detectron2's convention), so a polygon around stored
    pixels surrounds the same pixels of :func:`fasttcm.data.image_io.read_image`'s output.

    Args:
        points: (N, 2) array-like of ``(x, y)`` in the stored frame (any numeric dtype).
        orientation: EXIF orientation 1-8 (see :func:`fasttcm.data.image_io.exif_orientation`).
        stored_width, stored_height: size of the stored image, before orientation
            (:func:`fasttcm.data.image_io.read_image_header`).

    Returns:
        (N, 2) float64 ``(x, y)`` in the displayed frame.

    Raises:
        ValueError: `points` is not (N, 2) or `orientation` is not in 1-8.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {pts.shape}")
    if orientation not in range(1, 9):
        raise ValueError(f"EXIF orientation must be 1-8, got {orientation!r}")
    x, y = pts[:, 0], pts[:, 1]
    w, h = float(stored_width), float(stored_height)
    mapped = {
        1: (x, y),
        2: (w - x, y),
        3: (w - x, h - y),
        4: (x, h - y),
        5: (y, x),
        6: (h - y, x),
        7: (h - y, w - x),
        8: (y, w - x),
    }[orientation]
    return np.stack(mapped, axis=1)
