"""Drawing in rotated local frames: the shapes every aerial sprite and zone is made of.

Every drawing function paints into a BGR ``uint8`` image of shape ``(H, W, 3)``, in place, with
anti-aliased edges and sub-pixel accurate vertices. Shapes are given in the local ``(u, v)``
coordinates of a :class:`Frame` (pixels, ``u`` along the object's length) and mapped to image
``(x, y)`` pixels (``x`` right, ``y`` down) by the frame.
"""

import math
from typing import Tuple

import cv2
import numpy as np

__all__ = [
    "SUBPIXEL_BITS",
    "Color",
    "Frame",
    "to_fixed_point",
    "fill_poly",
    "fill_rect",
    "outline",
    "ellipse_pts",
    "fill_ellipse",
    "stadium_pts",
    "rounded_rect_pts",
    "jitter",
]

SUBPIXEL_BITS = 4
"""Fractional bits of the fixed-point vertices passed to OpenCV's drawing functions."""

Color = Tuple[int, int, int]  # BGR


class Frame:
    """A rotated local frame: local ``(u, v)`` -> image ``(cx + u cos a + v sin a,
    cy - u sin a + v cos a)``, the XYWHA convention (u along the width, a counter-clockwise).

    Attributes:
        cx, cy: the frame's origin in image pixels.
        angle: its rotation in degrees, counter-clockwise on screen.
    """

    def __init__(self, cx: float, cy: float, angle: float):
        self.cx, self.cy, self.angle = float(cx), float(cy), float(angle)
        t = math.radians(angle)
        self._c, self._s = math.cos(t), math.sin(t)

    def to_image(self, pts) -> np.ndarray:
        """Map local points, anything reshapeable to ``(N, 2)`` ``(u, v)``, to image ``(N, 2)``
        ``(x, y)`` pixels (float64)."""
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        u, v = pts[:, 0], pts[:, 1]
        return np.stack(
            [self.cx + u * self._c + v * self._s, self.cy - u * self._s + v * self._c], axis=1
        )

    def child(self, u: float, v: float, dangle: float = 0.0) -> "Frame":
        """The frame whose origin is local point ``(u, v)``, turned by a further `dangle`
        degrees."""
        x, y = self.to_image([[u, v]])[0]
        return Frame(x, y, self.angle + dangle)

    def box(self, w: float, h: float) -> Tuple[float, float, float, float, float]:
        """The XYWHA box ``(cx, cy, w, h, angle)`` (image pixels, degrees) of a `w` x `h`
        rectangle centred on the frame's origin, `w` along ``u``."""
        return (self.cx, self.cy, float(w), float(h), self.angle)


def to_fixed_point(pts: np.ndarray) -> np.ndarray:
    """Float pixel coordinates ``(..., 2)`` -> int32 with :data:`SUBPIXEL_BITS` fractional
    bits."""
    return np.round(pts * (1 << SUBPIXEL_BITS)).astype(np.int32)


def fill_poly(img, frame: Frame, pts, color: Color) -> None:
    """Fill the polygon of local vertices `pts` ``(N, 2)``."""
    cv2.fillPoly(img, [to_fixed_point(frame.to_image(pts))], color, cv2.LINE_AA, SUBPIXEL_BITS)


def fill_rect(img, frame: Frame, u0, v0, u1, v1, color: Color) -> None:
    """Fill the local rectangle with corners ``(u0, v0)`` and ``(u1, v1)``."""
    fill_poly(img, frame, [[u0, v0], [u1, v0], [u1, v1], [u0, v1]], color)


def outline(img, frame: Frame, pts, color: Color, thickness: int = 1, closed=True) -> None:
    """Draw the polyline through local points `pts` ``(N, 2)``, `thickness` pixels wide."""
    cv2.polylines(
        img,
        [to_fixed_point(frame.to_image(pts))],
        closed,
        color,
        thickness,
        cv2.LINE_AA,
        SUBPIXEL_BITS,
    )


def ellipse_pts(u, v, a, b, start=0.0, end=360.0, n=48) -> np.ndarray:
    """`n` points ``(n, 2)`` of the ellipse centred at ``(u, v)`` with semi-axes `a` (along u)
    and `b` (along v), from angle `start` to `end` (degrees, from +u towards +v)."""
    t = np.deg2rad(np.linspace(start, end, n))
    return np.stack([u + a * np.cos(t), v + b * np.sin(t)], axis=1)


def fill_ellipse(img, frame: Frame, u, v, a, b, color: Color) -> None:
    """Fill the local ellipse centred at ``(u, v)`` with semi-axes `a` and `b`."""
    fill_poly(img, frame, ellipse_pts(u, v, a, b), color)


def stadium_pts(length, width, n=24) -> np.ndarray:
    """Outline ``(2 n, 2)`` of a stadium (rectangle with semicircular ends) centred at 0, long
    along u."""
    r = width / 2
    half = max(length / 2 - r, 0)
    right = ellipse_pts(half, 0, r, r, -90, 90, n)
    left = ellipse_pts(-half, 0, r, r, 90, 270, n)
    return np.concatenate([right, left])


def rounded_rect_pts(length, width, n=6) -> np.ndarray:
    """Outline ``(4 n, 2)`` of a `length` x `width` rectangle centred at 0, long along u, whose
    corners are rounded with a quarter of its smaller side."""
    r = min(length, width) * 0.25
    corners = [
        (length / 2 - r, width / 2 - r, 0),
        (-length / 2 + r, width / 2 - r, 90),
        (-length / 2 + r, -width / 2 + r, 180),
        (length / 2 - r, -width / 2 + r, 270),
    ]
    return np.concatenate([ellipse_pts(u, v, r, r, a, a + 90, n) for u, v, a in corners])


def jitter(rng, color: Color, amount: int = 12) -> Color:
    """`color` with each channel moved by a uniform integer in ``[-amount, amount]``, clipped to
    0-255 (draws three integers from `rng`)."""
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)
