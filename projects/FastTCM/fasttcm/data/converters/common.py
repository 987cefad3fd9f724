"""Shared pieces of the scene-text dataset converters (no detectron2 import).

Every converter turns a dataset's native annotations into

* ``DST/<split>.json``: the project text JSON (schema in ``datasets/README.md``)::

      {"info": {"description": str, "version": 1},
       "images": [{"id", "file_name", "height", "width"}],
       "annotations": [{"id", "image_id", "polygon": [[x, y], ...], "text", "ignore"}],
       "categories": [{"id": 1, "name": "text"}]}

  ``file_name`` is relative to ``DST/<split>_images`` with POSIX separators; polygons are in
  absolute pixels of the image as detectron2 reads it (EXIF orientation applied); ``"###"``
  marks a don't-care region and always comes with ``"ignore": true``.
* ``DST/<split>_images/``: the images (copied or symlinked).
* ``<gt_root>/<split>/gt_<image stem>.txt``: evaluation ground truth in the ICDAR text format, one
  line per instance, ``x1,y1,...,xn,yn,transcription`` (``###`` = don't care; the transcription
  is everything after the 2n-th comma, commas included). See :func:`eval_gt_file_name`.

Outputs are written atomically (temporary file or folder in the destination folder, then a
rename), the JSON last, so a present ``<split>.json`` means a complete split. Existing outputs are
never replaced unless ``overwrite=True``.

Polygons are kept as annotated (also self-intersecting ones: the loader,
:func:`fasttcm.data.datasets.text.load_text_json`, repairs them, and the evaluation GT stays
faithful to the official annotation). Annotations with fewer than 3 points or non-finite
coordinates cannot be represented in the JSON schema and are skipped with a warning naming the
file and line.
"""

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...utils.atomic_io import atomic_open
from ...structures.text import DONT_CARE_TEXT

logger = logging.getLogger(__name__)

__all__ = [
    "DONT_CARE_TEXT",
    "IMAGE_EXTENSIONS",
    "ConversionError",
    "TextAnnotation",
    "SourceImage",
    "SplitOutputs",
    "natural_key",
    "read_text_lines",
    "find_images",
    "find_existing_dir",
    "image_size",
    "make_annotation",
    "eval_gt_file_name",
    "format_icdar_gt_line",
    "build_text_json",
    "write_json_atomic",
    "default_gt_root",
    "write_converted_split",
    "convert_dataset",
    "pair_images_with_annotations",
]

"""Transcription of a don't-care region (ICDAR convention)."""

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff")
"""Image file suffixes (compared case-insensitively) that the converters pick up."""

_EXIF_ORIENTATION_TAG = 274
_EXIF_TRANSPOSED = (5, 6, 7, 8)  # orientations that swap width and height
JSON_SCHEMA_VERSION = 1


class ConversionError(ValueError):
    """A native annotation file cannot be converted; the message names the file (and line)."""

    def __init__(self, path, message: str, line: Optional[int] = None):
        where = f"{path}" if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line


@dataclass
class TextAnnotation:
    """One text instance in a converter's intermediate form.

    Attributes:
        polygon: (N, 2) float64 array, N >= 3, absolute pixel coordinates (x right, y down) of the
            image as detectron2 reads it, vertices in annotation order.
        text: transcription; ``"###"`` for don't-care regions.
        ignore: True for don't-care regions (always True when ``text == "###"``).
    """

    polygon: np.ndarray
    text: str
    ignore: bool


@dataclass
class SourceImage:
    """A raw image and its annotations.

    Attributes:
        path: path of the raw image file.
        file_name: name it gets under ``DST/<split>_images`` (POSIX, relative).
        annotations: the image's text instances, in file order.
    """

    path: str
    file_name: str
    annotations: List[TextAnnotation] = field(default_factory=list)


