"""SynthText (Gupta et al., CVPR 2016; 858,750 synthetic images) -> project text JSON.

SynthText is the pretraining set of DBNet and TCM; it has a single split, ``train``, and no
evaluation ground truth is written for it (it is never a benchmark; an evaluator run on it scores
against the JSON, as for any split without ``gt_dir``).

Native format: one MATLAB v5 file ``gt.mat`` next to the image folders, holding (1, N) cell
arrays, one cell per image, in the same order:

* ``imnames{i}``: the image path relative to the folder of ``gt.mat``, e.g. ``8/ballet_106_0.jpg``.
* ``wordBB{i}``: the word quadrilaterals, a (2, 4, K) array: ``wordBB{i}(1, c, k)`` and
  ``wordBB{i}(2, c, k)`` are x and y (absolute pixels, x right, y down) of corner c of word k,
  corners in the order top-left, top-right, bottom-right, bottom-left of the word (clockwise on
  screen). MATLAB drops the trailing singleton dimension, so an image with one word has a
  (2, 4) array.
* ``txt{i}``: the text instances rendered into the image (a char matrix, rows padded with spaces,
  or a cell of strings); their whitespace-separated tokens, in order, are the K words, one per
  quadrilateral (lines of a multi-line instance are separated by newlines).
* ``charBB{i}``: character boxes; not read (it is most of the file).

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
arrays above; an estimated 1-2 GB in memory for the full set), annotations are appended to a
temporary file as they are made, and the JSON is assembled from it at the end; nothing
proportional to the number of words is held in memory.

**Image sizes.** The JSON schema needs every image's height and width, and the dataset mappers
check them against the decoded image (``detection_utils.check_image_size``), so they must be
exact; SynthText images come in many sizes and ``gt.mat`` does not record them. The converter
therefore reads them once, here, from the image headers only
(:func:`fasttcm.data.converters.common.image_size`: PIL parses the JPEG markers up to the frame
header, no pixel is decoded), in a pool of threads so that disk latency overlaps. Training never
opens an image to learn its size. Measured on a synthetic set of 20,000 images with 8 words each
(files in the page cache, a busy 2-core machine): 0.09 ms per header, 0.2-0.3 ms per image for the
whole ``--images symlink`` conversion, i.e. about 3-4 minutes for SynthText's 858k images plus
reading ``gt.mat``; on a cold disk the header reads are bound by disk latency instead.

Bad input: a missing or unreadable ``gt.mat``, missing variables, cell arrays of different
lengths, a malformed cell, a word/box count mismatch, a duplicate or unsafe image path, or a
missing or unreadable image is a :class:`~fasttcm.data.converters.common.ConversionError` naming
``gt.mat`` and the image index (0-based position in the cell arrays) with its name; nothing is
written then. Degenerate quadrilaterals (non-finite coordinates, or a convex hull of less than
``min_area`` square pixels: coincident or collinear corners) are skipped, and one warning gives
their count and an example. Other quadrilaterals are kept as annotated (coordinates rounded to
0.01 px), including self-intersecting ones (the loader repairs them) and ones that reach outside
the image.
"""

import itertools
import json
import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...utils.atomic_io import atomic_open
from .common import (
    DONT_CARE_TEXT,
    JSON_SCHEMA_VERSION,
    ConversionError,
    SplitOutputs,
    _fresh_tmp_dir,
    _replace_dir_atomic,
    image_size,
)

logger = logging.getLogger(__name__)

__all__ = [
    "SPLITS",
    "GT_MAT_NAME",
    "DEFAULT_MIN_AREA",
    "SynthTextImage",
    "read_synthtext_gt",
    "parse_synthtext_image",
    "quad_hull_area",
    "convert",
]

SPLITS = ("train",)
GT_MAT_NAME = "gt.mat"
DEFAULT_MIN_AREA = 1.0
"""Quadrilaterals whose convex hull covers less than this many square pixels are degenerate."""

_MAT_VARIABLES = ("imnames", "wordBB", "txt")
_CHUNK_SIZE = 4096  # images parsed, sized and written per step
_COORD_DECIMALS = 2
_DEFAULT_WORKERS = 8  # header reads are I/O bound: more threads than cores overlap disk latency


@dataclass
class SynthTextImage:
    """One image of ``gt.mat``.

    Attributes:
        index: 0-based position in the cell arrays.
        file_name: image path relative to the folder of ``gt.mat`` (POSIX separators).
        quads: (K, 4, 2) float64, word quadrilaterals in absolute pixels (x right, y down),
            corners top-left, top-right, bottom-right, bottom-left of the word.
        words: the K transcriptions, ``words[k]`` belonging to ``quads[k]``.
    """

    index: int
    file_name: str
    quads: np.ndarray
    words: List[str]


