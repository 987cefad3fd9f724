"""Exact IoU of rotated boxes, vectorized over all pairs (``detectron2._C.box_iou_rotated``).

Box convention (detectron2 ``RotatedBoxes``, XYWHA): each row is ``(cx, cy, w, h, angle)`` with the
angle in degrees, counter-clockwise on screen (image frame, y down). A local offset ``(u, v)`` along
(width, height) lands on ``(cx + u*cos(a) + v*sin(a), cy - u*sin(a) + v*cos(a))``.

Method. The intersection area of two convex polygons A and B is the line integral
``∮ x dy`` around the boundary of A∩B, which is made of the parts of A's edges inside B and the
parts of B's edges inside A. Working in B's own frame, where B is the axis-aligned rectangle
``[-a, a] x [-b, b]``:

* each edge of A is clipped to B with Liang-Barsky (one parametric interval per edge);
* B's horizontal edges contribute nothing to ``∮ x dy``, and each vertical edge ``x = ±a``
  contributes ``a`` times the length of its part inside A (one interval per edge, cut by A's four
  half-planes).

That is a fixed number of element-wise operations per pair: no polygon construction, no sorting,
no variable-length buffers, so every pair of a chunk is processed at once on any device. Coincident
edges (identical or touching boxes) are resolved as if A were shrunk by an infinitesimal amount,
which counts a shared boundary exactly once.

Pairs are screened first by their axis-aligned bounding boxes (float32 comparisons of broadcast N
and M vectors, no N x M float temporaries), then by the separating-axis test; only overlapping pairs
reach the exact geometry, in chunks of ``PAIR_CHUNK`` to bound memory, and only their boxes get
frames. All geometry runs in float64.
"""

from typing import Tuple

import torch
from torch import Tensor

__all__ = [
    "box_iou_rotated",
    "sparse_box_iou_rotated",
    "paired_box_iou_rotated",
    "rotated_boxes_intersection_area",
    "RotatedBoxFrames",
    "pairs_iou",
    "candidate_pairs",
    "screening_bounds",
    "check_rotated_boxes",
    "cos_sin_degrees",
]

# detectron2's kernel returns IoU 0 for a box whose area is below this value.
MIN_BOX_AREA = 1e-14
# Pairs whose bounding-box overlap test runs at once, and candidate pairs whose geometry runs at
# once: bounds the temporaries to a few tens of MB whatever the number of boxes.
PREFILTER_CHUNK = 1 << 22
PAIR_CHUNK = 1 << 14
# Breaks exact ties of an edge lying on a clipping line (see _intersection_area).
_TIE_BREAK = 1e-300
# Corners of a box in its own frame, in units of the half sizes, counter-clockwise.
_CORNER_U = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64)
_CORNER_V = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)


def check_rotated_boxes(boxes: Tensor, name: str) -> None:
    """Raise a clear error unless ``boxes`` is a finite floating-point Tensor[N, 5]."""
    if not isinstance(boxes, Tensor):
        raise TypeError(
            f"fasttcm_ops.rotated_iou: {name} must be a torch.Tensor, got {type(boxes)}"
        )
    if boxes.dim() != 2 or boxes.shape[1] != 5:
        raise ValueError(
            f"fasttcm_ops.rotated_iou: {name} must have shape (N, 5) as (cx, cy, w, h, angle_deg), "
            f"got {tuple(boxes.shape)}"
        )
    if not boxes.is_floating_point():
        raise TypeError(
            f"fasttcm_ops.rotated_iou: {name} must be floating point, got {boxes.dtype}"
        )
    if not bool(torch.isfinite(boxes).all()):
        raise ValueError(f"fasttcm_ops.rotated_iou: {name} contains NaN or infinite values")


def _check_same_device(boxes1: Tensor, boxes2: Tensor) -> None:
    if boxes1.device != boxes2.device:
        raise ValueError(
            f"fasttcm_ops.rotated_iou: boxes1 is on {boxes1.device} but boxes2 on {boxes2.device}"
        )


