"""Cut DOTA images and their labels into fixed-size patches, as the DOTA devkit's ``splitbase``.

For every rate the image is (virtually) resized by that rate and windows of ``patch_size`` pixels
are cut with an overlap of ``gap`` pixels, at the devkit's window origins: along each axis
``0, stride, 2 stride, ...`` while the window ends inside the image, then one last window flush
with the far border (``max(L - size, 0)``); ``stride = size - gap``. A window that reaches past a
small image is padded to ``patch_size x patch_size`` with ``padding_value``.

Patches are named ``<image>__<rate>__<x>___<y>`` (``P0003__1__824___0``; the rate printed as
``1``, ``0.5``, ``1.5``), x and y being the window's corner in pixels of the *resized* image;
:func:`fasttcm.data.dota_patch_names.parse_patch_name` reads the names back.

Labels per patch, with ``r = area(object ∩ window) / area(object)``:

* ``r = 1``: the object, shifted into the patch frame, with its own difficulty;
* ``0 < r < 1``: the part inside the window. Its polygon is the intersection (its convex hull
  for a non-convex object) when that has 4 vertices; with 5 the two ends of the shortest edge
  are merged into their midpoint (the devkit's rule); otherwise (3, or 6 and more vertices,
  which the devkit drops) its minimum-area rectangle. The vertices are rotated to best follow
  the original order. Difficulty is the object's own when ``r >= iof_thr`` (0.7) and ``2``
  ("truncated") below (the devkit: ``r > 0.7``);
* zero-area objects and objects outside the window are left out.

Coordinates keep two decimals (the devkit truncates them to integers, which shifts resized labels
by up to a pixel). The window's pixel area is ``[x, x + size) x [y, y + size)`` clipped to the
image (the devkit's window polygon stops one pixel short of the image's far border).

Memory: each image is decoded once, into a buffer of its own size; every patch is a copy of a
view of it, or, for a rate other than 1, a ``cv2.warpAffine`` of a view onto the patch (the same
pixels a full ``cv2.resize`` with ``INTER_CUBIC`` would give, to within one grey level), so no
resized copy of a large image is ever held. Measured on a 20000 x 20000 PNG (1.14 GB decoded),
one process: peak RSS 1.92 GB at rate 1 (625 patches, 32 s) and 1.93 GB at rate 1.5 (1369
patches, 107 s), of which 0.77 GB is the interpreter with torch imported; a plain
``cv2.imread`` alone would peak at 2.3 GB, a full 1.5x resize would add 2.6 GB.
"""

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import shapely

from ..utils.atomic_io import atomic_open, build_dir_once
from ..utils.geometry import min_area_rect, poly_to_hbb, polygon_area, xywha_to_poly
from .datasets.dota import list_dota_images
from .datasets.dota_labels import read_dota_labels, write_dota_labels
from .datasets.dota_meta import dota_class_names
from .dota_patch_names import format_patch_name
from .image_io import read_image
from .pixel_limit import AERIAL_MAX_IMAGE_PIXELS

__all__ = [
    "SplitConfig",
    "load_split_config",
    "split_output_dir",
    "window_origins",
    "split_image",
    "split_dataset",
    "ensure_split_dataset",
]

logger = logging.getLogger(__name__)


@dataclass
class SplitConfig:
    """How to cut patches; the JSON files under ``datasets/dota_split_configs`` hold these keys.

    Attributes:
        patch_size: side of a square patch in pixels (1024).
        gap: overlap of neighbouring windows in pixels (200 single-scale, 500 multi-scale).
        rates: resize factors applied to the image before cutting ([1.0], or [0.5, 1.0, 1.5]).
        iof_thr: truncated objects keep their difficulty when at least this fraction of their
            area is inside the window, else they are marked difficult ``2`` (0.7).
        padding_value: BGR fill of the part of a window beyond the image.
        image_ext: file extension of written patches.
        source_splits: DOTA splits read (e.g. ["train", "val"]) by ``tools/dota_split.py``.
        output: output folder relative to ``<root>/<version>_split`` (e.g. "ss1024/trainval").
    """

    patch_size: int = 1024
    gap: int = 200
    rates: Tuple[float, ...] = (1.0,)
    iof_thr: float = 0.7
    padding_value: Tuple[int, int, int] = (104, 116, 124)
    image_ext: str = ".png"
    source_splits: Tuple[str, ...] = field(default_factory=tuple)
    output: str = ""

    def __post_init__(self):
        self.rates = tuple(float(r) for r in self.rates)
        self.padding_value = tuple(int(v) for v in self.padding_value)
        self.source_splits = tuple(self.source_splits)
        if self.patch_size <= 0 or not 0 <= self.gap < self.patch_size:
            raise ValueError(
                f"need patch_size > 0 and 0 <= gap < patch_size, got {self.patch_size}, {self.gap}"
            )
        if not self.rates or any(r <= 0 for r in self.rates):
            raise ValueError(f"rates must be positive, got {self.rates}")
        if not 0 < self.iof_thr <= 1:
            raise ValueError(f"iof_thr must be in (0, 1], got {self.iof_thr}")
        if len(self.padding_value) != 3:
            raise ValueError(f"padding_value must be 3 BGR values, got {self.padding_value}")
        if not self.image_ext.startswith("."):
            raise ValueError(f"image_ext must start with '.', got {self.image_ext!r}")


