"""SynthText (Gupta et al., CVPR 2016; 858,750 synthetic images) -> project text JSON.

SynthText is the pretraining set of DBNet and TCM; it has a single split, ``train``, and no
evaluation ground truth is written for it (it is never a benchmark; an evaluator run on it scores
against the JSON, as for any split without ``gt_dir``). Its native ground truth, ``gt.mat``, is
read by :mod:`.synthtext_gt`.

Expected source layout (the official ``SynthText.zip`` extracted)::

    SRC/gt.mat
    SRC/1/ant+hill_1_0.jpg ... SRC/200/...

``--src`` may also name ``gt.mat`` itself; image paths are relative to its folder.

Outputs (``DST`` = ``$DETECTRON2_DATASETS/synthtext``)::

    DST/train.json      the project text JSON (schema in datasets/README.md); image ids are the
                        gt.mat order from 1, file_name is the imnames entry
    DST/train_images/   image_mode "copy": copies of the listed images, same sub-folders;
                        image_mode "symlink": one symlink to the source folder (no per-image links)

Conversion is streamed, a chunk of images at a time: ``gt.mat`` is read once (only the three cell
arrays it needs; an estimated 1-2 GB in memory for the full set), annotations are appended to a
temporary file as they are made, and the JSON is assembled from it at the end; nothing
proportional to the number of words is held in memory.

**Image sizes.** The JSON schema needs every image's height and width, and the dataset mappers
check them against the decoded image (``detection_utils.check_image_size``), so they must be
exact; SynthText images come in many sizes and ``gt.mat`` does not record them. The converter
therefore reads them once, here, from the image headers only
(:func:`fasttcm.data.converters.source_files.image_size`: PIL parses the JPEG markers up to the
frame header, no pixel is decoded), in a pool of threads so that disk latency overlaps. Training
never opens an image to learn its size. Measured on a synthetic set of 20,000 images with 8 words
each (files in the page cache, a busy 2-core machine): 0.09 ms per header, 0.2-0.3 ms per image
for the whole ``--images symlink`` conversion, i.e. about 3-4 minutes for SynthText's 858k images
plus reading ``gt.mat``; on a cold disk the header reads are bound by disk latency instead.

Bad input: malformed ``gt.mat`` content (see :mod:`.synthtext_gt`), a duplicate image path, or a
missing or unreadable image is a :class:`~fasttcm.data.converters.source_files.ConversionError`
naming ``gt.mat`` and the image index (0-based position in the cell arrays) with its name;
nothing is written then. Quadrilaterals that cannot be trained on are left out of the JSON and
counted, each kind in one warning with its count and an example:

* degenerate ones: non-finite coordinates, or a convex hull of less than ``min_area`` square
  pixels (coincident or collinear corners);
* ones lying entirely outside their image or degenerate after clipping to it (less than
  :data:`~fasttcm.data.image_bounds.MIN_CLIPPED_AREA` of them inside), judged on the written
  (rounded) corners by :mod:`fasttcm.data.image_bounds`, as the other converters and the loader
  do; the warning also counts the images these drops leave without any word.

Other quadrilaterals are kept as annotated (coordinates rounded to 0.01 px), including
self-intersecting ones (the loader repairs them) and ones that reach partly outside the image.
"""

import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import shapely

from ..image_bounds import MIN_CLIPPED_AREA, unusable_in_image
from .source_files import ConversionError, image_size
from .split_output import (
    IMAGE_MODES,
    SplitOutputs,
    build_output_dir,
    check_outputs_absent,
    remove_output,
)
from .synthtext_gt import GT_MAT_NAME, SynthTextImage, parse_synthtext_image, read_synthtext_gt
from .text_json import TextJsonStreamWriter

logger = logging.getLogger(__name__)

__all__ = ["SPLITS", "DEFAULT_MIN_AREA", "quad_hull_area", "convert"]

SPLITS = ("train",)
DEFAULT_MIN_AREA = 1.0
"""Quadrilaterals whose convex hull covers less than this many square pixels are degenerate."""

_CHUNK_SIZE = 4096  # images parsed, sized and written per step
_COORD_DECIMALS = 2
_DEFAULT_WORKERS = 8  # header reads are I/O bound: more threads than cores overlap disk latency


