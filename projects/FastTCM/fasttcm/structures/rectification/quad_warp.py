"""Quadrilateral rectification: exact perspective warps and minimum-area rectangles (torch; the
convex hulls behind the rectangles come from OpenCV).

A crop of size ``(h, w)`` is addressed by normalized coordinates ``(u, v)`` in ``(0, 1)^2``:
pixel (i, j) has ``(u, v) = ((j + 0.5) / w, (i + 0.5) / h)``, u along the reading direction
(left to right in the crop), v from the top of the text to its bottom. A quadrilateral listed
clockwise from the crop's top-left corner, in absolute image pixels (x right, y down), is warped
exactly through the homography that maps the unit square's corners (0,0), (1,0), (1,1), (0,1)
onto its 4 vertices. This module builds those homographies and their sampling grids, rolls
detector quads into reading order, and turns any outline into its minimum-area rectangle (long
side = reading direction), the quad that the "rectangle" crop layout and the fallbacks warp.
"""

from typing import Tuple

import cv2
import numpy as np
import torch

from .polygon_batch import EPS, gather_vertices, rightwards

__all__ = [
    "canonical_predicted_quads",
    "homography_grids",
    "min_area_rect_quads",
    "quad_homographies",
    "unit_grid",
]

_UNIT_SQUARE = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


