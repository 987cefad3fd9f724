"""Synthetic scene-text images with polygon + transcription annotations.

The embedded default dataset of FastTCM-D2's demo, quick schedules and tests: it needs no
download. Words and short lines are drawn with the fonts installed packages ship (:mod:`.fonts`)
onto
procedural backgrounds (:mod:`.backgrounds`), rotated, tilted in perspective or bent along arcs
(:mod:`.word_render`), with varied size, colour, contrast, outline, shadow, sign plates and blur.
Words never overlap (rejection sampling with polygon tests) and lie entirely inside the image.
A few tiny or heavily blurred words are don't-care regions: text ``"###"``, ``ignore=True``.

Polygons are in absolute pixels of the image, whose continuous frame spans ``[0, W] x [0, H]``
(detectron2/COCO: pixel (r, c) has its centre at (c + 0.5, r + 0.5)): 4 points for straight text
(top-left, top-right, bottom-right, bottom-left in reading order), 2n points (n = 7 or 8 by
default) for curved text, clockwise in image coordinates, enclosing every glyph pixel.

Generation is deterministic: image ``i`` of a dataset with seed ``s`` is drawn from
``numpy.random.default_rng([s, i])`` only, so the same seed gives byte-identical images and JSON
whatever the global random state or the number of worker processes.

The default difficulty is meant to be learnable at 320x320 (a small DBNet trained for minutes on a
CPU); :data:`DIFFICULTY_PRESETS` offers an ``"easy"`` and a more realistic ``"hard"`` setting, and
every field of :class:`SceneTextOptions` can be overridden.
"""

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import shapely

from ...structures.text import DONT_CARE_TEXT
from .backgrounds import blend_color, fractal_noise, make_background
from .fonts import FontSpec, discover_fonts
from .scene_text_options import DIFFICULTY_PRESETS, SceneTextOptions
from .word_render import (
    DEFAULT_CHARSET,
    WordGeometry,
    make_word_geometry,
    render_word_mask,
    sample_text,
)

__all__ = [
    "SceneTextOptions",
    "DIFFICULTY_PRESETS",
    "render_scene",
    "DONT_CARE_TEXT",
]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 luminance weights


@dataclass
class _PlacedWord:
    """A word that passed the placement tests (internal)."""

    alpha: np.ndarray  # (h, w) source mask
    geometry: WordGeometry
    polygon: np.ndarray  # (N, 2) absolute pixels
    text: str
    ignore: bool
    blur_sigma: float
    outline: int
    plate: Optional[shapely.Polygon]


def _color_with_luminance(rng: np.random.Generator, luminance: float) -> np.ndarray:
    """A random hue whose BT.601 luminance is `luminance` (0-255): float32 (3,)."""
    c = rng.uniform(0.0, 255.0, size=3).astype(np.float32)
    y = float(c @ _LUMA)
    if luminance <= y:  # scale towards black: luminance is linear in the channels
        return c * np.float32(luminance / max(y, 1e-6))
    return 255.0 - (255.0 - c) * np.float32((255.0 - luminance) / max(255.0 - y, 1e-6))


def _contrasting_luminance(
    rng: np.random.Generator, background: float, min_contrast: float
) -> float:
    """A luminance at least `min_contrast` away from `background` (or as far as possible)."""
    dark_max, light_min = background - min_contrast, background + min_contrast
    sides = [s for s, ok in (("dark", dark_max >= 0.0), ("light", light_min <= 255.0)) if ok]
    if not sides:
        return 0.0 if background > 127.5 else 255.0
    if sides[int(rng.integers(len(sides)))] == "dark":
        return rng.uniform(0.0, dark_max)
    return rng.uniform(light_min, 255.0)


def _sample_word_shape(rng: np.random.Generator, opts: SceneTextOptions, mask_shape) -> dict:
    """Random rotation, tilt and bend for a mask of (h, w) (arguments of make_word_geometry)."""
    h, w = mask_shape
    if rng.random() < opts.horizontal_prob:
        limit = min(5.0, opts.max_rotation_deg)
    else:
        limit = opts.max_rotation_deg
    angle = rng.uniform(-limit, limit)
    tilt = tuple(rng.uniform(-opts.max_tilt_deg, opts.max_tilt_deg, size=2))
    arc, side_points = 0.0, None
    # Bend only words at least twice as wide as tall; the inner radius must stay >= the height.
    max_arc = min(opts.max_arc_deg, 0.9 * math.degrees(w / h))
    if rng.random() < opts.curved_prob and max_arc >= 20.0:
        arc = rng.uniform(20.0, max_arc) * (1.0 if rng.random() < 0.5 else -1.0)
        side_points = int(opts.curve_side_points[int(rng.integers(len(opts.curve_side_points)))])
    return dict(angle_deg=angle, tilt_deg=tilt, arc_deg=arc, num_side_points=side_points)


