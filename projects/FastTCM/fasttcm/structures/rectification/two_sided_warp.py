"""Two-sided rectification: crops between a polygon's top and bottom sides (pure torch).

Curved text is rectified along its two long sides. Polygons are padded, clockwise batches
(:mod:`.polygon_batch`) of vertices ``(x, y)`` in absolute image pixels (x right, y down). Each
polygon is split by a left and a right end cap into a top side (left to right) and a bottom side
(right to left, clockwise). Both sides are resampled by arc length at the w column centres of the
crop, and crop column j runs on the straight line from the j-th top point to the j-th bottom point.

**End caps of 2n-point annotations** (n >= 3): n points along the top edge left->right, then n
along the bottom edge right->left, so the caps are the edges 2n - 1 -> 0 and n - 1 -> n.

**Contour fallback** (outlines without side structure). The reading axis is the polygon's
principal axis (eigenvector of the vertex covariance), oriented to the right (``x`` component >
0; a vertical axis points down, so vertical text is read top to bottom). The two vertices with the
extreme projections on that axis are the text's ends. At each end, of the two edges meeting at the
extreme vertex, the one most perpendicular to the axis is taken as the end cap if it is within 45
degrees of perpendicular and its neighbouring edges turn back on each other (by more than 120
degrees, as the two long sides at the end of a band do); otherwise the end is the vertex itself,
where top and bottom sides meet. With the polygon clockwise on the image, the vertices between the
left and the right end caps form the top side, the others the bottom side.
"""

import math
from typing import Tuple

import torch

from .polygon_batch import EPS, gather_vertices, rightwards
from .quad_warp import unit_grid

__all__ = ["annotated_side_ends", "contour_ends", "two_sided_grids"]

# an end cap is within 45 deg of perpendicular to the axis
_MAX_END_CAP_COS = math.cos(math.radians(45.0))

EndCap = Tuple[torch.Tensor, torch.Tensor]
"""(start, stop): (N,) vertex indices where an end cap begins and ends (equal for a pointed end)."""


def _path_points(
    points: torch.Tensor, lengths: torch.Tensor, start: torch.Tensor, end: torch.Tensor
) -> torch.Tensor:
    """Vertices from `start` forward (cyclically) to `end`, padded by repeating `end`.

    Args:
        points: (N, K, 2) padded vertices; lengths: (N,) vertex counts.
        start, end: (N,) vertex indices.

    Returns:
        (N, K + 1, 2) polylines.
    """
    steps = (end - start) % lengths.clamp_min(1)
    r = torch.arange(points.shape[1] + 1, device=points.device)[None]
    index = (start[:, None] + torch.minimum(r, steps[:, None])) % lengths.clamp_min(1)[:, None]
    return gather_vertices(points, index)


