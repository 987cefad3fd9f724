"""Quadrilateral IoU exactly as the DOTA devkit's ``polyiou.iou_poly`` computes it, vectorized.

Each quadrilateral is ``x1, y1, ..., x4, y4`` in absolute pixels (x right, y down). Negatively
oriented inputs are reversed first, as ``polyiou`` does; the intersection is then the signed
triangle-fan sum of ``polyiou``'s ``intersectArea`` (each polygon a fan of triangles from the
origin, clipped against each other), so non-convex and self-intersecting quadrilaterals score as
in the devkit. Two convex quadrilaterals take an equal and faster direct clip.

Nothing here imports detectron2 or torch.
"""

import numpy as np

__all__ = ["devkit_poly_iou"]

_SIG_EPS = 1e-8  # the devkit's polyiou tolerance for "on the line"
_FAST_CHUNK = 1 << 16  # pairs clipped at once on the convex path
_FAN_CHUNK = 1 << 12  # pairs clipped at once on the triangle-fan path (16 triangle pairs each)


def _sign(x: np.ndarray) -> np.ndarray:
    return np.where(x > _SIG_EPS, 1, np.where(x < -_SIG_EPS, -1, 0))


def _clip_left(points: np.ndarray, count: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Sutherland-Hodgman step: keep the part of each polygon left of the line ``a -> b``.

    Mirrors polyiou's ``polygon_cut``: a vertex is kept when it is strictly left (beyond the
    tolerance), and the crossing point is emitted wherever the side changes.

    Args:
        points: ``(K, M, 2)`` vertices; only the first ``count[k]`` of row k are used.
        count: ``(K,)`` number of vertices.
        a, b: ``(K, 2)`` the directed clip line of each row.

    Returns:
        ``(K, M + 2, 2)`` vertices and ``(K,)`` counts (a convex polygon gains at most 2).
    """
    k, m, _ = points.shape
    idx = np.arange(m)[None, :]
    valid = idx < count[:, None]
    nxt = np.where(idx + 1 < count[:, None], idx + 1, 0)
    following = np.take_along_axis(points, nxt[..., None], axis=1)
    e = b - a
    side = e[:, None, 0] * (points[..., 1] - a[:, None, 1]) - e[:, None, 1] * (
        points[..., 0] - a[:, None, 0]
    )
    side_next = np.take_along_axis(side, nxt, axis=1)
    sign, sign_next = _sign(side), _sign(side_next)
    keep_vertex = valid & (sign > 0)
    crossing = valid & (sign != sign_next)
    denom = np.where(crossing, side_next - side, 1.0)
    cross_pt = (points * side_next[..., None] - following * side[..., None]) / denom[..., None]
    out = np.stack([points, cross_pt], axis=2).reshape(k, 2 * m, 2)
    keep = np.stack([keep_vertex, crossing], axis=2).reshape(k, 2 * m)
    order = np.argsort(~keep, axis=1, kind="stable")[:, : m + 2]
    return np.take_along_axis(out, order[..., None], axis=1), keep.sum(axis=1)


def _ring_area(points: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Signed shoelace area of the first ``count`` vertices of each row of ``(K, M, 2)``."""
    m = points.shape[1]
    idx = np.arange(m)[None, :]
    first = points[:, :1, :]
    pts = np.where((idx < count[:, None])[..., None], points, first)  # pad with the first vertex
    x, y = pts[..., 0], pts[..., 1]
    area = 0.5 * np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1)
    return np.where(count >= 3, area, 0.0)


