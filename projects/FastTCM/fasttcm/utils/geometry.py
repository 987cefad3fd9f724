"""Quadrilaterals <-> rotated boxes: the one place where FastTCM-D2 converts between them.

Two representations of an oriented object are used in the project:

* **poly**: a DOTA quadrilateral, 8 numbers ``x1, y1, x2, y2, x3, y3, x4, y4`` in absolute pixels
  (x to the right, y down). DOTA lists the corners clockwise on screen, starting at the object's
  "head" corner.
* **XYWHA**: detectron2's rotated box (``BoxMode.XYWHA_ABS``, ``RotatedBoxes``):
  ``(cx, cy, w, h, a)`` with the centre and the sizes in absolute pixels and the angle ``a`` in
  **degrees, counter-clockwise on screen**, in the range ``[-180, 180)``. A point at offset ``u``
  along the width and ``v`` along the height of the box lies at
  ``(cx + u cos a + v sin a, cy - u sin a + v cos a)``.

The corners of an XYWHA box are returned in detectron2's order (see the ``RotatedBoxes``
docstring, where ``(5, 3, 4, 2, 90)`` has corners A=(4, 5), B=(4, 1), C=(6, 1), D=(6, 5)):
``(-w/2, -h/2), (w/2, -h/2), (w/2, h/2), (-w/2, h/2)`` in the box frame. For ``a = 0`` that is
top-left, top-right, bottom-right, bottom-left: clockwise on screen, like DOTA. So
``xywha_to_poly(poly_to_xywha(p))`` gives back a rectangle ``p`` vertex for vertex.

A general quadrilateral becomes its minimum-area enclosing rectangle (the rectangle
``cv2.minAreaRect`` finds); among the four equivalent XYWHA forms of that rectangle the one whose
corners best follow the quadrilateral's vertex order is chosen, so the first corner stays the head.

Everything is vectorized numpy over a leading batch dimension; nothing here imports detectron2.
"""

import numpy as np

__all__ = [
    "normalize_angle",
    "polygon_area",
    "poly_to_hbb",
    "xywha_to_poly",
    "min_area_rect",
    "poly_to_xywha",
]


def _as_batch(array, width: int, what: str) -> np.ndarray:
    """Return `array` as a float64 ``(N, width)`` array; a single row may be passed flat."""
    if hasattr(array, "detach"):  # torch.Tensor, without importing torch here
        array = array.detach().cpu().numpy()
    arr = np.asarray(array, dtype=np.float64)
    if arr.ndim == 1 and arr.size == width:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"{what} must have shape (N, {width}), got {arr.shape}")
    return arr


def normalize_angle(angles: np.ndarray) -> np.ndarray:
    """Map angles in degrees to detectron2's range ``[-180, 180)`` (same geometric direction)."""
    angles = np.asarray(angles, dtype=np.float64)
    out = np.mod(angles + 180.0, 360.0) - 180.0
    # np.mod can return 360.0 for tiny negative inputs (rounding); fold that back
    return np.where(out >= 180.0, out - 360.0, out)


def polygon_area(polys) -> np.ndarray:
    """Signed shoelace area of polygons.

    Args:
        polys: ``(N, 2K)`` array, rows ``x1, y1, ..., xK, yK`` (absolute pixels, y down).

    Returns:
        ``(N,)`` float64. Positive for vertices listed clockwise on screen (the DOTA order),
        negative for counter-clockwise; a self-intersecting polygon gets the winding-weighted area.
    """
    arr = np.asarray(polys, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] % 2 or arr.shape[1] < 6:
        raise ValueError(f"polygons must have shape (N, 2K) with K >= 3, got {arr.shape}")
    x, y = arr[:, 0::2], arr[:, 1::2]
    return 0.5 * np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1)


def poly_to_hbb(polys) -> np.ndarray:
    """Axis-aligned bounds of polygons.

    Args:
        polys: ``(N, 2K)`` array of polygons (absolute pixels).

    Returns:
        ``(N, 4)`` float64 ``(x0, y0, x1, y1)`` (detectron2 ``XYXY_ABS``).
    """
    arr = np.asarray(polys, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    x, y = arr[:, 0::2], arr[:, 1::2]
    return np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], axis=1)


def xywha_to_poly(boxes) -> np.ndarray:
    """Corners of rotated boxes.

    Args:
        boxes: ``(N, 5)`` XYWHA boxes ``(cx, cy, w, h, angle)``, angle in degrees,
            counter-clockwise on screen (detectron2 convention); a flat 5-vector is accepted.

    Returns:
        ``(N, 8)`` float64 quadrilaterals ``x1, y1, ..., x4, y4``, corners in the box frame order
        ``(-w/2, -h/2), (w/2, -h/2), (w/2, h/2), (-w/2, h/2)`` (clockwise on screen).
    """
    b = _as_batch(boxes, 5, "rotated boxes")
    theta = np.deg2rad(b[:, 4])
    cos, sin = np.cos(theta), np.sin(theta)
    u = np.array([-0.5, 0.5, 0.5, -0.5])[None] * b[:, 2:3]  # (N, 4) offsets along the width
    v = np.array([-0.5, -0.5, 0.5, 0.5])[None] * b[:, 3:4]  # (N, 4) offsets along the height
    xs = b[:, 0:1] + u * cos[:, None] + v * sin[:, None]
    ys = b[:, 1:2] - u * sin[:, None] + v * cos[:, None]
    return np.stack([xs, ys], axis=2).reshape(-1, 8)


