"""Reusable word rendering: text sampling, a horizontal glyph mask, and its warp into an image.

A word goes through three frames:

1. **Source**: the horizontal word mask of :func:`render_word_mask`, an ink-tight alpha array
   (h, w) with a small padding. Its continuous frame spans ``[0, w] x [0, h]``.
2. **Bent plane** (origin at the centre of the word's middle line, x right, y down): the source is
   bent along a circular arc of signed curvature ``k`` (1/px; ``k > 0`` an arch whose ends bend
   down, ``k < 0`` a smile, ``k == 0`` straight). Arc length along the middle line is preserved.
3. **Output image**: a 3x3 homography (3-D tilt, in-plane rotation, translation) maps the bent
   plane to absolute output pixels.

Output coordinates follow detectron2/COCO: the image spans ``[0, W] x [0, H]`` and pixel (row r,
column c) has its centre at ``(c + 0.5, r + 0.5)``. Rotation angles are in degrees,
counter-clockwise as seen in the image (the detectron2 XYWHA convention: cx, cy, w, h, angle).

Polygons (:meth:`WordGeometry.polygon`) start at the word's top-left and run along the top edge in
reading order, then back along the bottom edge: 4 points for straight text (top-left, top-right,
bottom-right, bottom-left) and 2n points for curved text (n along the top left->right, n along the
bottom right->left). They are clockwise in image coordinates (positive shoelace area with y down)
and enclose every ink pixel of the warped word: on the convex side of a curved word the vertices
are pushed out so that each polygon edge is tangent to the arc instead of cutting through it.
"""

import math
import string
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image, ImageDraw

from .fonts import FontSpec, load_font

__all__ = [
    "DEFAULT_CHARSET",
    "VOCABULARY",
    "sample_text",
    "WordMask",
    "render_word_mask",
    "WordGeometry",
    "make_word_geometry",
]

# Characters the synthetic text uses ('#' is left out: "###" marks don't-care regions).
DEFAULT_CHARSET = string.ascii_letters + string.digits + "-.&'!:/$%@?"

# Common English words, frequent on signs, shop fronts, labels and posters (duplicates dropped).
VOCABULARY = tuple(
    dict.fromkeys(
        """
    the and for you with this that from your all new more open free sale shop city road street
    park hotel cafe bar bank store market food coffee tea pizza bread fresh hot cold menu price
    best good great time day night today now here there exit entry enter push pull stop slow go
    left right north south east west main center centre station bus train taxi air port gate
    parking only no yes do not way one two three four five six ten first last next back home
    house room floor office service help info information call phone mail post news star sun
    moon sky blue red green black white gold silver light dark world life love music art show
    film photo book books school college library museum theatre cinema club sport sports team
    game play kids family health care clinic doctor pharmacy hospital police fire safety warning
    danger caution closed welcome thank thanks please sorry special offer discount deal save buy
    sell rent lease for sale big small large little fast quick easy simple happy lucky royal grand
    royal king queen prince garden river lake sea ocean beach island mountain hill valley forest
    tree flower rose spring summer autumn winter water wine beer juice milk cake ice cream burger
    chicken fish rice noodle soup salad grill kitchen restaurant bakery butcher market fashion
    style beauty hair nail spa gym fitness yoga dance studio design print copy repair auto car
    motor tire wash clean laundry dry express delivery online open daily hours welcome visit
    tour travel guide ticket tickets sale new limited edition original classic modern vintage
    local global national public private general central union united street avenue lane drive
    square plaza tower bridge hall court way place point corner garage shed barn farm field
    """.split()
    )
)


def sample_text(
    rng: np.random.Generator,
    *,
    alnum_prob: float = 0.2,
    line_prob: float = 0.0,
    max_line_words: int = 3,
) -> str:
    """Draw a word, a random alphanumeric token, or a short line of words.

    Args:
        rng: the random generator (all randomness comes from it).
        alnum_prob: probability of a random alphanumeric token (codes, numbers, prices, phone
            numbers) instead of a vocabulary word.
        line_prob: probability of a short line of 2..`max_line_words` words joined by spaces.
        max_line_words: longest line, in words.

    Returns:
        Text over :data:`DEFAULT_CHARSET` plus spaces, containing at least one letter or digit.
    """
    n_words = int(rng.integers(2, max_line_words + 1)) if rng.random() < line_prob else 1
    case = rng.choice(3, p=(0.4, 0.3, 0.3))  # lower, Title, UPPER: one casing per line
    words = []
    for _ in range(n_words):
        if rng.random() < alnum_prob:
            words.append(_random_token(rng))
            continue
        word = VOCABULARY[int(rng.integers(len(VOCABULARY)))]
        words.append((word.lower(), word.title(), word.upper())[case])
    text = " ".join(words)
    if rng.random() < 0.05:
        text += "!.:"[int(rng.integers(3))]
    return text


