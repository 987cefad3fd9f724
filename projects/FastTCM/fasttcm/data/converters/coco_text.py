"""COCO-format text annotations <-> the project text JSON, as plain dicts (no detectron2).

The COCO text JSON read here is the format of AdelaiDet's Total-Text / CTW1500 releases, or any
COCO instances file whose annotations carry a transcription::

    {"images": [{"id": int, "file_name": str, "height": int, "width": int}, ...],
     "annotations": [{"id": int, "image_id": int, "segmentation": [[x1, y1, ..., xn, yn]],
                      "iscrowd": 0 | 1,          # optional, default 0
                      "text": str,               # read when text_field="text"
                      "rec": [int, ...],         # read when text_field="rec"
                      "bbox": [x, y, w, h], "category_id": int, ...}],   # not read
     "categories": [...]}

Coordinates are absolute pixels of the image as the project's image reader returns it
(displayed, EXIF-applied frame; x right, y down), as in the project text JSON. ``bbox``,
``area`` and ``category_id`` are not read: boxes are recomputed from the polygons and every
instance is of the one class ``text``.

* ``segmentation`` must be a list holding exactly one flat polygon ``[x1, y1, ..., xn, yn]``
  of numbers (even length). RLE masks (a dict) are refused: text instances need polygons.
* ``iscrowd: 1`` or the text ``"###"`` make a don't-care instance (``ignore: true``).
* ``rec`` (``text_field="rec"``) holds indices into a charset: index ``i < len(charset)`` is
  ``charset[i]``; any index ``>= len(charset)`` is a marker, not a character. AdelaiDet uses the
  95 printable ASCII characters (:data:`ADELAIDET_CHARSET`, a 96-class vocabulary): index 95
  (``len(charset)``) is its unknown/end marker, and its releases pad ``rec`` to a fixed length
  with 95 or 96. Markers after the last character are padding and are stripped; a marker
  followed by a character stands for a character outside the charset and is dropped (the
  count is logged once per file). Negative or non-integer indices are errors.

:func:`coco_to_text_json` turns a COCO document into the project text JSON (ids kept, so later
messages name the same ids); :func:`text_json_to_coco` goes the other way, writing ``text``
and ``iscrowd = ignore``. Schema errors raise ``ValueError`` naming the file and the offending
image or annotation id.
"""

import json
import logging
import math
import os
from numbers import Real
from typing import Optional

from ...structures.text import DONT_CARE_TEXT
from ...utils.atomic_io import atomic_write_json
from ..datasets.json_entries import (
    check_annotation_entry,
    check_top_level,
    is_int,
    parse_image_entries,
)
from .text_json import JSON_SCHEMA_VERSION

logger = logging.getLogger(__name__)

__all__ = [
    "ADELAIDET_CHARSET",
    "TEXT_FIELDS",
    "decode_rec",
    "coco_to_text_json",
    "text_json_to_coco",
    "convert_json_file",
]

ADELAIDET_CHARSET = "".join(chr(code) for code in range(32, 127))
"""AdelaiDet's 95-character charset of ``rec`` indices: printable ASCII, space (index 0) to
``~`` (index 94); index 95 is its unknown/end marker."""

TEXT_FIELDS = ("text", "rec")
"""Annotation keys a transcription can be read from."""


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_charset(charset: str) -> str:
    """Validate a ``rec`` charset: a non-empty string without repeated characters.

    Raises:
        ValueError: empty, not a string, or a character repeats.
    """
    if not isinstance(charset, str) or not charset:
        raise ValueError(f"rec charset must be a non-empty string, got {charset!r}")
    repeated = sorted({c for c in charset if charset.count(c) > 1})
    if repeated:
        raise ValueError(f"rec charset repeats the characters {repeated}")
    return charset


def decode_rec(rec, charset: str, where: str):
    """Decode a ``rec`` index list (the convention is in the module docstring).

    Args:
        rec: list of integer indices into `charset`.
        charset: the characters of indices ``0 .. len(charset) - 1``.
        where: what to name in errors (file and annotation id).

    Returns:
        ``(text, num_unknown)``: the word, and how many unknown-character markers inside it
        were dropped.

    Raises:
        ValueError: `rec` is not a list of non-negative integers.
    """
    if not isinstance(rec, list) or not all(is_int(i) and i >= 0 for i in rec):
        raise ValueError(f"{where}: 'rec' must be a list of non-negative integers, got {rec!r}")
    end = len(rec)
    while end and rec[end - 1] >= len(charset):
        end -= 1  # trailing padding
    chars = [charset[i] for i in rec[:end] if i < len(charset)]
    return "".join(chars), end - len(chars)


