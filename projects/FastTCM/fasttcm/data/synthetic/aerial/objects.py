"""Labelled aerial objects: the :class:`AerialObject` record, the DOTA-v1.0 class each painter
draws, and painting an object while recording its label.
"""

from dataclasses import dataclass
from typing import Callable, List, Tuple

import numpy as np

from ...datasets.dota_meta import DOTA_V1_0_CLASSES
from . import structures, vehicles
from .primitives import Frame

__all__ = ["AerialObject", "CLASS_OF_PAINTER", "put_object", "put_object_with_width"]


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


CLASS_OF_PAINTER = {
    vehicles.paint_plane: "plane",
    structures.paint_baseball_diamond: "baseball-diamond",
    structures.paint_bridge: "bridge",
    structures.paint_track_field: "ground-track-field",
    vehicles.paint_small_vehicle: "small-vehicle",
    vehicles.paint_large_vehicle: "large-vehicle",
    vehicles.paint_ship: "ship",
    structures.paint_tennis_court: "tennis-court",
    structures.paint_basketball_court: "basketball-court",
    structures.paint_storage_tank: "storage-tank",
    structures.paint_soccer_field: "soccer-ball-field",
    structures.paint_roundabout: "roundabout",
    structures.paint_harbor: "harbor",
    structures.paint_swimming_pool: "swimming-pool",
    vehicles.paint_helicopter: "helicopter",
}
"""The DOTA-v1.0 class name of the objects each painter draws; every class has one painter."""
assert sorted(CLASS_OF_PAINTER.values()) == sorted(DOTA_V1_0_CLASSES)


def put_object(
    objects: List[AerialObject],
    img: np.ndarray,
    frame: Frame,
    painter: Callable,
    rng: np.random.Generator,
    *args,
    axis_aligned: bool = False,
) -> None:
    """Paint ``painter(img, frame, rng, *args)`` and append its label to `objects`.

    Args:
        objects: the image's labels so far (appended to).
        img: BGR ``uint8`` image ``(H, W, 3)``, drawn into.
        frame: the object's frame: its centre and heading in image pixels and degrees.
        painter: a key of :data:`CLASS_OF_PAINTER`.
        rng: the random source.
        *args: the painter's size arguments.
        axis_aligned: label the box with angle 0 (round objects) instead of the frame's angle.
    """
    w, h = painter(img, frame, rng, *args)
    angle = 0.0 if axis_aligned else frame.angle
    objects.append(
        AerialObject(
            (frame.cx, frame.cy, float(w), float(h), angle), CLASS_OF_PAINTER[painter], False
        )
    )


def put_object_with_width(
    objects: List[AerialObject],
    img: np.ndarray,
    frame: Frame,
    painter: Callable,
    rng: np.random.Generator,
    length: float,
    width: float,
) -> None:
    """Paint ``painter(img, frame, rng, length, width)`` (a bridge or a harbour) and append its
    label, the box in `frame`, to `objects`."""
    w, h = painter(img, frame, rng, length, width)
    objects.append(AerialObject(frame.box(w, h), CLASS_OF_PAINTER[painter], False))
