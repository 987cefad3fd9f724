"""DOTA datasets: image folders, detectron2 dataset dicts and the registration of one split.

A DOTA split is a folder of images (``images/``) and, except for the test split, one
``labelTxt/<image stem>.txt`` per image (format and reader in
:mod:`fasttcm.data.datasets.dota_labels`). The predefined splits are registered by
:mod:`fasttcm.data.datasets.builtin`.

Dataset dicts (one per image, detectron2 standard keys)::

    {"file_name", "image_id" (file stem), "height", "width",
     "annotations": [{"bbox": [cx, cy, w, h, a], "bbox_mode": BoxMode.XYWHA_ABS,
                      "category_id", "difficult": bool, "poly": [8 floats]}]}

``poly`` is the file's quadrilateral ``x1, y1, ..., x4, y4`` in absolute pixels of the image
(x right, y down). ``bbox`` is its minimum-area rotated box in detectron2's XYWHA convention
(centre and size in absolute pixels, angle in degrees, counter-clockwise on screen,
``[-180, 180)``; see :mod:`fasttcm.utils.geometry`). Splits without published labels (DOTA test)
have no ``"annotations"`` key.
"""

import logging
import os
from typing import Callable, List, Optional, Sequence, Union

from ...utils.geometry import poly_to_xywha
from ..image_io import read_image_size  # displayed (height, width); re-exported
from .dota_labels import read_dota_labels
from .dota_meta import dota_class_names, dota_metadata

__all__ = [
    "IMAGE_EXTENSIONS",
    "list_dota_images",
    "read_image_size",
    "load_dota_dicts",
    "register_dota",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
"""File extensions taken for images in a DOTA ``images/`` directory."""


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
        degenerate: zero-area quadrilaterals, see
            :func:`~fasttcm.data.datasets.dota_labels.read_dota_labels` (default: skip them with
            a warning, since no rotated box can be trained on them).

    Returns:
        list of dicts in detectron2's standard format (see the module docstring).

    Raises:
        FileNotFoundError: a missing directory, or an image without its label file.
        DOTAFormatError: a malformed label file (from
            :mod:`fasttcm.data.datasets.dota_labels`).
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