def _place_word(
    rng: np.random.Generator,
    opts: SceneTextOptions,
    fonts: Sequence[FontSpec],
    occupied: List[shapely.Polygon],
    image_size: Tuple[int, int],
    ignore: bool,
) -> Optional[_PlacedWord]:
    """Sample a word and a free spot for it; None if `placement_tries` attempts all fail."""
    img_h, img_w = image_size
    blur = rng.uniform(*opts.blur_sigma)
    if ignore and rng.random() < 0.5:  # illegible because tiny
        height = rng.uniform(*opts.dont_care_height)
    else:
        lo, hi = opts.text_height
        height = math.exp(rng.uniform(math.log(lo), math.log(hi)))  # small words are more common
        if ignore:  # illegible because heavily blurred
            blur = rng.uniform(*opts.dont_care_blur_sigma)
    outline = int(rng.integers(1, 3)) if (not ignore and rng.random() < opts.outline_prob) else 0
    plate_margin = rng.uniform(0.15, 0.4) if rng.random() < opts.plate_prob else None
    text = sample_text(
        rng,
        alnum_prob=opts.alnum_prob,
        line_prob=opts.line_prob,
        max_line_words=opts.max_line_words,
    )
    font = fonts[int(rng.integers(len(fonts)))]
    pad = 1 + outline + int(math.ceil(1.5 * blur))

    mask = None
    for attempt in range(opts.placement_tries):
        if attempt and attempt % 10 == 0:
            height = max(height * 0.8, 4.0 if not ignore else 3.0)
            mask = None
        if mask is None:
            mask = render_word_mask(text, font, height, pad=pad)
        geometry = make_word_geometry(mask.shape, **_sample_word_shape(rng, opts, mask.shape))
        poly = geometry.polygon()
        (x_min, y_min), (x_max, y_max) = poly.min(axis=0), poly.max(axis=0)
        free_x, free_y = (img_w - 2.0) - (x_max - x_min), (img_h - 2.0) - (y_max - y_min)
        if free_x <= 0 or free_y <= 0:  # too big for the image: try again, smaller
            height *= 0.8
            mask = None
            continue
        dx = 1.0 - x_min + rng.uniform(0.0, free_x)
        dy = 1.0 - y_min + rng.uniform(0.0, free_y)
        geometry = geometry.translated(dx, dy)
        poly = poly + (dx, dy)
        shape = shapely.Polygon(poly)
        if not shape.is_valid:
            continue
        plate = None
        if plate_margin is not None:
            join = "mitre" if len(poly) == 4 else "round"
            plate = shape.buffer(plate_margin * mask.shape[0], join_style=join)
        footprint = plate if plate is not None else shape
        gap = max(opts.min_gap, opts.min_gap_rel * height)
        if occupied and shapely.dwithin(np.asarray(occupied, dtype=object), footprint, gap).any():
            continue
        occupied.append(footprint)
        return _PlacedWord(mask.alpha, geometry, poly, text, ignore, blur, outline, plate)
    return None


def _blend(
    image: np.ndarray, alpha: np.ndarray, origin: Tuple[int, int], color: np.ndarray
) -> None:
    """In place: image = image * (1 - alpha) + color * alpha over the ROI at origin (x0, y0)."""
    x0, y0 = origin
    h, w = alpha.shape
    roi = image[y0 : y0 + h, x0 : x0 + w]
    roi += alpha[..., None] * (color - roi)