def quad_hull_area(quads: np.ndarray) -> np.ndarray:
    """Area of the convex hull of each quadrilateral's 4 corners.

    The hull of 4 points is the simple quadrilateral through them (when all 4 are extreme) or
    the triangle of 3 of them; any other polygon or triangle on these points covers less. So the
    hull area is the largest absolute shoelace area over the 3 cyclic vertex orders and the 4
    corner triangles. Self-intersecting ("bow-tie") corner orders therefore still count their full
    extent, and only coincident or collinear corners give 0.

    Args:
        quads: (M, 4, 2) corners.

    Returns:
        (M,) float64 areas in squared input units; NaN where a coordinate is not finite.
    """
    quads = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
    x, y = quads[..., 0], quads[..., 1]

    def shoelace(order):
        xs, ys = x[:, order], y[:, order]
        return 0.5 * np.abs(np.sum(xs * np.roll(ys, -1, axis=1) - np.roll(xs, -1, axis=1) * ys, 1))

    orders = ([0, 1, 2, 3], [0, 1, 3, 2], [0, 2, 1, 3], [0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3])
    with np.errstate(invalid="ignore", over="ignore"):  # inf/NaN corners: reported as NaN
        areas = np.stack([shoelace(o) for o in orders]).max(axis=0)
    return np.where(np.isfinite(quads).all(axis=(1, 2)), areas, np.nan)


def _source_paths(src) -> Tuple[Path, Path]:
    """(gt.mat, image root) from `src`: the folder holding gt.mat, or gt.mat itself."""
    src = Path(src)
    mat_path = src / GT_MAT_NAME if src.is_dir() else src
    if not mat_path.is_file():
        raise FileNotFoundError(
            f"SynthText ground truth not found: {mat_path} does not exist (--src must be the "
            f"extracted SynthText folder holding {GT_MAT_NAME} and the image folders 1..200, or "
            f"{GT_MAT_NAME} itself)"
        )
    return mat_path, mat_path.parent


