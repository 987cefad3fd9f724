"""Synthetic aerial images with DOTA-v1.0 labels (DECISIONS.md section 5).

Each image (2048-4096 px a side by default) is a procedural landscape (smooth colour field, grain,
roads, trees) holding "zones", each a typical arrangement of one or two DOTA-v1.0 classes drawn
with its own shape, palette, texture and size range:

============================  =====================================================================
zone                          objects
============================  =====================================================================
river (at most one)           bridges spanning it, ships along it, harbour piers jutting from banks
apron                         planes parked in rows (swept wings, tail, engines)
heliport                      helicopters (body, tail boom, crossed rotor) on "H" pads
parking lot                   rows of small vehicles; a row of large vehicles (cab + trailer)
street                        small and large vehicles in lanes
tennis / basketball           groups of courts with their line markings
soccer field, track field     striped pitch with markings; red oval track around a green infield
baseball diamond              grass fan with a dirt infield and base lines
tank farm                     grids of round storage tanks (rim, roof ring, shadow)
residential                   houses (unlabelled) and swimming pools beside them
roundabout                    asphalt ring, green island, road arms
============================  =====================================================================

Objects are randomly oriented (round tanks and roundabouts carry angle 0, like DOTA's labels), and
about 7% are covered by haze and labelled difficult (``1``). Everything is drawn from one
``numpy.random.Generator`` seeded with ``(seed, image index)``, so a dataset is reproducible
image by image. Sizes are in pixels of the full image (objects 18-300 px), so they stay
learnable in 1024-pixel patches; ``object_scale`` shrinks them for small test images.

Labels are DOTA ``labelTxt`` lines whose quadrilateral is the object's rotated box
(:func:`fasttcm.utils.geometry.xywha_to_poly`: clockwise on screen) inside the image.
"""

import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Sequence, Tuple

import cv2
import numpy as np

from ...utils.atomic_io import atomic_open
from ...utils.geometry import xywha_to_poly
from ..datasets.dota_meta import DOTA_V1_0_CLASSES

__all__ = [
    "AerialObject",
    "render_aerial_image",
    "generate_aerial_dataset",
    "ensure_aerial_dataset",
    "make_aerial_dataset",
]

logger = logging.getLogger(__name__)

_SHIFT = 4  # cv2 sub-pixel bits
_DIFFICULT_RATE = 0.07
Color = Tuple[int, int, int]  # BGR


@dataclass(frozen=True)
class AerialObject:
    """One labelled object.

    Attributes:
        box: ``(cx, cy, w, h, angle)`` XYWHA in image pixels (degrees, counter-clockwise).
        category: a DOTA-v1.0 class name.
        difficult: drawn under haze.
    """

    box: Tuple[float, float, float, float, float]
    category: str
    difficult: bool


# --------------------------------------------------------------------------------------------
# drawing in rotated frames


class _Frame:
    """A rotated local frame: local ``(u, v)`` -> image ``(cx + u cos a + v sin a,
    cy - u sin a + v cos a)``, the XYWHA convention (u along the width, a counter-clockwise)."""

    def __init__(self, cx: float, cy: float, angle: float):
        self.cx, self.cy, self.angle = float(cx), float(cy), float(angle)
        t = math.radians(angle)
        self._c, self._s = math.cos(t), math.sin(t)

    def to_image(self, pts) -> np.ndarray:
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        u, v = pts[:, 0], pts[:, 1]
        return np.stack(
            [self.cx + u * self._c + v * self._s, self.cy - u * self._s + v * self._c], axis=1
        )

    def child(self, u: float, v: float, dangle: float = 0.0) -> "_Frame":
        x, y = self.to_image([[u, v]])[0]
        return _Frame(x, y, self.angle + dangle)

    def box(self, w: float, h: float) -> Tuple[float, float, float, float, float]:
        return (self.cx, self.cy, float(w), float(h), self.angle)


def _fixed(pts: np.ndarray) -> np.ndarray:
    return np.round(pts * (1 << _SHIFT)).astype(np.int32)


def _poly(img, frame: _Frame, pts, color: Color) -> None:
    cv2.fillPoly(img, [_fixed(frame.to_image(pts))], color, cv2.LINE_AA, _SHIFT)


def _rect(img, frame: _Frame, u0, v0, u1, v1, color: Color) -> None:
    _poly(img, frame, [[u0, v0], [u1, v0], [u1, v1], [u0, v1]], color)


def _outline(img, frame: _Frame, pts, color: Color, thickness: int = 1, closed=True) -> None:
    cv2.polylines(img, [_fixed(frame.to_image(pts))], closed, color, thickness, cv2.LINE_AA, _SHIFT)


def _ellipse_pts(u, v, a, b, start=0.0, end=360.0, n=48) -> np.ndarray:
    t = np.deg2rad(np.linspace(start, end, n))
    return np.stack([u + a * np.cos(t), v + b * np.sin(t)], axis=1)


def _disc(img, frame: _Frame, u, v, a, b, color: Color) -> None:
    _poly(img, frame, _ellipse_pts(u, v, a, b), color)


def _stadium_pts(length, width, n=24) -> np.ndarray:
    """Outline of a stadium (rectangle with semicircular ends) centred at 0, long along u."""
    r = width / 2
    half = max(length / 2 - r, 0)
    right = _ellipse_pts(half, 0, r, r, -90, 90, n)
    left = _ellipse_pts(-half, 0, r, r, 90, 270, n)
    return np.concatenate([right, left])


def _jitter(rng, color: Color, amount: int = 12) -> Color:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)


# --------------------------------------------------------------------------------------------
# object painters: local frame centred on the object, u along its length (heading +u)


def _plane(img, f: _Frame, rng, length: float) -> Tuple[float, float]:
    span = length * rng.uniform(0.85, 1.05)
    body = _jitter(rng, (235, 235, 232), 10)
    shade = tuple(int(c * 0.72) for c in body)
    _poly(img, f.child(3, 3), _wing_pts(length, span), (70, 75, 78))  # shadow
    _poly(img, f, _wing_pts(length, span), tuple(int(c * 0.93) for c in body))
    _outline(img, f, _wing_pts(length, span), shade, 1)
    _disc(img, f, 0, 0, length / 2, length * 0.065, body)
    _poly(
        img,
        f,
        [[length * 0.47, 0], [length * 0.38, -length * 0.05], [length * 0.38, length * 0.05]],
        body,
    )
    for side in (-1, 1):  # engines
        _disc(img, f, length * 0.06, side * span * 0.2, length * 0.07, length * 0.03, (90, 90, 95))
    _disc(img, f, length * 0.36, 0, length * 0.05, length * 0.03, (60, 50, 40))  # cockpit
    return length, span