def load_split_config(path: str) -> SplitConfig:
    """Read a split config JSON; unknown keys are an error naming the file."""
    with open(path, "r", encoding="utf-8") as f:
        try:
            raw = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON: {e}") from None
    known = set(SplitConfig.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; known keys are {sorted(known)}")
    try:
        return SplitConfig(**raw)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None


def split_output_dir(config: SplitConfig, root: str, version: str, config_path: str) -> str:
    """The folder a config's ``output`` names: ``<root>/<version>_split/<output>``.

    Args:
        config: a loaded split config with a non-empty ``output``.
        root: the dataset root (``--root`` of ``tools/dota_split.py``).
        version: the dataset folder name (``dota10``, ``dota15``).
        config_path: the config file, for messages.

    Returns:
        the output folder (not resolved).

    Raises:
        ValueError: ``output`` is empty, absolute, or resolves outside `root` (through ``..`` or a
            symbolic link); the message names the config file and the key.
    """
    if not config.output:
        raise ValueError(f"{config_path}: key 'output' is empty (and no --out given)")
    parent = os.path.join(root, f"{version}_split")
    out = os.path.join(parent, config.output)
    real_root, real_out = os.path.realpath(root), os.path.realpath(out)
    if os.path.isabs(config.output) or os.path.commonpath([real_root, real_out]) != real_root:
        raise ValueError(
            f"{config_path}: key 'output' = {config.output!r} resolves to {real_out}, outside the "
            f"dataset root {root}; it must name a folder under {parent}"
        )
    return out


def window_origins(length: int, patch_size: int, gap: int) -> List[int]:
    """Window starts along one axis of `length` pixels, as the devkit's ``splitbase`` makes them.

    Example: ``window_origins(2000, 1024, 200) == [0, 824, 976]``.
    """
    stride = patch_size - gap
    if stride <= 0:
        raise ValueError(f"gap ({gap}) must be smaller than patch_size ({patch_size})")
    starts, x = [], 0
    while x + patch_size < length:
        starts.append(x)
        x += stride
    starts.append(max(length - patch_size, 0))
    return starts


def _resized_size(length: int, rate: float) -> int:
    # cv2.resize(fx=rate) sizes its output with cvRound (round half to even)
    return int(np.rint(length * rate))


def _cut_patch(
    image: np.ndarray, rate: float, x0: int, y0: int, size: int, pad: Tuple[int, int, int]
) -> np.ndarray:
    """The ``size x size`` window at ``(x0, y0)`` of `image` resized by `rate` (INTER_CUBIC),
    padded with `pad`; only a view of `image` around the window is read."""
    h, w = image.shape[:2]
    hr, wr = _resized_size(h, rate), _resized_size(w, rate)
    vw, vh = min(size, wr - x0), min(size, hr - y0)
    patch = np.empty((size, size, 3), dtype=image.dtype)
    patch[...] = np.asarray(pad, dtype=image.dtype)
    if rate == 1.0:
        patch[:vh, :vw] = image[y0 : y0 + vh, x0 : x0 + vw]
        return patch
    # cv2.resize samples source (j + 0.5) / rate - 0.5 for output pixel j: reproduce it for the
    # window only, from a view with a 3-pixel margin for the cubic kernel
    sx, sy = (x0 + 0.5) / rate - 0.5, (y0 + 0.5) / rate - 0.5
    sx0, sy0 = max(math.floor(sx) - 2, 0), max(math.floor(sy) - 2, 0)
    sx1 = min(math.ceil((x0 + vw - 0.5) / rate - 0.5) + 3, w)
    sy1 = min(math.ceil((y0 + vh - 0.5) / rate - 0.5) + 3, h)
    inverse = np.array([[1.0 / rate, 0.0, sx - sx0], [0.0, 1.0 / rate, sy - sy0]])
    patch[:vh, :vw] = cv2.warpAffine(
        image[sy0:sy1, sx0:sx1],
        inverse,
        (vw, vh),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return patch


def _quad_from_clipped(coords: np.ndarray, counts: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Four-vertex versions of clipped polygons.

    Args:
        coords: ``(K, M, 2)`` vertices (positively oriented, i.e. clockwise on screen), padded by
            repeating the last vertex.
        counts: ``(K,)`` true vertex counts (>= 3).
        reference: ``(K, 8)`` the original quadrilaterals, for the vertex order.

    Returns:
        ``(K, 8)``.
    """
    k = len(coords)
    out = np.zeros((k, 4, 2))
    four = counts == 4
    out[four] = coords[four, :4]
    five = np.flatnonzero(counts == 5)
    if len(five):  # devkit GetPoly4FromPoly5: merge the shortest edge into its midpoint
        pts = coords[five, :5]
        edge = np.linalg.norm(np.roll(pts, -1, axis=1) - pts, axis=2)
        shortest = np.argmin(edge, axis=1)
        j = np.arange(5)[None, :]
        mid = 0.5 * (
            pts[np.arange(len(five)), shortest] + pts[np.arange(len(five)), (shortest + 1) % 5]
        )
        # drop vertex shortest+1, replace vertex shortest by the midpoint
        keep = j != ((shortest + 1) % 5)[:, None]
        merged = np.where((j == shortest[:, None])[..., None], mid[:, None, :], pts)
        out[five] = merged[keep].reshape(-1, 4, 2)
    other = np.flatnonzero((counts != 4) & (counts != 5))
    if len(other):
        out[other] = xywha_to_poly(min_area_rect(coords[other])).reshape(-1, 4, 2)
    # rotate the vertex list to best follow the original quadrilateral
    shifts = np.stack([np.roll(out, -s, axis=1) for s in range(4)], axis=1)  # (K, 4, 4, 2)
    cost = np.sum((shifts - reference.reshape(k, 1, 4, 2)) ** 2, axis=(2, 3))
    return shifts[np.arange(k), np.argmin(cost, axis=1)].reshape(k, 8)


def _exterior_vertices(polygons: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Exterior vertices of shapely polygons as a padded array.

    Returns:
        ``(K, M, 2)`` vertices without the closing repeat, each row padded by repeating its last
        vertex, and the ``(K,)`` vertex counts.
    """
    coords, ring_id = shapely.get_coordinates(
        shapely.get_exterior_ring(polygons), return_index=True
    )
    k = len(polygons)
    counts = np.bincount(ring_id, minlength=k) - 1  # the closing vertex is listed twice
    start = np.cumsum(counts + 1) - (counts + 1)
    position = np.arange(len(coords)) - start[ring_id]
    padded = np.zeros((k, int(counts.max()) + 1, 2))
    padded[ring_id, position] = coords
    beyond = np.arange(padded.shape[1])[None, :] >= counts[:, None]
    last = padded[np.arange(k), np.maximum(counts - 1, 0)]
    return np.where(beyond[..., None], last[:, None, :], padded), counts


def _patch_labels(
    polys: np.ndarray, difficulty: np.ndarray, windows: np.ndarray, iof_thr: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Objects of every window.

    Args:
        polys: ``(N, 8)`` objects in pixels of the resized image.
        difficulty: ``(N,)``.
        windows: ``(W, 4)`` ``x0, y0, x1, y1`` window extents clipped to the image.
        iof_thr: see :class:`SplitConfig`.

    Returns:
        window index ``(P,)``, object index ``(P,)``, polygons ``(P, 8)`` in the resized image
        frame, difficulty ``(P,)``; sorted by window, then object.
    """
    n, w = len(polys), len(windows)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 8)), np.zeros(0, np.int64))
    if n == 0 or w == 0:
        return empty
    hbb = poly_to_hbb(polys)
    area = np.abs(polygon_area(polys))
    usable = area > 0
    wx0, wy0, wx1, wy1 = (windows[:, i][:, None] for i in range(4))  # (W, 1)
    inside = (hbb[:, 0] >= wx0) & (hbb[:, 2] <= wx1) & (hbb[:, 1] >= wy0) & (hbb[:, 3] <= wy1)
    touch = (hbb[:, 0] < wx1) & (hbb[:, 2] > wx0) & (hbb[:, 1] < wy1) & (hbb[:, 3] > wy0)
    inside &= usable[None]
    partial = touch & ~inside & usable[None]

    win_i, obj_i = np.nonzero(inside)
    out_win, out_obj = [win_i], [obj_i]
    out_poly, out_diff = [polys[obj_i]], [difficulty[obj_i]]

    pw, po = np.nonzero(partial)
    if len(pw):
        geoms = shapely.polygons(polys[po].reshape(-1, 4, 2))
        geoms = np.where(shapely.is_valid(geoms), geoms, shapely.make_valid(geoms))
        boxes = shapely.box(windows[pw, 0], windows[pw, 1], windows[pw, 2], windows[pw, 3])
        inter = shapely.intersection(geoms, boxes)
        ratio = shapely.area(inter) / shapely.area(geoms)
        hull = shapely.orient_polygons(shapely.simplify(shapely.convex_hull(inter), 0.0))
        ok = (ratio > 0) & (shapely.get_type_id(hull) == 3)  # a polygon of positive area
        pw, po, ratio, hull = pw[ok], po[ok], ratio[ok], hull[ok]
        if len(pw):
            padded, counts = _exterior_vertices(hull)
            ok = counts >= 3
            quads = _quad_from_clipped(padded[ok], counts[ok], polys[po[ok]])
            pw, po, ratio = pw[ok], po[ok], ratio[ok]
            # numerical slack of the clipped corners stays inside the window
            quads[:, 0::2] = np.clip(quads[:, 0::2], windows[pw, 0:1], windows[pw, 2:3])
            quads[:, 1::2] = np.clip(quads[:, 1::2], windows[pw, 1:2], windows[pw, 3:4])
            out_win.append(pw)
            out_obj.append(po)
            out_poly.append(quads)
            out_diff.append(np.where(ratio >= iof_thr, difficulty[po], 2))
    win_all, obj_all = np.concatenate(out_win), np.concatenate(out_obj)
    order = np.lexsort((obj_all, win_all))
    return (
        win_all[order],
        obj_all[order],
        np.concatenate(out_poly)[order],
        np.concatenate(out_diff)[order].astype(np.int64),
    )


def _write_bytes_atomic(path: str, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def split_image(
    image_path: str,
    label_path: Optional[str],
    out_image_dir: str,
    out_label_dir: Optional[str],
    config: SplitConfig,
    class_names: Sequence[str],
) -> int:
    """Cut one image (and its labels) into patches, written atomically.

    Args:
        image_path: the full image.
        label_path: its ``labelTxt`` file, or None (no labels written).
        out_image_dir, out_label_dir: output directories (must exist).
        config: see :class:`SplitConfig`.
        class_names: the version's classes (labels are validated against them).

    Returns:
        the number of patches written.
    """
    image = read_image(image_path, "BGR", max_pixels=AERIAL_MAX_IMAGE_PIXELS)
    stem = os.path.splitext(os.path.basename(image_path))[0]
    labels = (
        read_dota_labels(label_path, class_names, degenerate="keep")
        if label_path is not None
        else None
    )
    size = config.patch_size
    encode = [cv2.IMWRITE_PNG_COMPRESSION, 1] if config.image_ext == ".png" else []
    written = 0
    for rate in config.rates:
        hr, wr = _resized_size(image.shape[0], rate), _resized_size(image.shape[1], rate)
        xs, ys = window_origins(wr, size, config.gap), window_origins(hr, size, config.gap)
        origins = np.array([(x, y) for x in xs for y in ys], dtype=np.int64).reshape(-1, 2)
        windows = np.concatenate([origins, np.minimum(origins + size, [wr, hr])], axis=1).astype(
            np.float64
        )
        if labels is not None:
            win_i, obj_i, quads, diffs = _patch_labels(
                labels.polys * rate, labels.difficulty, windows, config.iof_thr
            )
            bounds = np.searchsorted(win_i, np.arange(len(windows) + 1))
        for w, (x0, y0) in enumerate(origins.tolist()):
            name = format_patch_name(stem, rate, x0, y0)
            patch = _cut_patch(image, rate, x0, y0, size, config.padding_value)
            ok, buf = cv2.imencode(config.image_ext, patch, encode)
            if not ok:
                raise IOError(f"cannot encode patch {name}{config.image_ext}")
            _write_bytes_atomic(os.path.join(out_image_dir, name + config.image_ext), buf.tobytes())
            if labels is not None and out_label_dir is not None:
                rows = slice(bounds[w], bounds[w + 1])
                write_dota_labels(
                    os.path.join(out_label_dir, name + ".txt"),
                    quads[rows] - np.tile([x0, y0], 4),
                    [class_names[c] for c in labels.category_ids[obj_i[rows]]],
                    diffs[rows],
                )
            written += 1
    return written


def _split_one(args) -> int:
    cv2.setNumThreads(1)  # one image per worker process
    return split_image(*args)


def split_dataset(
    image_dirs: Sequence[str],
    ann_dirs: Optional[Sequence[Optional[str]]],
    out_dir: str,
    config: SplitConfig,
    version="1.0",
    *,
    workers: int = 0,
    progress: bool = True,
) -> Dict[str, int]:
    """Split every image of one or more DOTA splits into ``out_dir/{images,labelTxt}``.

    Args:
        image_dirs: image directories (e.g. train and val for trainval).
        ann_dirs: their label directories (same length; an entry or the whole argument may be
            None for unlabelled images, e.g. test).
        out_dir: output root; ``images/`` and (when labelled) ``labelTxt/`` are created.
        config: see :class:`SplitConfig`.
        version: DOTA version whose classes the labels use.
        workers: processes; 0 or 1 splits in this process.
        progress: show a tqdm progress bar.

    Returns:
        ``{"images": number of source images, "patches": number of patches written}``.
    """
    class_names = dota_class_names(version)
    ann_dirs = list(ann_dirs) if ann_dirs is not None else [None] * len(image_dirs)
    if len(ann_dirs) != len(image_dirs):
        raise ValueError(
            f"{len(image_dirs)} image directories but {len(ann_dirs)} label directories"
        )
    labelled = [a is not None for a in ann_dirs]
    if any(labelled) and not all(labelled):
        raise ValueError("either all or none of the source splits must have labels")
    out_images = os.path.join(out_dir, "images")
    out_labels = os.path.join(out_dir, "labelTxt") if all(labelled) else None
    os.makedirs(out_images, exist_ok=True)
    if out_labels:
        os.makedirs(out_labels, exist_ok=True)
    jobs = []
    for image_dir, ann_dir in zip(image_dirs, ann_dirs):
        for path in list_dota_images(image_dir):
            label = None
            if ann_dir is not None:
                label = os.path.join(ann_dir, os.path.splitext(os.path.basename(path))[0] + ".txt")
                if not os.path.isfile(label):
                    raise FileNotFoundError(f"image {path} has no label file {label}")
            jobs.append((path, label, out_images, out_labels, config, class_names))
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc=f"split -> {out_dir}", unit="img")
    patches = 0
    if workers > 1 and len(jobs) > 1:
        with get_context("spawn").Pool(workers) as pool:
            for n in pool.imap_unordered(_split_one, jobs):
                patches += n
                if progress:
                    bar.update()
    else:
        for job in jobs:
            patches += split_image(*job)
            if progress:
                bar.update()
    if progress:
        bar.close()
    with atomic_open(os.path.join(out_dir, "split_config.json"), "w") as f:
        json.dump(asdict(config), f, indent=2)
    logger.info(f"Split {len(jobs)} images into {patches} patches in {out_dir}")
    return {"images": len(jobs), "patches": patches}


def ensure_split_dataset(
    image_dirs: Sequence[str],
    ann_dirs: Optional[Sequence[Optional[str]]],
    out_dir: str,
    config: SplitConfig,
    version="1.0",
) -> str:
    """:func:`split_dataset` into `out_dir` unless it is already there (safe across processes).

    The patches are written into a temporary sibling directory renamed to `out_dir` at the end
    (:func:`~fasttcm.utils.atomic_io.build_dir_once`), so a reader sees a complete split or none;
    a process that loses the race discards its copy. Any existing `out_dir` counts as complete
    and is used as it is, whatever config it was cut with.

    Returns:
        `out_dir`.
    """
    build_dir_once(
        out_dir,
        lambda tmp: split_dataset(image_dirs, ann_dirs, tmp, config, version),
        is_complete=os.path.isdir,
    )
    return out_dir
