"""DOTA datasets: the ``labelTxt`` parser, detectron2 dataset dicts and registration.

``labelTxt/<image>.txt`` (DOTA-v1.0 and v1.5, evaluation.md section 5):

* optional header lines ``imagesource:GoogleEarth`` and ``gsd:0.146`` (``gsd:null`` allowed);
* object lines ``x1 y1 x2 y2 x3 y3 x4 y4 <class> [<difficult>]``: a quadrilateral in absolute
  pixels of the image (x right, y down), a class name of the version, and a difficulty that is
  0 when missing, 1 for difficult objects and 2 for objects truncated by the patch split.

The devkit silently skips any line with fewer than 9 fields; here a line that is neither a header
nor a well-formed object line is an error naming the file and the line, as are unknown class
names. Zero-area quadrilaterals are an error, a skipped object with a warning, or kept, as the
caller chooses (the Task-1 evaluation keeps them, as the devkit does: they count as misses).

Dataset dicts (one per image, detectron2 standard keys)::

    {"file_name", "image_id" (file stem), "height", "width",
     "annotations": [{"bbox": [cx, cy, w, h, a], "bbox_mode": BoxMode.XYWHA_ABS,
                      "category_id", "difficult": bool, "poly": [8 floats]}]}

``bbox`` is the minimum-area rotated box of ``poly`` in detectron2's convention (angle in degrees,
counter-clockwise on screen, ``[-180, 180)``; see :mod:`fasttcm.utils.geometry`). Splits without
published labels (DOTA test) have no ``"annotations"`` key.
"""

import logging
import os
import struct
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ...utils.geometry import poly_to_xywha, polygon_area
from .dota_meta import dota_class_names, dota_metadata