def _wing_pts(length, span) -> np.ndarray:
    root, tip = length * 0.12, length * -0.12
    tail = -length * 0.42
    return np.array(
        [
            [root, 0.0],
            [tip, span / 2],
            [tip - length * 0.1, span / 2],
            [-length * 0.15, length * 0.06],
            [tail + length * 0.06, length * 0.05],
            [tail - length * 0.02, span * 0.2],
            [tail - length * 0.08, span * 0.2],
            [tail - length * 0.06, 0.0],
            [tail - length * 0.08, -span * 0.2],
            [tail - length * 0.02, -span * 0.2],
            [tail + length * 0.06, -length * 0.05],
            [-length * 0.15, -length * 0.06],
            [tip - length * 0.1, -span / 2],
            [tip, -span / 2],
        ]
    )


def _helicopter(img, f: _Frame, rng, length: float) -> Tuple[float, float]:
    body = _jitter(rng, (60, 80, 70), 12)
    span = length * rng.uniform(0.75, 0.9)
    _disc(img, f.child(2, 2), length * 0.15, 0, length * 0.23, length * 0.13, (50, 55, 55))
    _rect(img, f, -length / 2, -length * 0.035, 0, length * 0.035, body)  # tail boom
    _rect(img, f, -length / 2, -length * 0.1, -length * 0.44, length * 0.1, body)  # tail rotor
    _disc(img, f, length * 0.17, 0, length * 0.24, length * 0.13, body)
    _disc(img, f, length * 0.3, 0, length * 0.09, length * 0.08, (150, 130, 110))  # canopy
    rotor = f.child(length * 0.15, 0, rng.uniform(0, 90))
    for a in (0, 90):
        _rect(img, rotor.child(0, 0, a), -span / 2, -1.2, span / 2, 1.2, (35, 35, 35))
    return length, span


def _small_vehicle(img, f: _Frame, rng, length: float) -> Tuple[float, float]:
    width = length * rng.uniform(0.42, 0.5)
    palette = [
        (240, 240, 240),
        (30, 30, 30),
        (40, 40, 180),
        (160, 90, 30),
        (190, 190, 190),
        (40, 120, 40),
        (60, 160, 220),
    ]
    color = _jitter(rng, palette[rng.integers(len(palette))], 15)
    _poly(img, f.child(1.5, 1.5), _rounded_rect(length, width), (45, 50, 50))
    _poly(img, f, _rounded_rect(length, width), color)
    glass = (50, 45, 40) if sum(color) > 200 else (120, 120, 115)
    _rect(img, f, length * 0.12, -width * 0.38, length * 0.3, width * 0.38, glass)  # windscreen
    _rect(img, f, -length * 0.38, -width * 0.36, -length * 0.26, width * 0.36, glass)  # rear window
    return length, width


def _rounded_rect(length, width, n=6) -> np.ndarray:
    r = min(length, width) * 0.25
    corners = [
        (length / 2 - r, width / 2 - r, 0),
        (-length / 2 + r, width / 2 - r, 90),
        (-length / 2 + r, -width / 2 + r, 180),
        (length / 2 - r, -width / 2 + r, 270),
    ]
    return np.concatenate([_ellipse_pts(u, v, r, r, a, a + 90, n) for u, v, a in corners])


def _large_vehicle(img, f: _Frame, rng, length: float) -> Tuple[float, float]:
    width = length * rng.uniform(0.24, 0.3)
    trailer = _jitter(
        rng, [(225, 225, 225), (40, 90, 170), (170, 170, 170), (60, 60, 140)][rng.integers(4)], 12
    )
    cab = _jitter(rng, [(30, 30, 160), (200, 200, 200), (160, 60, 20)][rng.integers(3)], 12)
    _rect(img, f.child(2, 2), -length / 2, -width / 2, length / 2, width / 2, (45, 50, 50))
    _rect(img, f, -length / 2, -width / 2, length * 0.28, width / 2, trailer)
    for k in range(1, 4):  # roof ribs
        u = -length / 2 + k * length * 0.19
        _rect(
            img, f, u - 0.6, -width / 2, u + 0.6, width / 2, tuple(int(c * 0.85) for c in trailer)
        )
    _rect(img, f, length * 0.32, -width * 0.45, length / 2, width * 0.45, cab)
    _rect(img, f, length * 0.44, -width * 0.38, length * 0.48, width * 0.38, (40, 40, 40))
    return length, width


def _ship(img, f: _Frame, rng, length: float) -> Tuple[float, float]:
    width = length * rng.uniform(0.18, 0.26)
    hull = _jitter(
        rng, [(235, 235, 235), (70, 70, 170), (160, 160, 160), (40, 40, 40)][rng.integers(4)], 10
    )
    deck = _jitter(rng, (120, 150, 170), 20)
    pts = np.array(
        [
            [length / 2, 0],
            [length * 0.3, -width / 2],
            [-length / 2, -width / 2],
            [-length / 2, width / 2],
            [length * 0.3, width / 2],
        ]
    )
    _poly(img, f.child(-length * 0.08, 0), pts * [1.05, 0.9], (120, 110, 95))  # wake
    _poly(img, f, pts, hull)
    _poly(img, f, pts * [0.85, 0.7], deck)
    _rect(img, f, -length * 0.42, -width * 0.32, -length * 0.22, width * 0.32, (245, 245, 245))
    for k in range(int(rng.integers(1, 4))):  # cargo hatches
        u = -length * 0.12 + k * length * 0.14
        _rect(
            img,
            f,
            u,
            -width * 0.25,
            u + length * 0.1,
            width * 0.25,
            _jitter(rng, (60, 90, 140), 20),
        )
    return length, width


def _bridge(img, f: _Frame, rng, length: float, width: float) -> Tuple[float, float]:
    _rect(
        img, f.child(0, width * 0.35), -length / 2, -width / 2, length / 2, width / 2, (60, 55, 40)
    )
    _rect(img, f, -length / 2, -width / 2, length / 2, width / 2, _jitter(rng, (95, 95, 95), 8))
    for side in (-1, 1):  # parapets
        _rect(
            img,
            f,
            -length / 2,
            side * width / 2 - 1.5,
            length / 2,
            side * width / 2 + 1.5,
            (200, 200, 200),
        )
    for u in np.arange(-length / 2 + 6, length / 2 - 6, 14):  # centre line dashes
        _rect(img, f, u, -0.8, u + 7, 0.8, (60, 210, 230))
    for u in np.linspace(-length / 2 + 4, length / 2 - 4, 5):  # piers/joints
        _rect(img, f, u - 1, -width / 2, u + 1, width / 2, (120, 120, 120))
    return length, width


