"""Free-space bookkeeping: which ground of an image is taken, so that zones and freely placed
objects do not overlap, and whether a shape lies inside the image.
"""

import cv2
import numpy as np

from .primitives import SUBPIXEL_BITS, to_fixed_point

__all__ = ["Occupancy", "inside_image"]


class Occupancy:
    """Coarse mask of taken ground, to keep zones and free-placed objects apart.

    Attributes:
        cell: side of one mask cell in image pixels.
        mask: ``(height // cell + 1, width // cell + 1)`` ``uint8``, 1 where the ground is taken;
            cell ``(i, j)`` covers image pixels ``y`` in ``[i cell, (i + 1) cell)`` and ``x`` in
            ``[j cell, (j + 1) cell)``.
    """

    def __init__(self, height: int, width: int, cell: int):
        self.cell = cell
        self.mask = np.zeros((height // cell + 1, width // cell + 1), np.uint8)

    def _raster(self, corners: np.ndarray):
        pts = corners / self.cell
        x0, y0 = np.floor(pts.min(0)).astype(int)
        x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, self.mask.shape[1]), min(y1, self.mask.shape[0])
        local = np.zeros((max(y1 - y0, 1), max(x1 - x0, 1)), np.uint8)
        cv2.fillPoly(local, [to_fixed_point(pts - [x0, y0])], 1, cv2.LINE_8, SUBPIXEL_BITS)
        return (slice(y0, y0 + local.shape[0]), slice(x0, x0 + local.shape[1])), local

    def take_if_free(self, corners: np.ndarray) -> bool:
        """Mark the polygon `corners` ``(N, 2)`` (image ``(x, y)`` pixels) as taken, unless any
        of its cells already is.

        Returns:
            True when the polygon was free (and is now taken), False when nothing changed.
        """
        roi, local = self._raster(corners)
        region = self.mask[roi]
        if np.any(region & local[: region.shape[0], : region.shape[1]]):
            return False
        region |= local[: region.shape[0], : region.shape[1]]
        return True


def inside_image(corners: np.ndarray, width: int, height: int, margin: float = 2.0) -> bool:
    """Whether every point of `corners` ``(N, 2)`` (image ``(x, y)`` pixels) lies at least
    `margin` pixels inside a `width` x `height` image."""
    return bool(
        corners[:, 0].min() >= margin
        and corners[:, 1].min() >= margin
        and corners[:, 0].max() <= width - margin
        and corners[:, 1].max() <= height - margin
    )
