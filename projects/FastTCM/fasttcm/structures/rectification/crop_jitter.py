"""Random side offsets of annotated text polygons: ground-truth crops framed like detections.

A spotter's recognizer reads crops of *detected* polygons at inference, whose sides miss the
ground truth's by a fraction of the text height (DB outlines cut into the first or last
character, or leave a margin). Trained only on the exact ground-truth framing, the recognizer
misreads such crops. :func:`jitter_side_polygons` moves each of the four sides of an annotated
polygon independently by an offset drawn from ``U(low, high) x h`` (h: the polygon's mean
height, positive = outwards), so the recognizer learns to read through that framing noise.

Polygons use the "annotated" layout of :mod:`.rectify` (pixels, x right, y down): 4 points =
quadrilateral clockwise from the top-left corner; 2n points (n >= 2) = n along the top side left
to right, then n along the bottom side right to left. Top point i pairs with bottom point
2n - 1 - i; the segment between them is column i of the text.

* top / bottom: every top (bottom) point moves along its column, away from (towards) its pair;
* left / right: the first (last) column moves along the side's end direction (top point 0 away
  from top point 1, bottom point 0 away from bottom point 1; likewise at the right end); inwards
  by at most a quarter of the shorter end segment, so that a word shorter than the offsets keeps
  at least half its length and never folds over (the top and bottom offsets cannot fold a
  polygon as long as they stay above -0.5; the spotter bounds them at -0.25).

Other vertex counts (odd, or fewer than 4) are returned unchanged.
"""

from typing import List, Sequence, Tuple

import numpy as np

__all__ = ["jitter_side_polygons"]

_EPS = 1e-9


def _unit(vectors: np.ndarray) -> np.ndarray:
    """(..., 2) -> unit vectors (zero where the input is zero)."""
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.where(norm > _EPS, vectors / np.maximum(norm, _EPS), 0.0)


def _jitter_group(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Polygons of one vertex count 2n: (M, 2n, 2) and (M, 4) offsets
    (top, right, bottom, left) x h."""
    n = points.shape[1] // 2
    top = points[:, :n].copy()  # left -> right
    bottom = points[:, n:][:, ::-1].copy()  # left -> right: bottom i pairs with top i
    columns = bottom - top  # (M, n, 2), top -> bottom
    height = np.linalg.norm(columns, axis=-1).mean(axis=1)  # (M,)
    down = _unit(columns)
    shift = offsets * height[:, None]  # (M, 4) pixels
    top -= shift[:, None, 0:1] * down
    bottom += shift[:, None, 2:3] * down

    def room(end: int, neighbour: int) -> np.ndarray:
        """(M,) how far an end may move inwards: a quarter of its shorter end segment (half the
        word stays)."""
        lengths = [
            np.linalg.norm(side[:, end] - side[:, neighbour], axis=-1) for side in (top, bottom)
        ]
        return 0.25 * np.minimum(*lengths)

    left = np.maximum(shift[:, 3], -room(0, 1))[:, None]
    right = np.maximum(shift[:, 1], -room(-1, -2))[:, None]
    for side in (top, bottom):  # left end: point 0 away from point 1; right end: n-1 away from n-2
        side[:, 0] += left * _unit(side[:, 0] - side[:, 1])
        side[:, -1] += right * _unit(side[:, -1] - side[:, -2])
    return np.concatenate([top, bottom[:, ::-1]], axis=1)


def jitter_side_polygons(
    polygons: Sequence[np.ndarray], low: float, high: float, rng: np.random.Generator
) -> Tuple[List[np.ndarray], np.ndarray]:
    """Move the four sides of annotated polygons by random multiples of their height.

    Args:
        polygons: N (K_i, 2) arrays (x, y) in the annotated layout (module docstring).
        low, high: range of the offsets, in units of each polygon's mean column height
            (positive = outwards); ``low <= high``.
        rng: the random generator (one draw of 4 offsets per polygon, in input order).

    Returns:
        jittered: N float64 arrays; polygons with an odd or < 4 vertex count are copied unchanged.
        offsets: (N, 4) the offsets drawn (top, right, bottom, left), in units of the height.

    Raises:
        ValueError: ``low > high``, or a polygon not of shape (K, 2).
    """
    if low > high:
        raise ValueError(
            f"crop_jitter: the offset range must have low <= high, got ({low}, {high})"
        )
    arrays = []
    for index, poly in enumerate(polygons):
        arr = np.asarray(poly, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"crop_jitter: polygon {index} has shape {arr.shape}, expected (K, 2)")
        arrays.append(arr)
    offsets = rng.uniform(low, high, size=(len(arrays), 4))
    jittered = [arr.copy() for arr in arrays]
    counts = np.array([len(arr) for arr in arrays], dtype=np.int64)
    for count in np.unique(counts):  # one vectorized pass per vertex count
        if count < 4 or count % 2:
            continue
        members = np.flatnonzero(counts == count)
        moved = _jitter_group(np.stack([arrays[i] for i in members]), offsets[members])
        for row, i in enumerate(members):
            jittered[i] = moved[row]
    return jittered, offsets