def _harbor(img, f: _Frame, rng, length: float, width: float) -> Tuple[float, float]:
    concrete = _jitter(rng, (175, 190, 200), 10)
    _rect(img, f.child(2, 3), -length / 2, -width / 2, length / 2, width / 2, (70, 60, 45))
    _rect(img, f, -length / 2, -width / 2, length / 2, width / 2, concrete)
    head = width * rng.uniform(1.6, 2.2)
    _rect(img, f, length / 2 - width * 0.9, -head / 2, length / 2, head / 2, concrete)
    for u in np.arange(-length / 2 + 5, length / 2 - 5, 9):  # bollards
        for side in (-1, 1):
            _disc(img, f, u, side * (width / 2 - 2), 1.3, 1.3, (40, 40, 40))
    _outline(
        img,
        f,
        [
            [-length / 2, -width / 2],
            [length / 2, -width / 2],
            [length / 2, width / 2],
            [-length / 2, width / 2],
        ],
        (110, 115, 120),
        1,
    )
    return length, max(width, head)


def _tennis_court(img, f: _Frame, rng, length: float) -> Tuple[float, float]:
    width = length * 0.5
    outer, inner = [
        ((60, 120, 60), (70, 160, 70)),
        ((140, 90, 40), (170, 120, 40)),
        ((50, 80, 170), (60, 110, 190)),
    ][rng.integers(3)]
    _rect(img, f, -length / 2, -width / 2, length / 2, width / 2, outer)
    lu, lv = length * 0.36, width * 0.3
    _rect(img, f, -lu, -lv, lu, lv, inner)
    white = (245, 245, 245)
    _outline(img, f, [[-lu, -lv], [lu, -lv], [lu, lv], [-lu, lv]], white, 1)
    _rect(img, f, -0.7, -lv - 2, 0.7, lv + 2, (30, 30, 30))  # net
    for u in (-lu * 0.55, lu * 0.55):
        _outline(img, f, [[u, -lv * 0.75], [u, lv * 0.75]], white, 1, closed=False)
    _outline(img, f, [[-lu * 0.55, 0], [lu * 0.55, 0]], white, 1, closed=False)
    for v in (-lv * 0.75, lv * 0.75):
        _outline(img, f, [[-lu, v], [lu, v]], white, 1, closed=False)
    return length, width


def _basketball_court(img, f: _Frame, rng, length: float) -> Tuple[float, float]:
    width = length * 0.56
    floor = _jitter(rng, [(60, 120, 190), (150, 90, 50), (80, 140, 80)][rng.integers(3)], 10)
    _rect(img, f, -length / 2, -width / 2, length / 2, width / 2, floor)
    white = (245, 245, 245)
    lu, lv = length * 0.45, width * 0.42
    _outline(img, f, [[-lu, -lv], [lu, -lv], [lu, lv], [-lu, lv]], white, 1)
    _outline(img, f, [[0, -lv], [0, lv]], white, 1, closed=False)
    _outline(img, f, _ellipse_pts(0, 0, width * 0.14, width * 0.14), white, 1)
    for side in (-1, 1):
        key = side * lu
        _rect(
            img,
            f,
            min(key, key - side * length * 0.17),
            -width * 0.1,
            max(key, key - side * length * 0.17),
            width * 0.1,
            (40, 60, 200) if floor[2] < 150 else (60, 60, 60),
        )
        _outline(
            img,
            f,
            (
                _ellipse_pts(key, 0, length * 0.23, lv * 0.85, 90, 270)
                if side > 0
                else _ellipse_pts(key, 0, length * 0.23, lv * 0.85, -90, 90)
            ),
            white,
            1,
            closed=False,
        )
    return length, width


def _soccer_field(img, f: _Frame, rng, length: float) -> Tuple[float, float]:
    width = length * rng.uniform(0.6, 0.68)
    grass = _jitter(rng, (50, 140, 60), 8)
    light = tuple(min(c + 22, 255) for c in grass)
    n = 10
    for k in range(n):  # mowing stripes
        u0 = -length / 2 + k * length / n
        _rect(img, f, u0, -width / 2, u0 + length / n, width / 2, grass if k % 2 else light)
    white = (240, 240, 240)
    lu, lv = length * 0.46, width * 0.44
    _outline(img, f, [[-lu, -lv], [lu, -lv], [lu, lv], [-lu, lv]], white, 2)
    _outline(img, f, [[0, -lv], [0, lv]], white, 1, closed=False)
    _outline(img, f, _ellipse_pts(0, 0, width * 0.15, width * 0.15), white, 1)
    for side in (-1, 1):
        box_u = side * lu
        box_in = side * (lu - length * 0.16)
        _outline(
            img,
            f,
            [[box_u, -lv * 0.55], [box_in, -lv * 0.55], [box_in, lv * 0.55], [box_u, lv * 0.55]],
            white,
            1,
            closed=False,
        )
        _rect(
            img,
            f,
            min(box_u, box_u + side * 3),
            -width * 0.06,
            max(box_u, box_u + side * 3),
            width * 0.06,
            (230, 230, 230),
        )
    return length, width


def _track_field(img, f: _Frame, rng, length: float) -> Tuple[float, float]:
    width = length * rng.uniform(0.5, 0.58)
    track = _jitter(rng, (60, 70, 170), 12)  # red-brown tartan
    _poly(img, f, _stadium_pts(length, width), track)
    lanes = width * 0.14
    for k in range(1, 4):  # lane lines
        _outline(
            img,
            f,
            _stadium_pts(length - 2 * lanes * k / 4, width - 2 * lanes * k / 4),
            (235, 235, 235),
            1,
        )
    _poly(
        img, f, _stadium_pts(length - 2 * lanes, width - 2 * lanes), _jitter(rng, (60, 150, 70), 8)
    )
    inner_l = (length - 2 * lanes - width + 2 * lanes) * 0.9
    _outline(
        img,
        f,
        [
            [-inner_l / 2, -(width / 2 - lanes) * 0.7],
            [inner_l / 2, -(width / 2 - lanes) * 0.7],
            [inner_l / 2, (width / 2 - lanes) * 0.7],
            [-inner_l / 2, (width / 2 - lanes) * 0.7],
        ],
        (230, 230, 230),
        1,
    )
    return length, width


