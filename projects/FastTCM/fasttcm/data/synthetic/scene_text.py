"""Synthetic scene-text images with polygon + transcription annotations.

The embedded default dataset of FastTCM-D2's demo, quick schedules and tests (DECISIONS.md section
5). Words and short lines are drawn with the fonts installed packages ship (:mod:`.fonts`) onto
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

import dataclasses
import json
import logging
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import shapely

from ...utils.atomic_io import atomic_open
from .backgrounds import BACKGROUND_KINDS, blend_color, fractal_noise, make_background
from .fonts import FontSpec, discover_fonts
from ...structures.text import DONT_CARE_TEXT
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
    "generate_text_dataset",
    "DONT_CARE_TEXT",
]

logger = logging.getLogger(__name__)

#: Transcription of don't-care regions (ICDAR convention).
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 luminance weights


_PROBABILITY_FIELDS = (
    "horizontal_prob", "curved_prob", "line_prob", "alnum_prob", "dont_care_prob", "outline_prob",
    "shadow_prob", "plate_prob",
)  # fmt: skip
_RANGE_FIELDS = (
    "words_per_image", "text_height", "dont_care_height", "dont_care_blur_sigma", "blur_sigma",
    "clutter_shapes", "distractor_strokes", "non_text_lines", "noise_std",
)  # fmt: skip


@dataclass(frozen=True)
class SceneTextOptions:
    """Difficulty of the synthetic scenes. Ranges are ``(min, max)``, both inclusive.

    Attributes:
        words_per_image: number of words (or short lines) attempted per image.
        text_height: ink height in pixels of legible words, drawn log-uniformly.
        max_rotation_deg: largest in-plane rotation (degrees, counter-clockwise positive).
        horizontal_prob: share of words kept nearly horizontal (within +-5 degrees).
        max_tilt_deg: largest 3-D tilt about each word axis (perspective), degrees, <= 60.
        curved_prob: share of words bent along a circular arc.
        max_arc_deg: largest total bend of a curved word's middle line, degrees.
        curve_side_points: polygon points per long side of curved words, one drawn per word.
        line_prob: share of short lines (2..`max_line_words` words, one annotation).
        max_line_words: longest short line, in words.
        alnum_prob: share of random alphanumeric tokens instead of dictionary words.
        dont_care_prob: share of words made illegible and annotated ``"###"`` / ``ignore=True``.
        dont_care_height: ink height in pixels of the tiny don't-care words.
        dont_care_blur_sigma: Gaussian sigma in pixels of the heavily blurred don't-care words.
        min_contrast: least luminance difference (0-255) between a word and its background.
        blur_sigma: Gaussian sigma in pixels of the legible words' blur.
        outline_prob: share of words with an outline of 1-2 pixels.
        shadow_prob: share of words with a drop shadow.
        plate_prob: share of words drawn on a sign plate (a filled, enlarged copy of the polygon).
        background_kinds: base background patterns (see ``backgrounds.BACKGROUND_KINDS``).
        background_contrast: largest per-channel colour difference within the base pattern.
        clutter_shapes: number of filled non-text shapes in the background.
        distractor_strokes: number of glyph-like curved strokes in the background.
        non_text_lines: number of long lines or parallel-bar grilles in the background.
        illumination: largest relative brightness variation of the low-frequency shading.
        noise_std: standard deviation of the additive sensor noise (0-255 scale).
        min_gap: least distance in pixels between two words (or their plates).
        min_gap_rel: least distance between a new word and the others as a fraction of its ink
            height (the larger of the two gaps applies); keeps separate words from looking like
            one line.
        placement_tries: attempts to place a word before it is dropped; the word shrinks by 20%
            after every 10 failed attempts.
    """

    words_per_image: Tuple[int, int] = (3, 8)
    text_height: Tuple[float, float] = (16.0, 60.0)
    max_rotation_deg: float = 30.0
    horizontal_prob: float = 0.5
    max_tilt_deg: float = 20.0
    curved_prob: float = 0.2
    max_arc_deg: float = 120.0
    curve_side_points: Tuple[int, ...] = (7, 8)
    line_prob: float = 0.1
    max_line_words: int = 3
    alnum_prob: float = 0.2
    dont_care_prob: float = 0.08
    dont_care_height: Tuple[float, float] = (6.0, 10.0)
    dont_care_blur_sigma: Tuple[float, float] = (2.5, 4.0)
    min_contrast: float = 70.0
    blur_sigma: Tuple[float, float] = (0.0, 0.6)
    outline_prob: float = 0.1
    shadow_prob: float = 0.1
    plate_prob: float = 0.15
    background_kinds: Tuple[str, ...] = ("flat", "gradient", "noise", "texture")
    background_contrast: float = 80.0
    clutter_shapes: Tuple[int, int] = (0, 4)
    distractor_strokes: Tuple[int, int] = (0, 3)
    non_text_lines: Tuple[int, int] = (0, 2)
    illumination: float = 0.2
    noise_std: Tuple[float, float] = (0.0, 4.0)
    min_gap: float = 3.0
    min_gap_rel: float = 0.5
    placement_tries: int = 30

    def __post_init__(self):
        for f in dataclasses.fields(self):  # accept lists (from JSON/YAML/CLI) for tuples
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        for name in _PROBABILITY_FIELDS:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"SceneTextOptions.{name} must be in [0, 1], got {getattr(self, name)}"
                )
        for name in _RANGE_FIELDS:
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2 or not 0 <= lo_hi[0] <= lo_hi[1]:
                raise ValueError(
                    f"SceneTextOptions.{name} must be (min, max) with 0 <= min <= max, got {lo_hi}"
                )
        if self.text_height[0] < 4 or self.dont_care_height[0] < 3:
            raise ValueError(
                "SceneTextOptions: text_height must start at >= 4 px and "
                f"dont_care_height at >= 3 px, got {self.text_height}, {self.dont_care_height}"
            )
        if not 0 <= self.max_tilt_deg <= 60:
            raise ValueError(
                f"SceneTextOptions.max_tilt_deg must be in [0, 60], got {self.max_tilt_deg}"
            )
        if not 0 <= self.max_rotation_deg <= 180 or not 0 <= self.max_arc_deg <= 300:
            raise ValueError(
                "SceneTextOptions: max_rotation_deg must be in [0, 180] and max_arc_deg "
                f"in [0, 300], got {self.max_rotation_deg}, {self.max_arc_deg}"
            )
        if not self.curve_side_points or min(self.curve_side_points) < 3:
            raise ValueError(
                f"SceneTextOptions.curve_side_points must be >= 3, got {self.curve_side_points}"
            )
        unknown = set(self.background_kinds) - set(BACKGROUND_KINDS)
        if not self.background_kinds or unknown:
            raise ValueError(
                f"SceneTextOptions.background_kinds: unknown {sorted(unknown)}; "
                f"choose from {sorted(BACKGROUND_KINDS)}"
            )
        if (
            self.max_line_words < 2
            or self.placement_tries < 1
            or min(self.min_gap, self.min_gap_rel) < 0
        ):
            raise ValueError(
                "SceneTextOptions: need max_line_words >= 2, placement_tries >= 1, "
                "min_gap >= 0 and min_gap_rel >= 0"
            )

    @classmethod
    def from_difficulty(cls, difficulty: str = "default", **overrides) -> "SceneTextOptions":
        """Options of a preset of :data:`DIFFICULTY_PRESETS`, with some fields overridden.

        Raises:
            ValueError: for an unknown preset or an unknown option name.
        """
        if difficulty not in DIFFICULTY_PRESETS:
            raise ValueError(
                f"Unknown difficulty {difficulty!r}; choose from {sorted(DIFFICULTY_PRESETS)}"
            )
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - valid
        if unknown:
            raise ValueError(
                f"Unknown scene-text option(s) {sorted(unknown)}; valid: {sorted(valid)}"
            )
        return cls(**{**DIFFICULTY_PRESETS[difficulty], **overrides})


#: Named difficulty settings: fields of :class:`SceneTextOptions` that differ from the defaults.
DIFFICULTY_PRESETS: Dict[str, dict] = {
    "easy": dict(
        max_rotation_deg=10.0,
        max_tilt_deg=0.0,
        curved_prob=0.0,
        line_prob=0.0,
        dont_care_prob=0.05,
        min_contrast=100.0,
        blur_sigma=(0.0, 0.3),
        outline_prob=0.0,
        shadow_prob=0.0,
        background_kinds=("flat", "gradient", "noise"),
        clutter_shapes=(0, 2),
        distractor_strokes=(0, 1),
        non_text_lines=(0, 1),
        noise_std=(0.0, 2.0),
    ),
    "default": {},
    "hard": dict(
        words_per_image=(4, 14),
        text_height=(10.0, 80.0),
        max_rotation_deg=90.0,
        horizontal_prob=0.3,
        max_tilt_deg=40.0,
        curved_prob=0.35,
        max_arc_deg=200.0,
        line_prob=0.2,
        alnum_prob=0.3,
        dont_care_prob=0.12,
        min_contrast=40.0,
        blur_sigma=(0.0, 1.2),
        outline_prob=0.2,
        shadow_prob=0.2,
        plate_prob=0.2,
        background_contrast=140.0,
        clutter_shapes=(2, 10),
        distractor_strokes=(2, 8),
        non_text_lines=(1, 4),
        illumination=0.4,
        noise_std=(1.0, 8.0),
        min_gap=2.0,
        min_gap_rel=0.2,
    ),
}


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


def _write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temporary file beside it, then rename)."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def _render_and_save(
    index: int,
    *,
    seed: int,
    image_size,
    options: SceneTextOptions,
    image_dir: Path,
    ext: str,
    jpeg_quality: int,
) -> Tuple[str, List[dict]]:
    """Render image `index` of the dataset and write it; returns (file name, annotations)."""
    rng = np.random.default_rng([seed, index])
    image, annotations = render_scene(rng, image_size, options=options)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext == "jpg" else []
    ok, encoded = cv2.imencode("." + ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError(f"generate_text_dataset: OpenCV could not encode image {index} as {ext}")
    name = f"{index:06d}.{ext}"
    _write_atomic(image_dir / name, encoded.tobytes())
    return name, annotations


def generate_text_dataset(
    out_dir: Union[str, Path],
    num_images: int,
    seed: int,
    image_size: Tuple[int, int] = (320, 320),
    *,
    difficulty: str = "default",
    num_workers: int = 0,
    image_format: str = "jpg",
    jpeg_quality: int = 95,
    **options,
) -> Path:
    """Generate a synthetic scene-text dataset in the project's text-JSON format.

    Writes ``out_dir/images/000000.jpg ...`` and ``out_dir/annotations.json``::

        {"info": {"description": str, "version": 1},
         "images": [{"id", "file_name" (relative to out_dir, POSIX), "height", "width"}],
         "annotations": [{"id", "image_id", "polygon": [[x, y], ...] (absolute pixels),
                          "text" ("###" = don't care), "ignore": bool}],
         "categories": [{"id": 1, "name": "text"}]}

    Image and annotation ids start at 1. Every file is written atomically (temporary file and
    rename), the JSON last, so an existing annotations.json always describes complete images.

    Args:
        out_dir: output folder (created if needed).
        num_images: number of images (>= 1).
        seed: non-negative integer; image i is drawn from ``numpy.random.default_rng([seed, i])``.
        image_size: (H, W) in pixels.
        difficulty: preset name in :data:`DIFFICULTY_PRESETS`.
        num_workers: processes rendering in parallel (0: in this process). The output does not
            depend on it.
        image_format: "jpg" or "png".
        jpeg_quality: JPEG quality, 1-100.
        **options: fields of :class:`SceneTextOptions` overriding the preset.

    Returns:
        Path of ``annotations.json``.
    """
    if not isinstance(num_images, (int, np.integer)) or num_images < 1:
        raise ValueError(
            f"generate_text_dataset: num_images must be a positive integer, got {num_images!r}"
        )
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(
            f"generate_text_dataset: seed must be a non-negative integer, got {seed!r}"
        )
    if image_format not in ("jpg", "png"):
        raise ValueError(
            f"generate_text_dataset: image_format must be 'jpg' or 'png', got {image_format!r}"
        )
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(
            f"generate_text_dataset: jpeg_quality must be in [1, 100], got {jpeg_quality}"
        )
    img_h, img_w = (int(v) for v in image_size)
    opts = SceneTextOptions.from_difficulty(difficulty, **options)

    out_dir = Path(out_dir)
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    render = partial(
        _render_and_save,
        seed=int(seed),
        image_size=(img_h, img_w),
        options=opts,
        image_dir=image_dir,
        ext=image_format,
        jpeg_quality=int(jpeg_quality),
    )
    start = time.perf_counter()
    indices = range(int(num_images))
    if num_workers > 0:
        with ProcessPoolExecutor(
            num_workers, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            results = list(
                pool.map(render, indices, chunksize=max(1, num_images // (4 * num_workers)))
            )
    else:
        results = [render(i) for i in indices]
    elapsed = time.perf_counter() - start

    images, annotations = [], []
    for index, (name, anns) in enumerate(results):
        images.append(
            {"id": index + 1, "file_name": f"images/{name}", "height": img_h, "width": img_w}
        )
        for ann in anns:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index + 1,
                    "polygon": [
                        [round(float(x), 2), round(float(y), 2)] for x, y in ann["polygon"]
                    ],
                    "text": ann["text"],
                    "ignore": ann["ignore"],
                }
            )
    changed = {
        k: v for k, v in dataclasses.asdict(opts).items() if v != getattr(SceneTextOptions, k)
    }
    dataset = {
        "info": {
            "description": (
                f"FastTCM-D2 synthetic scene text: seed={seed}, num_images={num_images}, "
                f"image_size={img_h}x{img_w}, difficulty={difficulty}, options={changed}"
            ),
            "version": 1,
        },
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "text"}],
    }
    json_path = out_dir / "annotations.json"
    _write_atomic(json_path, json.dumps(dataset, separators=(",", ":")).encode("utf-8"))
    logger.info(
        "Wrote %d synthetic scene-text images (%d words) to %s in %.1f s (%.1f images/s)",
        num_images,
        len(annotations),
        out_dir,
        elapsed,
        num_images / max(elapsed, 1e-9),
    )
    return json_path
