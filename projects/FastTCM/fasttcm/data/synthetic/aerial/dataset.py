"""Synthetic aerial datasets on disk: DOTA-v1.0 ``images/`` and ``labelTxt/`` folders, written
image by image from seeds, in one or several processes.
"""

import logging
import os
from multiprocessing import get_context
from pathlib import Path
from typing import List, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from ....utils.atomic_io import atomic_open, build_dir_once
from ....utils.geometry import xywha_to_poly
from .objects import AerialObject
from .render import render_aerial_image

__all__ = ["generate_aerial_dataset", "ensure_aerial_dataset", "make_aerial_dataset"]

logger = logging.getLogger(__name__)


def _label_text(objects: Sequence[AerialObject]) -> str:
    lines = ["imagesource:FastTCM-D2-synthetic\n", "gsd:null\n"]
    if objects:
        polys = xywha_to_poly(np.array([o.box for o in objects]))
        for poly, obj in zip(polys, objects):
            lines.append(
                " ".join(f"{v:.2f}" for v in poly) + f" {obj.category} {int(obj.difficult)}\n"
            )
    return "".join(lines)


def _generate_one(args) -> Tuple[str, int]:
    out_dir, index, seed, size_range, object_scale = args
    cv2.setNumThreads(1)
    rng = np.random.default_rng([seed, index])
    height, width = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, size=2))
    img, objects = render_aerial_image(rng, height, width, object_scale=object_scale)
    name = f"A{index:04d}"
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise IOError(f"cannot encode synthetic image {name}")
    with atomic_open(os.path.join(out_dir, "images", name + ".png"), "wb") as f:
        f.write(buf.tobytes())
    with atomic_open(os.path.join(out_dir, "labelTxt", name + ".txt"), "w") as f:
        f.write(_label_text(objects))
    return name, len(objects)


def generate_aerial_dataset(
    out_dir: str,
    num_images: int,
    seed: int,
    image_size_range: Tuple[int, int] = (2048, 4096),
    *,
    object_scale: float = 1.0,
    workers: int = 0,
    progress: bool = False,
) -> List[str]:
    """Write a synthetic DOTA-v1.0 split: ``out_dir/images/A0000.png`` and
    ``out_dir/labelTxt/A0000.txt`` (with ``imagesource:``/``gsd:`` headers), ...

    Image ``i`` depends only on ``(seed, i)``: the same arguments give byte-identical files.

    Args:
        out_dir: output directory (created).
        num_images: number of images.
        seed: dataset seed.
        image_size_range: inclusive range of the height and width (drawn independently).
            Use e.g. ``(512, 768)`` with ``object_scale=0.5`` for fast tests.
        object_scale: see :func:`~.render.render_aerial_image`.
        workers: processes (0 or 1: this process).
        progress: show a tqdm bar.

    Returns:
        the image names, in index order.
    """
    lo, hi = (int(v) for v in image_size_range)
    if not 64 <= lo <= hi:
        raise ValueError(f"image_size_range must satisfy 64 <= low <= high, got {image_size_range}")
    if num_images < 0 or object_scale <= 0:
        raise ValueError(
            f"need num_images >= 0 and object_scale > 0, got {num_images}, {object_scale}"
        )
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    os.makedirs(os.path.join(out_dir, "labelTxt"), exist_ok=True)
    jobs = [(out_dir, i, int(seed), (lo, hi), float(object_scale)) for i in range(num_images)]
    if workers > 1 and num_images > 1:
        with get_context("spawn").Pool(workers) as pool:
            results = pool.imap(_generate_one, jobs)
            results = list(_progress(results, num_images, out_dir, progress))
    else:
        results = list(_progress(map(_generate_one, jobs), num_images, out_dir, progress))
    logger.info(
        "Generated %d synthetic aerial images (%d objects) in %s",
        num_images,
        sum(n for _, n in results),
        out_dir,
    )
    return [name for name, _ in results]


def _progress(iterable, total, out_dir, enabled):
    if not enabled:
        return iterable
    return tqdm(iterable, total=total, desc=f"synthetic aerial -> {out_dir}", unit="img")


def ensure_aerial_dataset(
    out_dir: str,
    num_images: int,
    seed: int,
    image_size_range: Tuple[int, int] = (2048, 4096),
    **options,
) -> str:
    """Generate the dataset into `out_dir` unless it is already there (safe across processes).

    The images are written into a temporary sibling directory that is renamed to `out_dir` at
    the end, so a reader sees a complete dataset or none; a process that loses the race to
    another discards its copy. An existing `out_dir` is used as it is.

    Args:
        out_dir: the dataset folder.
        num_images, seed, image_size_range: see :func:`generate_aerial_dataset`.
        **options: its keyword-only ``object_scale`` and ``workers``.

    Returns:
        `out_dir`.

    Raises:
        TypeError: an option other than ``object_scale`` and ``workers``.
    """
    unknown = sorted(set(options) - {"object_scale", "workers"})
    if unknown:
        raise TypeError(f"ensure_aerial_dataset() got unexpected keyword arguments {unknown}")

    def build(tmp_dir: str) -> None:
        generate_aerial_dataset(
            tmp_dir, num_images, seed, image_size_range, progress=True, **options
        )

    build_dir_once(out_dir, build, is_complete=os.path.isdir)
    return out_dir


def make_aerial_dataset(
    out_dir: str,
    num_images: int,
    seed: int,
    image_size: Tuple[int, int] = (2048, 4096),
    *,
    num_workers: int = 0,
    **options,
) -> Path:
    """``tools/make_synthetic.py --kind aerial``: :func:`generate_aerial_dataset` with the tool's
    signature.

    ``image_size`` (the tool's ``--size A B``) is the *range* of image sides, ``(min(A, B),
    max(A, B))``; ``options`` may set ``object_scale`` (e.g. ``--set object_scale=0.5``).

    Returns:
        the ``labelTxt`` folder written.
    """
    unknown = set(options) - {"object_scale"}
    if unknown:
        raise TypeError(f"unknown aerial generator options {sorted(unknown)}; known: object_scale")
    low, high = sorted(int(v) for v in image_size)
    generate_aerial_dataset(
        out_dir,
        num_images,
        seed,
        (low, high),
        object_scale=float(options.get("object_scale", 1.0)),
        workers=num_workers,
        progress=True,
    )
    return Path(out_dir) / "labelTxt"