__all__ = [
    "DOTAFormatError",
    "DOTALabels",
    "IMAGE_EXTENSIONS",
    "read_dota_labels",
    "list_dota_images",
    "read_image_size",
    "load_dota_dicts",
    "register_dota",
    "register_all_dota",
    "SYNTHETIC_AERIAL_SPLITS",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
"""File extensions taken for images in a DOTA ``images/`` directory."""

_DEGENERATE_POLICIES = ("error", "skip", "keep")
_MIN_AREA = 1e-6  # px^2; below this a quadrilateral counts as zero-area


class DOTAFormatError(ValueError):
    """A ``labelTxt`` file that does not follow the DOTA format (the message names file and line)."""


@dataclass(frozen=True)
class DOTALabels:
    """The objects of one ``labelTxt`` file, in file order.

    Attributes:
        polys: float64 ``(N, 8)`` quadrilaterals ``x1, y1, ..., x4, y4`` (absolute pixels).
        category_ids: int64 ``(N,)`` indices into the class list the file was read with.
        difficulty: int64 ``(N,)`` the file's flag: 0 normal, 1 difficult, 2 truncated by a split.
        line_numbers: int64 ``(N,)`` 1-based line of each object, for messages.
        image_source: value of the ``imagesource:`` header, or None.
        gsd: ground sample distance from the ``gsd:`` header (metres/pixel), or None.
    """

    polys: np.ndarray
    category_ids: np.ndarray
    difficulty: np.ndarray
    line_numbers: np.ndarray
    image_source: Optional[str] = None
    gsd: Optional[float] = None

    @property
    def difficult(self) -> np.ndarray:
        """bool ``(N,)``: difficulty != 0, i.e. what the devkit ignores."""
        return self.difficulty != 0

    def __len__(self) -> int:
        return len(self.polys)


def _parse_header(path, lineno: int, key: str, value: str, headers: Dict[str, object]) -> None:
    if key == "gsd":
        if value.lower() in ("", "null", "none"):
            headers["gsd"] = None
            return
        try:
            headers["gsd"] = float(value)
        except ValueError:
            raise DOTAFormatError(f"{path}:{lineno}: 'gsd:' header with a non-number {value!r}")
    elif key == "imagesource":
        headers["image_source"] = value


def read_dota_labels(
    path: Union[str, os.PathLike],
    class_names: Sequence[str],
    *,
    degenerate: str = "error",
) -> DOTALabels:
    """Parse one DOTA ``labelTxt`` file.

    Args:
        path: the ``.txt`` file.
        class_names: the version's classes (``category_id`` = index in this list).
        degenerate: what to do with a zero-area quadrilateral: ``"error"`` (raise), ``"skip"``
            (drop it, log a warning naming file and line) or ``"keep"``.

    Returns:
        :class:`DOTALabels`.

    Raises:
        DOTAFormatError: a malformed line, a class not in `class_names`, a negative or
            non-integer difficulty, a non-finite coordinate, or (``degenerate="error"``) a
            zero-area quadrilateral; the message is ``<file>:<line>: <problem>``.
        FileNotFoundError: `path` does not exist.
    """
    if degenerate not in _DEGENERATE_POLICIES:
        raise ValueError(f"degenerate must be one of {_DEGENERATE_POLICIES}, got {degenerate!r}")
    class_index = {name: i for i, name in enumerate(class_names)}
    headers: Dict[str, object] = {}
    coords: List[List[float]] = []
    cats: List[int] = []
    diffs: List[int] = []
    lines: List[int] = []
    with open(path, "r", encoding="utf-8-sig") as f:
        for lineno, raw in enumerate(f, start=1):
            tokens = raw.split()
            if not tokens:
                continue
            if len(tokens) == 1 and ":" in tokens[0]:
                key, _, value = tokens[0].partition(":")
                _parse_header(path, lineno, key.strip().lower(), value.strip(), headers)
                continue
            if len(tokens) not in (9, 10):
                raise DOTAFormatError(
                    f"{path}:{lineno}: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class [difficult]' "
                    f"(9 or 10 fields), got {len(tokens)} fields: {raw.strip()!r}"
                )
            try:
                xy = [float(t) for t in tokens[:8]]
            except ValueError:
                raise DOTAFormatError(
                    f"{path}:{lineno}: the first 8 fields must be numbers: {raw.strip()!r}"
                )
            if not np.all(np.isfinite(xy)):
                raise DOTAFormatError(f"{path}:{lineno}: non-finite coordinate: {raw.strip()!r}")
            name = tokens[8]
            if name not in class_index:
                raise DOTAFormatError(
                    f"{path}:{lineno}: unknown class {name!r}; this dataset's classes are "
                    f"{list(class_names)}"
                )
            difficulty = 0
            if len(tokens) == 10:
                try:
                    difficulty = int(tokens[9])
                except ValueError:
                    difficulty = -1
                if difficulty < 0:
                    raise DOTAFormatError(
                        f"{path}:{lineno}: difficulty must be a non-negative integer, "
                        f"got {tokens[9]!r}"
                    )
            if abs(polygon_area(np.asarray(xy))[0]) < _MIN_AREA:
                if degenerate == "error":
                    raise DOTAFormatError(
                        f"{path}:{lineno}: zero-area quadrilateral: {raw.strip()!r}"
                    )
                if degenerate == "skip":
                    logger.warning(f"{path}:{lineno}: skipping zero-area quadrilateral {xy}")
                    continue
            coords.append(xy)
            cats.append(class_index[name])
            diffs.append(difficulty)
            lines.append(lineno)
    return DOTALabels(
        polys=np.asarray(coords, dtype=np.float64).reshape(-1, 8),
        category_ids=np.asarray(cats, dtype=np.int64),
        difficulty=np.asarray(diffs, dtype=np.int64),
        line_numbers=np.asarray(lines, dtype=np.int64),
        image_source=headers.get("image_source"),
        gsd=headers.get("gsd"),
    )


def _png_size(path: str):
    """(width, height) from a PNG's IHDR chunk, or None if `path` is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) == 24 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    return None


def read_image_size(path: str) -> Tuple[int, int]:
    """(height, width) of an image, read from its header only (images can be 20000 px wide)."""
    size = _png_size(path)
    if size is None:
        from PIL import Image

        with Image.open(path) as im:  # lazy: decodes the header only
            size = im.size
    width, height = size
    return int(height), int(width)


def list_dota_images(image_dir: Union[str, os.PathLike]) -> List[str]:
    """Sorted paths of the images (:data:`IMAGE_EXTENSIONS`) directly inside `image_dir`."""
    image_dir = os.fspath(image_dir)
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(f"DOTA image directory {image_dir} does not exist")
    names = sorted(
        n for n in os.listdir(image_dir) if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS
    )
    return [os.path.join(image_dir, n) for n in names]


def load_dota_dicts(
    image_dir: Union[str, os.PathLike],
    ann_dir: Optional[Union[str, os.PathLike]],
    class_names: Sequence[str],
    *,
    degenerate: str = "skip",
) -> List[dict]:
    """Dataset dicts of a DOTA split (raw images or split patches).

    Args:
        image_dir: directory of images; every image becomes one dict.
        ann_dir: directory of ``<image stem>.txt`` label files, or None for a split without
            labels (no ``"annotations"`` key then).
        class_names: the version's classes.
        degenerate: zero-area quadrilaterals, see :func:`read_dota_labels` (default: skip
            them with a warning, since no rotated box can be trained on them).

    Returns:
        list of dicts in detectron2's standard format (see the module docstring).

    Raises:
        FileNotFoundError: a missing directory, or an image without its label file.
        DOTAFormatError: a malformed label file.
    """
    from detectron2.structures import BoxMode

    images = list_dota_images(image_dir)
    if ann_dir is not None and not os.path.isdir(ann_dir):
        raise FileNotFoundError(f"DOTA label directory {ann_dir} does not exist")
    dicts = []
    for path in images:
        stem = os.path.splitext(os.path.basename(path))[0]
        height, width = read_image_size(path)
        record = {"file_name": path, "image_id": stem, "height": height, "width": width}
        if ann_dir is not None:
            label_path = os.path.join(ann_dir, stem + ".txt")
            if not os.path.isfile(label_path):
                raise FileNotFoundError(f"image {path} has no label file {label_path}")
            labels = read_dota_labels(label_path, class_names, degenerate=degenerate)
            boxes = poly_to_xywha(labels.polys)
            record["annotations"] = [
                {
                    "bbox": box.tolist(),
                    "bbox_mode": BoxMode.XYWHA_ABS,
                    "category_id": int(cat),
                    "difficult": bool(diff),
                    "poly": poly.tolist(),
                }
                for box, poly, cat, diff in zip(
                    boxes, labels.polys, labels.category_ids, labels.difficulty
                )
            ]
        dicts.append(record)
    logger.info(f"Loaded {len(dicts)} DOTA images from {image_dir}")
    return dicts


def register_dota(
    name: str,
    image_dir: str,
    ann_dir: Optional[str],
    version="1.0",
    *,
    gt_dir: Optional[Union[str, Sequence[str]]] = None,
    prepare: Optional[Callable[[], None]] = None,
    degenerate: str = "skip",
    **metadata,
) -> None:
    """Register a DOTA split with detectron2's ``DatasetCatalog`` and ``MetadataCatalog``.

    Nothing is read at registration: missing files fail with a clear message when the split is
    first loaded.

    Args:
        name: dataset name, e.g. ``"dota10_trainval_ss1024"``.
        image_dir: directory of the images (or patches).
        ann_dir: directory of their ``labelTxt`` files, or None (test split).
        version: DOTA version (``"1.0"``/``"dota10"`` or ``"1.5"``/``"dota15"``).
        gt_dir: directory (or directories) of the *full-image* ``labelTxt`` files the
            :class:`DOTAEvaluator` scores merged detections against; None for a format-only
            split. For an unsplit split it is `ann_dir` itself.
        prepare: called before the dicts are loaded (e.g. to generate synthetic images on
            first use); it must be idempotent and safe to call from several processes.
        degenerate: zero-area quadrilaterals, see :func:`load_dota_dicts`.
        **metadata: extra metadata (e.g. ``split_config``).
    """
    from detectron2.data import DatasetCatalog, MetadataCatalog

    class_names = dota_class_names(version)

    def load():
        if prepare is not None:
            prepare()
        return load_dota_dicts(image_dir, ann_dir, class_names, degenerate=degenerate)

    DatasetCatalog.register(name, load)
    MetadataCatalog.get(name).set(
        image_root=image_dir,
        ann_dir=ann_dir,
        gt_dir=gt_dir,
        **dota_metadata(version),
        **metadata,
    )


# ------------------------------------------------------------------------------------------------
# predefined splits under $DETECTRON2_DATASETS

_DOTA_VERSIONS = {"dota10": "1.0", "dota15": "1.5"}
_RAW_SPLITS = ("train", "val", "test")
_SPLIT_SOURCES = {  # patch split -> the raw splits it is cut from (split configs' source_splits)
    "train": ("train",),
    "val": ("val",),
    "trainval": ("train", "val"),
    "test": ("test",),
}
_SPLIT_SCHEMES = ("ss1024", "ms1024")  # datasets/dota_split_configs/{ss,ms}_*.json

SYNTHETIC_AERIAL_SPLITS = {
    # split: (number of images, seed); images are 2048-4096 px a side
    "train": (24, 0),
    "val": (6, 2),  # for choosing test-time settings without looking at the test split
    "test": (6, 1),
}
"""Size and seed of the generated ``synthetic_aerial_{train,val,test}`` splits."""


def _label_dir_or_none(split: str, path: str) -> Optional[str]:
    return None if split == "test" else path  # DOTA test labels are not published


def _prepare_synthetic_aerial(raw_dir: str, split: str) -> Callable[[], None]:
    num_images, seed = SYNTHETIC_AERIAL_SPLITS[split]

    def prepare():
        from ..synthetic.aerial import ensure_aerial_dataset

        ensure_aerial_dataset(raw_dir, num_images, seed)

    return prepare


def _prepare_synthetic_aerial_split(raw_dir: str, split_dir: str, split: str) -> Callable[[], None]:
    prepare_raw = _prepare_synthetic_aerial(raw_dir, split)

    def prepare():
        from ..dota_split import SplitConfig, ensure_split_dataset

        prepare_raw()
        ensure_split_dataset(
            [os.path.join(raw_dir, "images")],
            [os.path.join(raw_dir, "labelTxt")],
            split_dir,
            SplitConfig(),  # ss1024: 1024 px patches, gap 200, rate 1
            version="1.0",
        )

    return prepare


def register_all_dota(root: str) -> None:
    """Register every predefined DOTA and synthetic-aerial split rooted at `root`.

    Layout under `root` (``$DETECTRON2_DATASETS``)::

        dota10/{train,val,test}/{images,labelTxt}          dota10_{train,val,test}
        dota10_split/{ss1024,ms1024}/{train,val,trainval,test}/{images,labelTxt}
                                                           dota10_{train,val,trainval,test}_{ss,ms}1024
        dota15/..., dota15_split/...                       the same names with dota15 (16 classes)
        synthetic_aerial/{train,val,test}/{images,labelTxt}   synthetic_aerial_{train,val,test}
        synthetic_aerial_split/ss1024/{train,val,test}/...   synthetic_aerial_{train,val,test}_ss1024

    DOTA splits are cut with ``tools/dota_split.py`` and the configs in
    ``datasets/dota_split_configs``; the synthetic splits are generated (and cut) on first load.
    Test splits have no labels: their evaluation only writes ``Task1_<class>.txt`` files.
    """
    for prefix, version in _DOTA_VERSIONS.items():
        for split in _RAW_SPLITS:
            base = os.path.join(root, prefix, split)
            labels = _label_dir_or_none(split, os.path.join(base, "labelTxt"))
            register_dota(
                f"{prefix}_{split}", os.path.join(base, "images"), labels, version, gt_dir=labels
            )
        for scheme in _SPLIT_SCHEMES:
            for split, sources in _SPLIT_SOURCES.items():
                base = os.path.join(root, f"{prefix}_split", scheme, split)
                gt_dirs = [os.path.join(root, prefix, s, "labelTxt") for s in sources]
                register_dota(
                    f"{prefix}_{split}_{scheme}",
                    os.path.join(base, "images"),
                    _label_dir_or_none(split, os.path.join(base, "labelTxt")),
                    version,
                    gt_dir=None if split == "test" else gt_dirs,
                    split_scheme=scheme,
                )
    for split in SYNTHETIC_AERIAL_SPLITS:
        raw = os.path.join(root, "synthetic_aerial", split)
        raw_labels = os.path.join(raw, "labelTxt")
        register_dota(
            f"synthetic_aerial_{split}",
            os.path.join(raw, "images"),
            raw_labels,
            "1.0",
            gt_dir=raw_labels,
            prepare=_prepare_synthetic_aerial(raw, split),
        )
        patches = os.path.join(root, "synthetic_aerial_split", "ss1024", split)
        register_dota(
            f"synthetic_aerial_{split}_ss1024",
            os.path.join(patches, "images"),
            os.path.join(patches, "labelTxt"),
            "1.0",
            gt_dir=raw_labels,
            prepare=_prepare_synthetic_aerial_split(raw, patches, split),
            split_scheme="ss1024",
        )
