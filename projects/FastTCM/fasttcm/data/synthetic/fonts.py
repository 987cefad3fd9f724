"""Fonts for synthetic text: the TrueType/OpenType files that installed packages ship.

Nothing is downloaded. The candidates are matplotlib's bundled fonts (``mpl-data/fonts/ttf``:
DejaVu Sans/Serif/Mono with their bold and oblique variants, STIX, the Computer Modern ``cm*``
files) plus every ``.ttf``/``.otf`` file listed in the installed distributions' file records, plus
optional extra folders. A font is kept only if it really draws the requested characters as text:

* every character is in its character map, mapped to pairwise distinct glyphs (this rejects
  "last resort" fonts that map everything to one placeholder box), and
* its glyph names, where they are meaningful, name the letters and digits they are mapped from
  (this rejects symbol fonts such as ``cmsy10``/``cmex10`` that reuse ASCII code points for math
  symbols, and ``cmmi10`` whose digits are old-style figures).

The result is sorted by file name and deduplicated by (family, style), so the same installation
always yields the same font list and, with it, byte-identical synthetic datasets for a seed.
"""

import functools
import importlib.metadata
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from fontTools import agl
from fontTools.ttLib import TTFont, TTLibError
from PIL import ImageFont

__all__ = ["FontSpec", "discover_fonts", "load_font"]

logger = logging.getLogger(__name__)

_FONT_SUFFIXES = (".ttf", ".otf")
# Share of the letters/digits whose glyph names must spell the character they are mapped from.
_MIN_NAMED_GLYPH_AGREEMENT = 0.9
_GENERIC_GLYPH_NAME = re.compile(r"^(glyph|gid|cid|g|index)\d+$")
# Fonts whose glyph names are right but whose drawings are not, by family name: TeX's text italic
# (cmti10) draws a pound sign in the slot it names "dollar".
_MISDRAWN_CHARACTERS = {"cmti10": "$"}


@dataclass(frozen=True)
class FontSpec:
    """One font file usable for synthetic text.

    Attributes:
        path: absolute path of the ``.ttf``/``.otf`` file.
        family: family name from the font's name table (e.g. "DejaVu Sans").
        style: subfamily name (e.g. "Bold Oblique").
    """

    path: str
    family: str
    style: str

    @property
    def name(self) -> str:
        """Human-readable name, e.g. "DejaVu Sans Bold"."""
        return f"{self.family} {self.style}"


def _matplotlib_font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@functools.lru_cache(maxsize=1)
def _installed_font_files() -> Tuple[Path, ...]:
    """Font files shipped by installed Python distributions (matplotlib included)."""
    candidates = []
    mpl_dir = _matplotlib_font_dir()
    if mpl_dir.is_dir():
        candidates.extend(mpl_dir.iterdir())
    for dist in importlib.metadata.distributions():
        for rel in dist.files or ():
            if rel.suffix.lower() in _FONT_SUFFIXES:
                candidates.append(Path(dist.locate_file(rel)))
    return tuple(
        sorted(
            {p.resolve() for p in candidates if p.suffix.lower() in _FONT_SUFFIXES and p.is_file()}
        )
    )


def _draws_charset(family: str, cmap: Dict[int, str], charset: str) -> bool:
    """Whether a font draws every character of `charset` as ordinary text.

    Args:
        family: the font's family name.
        cmap: the font's character map, code point -> glyph name.
        charset: the characters that must be drawable.

    Returns:
        True when all characters are mapped to distinct glyphs and the glyph names (where they are
        meaningful Adobe Glyph List names) agree with the letters and digits they are mapped from.
    """
    if set(_MISDRAWN_CHARACTERS.get(family, "")) & set(charset):
        return False
    if any(ord(c) not in cmap for c in charset):
        return False
    if len({cmap[ord(c)] for c in charset}) != len(set(charset)):
        return False
    # Glyph names say what a glyph draws, unless they are generic ("glyph00042", "cid123").
    named = [c for c in set(charset) if c.isalnum() and not _GENERIC_GLYPH_NAME.match(cmap[ord(c)])]
    agreeing = sum(agl.toUnicode(cmap[ord(c)]) == c for c in named)
    return agreeing >= _MIN_NAMED_GLYPH_AGREEMENT * len(named)


@functools.lru_cache(maxsize=None)
def _read_font_file(path: Path) -> Optional[Tuple[str, str, Dict[int, str]]]:
    """(family, style, character map) of a font file, or None if it cannot be read (cached)."""
    try:
        font = TTFont(str(path), lazy=True, fontNumber=0)
        try:
            family = font["name"].getDebugName(1) or path.stem
            style = font["name"].getDebugName(2) or "Regular"
            cmap = dict(font.getBestCmap() or {})
        finally:
            font.close()
    except (TTLibError, OSError, KeyError, AssertionError) as e:
        logger.debug("Skipping font %s: %s", path, e)
        return None
    return family, style, cmap


@functools.lru_cache(maxsize=8)
def discover_fonts(charset: str, extra_dirs: Tuple[str, ...] = ()) -> Tuple[FontSpec, ...]:
    """Find the installed fonts that draw `charset`.

    Args:
        charset: characters every returned font must draw (e.g. letters, digits, punctuation).
        extra_dirs: additional folders searched (non-recursively) for ``.ttf``/``.otf`` files.

    Returns:
        The usable fonts, sorted by file name and deduplicated by (family, style).

    Raises:
        FileNotFoundError: if an extra folder does not exist.
        RuntimeError: if no installed font draws `charset`.
    """
    missing = [d for d in extra_dirs if not Path(d).is_dir()]
    if missing:
        raise FileNotFoundError(f"discover_fonts: font folder(s) {missing} do not exist")
    paths = set(_installed_font_files())
    for d in extra_dirs:
        paths.update(p.resolve() for p in Path(d).iterdir() if p.suffix.lower() in _FONT_SUFFIXES)

    fonts, seen = [], set()
    for path in sorted(paths, key=lambda p: (p.name, str(p))):
        info = _read_font_file(path)
        if info is None or not _draws_charset(info[0], info[2], charset):
            continue
        if info[:2] not in seen:
            seen.add(info[:2])
            fonts.append(FontSpec(str(path), info[0], info[1]))
    if not fonts:
        raise RuntimeError(
            f"discover_fonts: no installed font draws all of {charset!r}; searched matplotlib's "
            f"{_matplotlib_font_dir()}, the installed packages and {list(extra_dirs)}"
        )
    return tuple(fonts)


@functools.lru_cache(maxsize=1024)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """A Pillow font object of `size` pixels per em (cached).

    The basic layout engine is used on purpose: it does not depend on the system's libraqm, so the
    rendered pixels are the same on every installation with the same font files.
    """
    if size < 1:
        raise ValueError(f"load_font: font size must be >= 1 pixel, got {size} for {path}")
    return ImageFont.truetype(path, size=size, layout_engine=ImageFont.Layout.BASIC)
