"""Zones: the typical arrangements of one or two DOTA-v1.0 classes an aerial image is made of.

A zone planner ``zone_x(rng, s)`` draws the zone's layout from `rng` (object counts and sizes,
multiplied by the object scale `s`) and returns a :data:`ZonePlan` ``(w, h, draw)``: the size of
the zone's rectangle in image pixels and ``draw(img, z, objects)``, which paints the zone into
the BGR ``uint8`` image `img` ``(H, W, 3)`` in the frame `z` centred on the rectangle (``u``
along `w`) and appends the labels of its objects to `objects`. ``draw`` keeps drawing from the
same `rng`, so a zone is planned and then drawn with no other draws in between or after.
"""

from typing import Callable, List, Tuple

import numpy as np

from .objects import AerialObject, put_object, put_object_with_width
from .primitives import Frame, ellipse_pts, fill_ellipse, fill_rect, jitter, outline
from .structures import (
    paint_baseball_diamond,
    paint_basketball_court,
    paint_bridge,
    paint_harbor,
    paint_roundabout,
    paint_soccer_field,
    paint_storage_tank,
    paint_swimming_pool,
    paint_tennis_court,
    paint_track_field,
)
from .vehicles import (
    paint_helicopter,
    paint_large_vehicle,
    paint_plane,
    paint_ship,
    paint_small_vehicle,
)

__all__ = ["ZonePlan", "ZONES"]

ZonePlan = Tuple[float, float, Callable[[np.ndarray, Frame, List[AerialObject]], None]]
"""``(w, h, draw)``: a planned zone's size in image pixels and its drawing function."""


