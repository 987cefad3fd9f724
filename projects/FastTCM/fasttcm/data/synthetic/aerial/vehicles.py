"""Painters of the DOTA-v1.0 classes that move: planes, helicopters, cars, trucks and ships.

A painter ``paint_x(img, f, rng, length)`` draws one object into the BGR ``uint8`` image `img`
``(H, W, 3)`` in place. Its shape is given in the local frame `f` (see
:class:`~.primitives.Frame`), centred on the object, ``u`` along its length (heading ``+u``);
`length` is in image pixels. All randomness (palette, proportions) comes from `rng`. It returns
``(length, width)``: the size of the object's labelled box along ``u`` and ``v``.
"""

from typing import Tuple

import numpy as np

from .primitives import Frame, fill_ellipse, fill_poly, fill_rect, jitter, outline, rounded_rect_pts

__all__ = [
    "paint_plane",
    "paint_helicopter",
    "paint_small_vehicle",
    "paint_large_vehicle",
    "paint_ship",
]


def paint_plane(img, f: Frame, rng, length: float) -> Tuple[float, float]:
    """A plane seen from above (swept wings, tail, engines, cockpit) with its shadow;
    its span is drawn from `rng`."""
    span = length * rng.uniform(0.85, 1.05)
    body = jitter(rng, (235, 235, 232), 10)
    shade = tuple(int(c * 0.72) for c in body)
    fill_poly(img, f.child(3, 3), _wing_pts(length, span), (70, 75, 78))  # shadow
    fill_poly(img, f, _wing_pts(length, span), tuple(int(c * 0.93) for c in body))
    outline(img, f, _wing_pts(length, span), shade, 1)
    fill_ellipse(img, f, 0, 0, length / 2, length * 0.065, body)
    fill_poly(
        img,
        f,
        [[length * 0.47, 0], [length * 0.38, -length * 0.05], [length * 0.38, length * 0.05]],
        body,
    )
    for side in (-1, 1):  # engines
        fill_ellipse(
            img, f, length * 0.06, side * span * 0.2, length * 0.07, length * 0.03, (90, 90, 95)
        )
    fill_ellipse(img, f, length * 0.36, 0, length * 0.05, length * 0.03, (60, 50, 40))  # cockpit
    return length, span


def _wing_pts(length, span) -> np.ndarray:
    """Outline ``(14, 2)`` of the wings and tailplane of a plane `length` long and `span`
    wide, in its local frame."""
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


def paint_helicopter(img, f: Frame, rng, length: float) -> Tuple[float, float]:
    """A helicopter: body, tail boom and tail rotor, canopy, and a crossed main rotor
    at a random angle."""
    body = jitter(rng, (60, 80, 70), 12)
    span = length * rng.uniform(0.75, 0.9)
    fill_ellipse(img, f.child(2, 2), length * 0.15, 0, length * 0.23, length * 0.13, (50, 55, 55))
    fill_rect(img, f, -length / 2, -length * 0.035, 0, length * 0.035, body)  # tail boom
    fill_rect(img, f, -length / 2, -length * 0.1, -length * 0.44, length * 0.1, body)  # tail rotor
    fill_ellipse(img, f, length * 0.17, 0, length * 0.24, length * 0.13, body)
    fill_ellipse(img, f, length * 0.3, 0, length * 0.09, length * 0.08, (150, 130, 110))  # canopy
    rotor = f.child(length * 0.15, 0, rng.uniform(0, 90))
    for a in (0, 90):
        fill_rect(img, rotor.child(0, 0, a), -span / 2, -1.2, span / 2, 1.2, (35, 35, 35))
    return length, span


def paint_small_vehicle(img, f: Frame, rng, length: float) -> Tuple[float, float]:
    """A car of a random colour: rounded body, shadow, windscreen and rear window."""
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
    color = jitter(rng, palette[rng.integers(len(palette))], 15)
    fill_poly(img, f.child(1.5, 1.5), rounded_rect_pts(length, width), (45, 50, 50))
    fill_poly(img, f, rounded_rect_pts(length, width), color)
    glass = (50, 45, 40) if sum(color) > 200 else (120, 120, 115)
    fill_rect(img, f, length * 0.12, -width * 0.38, length * 0.3, width * 0.38, glass)  # windscreen
    fill_rect(
        img, f, -length * 0.38, -width * 0.36, -length * 0.26, width * 0.36, glass
    )  # rear window
    return length, width


def paint_large_vehicle(img, f: Frame, rng, length: float) -> Tuple[float, float]:
    """A truck: trailer with roof ribs and a cab at the ``+u`` end, and its shadow."""
    width = length * rng.uniform(0.24, 0.3)
    trailer = jitter(
        rng, [(225, 225, 225), (40, 90, 170), (170, 170, 170), (60, 60, 140)][rng.integers(4)], 12
    )
    cab = jitter(rng, [(30, 30, 160), (200, 200, 200), (160, 60, 20)][rng.integers(3)], 12)
    fill_rect(img, f.child(2, 2), -length / 2, -width / 2, length / 2, width / 2, (45, 50, 50))
    fill_rect(img, f, -length / 2, -width / 2, length * 0.28, width / 2, trailer)
    for k in range(1, 4):  # roof ribs
        u = -length / 2 + k * length * 0.19
        fill_rect(
            img, f, u - 0.6, -width / 2, u + 0.6, width / 2, tuple(int(c * 0.85) for c in trailer)
        )
    fill_rect(img, f, length * 0.32, -width * 0.45, length / 2, width * 0.45, cab)
    fill_rect(img, f, length * 0.44, -width * 0.38, length * 0.48, width * 0.38, (40, 40, 40))
    return length, width


def paint_ship(img, f: Frame, rng, length: float) -> Tuple[float, float]:
    """A ship with a pointed bow at ``+u``: wake, hull, deck, bridge house and cargo
    hatches."""
    width = length * rng.uniform(0.18, 0.26)
    hull = jitter(
        rng, [(235, 235, 235), (70, 70, 170), (160, 160, 160), (40, 40, 40)][rng.integers(4)], 10
    )
    deck = jitter(rng, (120, 150, 170), 20)
    pts = np.array(
        [
            [length / 2, 0],
            [length * 0.3, -width / 2],
            [-length / 2, -width / 2],
            [-length / 2, width / 2],
            [length * 0.3, width / 2],
        ]
    )
    fill_poly(img, f.child(-length * 0.08, 0), pts * [1.05, 0.9], (120, 110, 95))  # wake
    fill_poly(img, f, pts, hull)
    fill_poly(img, f, pts * [0.85, 0.7], deck)
    fill_rect(img, f, -length * 0.42, -width * 0.32, -length * 0.22, width * 0.32, (245, 245, 245))
    for k in range(int(rng.integers(1, 4))):  # cargo hatches
        u = -length * 0.12 + k * length * 0.14
        fill_rect(
            img,
            f,
            u,
            -width * 0.25,
            u + length * 0.1,
            width * 0.25,
            jitter(rng, (60, 90, 140), 20),
        )
    return length, width
