"""The landscape under the zones: a colour field with grain, straight roads, and a river with
its bridges, harbour piers and ships.

Each function draws into (or returns) a BGR ``uint8`` image ``(H, W, 3)``, drawing all its
randomness from `rng`; `s` is the object scale that multiplies every size in pixels.
"""

import math
from typing import List

import cv2
import numpy as np

from ....utils.geometry import xywha_to_poly
from .objects import AerialObject, put_object, put_object_with_width
from .occupancy import Occupancy, inside_image
from .primitives import Frame, fill_rect, jitter
from .structures import paint_bridge, paint_harbor
from .vehicles import paint_ship

__all__ = ["paint_background", "paint_roads", "paint_river"]


def paint_background(rng, height: int, width: int) -> np.ndarray:
    """The bare ground: a smooth field of a few green-grey colours (cells of about 256 px) with
    fine grain.

    Returns:
        the BGR ``uint8`` image ``(height, width, 3)``.
    """
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


def paint_roads(img, rng, s) -> None:
    """Draw one to three straight roads with dashed centre lines across the whole image."""
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(1, 4))):
        f = Frame(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(-180, 180))
        half = 2 * math.hypot(w, h)
        rw = rng.uniform(16, 26) * s
        fill_rect(img, f, -half, -rw / 2, half, rw / 2, jitter(rng, (90, 92, 92), 6))
        for u in np.arange(-half, half, 20 * s):
            fill_rect(img, f, u, -0.7, u + 9 * s, 0.7, (200, 200, 200))


def paint_river(img, rng, s, occupancy: Occupancy, objects: List[AerialObject]) -> None:
    """Draw a straight river across the image with bridges, harbour piers and ships.

    Args:
        img: BGR ``uint8`` image ``(H, W, 3)``, drawn into.
        rng: the random source.
        s: object scale.
        occupancy: the image's taken ground; the river and its banks are marked taken
            (when still free).
        objects: the image's labels (appended to).
    """
    h, w = img.shape[:2]
    width = rng.uniform(120, 240) * s
    axis = Frame(rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h, rng.uniform(-180, 180))
    half = 2 * math.hypot(w, h)
    bank = 14 * s
    fill_rect(
        img,
        axis,
        -half,
        -width / 2 - bank,
        half,
        width / 2 + bank,
        jitter(rng, (110, 150, 160), 8),
    )
    fill_rect(img, axis, -half, -width / 2, half, width / 2, jitter(rng, (95, 80, 45), 8))
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
    taken = Occupancy(h, w, 4)

    # bridges span the river, roughly perpendicular to it
    for _ in range(int(rng.integers(1, 4))):
        u = rng.uniform(lo, hi)
        length = width + 2 * bank + rng.uniform(30, 70) * s
        bw = rng.uniform(20, 36) * s
        f = axis.child(u, 0, 90 + rng.uniform(-12, 12))
        corners = xywha_to_poly(f.box(length, bw)).reshape(4, 2)
        if inside_image(corners, w, h) and taken.take_if_free(
            xywha_to_poly(f.box(length, bw * 2.5)).reshape(4, 2)
        ):
            put_object_with_width(objects, img, f, paint_bridge, rng, length, bw)
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
        if inside_image(corners, w, h) and taken.take_if_free(corners):
            put_object_with_width(objects, img, f, paint_harbor, rng, length, pw)
    # ships sail along it
    for _ in range(int(rng.integers(3, 11))):
        length = rng.uniform(45, 130) * s
        length = min(length, width * 0.9)
        u = rng.uniform(lo, hi)
        v = rng.uniform(-width / 2 + length * 0.2, width / 2 - length * 0.2)
        f = axis.child(u, v, rng.choice([0.0, 180.0]) + rng.uniform(-15, 15))
        corners = xywha_to_poly(f.box(length * 1.1, length * 0.3)).reshape(4, 2)
        if inside_image(corners, w, h) and taken.take_if_free(corners):
            put_object(objects, img, f, paint_ship, rng, length)
