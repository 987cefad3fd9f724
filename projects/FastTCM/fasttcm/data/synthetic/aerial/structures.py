"""Painters of the DOTA-v1.0 classes fixed to the ground: bridges, harbours, sports grounds,
storage tanks, roundabouts and swimming pools.

A painter ``paint_x(img, f, rng, length)`` draws one object into the BGR ``uint8`` image `img`
``(H, W, 3)`` in place. Its shape is given in the local frame `f` (see
:class:`~.primitives.Frame`), centred on the object, ``u`` along its length; sizes are in image
pixels. All randomness (palette, proportions) comes from `rng`. It returns ``(length, width)``:
the size of the object's labelled box along ``u`` and ``v``. Bridges and harbours also take
their `width`.
"""

from typing import Tuple

import numpy as np

from .primitives import (
    Frame,
    ellipse_pts,
    fill_ellipse,
    fill_poly,
    fill_rect,
    jitter,
    outline,
    rounded_rect_pts,
    stadium_pts,
)

__all__ = [
    "paint_bridge",
    "paint_harbor",
    "paint_tennis_court",
    "paint_basketball_court",
    "paint_soccer_field",
    "paint_track_field",
    "paint_baseball_diamond",
    "paint_storage_tank",
    "paint_roundabout",
    "paint_swimming_pool",
]


def paint_bridge(img, f: Frame, rng, length: float, width: float) -> Tuple[float, float]:
    """A bridge deck `length` long and `width` wide: shadow, parapets, dashed centre
    line and joints."""
    fill_rect(
        img, f.child(0, width * 0.35), -length / 2, -width / 2, length / 2, width / 2, (60, 55, 40)
    )
    fill_rect(img, f, -length / 2, -width / 2, length / 2, width / 2, jitter(rng, (95, 95, 95), 8))
    for side in (-1, 1):  # parapets
        fill_rect(
            img,
            f,
            -length / 2,
            side * width / 2 - 1.5,
            length / 2,
            side * width / 2 + 1.5,
            (200, 200, 200),
        )
    for u in np.arange(-length / 2 + 6, length / 2 - 6, 14):  # centre line dashes
        fill_rect(img, f, u, -0.8, u + 7, 0.8, (60, 210, 230))
    for u in np.linspace(-length / 2 + 4, length / 2 - 4, 5):  # piers/joints
        fill_rect(img, f, u - 1, -width / 2, u + 1, width / 2, (120, 120, 120))
    return length, width


