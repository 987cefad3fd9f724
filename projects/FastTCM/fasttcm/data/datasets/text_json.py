"""Loading and validation of the project text JSON into detectron2 dataset dicts.

The JSON schema (also in ``datasets/README.md``)::

    {"info": {"description": str, "version": 1},
     "images": [{"id": int, "file_name": str, "height": int, "width": int}],
     "annotations": [{"id": int, "image_id": int, "polygon": [[x, y], ...], "text": str,
                      "ignore": bool}],
     "categories": [{"id": 1, "name": "text"}]}

``file_name`` is relative to the image root (POSIX separators); polygons have >= 3 vertices in
absolute pixels of the image as :func:`fasttcm.data.image_io.read_image` returns it, i.e. in the
displayed (EXIF-applied) orientation (x right, y down); ``"###"`` = don't-care text, which
always comes with ``ignore: true``.

:func:`load_text_json` returns detectron2 dataset dicts::

    {"file_name": absolute path, "image_id": int, "height": int, "width": int,
     "annotations": [{"segmentation": [[x1, y1, ..., xn, yn]], "bbox": [x0, y0, x1, y1],
                      "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0, "text": str,
                      "ignore": bool}]}

Bad input, and what happens:

* JSON missing -> ``FileNotFoundError`` saying where it was expected and which
  ``tools/convert_dataset.py`` command creates it; malformed JSON or schema violations (missing
  keys, wrong types, duplicate ids, an annotation of an unknown image, a polygon that is not a
  list of ``[x, y]`` pairs) -> ``ValueError`` naming the file and the offending id.
* ``file_name`` that is absolute, contains ``..`` or backslashes, i.e. could leave the image
  root -> ``ValueError``.
* Polygon with < 3 distinct vertices or NaN/inf coordinates -> skipped, with a warning naming
  the file, image id and annotation id.
* Self-intersecting (invalid) polygon -> repaired, as
  :mod:`fasttcm.data.datasets.polygon_repair` describes (the largest valid piece is kept; a
  polygon left without area is skipped). Both are logged with file/image/annotation ids.
* Polygon lying entirely outside its image, or degenerate after clipping to it (less than one
  square pixel inside, :mod:`fasttcm.data.image_bounds`) -> dropped; one warning per file gives
  the count and an example. A polygon partly outside is kept as annotated.
* An image left with no valid polygon (all dropped, or none in the file) gets no text instance,
  so it adds no positive to the text loss: one warning per file counts such images (and says how
  many lost their polygons to the drops above).
* Image listed but missing on disk -> skipped; the count (and an example) is logged. If *no*
  listed image exists, ``FileNotFoundError``.
* Corrupt image files cannot be detected without decoding every image, so they are detected when
  read: :func:`fasttcm.data.image_io.read_image` (used by the dataset mappers) raises
  :class:`~fasttcm.data.image_io.ImageReadError` naming the file.
"""

import json
import logging
import os
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import numpy as np
import shapely

from detectron2.data import MetadataCatalog
from detectron2.structures import BoxMode

from ...structures.text import DONT_CARE_TEXT
from ..image_bounds import MIN_CLIPPED_AREA, unusable_in_image
from .image_paths import files_exist
from .json_entries import check_annotation_entry, check_top_level, parse_image_entries
from .polygon_repair import repair_polygons

logger = logging.getLogger(__name__)

__all__ = ["load_text_json", "text_json_to_dicts"]

_SCHEMA_VERSION = 1
_MAX_LISTED_PROBLEMS = 20  # per load, detailed warnings; the rest are counted


def load_text_json(json_file, image_root, dataset_name: Optional[str] = None) -> List[dict]:
    """Load a project text JSON into detectron2 dataset dicts (format in the module docstring).

    Args:
        json_file: path of the text JSON.
        image_root: folder that the JSON's ``file_name`` entries are relative to.
        dataset_name: registered name, used in messages and, when its metadata carries
            ``convert_command``, to say how to create a missing JSON.

    Returns:
        One dict per image that exists on disk, in JSON order; annotations in JSON order.
        ``segmentation`` holds the (possibly repaired) polygon, ``bbox`` its XYXY_ABS bounds,
        both in absolute pixels of the displayed image (x right, y down).

    Raises:
        FileNotFoundError: the JSON is missing, or none of its images exists.
        ValueError: malformed JSON or schema violations (the message names file and ids).
    """
    json_file, image_root = os.fspath(json_file), os.fspath(image_root)
    return text_json_to_dicts(
        _read_json(json_file, dataset_name), json_file, image_root, dataset_name
    )


