"""Writing converted splits into the dataset folder layout.

For every split a converter writes

* ``DST/<split>.json``: the project text JSON (see :mod:`.text_json`), without the polygons lying
  outside their image or degenerate after clipping to it
  (:func:`~.annotations.drop_unusable_polygons`, counted in one warning);
* ``DST/<split>_images/``: the images (copied or symlinked);
* ``<gt_root>/<split>/gt_<image stem>.txt``: evaluation ground truth in the ICDAR line format
  (see :mod:`.icdar_gt`), ``<gt_root>`` defaulting to :func:`default_gt_root`.

Outputs are written atomically through :mod:`fasttcm.utils.atomic_io` (a temporary file or folder
in the destination folder, then a rename), the JSON last, and an old JSON is removed before its
images change, so a present ``<split>.json`` means a complete split. Existing outputs are never
replaced unless ``overwrite=True``. No detectron2 import.
"""

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ...utils.atomic_io import atomic_write_json, build_dir_once, replace_dir_atomic
from .annotations import SourceImage, drop_unusable_polygons
from .icdar_gt import eval_gt_file_name, format_icdar_gt_line
from .source_files import image_size
from .text_json import build_text_json

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGE_MODES",
    "SplitOutputs",
    "default_gt_root",
    "check_outputs_absent",
    "remove_output",
    "build_output_dir",
    "write_converted_split",
    "convert_dataset",
]

IMAGE_MODES = ("copy", "symlink")
"""How images reach ``DST/<split>_images``: copied, or as absolute symlinks to the raw files."""


@dataclass
class SplitOutputs:
    """Paths written for one converted split, and what they hold.

    Attributes:
        split: split name, e.g. ``"train"``.
        json_file: path of ``DST/<split>.json``.
        image_root: path of ``DST/<split>_images``.
        gt_dir: folder of the evaluation GT files; None for a split without them.
        num_images: images in the split.
        num_annotations: text instances, don't-care ones included.
        num_ignored: don't-care instances.
    """

    split: str
    json_file: str
    image_root: str
    gt_dir: Optional[str]
    num_images: int
    num_annotations: int
    num_ignored: int


def default_gt_root(dst) -> Path:
    """``<parent of DST>/evaluation/<DST name>_gt``, e.g. ``datasets/evaluation/icdar2015_gt``."""
    dst = Path(dst).resolve()
    return dst.parent / "evaluation" / f"{dst.name}_gt"


def check_outputs_absent(paths: Iterable[Path], overwrite: bool, split: str = "") -> None:
    """Refuse to go on when one of `paths` exists (as a file, folder or symlink), unless
    `overwrite`.

    Args:
        paths: the outputs about to be written.
        overwrite: existing outputs may be replaced.
        split: named in the message when given.

    Raises:
        FileExistsError: naming every existing path.
    """
    if overwrite:
        return
    existing = [str(p) for p in paths if p.exists() or p.is_symlink()]
    if existing:
        of_split = f" of split {split!r}" if split else ""
        raise FileExistsError(
            f"refusing to overwrite existing outputs{of_split}: {', '.join(existing)} "
            "(pass --overwrite / overwrite=True to replace them)"
        )


