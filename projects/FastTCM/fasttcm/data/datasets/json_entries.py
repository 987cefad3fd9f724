"""Validation of the entries shared by the project's text JSON and COCO text JSON files.

Both formats list ``images`` (``id``, ``file_name``, ``height``, ``width``) and ``annotations``
(``id``, ``image_id``, ...); these checks name the file and the entry on every problem.
"""
from typing import Iterable, List, Set, Tuple

from .image_paths import check_relative_file_name

__all__ = ["is_int", "check_top_level", "parse_image_entries", "check_annotation_entry"]


def is_int(value) -> bool:
    """An int that is not a bool (JSON ids and sizes)."""
    return isinstance(value, int) and not isinstance(value, bool)


def parse_image_entries(entries: list, json_file: str) -> List[Tuple[int, str, int, int]]:
    """Validate the ``images`` list of a text or COCO JSON: ``(id, file_name, height, width)`` each.

    Raises:
        ValueError: a missing key, a non-integer or duplicate id, a non-positive size, or a
            ``file_name`` that could leave the image root; the message names the file and entry.
    """
    images, seen = [], set()
    for index, img in enumerate(entries):
        where = f"{json_file}: images[{index}]"
        if not isinstance(img, dict):
            raise ValueError(f"{where} is not an object")
        missing = [k for k in ("id", "file_name", "height", "width") if k not in img]
        if missing:
            raise ValueError(f"{where} lacks key(s) {missing}")
        image_id, height, width = img["id"], img["height"], img["width"]
        if not is_int(image_id):
            raise ValueError(f"{where}: id must be an integer, got {image_id!r}")
        if image_id in seen:
            raise ValueError(f"{json_file}: duplicate image id {image_id}")
        seen.add(image_id)
        if not (is_int(height) and is_int(width) and height > 0 and width > 0):
            raise ValueError(f"{where} (id {image_id}): height/width must be positive integers")
        check_relative_file_name(img["file_name"], f"{where} (id {image_id})")
        images.append((image_id, img["file_name"], height, width))
    return images


def check_annotation_entry(
    ann, index: int, json_file: str, required: Iterable[str], image_ids: Set[int], seen: Set[int]
) -> str:
    """Check one ``annotations`` entry's shape, id and image id; record its id in `seen`.

    Returns:
        the location string for further messages: ``"<file>: annotation <id> (image <id>)"``.

    Raises:
        ValueError: not an object, a missing key, a non-integer or duplicate id, or an image id
            not listed in ``images``.
    """
    where = f"{json_file}: annotations[{index}]"
    if not isinstance(ann, dict):
        raise ValueError(f"{where} is not an object")
    missing = [k for k in required if k not in ann]
    if missing:
        raise ValueError(f"{where} lacks key(s) {missing}")
    ann_id, image_id = ann["id"], ann["image_id"]
    if not is_int(ann_id):
        raise ValueError(f"{where}: id must be an integer, got {ann_id!r}")
    if ann_id in seen:
        raise ValueError(f"{json_file}: duplicate annotation id {ann_id}")
    seen.add(ann_id)
    where = f"{json_file}: annotation {ann_id} (image {image_id})"
    if image_id not in image_ids:
        raise ValueError(f"{where} refers to an image id that is not in 'images'")
    return where


def check_top_level(data, json_file: str) -> None:
    """The file holds an object with ``images`` and ``annotations`` lists (error names the file)."""
    if not isinstance(data, dict):
        raise ValueError(
            f"{json_file}: top level must be an object with 'images' and 'annotations'"
        )
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{json_file}: missing or non-list top-level key {key!r}")
