"""Polygon rectification: text polygons -> fixed-size crops that read left to right (pure torch).

The text spotter feeds its recognizer with crops sampled from the image along each text polygon
(clip4str.md section 6.3, design A step 2). Everything is batched over polygons, runs on any
device, and is differentiable with respect to the image (``F.grid_sample``).

**Frames.** Polygons are ``(K, 2)`` vertices ``(x, y)`` in absolute pixels of the image they are
cropped from, in detectron2's continuous frame: pixel (row r, column c) covers
``[c, c + 1) x [r, r + 1)`` and has its centre at ``(c + 0.5, r + 0.5)``; x to the right, y down.
A crop has ``output_size = (h, w)``; its pixel (i, j) is the bilinear sample of the image at the
point the polygon's layout maps the normalized crop coordinate ``(u, v) = ((j + 0.5) / w,
(i + 0.5) / h)`` in ``(0, 1)^2`` to: u runs along the reading direction (left to right in the
crop), v from the top of the text to its bottom. Samples outside the image are zero.

**Layouts.**

* ``"annotated"`` (ground truth, dataset order): 4 points = a quadrilateral listed clockwise from
  its top-left corner (ICDAR 2015, the synthetic generator): exact perspective warp through the
  homography that maps the unit square's corners (0,0), (1,0), (1,1), (0,1) onto the 4 vertices
  (batched 8x8 linear solve). 2n points (n >= 3; Total-Text, CTW1500, the synthetic generator):
  n along the top edge left->right, then n along the bottom edge right->left; both long sides are
  resampled by arc length at the w column centres, and column j runs on the straight line from
  the j-th top point to the j-th bottom point. Any other vertex count uses the contour fallback.
* ``"predicted"`` (detector output, no side structure; e.g. DB contours): a quadrilateral is first
  rolled so that its first edge is a long edge heading in the reading direction (see below), then
  warped exactly. Another outline that fills at least 85% of its minimum-area rectangle is
  straight text: that rectangle is warped (long side = reading direction), which keeps rounded or
  bevelled ends of DB outlines from skewing the crop. Curved outlines use the contour fallback.
* ``"rectangle"`` (detector output, any outline): the polygon's minimum-area rectangle, long
  side = reading direction, warped exactly. Straight text keeps any perspective skew and curved
  text stays curved inside the crop, but the crop never follows the wobble of a noisy outline.

**Contour fallback.** The reading axis is the polygon's principal axis (eigenvector of the
vertex covariance), oriented to the right (``x`` component > 0; a vertical axis points down, so
vertical text is read top to bottom). The two vertices with the extreme projections on that axis
are the text's ends. At each end, of the two edges meeting at the extreme vertex, the one most
perpendicular to the axis is taken as the end cap if it is within 45 degrees of perpendicular and
its neighbouring edges turn back on each other (by more than 120 degrees, as the two long sides at
the end of a band do); otherwise the end is the vertex itself, where top and bottom sides meet.
With the polygon clockwise on the image, the vertices between the left and the right end caps form
the top side, the others the bottom side, and the crop is sampled as for a 2n-point polygon. When
that split leaves a side without an edge or of zero length, the polygon's minimum-area rectangle
is warped as a quadrilateral instead (long side = reading direction).

**Validity.** Polygons with fewer than 3 vertices, a non-finite coordinate, or an absolute
shoelace area below ``min_area`` (pixels^2) give no crop; they are counted
(``RectifiedCrops.num_skipped``), never an error. Counter-clockwise polygons are first reversed
keeping their first vertex, so a mirrored listing of the same outline gives the same crop. A quad
whose homography sends part of the unit square through infinity (concave or self-intersecting)
uses the contour fallback.
"""

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "LAYOUTS",
    "RectifiedCrops",
    "pad_polygons",
    "polygon_validity",
    "quad_homographies",
    "polygon_sampling_grids",
    "sample_crops",
    "rectify_polygons",
]

LAYOUTS = ("annotated", "predicted", "rectangle")
"""Vertex conventions :func:`polygon_sampling_grids` understands (see the module docstring)."""

_EPS = 1e-9
_MAX_END_CAP_COS = math.cos(math.radians(45.0))  # an end cap is within 45 deg of perpendicular to the axis
_MIN_AREA_FLOOR = 1e-6  # pixels^2: below it no rectangle, hence no warp, exists whatever min_area says
_STRAIGHT_FILL_RATIO = 0.85  # predicted outlines filling their minimum-area rectangle this much are straight