def paint_harbor(img, f: Frame, rng, length: float, width: float) -> Tuple[float, float]:
    """A pier `length` long and `width` wide with a wider pier head at ``+u``, bollards
    and a shadow; its box is as wide as the head."""
    concrete = jitter(rng, (175, 190, 200), 10)
    fill_rect(img, f.child(2, 3), -length / 2, -width / 2, length / 2, width / 2, (70, 60, 45))
    fill_rect(img, f, -length / 2, -width / 2, length / 2, width / 2, concrete)
    head = width * rng.uniform(1.6, 2.2)
    fill_rect(img, f, length / 2 - width * 0.9, -head / 2, length / 2, head / 2, concrete)
    for u in np.arange(-length / 2 + 5, length / 2 - 5, 9):  # bollards
        for side in (-1, 1):
            fill_ellipse(img, f, u, side * (width / 2 - 2), 1.3, 1.3, (40, 40, 40))
    outline(
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


def paint_tennis_court(img, f: Frame, rng, length: float) -> Tuple[float, float]:
    """A tennis court (half as wide as long) with its surround, lines and net."""
    width = length * 0.5
    outer, inner = [
        ((60, 120, 60), (70, 160, 70)),
        ((140, 90, 40), (170, 120, 40)),
        ((50, 80, 170), (60, 110, 190)),
    ][rng.integers(3)]
    fill_rect(img, f, -length / 2, -width / 2, length / 2, width / 2, outer)
    lu, lv = length * 0.36, width * 0.3
    fill_rect(img, f, -lu, -lv, lu, lv, inner)
    white = (245, 245, 245)
    outline(img, f, [[-lu, -lv], [lu, -lv], [lu, lv], [-lu, lv]], white, 1)
    fill_rect(img, f, -0.7, -lv - 2, 0.7, lv + 2, (30, 30, 30))  # net
    for u in (-lu * 0.55, lu * 0.55):
        outline(img, f, [[u, -lv * 0.75], [u, lv * 0.75]], white, 1, closed=False)
    outline(img, f, [[-lu * 0.55, 0], [lu * 0.55, 0]], white, 1, closed=False)
    for v in (-lv * 0.75, lv * 0.75):
        outline(img, f, [[-lu, v], [lu, v]], white, 1, closed=False)
    return length, width


def paint_basketball_court(img, f: Frame, rng, length: float) -> Tuple[float, float]:
    """A basketball court with its outline, centre line and circle, keys and
    three-point arcs."""
    width = length * 0.56
    floor = jitter(rng, [(60, 120, 190), (150, 90, 50), (80, 140, 80)][rng.integers(3)], 10)
    fill_rect(img, f, -length / 2, -width / 2, length / 2, width / 2, floor)
    white = (245, 245, 245)
    lu, lv = length * 0.45, width * 0.42
    outline(img, f, [[-lu, -lv], [lu, -lv], [lu, lv], [-lu, lv]], white, 1)
    outline(img, f, [[0, -lv], [0, lv]], white, 1, closed=False)
    outline(img, f, ellipse_pts(0, 0, width * 0.14, width * 0.14), white, 1)
    for side in (-1, 1):
        key = side * lu
        fill_rect(
            img,
            f,
            min(key, key - side * length * 0.17),
            -width * 0.1,
            max(key, key - side * length * 0.17),
            width * 0.1,
            (40, 60, 200) if floor[2] < 150 else (60, 60, 60),
        )
        outline(
            img,
            f,
            (
                ellipse_pts(key, 0, length * 0.23, lv * 0.85, 90, 270)
                if side > 0
                else ellipse_pts(key, 0, length * 0.23, lv * 0.85, -90, 90)
            ),
            white,
            1,
            closed=False,
        )
    return length, width


def paint_soccer_field(img, f: Frame, rng, length: float) -> Tuple[float, float]:
    """A soccer pitch with mowing stripes, outline, centre line and circle, and
    penalty boxes and goals at both ends."""
    width = length * rng.uniform(0.6, 0.68)
    grass = jitter(rng, (50, 140, 60), 8)
    light = tuple(min(c + 22, 255) for c in grass)
    n = 10
    for k in range(n):  # mowing stripes
        u0 = -length / 2 + k * length / n
        fill_rect(img, f, u0, -width / 2, u0 + length / n, width / 2, grass if k % 2 else light)
    white = (240, 240, 240)
    lu, lv = length * 0.46, width * 0.44
    outline(img, f, [[-lu, -lv], [lu, -lv], [lu, lv], [-lu, lv]], white, 2)
    outline(img, f, [[0, -lv], [0, lv]], white, 1, closed=False)
    outline(img, f, ellipse_pts(0, 0, width * 0.15, width * 0.15), white, 1)
    for side in (-1, 1):
        box_u = side * lu
        box_in = side * (lu - length * 0.16)
        outline(
            img,
            f,
            [[box_u, -lv * 0.55], [box_in, -lv * 0.55], [box_in, lv * 0.55], [box_u, lv * 0.55]],
            white,
            1,
            closed=False,
        )
        fill_rect(
            img,
            f,
            min(box_u, box_u + side * 3),
            -width * 0.06,
            max(box_u, box_u + side * 3),
            width * 0.06,
            (230, 230, 230),
        )
    return length, width


def paint_track_field(img, f: Frame, rng, length: float) -> Tuple[float, float]:
    """A running track: a tartan stadium ring with lane lines around a grass infield."""
    width = length * rng.uniform(0.5, 0.58)
    track = jitter(rng, (60, 70, 170), 12)  # red-brown tartan
    fill_poly(img, f, stadium_pts(length, width), track)
    lanes = width * 0.14
    for k in range(1, 4):  # lane lines
        outline(
            img,
            f,
            stadium_pts(length - 2 * lanes * k / 4, width - 2 * lanes * k / 4),
            (235, 235, 235),
            1,
        )
    fill_poly(
        img, f, stadium_pts(length - 2 * lanes, width - 2 * lanes), jitter(rng, (60, 150, 70), 8)
    )
    inner_l = (length - 2 * lanes - width + 2 * lanes) * 0.9
    outline(
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


def paint_baseball_diamond(img, f: Frame, rng, size: float) -> Tuple[float, float]:
    """A fan of radius `size` opening towards +u; its box is size x 1.41 size."""
    apex = -size / 2
    fan = np.concatenate([[[apex, 0.0]], ellipse_pts(apex, 0, size, size, -45, 45, 32)])
    fill_poly(img, f, fan, jitter(rng, (60, 150, 70), 10))
    dirt = jitter(rng, (90, 140, 190), 10)
    infield = np.concatenate(
        [[[apex, 0.0]], ellipse_pts(apex, 0, size * 0.62, size * 0.62, -45, 45, 24)]
    )
    fill_poly(img, f, infield, dirt)
    base = size * 0.33
    diamond = np.array(
        [
            [apex, 0],
            [apex + base * 0.707, -base * 0.707],
            [apex + base * 1.414, 0],
            [apex + base * 0.707, base * 0.707],
        ]
    )
    fill_poly(img, f, diamond * [1, 0.8] + [apex * 0.2, 0], jitter(rng, (60, 150, 70), 6))
    for end in (
        ellipse_pts(apex, 0, size, size, -45, -45, 1),
        ellipse_pts(apex, 0, size, size, 45, 45, 1),
    ):
        outline(img, f, [[apex, 0.0], end[0]], (245, 245, 245), 1, closed=False)
    fill_ellipse(img, f, apex + base * 0.72, 0, size * 0.04, size * 0.04, dirt)  # mound
    return size, size * 1.414


def paint_storage_tank(img, f: Frame, rng, diameter: float) -> Tuple[float, float]:
    """A round storage tank of `diameter`: shadow, rim, roof with its ring and a
    highlight."""
    r = diameter / 2
    fill_ellipse(img, f.child(r * 0.18, r * 0.18), 0, 0, r, r, (70, 75, 75))  # shadow
    shell = jitter(rng, (225, 228, 228), 12)
    fill_ellipse(img, f, 0, 0, r, r, tuple(int(c * 0.8) for c in shell))
    fill_ellipse(img, f, 0, 0, r * 0.88, r * 0.88, shell)
    outline(img, f, ellipse_pts(0, 0, r * 0.55, r * 0.55), tuple(int(c * 0.75) for c in shell), 1)
    fill_ellipse(
        img,
        f,
        -r * 0.25,
        -r * 0.25,
        r * 0.18,
        r * 0.18,
        tuple(min(int(c * 1.05), 255) for c in shell),
    )
    return diameter, diameter


def paint_roundabout(img, f: Frame, rng, diameter: float) -> Tuple[float, float]:
    """A roundabout of `diameter`: road arms (outside its box), asphalt ring, kerb
    and green island."""
    r = diameter / 2
    asphalt = jitter(rng, (85, 85, 85), 8)
    for k in range(int(rng.integers(3, 5))):  # arms leaving the box (not part of the object)
        arm = f.child(0, 0, k * 90 + rng.uniform(-15, 15))
        fill_rect(img, arm, r * 0.8, -r * 0.22, r * 1.9, r * 0.22, asphalt)
    fill_ellipse(img, f, 0, 0, r, r, asphalt)
    fill_ellipse(img, f, 0, 0, r * 0.62, r * 0.62, (200, 200, 200))
    fill_ellipse(img, f, 0, 0, r * 0.57, r * 0.57, jitter(rng, (55, 140, 65), 10))
    outline(img, f, ellipse_pts(0, 0, r * 0.8, r * 0.8), (230, 230, 230), 1)
    if rng.random() < 0.6:
        fill_ellipse(img, f, 0, 0, r * 0.25, r * 0.25, (35, 90, 40))
    return diameter, diameter


def paint_swimming_pool(img, f: Frame, rng, length: float) -> Tuple[float, float]:
    """A swimming pool: rounded deck, water and a lane rope."""
    width = length * rng.uniform(0.45, 0.6)
    fill_poly(img, f, rounded_rect_pts(length, width), (215, 215, 210))  # deck
    fill_poly(
        img, f, rounded_rect_pts(length * 0.84, width * 0.72), jitter(rng, (225, 190, 60), 15)
    )
    fill_rect(img, f, -length * 0.3, -width * 0.05, length * 0.3, width * 0.05, (240, 215, 120))
    return length, width