def _min_area_rect(pts: np.ndarray):
    """Minimum-area enclosing rectangles of point sets ``(N, M, 2)``.

    The minimum-area rectangle of a point set has a side parallel to an edge of its convex hull;
    the hull edges are among the M(M-1)/2 segments joining the points, so the rectangle aligned
    with each of those directions is measured and the smallest kept (the rectangle
    ``cv2.minAreaRect`` finds).

    Returns:
        ``(N, 5)`` XYWHA, width along the chosen direction, angle not normalized.
    """
    n, m, _ = pts.shape
    i, j = np.triu_indices(m, k=1)
    d = pts[:, j] - pts[:, i]  # (N, S, 2)
    length = np.linalg.norm(d, axis=2, keepdims=True)
    d = np.where(length > 0, d / np.where(length > 0, length, 1.0), np.array([1.0, 0.0]))
    normal = np.stack([-d[..., 1], d[..., 0]], axis=2)  # d rotated by +90 deg in (x, y)
    u = np.einsum("nkc,npc->nkp", d, pts)  # (N, S, M) coordinates along d
    v = np.einsum("nkc,npc->nkp", normal, pts)  # (N, S, M) coordinates along the normal
    extent_u = u.max(2) - u.min(2)
    extent_v = v.max(2) - v.min(2)
    best = np.argmin(extent_u * extent_v, axis=1)  # (N,)
    rows = np.arange(n)
    d, normal = d[rows, best], normal[rows, best]  # (N, 2)
    u, v = u[rows, best], v[rows, best]  # (N, M)
    center = (
        d * (0.5 * (u.max(1) + u.min(1)))[:, None] + normal * (0.5 * (v.max(1) + v.min(1)))[:, None]
    )
    # the width direction of an XYWHA box is (cos a, -sin a) on screen; its height direction
    # (sin a, cos a) is then exactly `normal`
    angle = np.rad2deg(np.arctan2(-d[:, 1], d[:, 0]))
    return np.stack(
        [center[:, 0], center[:, 1], extent_u[rows, best], extent_v[rows, best], angle], axis=1
    )


def min_area_rect(points) -> np.ndarray:
    """Minimum-area rotated boxes enclosing point sets (same rectangle as ``cv2.minAreaRect``).

    Args:
        points: ``(N, M, 2)`` sets of M >= 2 points (absolute pixels); pad a shorter set by
            repeating one of its points.

    Returns:
        ``(N, 5)`` XYWHA, angle in degrees counter-clockwise in ``[-180, 180)``; which side is
        the width is unspecified (use :func:`poly_to_xywha` to follow a vertex order).
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[2] != 2 or pts.shape[1] < 2:
        raise ValueError(f"points must have shape (N, M >= 2, 2), got {pts.shape}")
    if len(pts) == 0:
        return np.zeros((0, 5))
    out = _min_area_rect(pts)
    out[:, 4] = normalize_angle(out[:, 4])
    return out


def poly_to_xywha(polys) -> np.ndarray:
    """Minimum-area rotated boxes of quadrilaterals, oriented to follow their vertex order.

    The box is the minimum-area enclosing rectangle (:func:`min_area_rect`). Of its four XYWHA
    forms (angle + k*90 degrees, w and h swapped for odd k) the one whose corners (see
    :func:`xywha_to_poly`) are nearest to the input vertices, in order, is returned, so a
    rectangle listed clockwise on screen comes back vertex for vertex.

    Args:
        polys: ``(N, 8)`` quadrilaterals ``x1, y1, ..., x4, y4`` (absolute pixels, y down); a
            flat 8-vector is accepted.

    Returns:
        ``(N, 5)`` float64 XYWHA boxes, angle in degrees counter-clockwise in ``[-180, 180)``.
        A degenerate input (all points on a line or equal) gives a box of zero width or height.
    """
    p = _as_batch(polys, 8, "quadrilaterals")
    n = len(p)
    if n == 0:
        return np.zeros((0, 5))
    rect = _min_area_rect(p.reshape(-1, 4, 2))
    k = np.arange(4)
    cand = np.empty((n, 4, 5))
    cand[..., 0:2] = rect[:, None, 0:2]
    cand[..., 2] = np.where(k % 2 == 0, rect[:, 2:3], rect[:, 3:4])
    cand[..., 3] = np.where(k % 2 == 0, rect[:, 3:4], rect[:, 2:3])
    cand[..., 4] = rect[:, 4:5] + 90.0 * k
    corners = xywha_to_poly(cand.reshape(-1, 5)).reshape(n, 4, 8)
    cost = np.sum((corners - p[:, None, :]) ** 2, axis=2)
    out = cand[np.arange(n), np.argmin(cost, axis=1)]
    out[:, 4] = normalize_angle(out[:, 4])
    return out