def cos_sin_degrees(angle: Tensor) -> Tuple[Tensor, Tensor]:
    """Cosine and sine of angles given in degrees, exact at multiples of 90 degrees.

    Exactness there keeps axis-aligned and quarter-turned boxes exactly axis-aligned, so their
    coincident edges are recognized as such rather than as nearly parallel ones.

    Args:
        angle (Tensor): any shape, degrees.

    Returns:
        (cos, sin), each the shape and dtype of ``angle``.
    """
    reduced = torch.remainder(angle, 360.0)
    radians = torch.deg2rad(reduced)
    cos, sin = torch.cos(radians), torch.sin(radians)
    quarter = torch.round(reduced / 90.0)
    on_axis = reduced == quarter * 90.0
    k = torch.remainder(quarter, 4).long()
    exact_cos = torch.tensor([1.0, 0.0, -1.0, 0.0], dtype=angle.dtype, device=angle.device)[k]
    exact_sin = torch.tensor([0.0, 1.0, 0.0, -1.0], dtype=angle.dtype, device=angle.device)[k]
    return torch.where(on_axis, exact_cos, cos), torch.where(on_axis, exact_sin, sin)


class RotatedBoxFrames:
    """Per-box frames of K rotated boxes: what the pairwise geometry gathers, in one float64 tensor.

    Rows of ``data`` (Tensor[7, K]): centre ``cx, cy``; half sizes ``half_w, half_h`` along the
    box's width and height axes; ``angle`` (degrees, CCW) and its ``cos, sin`` (exact at multiples
    of 90 degrees).
    """

    def __init__(self, data: Tensor):
        self.data = data

    cx = property(lambda self: self.data[0])
    cy = property(lambda self: self.data[1])
    half_w = property(lambda self: self.data[2])
    half_h = property(lambda self: self.data[3])
    angle = property(lambda self: self.data[4])
    cos = property(lambda self: self.data[5])
    sin = property(lambda self: self.data[6])

    @classmethod
    def from_boxes(cls, boxes: Tensor) -> "RotatedBoxFrames":
        """Frames of float64 XYWHA boxes (Tensor[K, 5])."""
        cos, sin = cos_sin_degrees(boxes[:, 4])
        b = boxes.t()
        return cls(torch.stack((b[0], b[1], 0.5 * b[2], 0.5 * b[3], b[4], cos, sin)))

    def __len__(self) -> int:
        return self.data.shape[1]

    def take(self, index) -> "RotatedBoxFrames":
        """Frames of the boxes ``index`` (an int64 Tensor or a slice) selects."""
        if isinstance(index, slice):
            return RotatedBoxFrames(self.data[:, index])
        return RotatedBoxFrames(self.data.index_select(1, index))

    @property
    def area(self) -> Tensor:
        return 4.0 * self.half_w * self.half_h


def _relative_pose(fa: RotatedBoxFrames, fb: RotatedBoxFrames) -> Tensor:
    """Box A of each pair in the frame of box B: Tensor[8, P] of rows ``cu, cv`` (A's centre),
    ``cos_d, sin_d`` (rotation by angle_a - angle_b), A's and B's half sizes."""
    dx, dy = fa.cx - fb.cx, fa.cy - fb.cy
    cu = fb.cos * dx - fb.sin * dy
    cv = fb.sin * dx + fb.cos * dy
    # From the angle difference itself, so that equal or quarter-turned angles give exact values
    # (and identical boxes an IoU of exactly 1).
    cos_d, sin_d = cos_sin_degrees(fa.angle - fb.angle)
    return torch.stack((cu, cv, cos_d, sin_d, fa.half_w, fa.half_h, fb.half_w, fb.half_h))