def quad_homographies(quads: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Homographies from the unit square onto quadrilaterals (batched 8x8 solve).

    Args:
        quads: (N, 4, 2) vertices; the unit square's corners (0,0), (1,0), (1,1), (0,1) map to
            vertices 0, 1, 2, 3 (top-left, top-right, bottom-right, bottom-left of the crop).

    Returns:
        H: (N, 3, 3) with ``H[:, 2, 2] = 1``; ``(x, y) = (H (u, v, 1)^T)[:2] / (H (u, v, 1)^T)[2]``.
        ok: (N,) bool, False where the system is singular or the homography's denominator is not
            positive at all four corners (concave, self-intersecting or degenerate quads).
    """
    quads = quads.to(torch.float64)
    n = quads.shape[0]
    corners = quads.new_tensor(_UNIT_SQUARE)  # (4, 2)
    u = corners[:, 0].expand(n, 4)
    v = corners[:, 1].expand(n, 4)
    x, y = quads[..., 0], quads[..., 1]
    one, zero = torch.ones_like(u), torch.zeros_like(u)
    rows_x = torch.stack([u, v, one, zero, zero, zero, -u * x, -v * x], dim=-1)  # (N, 4, 8)
    rows_y = torch.stack([zero, zero, zero, u, v, one, -u * y, -v * y], dim=-1)
    system = torch.cat([rows_x, rows_y], dim=1)  # (N, 8, 8)
    rhs = torch.cat([x, y], dim=1)  # (N, 8)
    solution, info = torch.linalg.solve_ex(system, rhs)
    H = torch.cat([solution, solution.new_ones(n, 1)], dim=1).view(n, 3, 3)
    denominators = u * H[:, 2:3, 0] + v * H[:, 2:3, 1] + 1.0  # (N, 4)
    ok = (info == 0) & torch.isfinite(solution).all(dim=1) & (denominators > EPS).all(dim=1)
    return H, ok


def unit_grid(output_size: Tuple[int, int], dtype, device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Normalized crop coordinates of the pixel centres.

    Args:
        output_size: (h, w) of the crops.
        dtype: dtype of the outputs.
        device: device of the outputs.

    Returns:
        u: (w,) ``(j + 0.5) / w``; v: (h,) ``(i + 0.5) / h``; both in (0, 1).
    """
    h, w = output_size
    u = (torch.arange(w, dtype=dtype, device=device) + 0.5) / w
    v = (torch.arange(h, dtype=dtype, device=device) + 0.5) / h
    return u, v


def homography_grids(H: torch.Tensor, output_size: Tuple[int, int]) -> torch.Tensor:
    """Image points of the crop's pixel centres under unit-square homographies.

    Args:
        H: (N, 3, 3) homographies from :func:`quad_homographies`.
        output_size: (h, w) of the crops.

    Returns:
        (N, h, w, 2) image points (x, y) in the quads' pixel frame.
    """
    u, v = unit_grid(output_size, H.dtype, H.device)
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    uv1 = torch.stack([uu, vv, torch.ones_like(uu)], dim=-1)  # (h, w, 3)
    mapped = torch.einsum("nij,hwj->nhwi", H, uv1)
    return mapped[..., :2] / mapped[..., 2:3]


def canonical_predicted_quads(quads: torch.Tensor) -> torch.Tensor:
    """Roll clockwise detector quads so that edge 0 -> 1 is a long edge in the reading direction.

    The longer pair of opposite edges carries the text; of those two edges, the one heading
    along the reading axis (see :func:`~.polygon_batch.rightwards`) becomes the top edge.

    Args:
        quads: (N, 4, 2) clockwise vertices (x, y) in pixels.

    Returns:
        (N, 4, 2) the same vertices, cyclically rolled: top-left, top-right, bottom-right,
        bottom-left.
    """
    edges = quads.roll(-1, dims=1) - quads  # edge k: vertex k -> k + 1
    lengths = edges.norm(dim=-1)
    first = (lengths[:, 1] + lengths[:, 3] > lengths[:, 0] + lengths[:, 2]).long()  # 0 or 1
    rows = torch.arange(len(quads), device=quads.device)
    edge_a, edge_b = edges[rows, first], edges[rows, first + 2]  # opposite long edges
    axis = rightwards(edge_a - edge_b)
    start = torch.where((edge_a * axis).sum(-1) >= 0, first, first + 2)
    index = (start[:, None] + torch.arange(4, device=quads.device)[None]) % 4
    return gather_vertices(quads, index)


def _hull_edge_directions(points: torch.Tensor) -> torch.Tensor:
    """(N, K, 2) padded point sets -> (N, H, 2) their convex hulls' edge vectors (unnormalised),
    padded with zero vectors. The hulls are found by OpenCV on the CPU (float32 points; the edges
    are taken between the original float64 vertices)."""
    cpu = points.detach().to("cpu", torch.float64).numpy()
    hulls = [cv2.convexHull(row.astype(np.float32), returnPoints=False)[:, 0] for row in cpu]
    width = max(len(h) for h in hulls) if hulls else 1
    index = np.zeros((len(hulls), width), dtype=np.int64)
    following = np.zeros((len(hulls), width), dtype=np.int64)
    for row, hull in enumerate(hulls):  # one C call per polygon; the rest is batched
        index[row, : len(hull)] = hull
        following[row, : len(hull)] = np.roll(hull, -1)
    index = torch.from_numpy(index).to(points.device)
    following = torch.from_numpy(following).to(points.device)
    return gather_vertices(points, following) - gather_vertices(points, index)


def min_area_rect_quads(points: torch.Tensor) -> torch.Tensor:
    """Minimum-area enclosing rectangles of padded point sets as reading-order quads.

    The minimum-area rectangle has a side parallel to an edge of the convex hull, so the hull's
    edge directions are the candidates (H per polygon, instead of all K^2 vertex pairs: a DB
    outline has ~70 vertices and ~15-25 hull vertices). The long side is the reading direction
    (oriented by :func:`~.polygon_batch.rightwards`).

    Args:
        points: (N, K, 2) padded vertices (x, y) in pixels (padding repeats a vertex).

    Returns:
        (N, 4, 2) corners top-left, top-right, bottom-right, bottom-left, clockwise on the image.
    """
    directions = _hull_edge_directions(points)  # (N, H, 2)
    norms = directions.norm(dim=-1, keepdim=True)
    directions = torch.where(
        norms > EPS, directions / norms.clamp_min(EPS), directions.new_tensor([1.0, 0.0])
    )
    normals = torch.stack([-directions[..., 1], directions[..., 0]], dim=-1)
    along = torch.einsum("ndc,nkc->ndk", directions, points)
    across = torch.einsum("ndc,nkc->ndk", normals, points)
    extent_along = along.amax(-1) - along.amin(-1)
    extent_across = across.amax(-1) - across.amin(-1)
    best = (extent_along * extent_across).argmin(dim=1)
    rows = torch.arange(len(points), device=points.device)
    direction, normal = directions[rows, best], normals[rows, best]
    long_is_along = extent_along[rows, best] >= extent_across[rows, best]
    axis = rightwards(torch.where(long_is_along[:, None], direction, normal))
    # the axis turned 90 deg clockwise on the image
    down = torch.stack([-axis[:, 1], axis[:, 0]], dim=-1)
    a = torch.einsum("nc,nkc->nk", axis, points)
    b = torch.einsum("nc,nkc->nk", down, points)
    a0, a1, b0, b1 = a.amin(1), a.amax(1), b.amin(1), b.amax(1)

    def corner(pa, pb):
        return pa[:, None] * axis + pb[:, None] * down

    return torch.stack([corner(a0, b0), corner(a1, b0), corner(a1, b1), corner(a0, b1)], dim=1)