def _convex_intersection(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Intersection areas of positively oriented convex quadrilaterals ``(K, 4, 2)``."""
    pts, count = p, np.full(len(p), 4)
    for i in range(4):
        pts, count = _clip_left(pts, count, q[:, i], q[:, (i + 1) % 4])
    return np.abs(_ring_area(pts, count))


def _fan_intersection(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """polyiou's ``intersectArea`` for positively oriented quadrilaterals ``(K, 4, 2)``.

    Each polygon is a signed fan of triangles (origin, v_i, v_i+1); the result is the sum over
    the 16 triangle pairs of sign_i * sign_j * area(T_i ∩ T_j), i.e. the integral of the product
    of the two winding numbers, which is the exact intersection area for simple polygons.
    """
    k = len(p)
    a, b = p, np.roll(p, -1, axis=1)  # (K, 4, 2) edges of p
    c, d = q, np.roll(q, -1, axis=1)
    sa = _sign(a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0])  # (K, 4)
    sc = _sign(c[..., 0] * d[..., 1] - c[..., 1] * d[..., 0])
    # orient every triangle positively (polyiou swaps the two edge end points)
    a, b = np.where((sa < 0)[..., None], b, a), np.where((sa < 0)[..., None], a, b)
    c, d = np.where((sc < 0)[..., None], d, c), np.where((sc < 0)[..., None], c, d)
    # all 16 pairs: rows (K, i, j)
    ta = np.broadcast_to(a[:, :, None], (k, 4, 4, 2)).reshape(-1, 2)
    tb = np.broadcast_to(b[:, :, None], (k, 4, 4, 2)).reshape(-1, 2)
    tc = np.broadcast_to(c[:, None, :], (k, 4, 4, 2)).reshape(-1, 2)
    td = np.broadcast_to(d[:, None, :], (k, 4, 4, 2)).reshape(-1, 2)
    sign = (sa[:, :, None] * sc[:, None, :]).reshape(-1)
    origin = np.zeros_like(ta)
    pts = np.stack([origin, ta, tb], axis=1)
    count = np.full(len(pts), 3)
    for start, end in ((origin, tc), (tc, td), (td, origin)):
        pts, count = _clip_left(pts, count, start, end)
    areas = np.abs(_ring_area(pts, count)) * sign
    return areas.reshape(k, 16).sum(axis=1)


def devkit_poly_iou(polys_a, polys_b) -> np.ndarray:
    """IoU of quadrilaterals, pair by pair, computed as the devkit's ``polyiou.iou_poly``.

    ``inter`` is the fan-based intersection (see :func:`_fan_intersection`; for two convex
    quadrilaterals the equal and faster convex clip is used), ``union = |area(a)| + |area(b)| -
    inter`` with shoelace areas, ``iou = inter / union`` (NaN for two zero-area inputs).

    Args:
        polys_a, polys_b: ``(K, 8)`` quadrilaterals (absolute pixels), compared row by row.

    Returns:
        float64 ``(K,)``.
    """
    pa = np.asarray(polys_a, dtype=np.float64).reshape(-1, 4, 2)
    pb = np.asarray(polys_b, dtype=np.float64).reshape(-1, 4, 2)
    if pa.shape != pb.shape:
        raise ValueError(f"devkit_poly_iou: {len(pa)} vs {len(pb)} quadrilaterals")
    area_a = _ring_area(pa, np.full(len(pa), 4))
    area_b = _ring_area(pb, np.full(len(pb), 4))
    pa = np.where((area_a < 0)[:, None, None], pa[:, ::-1], pa)  # polyiou reverses negative ones
    pb = np.where((area_b < 0)[:, None, None], pb[:, ::-1], pb)
    inter = np.zeros(len(pa))
    convex = _is_convex(pa) & _is_convex(pb)
    fast, slow = np.flatnonzero(convex), np.flatnonzero(~convex)
    for s in range(0, len(fast), _FAST_CHUNK):
        rows = fast[s : s + _FAST_CHUNK]
        inter[rows] = _convex_intersection(pa[rows], pb[rows])
    for s in range(0, len(slow), _FAN_CHUNK):
        rows = slow[s : s + _FAN_CHUNK]
        inter[rows] = _fan_intersection(pa[rows], pb[rows])
    union = np.abs(area_a) + np.abs(area_b) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def _is_convex(quads: np.ndarray) -> np.ndarray:
    """bool ``(K,)``: the positively oriented ``(K, 4, 2)`` quadrilateral turns left everywhere."""
    e = np.roll(quads, -1, axis=1) - quads
    en = np.roll(e, -1, axis=1)
    turn = e[..., 0] * en[..., 1] - e[..., 1] * en[..., 0]
    return np.all(turn >= 0, axis=1)
