"""Synthetic datasets that need no download: the default data of the demo, schedules and tests.

Scene text (:mod:`.scene_text`, written by :mod:`.scene_text_dataset`): words on procedural
backgrounds with polygons and transcriptions,
the default dataset of the demo, the quick schedules and the tests. Its building blocks are
reusable: :mod:`.fonts` (installed fonts), :mod:`.backgrounds` (procedural backgrounds) and
:mod:`.word_render` (text sampling, word masks, their warp and enclosing polygons).
"""

from .backgrounds import BACKGROUND_KINDS, make_background
from .fonts import FontSpec, discover_fonts, load_font
from .scene_text import DONT_CARE_TEXT, render_scene
from .scene_text_dataset import generate_text_dataset
from .scene_text_options import DIFFICULTY_PRESETS, SceneTextOptions
from .word_render import (
    DEFAULT_CHARSET,
    VOCABULARY,
    WordGeometry,
    WordMask,
    make_word_geometry,
    render_word_mask,
    sample_text,
)

__all__ = [
    "BACKGROUND_KINDS",
    "DEFAULT_CHARSET",
    "DIFFICULTY_PRESETS",
    "FontSpec",
    "DONT_CARE_TEXT",
    "SceneTextOptions",
    "VOCABULARY",
    "WordGeometry",
    "WordMask",
    "discover_fonts",
    "generate_text_dataset",
    "load_font",
    "make_background",
    "make_word_geometry",
    "render_scene",
    "render_word_mask",
    "sample_text",
]
