"""COCO-format text datasets (AdelaiDet's Total-Text / CTW1500 JSONs, or ``text`` fields).

:func:`load_coco_text_json` reads a COCO instances JSON whose annotations hold a polygon
``segmentation`` and a transcription (a ``text`` string, or AdelaiDet's ``rec`` charset indices),
translates it into the project text JSON with
:func:`fasttcm.data.converters.coco_text.coco_to_text_json` (schema, ``rec`` convention and
``iscrowd`` rules are in that module's docstring) and returns the very dataset dicts
:func:`fasttcm.data.datasets.text_json.load_text_json` returns: polygons in absolute pixels of the
displayed (EXIF-applied) image (x right, y down), ``text``, ``ignore``, XYXY_ABS ``bbox``. The
same checks apply (``file_name`` must stay inside the image root; missing images are skipped;
unusable polygons are skipped or repaired with a warning), and messages name the COCO file.

:func:`register_coco_text_instances` registers such a split with the metadata of the project's
own text splits (``evaluator_type="text_det"``, ``thing_classes=["text"]``, ...), so the text
mapper, the detector, the spotter and the evaluators use it unchanged.
"""

import json
import os
from typing import List, Optional

from detectron2.data import DatasetCatalog, MetadataCatalog

from ..converters.coco_text import TEXT_FIELDS, check_charset, coco_to_text_json
from .text_json import text_json_to_dicts
from .text_registration import text_split_metadata

__all__ = ["load_coco_text_json", "register_coco_text_instances"]


def load_coco_text_json(
    json_file,
    image_root,
    dataset_name: Optional[str] = None,
    *,
    text_field: str = "text",
    charset: Optional[str] = None,
) -> List[dict]:
    """Load a COCO text JSON into detectron2 dataset dicts (module docstring).

    Args:
        json_file: path of the COCO JSON.
        image_root: folder that its ``file_name`` entries are relative to.
        dataset_name: registered name, used in messages.
        text_field: ``"text"`` (transcription strings) or ``"rec"`` (charset indices).
        charset: characters of the ``rec`` indices; None = AdelaiDet's 95 printable ASCII
            characters (:data:`fasttcm.data.converters.coco_text.ADELAIDET_CHARSET`).

    Returns:
        One dict per image that exists on disk, as
        :func:`~fasttcm.data.datasets.text_json.load_text_json` returns them.

    Raises:
        FileNotFoundError: the JSON is missing, or none of its images exists.
        ValueError: malformed JSON or schema violations (the message names file and id).
    """
    json_file = os.fspath(json_file)
    if not os.path.isfile(json_file):
        label = f"Dataset {dataset_name!r}: COCO" if dataset_name else "COCO"
        raise FileNotFoundError(f"{label} annotation file {json_file} does not exist")
    try:
        with open(json_file, "r", encoding="utf-8") as f:
            data = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{json_file}: not a valid UTF-8 JSON file ({e})") from e
    text_data = coco_to_text_json(data, json_file, text_field=text_field, charset=charset)
    return text_json_to_dicts(text_data, json_file, image_root, dataset_name)


def register_coco_text_instances(
    name: str,
    metadata: dict,
    json_file,
    image_root,
    *,
    text_field: str = "text",
    charset: Optional[str] = None,
) -> None:
    """Register a COCO text JSON under `name` in DatasetCatalog and MetadataCatalog.

    Nothing is read until ``DatasetCatalog.get(name)`` calls :func:`load_coco_text_json`.

    Args:
        name: dataset name, e.g. ``"totaltext_coco_train"``.
        metadata: extra metadata (see
            :func:`~fasttcm.data.datasets.text_registration.text_split_metadata`); ``{}`` for
            ``evaluator_type="text_det"``, ``eval_protocol="iou"``.
        json_file: path of the COCO JSON.
        image_root: folder the JSON's ``file_name`` entries are relative to.
        text_field: ``"text"`` or ``"rec"`` (AdelaiDet's charset indices).
        charset: characters of the ``rec`` indices; None = AdelaiDet's.

    Raises:
        ValueError: bad `text_field` or `charset` (checked now, not at load time).

    Example::

        register_coco_text_instances(
            "totaltext_coco_train", {}, "data/totaltext/train.json", "data/totaltext/train_images",
            text_field="rec",
        )
    """
    if text_field not in TEXT_FIELDS:
        raise ValueError(f"text_field must be one of {TEXT_FIELDS}, got {text_field!r}")
    if charset is not None:
        check_charset(charset)
    json_file, image_root = os.fspath(json_file), os.fspath(image_root)

    def load() -> List[dict]:
        return load_coco_text_json(
            json_file, image_root, name, text_field=text_field, charset=charset
        )

    DatasetCatalog.register(name, load)
    MetadataCatalog.get(name).set(
        **text_split_metadata(metadata, json_file=json_file, image_root=image_root)
    )