def _polygon(segmentation, where: str) -> list:
    """The one flat COCO polygon of `segmentation` as ``[[x, y], ...]`` pairs."""
    if isinstance(segmentation, dict):
        raise ValueError(
            f"{where}: 'segmentation' is an RLE mask; text instances need a polygon "
            "[[x1, y1, ..., xn, yn]]"
        )
    if not isinstance(segmentation, list) or len(segmentation) != 1:
        count = len(segmentation) if isinstance(segmentation, list) else "no"
        raise ValueError(
            f"{where}: 'segmentation' must be a list holding exactly one polygon "
            f"[x1, y1, ..., xn, yn], got {count} polygon(s)"
        )
    flat = segmentation[0]
    if not isinstance(flat, list) or not all(_is_number(v) for v in flat):
        raise ValueError(f"{where}: the polygon must be a flat list of numbers, got {flat!r}")
    if len(flat) % 2:
        raise ValueError(
            f"{where}: the polygon has an odd number of coordinates ({len(flat)}); "
            "expected x1, y1, ..., xn, yn"
        )
    return [[flat[k], flat[k + 1]] for k in range(0, len(flat), 2)]


def coco_to_text_json(
    data,
    json_file: str,
    *,
    text_field: str = "text",
    charset: Optional[str] = None,
    description: str = "",
) -> dict:
    """The project text JSON for a COCO text document (schema and rules: module docstring).

    Args:
        data: the parsed COCO JSON.
        json_file: its path, named in errors.
        text_field: ``"text"`` (a string per annotation) or ``"rec"`` (charset indices).
        charset: the characters of the ``rec`` indices; None = :data:`ADELAIDET_CHARSET`.
            Ignored when `text_field` is ``"text"``.
        description: ``info.description`` of the result (default: the file name).

    Returns:
        The text JSON dict; image and annotation ids are kept, polygons are ``[[x, y], ...]``
        in absolute pixels (x right, y down), ``ignore = iscrowd or text == "###"``.

    Raises:
        ValueError: bad `text_field` or `charset`, or a schema violation (missing keys, wrong
            types, duplicate ids, annotation of an unknown image, file_name leaving the image
            root, RLE or malformed polygon); the message names the file and the id.
    """
    if text_field not in TEXT_FIELDS:
        raise ValueError(f"text_field must be one of {TEXT_FIELDS}, got {text_field!r}")
    charset = check_charset(ADELAIDET_CHARSET if charset is None else charset)
    check_top_level(data, json_file)
    if not data["images"]:
        raise ValueError(f"{json_file}: lists no images")
    images = [
        {"id": i, "file_name": f, "height": h, "width": w}
        for i, f, h, w in parse_image_entries(data["images"], json_file)
    ]
    image_ids = {img["id"] for img in images}

    annotations, seen, num_unknown = [], set(), 0
    for index, ann in enumerate(data["annotations"]):
        required = ("id", "image_id", "segmentation", text_field)
        where = check_annotation_entry(ann, index, json_file, required, image_ids, seen)
        ann_id, image_id = ann["id"], ann["image_id"]
        iscrowd = ann.get("iscrowd", 0)
        if iscrowd not in (0, 1) or not isinstance(iscrowd, (int, bool)):
            raise ValueError(f"{where}: 'iscrowd' must be 0 or 1, got {iscrowd!r}")
        if text_field == "text":
            text = ann["text"]
            if not isinstance(text, str):
                raise ValueError(f"{where}: 'text' must be a string, got {text!r}")
        else:
            text, unknown = decode_rec(ann["rec"], charset, where)
            num_unknown += unknown
        annotations.append(
            {
                "id": ann_id,
                "image_id": image_id,
                "polygon": _polygon(ann["segmentation"], where),
                "text": text,
                "ignore": bool(iscrowd) or text == DONT_CARE_TEXT,
            }
        )
    if num_unknown:
        logger.warning(
            "%s: dropped %d unknown-character marker(s) inside 'rec' words (indices >= %d, "
            "the charset size, followed by a character)",
            json_file,
            num_unknown,
            len(charset),
        )
    return {
        "info": {"description": description or json_file, "version": JSON_SCHEMA_VERSION},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "text"}],
    }


