"""Padded batches of polygons: stacking, vertex gathering, orientation and validity (pure torch).

Polygon rectification works on N polygons of different vertex counts at once. They are stacked
into one ``(N, K_max, 2)`` float64 tensor of vertices ``(x, y)`` in absolute pixels of their
image (x to the right, y down), each row padded by repeating its first vertex so that
projections, extents and arc lengths are unchanged by the padding; ``lengths`` (N,) holds the
true vertex counts. "Clockwise" means clockwise as seen on the image (x right, y down), where the
shoelace formula gives a positive area.
"""

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

__all__ = [
    "EPS",
    "gather_vertices",
    "is_valid",
    "make_clockwise",
    "pad_polygons",
    "rightwards",
    "signed_areas",
]

EPS = 1e-9
"""Length (pixels) below which an edge, a direction or a denominator counts as zero."""

# pixels^2: below it no rectangle, hence no warp, exists whatever min_area says
_MIN_AREA_FLOOR = 1e-6


def pad_polygons(
    polygons: Sequence[Union[np.ndarray, torch.Tensor]], device: Optional[torch.device] = None
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack polygons of different vertex counts into one padded float64 tensor.

    Args:
        polygons: N arrays or tensors of shape (K_i, 2), vertices (x, y); K_i may be 0.
        device: device of the outputs (default: CPU).

    Returns:
        points: (N, K_max, 2) float64; rows are padded by repeating their first vertex, and
            non-finite coordinates are replaced by 0.
        lengths: (N,) int64 vertex counts K_i.
        finite: (N,) bool, False where a polygon had a NaN or infinite coordinate.

    Raises:
        ValueError: a polygon is not of shape (K, 2).
    """
    arrays = []
    for index, poly in enumerate(polygons):
        if isinstance(poly, torch.Tensor):
            poly = poly.detach().cpu().numpy()
        arr = np.asarray(poly, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(
                f"rectify.pad_polygons: polygon {index} has shape {arr.shape}, expected (K, 2)"
            )
        arrays.append(arr)
    n = len(arrays)
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    k_max = int(lengths.max(initial=0))
    points = np.zeros((n, max(k_max, 1), 2), dtype=np.float64)
    finite = np.ones(n, dtype=bool)
    if lengths.sum() > 0:
        flat = np.concatenate(arrays, axis=0)
        rows = np.repeat(np.arange(n), lengths)
        cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        bad = ~np.isfinite(flat).all(axis=1)
        finite[np.unique(rows[bad])] = False
        flat = np.where(bad[:, None], 0.0, flat)
        points[rows, cols] = flat
        # padding repeats the first vertex, so projections, extents and arc lengths are unchanged
        first = points[:, :1].copy()
        pad = np.arange(points.shape[1])[None, :] >= lengths[:, None]
        points = np.where(pad[..., None], first, points)
    device = torch.device("cpu") if device is None else device
    return (
        torch.from_numpy(points).to(device),
        torch.from_numpy(lengths).to(device),
        torch.from_numpy(finite).to(device),
    )


def gather_vertices(points: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Pick vertices of each polygon by index.

    Args:
        points: (N, K, 2) vertices (x, y).
        index: (N, L) int64 vertex indices in [0, K).

    Returns:
        (N, L, 2): ``out[n, l] = points[n, index[n, l]]``.
    """
    return torch.gather(points, 1, index[..., None].expand(-1, -1, 2))


def signed_areas(points: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Shoelace areas of padded polygons.

    Args:
        points: (N, K_max, 2) padded vertices (x, y) in pixels (x right, y down).
        lengths: (N,) vertex counts.

    Returns:
        (N,) areas in pixels^2; positive = clockwise on the image.
    """
    k = torch.arange(points.shape[1], device=points.device)
    nxt = (k[None] + 1) % lengths.clamp_min(1)[:, None]
    p_next = gather_vertices(points, nxt)
    cross = points[..., 0] * p_next[..., 1] - p_next[..., 0] * points[..., 1]
    return 0.5 * torch.where(k[None] < lengths[:, None], cross, torch.zeros_like(cross)).sum(1)


def make_clockwise(points: torch.Tensor, lengths: torch.Tensor, area: torch.Tensor) -> torch.Tensor:
    """Reverse counter-clockwise polygons, keeping their first vertex first.

    Args:
        points: (N, K_max, 2) padded vertices (x, y).
        lengths: (N,) vertex counts.
        area: (N,) signed areas from :func:`signed_areas` (negative = counter-clockwise).

    Returns:
        (N, K_max, 2) clockwise polygons; the padding stays the first vertex.
    """
    k = torch.arange(points.shape[1], device=points.device)[None]
    length = lengths.clamp_min(1)[:, None]
    reversed_index = torch.where(k < length, (length - k) % length, torch.zeros_like(k))
    index = torch.where((area < 0)[:, None], reversed_index, k.expand_as(reversed_index))
    return gather_vertices(points, index)


def rightwards(vectors: torch.Tensor) -> torch.Tensor:
    """Flip directions to the reading convention: x > 0, or straight down when vertical.

    Args:
        vectors: (..., 2) directions (x, y) on the image (x right, y down).

    Returns:
        (..., 2) the same vectors, negated where they point left (or up, when vertical).
    """
    x, y = vectors[..., 0], vectors[..., 1]
    scale = vectors.norm(dim=-1)
    vertical = x.abs() <= 1e-6 * scale
    flip = torch.where(vertical, y < 0, x < 0)
    return torch.where(flip[..., None], -vectors, vectors)


def is_valid(
    lengths: torch.Tensor, finite: torch.Tensor, area: torch.Tensor, min_area: float
) -> torch.Tensor:
    """Which polygons can be rectified at all.

    Args:
        lengths: (N,) vertex counts.
        finite: (N,) bool, all coordinates finite.
        area: (N,) signed areas (pixels^2).
        min_area: smallest absolute area (pixels^2); a tiny floor applies even when it is 0.

    Returns:
        (N,) bool: at least 3 vertices, all finite, absolute area >= min_area (and > 0).
    """
    return finite & (lengths >= 3) & (area.abs() >= max(min_area, _MIN_AREA_FLOOR))