def _baseball_diamond(img, f: _Frame, rng, size: float) -> Tuple[float, float]:
    """A fan of radius `size` opening towards +u; its box is size x 1.41 size."""
    apex = -size / 2
    fan = np.concatenate([[[apex, 0.0]], _ellipse_pts(apex, 0, size, size, -45, 45, 32)])
    _poly(img, f, fan, _jitter(rng, (60, 150, 70), 10))
    dirt = _jitter(rng, (90, 140, 190), 10)
    infield = np.concatenate(
        [[[apex, 0.0]], _ellipse_pts(apex, 0, size * 0.62, size * 0.62, -45, 45, 24)]
    )
    _poly(img, f, infield, dirt)
    base = size * 0.33
    diamond = np.array(
        [
            [apex, 0],
            [apex + base * 0.707, -base * 0.707],
            [apex + base * 1.414, 0],
            [apex + base * 0.707, base * 0.707],
        ]
    )
    _poly(img, f, diamond * [1, 0.8] + [apex * 0.2, 0], _jitter(rng, (60, 150, 70), 6))
    for end in (
        _ellipse_pts(apex, 0, size, size, -45, -45, 1),
        _ellipse_pts(apex, 0, size, size, 45, 45, 1),
    ):
        _outline(img, f, [[apex, 0.0], end[0]], (245, 245, 245), 1, closed=False)
    _disc(img, f, apex + base * 0.72, 0, size * 0.04, size * 0.04, dirt)  # mound
    return size, size * 1.414


def _storage_tank(img, f: _Frame, rng, diameter: float) -> Tuple[float, float]:
    r = diameter / 2
    _disc(img, f.child(r * 0.18, r * 0.18), 0, 0, r, r, (70, 75, 75))  # shadow
    shell = _jitter(rng, (225, 228, 228), 12)
    _disc(img, f, 0, 0, r, r, tuple(int(c * 0.8) for c in shell))
    _disc(img, f, 0, 0, r * 0.88, r * 0.88, shell)
    _outline(img, f, _ellipse_pts(0, 0, r * 0.55, r * 0.55), tuple(int(c * 0.75) for c in shell), 1)
    _disc(
        img,
        f,
        -r * 0.25,
        -r * 0.25,
        r * 0.18,
        r * 0.18,
        tuple(min(int(c * 1.05), 255) for c in shell),
    )
    return diameter, diameter


def _roundabout(img, f: _Frame, rng, diameter: float) -> Tuple[float, float]:
    r = diameter / 2
    asphalt = _jitter(rng, (85, 85, 85), 8)
    for k in range(int(rng.integers(3, 5))):  # arms leaving the box (not part of the object)
        arm = f.child(0, 0, k * 90 + rng.uniform(-15, 15))
        _rect(img, arm, r * 0.8, -r * 0.22, r * 1.9, r * 0.22, asphalt)
    _disc(img, f, 0, 0, r, r, asphalt)
    _disc(img, f, 0, 0, r * 0.62, r * 0.62, (200, 200, 200))
    _disc(img, f, 0, 0, r * 0.57, r * 0.57, _jitter(rng, (55, 140, 65), 10))
    _outline(img, f, _ellipse_pts(0, 0, r * 0.8, r * 0.8), (230, 230, 230), 1)
    if rng.random() < 0.6:
        _disc(img, f, 0, 0, r * 0.25, r * 0.25, (35, 90, 40))
    return diameter, diameter


def _swimming_pool(img, f: _Frame, rng, length: float) -> Tuple[float, float]:
    width = length * rng.uniform(0.45, 0.6)
    _poly(img, f, _rounded_rect(length, width), (215, 215, 210))  # deck
    _poly(img, f, _rounded_rect(length * 0.84, width * 0.72), _jitter(rng, (225, 190, 60), 15))
    _rect(img, f, -length * 0.3, -width * 0.05, length * 0.3, width * 0.05, (240, 215, 120))
    return length, width


# --------------------------------------------------------------------------------------------
# zones: plan (size), then draw into a placed frame


_Zone = Tuple[float, float, Callable[[np.ndarray, _Frame, List[AerialObject]], None]]


def _put(objects, img, frame, painter, rng, *args, axis_aligned=False):
    w, h = painter(img, frame, rng, *args)
    angle = 0.0 if axis_aligned else frame.angle
    objects.append(
        AerialObject((frame.cx, frame.cy, float(w), float(h), angle), _CLASS[painter], False)
    )


def _zone_apron(rng, s) -> _Zone:
    n, rows = int(rng.integers(2, 6)), int(rng.integers(1, 3))
    length = rng.uniform(50, 90) * s
    pitch = length * 1.25
    w, h = n * pitch + 20 * s, rows * length * 1.3 + 30 * s

    def draw(img, z, objects):
        _rect(img, z, -w / 2, -h / 2, w / 2, h / 2, _jitter(rng, (160, 165, 165), 10))
        _outline(
            img,
            z,
            [[-w / 2 + 5 * s, h / 2 - 8 * s], [w / 2 - 5 * s, h / 2 - 8 * s]],
            (60, 200, 230),
            2,
            False,
        )
        heading = rng.choice([90.0, -90.0])
        for r in range(rows):
            for k in range(n):
                if rng.random() < 0.15:
                    continue
                u = -w / 2 + 10 * s + pitch * (k + 0.5)
                v = -h / 2 + 15 * s + length * 1.3 * (r + 0.5)
                _put(
                    objects,
                    img,
                    z.child(u, v, heading + rng.uniform(-4, 4)),
                    _plane,
                    rng,
                    length * rng.uniform(0.92, 1.08),
                )

    return w, h, draw


def _zone_heliport(rng, s) -> _Zone:
    n = int(rng.integers(1, 4))
    length = rng.uniform(34, 54) * s
    pad = length * 1.3
    w, h = n * pad * 1.15 + 10 * s, pad * 1.3

    def draw(img, z, objects):
        _rect(img, z, -w / 2, -h / 2, w / 2, h / 2, _jitter(rng, (140, 145, 140), 8))
        for k in range(n):
            u = -w / 2 + 5 * s + pad * 1.15 * (k + 0.5)
            _disc(img, z, u, 0, pad / 2, pad / 2, (90, 95, 95))
            _outline(img, z, _ellipse_pts(u, 0, pad * 0.45, pad * 0.45), (230, 230, 230), 2)
            for du in (-pad * 0.15, pad * 0.15):  # the "H"
                _rect(img, z, u + du - 1.5, -pad * 0.2, u + du + 1.5, pad * 0.2, (230, 230, 230))
            _rect(img, z, u - pad * 0.15, -1.5, u + pad * 0.15, 1.5, (230, 230, 230))
            if rng.random() < 0.85:
                _put(objects, img, z.child(u, 0, rng.uniform(-180, 180)), _helicopter, rng, length)

    return w, h, draw