def _may_overlap(pose: Tensor) -> Tensor:
    """Separating-axis test of two rectangles (their four edge directions): Tensor[P] bool, False
    where the boxes are disjoint or only touch."""
    cu, cv, cos_d, sin_d, aw, ah, bw, bh = pose
    c, s = cos_d.abs(), sin_d.abs()
    return (
        (cu.abs() < bw + c * aw + s * ah)
        & (cv.abs() < bh + s * aw + c * ah)
        & ((cos_d * cu - sin_d * cv).abs() < aw + c * bw + s * bh)
        & ((sin_d * cu + cos_d * cv).abs() < ah + s * bw + c * bh)
    )


def _intersection_area(pose: Tensor) -> Tensor:
    """Intersection area of the pairs of a relative pose (Tensor[8, P]); see the module docstring.

    Returns:
        Tensor[P] float64.
    """
    # Each (P, 1); B is [-a, a] x [-b, b].
    cu, cv, cos_d, sin_d, a_hw, a_hh, a, b = pose.unsqueeze(-1)
    lu = a_hw * _CORNER_U.to(pose)  # A's counter-clockwise corners in its own frame (P, 4)
    lv = a_hh * _CORNER_V.to(pose)
    px = cu + cos_d * lu + sin_d * lv  # vertex k in B's frame; edge k runs from vertex k to k+1
    py = cv - sin_d * lu + cos_d * lv
    ex = torch.roll(px, -1, dims=1) - px  # an exact 0 here is always +0 (x - x)
    ey = torch.roll(py, -1, dims=1) - py

    # Edge parameters t where A's edge lines cross x = -a, x = +a, y = -b, y = +b. An edge parallel
    # to a line gets t = +-inf, which the clipping below turns into "no constraint" or "empty".
    # An edge lying exactly on x = +-a must count as inside B iff A's interior is on B's side of
    # it (as if A were shrunk by an infinitesimal amount), so that a shared edge is counted once:
    # the _TIE_BREAK * ey term gives exactly that sign to the 0 / 0 of such edges, and shifts
    # every other crossing by a negligible ~1e-300 at most. (Horizontal edges only need to avoid
    # 0 / 0: they add nothing to the integral of x dy.)
    tie = _TIE_BREAK * ey
    t_xm = (-a - px + tie) / ex
    t_xp = (a - px + tie) / ex
    t_ym = (-b - py + _TIE_BREAK) / ey
    t_yp = (b - py + _TIE_BREAK) / ey

    # 1) Liang-Barsky clip of each edge of A to B, then its contribution to the integral of x dy.
    t0 = torch.maximum(torch.minimum(t_xm, t_xp), torch.minimum(t_ym, t_yp)).clamp_(0.0, 1.0)
    t1 = torch.minimum(torch.maximum(t_xm, t_xp), torch.maximum(t_ym, t_yp)).clamp_(0.0, 1.0)
    span = (t1 - t0).clamp_(min=0.0)
    x_mid = px + 0.5 * (t0 + t1) * ex
    area_from_a = (x_mid * span * ey).sum(dim=1)

    # 2) B's vertical edges x = +-a inside the open A: beyond where A's edge k crosses the line
    #    (below it for ex < 0, above it otherwise) points are on the edge's inner side. A parallel
    #    edge crosses at +-inf: no constraint, or none of the line (also when the edge lies on it,
    #    A being open). The crossings use the same t as step 1, so both steps agree on where a
    #    nearly parallel edge crosses.
    inf = float("inf")

    def inner_length(t_cross: Tensor) -> Tensor:
        y_cross = py + t_cross * ey
        lower = torch.where(ex >= 0, y_cross, -inf).amax(dim=1)
        upper = torch.where(ex < 0, y_cross, inf).amin(dim=1)
        return (torch.minimum(upper, b[:, 0]) - torch.maximum(lower, -b[:, 0])).clamp_(min=0.0)

    area_from_b = a[:, 0] * (inner_length(t_xp) + inner_length(t_xm))
    return area_from_a + area_from_b