def read_synthtext_gt(mat_path) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read ``imnames``, ``wordBB`` and ``txt`` from a SynthText ``gt.mat`` (``charBB`` is skipped).

    Args:
        mat_path: path of ``gt.mat`` (MATLAB v5).

    Returns:
        Three (N,) object arrays, one cell per image, as ``scipy.io.loadmat`` returns them.

    Raises:
        FileNotFoundError: `mat_path` does not exist.
        ConversionError: not a readable MATLAB v5 file, a variable is missing or is not a cell
            array, or the three have different lengths.
    """
    import scipy.io  # imported here: only this converter needs scipy

    mat_path = os.fspath(mat_path)
    if not os.path.isfile(mat_path):
        raise FileNotFoundError(f"SynthText ground truth {mat_path} does not exist")
    try:
        mat = scipy.io.loadmat(mat_path, variable_names=_MAT_VARIABLES)
    except NotImplementedError as e:  # scipy's answer to MATLAB v7.3 (HDF5) files
        raise ConversionError(
            mat_path, f"not a MATLAB v5 file ({e}); SynthText's gt.mat is v5, re-save it as such"
        ) from e
    except (OSError, ValueError, TypeError) as e:  # scipy.io.matlab.MatReadError is a ValueError
        raise ConversionError(mat_path, f"cannot read the MATLAB file ({e})") from e
    missing = [name for name in _MAT_VARIABLES if name not in mat]
    if missing:
        raise ConversionError(
            mat_path,
            f"missing variable(s) {missing}; a SynthText gt.mat has {list(_MAT_VARIABLES)}",
        )
    cells = []
    for name in _MAT_VARIABLES:
        value = mat[name]
        if not isinstance(value, np.ndarray) or value.dtype != object or value.ndim != 2:
            raise ConversionError(
                mat_path,
                f"{name!r} must be a cell array, got {type(value).__name__} "
                f"{getattr(value, 'dtype', '')} {getattr(value, 'shape', '')}".rstrip(),
            )
        if 1 not in value.shape:
            raise ConversionError(
                mat_path, f"{name!r} must be a (1, N) cell array, got shape {value.shape}"
            )
        cells.append(value.reshape(-1))
    lengths = {name: len(c) for name, c in zip(_MAT_VARIABLES, cells)}
    if len(set(lengths.values())) != 1:
        raise ConversionError(mat_path, f"the cell arrays have different lengths: {lengths}")
    return tuple(cells)


def _strings(value) -> List[str]:
    """All strings in a MATLAB char array / cell of char arrays, in order (recursively)."""
    if isinstance(value, str):
        return [value]
    arr = np.asarray(value)
    if arr.dtype.kind == "U":
        return [str(s) for s in arr.reshape(-1)]
    if arr.dtype == object:
        return [s for item in arr.reshape(-1) for s in _strings(item)]
    if arr.size == 0:
        return []
    raise TypeError(f"expected text, got a {arr.dtype} array of shape {arr.shape}")


def _check_file_name(name: str) -> Optional[str]:
    """Why `name` cannot be an image path relative to the image root, or None if it can."""
    if not name:
        return "empty image name"
    if "\\" in name:
        return f"image name {name!r} must use '/' separators"
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
        return f"image name {name!r} must be relative to the folder of gt.mat, without '..'"
    return None


def parse_synthtext_image(mat_path, index: int, imname, word_bb, txt) -> SynthTextImage:
    """Parse the cells of one image.

    Args:
        mat_path: path of ``gt.mat``, for messages.
        index: 0-based image index, for messages.
        imname, word_bb, txt: the image's ``imnames``, ``wordBB`` and ``txt`` cells.

    Returns:
        :class:`SynthTextImage` with all K quadrilaterals (degenerate ones included).

    Raises:
        ConversionError: a malformed cell or a word/box count mismatch, naming `mat_path`,
            `index` and the image name.
    """
    try:
        names = _strings(imname)
    except TypeError as e:
        raise ConversionError(mat_path, f"image {index}: imnames cell: {e}") from e
    if len(names) != 1:
        raise ConversionError(
            mat_path, f"image {index}: imnames cell must hold one string, got {names!r}"
        )
    file_name = names[0]
    problem = _check_file_name(file_name)
    if problem:
        raise ConversionError(mat_path, f"image {index}: {problem}")
    where = f"image {index} ({file_name})"

    boxes = np.asarray(word_bb)
    if boxes.dtype == object or not np.issubdtype(boxes.dtype, np.number):
        raise ConversionError(mat_path, f"{where}: wordBB must be numeric, got {boxes.dtype}")
    if boxes.size == 0:
        quads = np.zeros((0, 4, 2))
    elif boxes.shape == (2, 4):  # one word: MATLAB dropped the trailing singleton dimension
        quads = boxes.T[None].astype(np.float64)
    elif boxes.ndim == 3 and boxes.shape[:2] == (2, 4):
        quads = boxes.transpose(2, 1, 0).astype(np.float64)  # (2, 4, K) -> (K, 4, 2)
    else:
        raise ConversionError(
            mat_path, f"{where}: wordBB has shape {boxes.shape}, expected (2, 4, K) or (2, 4)"
        )

    try:
        words = " ".join(_strings(txt)).split()
    except TypeError as e:
        raise ConversionError(mat_path, f"{where}: txt cell: {e}") from e
    if len(words) != len(quads):
        raise ConversionError(
            mat_path,
            f"{where}: {len(quads)} word box(es) in wordBB but {len(words)} word(s) in txt "
            f"{words[:8]!r}{' ...' if len(words) > 8 else ''}",
        )
    return SynthTextImage(index=index, file_name=file_name, quads=quads, words=words)


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


class _TextJsonWriter:
    """Builds a split's text JSON image by image, without holding its annotations in memory.

    Image objects are kept serialized in memory (~100 bytes each); annotation objects are appended
    to a temporary file next to the output. :meth:`finish` assembles the JSON from both, atomically.
    """

    def __init__(self, json_file: Path, description: str):
        self.json_file, self.description = json_file, description
        fd, self._fragment = tempfile.mkstemp(
            prefix=f".{json_file.name}.", suffix=".annotations.tmp", dir=json_file.parent
        )
        self._annotations = os.fdopen(fd, "w", encoding="utf-8")
        self._images: List[str] = []
        self.num_annotations = 0
        self.num_ignored = 0

    def add_image(self, image_id: int, file_name: str, size, polygons, words) -> None:
        """Add an image and its words.

        Args:
            size: (height, width) of the image.
            polygons: (K, 4, 2) word quadrilaterals (absolute pixels).
            words: the K transcriptions.
        """
        height, width = size
        self._images.append(
            json.dumps(
                {"id": image_id, "file_name": file_name, "height": height, "width": width},
                ensure_ascii=False,
            )
        )
        first_id = self.num_annotations + 1
        annotations = [
            {
                "id": ann_id,
                "image_id": image_id,
                "polygon": polygon,
                "text": text,
                "ignore": text == DONT_CARE_TEXT,
            }
            for ann_id, polygon, text in zip(
                itertools.count(first_id), np.asarray(polygons).tolist(), words
            )
        ]
        if annotations:
            self.num_annotations += len(annotations)
            self.num_ignored += sum(a["ignore"] for a in annotations)
            separator = "," if first_id > 1 else ""  # after earlier images' objects
            # one dumps call per image; [1:-1] strips the list brackets
            self._annotations.write(separator + json.dumps(annotations, ensure_ascii=False)[1:-1])

    def finish(self) -> None:
        """Write the JSON (temporary file + rename) and remove the annotation fragment."""
        self._annotations.close()
        info = {"description": self.description, "version": JSON_SCHEMA_VERSION}
        with atomic_open(self.json_file, "w", encoding="utf-8") as out:
            out.write('{"info": ' + json.dumps(info) + ', "images": [')
            out.write(",".join(self._images))
            out.write('], "annotations": [')
            with open(self._fragment, "r", encoding="utf-8") as fragment:
                shutil.copyfileobj(fragment, out, length=1 << 22)
            out.write('], "categories": [{"id": 1, "name": "text"}]}')
        self.discard()

    def discard(self) -> None:
        """Remove the temporary annotation fragment (the JSON, if written, stays)."""
        self._annotations.close()
        if os.path.exists(self._fragment):
            os.unlink(self._fragment)


def _batches(items: Sequence, num: int) -> List[Sequence]:
    """`items` cut into at most `num` contiguous, non-empty batches (one task per thread)."""
    step = max(1, -(-len(items) // num))
    return [items[i : i + step] for i in range(0, len(items), step)]


def _try_image_sizes(paths: Sequence[Path]) -> list:
    """(height, width) per path, or the ConversionError (returned, so the caller names the index)."""
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


class _DegenerateWords:
    """Counts skipped degenerate quadrilaterals and remembers the first, for one warning."""

    def __init__(self):
        self.count = 0
        self.example = None

    def add(self, img: SynthTextImage, kept: np.ndarray) -> None:
        if not kept.all():
            self.count += int((~kept).sum())
            if self.example is None:
                k = int(np.flatnonzero(~kept)[0])
                self.example = (
                    f"image {img.index} ({img.file_name}) word {k}: {img.quads[k].tolist()}"
                )


def _add_chunk(writer, images, sizes, min_area: float, degenerate: _DegenerateWords) -> None:
    """Add a chunk of images to `writer`, dropping degenerate quads (one vectorized test)."""
    counts = np.array([len(img.quads) for img in images])
    quads = np.concatenate([img.quads for img in images]).reshape(-1, 4, 2)
    keep = quad_hull_area(quads) >= min_area  # NaN (non-finite corners) compares False
    polygons = np.round(quads, _COORD_DECIMALS)
    ends = np.cumsum(counts)
    for img, size, lo, hi in zip(images, sizes, ends - counts, ends):
        kept = keep[lo:hi]
        degenerate.add(img, kept)
        words = [word for word, ok in zip(img.words, kept) if ok]
        writer.add_image(img.index + 1, img.file_name, size, polygons[lo:hi][kept], words)


def _symlink_dir(target: Path, near: Path) -> Path:
    """A new symlink to the folder `target`, under a temporary name beside `near`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{near.name}.", suffix=".tmp", dir=near.parent)
    os.close(fd)
    os.unlink(tmp)
    os.symlink(os.path.abspath(target), tmp, target_is_directory=True)
    return Path(tmp)


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
    if image_mode not in ("copy", "symlink"):
        raise ValueError(f"image_mode must be 'copy' or 'symlink', got {image_mode!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    split = SPLITS[0]
    dst = Path(dst)
    json_file, image_dir = dst / f"{split}.json", dst / f"{split}_images"
    existing = [str(p) for p in (json_file, image_dir) if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        raise FileExistsError(
            f"refusing to overwrite existing outputs of split {split!r}: {', '.join(existing)} "
            "(pass --overwrite / overwrite=True to replace them)"
        )
    mat_path, image_root = _source_paths(src)

    start = time.perf_counter()
    logger.info("Reading %s (imnames, wordBB, txt) ...", mat_path)
    imnames, word_bbs, txts = read_synthtext_gt(mat_path)
    num_images = len(imnames)
    if num_images == 0:
        raise ConversionError(mat_path, "lists no images")
    logger.info("%s: %d images (read in %.0f s)", mat_path, num_images, time.perf_counter() - start)

    dst.mkdir(parents=True, exist_ok=True)
    writer = _TextJsonWriter(json_file, f"SynthText ({split})")
    tmp_images = _fresh_tmp_dir(image_dir) if image_mode == "copy" else None
    degenerate, seen = _DegenerateWords(), {}
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for first in range(0, num_images, _CHUNK_SIZE):
                stop = min(first + _CHUNK_SIZE, num_images)
                images = [
                    parse_synthtext_image(mat_path, i, imnames[i], word_bbs[i], txts[i])
                    for i in range(first, stop)
                ]
                _check_unique(mat_path, images, seen)
                sizes = _read_sizes(pool, workers, mat_path, images, image_root)
                if tmp_images is not None:
                    _copy_images(pool, workers, images, image_root, tmp_images)
                _add_chunk(writer, images, sizes, min_area, degenerate)
                logger.info(
                    "SynthText: %d / %d images (%.0f s)",
                    stop,
                    num_images,
                    time.perf_counter() - start,
                )
        # Everything is parsed and every image was read: swap the outputs in, the JSON last.
        if json_file.exists():
            json_file.unlink()  # the JSON marks a complete split: drop it before the images change
        if tmp_images is None:
            tmp_images = _symlink_dir(image_root, image_dir)
        _replace_dir_atomic(tmp_images, image_dir)
        tmp_images = None
        writer.finish()
    except BaseException:
        writer.discard()
        if tmp_images is not None and tmp_images.is_symlink():
            tmp_images.unlink()
        elif tmp_images is not None:
            shutil.rmtree(tmp_images, ignore_errors=True)
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
        "Wrote %s: %d images, %d words (%d degenerate skipped) in %.0f s; images in %s",
        json_file,
        out.num_images,
        out.num_annotations,
        degenerate.count,
        time.perf_counter() - start,
        image_dir,
    )
    return {split: out}