def _bbox_and_area(points: list):
    """COCO ``[x, y, w, h]`` bounds and shoelace area of ``[[x, y], ...]`` (pixels)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, y0 = min(xs), min(ys)
    area = 0.5 * abs(sum(xs[k] * ys[k - 1] - xs[k - 1] * ys[k] for k in range(len(points))))
    return [x0, y0, max(xs) - x0, max(ys) - y0], area


def text_json_to_coco(data, json_file: str = "<text JSON>") -> dict:
    """A COCO text document for a project text JSON (the inverse of :func:`coco_to_text_json`).

    Args:
        data: the parsed project text JSON (schema in ``datasets/README.md``).
        json_file: its path, named in errors.

    Returns:
        COCO instances JSON with the same images and ids; each annotation holds
        ``segmentation = [[x1, y1, ..., xn, yn]]`` (absolute pixels, x right, y down), ``bbox``
        ``[x, y, w, h]``, ``area``, ``category_id = 1``, ``iscrowd = int(ignore)`` and ``text``.

    Raises:
        ValueError: missing keys or wrong types (naming the file and the annotation id).
    """
    check_top_level(data, json_file)
    images = [
        {"id": i, "file_name": f, "height": h, "width": w}
        for i, f, h, w in parse_image_entries(data["images"], json_file)
    ]
    image_ids = {img["id"] for img in images}
    annotations = []
    for index, ann in enumerate(data["annotations"]):
        where = f"{json_file}: annotations[{index}]"
        if not isinstance(ann, dict):
            raise ValueError(f"{where} is not an object")
        missing = [k for k in ("id", "image_id", "polygon", "text", "ignore") if k not in ann]
        if missing:
            raise ValueError(f"{where} lacks key(s) {missing}")
        where = f"{json_file}: annotation {ann['id']} (image {ann['image_id']})"
        if ann["image_id"] not in image_ids:
            raise ValueError(f"{where} refers to an image id that is not in 'images'")
        points = ann["polygon"]
        if not (
            isinstance(points, list)
            and points
            and all(
                isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p)
                for p in points
            )
        ):
            raise ValueError(f"{where}: polygon must be a non-empty list of [x, y] number pairs")
        if not isinstance(ann["text"], str) or not isinstance(ann["ignore"], bool):
            raise ValueError(f"{where}: 'text' must be a string and 'ignore' a boolean")
        bbox, area = _bbox_and_area(points)
        annotations.append(
            {
                "id": ann["id"],
                "image_id": ann["image_id"],
                "category_id": 1,
                "segmentation": [[v for p in points for v in p]],
                "bbox": bbox,
                "area": area if math.isfinite(area) else 0.0,
                "iscrowd": int(ann["ignore"]),
                "text": ann["text"],
            }
        )
    return {
        "info": dict(data.get("info") or {}),
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "text"}],
    }


def _read_json_file(path: str):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a valid UTF-8 JSON file ({e})") from e


def convert_json_file(
    direction: str,
    src,
    dst,
    *,
    overwrite: bool = False,
    text_field: str = "text",
    charset: Optional[str] = None,
) -> dict:
    """Convert one annotation file between the project text JSON and COCO, written atomically.

    Args:
        direction: ``"tococo"`` (project text JSON -> COCO with ``text`` and ``iscrowd``) or
            ``"fromcoco"`` (COCO with ``text`` or ``rec`` -> project text JSON).
        src: the JSON to read.
        dst: the JSON to write.
        overwrite: replace an existing `dst`.
        text_field, charset: how ``fromcoco`` reads transcriptions (:func:`coco_to_text_json`).

    Returns:
        The written document.

    Raises:
        FileNotFoundError: `src` is missing.
        FileExistsError: `dst` exists and `overwrite` is False.
        ValueError: unknown `direction`, or bad input (naming the file and the id).
    """
    src, dst = os.fspath(src), os.fspath(dst)
    if direction not in ("tococo", "fromcoco"):
        raise ValueError(f"direction must be 'tococo' or 'fromcoco', got {direction!r}")
    if os.path.exists(dst) and not overwrite:
        raise FileExistsError(f"{dst} exists; refusing to overwrite it without --overwrite")
    data = _read_json_file(src)
    if direction == "tococo":
        out = text_json_to_coco(data, src)
    else:
        description = os.path.basename(src)
        out = coco_to_text_json(
            data, src, text_field=text_field, charset=charset, description=description
        )
    parent = os.path.dirname(os.path.abspath(dst))
    os.makedirs(parent, exist_ok=True)
    atomic_write_json(dst, out)
    return out
