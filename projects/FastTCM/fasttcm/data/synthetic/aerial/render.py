"""Rendering one synthetic aerial image: terrain, zones placed on free ground, trees, haze over
the difficult objects, and a slight blur.
"""

from typing import List, Tuple

import cv2
import numpy as np

from ....utils.geometry import xywha_to_poly
from .objects import AerialObject
from .occupancy import Occupancy, inside_image
from .primitives import SUBPIXEL_BITS, Frame, jitter, to_fixed_point
from .terrain import paint_background, paint_river, paint_roads
from .zones import ZONES

__all__ = ["render_aerial_image"]

_DIFFICULT_RATE = 0.07
"""Share of the objects covered by haze and labelled difficult."""


def _haze(img: np.ndarray, obj: AerialObject, rng: np.random.Generator) -> None:
    """Cover an object with semi-transparent haze (it becomes a difficult object)."""
    corners = xywha_to_poly(obj.box).reshape(4, 2)
    h, w = img.shape[:2]
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 3, [w, h])
    roi = img[y0:y1, x0:x1]
    mask = np.zeros(roi.shape[:2], np.float32)
    cv2.fillPoly(mask, [to_fixed_point(corners - [x0, y0])], 1.0, cv2.LINE_AA, SUBPIXEL_BITS)
    mask = cv2.GaussianBlur(mask, (0, 0), 2.0) * rng.uniform(0.55, 0.7)
    haze = np.array(jitter(rng, (200, 205, 205), 10), np.float32)
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
    img = paint_background(rng, height, width)
    paint_roads(img, rng, s)
    objects: List[AerialObject] = []
    zones = Occupancy(height, width, 8)
    if rng.random() < 0.6:
        paint_river(img, rng, s, zones, objects)
    weights = np.array([wgt for _, wgt in ZONES])
    n_zones = max(1, int(round(height * width / (520.0 * 520.0 * s * s))))
    for _ in range(n_zones):
        plan = ZONES[rng.choice(len(ZONES), p=weights / weights.sum())][0]
        zw, zh, draw = plan(rng, s)
        for _attempt in range(25):
            frame = Frame(rng.uniform(0, width), rng.uniform(0, height), rng.uniform(-180, 180))
            outer = xywha_to_poly(frame.box(zw + 16 * s, zh + 16 * s)).reshape(4, 2)
            if inside_image(outer, width, height) and zones.take_if_free(outer):
                draw(img, frame, objects)
                break
    # trees on free ground (unlabelled clutter)
    n_trees = int(height * width / 9000)
    xs, ys = rng.uniform(0, width, n_trees), rng.uniform(0, height, n_trees)
    free = zones.mask[(ys // zones.cell).astype(int), (xs // zones.cell).astype(int)] == 0
    for x, y, r in zip(xs[free], ys[free], rng.uniform(3, 9, n_trees)[free] * s):
        cv2.circle(
            img, (int(x), int(y)), max(int(r), 1), jitter(rng, (40, 85, 50), 10), -1, cv2.LINE_AA
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
