"""Synthetic word crops for scene-text recognition, written as an STR LMDB (no download).

Each crop holds one word (a vocabulary word or a random alphanumeric token from
:func:`~fasttcm.data.synthetic.word_render.sample_text`) drawn with an installed font, nearly
horizontal, slightly rotated or tilted, sometimes bent along an arc, over a procedural background,
with blur and sensor noise. The crop is the word's axis-aligned bounding box plus a random margin,
at the rendering resolution (the STR mapper resizes it to the model input). Labels are the
rendered text with spaces removed (at most 12 characters).

Crop i of a dataset is drawn from ``numpy.random.default_rng([seed, i])``, so a dataset depends
only on (seed, options, installed fonts), not on the number of worker processes.
"""

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import Sequence, Tuple, Union

import cv2
import numpy as np

from ..converters.str_lmdb import StrLmdbWriter
from .backgrounds import make_background
from .fonts import FontSpec, discover_fonts
from .word_render import DEFAULT_CHARSET, make_word_geometry, render_word_mask, sample_text

__all__ = ["WordCropOptions", "render_word_crop", "generate_word_crops", "word_crop_options_dict"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 luminance weights


@dataclass(frozen=True)
class WordCropOptions:
    """Appearance of the synthetic word crops. Ranges are ``(min, max)``.

    Attributes:
        text_height: ink height in pixels, drawn uniformly.
        alnum_prob: share of random alphanumeric tokens (codes, numbers, prices, phone numbers).
        max_rotation_deg: largest in-plane rotation, degrees (counter-clockwise positive).
        rotated_prob: share of words rotated up to `max_rotation_deg`; the others stay within +-2.
        max_tilt_deg: largest 3-D tilt about each word axis (perspective), degrees.
        curved_prob: share of words bent along a circular arc.
        max_arc_deg: largest total bend of a curved word's middle line, degrees.
        margin: space around the word's bounding box as a fraction of the ink height, per side.
        min_contrast: least luminance difference (0-255) between the word and its background.
        blur_sigma: Gaussian sigma in pixels of the word's blur.
        noise_std: standard deviation of the additive noise (0-255 scale).
        background_contrast: largest per-channel colour difference within the background pattern.
        clutter: (min, max) non-text shapes, strokes and lines in the background (each kind).
        jpeg_quality: JPEG quality of the stored crops.
    """

    text_height: Tuple[float, float] = (18.0, 40.0)
    alnum_prob: float = 0.2
    max_rotation_deg: float = 8.0
    rotated_prob: float = 0.3
    max_tilt_deg: float = 15.0
    curved_prob: float = 0.15
    max_arc_deg: float = 45.0
    margin: Tuple[float, float] = (0.05, 0.3)
    min_contrast: float = 60.0
    blur_sigma: Tuple[float, float] = (0.0, 1.0)
    noise_std: Tuple[float, float] = (0.0, 6.0)
    background_contrast: float = 60.0
    clutter: Tuple[int, int] = (0, 1)
    jpeg_quality: int = 95

    def __post_init__(self):
        for name in ("text_height", "margin", "blur_sigma", "noise_std", "clutter"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(
                    f"WordCropOptions.{name}={getattr(self, name)} must satisfy 0 <= min <= max"
                )
        if self.text_height[0] < 4:
            raise ValueError(
                f"WordCropOptions.text_height={self.text_height}: words need >= 4 px of ink"
            )
        for name in ("alnum_prob", "rotated_prob", "curved_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"WordCropOptions.{name}={getattr(self, name)} must be a probability"
                )
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(
                f"WordCropOptions.jpeg_quality={self.jpeg_quality} must be in [1, 100]"
            )


def _contrasting_color(
    rng: np.random.Generator, background_luma: float, min_contrast: float
) -> np.ndarray:
    """A random RGB colour (float32 (3,)), luminance >= `min_contrast` away from the background."""
    sides = []
    if background_luma - min_contrast >= 0:
        sides.append((0.0, background_luma - min_contrast))
    if background_luma + min_contrast <= 255:
        sides.append((background_luma + min_contrast, 255.0))
    lo, hi = (
        sides[int(rng.integers(len(sides)))]
        if sides
        else ((0.0, 0.0) if background_luma > 127.5 else (255.0, 255.0))
    )
    target = rng.uniform(lo, hi)
    color = rng.uniform(0.0, 255.0, size=3).astype(np.float32)
    luma = float(color @ _LUMA)
    if target <= luma:  # luminance is linear in the channels: scale towards black or white
        return color * np.float32(target / max(luma, 1e-6))
    return 255.0 - (255.0 - color) * np.float32((255.0 - target) / max(255.0 - luma, 1e-6))


def render_word_crop(
    rng: np.random.Generator, fonts: Sequence[FontSpec], opts: WordCropOptions = WordCropOptions()
) -> Tuple[np.ndarray, str]:
    """Render one word crop.

    Args:
        rng: random generator (all randomness comes from it).
        fonts: fonts to draw with (one is picked per crop).
        opts: appearance options.

    Returns:
        (image, label): (H, W, 3) uint8 RGB crop, and its transcription (no spaces).
    """
    text = sample_text(rng, alnum_prob=opts.alnum_prob)
    font = fonts[int(rng.integers(len(fonts)))]
    height = rng.uniform(*opts.text_height)
    blur = rng.uniform(*opts.blur_sigma)
    mask = render_word_mask(text, font, height, pad=1 + int(math.ceil(1.5 * blur)))
    mask_h, mask_w = mask.shape

    limit = (
        opts.max_rotation_deg
        if rng.random() < opts.rotated_prob
        else min(2.0, opts.max_rotation_deg)
    )
    arc = 0.0
    max_arc = min(
        opts.max_arc_deg, 0.9 * math.degrees(mask_w / mask_h)
    )  # inner radius >= word height
    if rng.random() < opts.curved_prob and max_arc >= 15.0:
        arc = rng.uniform(15.0, max_arc) * (1.0 if rng.random() < 0.5 else -1.0)
    geometry = make_word_geometry(
        mask.shape,
        angle_deg=rng.uniform(-limit, limit),
        tilt_deg=tuple(rng.uniform(-opts.max_tilt_deg, opts.max_tilt_deg, size=2)),
        arc_deg=arc,
    )
    poly = geometry.polygon()
    left, top, right, bottom = rng.uniform(*opts.margin, size=4) * height
    x0, y0 = poly.min(axis=0) - (left, top)
    x1, y1 = poly.max(axis=0) + (right, bottom)
    crop_w, crop_h = max(int(math.ceil(x1 - x0)), 2), max(int(math.ceil(y1 - y0)), 2)
    geometry = geometry.translated(-x0, -y0)

    # make_background's strokes and grilles need >= 40 px of room; small crops get shapes only
    strokes = opts.clutter if min(crop_h, crop_w) >= 40 else (0, 0)
    image = make_background(
        rng,
        crop_h,
        crop_w,
        contrast=opts.background_contrast,
        clutter_shapes=opts.clutter,
        distractor_strokes=strokes,
        non_text_lines=strokes,
    )
    alpha, (ox, oy) = geometry.warp(
        mask.alpha, (crop_h, crop_w), margin=int(math.ceil(3 * blur)) + 2
    )
    if alpha.size:
        if blur > 0.2:
            alpha = cv2.GaussianBlur(alpha, (0, 0), blur)
        roi = image[oy : oy + alpha.shape[0], ox : ox + alpha.shape[1]]
        weights = alpha + 1e-6
        background_luma = float(((roi @ _LUMA) * weights).sum() / weights.sum())
        color = _contrasting_color(rng, background_luma, opts.min_contrast)
        roi += alpha[..., None] * (color - roi)
    sigma = rng.uniform(*opts.noise_std)
    if sigma > 0:
        image += rng.normal(0.0, sigma, size=image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), "".join(text.split())


def _render_encoded(index: int, *, seed: int, opts: WordCropOptions) -> Tuple[bytes, str]:
    """Crop `index` of the dataset as JPEG bytes and its label."""
    rng = np.random.default_rng([seed, index])
    image, label = render_word_crop(rng, discover_fonts(DEFAULT_CHARSET), opts)
    ok, encoded = cv2.imencode(
        ".jpg",
        cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, opts.jpeg_quality],
    )
    if not ok:
        raise RuntimeError(f"generate_word_crops: OpenCV could not encode crop {index}")
    return encoded.tobytes(), label


def generate_word_crops(
    out_dir: Union[str, Path],
    num_crops: int,
    seed: int,
    image_size=None,
    *,
    num_workers: int = 0,
    overwrite: bool = False,
    **options,
) -> Path:
    """Write `num_crops` synthetic word crops as an STR LMDB environment (atomically).

    Signature of ``tools/make_synthetic.py`` generators (``--kind words``).

    Args:
        out_dir: the LMDB folder to create (``data.mdb`` inside).
        num_crops: number of crops (>= 1).
        seed: non-negative integer; crop i is drawn from ``default_rng([seed, i])``.
        image_size: unused (crops keep their rendering size; the mapper resizes them). Accepted
            for the common generator signature.
        num_workers: rendering processes (0: in this process); the output does not depend on it.
        overwrite: replace an existing `out_dir`.
        **options: fields of :class:`WordCropOptions`.

    Returns:
        `out_dir` as a Path.
    """
    if not isinstance(num_crops, (int, np.integer)) or num_crops < 1:
        raise ValueError(
            f"generate_word_crops: num_crops must be a positive integer, got {num_crops!r}"
        )
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"generate_word_crops: seed must be a non-negative integer, got {seed!r}")
    known = {f.name for f in fields(WordCropOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"generate_word_crops: unknown options {unknown}; known: {sorted(known)}")
    opts = replace(WordCropOptions(), **options)
    render = partial(_render_encoded, seed=int(seed), opts=opts)
    indices = range(int(num_crops))
    out_dir = Path(out_dir)
    with StrLmdbWriter(out_dir, overwrite=overwrite) as writer:
        if num_workers > 0:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(num_workers, mp_context=context) as pool:
                chunk = max(1, num_crops // (8 * num_workers))
                for data, label in pool.map(render, indices, chunksize=chunk):
                    writer.add(data, label)
        else:
            for data, label in map(render, indices):
                writer.add(data, label)
    return out_dir


def word_crop_options_dict(**options) -> dict:
    """The full option set (defaults + overrides) as a plain dict, for generation stamps."""
    return asdict(replace(WordCropOptions(), **options))