def _iou_of_pose(pose: Tensor) -> Tensor:
    area_a = 4.0 * pose[4] * pose[5]
    area_b = 4.0 * pose[6] * pose[7]
    inter = _intersection_area(pose).clamp_(min=0.0)
    inter = torch.minimum(inter, torch.minimum(area_a, area_b))
    return inter / (area_a + area_b - inter)


def pairs_iou(
    frames1: RotatedBoxFrames, rows: Tensor, frames2: RotatedBoxFrames, cols: Tensor
) -> Tensor:
    """IoU of the box pairs ``(frames1[rows[k]], frames2[cols[k]])``.

    Pairs are gathered and processed in chunks of ``PAIR_CHUNK``; disjoint pairs (separating-axis
    test) skip the exact geometry.

    Args:
        frames1, frames2: frames of two sets of boxes, each box's area >= ``MIN_BOX_AREA``.
        rows, cols (Tensor[P]): int64 indices into them.

    Returns:
        Tensor[P]: float64 IoU in [0, 1].
    """
    ious = torch.zeros(rows.shape[0], dtype=torch.float64, device=rows.device)
    for start in range(0, rows.shape[0], PAIR_CHUNK):
        window = slice(start, start + PAIR_CHUNK)
        pose = _relative_pose(frames1.take(rows[window]), frames2.take(cols[window]))
        overlap = _may_overlap(pose).nonzero().squeeze(1)
        if overlap.numel():
            ious[start + overlap] = _iou_of_pose(pose.index_select(1, overlap))
    return ious


def rotated_boxes_intersection_area(boxes_a: Tensor, boxes_b: Tensor) -> Tensor:
    """Intersection area of paired rotated boxes, ``area(boxes_a[k] ∩ boxes_b[k])``.

    Args:
        boxes_a, boxes_b (Tensor[P, 5]): XYWHA boxes (degrees, CCW), finite, with non-negative
            width and height.

    Returns:
        Tensor[P]: float64 intersection areas; 0 for a box of area below 1e-14.
    """
    check_rotated_boxes(boxes_a, "boxes_a")
    check_rotated_boxes(boxes_b, "boxes_b")
    if boxes_a.shape != boxes_b.shape:
        raise ValueError(
            f"fasttcm_ops.rotated_iou: paired boxes need the same count, got {boxes_a.shape[0]} "
            f"and {boxes_b.shape[0]}"
        )
    fa = RotatedBoxFrames.from_boxes(boxes_a.double())
    fb = RotatedBoxFrames.from_boxes(boxes_b.double())
    pose = _relative_pose(fa, fb)
    area = torch.zeros(pose.shape[1], dtype=torch.float64, device=pose.device)
    # Boxes of (nearly) zero area intersect nothing; the geometry assumes edges of non-zero length.
    positive = (fa.area >= MIN_BOX_AREA) & (fb.area >= MIN_BOX_AREA)
    overlap = (_may_overlap(pose) & positive).nonzero().squeeze(1)
    if overlap.numel():
        area[overlap] = _intersection_area(pose.index_select(1, overlap)).clamp_(min=0.0)
    return area


