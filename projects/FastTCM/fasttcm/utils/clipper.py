"""Polygon offsetting with Clipper (``pyclipper``), the library DBNet's official targets and
post-processing use: round joins, closed polygons, integer coordinates."""

from typing import List

import numpy as np
import pyclipper

__all__ = ["clipper_offset"]


def clipper_offset(points, delta: float) -> List[np.ndarray]:
    """Offset a closed polygon with round joins (pyclipper's default arc tolerance, 0.25 px).

    Args:
        points: (N, 2) (x, y) vertices. Clipper works on integers: non-integer coordinates are
            truncated towards zero, as pyclipper does with Python floats.
        delta: offset in pixels; > 0 grows the polygon, < 0 shrinks it.

    Returns:
        the resulting paths in Clipper's order, each a (K_i, 2) int64 array of (x, y); empty when
        the polygon vanishes.
    """
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(
        [tuple(p) for p in np.asarray(points).tolist()],
        pyclipper.JT_ROUND,
        pyclipper.ET_CLOSEDPOLYGON,
    )
    return [np.asarray(path, dtype=np.int64).reshape(-1, 2) for path in offset.Execute(delta)]