def text_json_to_dicts(
    data: dict, json_file, image_root, dataset_name: Optional[str] = None
) -> List[dict]:
    """Dataset dicts of an already parsed text JSON: :func:`load_text_json` after the read.

    Used by loaders of other formats that translate their file into the text JSON schema (e.g.
    :mod:`fasttcm.data.datasets.coco_text`), so that every format gets the same validation,
    polygon repair and dataset dicts.

    Args:
        data: the text JSON document (``images`` and ``annotations`` lists; ``info`` unread).
        json_file: the file `data` came from, named in messages.
        image_root: folder that the ``file_name`` entries are relative to.
        dataset_name: registered name, used in messages.

    Returns:
        The dataset dicts :func:`load_text_json` describes (absolute pixels, x right, y down).

    Raises:
        FileNotFoundError: none of the images exists.
        ValueError: schema violations (the message names `json_file` and ids).
    """
    json_file, image_root = os.fspath(json_file), os.fspath(image_root)
    if not data["images"]:
        raise ValueError(f"{json_file}: lists no images")
    images = parse_image_entries(data["images"], json_file)
    anns_by_image, problems, outside = _parse_annotations(data["annotations"], images, json_file)

    file_names = [os.path.normpath(os.path.join(image_root, img[1])) for img in images]
    exists = files_exist(file_names)
    num_missing = int((~exists).sum())
    if num_missing == len(images):
        raise FileNotFoundError(
            f"{json_file}: none of its {len(images)} images exists under the image root "
            f"{image_root} (e.g. {file_names[0]})"
        )
    if num_missing:
        first = file_names[int(np.flatnonzero(~exists)[0])]
        logger.warning(
            "%s: %d of %d images are missing under %s and were skipped (e.g. %s)",
            json_file,
            num_missing,
            len(images),
            image_root,
            first,
        )
    _log_problems(problems, json_file)
    if outside:
        logger.warning(
            "%s: dropped %d polygon(s) lying outside their image or degenerate after clipping to "
            "it (less than %g square pixel inside), e.g. %s",
            json_file,
            len(outside),
            MIN_CLIPPED_AREA,
            outside[0],
        )

    dataset_dicts = []
    for (image_id, _, height, width), file_name, ok in zip(images, file_names, exists):
        if ok:
            dataset_dicts.append(
                {
                    "file_name": os.path.abspath(file_name),
                    "image_id": image_id,
                    "height": height,
                    "width": width,
                    "annotations": anns_by_image.get(image_id, []),
                }
            )
    _warn_images_without_text(dataset_dicts, data["annotations"], json_file)
    num_instances = sum(len(d["annotations"]) for d in dataset_dicts)
    num_ignored = sum(a["ignore"] for d in dataset_dicts for a in d["annotations"])
    logger.info(
        "Loaded %d images with %d text instances (%d don't-care) from %s%s",
        len(dataset_dicts),
        num_instances,
        num_ignored,
        json_file,
        f" ({dataset_name})" if dataset_name else "",
    )
    return dataset_dicts


def _missing_json_message(json_file: str, dataset_name: Optional[str]) -> str:
    label = f"Dataset {dataset_name!r}: annotation" if dataset_name else "Annotation"
    msg = f"{label} file {json_file} does not exist."
    command = None
    if dataset_name and dataset_name in MetadataCatalog.list():
        command = MetadataCatalog.get(dataset_name).get("convert_command", None)
    if command:
        msg += f" Create it from the raw dataset with:\n    {command}"
    else:
        msg += (
            " Create it with `python tools/convert_dataset.py"
            " {icdar2015,totaltext,ctw1500,td500,art} --src RAW_DIR --dst DST_DIR`,"
            " or write it in the text JSON schema of datasets/README.md."
        )
    return msg + "\n(datasets/README.md describes the expected layout under $DETECTRON2_DATASETS.)"


def _read_json(json_file: str, dataset_name: Optional[str]) -> dict:
    if not os.path.isfile(json_file):
        raise FileNotFoundError(_missing_json_message(json_file, dataset_name))
    try:
        with open(json_file, "r", encoding="utf-8") as f:
            data = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{json_file}: not a valid UTF-8 JSON file ({e})") from e
    check_top_level(data, json_file)
    version = (data.get("info") or {}).get("version", _SCHEMA_VERSION)
    if version != _SCHEMA_VERSION:
        raise ValueError(
            f"{json_file}: text JSON version {version!r} is not supported (expected 1)"
        )
    if not data["images"]:
        raise ValueError(f"{json_file}: lists no images")
    return data