def _resample_by_arc_length(paths: torch.Tensor, num: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Points at arc-length fractions (j + 0.5) / num along polylines.

    Args:
        paths: (N, L, 2) polylines (repeated vertices allowed).
        num: number of points per polyline.

    Returns:
        (N, num, 2) points and (N,) total lengths.
    """
    segment = (paths[:, 1:] - paths[:, :-1]).norm(dim=-1)  # (N, L - 1)
    cumulative = torch.cat([segment.new_zeros(len(paths), 1), segment.cumsum(dim=1)], dim=1)
    total = cumulative[:, -1]
    fractions = (torch.arange(num, dtype=paths.dtype, device=paths.device) + 0.5) / num
    target = total[:, None] * fractions[None]  # (N, num)
    index = torch.searchsorted(cumulative.contiguous(), target.contiguous(), right=True) - 1
    index = index.clamp(0, paths.shape[1] - 2)
    seg_start = torch.gather(cumulative, 1, index)
    seg_length = torch.gather(segment, 1, index)
    t = ((target - seg_start) / seg_length.clamp_min(EPS)).clamp(0.0, 1.0)[..., None]
    p0 = gather_vertices(paths, index)
    p1 = gather_vertices(paths, index + 1)
    return p0 + t * (p1 - p0), total


def two_sided_grids(
    points: torch.Tensor,
    lengths: torch.Tensor,
    left_end: EndCap,
    right_end: EndCap,
    output_size: Tuple[int, int],
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sampling grids between the top and bottom sides of clockwise polygons.

    The left end cap runs from vertex ``l0`` to ``l1`` and the right one from ``r0`` to ``r1``
    (``l0 == l1`` for a pointed end); the top side is ``l1 -> r0`` and the bottom side
    ``r1 -> l0`` (right to left, clockwise). Both are resampled by arc length at the w column
    centres; column j runs on the segment from the j-th top point to the j-th bottom point.

    Args:
        points: (N, K, 2) padded clockwise vertices (x, y) in pixels; lengths: (N,) counts.
        left_end: (l0, l1), right_end: (r0, r1), each (N,) vertex indices.
        output_size: (h, w) of the crops.

    Returns:
        grids: (N, h, w, 2) image points (x, y) in the polygons' pixel frame;
        ok: (N,) bool, False where a side has zero length.
    """
    h, w = output_size
    (l0, l1), (r0, r1) = left_end, right_end
    top, top_length = _resample_by_arc_length(_path_points(points, lengths, l1, r0), w)
    bottom_path = _path_points(points, lengths, r1, l0).flip(1)  # left to right
    bottom, bottom_length = _resample_by_arc_length(bottom_path, w)
    _, v = unit_grid(output_size, points.dtype, points.device)
    grids = top[:, None] + v[None, :, None, None] * (bottom - top)[:, None]  # (N, h, w, 2)
    ok = (top_length > 1e-6) & (bottom_length > 1e-6)
    return grids, ok


def annotated_side_ends(lengths: torch.Tensor) -> Tuple[EndCap, EndCap]:
    """End caps of 2n-point annotations.

    Args:
        lengths: (N,) even vertex counts 2n.

    Returns:
        left cap (2n - 1 -> 0) and right cap (n - 1 -> n), each a pair of (N,) indices.
    """
    n = lengths // 2
    return (lengths - 1, torch.zeros_like(lengths)), (n - 1, n)


def contour_ends(
    points: torch.Tensor, lengths: torch.Tensor
) -> Tuple[EndCap, EndCap, torch.Tensor]:
    """End caps of clockwise contours without side structure (the contour fallback above).

    Args:
        points: (N, K, 2) padded clockwise vertices (x, y) in pixels.
        lengths: (N,) vertex counts.

    Returns:
        (l0, l1), (r0, r1): (N,) vertex indices of the left and right end caps;
        ok: (N,) bool, False where the caps leave the top or the bottom side without an edge.
    """
    k_max = points.shape[1]
    k = torch.arange(k_max, device=points.device)[None]
    length = lengths.clamp_min(1)[:, None]
    valid = k < length
    weight = valid.to(points.dtype)
    count = weight.sum(1, keepdim=True).clamp_min(1)
    centroid = (points * weight[..., None]).sum(1, keepdim=True) / count[..., None]
    d = (points - centroid) * weight[..., None]
    cxx, cyy = (d[..., 0] ** 2).sum(1), (d[..., 1] ** 2).sum(1)
    cxy = (d[..., 0] * d[..., 1]).sum(1)
    theta = 0.5 * torch.atan2(2 * cxy, cxx - cyy)  # principal axis of the vertices
    axis = rightwards(torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1))  # (N, 2)
    projection = ((points - centroid) * axis[:, None]).sum(-1)  # (N, K)
    inf = torch.finfo(points.dtype).max
    left = torch.where(valid, projection, torch.full_like(projection, inf)).argmin(1)
    right = torch.where(valid, projection, torch.full_like(projection, -inf)).argmax(1)

    edges = gather_vertices(points, (k + 1) % length) - points  # edge k: vertex k -> k + 1
    edge_norm = edges.norm(dim=-1)
    directions = edges / edge_norm.clamp_min(EPS)[..., None]  # zero for repeated vertices
    edge_cos = torch.where(
        edge_norm > EPS, (directions * axis[:, None]).sum(-1).abs(), torch.ones_like(edge_norm)
    )
    # a cap joins two sides that run in opposite directions (a U-turn of more than 120 degrees)
    turn_cos = (
        gather_vertices(directions, (k - 1) % length)
        * gather_vertices(directions, (k + 1) % length)
    ).sum(-1)
    edge_cos = torch.where(turn_cos < -0.5, edge_cos, torch.ones_like(edge_cos))
    rows = torch.arange(len(points), device=points.device)
    ones = lengths.clamp_min(1)

    def cap(vertex):
        """Edge ending at the vertex, edge starting there, or the vertex alone."""
        before = (vertex - 1) % ones
        cos_before, cos_after = edge_cos[rows, before], edge_cos[rows, vertex]
        use_before = (cos_before <= cos_after) & (cos_before < _MAX_END_CAP_COS)
        use_after = ~use_before & (cos_after < _MAX_END_CAP_COS)
        start = torch.where(use_before, before, vertex)
        stop = torch.where(use_after, (vertex + 1) % ones, vertex)
        return start, stop

    (l0, l1), (r0, r1) = cap(left), cap(right)
    top_steps = (r0 - l1) % ones
    bottom_steps = (l0 - r1) % ones
    cap_steps = (l1 - l0) % ones + (r1 - r0) % ones
    ok = (
        (top_steps >= 1)
        & (bottom_steps >= 1)
        & (top_steps + bottom_steps + cap_steps == lengths)
        & (left != right)
    )
    return (l0, l1), (r0, r1), ok