@dataclass
class SplitOutputs:
    """Paths written for one converted split."""

    split: str
    json_file: str
    image_root: str
    gt_dir: str
    num_images: int
    num_annotations: int
    num_ignored: int


def natural_key(name: str) -> list:
    """Sort key that orders ``img_2`` before ``img_10`` (digit runs compare as numbers)."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def read_text_lines(path) -> List[str]:
    """Read a UTF-8 text file (a leading BOM is removed) into lines without line endings.

    Raises:
        ConversionError: if the file is not valid UTF-8.
    """
    try:
        with open(path, "r", encoding="utf-8-sig", newline=None) as f:
            return f.read().splitlines()
    except UnicodeDecodeError as e:
        raise ConversionError(path, f"not valid UTF-8 text ({e})") from e


def find_existing_dir(root, candidates: Sequence[str], what: str) -> Path:
    """Return the first of ``root/<candidate>`` that is a folder.

    Raises:
        FileNotFoundError: naming every path that was tried.
    """
    root = Path(root)
    for cand in candidates:
        path = root / cand
        if path.is_dir():
            return path
    tried = ", ".join(str(root / c) for c in candidates)
    raise FileNotFoundError(f"{what} not found; looked for a folder at: {tried}")


def find_images(image_dir) -> Dict[str, Path]:
    """Map image stem -> path for the image files directly inside `image_dir`.

    Raises:
        ValueError: if two images share a stem (e.g. ``a.jpg`` and ``a.png``), which would make
            the annotation pairing ambiguous.
    """
    images: Dict[str, Path] = {}
    for entry in sorted(os.scandir(image_dir), key=lambda e: e.name):
        if not entry.is_file() or os.path.splitext(entry.name)[1].lower() not in IMAGE_EXTENSIONS:
            continue
        stem = os.path.splitext(entry.name)[0]
        if stem in images:
            raise ValueError(
                f"{image_dir}: images {images[stem].name} and {entry.name} share the stem "
                f"{stem!r}; cannot tell which one the annotation file belongs to"
            )
        images[stem] = Path(entry.path)
    return images


def image_size(path) -> Tuple[int, int]:
    """(height, width) of an image as detectron2's ``read_image`` returns it.

    Only the header is read. EXIF orientations 5-8 (transposed) swap height and width, as
    ``detectron2.data.detection_utils.read_image`` applies the EXIF orientation.

    Raises:
        ConversionError: if the file cannot be opened as an image.
    """
    try:
        with Image.open(path) as img:
            width, height = img.size
            try:
                orientation = img.getexif().get(_EXIF_ORIENTATION_TAG, 1)
            except Exception:  # malformed EXIF block: PIL's read_image ignores it too
                orientation = 1
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise ConversionError(path, f"cannot read the image header ({e})") from e
    if orientation in _EXIF_TRANSPOSED:
        width, height = height, width
    return int(height), int(width)


def make_annotation(coords, text: str, ignore: bool, *, path, line: Optional[int] = None):
    """Build a :class:`TextAnnotation` from flat ``[x1, y1, ...]`` or ``[[x, y], ...]`` coords.

    Returns None (and logs a warning naming `path`/`line`) for polygons that the JSON schema
    cannot hold: fewer than 3 distinct vertices or non-finite coordinates. A closing vertex equal
    to the first one is dropped. ``text == "###"`` forces ``ignore``.

    Raises:
        ConversionError: if `coords` has an odd number of values.
    """
    pts = np.asarray(coords, dtype=np.float64)
    if pts.ndim == 1:
        if pts.size % 2:
            raise ConversionError(path, f"odd number of coordinates ({pts.size})", line)
        pts = pts.reshape(-1, 2)
    elif pts.ndim != 2 or pts.shape[1] != 2:
        raise ConversionError(
            path, f"polygon must be a list of [x, y] pairs, got shape {pts.shape}", line
        )
    if len(pts) > 1 and np.array_equal(pts[0], pts[-1]):
        pts = pts[:-1]
    if not np.isfinite(pts).all():
        logger.warning("%s: skipping a polygon with non-finite coordinates", _where(path, line))
        return None
    if len(pts) < 3:
        logger.warning(
            "%s: skipping a polygon with %d point(s) (< 3)", _where(path, line), len(pts)
        )
        return None
    ignore = bool(ignore) or text == DONT_CARE_TEXT
    return TextAnnotation(polygon=pts, text=DONT_CARE_TEXT if ignore else text, ignore=ignore)


def _where(path, line):
    return f"{path}" if line is None else f"{path}, line {line}"


def eval_gt_file_name(image_file_name: str) -> str:
    """Name of the evaluation GT file of an image: ``gt_<image stem>.txt``.

    ``img_12.jpg`` -> ``gt_img_12.txt`` (the official ICDAR 2015 name). Evaluators map a dataset
    dict's ``file_name`` to its GT file and write ``res_<image stem>.txt`` with the same rule.
    """
    stem = os.path.splitext(os.path.basename(image_file_name))[0]
    return f"gt_{stem}.txt"


def _format_coord(value: float) -> str:
    """Integers stay integers (the ICDAR files' form); other values keep 3 decimals."""
    if float(value).is_integer():
        return str(int(value))
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def format_icdar_gt_line(polygon: np.ndarray, text: str) -> str:
    """``x1,y1,...,xn,yn,transcription`` for an (N, 2) polygon; line breaks become spaces.

    With a variable number of vertices, a transcription made only of comma-separated numbers
    (``1,000``) would read as more coordinates, and one starting with ``"`` as a quoted one; such
    transcriptions are written quoted, ``"1,000"``, with ``\\`` and ``"`` backslash-escaped (the
    RRC quoting rule, which ICDAR parsers undo).
    """
    coords = ",".join(_format_coord(v) for v in np.asarray(polygon, dtype=np.float64).reshape(-1))
    text = re.sub(r"[\r\n\t]", " ", text)
    parts = text.split(",")
    if text.startswith('"') or (len(parts) > 1 and all(_is_number(p) for p in parts)):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{coords},{text}"


def build_text_json(
    records: Sequence[Tuple[SourceImage, Tuple[int, int]]], description: str
) -> dict:
    """The project text JSON for ``(image, (height, width))`` pairs; ids from 1, in order."""
    images, annotations = [], []
    for image_id, (src, (height, width)) in enumerate(records, start=1):
        images.append(
            {"id": image_id, "file_name": src.file_name, "height": height, "width": width}
        )
        for ann in src.annotations:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "polygon": ann.polygon.tolist(),
                    "text": ann.text,
                    "ignore": bool(ann.ignore),
                }
            )
    return {
        "info": {"description": description, "version": JSON_SCHEMA_VERSION},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "text"}],
    }


