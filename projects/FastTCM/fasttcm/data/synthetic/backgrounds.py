"""Procedural backgrounds for synthetic scene text: no image files, only a random generator.

A background is a base pattern (:data:`BACKGROUND_KINDS`: flat colour, gradient, fractal noise,
texture) overlaid with clutter that is *not* text and that a detector must learn to ignore:
filled shapes, glyph-like distractor strokes (curves as thick as letter strokes) and non-text
lines (long edges, wires, fences and grilles of parallel bars).

Every function takes the random generator explicitly and returns a float32 (H, W, 3) RGB image
with values in [0, 255]. All drawing is vectorized numpy or OpenCV.
"""

import math
from typing import Callable, Dict, Sequence, Tuple

import cv2
import numpy as np

__all__ = ["BACKGROUND_KINDS", "make_background", "random_color", "fractal_noise", "blend_color"]


def random_color(rng: np.random.Generator) -> np.ndarray:
    """A random RGB colour, float32 (3,) in [0, 255]."""
    return rng.uniform(0.0, 255.0, size=3).astype(np.float32)


def fractal_noise(
    rng: np.random.Generator, height: int, width: int, cell: float, octaves: int = 4
) -> np.ndarray:
    """Multi-octave value noise (smoothly interpolated random grids).

    Args:
        rng: random generator.
        height, width: output size.
        cell: size in pixels of the coarsest octave's grid cell.
        octaves: number of octaves; each halves the cell and the amplitude.

    Returns:
        (height, width) float32 normalized to [0, 1].
    """
    out = np.zeros((height, width), np.float32)
    amplitude = 1.0
    for _ in range(octaves):
        gh = max(2, int(math.ceil(height / cell)) + 1)
        gw = max(2, int(math.ceil(width / cell)) + 1)
        grid = rng.random((gh, gw), dtype=np.float32)
        out += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        amplitude *= 0.5
        cell = max(1.0, cell / 2.0)
    out -= out.min()
    return out / max(float(out.max()), 1e-6)