def _shifted(a: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """`a` moved by (dx, dy) pixels, zero-filled (no wrap-around)."""
    out = np.zeros_like(a)
    h, w = a.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[
        max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def _draw_word(
    image: np.ndarray, word: _PlacedWord, rng: np.random.Generator, opts: SceneTextOptions
) -> None:
    """Composite a placed word (plate, shadow, outline, fill) into `image` in place."""
    img_h, img_w = image.shape[:2]
    if word.plate is not None:
        plate_mask = np.zeros((img_h, img_w), np.uint8)
        ring = np.asarray(word.plate.exterior.coords) - 0.5  # continuous -> pixel-centre frame
        cv2.fillPoly(plate_mask, [np.round(ring * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
        blend_color(image, plate_mask, rng.uniform(0.0, 255.0, size=3).astype(np.float32), 1.0)

    margin = int(math.ceil(3.0 * word.blur_sigma)) + word.outline + 2
    fill, origin = word.geometry.warp(word.alpha, (img_h, img_w), margin=margin)
    if fill.size == 0:
        return
    x0, y0 = origin
    h, w = fill.shape
    weights = fill + 1e-6
    background = float((image[y0 : y0 + h, x0 : x0 + w] @ _LUMA * weights).sum() / weights.sum())
    luminance = _contrasting_luminance(rng, background, opts.min_contrast)
    color = _color_with_luminance(rng, luminance)

    outline = None
    if word.outline:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * word.outline + 1,) * 2)
        outline = cv2.dilate(fill, kernel)
    if word.blur_sigma > 0.2:
        fill = cv2.GaussianBlur(fill, (0, 0), word.blur_sigma)
        if outline is not None:
            outline = cv2.GaussianBlur(outline, (0, 0), word.blur_sigma)

    if rng.random() < opts.shadow_prob:
        shadow = cv2.GaussianBlur(outline if outline is not None else fill, (0, 0), 1.0)
        dx, dy = (int(v) for v in rng.integers(1, 4, size=2) * np.where(rng.random(2) < 0.5, -1, 1))
        shadow = _shifted(shadow, dx, dy)
        shadow_luma = 255.0 - luminance if abs(255.0 - 2.0 * luminance) > 60 else 0.0
        _blend(image, shadow * np.float32(0.6), origin, _color_with_luminance(rng, shadow_luma))
    if outline is not None:
        _blend(image, outline, origin, _color_with_luminance(rng, 255.0 - luminance))
    _blend(image, fill, origin, color)


def _finish(image: np.ndarray, rng: np.random.Generator, opts: SceneTextOptions) -> np.ndarray:
    """Global shading and sensor noise, in place; returns the uint8 image."""
    img_h, img_w = image.shape[:2]
    if opts.illumination > 0:
        shading = fractal_noise(rng, img_h, img_w, cell=max(img_h, img_w) / 2.0, octaves=2)
        strength = rng.uniform(0.0, opts.illumination)
        image *= (1.0 + strength * (shading - 0.5))[..., None]
    sigma = rng.uniform(*opts.noise_std)
    if sigma > 0:  # zero-mean uniform noise of standard deviation sigma (cheaper than Gaussian)
        image += (rng.random(image.shape, dtype=np.float32) - np.float32(0.5)) * np.float32(
            sigma * 12**0.5
        )
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def render_scene(
    rng: np.random.Generator,
    image_size: Tuple[int, int] = (320, 320),
    *,
    options: Optional[SceneTextOptions] = None,
    difficulty: str = "default",
    **overrides,
) -> Tuple[np.ndarray, List[dict]]:
    """Draw one synthetic scene-text image.

    Args:
        rng: the random generator; the only source of randomness.
        image_size: (H, W) in pixels.
        options: full options; if None they come from `difficulty` and `overrides`.
        difficulty: preset name in :data:`DIFFICULTY_PRESETS` (used when `options` is None).
        **overrides: fields of :class:`SceneTextOptions` (used when `options` is None).

    Returns:
        (image, annotations): image is (H, W, 3) uint8 RGB; annotations is a list (in drawing
        order) of dicts ``{"polygon": (N, 2) float64 absolute (x, y) pixels, N = 4 or 2n,
        "text": str ("###" for don't care), "ignore": bool}``.
    """
    if options is None:
        options = SceneTextOptions.from_difficulty(difficulty, **overrides)
    elif overrides:
        raise ValueError(
            f"render_scene: pass either options or overrides, not both ({sorted(overrides)})"
        )
    img_h, img_w = (int(v) for v in image_size)
    if img_h < 16 or img_w < 16:
        raise ValueError(f"render_scene: image_size {image_size} is too small (>= 16x16)")
    fonts = discover_fonts(DEFAULT_CHARSET)
    image = make_background(
        rng,
        img_h,
        img_w,
        kinds=options.background_kinds,
        contrast=options.background_contrast,
        clutter_shapes=options.clutter_shapes,
        distractor_strokes=options.distractor_strokes,
        non_text_lines=options.non_text_lines,
    )
    occupied: List[shapely.Polygon] = []
    annotations = []
    for _ in range(int(rng.integers(options.words_per_image[0], options.words_per_image[1] + 1))):
        ignore = bool(rng.random() < options.dont_care_prob)
        word = _place_word(rng, options, fonts, occupied, (img_h, img_w), ignore)
        if word is None:
            continue
        _draw_word(image, word, rng, options)
        annotations.append(
            {
                "polygon": word.polygon,
                "text": DONT_CARE_TEXT if ignore else word.text,
                "ignore": ignore,
            }
        )
    return _finish(image, rng, options), annotations