def _random_token(rng: np.random.Generator) -> str:
    kind = int(rng.integers(4))
    digits = string.digits
    if kind == 0:  # code such as "A7X2"
        pool = string.ascii_uppercase + digits
        return "".join(pool[i] for i in rng.integers(len(pool), size=int(rng.integers(2, 8))))
    if kind == 1:  # number
        return "".join(digits[i] for i in rng.integers(10, size=int(rng.integers(1, 6))))
    if kind == 2:  # price
        return f"${int(rng.integers(1, 1000))}.{int(rng.integers(100)):02d}"
    return f"{int(rng.integers(100, 1000))}-{int(rng.integers(1000, 10000))}"  # phone number


@dataclass(frozen=True)
class WordMask:
    """A horizontal word rendered as an ink-tight alpha mask.

    Attributes:
        alpha: (h, w) float32 in [0, 1]; the glyph ink, cropped to the ink's bounding box and then
            padded by `pad` pixels on every side.
        text: the rendered text.
        font: the font it was rendered with.
        font_size: pixels per em of the rendering.
        pad: padding around the ink, in pixels.
    """

    alpha: np.ndarray
    text: str
    font: FontSpec
    font_size: int
    pad: int

    @property
    def shape(self) -> Tuple[int, int]:
        """(h, w) of the mask."""
        return self.alpha.shape


def _draw_ink(text: str, font: FontSpec, size: int) -> np.ndarray:
    """Ink of `text` at `size` px/em, cropped to its bounding box: (h, w) uint8."""
    pil_font = load_font(font.path, size)
    left, top, right, bottom = pil_font.getbbox(text)
    margin = 2 + size // 4  # room for glyphs overhanging their advance box
    canvas = Image.new("L", (right - left + 2 * margin, bottom - top + 2 * margin), 0)
    ImageDraw.Draw(canvas).text((margin - left, margin - top), text, font=pil_font, fill=255)
    ink = np.asarray(canvas)
    rows = np.flatnonzero(ink.max(axis=1))
    cols = np.flatnonzero(ink.max(axis=0))
    if rows.size == 0:
        raise ValueError(f"render_word_mask: font {font.path} draws no ink for {text!r}")
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def render_word_mask(text: str, font: FontSpec, height: float, *, pad: int = 1) -> WordMask:
    """Render `text` horizontally so that its ink is about `height` pixels tall.

    The font size is solved for the requested ink height (one trial rendering, one final), so
    glyphs are drawn at their final size and never resampled here.

    Args:
        text: the text; must contain a visible character.
        font: font to draw with.
        height: target ink height in pixels (top of the tallest glyph to the bottom of the lowest).
        pad: pixels of empty border added around the ink (room for blur or an outline).

    Returns:
        The :class:`WordMask`.
    """
    if not text.strip():
        raise ValueError(f"render_word_mask: nothing to draw in {text!r}")
    if not height >= 2:
        raise ValueError(f"render_word_mask: height must be >= 2 pixels, got {height}")
    if pad < 0:
        raise ValueError(f"render_word_mask: pad must be >= 0, got {pad}")
    size = max(2, round(height / 0.75))  # ink of mixed-case words spans about 0.75 em
    ink = _draw_ink(text, font, size)
    final_size = int(np.clip(round(size * height / ink.shape[0]), 2, 4 * height + 2))
    if final_size != size:
        size, ink = final_size, _draw_ink(text, font, final_size)
    alpha = np.pad(ink, pad).astype(np.float32) * np.float32(1.0 / 255.0)
    return WordMask(alpha=alpha, text=text, font=font, font_size=size, pad=pad)


