"""Options of the synthetic scene-text generator: :class:`SceneTextOptions` and difficulty presets.

Every field of :class:`SceneTextOptions` is a probability or a (low, high) range that
:func:`fasttcm.data.synthetic.scene_text.render_scene` samples from; :data:`DIFFICULTY_PRESETS`
names three settings (``"easy"``, ``"default"``, ``"hard"``).
"""

import dataclasses
from dataclasses import dataclass
from typing import Dict, Tuple

from .backgrounds import BACKGROUND_KINDS

__all__ = ["SceneTextOptions", "DIFFICULTY_PRESETS"]

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
