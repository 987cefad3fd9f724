"""Registration of text-dataset splits in detectron2's DatasetCatalog and MetadataCatalog.

A registered split is loaded lazily: nothing is read until ``DatasetCatalog.get(name)`` calls
:func:`fasttcm.data.datasets.text_json.load_text_json` (annotated splits) or
:func:`fasttcm.data.datasets.text_image_list.load_text_image_list` (unannotated image lists).
Every text split has ``thing_classes=["text"]`` and, unless its metadata says otherwise,
``evaluator_type="text_det"`` and ``eval_protocol="iou"``.
"""

import os
from typing import Optional

from detectron2.data import DatasetCatalog, MetadataCatalog

from .text_image_list import load_text_image_list
from .text_json import load_text_json

__all__ = [
    "TEXT_THING_CLASSES",
    "text_split_metadata",
    "register_text_instances",
    "register_text_images",
]

TEXT_THING_CLASSES = ["text"]


def text_split_metadata(metadata: Optional[dict] = None, **paths) -> dict:
    """Complete the metadata of a text split with its defaults.

    Args:
        metadata: split metadata (e.g. from ``builtin_meta``); may set ``evaluator_type``
            (default ``"text_det"``), ``eval_protocol`` (default ``"iou"``, the ICDAR IoU
            protocol), ``gt_dir``, ``word_spotting``, ``lexicon_dir``, ...
        paths: ``json_file``, ``image_root``, ... stored as given.

    Returns:
        A new dict including ``thing_classes=["text"]``.

    Raises:
        ValueError: `metadata` sets ``thing_classes`` to anything but ``["text"]``.
    """
    meta = {"evaluator_type": "text_det", "eval_protocol": "iou"}
    meta.update(metadata or {})
    if list(meta.get("thing_classes", TEXT_THING_CLASSES)) != TEXT_THING_CLASSES:
        raise ValueError(
            f"text datasets have thing_classes {TEXT_THING_CLASSES}, got {meta['thing_classes']}"
        )
    meta["thing_classes"] = list(TEXT_THING_CLASSES)
    meta.update({k: os.fspath(v) for k, v in paths.items()})
    return meta


def register_text_instances(name: str, metadata: dict, json_file, image_root) -> None:
    """Register a text-JSON dataset under `name` in DatasetCatalog and MetadataCatalog.

    Nothing is read until ``DatasetCatalog.get(name)`` calls
    :func:`~fasttcm.data.datasets.text_json.load_text_json`.

    Args:
        name: dataset name, e.g. ``"my_text_train"``.
        metadata: extra metadata (see :func:`text_split_metadata`); ``{}`` for the defaults
            ``evaluator_type="text_det"``, ``eval_protocol="iou"``.
        json_file: path of the text JSON.
        image_root: folder the JSON's ``file_name`` entries are relative to.

    Example::

        register_text_instances("my_text_train", {}, "data/my/train.json", "data/my/train_images")
    """
    json_file, image_root = os.fspath(json_file), os.fspath(image_root)
    DatasetCatalog.register(name, lambda: load_text_json(json_file, image_root, name))
    MetadataCatalog.get(name).set(
        **text_split_metadata(metadata, json_file=json_file, image_root=image_root)
    )


def register_text_images(name: str, metadata: dict, list_file, image_root) -> None:
    """Register unannotated images listed in `list_file` under `name`.

    The metadata gets ``has_annotations=False``; such a split is for inference/submission only.

    Args:
        name: dataset name.
        metadata: extra metadata (see :func:`text_split_metadata`).
        list_file: text file naming one image per line (see
            :func:`~fasttcm.data.datasets.text_image_list.load_text_image_list`).
        image_root: folder the listed names are relative to.
    """
    list_file, image_root = os.fspath(list_file), os.fspath(image_root)
    DatasetCatalog.register(name, lambda: load_text_image_list(list_file, image_root, name))
    meta = dict(metadata, has_annotations=False)
    MetadataCatalog.get(name).set(
        **text_split_metadata(meta, image_list=list_file, image_root=image_root)
    )