def _bend_forward(s: np.ndarray, d: np.ndarray, k: float) -> Tuple[np.ndarray, np.ndarray]:
    """Bent-plane (x, y) of the point at arc length `s` along, and `d` above, the middle line."""
    if k == 0.0:
        return s, -d
    ks = k * s
    return np.sin(ks) * (1.0 / k + d), (1.0 - np.cos(ks)) / k - d * np.cos(ks)


def _bend_inverse(x: np.ndarray, y: np.ndarray, k: float) -> Tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`_bend_forward`: (s, d) of bent-plane points (x, y)."""
    if k == 0.0:
        return x, -y
    # The circle's centre is (0, 1/k); m = 1/k + d is the signed distance to it.
    dy = y - 1.0 / k
    m = math.copysign(1.0, k) * np.hypot(x, dy)
    with np.errstate(divide="ignore", invalid="ignore"):
        angle = np.arctan2(x / m, -dy / m)
    return angle / k, m - 1.0 / k


@dataclass(frozen=True)
class WordGeometry:
    """Where a word mask of size (height, width) lands in an output image.

    Attributes:
        width: source mask width w in pixels.
        height: source mask height h in pixels.
        curvature: signed curvature k of the middle line, 1/px (0: straight; > 0: arch; < 0: smile).
        homography: (3, 3) float64, bent plane -> absolute output pixels.
        num_side_points: polygon points per long side (2 for a 4-point quadrilateral).
    """

    width: float
    height: float
    curvature: float
    homography: np.ndarray
    num_side_points: int

    def translated(self, dx: float, dy: float) -> "WordGeometry":
        """The same geometry moved by (dx, dy) output pixels."""
        shift = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])
        return WordGeometry(
            self.width, self.height, self.curvature, shift @ self.homography, self.num_side_points
        )

    def _to_output(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        pts = self.homography @ np.stack([x, y, np.ones_like(x)])
        return (pts[:2] / pts[2]).T

    def polygon(self) -> np.ndarray:
        """Enclosing polygon in absolute output pixels.

        Returns:
            (2n, 2) float64 (x, y): n points along the top edge left->right, then n along the
            bottom edge right->left (n = `num_side_points`; 4 points for a straight word).
        """
        w, h, k, n = self.width, self.height, self.curvature, self.num_side_points
        s = np.linspace(-w / 2.0, w / 2.0, n)
        d_top, d_bottom = h / 2.0, -h / 2.0
        if k != 0.0:
            # Push the convex side out so that every chord is tangent to the arc.
            half_step = 0.5 * abs(k) * w / (n - 1)
            outer = math.copysign(h / 2.0, k)
            pushed = (1.0 / k + outer) / math.cos(half_step) - 1.0 / k
            d_top, d_bottom = (pushed, d_bottom) if k > 0 else (d_top, pushed)
        top = _bend_forward(s, np.full(n, d_top), k)
        bottom = _bend_forward(s[::-1], np.full(n, d_bottom), k)
        x = np.concatenate([top[0], bottom[0]])
        y = np.concatenate([top[1], bottom[1]])
        return self._to_output(x, y)

    def warp(
        self, alpha: np.ndarray, image_size: Tuple[int, int], margin: int = 0
    ) -> Tuple[np.ndarray, Tuple[int, int]]:
        """Warp a source mask into the output image, within the polygon's bounding box.

        Args:
            alpha: (h, w) float32 source mask; (h, w) must equal (`height`, `width`).
            image_size: (H, W) of the output image.
            margin: extra pixels added around the polygon's bounding box.

        Returns:
            (roi, (x0, y0)): the warped mask as an (h', w') float32 array whose pixel (0, 0) is the
            output pixel (row y0, column x0); empty if the word lies outside the image.
        """
        if alpha.shape != (round(self.height), round(self.width)):
            raise ValueError(
                f"WordGeometry.warp: mask shape {alpha.shape} does not match the geometry's "
                f"(height, width) = ({self.height}, {self.width})"
            )
        img_h, img_w = image_size
        poly = self.polygon()
        x0 = max(0, int(math.floor(poly[:, 0].min())) - margin)
        y0 = max(0, int(math.floor(poly[:, 1].min())) - margin)
        x1 = min(img_w, int(math.ceil(poly[:, 0].max())) + margin)
        y1 = min(img_h, int(math.ceil(poly[:, 1].max())) + margin)
        if x1 <= x0 or y1 <= y0:
            return np.zeros((0, 0), np.float32), (x0, y0)
        xs, ys = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
        inv = np.linalg.inv(self.homography)
        px = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
        py = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
        pz = inv[2, 0] * xs + inv[2, 1] * ys + inv[2, 2]
        behind = pz <= 0  # points the tilted plane never reaches
        pz = np.where(behind, 1.0, pz)
        s, d = _bend_inverse(px / pz, py / pz, self.curvature)
        # Source continuous coordinates -> OpenCV's pixel-centre coordinates.
        map_x = (s + self.width / 2.0 - 0.5).astype(np.float32)
        map_y = (self.height / 2.0 - d - 0.5).astype(np.float32)
        invalid = behind | ~np.isfinite(map_x) | ~np.isfinite(map_y)
        map_x[invalid] = -2.0
        map_y[invalid] = -2.0
        roi = cv2.remap(
            alpha, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        return roi, (x0, y0)


def make_word_geometry(
    mask_shape: Tuple[int, int],
    *,
    center: Sequence[float] = (0.0, 0.0),
    angle_deg: float = 0.0,
    tilt_deg: Tuple[float, float] = (0.0, 0.0),
    arc_deg: float = 0.0,
    num_side_points: Optional[int] = None,
    focal_scale: float = 1.5,
) -> WordGeometry:
    """Build the geometry of one word.

    Args:
        mask_shape: (h, w) of the word mask.
        center: output position (x, y), absolute pixels, of the centre of the word's middle line.
        angle_deg: in-plane rotation, degrees, counter-clockwise as seen in the image.
        tilt_deg: 3-D tilt (about the word's vertical axis, about its horizontal axis), degrees,
            each in [-60, 60]; gives the perspective foreshortening of a tilted sign.
        arc_deg: signed total bend of the middle line, degrees (> 0: arch, < 0: smile). The arc's
            inner radius must stay >= h/2, i.e. ``|arc| <= w / h`` radians.
        num_side_points: polygon points per long side; default 2 for straight and 8 for curved
            text. At least 2, and at least 3 for curved text.
        focal_scale: focal length of the tilt's pinhole camera, in units of the mask diagonal.

    Returns:
        The :class:`WordGeometry`.
    """
    h, w = mask_shape
    if h < 1 or w < 1:
        raise ValueError(f"make_word_geometry: empty mask shape {mask_shape}")
    if any(abs(t) > 60.0 for t in tilt_deg):
        raise ValueError(f"make_word_geometry: tilt_deg {tilt_deg} outside [-60, 60]")
    k = math.radians(arc_deg) / w
    if k != 0.0 and 1.0 / abs(k) < h:
        raise ValueError(
            f"make_word_geometry: arc of {arc_deg} degrees is too strong for a {w}x{h} word "
            f"(radius {1.0 / abs(k):.1f} px < word height {h} px)"
        )
    if num_side_points is None:
        num_side_points = 2 if k == 0.0 else 8
    if num_side_points < (3 if k != 0.0 else 2):
        raise ValueError(f"make_word_geometry: num_side_points={num_side_points} is too few")

    f = focal_scale * math.hypot(w, h)
    yaw, pitch = (math.radians(t) for t in tilt_deg)
    rot_y = np.array(
        [[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]]
    )
    rot_x = np.array(
        [[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]]
    )
    r = rot_x @ rot_y
    # The plane z = f (camera at the origin) tilted about its centre, projected back onto z = f.
    tilt = np.diag([f, f, 1.0]) @ np.array(
        [[r[0, 0], r[0, 1], 0.0], [r[1, 0], r[1, 1], 0.0], [r[2, 0], r[2, 1], f]]
    )
    tilt /= tilt[2, 2]
    a = math.radians(angle_deg)
    # Counter-clockwise on screen with y pointing down.
    rotate = np.array(
        [[math.cos(a), math.sin(a), 0.0], [-math.sin(a), math.cos(a), 0.0], [0, 0, 1]]
    )
    move = np.array([[1.0, 0.0, center[0]], [0.0, 1.0, center[1]], [0.0, 0.0, 1.0]])
    return WordGeometry(float(w), float(h), k, move @ rotate @ tilt, int(num_side_points))