@dataclass
class RectifiedCrops:
    """Crops of the polygons that could be rectified.

    Attributes:
        crops: (M, C, h, w) float crops, in the order of the kept polygons.
        keep: (N,) bool, which of the N input polygons gave a crop (M = keep.sum()).
        num_skipped: N - M, polygons without a crop (degenerate geometry).
    """

    crops: torch.Tensor
    keep: torch.Tensor
    num_skipped: int


# ------------------------------------------------------------------------------------------------
# Padded polygon batches
# ------------------------------------------------------------------------------------------------
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
            raise ValueError(f"rectify.pad_polygons: polygon {index} has shape {arr.shape}, expected (K, 2)")
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


def _gather_vertices(points: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """points (N, K, 2), index (N, L) -> (N, L, 2)."""
    return torch.gather(points, 1, index[..., None].expand(-1, -1, 2))


def _signed_areas(points: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(N,) shoelace areas; positive = clockwise on the image (x right, y down)."""
    k = torch.arange(points.shape[1], device=points.device)
    nxt = (k[None] + 1) % lengths.clamp_min(1)[:, None]
    p_next = _gather_vertices(points, nxt)
    cross = points[..., 0] * p_next[..., 1] - p_next[..., 0] * points[..., 1]
    return 0.5 * torch.where(k[None] < lengths[:, None], cross, torch.zeros_like(cross)).sum(1)


def _make_clockwise(points: torch.Tensor, lengths: torch.Tensor, area: torch.Tensor) -> torch.Tensor:
    """Reverse counter-clockwise polygons keeping their first vertex (padding stays the first vertex)."""
    k = torch.arange(points.shape[1], device=points.device)[None]
    length = lengths.clamp_min(1)[:, None]
    reversed_index = torch.where(k < length, (length - k) % length, torch.zeros_like(k))
    index = torch.where((area < 0)[:, None], reversed_index, k.expand_as(reversed_index))
    return _gather_vertices(points, index)


def _rightwards(vectors: torch.Tensor) -> torch.Tensor:
    """Flip (..., 2) directions to the reading convention: x > 0, or straight down when vertical."""
    x, y = vectors[..., 0], vectors[..., 1]
    scale = vectors.norm(dim=-1)
    vertical = x.abs() <= 1e-6 * scale
    flip = torch.where(vertical, y < 0, x < 0)
    return torch.where(flip[..., None], -vectors, vectors)


# ------------------------------------------------------------------------------------------------
# Quadrilaterals: exact perspective warp
# ------------------------------------------------------------------------------------------------
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
    ok = (info == 0) & torch.isfinite(solution).all(dim=1) & (denominators > _EPS).all(dim=1)
    return H, ok


def _unit_grid(output_size: Tuple[int, int], dtype, device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Normalized crop coordinates of the pixel centres: u (w,) and v (h,) in (0, 1)."""
    h, w = output_size
    u = (torch.arange(w, dtype=dtype, device=device) + 0.5) / w
    v = (torch.arange(h, dtype=dtype, device=device) + 0.5) / h
    return u, v


def _homography_grids(H: torch.Tensor, output_size: Tuple[int, int]) -> torch.Tensor:
    """(N, 3, 3) homographies -> (N, h, w, 2) image points of the crop's pixel centres."""
    u, v = _unit_grid(output_size, H.dtype, H.device)
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    uv1 = torch.stack([uu, vv, torch.ones_like(uu)], dim=-1)  # (h, w, 3)
    mapped = torch.einsum("nij,hwj->nhwi", H, uv1)
    return mapped[..., :2] / mapped[..., 2:3]


def _canonical_predicted_quads(quads: torch.Tensor) -> torch.Tensor:
    """Roll clockwise quads (N, 4, 2) so that edge 0 -> 1 is a long edge heading in the reading direction."""
    edges = quads.roll(-1, dims=1) - quads  # edge k: vertex k -> k + 1
    lengths = edges.norm(dim=-1)
    first = (lengths[:, 1] + lengths[:, 3] > lengths[:, 0] + lengths[:, 2]).long()  # 0 or 1
    rows = torch.arange(len(quads), device=quads.device)
    edge_a, edge_b = edges[rows, first], edges[rows, first + 2]  # opposite long edges
    axis = _rightwards(edge_a - edge_b)
    start = torch.where((edge_a * axis).sum(-1) >= 0, first, first + 2)
    index = (start[:, None] + torch.arange(4, device=quads.device)[None]) % 4
    return _gather_vertices(quads, index)


def _min_area_rect_quads(points: torch.Tensor) -> torch.Tensor:
    """Minimum-area enclosing rectangles of padded point sets (N, K, 2) as reading-order quads.

    The minimum-area rectangle has a side parallel to a convex-hull edge, and hull edges join two
    of the points, so every direction between two points is tried. The long side is the reading
    direction (oriented by :func:`_rightwards`); corners are top-left, top-right, bottom-right,
    bottom-left, clockwise on the image.
    """
    diff = points[:, None, :, :] - points[:, :, None, :]  # (N, K, K, 2)
    directions = diff.flatten(1, 2)  # (N, K*K, 2)
    norms = directions.norm(dim=-1, keepdim=True)
    directions = torch.where(norms > _EPS, directions / norms.clamp_min(_EPS), directions.new_tensor([1.0, 0.0]))
    normals = torch.stack([-directions[..., 1], directions[..., 0]], dim=-1)
    along = torch.einsum("ndc,nkc->ndk", directions, points)
    across = torch.einsum("ndc,nkc->ndk", normals, points)
    extent_along = along.amax(-1) - along.amin(-1)
    extent_across = across.amax(-1) - across.amin(-1)
    best = (extent_along * extent_across).argmin(dim=1)
    rows = torch.arange(len(points), device=points.device)
    direction, normal = directions[rows, best], normals[rows, best]
    long_is_along = extent_along[rows, best] >= extent_across[rows, best]
    axis = _rightwards(torch.where(long_is_along[:, None], direction, normal))
    down = torch.stack([-axis[:, 1], axis[:, 0]], dim=-1)  # axis turned 90 deg clockwise on the image
    a = torch.einsum("nc,nkc->nk", axis, points)
    b = torch.einsum("nc,nkc->nk", down, points)
    a0, a1, b0, b1 = a.amin(1), a.amax(1), b.amin(1), b.amax(1)

    def corner(pa, pb):
        return pa[:, None] * axis + pb[:, None] * down

    return torch.stack([corner(a0, b0), corner(a1, b0), corner(a1, b1), corner(a0, b1)], dim=1)


# ------------------------------------------------------------------------------------------------
# Two long sides: arc-length resampling
# ------------------------------------------------------------------------------------------------
def _path_points(points: torch.Tensor, lengths: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Vertices from `start` forward (cyclically) to `end`, padded by repeating `end`: (N, K + 1, 2)."""
    steps = (end - start) % lengths.clamp_min(1)
    r = torch.arange(points.shape[1] + 1, device=points.device)[None]
    index = (start[:, None] + torch.minimum(r, steps[:, None])) % lengths.clamp_min(1)[:, None]
    return _gather_vertices(points, index)


def _resample_by_arc_length(paths: torch.Tensor, num: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Points at arc-length fractions (j + 0.5) / num along polylines.

    Args:
        paths: (N, L, 2) polylines (repeated vertices allowed).

    Returns:
        (N, num, 2) points and (N,) total lengths.
    """
    segment = (paths[:, 1:] - paths[:, :-1]).norm(dim=-1)  # (N, L - 1)
    cumulative = torch.cat([segment.new_zeros(len(paths), 1), segment.cumsum(dim=1)], dim=1)  # (N, L)
    total = cumulative[:, -1]
    fractions = (torch.arange(num, dtype=paths.dtype, device=paths.device) + 0.5) / num
    target = total[:, None] * fractions[None]  # (N, num)
    index = torch.searchsorted(cumulative.contiguous(), target.contiguous(), right=True) - 1
    index = index.clamp(0, paths.shape[1] - 2)
    seg_start = torch.gather(cumulative, 1, index)
    seg_length = torch.gather(segment, 1, index)
    t = ((target - seg_start) / seg_length.clamp_min(_EPS)).clamp(0.0, 1.0)[..., None]
    p0 = _gather_vertices(paths, index)
    p1 = _gather_vertices(paths, index + 1)
    return p0 + t * (p1 - p0), total


def _two_sided_grids(
    points: torch.Tensor,
    lengths: torch.Tensor,
    left_end: Tuple[torch.Tensor, torch.Tensor],
    right_end: Tuple[torch.Tensor, torch.Tensor],
    output_size: Tuple[int, int],
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sampling grids between the top and bottom sides of clockwise polygons.

    The left end cap runs from vertex ``l0`` to ``l1`` and the right one from ``r0`` to ``r1``
    (``l0 == l1`` for a pointed end); the top side is ``l1 -> r0`` and the bottom side
    ``r1 -> l0`` (right to left, clockwise). Both are resampled by arc length at the w column
    centres; column j runs on the segment from the j-th top point to the j-th bottom point.

    Returns:
        grids: (N, h, w, 2) image points; ok: (N,) bool, False where a side has zero length.
    """
    h, w = output_size
    (l0, l1), (r0, r1) = left_end, right_end
    top, top_length = _resample_by_arc_length(_path_points(points, lengths, l1, r0), w)
    bottom_path = _path_points(points, lengths, r1, l0).flip(1)  # left to right
    bottom, bottom_length = _resample_by_arc_length(bottom_path, w)
    _, v = _unit_grid(output_size, points.dtype, points.device)
    grids = top[:, None] + v[None, :, None, None] * (bottom - top)[:, None]  # (N, h, w, 2)
    ok = (top_length > 1e-6) & (bottom_length > 1e-6)
    return grids, ok


def _annotated_side_ends(lengths: torch.Tensor):
    """End caps of 2n-point annotations: left (2n - 1 -> 0), right (n - 1 -> n)."""
    n = lengths // 2
    return (lengths - 1, torch.zeros_like(lengths)), (n - 1, n)


def _contour_ends(points: torch.Tensor, lengths: torch.Tensor):
    """End caps of clockwise contours without side structure (see the module docstring).

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
    axis = _rightwards(torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1))  # (N, 2)
    projection = ((points - centroid) * axis[:, None]).sum(-1)  # (N, K)
    inf = torch.finfo(points.dtype).max
    left = torch.where(valid, projection, torch.full_like(projection, inf)).argmin(1)
    right = torch.where(valid, projection, torch.full_like(projection, -inf)).argmax(1)

    edges = _gather_vertices(points, (k + 1) % length) - points  # edge k: vertex k -> k + 1
    edge_norm = edges.norm(dim=-1)
    directions = edges / edge_norm.clamp_min(_EPS)[..., None]  # zero for repeated vertices
    edge_cos = torch.where(edge_norm > _EPS, (directions * axis[:, None]).sum(-1).abs(), torch.ones_like(edge_norm))
    # a cap joins two sides that run in opposite directions (a U-turn of more than 120 degrees)
    turn_cos = (_gather_vertices(directions, (k - 1) % length) * _gather_vertices(directions, (k + 1) % length)).sum(-1)
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
    ok = (top_steps >= 1) & (bottom_steps >= 1) & (top_steps + bottom_steps + cap_steps == lengths) & (left != right)
    return (l0, l1), (r0, r1), ok


def _is_valid(lengths: torch.Tensor, finite: torch.Tensor, area: torch.Tensor, min_area: float) -> torch.Tensor:
    """(N,) bool: at least 3 vertices, all finite, absolute area >= min_area (and > 0)."""
    return finite & (lengths >= 3) & (area.abs() >= max(min_area, _MIN_AREA_FLOOR))


# ------------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------------

def polygon_validity(polygons: Sequence[Union[np.ndarray, torch.Tensor]], *, min_area: float = 1.0) -> torch.Tensor:
    """Which polygons :func:`polygon_sampling_grids` gives a crop, without building the grids.

    Args:
        polygons: N (K_i, 2) vertex arrays or tensors (x, y).
        min_area: smallest absolute polygon area (pixels^2).

    Returns:
        (N,) bool on the CPU: at least 3 vertices, all finite, area >= `min_area`.
    """
    points, lengths, finite = pad_polygons(polygons)
    return _is_valid(lengths, finite, _signed_areas(points, lengths), min_area)


def polygon_sampling_grids(
    polygons: Sequence[Union[np.ndarray, torch.Tensor]],
    output_size: Tuple[int, int],
    *,
    layout: str = "annotated",
    min_area: float = 1.0,
    device: Optional[torch.device] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Where each crop pixel samples the image, for N polygons at once.

    Args:
        polygons: N (K_i, 2) vertex arrays or tensors (x, y), absolute pixels of the image.
        output_size: (h, w) of the crops.
        layout: "annotated", "predicted" or "rectangle" (see the module docstring).
        min_area: smallest absolute polygon area (pixels^2) that gets a crop.
        device: device of the computation and of the outputs (default: CPU; it must support
            float64, so keep the CPU for MPS images: :func:`sample_crops` moves the points).

    Returns:
        grids: (N, h, w, 2) float64 image points (x, y) of the crops' pixel centres, in the
            polygons' pixel frame (zeros for skipped polygons); 16 h w bytes per polygon, so
            callers with many polygons and large crops work in chunks.
        valid: (N,) bool, False for polygons that get no crop (fewer than 3 vertices, a
            non-finite coordinate, or an area below `min_area`).

    Raises:
        ValueError: unknown layout, bad output size, or a polygon not of shape (K, 2).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"rectify: unknown layout {layout!r}; known: {LAYOUTS}")
    h, w = (int(s) for s in output_size)
    if h < 1 or w < 1:
        raise ValueError(f"rectify: output_size must be positive (h, w), got {tuple(output_size)}")
    points, lengths, finite = pad_polygons(polygons, device)
    n = len(lengths)
    grids = points.new_zeros(n, h, w, 2)
    if n == 0:
        return grids, torch.zeros(0, dtype=torch.bool, device=points.device)
    area = _signed_areas(points, lengths)
    valid = _is_valid(lengths, finite, area, min_area)
    points = _make_clockwise(points, lengths, area)

    if layout == "rectangle":
        H, ok = quad_homographies(_min_area_rect_quads(points[valid]))
        index = valid.nonzero()[:, 0]
        grids[index[ok]] = _homography_grids(H[ok], (h, w))  # the others stay zero
        valid[index[~ok]] = False
        return grids, valid

    quads = valid & (lengths == 4)
    sided = valid & (lengths >= 6) & (lengths % 2 == 0) if layout == "annotated" else torch.zeros_like(valid)
    contour = valid & ~quads & ~sided

    if quads.any():
        quad_points = points[quads][:, :4]
        if layout == "predicted":
            quad_points = _canonical_predicted_quads(quad_points)
        H, ok = quad_homographies(quad_points)
        index = quads.nonzero()[:, 0]
        grids[index[ok]] = _homography_grids(H[ok], (h, w))
        contour[index[~ok]] = True  # concave or self-intersecting: follow the outline instead

    if sided.any():
        index = sided.nonzero()[:, 0]
        left_end, right_end = _annotated_side_ends(lengths[index])
        side_grids, ok = _two_sided_grids(points[index], lengths[index], left_end, right_end, (h, w))
        grids[index[ok]] = side_grids[ok]
        contour[index[~ok]] = True

    fallback = torch.zeros_like(valid)
    if layout == "predicted" and contour.any():
        index = contour.nonzero()[:, 0]
        rect_quads = _min_area_rect_quads(points[index])
        rect_area = _signed_areas(rect_quads, torch.full_like(index, 4)).abs()
        straight = area[index].abs() >= _STRAIGHT_FILL_RATIO * rect_area
        H, ok = quad_homographies(rect_quads[straight])
        grids[index[straight][ok]] = _homography_grids(H[ok], (h, w))
        contour[index[straight][ok]] = False

    if contour.any():
        index = contour.nonzero()[:, 0]
        left_end, right_end, ends_ok = _contour_ends(points[index], lengths[index])
        side_grids, sides_ok = _two_sided_grids(points[index], lengths[index], left_end, right_end, (h, w))
        ok = ends_ok & sides_ok
        grids[index[ok]] = side_grids[ok]
        fallback[index[~ok]] = True

    if fallback.any():
        quad_points = _min_area_rect_quads(points[fallback])
        H, ok = quad_homographies(quad_points)
        index = fallback.nonzero()[:, 0]
        grids[index[ok]] = _homography_grids(H[ok], (h, w))
        valid[index[~ok]] = False
    grids[~valid] = 0.0
    return grids, valid


def sample_crops(
    images: Union[torch.Tensor, Sequence[torch.Tensor]],
    grids: torch.Tensor,
    image_indices: torch.Tensor,
    *,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Bilinear crops at image points (``F.grid_sample``, one call per source image).

    Args:
        images: (B, C, H, W) tensor or B tensors (C, H_b, W_b), any dtype (integer images are
            sampled as float32); the frame of `grids` is each image's pixel frame.
        grids: (N, h, w, 2) image points (x, y) in pixels.
        image_indices: (N,) int, the image each crop comes from.
        padding_mode: ``grid_sample`` padding for points outside the image ("zeros" or "border").

    Returns:
        (N, C, h, w) crops on the images' device, differentiable with respect to the images.
    """
    if len(grids) != len(image_indices):
        raise ValueError(f"rectify.sample_crops: {len(grids)} grids but {len(image_indices)} image indices")
    num_images = len(images)
    first = images[0] if num_images else None
    if first is None:
        if len(grids):
            raise ValueError("rectify.sample_crops: crops requested from an empty image batch")
        return torch.zeros(0, 0, *grids.shape[1:3])
    dtype = first.dtype if first.is_floating_point() else torch.float32
    n, h, w, _ = grids.shape
    crops = first.new_zeros((n, first.shape[0], h, w), dtype=dtype)
    image_indices = image_indices.to("cpu").long()
    if n == 0:
        return crops
    if int(image_indices.min()) < 0 or int(image_indices.max()) >= num_images:
        raise ValueError(
            f"rectify.sample_crops: image indices span [{int(image_indices.min())}, {int(image_indices.max())}] "
            f"but there are {num_images} images"
        )
    outputs, positions = [], []
    for b in torch.unique(image_indices).tolist():  # one grid_sample per image, all its crops at once
        image = images[b]
        if image.ndim != 3:
            raise ValueError(f"rectify.sample_crops: image {b} has shape {tuple(image.shape)}, expected (C, H, W)")
        select = (image_indices == b).nonzero()[:, 0]
        height, width = image.shape[-2:]
        grid = grids[select.to(grids.device)]
        scale = grid.new_tensor([2.0 / width, 2.0 / height])
        # align_corners=False: the image's outer pixel edges at -1 and 1; normalized in the grid's
        # precision, then cast, so devices without float64 (MPS) only see `dtype`
        normalized = (grid * scale - 1.0).to(device=image.device, dtype=dtype)
        sampled = F.grid_sample(
            image[None].to(dtype),
            normalized.reshape(1, len(select) * h, w, 2),
            mode="bilinear",
            padding_mode=padding_mode,
            align_corners=False,
        )  # (1, C, n_b * h, w)
        outputs.append(sampled[0].reshape(image.shape[0], len(select), h, w).transpose(0, 1))
        positions.append(select.to(crops.device))
    return crops.index_copy(0, torch.cat(positions), torch.cat(outputs))


def rectify_polygons(
    images: Union[torch.Tensor, Sequence[torch.Tensor]],
    polygons: Sequence[Union[np.ndarray, torch.Tensor]],
    image_indices: Union[Sequence[int], torch.Tensor],
    output_size: Tuple[int, int],
    *,
    layout: str = "annotated",
    min_area: float = 1.0,
    padding_mode: str = "zeros",
) -> RectifiedCrops:
    """Crop every polygon from its image into an upright, left-to-right (h, w) crop.

    Args:
        images: (B, C, H, W) tensor or B tensors (C, H_b, W_b) (e.g. 0-255 RGB); the crops are
            differentiable with respect to them.
        polygons: N (K_i, 2) vertex arrays (x, y) in the pixel frame of their image.
        image_indices: (N,) index into `images` of each polygon.
        output_size: (h, w) of the crops.
        layout: "annotated" (dataset vertex order), "predicted" or "rectangle" (any outline); see the
            module docstring.
        min_area: polygons with a smaller absolute area (pixels^2) are skipped.
        padding_mode: ``grid_sample`` padding outside the image.

    Returns:
        :class:`RectifiedCrops`: crops of the valid polygons in input order, the keep mask and
        the number of skipped polygons.
    """
    image_indices = torch.as_tensor(image_indices, dtype=torch.long).reshape(-1)
    if len(image_indices) != len(polygons):
        raise ValueError(f"rectify_polygons: {len(polygons)} polygons but {len(image_indices)} image indices")
    grids, valid = polygon_sampling_grids(polygons, output_size, layout=layout, min_area=min_area)
    crops = sample_crops(images, grids[valid], image_indices[valid], padding_mode=padding_mode)
    return RectifiedCrops(crops=crops, keep=valid, num_skipped=int((~valid).sum()))