def write_json_atomic(obj, path) -> None:
    """Write `obj` as UTF-8 JSON to `path` through a temporary file in the same folder + rename."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)


def _replace_dir_atomic(tmp_dir: Path, final_dir: Path) -> None:
    """Move a completely written `tmp_dir` to `final_dir`, replacing an old one if present."""
    if final_dir.exists() or final_dir.is_symlink():
        old = final_dir.with_name(f".{final_dir.name}.old-{os.getpid()}")
        os.replace(final_dir, old)
        os.replace(tmp_dir, final_dir)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
    else:
        os.replace(tmp_dir, final_dir)


def _fresh_tmp_dir(final_dir: Path) -> Path:
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.", suffix=".tmp", dir=final_dir.parent))


def default_gt_root(dst) -> Path:
    """``<parent of DST>/evaluation/<DST name>_gt``, e.g. ``datasets/evaluation/icdar2015_gt``."""
    dst = Path(dst).resolve()
    return dst.parent / "evaluation" / f"{dst.name}_gt"


def write_converted_split(
    split: str,
    images: Sequence[SourceImage],
    dst,
    gt_root,
    *,
    description: str,
    image_mode: str = "copy",
    overwrite: bool = False,
    sizes: Optional[Sequence[Tuple[int, int]]] = None,
) -> SplitOutputs:
    """Write one split: ``DST/<split>_images/``, ``<gt_root>/<split>/`` and ``DST/<split>.json``.

    Args:
        split: split name, e.g. ``"train"``.
        images: the split's images in output order (image ids follow it, from 1).
        dst: dataset output folder.
        gt_root: folder receiving ``<split>/gt_<stem>.txt`` evaluation files.
        description: ``info.description`` of the JSON.
        image_mode: ``"copy"`` or ``"symlink"`` (absolute links to the raw images).
        overwrite: replace existing outputs; otherwise any existing output is an error.
        sizes: ``(height, width)`` per image if already known (see :func:`image_size`).

    Raises:
        FileExistsError: an output exists and `overwrite` is False (nothing is written).
        ValueError: bad `image_mode`, no images, or two images with the same output name/stem.
        ConversionError: an image header cannot be read.
    """
    if image_mode not in ("copy", "symlink"):
        raise ValueError(f"image_mode must be 'copy' or 'symlink', got {image_mode!r}")
    dst, gt_root = Path(dst), Path(gt_root)
    json_file, image_root, gt_dir = dst / f"{split}.json", dst / f"{split}_images", gt_root / split
    existing = [str(p) for p in (json_file, image_root, gt_dir) if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        raise FileExistsError(
            f"refusing to overwrite existing outputs of split {split!r}: {', '.join(existing)} "
            "(pass --overwrite / overwrite=True to replace them)"
        )
    if not images:
        raise ValueError(f"split {split!r}: no images to convert")
    _check_unique(images, split)

    # Read all headers before writing anything, so a bad image aborts cleanly.
    if sizes is None:
        sizes = [image_size(src.path) for src in images]
    records = list(zip(images, sizes))

    # The JSON marks a complete split: when overwriting, drop the old one before its images change.
    if json_file.exists():
        json_file.unlink()
    tmp_images = _fresh_tmp_dir(image_root)
    tmp_gt = _fresh_tmp_dir(gt_dir)
    try:
        for src, _ in records:
            target = tmp_images / src.file_name
            target.parent.mkdir(parents=True, exist_ok=True)
            if image_mode == "copy":
                shutil.copy2(src.path, target)
            else:
                os.symlink(os.path.abspath(src.path), target)
            lines = [format_icdar_gt_line(a.polygon, a.text) for a in src.annotations]
            (tmp_gt / eval_gt_file_name(src.file_name)).write_text(
                "".join(line + "\n" for line in lines), encoding="utf-8"
            )
        _replace_dir_atomic(tmp_images, image_root)
        _replace_dir_atomic(tmp_gt, gt_dir)
    except BaseException:
        shutil.rmtree(tmp_images, ignore_errors=True)
        shutil.rmtree(tmp_gt, ignore_errors=True)
        raise
    write_json_atomic(build_text_json(records, description), json_file)

    anns = [a for src in images for a in src.annotations]
    out = SplitOutputs(
        split=split,
        json_file=str(json_file),
        image_root=str(image_root),
        gt_dir=str(gt_dir),
        num_images=len(images),
        num_annotations=len(anns),
        num_ignored=sum(a.ignore for a in anns),
    )
    logger.info(
        "Wrote %s: %d images, %d instances (%d don't-care); images in %s, evaluation GT in %s",
        json_file,
        out.num_images,
        out.num_annotations,
        out.num_ignored,
        image_root,
        gt_dir,
    )
    return out


def _check_unique(images: Sequence[SourceImage], split: str) -> None:
    seen_names, seen_gt = {}, {}
    for src in images:
        name = src.file_name
        if name in seen_names:
            raise ValueError(
                f"split {split!r}: {src.path} and {seen_names[name]} both map to {name}"
            )
        gt = eval_gt_file_name(name)
        if gt in seen_gt:
            raise ValueError(
                f"split {split!r}: {src.path} and {seen_gt[gt]} have the same stem; their "
                f"evaluation GT files ({gt}) would collide"
            )
        seen_names[name], seen_gt[gt] = src.path, src.path


def convert_dataset(
    collect_split: Callable[[str], List[SourceImage]],
    splits: Iterable[str],
    dst,
    *,
    description: str,
    gt_root=None,
    image_mode: str = "copy",
    overwrite: bool = False,
) -> Dict[str, SplitOutputs]:
    """Collect and write every split of a dataset (see :func:`write_converted_split`).

    All splits are parsed, their image headers read and their outputs checked for existence
    before the first one is written, so a bad input leaves no partial conversion behind.

    Args:
        collect_split: ``split -> [SourceImage]`` (the dataset-specific parser).
        splits: split names, e.g. ``("train", "test")``.
        dst: output folder; `gt_root` defaults to :func:`default_gt_root` of it.
    """
    dst = Path(dst)
    gt_root = default_gt_root(dst) if gt_root is None else Path(gt_root)
    splits = list(splits)
    if not overwrite:
        existing = [
            str(p)
            for s in splits
            for p in (dst / f"{s}.json", dst / f"{s}_images", gt_root / s)
            if p.exists() or p.is_symlink()
        ]
        if existing:
            raise FileExistsError(
                f"refusing to overwrite existing outputs: {', '.join(existing)} "
                "(pass --overwrite / overwrite=True to replace them)"
            )
    collected = {s: collect_split(s) for s in splits}
    for s, imgs in collected.items():
        if not imgs:
            raise ValueError(f"split {s!r}: no images to convert")
        _check_unique(imgs, s)
    sizes = {s: [image_size(src.path) for src in imgs] for s, imgs in collected.items()}
    return {
        s: write_converted_split(
            s,
            imgs,
            dst,
            gt_root,
            description=f"{description} ({s})",
            image_mode=image_mode,
            overwrite=overwrite,
            sizes=sizes[s],
        )
        for s, imgs in collected.items()
    }


def pair_images_with_annotations(
    image_dir, ann_dir, ann_name_for_stem: Callable[[str], Sequence[str]], what: str
) -> List[Tuple[Path, Path]]:
    """Pair each image in `image_dir` with its annotation file in `ann_dir`.

    Args:
        ann_name_for_stem: candidate annotation file names for an image stem (first match wins).
        what: dataset/split label used in messages.

    Returns:
        ``(image_path, annotation_path)`` pairs in natural order of the image names.

    Raises:
        FileNotFoundError: an image has no annotation file (the message lists the names tried).
        ValueError: `image_dir` holds no images.
    """
    images = find_images(image_dir)
    if not images:
        raise ValueError(f"{what}: no images ({', '.join(IMAGE_EXTENSIONS)}) in {image_dir}")
    ann_files = {
        e.name: Path(e.path)
        for e in os.scandir(ann_dir)
        if e.is_file() and os.path.splitext(e.name)[1].lower() not in IMAGE_EXTENSIONS
    }
    pairs, used = [], set()
    for stem in sorted(images, key=natural_key):
        names = list(ann_name_for_stem(stem))
        match = next((n for n in names if n in ann_files), None)
        if match is None:
            raise FileNotFoundError(
                f"{what}: no annotation file for image {images[stem]} in {ann_dir} "
                f"(looked for {', '.join(names)})"
            )
        used.add(match)
        pairs.append((images[stem], ann_files[match]))
    unused = sorted(set(ann_files) - used)
    if unused:
        logger.warning(
            "%s: %d annotation file(s) in %s have no image and are ignored (e.g. %s)",
            what,
            len(unused),
            ann_dir,
            unused[0],
        )
    return pairs