def remove_output(path: Path) -> None:
    """Remove an output folder, file or symlink (a symlink itself, not its target), if any."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _never_complete(_: str) -> bool:
    return False


def build_output_dir(final: Path, fill: Callable[[Path], None]) -> None:
    """Build the folder `final` afresh with :func:`fasttcm.utils.atomic_io.build_dir_once`.

    ``fill`` fills a new temporary sibling of `final`; only when it returns is an old `final`
    (folder, file or symlink) removed, and the new folder takes its name in one rename. When
    `fill` raises, the old `final` is left as it was and the temporary folder is removed.
    """

    def build(tmp: str) -> None:
        fill(Path(tmp))
        remove_output(final)

    # Whether an existing `final` may be replaced was decided by the caller: always build.
    build_dir_once(final, build, is_complete=_never_complete)


def _place_images(images: Sequence[SourceImage], folder: Path, image_mode: str) -> None:
    """Copy or symlink each image to ``folder/<file_name>``."""
    for src in images:
        target = folder / src.file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        if image_mode == "copy":
            shutil.copy2(src.path, target)
        else:
            os.symlink(os.path.abspath(src.path), target)


def _gt_file_text(src: SourceImage) -> str:
    return "".join(format_icdar_gt_line(a.polygon, a.text) + "\n" for a in src.annotations)


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
        sizes: ``(height, width)`` per image if already known (see :func:`image_size`);
            otherwise read from the headers and checked against the reader's pixel limit.

    Raises:
        FileExistsError: an output exists and `overwrite` is False (nothing is written).
        ValueError: bad `image_mode`, no images, or two images with the same output name/stem.
        ConversionError: an image header cannot be read, or the image has more pixels than
            the reader's limit (:func:`fasttcm.data.pixel_limit.get_max_image_pixels`).
    """
    if image_mode not in IMAGE_MODES:
        raise ValueError(f"image_mode must be 'copy' or 'symlink', got {image_mode!r}")
    dst, gt_root = Path(dst), Path(gt_root)
    json_file, image_root, gt_dir = dst / f"{split}.json", dst / f"{split}_images", gt_root / split
    check_outputs_absent((json_file, image_root, gt_dir), overwrite, split)
    if not images:
        raise ValueError(f"split {split!r}: no images to convert")
    _check_unique(images, split)

    # Read all headers before writing anything, so a bad image aborts cleanly.
    if sizes is None:
        sizes = [image_size(src.path, max_pixels=None) for src in images]
    records = list(zip(images, sizes))

    # The JSON marks a complete split: when overwriting, drop the old one before its images change.
    if json_file.exists():
        json_file.unlink()
    build_output_dir(image_root, lambda folder: _place_images(images, folder, image_mode))
    replace_dir_atomic(
        gt_dir, {eval_gt_file_name(src.file_name): _gt_file_text(src) for src in images}
    )
    # the JSON leaves out polygons outside their image (counted, one warning); the GT keeps them
    atomic_write_json(
        json_file, build_text_json(drop_unusable_polygons(records, str(json_file)), description)
    )

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
    """Raise ValueError if two images share an output name or an evaluation GT file name."""
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

    All splits are parsed, their image headers read (and checked against the reader's pixel
    limit, :func:`fasttcm.data.pixel_limit.get_max_image_pixels`, so that no image the mappers
    would refuse is converted) and their outputs checked for existence before the first one is
    written, so a bad input leaves no partial conversion behind.

    Args:
        collect_split: ``split -> [SourceImage]`` (the dataset-specific parser).
        splits: split names, e.g. ``("train", "test")``.
        dst: output folder.
        description: ``info.description`` of the JSON, followed by `` (<split>)``.
        gt_root: root of the evaluation GT; default :func:`default_gt_root` of `dst`.
        image_mode: ``"copy"`` or ``"symlink"``.
        overwrite: replace existing outputs.

    Returns:
        ``{split: SplitOutputs}`` in the order of `splits`.
    """
    dst = Path(dst)
    gt_root = default_gt_root(dst) if gt_root is None else Path(gt_root)
    splits = list(splits)
    check_outputs_absent(
        [p for s in splits for p in (dst / f"{s}.json", dst / f"{s}_images", gt_root / s)],
        overwrite,
    )
    collected = {s: collect_split(s) for s in splits}
    for s, imgs in collected.items():
        if not imgs:
            raise ValueError(f"split {s!r}: no images to convert")
        _check_unique(imgs, s)
    sizes = {
        s: [image_size(src.path, max_pixels=None) for src in imgs] for s, imgs in collected.items()
    }
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