def _parse_annotations(entries: list, images, json_file: str):
    """Validate annotations; drop unusable polygons, repair self-intersecting ones.

    Returns:
        ``{image_id: [detectron2 annotation dict]}``, a list of problem messages, and the
        labels (file, annotation and image ids) of the polygons dropped for lying outside their
        image or being degenerate after clipping to it.
    """
    image_ids = {img[0] for img in images}
    image_sizes = {img[0]: (img[2], img[3]) for img in images}  # id -> (height, width)
    seen_ids = set()
    kept_meta, kept_polys, problems = [], [], []
    for index, ann in enumerate(entries):
        required = ("id", "image_id", "polygon", "text", "ignore")
        where = check_annotation_entry(ann, index, json_file, required, image_ids, seen_ids)
        ann_id, image_id, text, ignore = ann["id"], ann["image_id"], ann["text"], ann["ignore"]
        if not isinstance(text, str) or not isinstance(ignore, bool):
            raise ValueError(f"{where}: 'text' must be a string and 'ignore' a boolean")
        try:
            pts = np.asarray(ann["polygon"], dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: polygon must be a list of [x, y] number pairs ({e})") from e
        if pts.size == 0:
            pts = pts.reshape(0, 2)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(
                f"{where}: polygon must be a list of [x, y] pairs, got shape {pts.shape}"
            )
        if len(pts) > 1 and np.array_equal(pts[0], pts[-1]):
            pts = pts[:-1]  # explicitly closed ring
        if not np.isfinite(pts).all():
            problems.append(f"{where}: skipped, polygon has NaN/inf coordinates")
            continue
        if len(pts) < 3:
            problems.append(f"{where}: skipped, polygon has {len(pts)} point(s), need >= 3")
            continue
        kept_meta.append((image_id, text, ignore or text == DONT_CARE_TEXT, where))
        kept_polys.append(pts)

    anns_by_image: Dict[int, list] = defaultdict(list)
    if not kept_polys:
        return anns_by_image, problems, []
    polygons, geoms, repair_problems = repair_polygons(kept_polys, [m[3] for m in kept_meta])
    problems.extend(repair_problems)
    sizes = np.array([image_sizes[m[0]] for m in kept_meta], dtype=np.float64).reshape(-1, 2)
    outside = unusable_in_image(geoms, sizes[:, 0], sizes[:, 1])
    bounds = shapely.bounds(geoms)  # (K, 4) x0, y0, x1, y1; NaN for dropped
    for (image_id, text, ignore, _), poly, box, out in zip(kept_meta, polygons, bounds, outside):
        if poly is None or out:
            continue
        anns_by_image[image_id].append(
            {
                "segmentation": [poly.reshape(-1).tolist()],
                "bbox": box.tolist(),
                "bbox_mode": BoxMode.XYXY_ABS,
                "category_id": 0,
                "text": text,
                "ignore": ignore,
            }
        )
    return anns_by_image, problems, [kept_meta[k][3] for k in np.flatnonzero(outside)]


def _warn_images_without_text(dataset_dicts: List[dict], entries: list, json_file: str) -> None:
    """One warning counting the images left with no text instance, if any (module docstring)."""
    empty = [d["image_id"] for d in dataset_dicts if not d["annotations"]]
    if not empty:
        return
    listed = {ann.get("image_id") for ann in entries}
    lost = sum(image_id in listed for image_id in empty)
    logger.warning(
        "%s: %d of %d images have no valid text polygon (%d had polygons, all dropped or "
        "skipped above; %d have none in the file), e.g. image %s: they add no positive to the "
        "text loss",
        json_file,
        len(empty),
        len(dataset_dicts),
        lost,
        len(empty) - lost,
        empty[0],
    )


def _log_problems(problems: List[str], source: str) -> None:
    for msg in problems[:_MAX_LISTED_PROBLEMS]:
        logger.warning(msg)
    if len(problems) > _MAX_LISTED_PROBLEMS:
        logger.warning(
            "%s: %d more annotation problems like the above (%d in total)",
            source,
            len(problems) - _MAX_LISTED_PROBLEMS,
            len(problems),
        )
