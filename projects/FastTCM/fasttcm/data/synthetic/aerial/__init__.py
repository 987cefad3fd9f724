"""Synthetic aerial images with DOTA-v1.0 labels, part of the data that needs no download: the
default oriented-object dataset of the demo, the quick schedules and the tests.

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

Modules, from the bottom up: :mod:`.primitives` (shapes drawn in rotated local frames),
:mod:`.vehicles` and :mod:`.structures` (one painter per class), :mod:`.objects` (the label
record and the class of each painter), :mod:`.occupancy` (taken ground), :mod:`.zones` (zone
layouts), :mod:`.terrain` (ground, roads, river), :mod:`.render` (one image) and
:mod:`.dataset` (folders of images and labels).
"""

from .dataset import ensure_aerial_dataset, generate_aerial_dataset, make_aerial_dataset
from .objects import AerialObject
from .render import render_aerial_image

__all__ = [
    "AerialObject",
    "render_aerial_image",
    "generate_aerial_dataset",
    "ensure_aerial_dataset",
    "make_aerial_dataset",
]