def _zone_parking(rng, s) -> _Zone:
    cols, rows = int(rng.integers(4, 12)), int(rng.integers(2, 5))
    length = rng.uniform(18, 26) * s
    stall_w, stall_l = length * 0.75, length * 1.3
    trucks = rng.random() < 0.6
    truck_len = rng.uniform(45, 65) * s
    w = cols * stall_w + 16 * s
    h = rows * stall_l + (truck_len * 0.45 + 10 * s if trucks else 0) + 16 * s

    def draw(img, z, objects):
        _rect(img, z, -w / 2, -h / 2, w / 2, h / 2, _jitter(rng, (105, 105, 105), 8))
        for r in range(rows):
            v = -h / 2 + 8 * s + stall_l * (r + 0.5)
            for c in range(cols + 1):
                u = -w / 2 + 8 * s + c * stall_w
                _rect(
                    img,
                    z,
                    u - 0.6,
                    v - stall_l * 0.45,
                    u + 0.6,
                    v + stall_l * 0.45,
                    (215, 215, 215),
                )
            flip = 90.0 if r % 2 else -90.0
            for c in range(cols):
                if rng.random() < 0.25:
                    continue
                u = -w / 2 + 8 * s + stall_w * (c + 0.5)
                _put(
                    objects,
                    img,
                    z.child(u, v, flip + rng.uniform(-5, 5)),
                    _small_vehicle,
                    rng,
                    length * rng.uniform(0.9, 1.1),
                )
        if trucks:
            v = h / 2 - 8 * s - truck_len * 0.225
            n = int((w - 10 * s) // (truck_len * 1.15))
            for k in range(n):
                u = -w / 2 + 5 * s + truck_len * 1.15 * (k + 0.5)
                _put(
                    objects,
                    img,
                    z.child(u, v, rng.choice([0.0, 180.0]) + rng.uniform(-3, 3)),
                    _large_vehicle,
                    rng,
                    truck_len * rng.uniform(0.9, 1.1),
                )

    return w, h, draw


def _zone_street(rng, s) -> _Zone:
    length = rng.uniform(350, 700) * s
    lane = 16 * s
    w, h = length, 4 * lane + 6 * s

    def draw(img, z, objects):
        _rect(img, z, -w / 2, -h / 2, w / 2, h / 2, _jitter(rng, (80, 80, 80), 6))
        for u in np.arange(-w / 2, w / 2 - 8 * s, 16 * s):
            _rect(img, z, u, -0.8, u + 8 * s, 0.8, (230, 230, 230))
        for lane_v, heading in ((-1.5, 180.0), (-0.5, 180.0), (0.5, 0.0), (1.5, 0.0)):
            u = -w / 2 + rng.uniform(5, 40) * s
            while True:
                large = rng.random() < 0.2
                size = (rng.uniform(45, 65) if large else rng.uniform(18, 26)) * s
                if u + size > w / 2 - 4 * s:
                    break
                _put(
                    objects,
                    img,
                    z.child(u + size / 2, lane_v * lane, heading + rng.uniform(-3, 3)),
                    _large_vehicle if large else _small_vehicle,
                    rng,
                    size,
                )
                u += size + rng.uniform(6, 60) * s

    return w, h, draw


def _zone_courts(painter, count_range, size_range, ground) -> Callable:
    def zone(rng, s) -> _Zone:
        n = int(rng.integers(*count_range))
        length = rng.uniform(*size_range) * s
        sizes = [length * rng.uniform(0.95, 1.05) for _ in range(n)]
        gap = 6 * s
        w = max(sizes) + 2 * gap
        h = sum(x * 0.62 for x in sizes) + (n + 1) * gap

        def draw(img, z, objects):
            _rect(img, z, -w / 2, -h / 2, w / 2, h / 2, _jitter(rng, ground, 8))
            v = -h / 2 + gap
            for x in sizes:
                _put(objects, img, z.child(0, v + x * 0.31), painter, rng, x)
                v += x * 0.62 + gap

        return w, h, draw

    return zone


def _zone_single(painter, size_range, aspect, ground, margin=12.0, axis_aligned=False) -> Callable:
    """A zone holding one object of length `size` and width at most ``aspect * size``."""

    def zone(rng, s) -> _Zone:
        size = rng.uniform(*size_range) * s
        w, h = size + 2 * margin * s, size * aspect + 2 * margin * s

        def draw(img, z, objects):
            if ground is not None:
                _rect(img, z, -w / 2, -h / 2, w / 2, h / 2, _jitter(rng, ground, 8))
            _put(objects, img, z, painter, rng, size, axis_aligned=axis_aligned)

        return w, h, draw

    return zone


def _zone_tank_farm(rng, s) -> _Zone:
    cols, rows = int(rng.integers(2, 6)), int(rng.integers(1, 4))
    diameter = rng.uniform(24, 70) * s
    pitch = diameter * rng.uniform(1.35, 1.6)
    w, h = cols * pitch + 10 * s, rows * pitch + 10 * s

    def draw(img, z, objects):
        _rect(img, z, -w / 2, -h / 2, w / 2, h / 2, _jitter(rng, (150, 170, 175), 10))
        for r in range(rows):
            for c in range(cols):
                if rng.random() < 0.1:
                    continue
                u, v = -w / 2 + 5 * s + pitch * (c + 0.5), -h / 2 + 5 * s + pitch * (r + 0.5)
                _put(
                    objects,
                    img,
                    z.child(u, v, -z.angle),
                    _storage_tank,
                    rng,
                    diameter * rng.uniform(0.93, 1.07),
                    axis_aligned=True,
                )

    return w, h, draw


def _zone_residential(rng, s) -> _Zone:
    cols, rows = int(rng.integers(2, 6)), int(rng.integers(1, 3))
    lot = rng.uniform(55, 75) * s
    w, h = cols * lot, rows * lot * 1.1

    def draw(img, z, objects):
        _rect(img, z, -w / 2, -h / 2, w / 2, h / 2, _jitter(rng, (90, 150, 110), 10))
        for r in range(rows):
            for c in range(cols):
                u, v = -w / 2 + lot * (c + 0.5), -h / 2 + lot * 1.1 * (r + 0.5)
                roof = _jitter(
                    rng, [(60, 70, 150), (110, 110, 115), (50, 90, 130)][rng.integers(3)], 10
                )
                hw, hh = lot * 0.32, lot * 0.22
                _rect(img, z, u - hw, v - lot * 0.42, u + hw, v - lot * 0.42 + 2 * hh, roof)
                _rect(
                    img,
                    z,
                    u - hw,
                    v - lot * 0.42 + hh - 0.8,
                    u + hw,
                    v - lot * 0.42 + hh + 0.8,
                    tuple(int(x * 0.7) for x in roof),
                )
                if rng.random() < 0.55:
                    size = rng.uniform(20, 40) * s
                    size = min(size, lot * 0.6)
                    _put(
                        objects,
                        img,
                        z.child(u, v + lot * 0.22, rng.uniform(-10, 10)),
                        _swimming_pool,
                        rng,
                        size,
                    )

    return w, h, draw


def _zone_canal(rng, s) -> _Zone:
    water = rng.uniform(60, 110) * s
    bw = rng.uniform(18, 30) * s
    span = water + rng.uniform(40, 70) * s
    w, h = span * rng.uniform(2.2, 3.2), span + 20 * s

    def draw(img, z, objects):
        _rect(
            img,
            z,
            -w / 2,
            -water / 2 - 8 * s,
            w / 2,
            water / 2 + 8 * s,
            _jitter(rng, (110, 150, 160), 8),
        )
        _rect(img, z, -w / 2, -water / 2, w / 2, water / 2, _jitter(rng, (95, 80, 45), 8))
        for sign in (-1, 1):  # access roads on both banks
            _rect(
                img,
                z,
                -bw / 2 + 2 * s,
                sign * water / 2,
                bw / 2 - 2 * s,
                sign * h / 2,
                (90, 92, 92),
            )
        _put_geom(objects, img, z.child(0, 0, 90 + rng.uniform(-8, 8)), _bridge, rng, span, bw)
        if rng.random() < 0.6:
            length = min(rng.uniform(40, 80) * s, w * 0.3)
            u = rng.choice([-1, 1]) * rng.uniform(span * 0.6, w / 2 - length * 0.6)
            _put(
                objects,
                img,
                z.child(u, rng.uniform(-water * 0.2, water * 0.2), rng.choice([0.0, 180.0])),
                _ship,
                rng,
                length,
            )

    return w, h, draw


def _zone_port(rng, s) -> _Zone:
    n = int(rng.integers(2, 6))
    pier_len = rng.uniform(70, 150) * s
    pier_w = rng.uniform(14, 22) * s
    pitch = pier_w * 2.2 + rng.uniform(40, 70) * s
    quay = 30 * s
    w, h = n * pitch + 20 * s, quay + pier_len + rng.uniform(30, 60) * s

    def draw(img, z, objects):
        _rect(img, z, -w / 2, -h / 2, w / 2, h / 2, _jitter(rng, (95, 80, 45), 8))  # basin
        _rect(
            img, z, -w / 2, -h / 2, w / 2, -h / 2 + quay, _jitter(rng, (160, 170, 175), 8)
        )  # quay
        for k in range(n):
            u = -w / 2 + 10 * s + pitch * (k + 0.5)
            v = -h / 2 + quay + pier_len / 2 - 3 * s
            _put_geom(
                objects,
                img,
                z.child(u, v, -90 + rng.uniform(-3, 3)),
                _harbor,
                rng,
                pier_len,
                pier_w,
            )
            if rng.random() < 0.7:  # a ship moored beside the pier
                length = min(rng.uniform(40, 1.0 * pier_len / s) * s, pier_len * 0.95)
                du = pier_w * 1.1 + length * 0.13 + 3 * s
                _put(
                    objects,
                    img,
                    z.child(
                        u + rng.choice([-1, 1]) * du,
                        v + rng.uniform(-5, 5) * s,
                        rng.choice([90.0, -90.0]),
                    ),
                    _ship,
                    rng,
                    length,
                )

    return w, h, draw


_ZONES = [
    (_zone_apron, 1.0),
    (_zone_heliport, 0.8),
    (_zone_parking, 0.9),
    (_zone_street, 0.8),
    (_zone_canal, 0.8),
    (_zone_port, 0.8),
    (_zone_courts(_tennis_court, (2, 5), (58, 72), (90, 150, 100)), 1.0),
    (_zone_courts(_basketball_court, (1, 3), (50, 64), (120, 130, 130)), 0.9),
    (_zone_single(_soccer_field, (140, 200), 0.68, (80, 140, 90)), 0.8),
    (_zone_single(_track_field, (220, 300), 0.58, (90, 140, 100)), 0.7),
    (_zone_single(_baseball_diamond, (90, 150), 1.42, (85, 145, 95)), 0.9),
    (_zone_tank_farm, 1.0),
    (_zone_residential, 1.0),
    (_zone_single(_roundabout, (90, 150), 1.0, None, margin=60.0, axis_aligned=True), 0.8),
]

_CLASS = {
    _plane: "plane",
    _baseball_diamond: "baseball-diamond",
    _bridge: "bridge",
    _track_field: "ground-track-field",
    _small_vehicle: "small-vehicle",
    _large_vehicle: "large-vehicle",
    _ship: "ship",
    _tennis_court: "tennis-court",
    _basketball_court: "basketball-court",
    _storage_tank: "storage-tank",
    _soccer_field: "soccer-ball-field",
    _roundabout: "roundabout",
    _harbor: "harbor",
    _swimming_pool: "swimming-pool",
    _helicopter: "helicopter",
}
assert sorted(_CLASS.values()) == sorted(DOTA_V1_0_CLASSES)


# --------------------------------------------------------------------------------------------
# the image


class _Occupancy:
    """Coarse mask of taken ground, to keep zones and free-placed objects apart."""

    def __init__(self, height: int, width: int, cell: int):
        self.cell = cell
        self.mask = np.zeros((height // cell + 1, width // cell + 1), np.uint8)

    def _raster(self, corners: np.ndarray):
        pts = corners / self.cell
        x0, y0 = np.floor(pts.min(0)).astype(int)
        x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, self.mask.shape[1]), min(y1, self.mask.shape[0])
        local = np.zeros((max(y1 - y0, 1), max(x1 - x0, 1)), np.uint8)
        cv2.fillPoly(local, [_fixed(pts - [x0, y0])], 1, cv2.LINE_8, _SHIFT)
        return (slice(y0, y0 + local.shape[0]), slice(x0, x0 + local.shape[1])), local

    def take_if_free(self, corners: np.ndarray) -> bool:
        roi, local = self._raster(corners)
        region = self.mask[roi]
        if np.any(region & local[: region.shape[0], : region.shape[1]]):
            return False
        region |= local[: region.shape[0], : region.shape[1]]
        return True


def _inside(corners: np.ndarray, width: int, height: int, margin: float = 2.0) -> bool:
    return bool(
        corners[:, 0].min() >= margin
        and corners[:, 1].min() >= margin
        and corners[:, 0].max() <= width - margin
        and corners[:, 1].max() <= height - margin
    )


def _background(rng, height: int, width: int) -> np.ndarray:
    palette = np.array(
        [[70, 120, 90], [80, 130, 130], [95, 140, 150], [60, 105, 75], [120, 150, 160]], np.float32
    )
    gh, gw = max(height // 256, 2), max(width // 256, 2)
    field = palette[rng.integers(len(palette), size=(gh, gw))]
    field += rng.normal(0, 8, (gh, gw, 3)).astype(np.float32)
    img = cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = cv2.resize(
        rng.normal(0, 7, (height // 4 + 1, width // 4 + 1)).astype(np.float32),
        (width, height),
        interpolation=cv2.INTER_LINEAR,
    )
    img += grain[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _roads(img, rng, s) -> None:
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(1, 4))):
        f = _Frame(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(-180, 180))
        half = 2 * math.hypot(w, h)
        rw = rng.uniform(16, 26) * s
        _rect(img, f, -half, -rw / 2, half, rw / 2, _jitter(rng, (90, 92, 92), 6))
        for u in np.arange(-half, half, 20 * s):
            _rect(img, f, u, -0.7, u + 9 * s, 0.7, (200, 200, 200))


def _river(img, rng, s, occupancy: _Occupancy, objects: List[AerialObject]) -> None:
    h, w = img.shape[:2]
    width = rng.uniform(120, 240) * s
    axis = _Frame(rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h, rng.uniform(-180, 180))
    half = 2 * math.hypot(w, h)
    bank = 14 * s
    _rect(
        img,
        axis,
        -half,
        -width / 2 - bank,
        half,
        width / 2 + bank,
        _jitter(rng, (110, 150, 160), 8),
    )
    _rect(img, axis, -half, -width / 2, half, width / 2, _jitter(rng, (95, 80, 45), 8))
    occupancy.take_if_free(
        axis.to_image(
            [
                [-half, -width / 2 - bank * 3],
                [half, -width / 2 - bank * 3],
                [half, width / 2 + bank * 3],
                [-half, width / 2 + bank * 3],
            ]
        )
    )
    # positions along the axis that lie inside the image
    us = np.arange(-half, half, 10 * s)
    centers = axis.to_image(np.stack([us, np.zeros_like(us)], 1))
    ok = (
        (centers[:, 0] > width)
        & (centers[:, 0] < w - width)
        & (centers[:, 1] > width)
        & (centers[:, 1] < h - width)
    )
    if not ok.any():
        return
    lo, hi = us[ok].min(), us[ok].max()
    taken = _Occupancy(h, w, 4)

    # bridges span the river, roughly perpendicular to it
    for _ in range(int(rng.integers(1, 4))):
        u = rng.uniform(lo, hi)
        length = width + 2 * bank + rng.uniform(30, 70) * s
        bw = rng.uniform(20, 36) * s
        f = axis.child(u, 0, 90 + rng.uniform(-12, 12))
        corners = xywha_to_poly(f.box(length, bw)).reshape(4, 2)
        if _inside(corners, w, h) and taken.take_if_free(
            xywha_to_poly(f.box(length, bw * 2.5)).reshape(4, 2)
        ):
            _put_geom(objects, img, f, _bridge, rng, length, bw)
    # harbour piers jut from a bank into the water
    for _ in range(int(rng.integers(2, 7))):
        side = rng.choice([-1.0, 1.0])
        length = width * rng.uniform(0.4, 0.6)
        pw = rng.uniform(14, 24) * s
        u = rng.uniform(lo, hi)
        f = axis.child(
            u, side * (width / 2 + bank - length / 2 + 4 * s), side * 90 + rng.uniform(-6, 6)
        )
        corners = xywha_to_poly(f.box(length, pw * 2.2)).reshape(4, 2)
        if _inside(corners, w, h) and taken.take_if_free(corners):
            _put_geom(objects, img, f, _harbor, rng, length, pw)
    # ships sail along it
    for _ in range(int(rng.integers(3, 11))):
        length = rng.uniform(45, 130) * s
        length = min(length, width * 0.9)
        u = rng.uniform(lo, hi)
        v = rng.uniform(-width / 2 + length * 0.2, width / 2 - length * 0.2)
        f = axis.child(u, v, rng.choice([0.0, 180.0]) + rng.uniform(-15, 15))
        corners = xywha_to_poly(f.box(length * 1.1, length * 0.3)).reshape(4, 2)
        if _inside(corners, w, h) and taken.take_if_free(corners):
            _put(objects, img, f, _ship, rng, length)


def _put_geom(objects, img, frame, painter, rng, length, width):
    w, h = painter(img, frame, rng, length, width)
    objects.append(AerialObject(frame.box(w, h), _CLASS[painter], False))


def _haze(img, obj: AerialObject, rng) -> None:
    """Cover an object with semi-transparent haze (it becomes a difficult object)."""
    corners = xywha_to_poly(obj.box).reshape(4, 2)
    h, w = img.shape[:2]
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 3, [w, h])
    roi = img[y0:y1, x0:x1]
    mask = np.zeros(roi.shape[:2], np.float32)
    cv2.fillPoly(mask, [_fixed(corners - [x0, y0])], 1.0, cv2.LINE_AA, _SHIFT)
    mask = cv2.GaussianBlur(mask, (0, 0), 2.0) * rng.uniform(0.55, 0.7)
    haze = np.array(_jitter(rng, (200, 205, 205), 10), np.float32)
    roi[...] = (roi * (1 - mask[..., None]) + haze * mask[..., None]).astype(np.uint8)


def render_aerial_image(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    object_scale: float = 1.0,
) -> Tuple[np.ndarray, List[AerialObject]]:
    """Draw one synthetic aerial image.

    Args:
        rng: the random source (all randomness comes from it).
        height, width: image size in pixels.
        object_scale: multiplies every object and zone size (1.0: objects of 18-300 px).

    Returns:
        the BGR uint8 image ``(height, width, 3)`` and its objects (boxes inside the image).
    """
    s = float(object_scale)
    img = _background(rng, height, width)
    _roads(img, rng, s)
    objects: List[AerialObject] = []
    zones = _Occupancy(height, width, 8)
    if rng.random() < 0.6:
        _river(img, rng, s, zones, objects)
    weights = np.array([wgt for _, wgt in _ZONES])
    n_zones = max(1, int(round(height * width / (520.0 * 520.0 * s * s))))
    for _ in range(n_zones):
        plan = _ZONES[rng.choice(len(_ZONES), p=weights / weights.sum())][0]
        zw, zh, draw = plan(rng, s)
        for _attempt in range(25):
            frame = _Frame(rng.uniform(0, width), rng.uniform(0, height), rng.uniform(-180, 180))
            outer = xywha_to_poly(frame.box(zw + 16 * s, zh + 16 * s)).reshape(4, 2)
            if _inside(outer, width, height) and zones.take_if_free(outer):
                draw(img, frame, objects)
                break
    # trees on free ground (unlabelled clutter)
    n_trees = int(height * width / 9000)
    xs, ys = rng.uniform(0, width, n_trees), rng.uniform(0, height, n_trees)
    free = zones.mask[(ys // zones.cell).astype(int), (xs // zones.cell).astype(int)] == 0
    for x, y, r in zip(xs[free], ys[free], rng.uniform(3, 9, n_trees)[free] * s):
        cv2.circle(
            img, (int(x), int(y)), max(int(r), 1), _jitter(rng, (40, 85, 50), 10), -1, cv2.LINE_AA
        )
    # some objects are hazed and labelled difficult
    difficult = rng.random(len(objects)) < _DIFFICULT_RATE
    out = []
    for obj, diff in zip(objects, difficult):
        if diff:
            _haze(img, obj, rng)
        out.append(AerialObject(obj.box, obj.category, bool(diff)))
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    return img, out


# --------------------------------------------------------------------------------------------
# datasets on disk


def _label_text(objects: Sequence[AerialObject]) -> str:
    lines = ["imagesource:FastTCM-D2-synthetic\n", "gsd:null\n"]
    if objects:
        polys = xywha_to_poly(np.array([o.box for o in objects]))
        for poly, obj in zip(polys, objects):
            lines.append(
                " ".join(f"{v:.2f}" for v in poly) + f" {obj.category} {int(obj.difficult)}\n"
            )
    return "".join(lines)


def _generate_one(args) -> Tuple[str, int]:
    out_dir, index, seed, size_range, object_scale = args
    cv2.setNumThreads(1)
    rng = np.random.default_rng([seed, index])
    height, width = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, size=2))
    img, objects = render_aerial_image(rng, height, width, object_scale=object_scale)
    name = f"A{index:04d}"
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise IOError(f"cannot encode synthetic image {name}")
    with atomic_open(os.path.join(out_dir, "images", name + ".png"), "wb") as f:
        f.write(buf.tobytes())
    with atomic_open(os.path.join(out_dir, "labelTxt", name + ".txt"), "w") as f:
        f.write(_label_text(objects))
    return name, len(objects)


def generate_aerial_dataset(
    out_dir: str,
    num_images: int,
    seed: int,
    image_size_range: Tuple[int, int] = (2048, 4096),
    *,
    object_scale: float = 1.0,
    workers: int = 0,
    progress: bool = False,
) -> List[str]:
    """Write a synthetic DOTA-v1.0 split: ``out_dir/images/A0000.png`` and
    ``out_dir/labelTxt/A0000.txt`` (with ``imagesource:``/``gsd:`` headers), ...

    Image ``i`` depends only on ``(seed, i)``: the same arguments give byte-identical files.

    Args:
        out_dir: output directory (created).
        num_images: number of images.
        seed: dataset seed.
        image_size_range: inclusive range of the height and width (drawn independently).
            Use e.g. ``(512, 768)`` with ``object_scale=0.5`` for fast tests.
        object_scale: see :func:`render_aerial_image`.
        workers: processes (0 or 1: this process).
        progress: show a tqdm bar.

    Returns:
        the image names, in index order.
    """
    lo, hi = (int(v) for v in image_size_range)
    if not 64 <= lo <= hi:
        raise ValueError(f"image_size_range must satisfy 64 <= low <= high, got {image_size_range}")
    if num_images < 0 or object_scale <= 0:
        raise ValueError(
            f"need num_images >= 0 and object_scale > 0, got {num_images}, {object_scale}"
        )
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    os.makedirs(os.path.join(out_dir, "labelTxt"), exist_ok=True)
    jobs = [(out_dir, i, int(seed), (lo, hi), float(object_scale)) for i in range(num_images)]
    if workers > 1 and num_images > 1:
        from multiprocessing import get_context

        with get_context("spawn").Pool(workers) as pool:
            results = pool.imap(_generate_one, jobs)
            results = list(_progress(results, num_images, out_dir, progress))
    else:
        results = list(_progress(map(_generate_one, jobs), num_images, out_dir, progress))
    logger.info(
        f"Generated {num_images} synthetic aerial images ({sum(n for _, n in results)} objects) in {out_dir}"
    )
    return [name for name, _ in results]


def _progress(iterable, total, out_dir, enabled):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=f"synthetic aerial -> {out_dir}", unit="img")


def ensure_aerial_dataset(
    out_dir: str,
    num_images: int,
    seed: int,
    image_size_range: Tuple[int, int] = (2048, 4096),
    *,
    object_scale: float = 1.0,
    workers: int = 0,
) -> str:
    """Generate the dataset into `out_dir` unless it is already there (safe across processes).

    The images are written into a temporary sibling directory that is renamed to `out_dir` at
    the end, so a reader sees a complete dataset or none; a process that loses the race to
    another discards its copy.

    Returns:
        `out_dir`.
    """
    if os.path.isdir(out_dir):
        return out_dir
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", dir=parent)
    try:
        generate_aerial_dataset(
            tmp,
            num_images,
            seed,
            image_size_range,
            object_scale=object_scale,
            workers=workers,
            progress=True,
        )
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if not os.path.isdir(out_dir):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def make_aerial_dataset(
    out_dir: str,
    num_images: int,
    seed: int,
    image_size: Tuple[int, int] = (2048, 4096),
    *,
    num_workers: int = 0,
    **options,
) -> Path:
    """``tools/make_synthetic.py --kind aerial``: :func:`generate_aerial_dataset` with the tool's
    signature.

    ``image_size`` (the tool's ``--size A B``) is the *range* of image sides, ``(min(A, B),
    max(A, B))``; ``options`` may set ``object_scale`` (e.g. ``--set object_scale=0.5``).

    Returns:
        the ``labelTxt`` folder written.
    """
    unknown = set(options) - {"object_scale"}
    if unknown:
        raise TypeError(f"unknown aerial generator options {sorted(unknown)}; known: object_scale")
    low, high = sorted(int(v) for v in image_size)
    generate_aerial_dataset(
        out_dir,
        num_images,
        seed,
        (low, high),
        object_scale=float(options.get("object_scale", 1.0)),
        workers=num_workers,
        progress=True,
    )
    return Path(out_dir) / "labelTxt"