def _batches(items: Sequence, num: int) -> List[Sequence]:
    """`items` cut into at most `num` contiguous, non-empty batches (one task per thread)."""
    step = max(1, -(-len(items) // num))
    return [items[i : i + step] for i in range(0, len(items), step)]


def _try_image_sizes(paths: Sequence[Path]) -> list:
    """(height, width) per path, or the ConversionError (returned: the caller names the index)."""
    sizes = []
    for path in paths:
        try:
            sizes.append(image_size(path))
        except ConversionError as e:
            sizes.append(e)
    return sizes


def _read_sizes(pool, workers: int, mat_path, images: Sequence[SynthTextImage], image_root: Path):
    """(height, width) of every image of a chunk, read from the headers by `pool`'s threads."""
    paths = [image_root / img.file_name for img in images]
    batches = pool.map(_try_image_sizes, _batches(paths, workers))
    sizes = [size for batch in batches for size in batch]
    for img, size in zip(images, sizes):
        if isinstance(size, Exception):
            raise ConversionError(
                mat_path, f"image {img.index} ({img.file_name}): {size}"
            ) from size
    return sizes


def _copy_files(pairs: Sequence[Tuple[Path, Path]]) -> None:
    for source, target in pairs:
        shutil.copy2(source, target)


def _copy_images(pool, workers: int, images, image_root: Path, out_dir: Path) -> None:
    """Copy a chunk's images from `image_root` to `out_dir` (same relative paths) in `pool`."""
    for parent in {(out_dir / img.file_name).parent for img in images}:
        parent.mkdir(parents=True, exist_ok=True)
    pairs = [(image_root / img.file_name, out_dir / img.file_name) for img in images]
    list(pool.map(_copy_files, _batches(pairs, workers)))


def _check_unique(mat_path, images: Sequence[SynthTextImage], seen: Dict[str, int]) -> None:
    """Raise if an image name repeats (within `images` or with `seen`, which is updated)."""
    for img in images:
        first = seen.setdefault(img.file_name, img.index)
        if first != img.index:
            raise ConversionError(
                mat_path,
                f"image {img.index}: {img.file_name} is listed twice (also as image {first})",
            )


class _DroppedWords:
    """Counts skipped quadrilaterals of one kind and remembers the first, for one warning."""

    def __init__(self):
        self.count = 0
        self.example = None
        self.emptied = 0  # images left without any word by these drops
        self.emptied_example = None

    def add(self, img: SynthTextImage, dropped: np.ndarray, note: str = "") -> None:
        """Count the words of `img` marked in bool `dropped` (its ``(K,)`` words)."""
        if dropped.any():
            self.count += int(dropped.sum())
            if self.example is None:
                k = int(np.flatnonzero(dropped)[0])
                self.example = (
                    f"image {img.index} ({img.file_name}{note}) word {k}: {img.quads[k].tolist()}"
                )

    def add_emptied(self, img: SynthTextImage) -> None:
        self.emptied += 1
        if self.emptied_example is None:
            self.emptied_example = f"image {img.index} ({img.file_name})"


def _usable_in_images(polygons: np.ndarray, keep: np.ndarray, heights, widths) -> np.ndarray:
    """Bool ``(M,)``: `keep` and not outside its image nor degenerate once clipped to it.

    Args:
        polygons: ``(M, 4, 2)`` corners in absolute pixels (x right, y down).
        keep: bool ``(M,)``, the quads that passed the degenerate test (finite corners).
        heights, widths: ``(M,)`` the size of each quad's image in pixels.
    """
    usable = keep.copy()
    if keep.any():
        geoms = shapely.polygons(polygons[keep])
        usable[keep] = ~unusable_in_image(geoms, heights[keep], widths[keep])
    return usable


def _add_chunk(
    writer, images, sizes, min_area: float, degenerate: _DroppedWords, outside: _DroppedWords
) -> None:
    """Add a chunk of images to `writer`, dropping degenerate quads and those outside their
    image (vectorized over the chunk)."""
    counts = np.array([len(img.quads) for img in images])
    quads = np.concatenate([img.quads for img in images]).reshape(-1, 4, 2)
    keep = quad_hull_area(quads) >= min_area  # NaN (non-finite corners) compares False
    polygons = np.round(quads, _COORD_DECIMALS)
    size_array = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)  # (height, width) per image
    heights, widths = np.repeat(size_array[:, 0], counts), np.repeat(size_array[:, 1], counts)
    usable = _usable_in_images(polygons, keep, heights, widths)
    ends = np.cumsum(counts)
    for img, size, lo, hi in zip(images, sizes, ends - counts, ends):
        kept, ok = keep[lo:hi], usable[lo:hi]
        degenerate.add(img, ~kept)
        outside.add(img, kept & ~ok, f", {size[1]}x{size[0]}")
        if kept.any() and not ok.any():
            outside.add_emptied(img)
        words = [word for word, good in zip(img.words, ok) if good]
        writer.add_image(img.index + 1, img.file_name, size, polygons[lo:hi][ok], words)


def convert(
    src,
    dst,
    *,
    gt_root=None,
    image_mode: str = "copy",
    overwrite: bool = False,
    min_area: float = DEFAULT_MIN_AREA,
    workers: int = _DEFAULT_WORKERS,
) -> Dict[str, SplitOutputs]:
    """Convert SynthText under `src` to ``dst/train.json`` and ``dst/train_images``.

    Args:
        src: the extracted SynthText folder (holding ``gt.mat``), or ``gt.mat`` itself.
        dst: output folder, e.g. ``$DETECTRON2_DATASETS/synthtext``.
        gt_root: must be None: SynthText is a training set and gets no evaluation GT files.
        image_mode: ``"copy"`` (copy every listed image) or ``"symlink"`` (``train_images``
            becomes one symlink to the source folder, which must then stay in place).
        overwrite: replace existing outputs; otherwise any existing output is an error.
        min_area: quadrilaterals whose convex hull is smaller (px^2) are skipped as degenerate.
        workers: threads reading image headers (and copying images).

    Returns:
        ``{"train": SplitOutputs}``; its ``gt_dir`` is None (no evaluation GT).

    Raises:
        FileNotFoundError: no ``gt.mat`` at `src`.
        FileExistsError: an output exists and `overwrite` is False (nothing is written).
        ValueError: bad arguments.
        ConversionError: malformed ``gt.mat`` content or a missing/unreadable image, naming the
            image index; nothing is written.
    """
    if gt_root is not None:
        raise ValueError(
            "SynthText is a training-only set: its converter writes no evaluation ground truth, "
            "so --gt-dir / gt_root does not apply"
        )
    if image_mode not in IMAGE_MODES:
        raise ValueError(f"image_mode must be 'copy' or 'symlink', got {image_mode!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    split = SPLITS[0]
    dst = Path(dst)
    json_file, image_dir = dst / f"{split}.json", dst / f"{split}_images"
    check_outputs_absent((json_file, image_dir), overwrite, split)
    mat_path, image_root = _source_paths(src)

    start = time.perf_counter()
    logger.info("Reading %s (imnames, wordBB, txt) ...", mat_path)
    imnames, word_bbs, txts = read_synthtext_gt(mat_path)
    num_images = len(imnames)
    if num_images == 0:
        raise ConversionError(mat_path, "lists no images")
    logger.info("%s: %d images (read in %.0f s)", mat_path, num_images, time.perf_counter() - start)

    dst.mkdir(parents=True, exist_ok=True)
    writer = TextJsonStreamWriter(json_file, f"SynthText ({split})")
    degenerate, outside, seen = _DroppedWords(), _DroppedWords(), {}

    def convert_images(copies: Optional[Path]) -> None:
        """Parse and size every image (copying it under `copies` unless None) into `writer`."""
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for first in range(0, num_images, _CHUNK_SIZE):
                stop = min(first + _CHUNK_SIZE, num_images)
                images = [
                    parse_synthtext_image(mat_path, i, imnames[i], word_bbs[i], txts[i])
                    for i in range(first, stop)
                ]
                _check_unique(mat_path, images, seen)
                sizes = _read_sizes(pool, workers, mat_path, images, image_root)
                if copies is not None:
                    _copy_images(pool, workers, images, image_root, copies)
                _add_chunk(writer, images, sizes, min_area, degenerate, outside)
                logger.info(
                    "SynthText: %d / %d images (%.0f s)",
                    stop,
                    num_images,
                    time.perf_counter() - start,
                )
        # Everything is parsed and every image was read: the outputs are swapped in, the JSON
        # last. The JSON marks a complete split, so an old one goes before the images change.
        if json_file.exists():
            json_file.unlink()

    try:
        if image_mode == "copy":
            build_output_dir(image_dir, convert_images)
        else:
            convert_images(None)
            remove_output(image_dir)
            os.symlink(os.path.abspath(image_root), image_dir, target_is_directory=True)
        writer.finish()
    except BaseException:
        writer.discard()
        raise

    if degenerate.count:
        logger.warning(
            "%s: skipped %d degenerate word quadrilateral(s) (non-finite corners or convex hull "
            "< %g px^2), e.g. %s",
            mat_path,
            degenerate.count,
            min_area,
            degenerate.example,
        )
    if outside.count:
        left = (
            f"; {outside.emptied} image(s) are left with no word by these drops, e.g. "
            f"{outside.emptied_example}: they add no positive to the text loss"
            if outside.emptied
            else ""
        )
        logger.warning(
            "%s: dropped %d word quadrilateral(s) lying outside their image or degenerate after "
            "clipping to it (less than %g square pixel inside), e.g. %s%s",
            mat_path,
            outside.count,
            MIN_CLIPPED_AREA,
            outside.example,
            left,
        )
    out = SplitOutputs(
        split=split,
        json_file=str(json_file),
        image_root=str(image_dir),
        gt_dir=None,
        num_images=num_images,
        num_annotations=writer.num_annotations,
        num_ignored=writer.num_ignored,
    )
    logger.info(
        "Wrote %s: %d images, %d words (%d degenerate and %d outside their image skipped) in "
        "%.0f s; images in %s",
        json_file,
        out.num_images,
        out.num_annotations,
        degenerate.count,
        outside.count,
        time.perf_counter() - start,
        image_dir,
    )
    return {split: out}