def zone_apron(rng, s) -> ZonePlan:
    """An airport apron: one or two rows of parked planes, all facing one way."""
    n, rows = int(rng.integers(2, 6)), int(rng.integers(1, 3))
    length = rng.uniform(50, 90) * s
    pitch = length * 1.25
    w, h = n * pitch + 20 * s, rows * length * 1.3 + 30 * s

    def draw(img, z, objects):
        fill_rect(img, z, -w / 2, -h / 2, w / 2, h / 2, jitter(rng, (160, 165, 165), 10))
        outline(
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
                put_object(
                    objects,
                    img,
                    z.child(u, v, heading + rng.uniform(-4, 4)),
                    paint_plane,
                    rng,
                    length * rng.uniform(0.92, 1.08),
                )

    return w, h, draw


def zone_heliport(rng, s) -> ZonePlan:
    """A row of one to three helipads with "H" markings, most holding a helicopter."""
    n = int(rng.integers(1, 4))
    length = rng.uniform(34, 54) * s
    pad = length * 1.3
    w, h = n * pad * 1.15 + 10 * s, pad * 1.3

    def draw(img, z, objects):
        fill_rect(img, z, -w / 2, -h / 2, w / 2, h / 2, jitter(rng, (140, 145, 140), 8))
        for k in range(n):
            u = -w / 2 + 5 * s + pad * 1.15 * (k + 0.5)
            fill_ellipse(img, z, u, 0, pad / 2, pad / 2, (90, 95, 95))
            outline(img, z, ellipse_pts(u, 0, pad * 0.45, pad * 0.45), (230, 230, 230), 2)
            for du in (-pad * 0.15, pad * 0.15):  # the "H"
                fill_rect(
                    img, z, u + du - 1.5, -pad * 0.2, u + du + 1.5, pad * 0.2, (230, 230, 230)
                )
            fill_rect(img, z, u - pad * 0.15, -1.5, u + pad * 0.15, 1.5, (230, 230, 230))
            if rng.random() < 0.85:
                put_object(
                    objects,
                    img,
                    z.child(u, 0, rng.uniform(-180, 180)),
                    paint_helicopter,
                    rng,
                    length,
                )

    return w, h, draw


def zone_parking(rng, s) -> ZonePlan:
    """A parking lot: rows of stalls with cars, often a row of trucks at one end."""
    cols, rows = int(rng.integers(4, 12)), int(rng.integers(2, 5))
    length = rng.uniform(18, 26) * s
    stall_w, stall_l = length * 0.75, length * 1.3
    trucks = rng.random() < 0.6
    truck_len = rng.uniform(45, 65) * s
    w = cols * stall_w + 16 * s
    h = rows * stall_l + (truck_len * 0.45 + 10 * s if trucks else 0) + 16 * s

    def draw(img, z, objects):
        fill_rect(img, z, -w / 2, -h / 2, w / 2, h / 2, jitter(rng, (105, 105, 105), 8))
        for r in range(rows):
            v = -h / 2 + 8 * s + stall_l * (r + 0.5)
            for c in range(cols + 1):
                u = -w / 2 + 8 * s + c * stall_w
                fill_rect(
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
                put_object(
                    objects,
                    img,
                    z.child(u, v, flip + rng.uniform(-5, 5)),
                    paint_small_vehicle,
                    rng,
                    length * rng.uniform(0.9, 1.1),
                )
        if trucks:
            v = h / 2 - 8 * s - truck_len * 0.225
            n = int((w - 10 * s) // (truck_len * 1.15))
            for k in range(n):
                u = -w / 2 + 5 * s + truck_len * 1.15 * (k + 0.5)
                put_object(
                    objects,
                    img,
                    z.child(u, v, rng.choice([0.0, 180.0]) + rng.uniform(-3, 3)),
                    paint_large_vehicle,
                    rng,
                    truck_len * rng.uniform(0.9, 1.1),
                )

    return w, h, draw


def zone_street(rng, s) -> ZonePlan:
    """A four-lane street with cars and trucks driving in both directions."""
    length = rng.uniform(350, 700) * s
    lane = 16 * s
    w, h = length, 4 * lane + 6 * s

    def draw(img, z, objects):
        fill_rect(img, z, -w / 2, -h / 2, w / 2, h / 2, jitter(rng, (80, 80, 80), 6))
        for u in np.arange(-w / 2, w / 2 - 8 * s, 16 * s):
            fill_rect(img, z, u, -0.8, u + 8 * s, 0.8, (230, 230, 230))
        for lane_v, heading in ((-1.5, 180.0), (-0.5, 180.0), (0.5, 0.0), (1.5, 0.0)):
            u = -w / 2 + rng.uniform(5, 40) * s
            while True:
                large = rng.random() < 0.2
                size = (rng.uniform(45, 65) if large else rng.uniform(18, 26)) * s
                if u + size > w / 2 - 4 * s:
                    break
                put_object(
                    objects,
                    img,
                    z.child(u + size / 2, lane_v * lane, heading + rng.uniform(-3, 3)),
                    paint_large_vehicle if large else paint_small_vehicle,
                    rng,
                    size,
                )
                u += size + rng.uniform(6, 60) * s

    return w, h, draw


def zone_courts(painter, count_range, size_range, ground) -> Callable:
    """A planner of a column of courts drawn by `painter` on ground of colour `ground`; their
    count is drawn from the half-open `count_range`, their length from `size_range` (pixels,
    times the object scale)."""

    def zone(rng, s) -> ZonePlan:
        n = int(rng.integers(*count_range))
        length = rng.uniform(*size_range) * s
        sizes = [length * rng.uniform(0.95, 1.05) for _ in range(n)]
        gap = 6 * s
        w = max(sizes) + 2 * gap
        h = sum(x * 0.62 for x in sizes) + (n + 1) * gap

        def draw(img, z, objects):
            fill_rect(img, z, -w / 2, -h / 2, w / 2, h / 2, jitter(rng, ground, 8))
            v = -h / 2 + gap
            for x in sizes:
                put_object(objects, img, z.child(0, v + x * 0.31), painter, rng, x)
                v += x * 0.62 + gap

        return w, h, draw

    return zone


def zone_single(painter, size_range, aspect, ground, margin=12.0, axis_aligned=False) -> Callable:
    """A planner of a zone holding one object of length `size` and width at most
    ``aspect * size``.

    `size` is drawn from `size_range` (pixels, times the object scale); `margin` pixels (times
    the object scale) of ground of colour `ground` surround it (no ground drawn when `ground`
    is None). `axis_aligned` labels the object with angle 0 (round objects).
    """

    def zone(rng, s) -> ZonePlan:
        size = rng.uniform(*size_range) * s
        w, h = size + 2 * margin * s, size * aspect + 2 * margin * s

        def draw(img, z, objects):
            if ground is not None:
                fill_rect(img, z, -w / 2, -h / 2, w / 2, h / 2, jitter(rng, ground, 8))
            put_object(objects, img, z, painter, rng, size, axis_aligned=axis_aligned)

        return w, h, draw

    return zone


def zone_tank_farm(rng, s) -> ZonePlan:
    """A tank farm: a grid of storage tanks of about one size."""
    cols, rows = int(rng.integers(2, 6)), int(rng.integers(1, 4))
    diameter = rng.uniform(24, 70) * s
    pitch = diameter * rng.uniform(1.35, 1.6)
    w, h = cols * pitch + 10 * s, rows * pitch + 10 * s

    def draw(img, z, objects):
        fill_rect(img, z, -w / 2, -h / 2, w / 2, h / 2, jitter(rng, (150, 170, 175), 10))
        for r in range(rows):
            for c in range(cols):
                if rng.random() < 0.1:
                    continue
                u, v = -w / 2 + 5 * s + pitch * (c + 0.5), -h / 2 + 5 * s + pitch * (r + 0.5)
                put_object(
                    objects,
                    img,
                    z.child(u, v, -z.angle),
                    paint_storage_tank,
                    rng,
                    diameter * rng.uniform(0.93, 1.07),
                    axis_aligned=True,
                )

    return w, h, draw


def zone_residential(rng, s) -> ZonePlan:
    """A grid of house lots, about half with a swimming pool."""
    cols, rows = int(rng.integers(2, 6)), int(rng.integers(1, 3))
    lot = rng.uniform(55, 75) * s
    w, h = cols * lot, rows * lot * 1.1

    def draw(img, z, objects):
        fill_rect(img, z, -w / 2, -h / 2, w / 2, h / 2, jitter(rng, (90, 150, 110), 10))
        for r in range(rows):
            for c in range(cols):
                u, v = -w / 2 + lot * (c + 0.5), -h / 2 + lot * 1.1 * (r + 0.5)
                roof = jitter(
                    rng, [(60, 70, 150), (110, 110, 115), (50, 90, 130)][rng.integers(3)], 10
                )
                hw, hh = lot * 0.32, lot * 0.22
                fill_rect(img, z, u - hw, v - lot * 0.42, u + hw, v - lot * 0.42 + 2 * hh, roof)
                fill_rect(
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
                    put_object(
                        objects,
                        img,
                        z.child(u, v + lot * 0.22, rng.uniform(-10, 10)),
                        paint_swimming_pool,
                        rng,
                        size,
                    )

    return w, h, draw


def zone_canal(rng, s) -> ZonePlan:
    """A canal crossed by one bridge, with access roads on both banks and sometimes a
    ship."""
    water = rng.uniform(60, 110) * s
    bw = rng.uniform(18, 30) * s
    span = water + rng.uniform(40, 70) * s
    w, h = span * rng.uniform(2.2, 3.2), span + 20 * s

    def draw(img, z, objects):
        fill_rect(
            img,
            z,
            -w / 2,
            -water / 2 - 8 * s,
            w / 2,
            water / 2 + 8 * s,
            jitter(rng, (110, 150, 160), 8),
        )
        fill_rect(img, z, -w / 2, -water / 2, w / 2, water / 2, jitter(rng, (95, 80, 45), 8))
        for sign in (-1, 1):  # access roads on both banks
            fill_rect(
                img,
                z,
                -bw / 2 + 2 * s,
                sign * water / 2,
                bw / 2 - 2 * s,
                sign * h / 2,
                (90, 92, 92),
            )
        put_object_with_width(
            objects, img, z.child(0, 0, 90 + rng.uniform(-8, 8)), paint_bridge, rng, span, bw
        )
        if rng.random() < 0.6:
            length = min(rng.uniform(40, 80) * s, w * 0.3)
            u = rng.choice([-1, 1]) * rng.uniform(span * 0.6, w / 2 - length * 0.6)
            put_object(
                objects,
                img,
                z.child(u, rng.uniform(-water * 0.2, water * 0.2), rng.choice([0.0, 180.0])),
                paint_ship,
                rng,
                length,
            )

    return w, h, draw


def zone_port(rng, s) -> ZonePlan:
    """A port basin: a quay with piers jutting from it, most with a ship moored beside."""
    n = int(rng.integers(2, 6))
    pier_len = rng.uniform(70, 150) * s
    pier_w = rng.uniform(14, 22) * s
    pitch = pier_w * 2.2 + rng.uniform(40, 70) * s
    quay = 30 * s
    w, h = n * pitch + 20 * s, quay + pier_len + rng.uniform(30, 60) * s

    def draw(img, z, objects):
        fill_rect(img, z, -w / 2, -h / 2, w / 2, h / 2, jitter(rng, (95, 80, 45), 8))  # basin
        fill_rect(
            img, z, -w / 2, -h / 2, w / 2, -h / 2 + quay, jitter(rng, (160, 170, 175), 8)
        )  # quay
        for k in range(n):
            u = -w / 2 + 10 * s + pitch * (k + 0.5)
            v = -h / 2 + quay + pier_len / 2 - 3 * s
            put_object_with_width(
                objects,
                img,
                z.child(u, v, -90 + rng.uniform(-3, 3)),
                paint_harbor,
                rng,
                pier_len,
                pier_w,
            )
            if rng.random() < 0.7:  # a ship moored beside the pier
                length = min(rng.uniform(40, 1.0 * pier_len / s) * s, pier_len * 0.95)
                du = pier_w * 1.1 + length * 0.13 + 3 * s
                put_object(
                    objects,
                    img,
                    z.child(
                        u + rng.choice([-1, 1]) * du,
                        v + rng.uniform(-5, 5) * s,
                        rng.choice([90.0, -90.0]),
                    ),
                    paint_ship,
                    rng,
                    length,
                )

    return w, h, draw


ZONES = [
    (zone_apron, 1.0),
    (zone_heliport, 0.8),
    (zone_parking, 0.9),
    (zone_street, 0.8),
    (zone_canal, 0.8),
    (zone_port, 0.8),
    (zone_courts(paint_tennis_court, (2, 5), (58, 72), (90, 150, 100)), 1.0),
    (zone_courts(paint_basketball_court, (1, 3), (50, 64), (120, 130, 130)), 0.9),
    (zone_single(paint_soccer_field, (140, 200), 0.68, (80, 140, 90)), 0.8),
    (zone_single(paint_track_field, (220, 300), 0.58, (90, 140, 100)), 0.7),
    (zone_single(paint_baseball_diamond, (90, 150), 1.42, (85, 145, 95)), 0.9),
    (zone_tank_farm, 1.0),
    (zone_residential, 1.0),
    (zone_single(paint_roundabout, (90, 150), 1.0, None, margin=60.0, axis_aligned=True), 0.8),
]
"""``(planner, relative frequency)`` of every zone kind an image may hold."""