def paired_box_iou_rotated(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU of paired rotated boxes: ``iou[k] = IoU(boxes1[k], boxes2[k])``.

    Args:
        boxes1, boxes2 (Tensor[P, 5]): XYWHA boxes (degrees, CCW), same device.

    Returns:
        Tensor[P]: IoU in [0, 1], in the promoted dtype of the inputs; 0 where either box has an
        area below 1e-14 (as detectron2's kernel).
    """
    check_rotated_boxes(boxes1, "boxes1")
    check_rotated_boxes(boxes2, "boxes2")
    _check_same_device(boxes1, boxes2)
    if boxes1.shape[0] != boxes2.shape[0]:
        raise ValueError(
            f"fasttcm_ops.rotated_iou: paired boxes need the same count, got {boxes1.shape[0]} "
            f"and {boxes2.shape[0]}"
        )
    out_dtype = torch.promote_types(boxes1.dtype, boxes2.dtype)
    with torch.no_grad():
        f1 = RotatedBoxFrames.from_boxes(boxes1.double())
        f2 = RotatedBoxFrames.from_boxes(boxes2.double())
        ious = torch.zeros(len(f1), dtype=out_dtype, device=boxes1.device)
        idx = ((f1.area >= MIN_BOX_AREA) & (f2.area >= MIN_BOX_AREA)).nonzero().squeeze(1)
        ious[idx] = pairs_iou(f1, idx, f2, idx).to(out_dtype)
    return ious


def screening_bounds(boxes: Tensor) -> Tensor:
    """Axis-aligned bounds of rotated boxes for the overlap screen, never smaller than the boxes.

    Args:
        boxes (Tensor[K, 5]): float64 XYWHA boxes (degrees, CCW).

    Returns:
        Tensor[4, K] float32: rows ``x_min, y_min, x_max, y_max``, widened by a relative 1e-6 (16
        float32 roundings) so that neither the trigonometry nor the float32 rounding can drop a
        pair that overlaps; float32 because the N x M comparisons are the screen's whole cost. A
        box with area below ``MIN_BOX_AREA`` gets empty bounds (``+inf, +inf, -inf, -inf``) and so
        overlaps nothing, as in detectron2's kernel.
    """
    radians = torch.deg2rad(boxes[:, 4])
    cos, sin = torch.cos(radians).abs(), torch.sin(radians).abs()
    half_w, half_h = 0.5 * boxes[:, 2], 0.5 * boxes[:, 3]
    ex = half_w * cos + half_h * sin
    ey = half_w * sin + half_h * cos
    cx, cy = boxes[:, 0], boxes[:, 1]
    ex = ex + 1e-6 * (cx.abs() + ex)
    ey = ey + 1e-6 * (cy.abs() + ey)
    bounds = torch.stack((cx - ex, cy - ey, cx + ex, cy + ey)).float()
    empty = boxes[:, 2] * boxes[:, 3] < MIN_BOX_AREA
    if bool(empty.any()):
        inf = float("inf")
        bounds[:, empty] = torch.tensor(
            [inf, inf, -inf, -inf], dtype=bounds.dtype, device=bounds.device
        )[:, None]
    return bounds


def candidate_pairs(
    bounds1: Tensor,
    bounds2: Tensor,
    row_start: int,
    row_end: int,
    upper_triangle: bool = False,
) -> Tuple[Tensor, Tensor]:
    """Pairs whose axis-aligned bounds overlap, for a block of rows of the first set.

    Args:
        bounds1, bounds2 (Tensor[4, N], Tensor[4, M]): :func:`screening_bounds` of the two sets.
        row_start, row_end (int): the rows of the first set to test against the second.
        upper_triangle (bool): keep only pairs (i, j) with j > i (both sets the same boxes).

    Returns:
        (rows, cols): int64 indices into the first and second set of the candidate pairs, rows
        in increasing order.
    """
    x0, y0, x1, y1 = bounds1[:, row_start:row_end, None]
    col_start = row_start + 1 if upper_triangle else 0
    u0, v0, u1, v1 = bounds2[:, None, col_start:]
    # Comparisons of broadcast vectors: no N x M float temporaries.
    overlap = (x0 < u1) & (u0 < x1) & (y0 < v1) & (v0 < y1)
    if upper_triangle:
        overlap.triu_(diagonal=0)  # col_start + c > row_start + r  <=>  c >= r
    rows, cols = overlap.nonzero().unbind(1)
    return rows + row_start, cols + col_start


def _compact_indices(index: Tensor, size: int) -> Tuple[Tensor, Tensor]:
    """``torch.unique(index, return_inverse=True)`` for indices in ``[0, size)``, by a presence mask
    instead of a sort (the sort took ~50 ms for 150k anchor indices on the CPU).

    Returns:
        (used, position): the distinct indices in increasing order, and each entry's position in it.
    """
    present = torch.zeros(size, dtype=torch.bool, device=index.device)
    present[index] = True
    used = present.nonzero().squeeze(1)
    position = torch.empty(size, dtype=torch.int64, device=index.device)
    position[used] = torch.arange(used.numel(), device=index.device)
    return used, position[index]


def sparse_box_iou_rotated(boxes1: Tensor, boxes2: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """The non-zero entries of :func:`box_iou_rotated`, without the dense N x M matrix.

    For few boxes against very many (a rotated RPN's ~200k anchors against a patch's ground truth)
    the dense matrix is mostly zeros, and allocating, filling and scanning it costs more than the
    geometry of the overlapping pairs.

    Args:
        boxes1 (Tensor[N, 5]), boxes2 (Tensor[M, 5]): XYWHA boxes ``(cx, cy, w, h, angle)``, angle
            in degrees, counter-clockwise; floating point, finite, on the same device.

    Returns:
        (rows, cols, ious): int64 Tensor[P] indices into boxes1 and boxes2 in row-major order, and
        Tensor[P] IoU > 0 in the promoted dtype of the inputs; every pair not listed has IoU 0.

    Raises:
        ValueError / TypeError: wrong shape, dtype or device, or non-finite coordinates.
    """
    check_rotated_boxes(boxes1, "boxes1")
    check_rotated_boxes(boxes2, "boxes2")
    _check_same_device(boxes1, boxes2)
    out_dtype = torch.promote_types(boxes1.dtype, boxes2.dtype)
    n, m = boxes1.shape[0], boxes2.shape[0]
    all_rows, all_cols, all_ious = [], [], []
    with torch.no_grad():
        if n and m:
            b1, b2 = boxes1.double(), boxes2.double()
            bounds1, bounds2 = screening_bounds(b1), screening_bounds(b2)
            rows_per_block = max(1, PREFILTER_CHUNK // m)
            for row_start in range(0, n, rows_per_block):
                rows, cols = candidate_pairs(
                    bounds1, bounds2, row_start, row_start + rows_per_block
                )
                if rows.numel() == 0:
                    continue
                used1, rows_in_used = _compact_indices(rows, n)
                used2, cols_in_used = _compact_indices(cols, m)
                frames1 = RotatedBoxFrames.from_boxes(b1.index_select(0, used1))
                frames2 = RotatedBoxFrames.from_boxes(b2.index_select(0, used2))
                ious = pairs_iou(frames1, rows_in_used, frames2, cols_in_used).to(out_dtype)
                hit = ious > 0
                all_rows.append(rows[hit])
                all_cols.append(cols[hit])
                all_ious.append(ious[hit])
        if not all_rows:
            empty = torch.empty(0, dtype=torch.int64, device=boxes1.device)
            return empty, empty.clone(), torch.empty(0, dtype=out_dtype, device=boxes1.device)
        return torch.cat(all_rows), torch.cat(all_cols), torch.cat(all_ious)


def box_iou_rotated(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU of every pair of rotated boxes (the v0.6 ``_C.box_iou_rotated`` contract).

    Only the boxes of pairs that pass the bounding-box screen get frames (trigonometry, exact
    quarter turns); see :func:`sparse_box_iou_rotated`.

    Args:
        boxes1 (Tensor[N, 5]), boxes2 (Tensor[M, 5]): XYWHA boxes ``(cx, cy, w, h, angle)``, angle
            in degrees, counter-clockwise; floating point, finite, on the same device.

    Returns:
        Tensor[N, M]: IoU in [0, 1], in the promoted dtype of the inputs, on their device. A box
        with area below 1e-14 has IoU 0 with everything, as in detectron2's kernel.

    Raises:
        ValueError / TypeError: wrong shape, dtype or device, or non-finite coordinates.
    """
    rows, cols, values = sparse_box_iou_rotated(boxes1, boxes2)
    ious = torch.zeros(boxes1.shape[0], boxes2.shape[0], dtype=values.dtype, device=boxes1.device)
    ious[rows, cols] = values
    return ious
