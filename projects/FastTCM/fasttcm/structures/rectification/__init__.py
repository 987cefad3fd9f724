"""Text polygons -> rectified crops that read left to right (pure numpy / torch geometry).

Shared by the text spotter (:mod:`fasttcm.modeling`), which cuts its recognizer's crops with it,
and the recognition data pipeline (:mod:`fasttcm.data.str_mapper`), which cuts the words of
scene images the same way. Modules: :mod:`.rectify` (layouts, sampling grids, crops),
:mod:`.polygon_batch` (padding, orientation, validity), :mod:`.quad_warp` (perspective warps,
minimum-area rectangles), :mod:`.two_sided_warp` (curved text), :mod:`.crop_jitter` (random
side offsets of training crops).
"""