def _mix(t: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Per-pixel blend of two colours: (H, W) weights in [0, 1] -> (H, W, 3)."""
    return c0 + t[..., None] * (c1 - c0)


def _pair_of_colors(rng: np.random.Generator, max_distance: float) -> Tuple[np.ndarray, np.ndarray]:
    """Two colours at most `max_distance` apart per channel (so the base pattern stays subtle)."""
    c0 = random_color(rng)
    c1 = np.clip(c0 + rng.uniform(-max_distance, max_distance, size=3), 0, 255).astype(np.float32)
    return c0, c1


def _flat(rng: np.random.Generator, h: int, w: int, contrast: float) -> np.ndarray:
    return np.broadcast_to(random_color(rng), (h, w, 3)).copy()


def _gradient(rng: np.random.Generator, h: int, w: int, contrast: float) -> np.ndarray:
    c0, c1 = _pair_of_colors(rng, contrast)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.7:  # linear, random direction
        a = rng.uniform(0, 2 * math.pi)
        t = xs * math.cos(a) + ys * math.sin(a)
    else:  # radial, random centre
        t = np.hypot(xs - rng.uniform(0, w), ys - rng.uniform(0, h))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return _mix(t, c0, c1)


def _noise(rng: np.random.Generator, h: int, w: int, contrast: float) -> np.ndarray:
    c0, c1 = _pair_of_colors(rng, contrast)
    t = fractal_noise(rng, h, w, cell=rng.uniform(16, 96))
    return _mix(t, c0, c1)


def _texture(rng: np.random.Generator, h: int, w: int, contrast: float) -> np.ndarray:
    """Stripes, tiles, bricks, wood or marble, with a little noise so no texture is perfect."""
    c0, c1 = _pair_of_colors(rng, contrast)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, math.pi)
    u = xs * math.cos(a) + ys * math.sin(a)
    v = -xs * math.sin(a) + ys * math.cos(a)
    period = rng.uniform(8, 48)
    kind = int(rng.integers(5))
    if kind == 0:  # soft stripes
        t = 0.5 + 0.5 * np.sin(2 * math.pi * u / period)
    elif kind == 1:  # tiles
        t = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    elif kind == 2:  # bricks: mortar lines on staggered rows
        row = np.floor(v / period)
        along = (u + period * (row % 2)) % (2 * period)  # bricks 2 periods long, staggered
        mortar = (v % period < 0.12 * period) | (along < 0.12 * period)
        t = 1.0 - mortar.astype(np.float32)
    else:  # wood (rings) or marble (veins): sines of a turbulent coordinate
        turbulence = fractal_noise(rng, h, w, cell=rng.uniform(32, 128), octaves=3)
        base = (
            np.hypot(xs - rng.uniform(-w, 2 * w), ys - rng.uniform(-h, 2 * h)) if kind == 3 else u
        )
        t = 0.5 + 0.5 * np.sin(2 * math.pi * (base / period + 3.0 * turbulence))
    t = 0.85 * t + 0.15 * fractal_noise(rng, h, w, cell=8, octaves=2)
    return _mix(t.astype(np.float32), c0, c1)


#: Base patterns by name: fn(rng, height, width, contrast) -> (H, W, 3) float32.
BACKGROUND_KINDS: Dict[str, Callable[..., np.ndarray]] = {
    "flat": _flat,
    "gradient": _gradient,
    "noise": _noise,
    "texture": _texture,
}


def blend_color(image: np.ndarray, mask: np.ndarray, color: np.ndarray, opacity: float) -> None:
    """Paint `color` through a uint8 (H, W) coverage mask, in place, within the mask's bounding box.

    image = image * (1 - a) + color * a, with a = mask / 255 * opacity.
    """
    x0, y0, w, h = cv2.boundingRect(mask)
    if w == 0 or h == 0:
        return
    x1, y1 = x0 + w, y0 + h
    a = mask[y0:y1, x0:x1, None].astype(np.float32) * (opacity / 255.0)
    roi = image[y0:y1, x0:x1]
    roi += a * (color - roi)


def _clutter_shape(rng: np.random.Generator, mask: np.ndarray) -> None:
    """Draw one filled rectangle, ellipse or polygon into `mask` (uint8, 255 = shape)."""
    h, w = mask.shape
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    size = rng.uniform(0.05, 0.4) * min(h, w)
    kind = int(rng.integers(3))
    if kind == 0:
        box = ((cx, cy), (size * rng.uniform(0.5, 2.0), size), rng.uniform(0, 180))
        cv2.fillPoly(
            mask, [np.round(cv2.boxPoints(box) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4
        )
    elif kind == 1:
        axes = (int(size), int(size * rng.uniform(0.3, 1.0)))
        cv2.ellipse(
            mask, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360, 255, -1, cv2.LINE_AA
        )
    else:
        n = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        radii = size * rng.uniform(0.4, 1.0, n)
        pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)


def _bezier(rng: np.random.Generator, start: np.ndarray, length: float, n: int = 24) -> np.ndarray:
    """A random cubic Bezier curve from `start`, about `length` pixels long: (n, 2) points."""
    ctrl = start + np.cumsum(rng.normal(0.0, length / 3.0, size=(4, 2)), axis=0)
    ctrl[0] = start
    t = np.linspace(0.0, 1.0, n)[:, None]
    basis = np.concatenate([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3], axis=1)
    return basis @ ctrl


def _distractor_stroke(rng: np.random.Generator, mask: np.ndarray) -> None:
    """A glyph-like stroke: a short thick curve, or a cluster of them."""
    h, w = mask.shape
    start = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    thickness = int(rng.integers(1, 7))
    for _ in range(int(rng.integers(1, 4))):
        pts = _bezier(rng, start, rng.uniform(8, 0.3 * min(h, w)))
        cv2.polylines(
            mask, [np.round(pts * 16).astype(np.int32)], False, 255, thickness, cv2.LINE_AA, 4
        )
        start = pts[-1]


def _segment(mask: np.ndarray, p0: np.ndarray, p1: np.ndarray, thickness: int) -> None:
    """Draw the anti-aliased segment `p0`-`p1` (sub-pixel ``(x, y)`` points) into `mask` in 255."""
    cv2.line(
        mask,
        tuple(np.round(p0 * 16).astype(int)),
        tuple(np.round(p1 * 16).astype(int)),
        255,
        thickness,
        cv2.LINE_AA,
        4,
    )


def _non_text_line(rng: np.random.Generator, mask: np.ndarray) -> None:
    """A long straight line across the image, or a fence/grille of parallel bars."""
    h, w = mask.shape
    a = rng.uniform(0, math.pi)
    direction = np.array([math.cos(a), math.sin(a)])
    centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    reach = 2.0 * (h + w)
    if rng.random() < 0.6:
        p0, p1 = centre - reach * direction, centre + reach * direction
        _segment(mask, p0, p1, int(rng.integers(1, 5)))
        return
    # Grille: parallel bars of equal length, evenly spaced (a frequent false positive for text).
    normal = np.array([-direction[1], direction[0]])
    n_bars = int(rng.integers(4, 12))
    spacing = rng.uniform(4, 14)
    length = rng.uniform(10, 0.5 * min(h, w))
    thickness = int(rng.integers(1, 4))
    for i in range(n_bars):
        mid = centre + (i - n_bars / 2) * spacing * direction
        p0, p1 = mid - 0.5 * length * normal, mid + 0.5 * length * normal
        _segment(mask, p0, p1, thickness)


_OVERLAYS = {
    "clutter_shapes": _clutter_shape,
    "distractor_strokes": _distractor_stroke,
    "non_text_lines": _non_text_line,
}


def make_background(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    kinds: Sequence[str] = ("flat", "gradient", "noise", "texture"),
    contrast: float = 80.0,
    clutter_shapes: Tuple[int, int] = (0, 4),
    distractor_strokes: Tuple[int, int] = (0, 3),
    non_text_lines: Tuple[int, int] = (0, 2),
) -> np.ndarray:
    """A procedural background with non-text clutter.

    Args:
        rng: random generator (all randomness comes from it).
        height, width: image size in pixels.
        kinds: base patterns to choose from uniformly (keys of :data:`BACKGROUND_KINDS`).
        contrast: largest per-channel difference between the base pattern's two colours.
        clutter_shapes: (min, max) number of filled shapes (rectangles, ellipses, polygons).
        distractor_strokes: (min, max) number of glyph-like curved strokes.
        non_text_lines: (min, max) number of long lines or parallel-bar grilles.

    Returns:
        (height, width, 3) float32 RGB in [0, 255].
    """
    unknown = set(kinds) - set(BACKGROUND_KINDS)
    if not kinds or unknown:
        raise ValueError(
            f"make_background: unknown background kinds {sorted(unknown)} (or none given); "
            f"choose from {sorted(BACKGROUND_KINDS)}"
        )
    kind = kinds[int(rng.integers(len(kinds)))]
    image = np.ascontiguousarray(BACKGROUND_KINDS[kind](rng, height, width, contrast), np.float32)
    counts = {
        "clutter_shapes": clutter_shapes,
        "distractor_strokes": distractor_strokes,
        "non_text_lines": non_text_lines,
    }
    mask = np.zeros((height, width), np.uint8)
    for name, (lo, hi) in counts.items():
        for _ in range(int(rng.integers(lo, hi + 1))):
            mask[:] = 0
            _OVERLAYS[name](rng, mask)
            blend_color(image, mask, random_color(rng), rng.uniform(0.4, 1.0))
    return np.clip(image, 0.0, 255.0, out=image)
