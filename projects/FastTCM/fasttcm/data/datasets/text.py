"""Scene-text datasets in the project text JSON: loading, registration, checked image reading.

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
* Self-intersecting (invalid) polygon -> repaired: ``shapely.make_valid`` splits it into valid
  pieces and the largest-area polygon is kept (its exterior ring; holes dropped; vertex
  orientation of the original kept). A polygon whose repair leaves no area (e.g. all vertices
  collinear) is skipped. Both are logged with file/image/annotation ids. Repair rather than
  rejection keeps annotated text in training, as MMOCR does (evaluation.md section 1.1).
* Image listed but missing on disk -> skipped; the count (and an example) is logged. If *no*
  listed image exists, ``FileNotFoundError``.
* Corrupt image files cannot be detected without decoding every image, so they are detected when
  read: :func:`fasttcm.data.image_io.read_image` (used by the dataset mappers) raises
  :class:`CorruptImageError` (:class:`~fasttcm.data.image_io.ImageReadError`) naming the file.
"""

import json
import logging
import os
from collections import defaultdict
from pathlib import PurePosixPath
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import shapely
from shapely.geometry.polygon import orient

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from ..converters.source_files import ConversionError, image_size
from ..image_io import ImageReadError, read_image
from ...structures.text import DONT_CARE_TEXT

logger = logging.getLogger(__name__)

__all__ = [
    "TEXT_THING_CLASSES",
    "CorruptImageError",
    "load_text_json",
    "load_text_image_list",
    "check_relative_file_name",
    "text_split_metadata",
    "register_text_instances",
    "register_text_images",
    "read_image_checked",
]

TEXT_THING_CLASSES = ["text"]
_SCHEMA_VERSION = 1
_MAX_LISTED_PROBLEMS = 20  # per load, detailed warnings; the rest are counted


CorruptImageError = ImageReadError
"""An image file exists but cannot be decoded (an ``OSError``); the message names the file."""


# ---------------------------------------------------------------------------------------------
# Loading


def load_text_json(json_file, image_root, dataset_name: Optional[str] = None) -> List[dict]:
    """Load a project text JSON into detectron2 dataset dicts (format in the module docstring).

    Args:
        json_file: path of the text JSON.
        image_root: folder that the JSON's ``file_name`` entries are relative to.
        dataset_name: registered name, used in messages and, when its metadata carries
            ``convert_command``, to say how to create a missing JSON.

    Returns:
        One dict per image that exists on disk, in JSON order; annotations in JSON order.
        ``segmentation`` holds the (possibly repaired) polygon, ``bbox`` its XYXY_ABS bounds.

    Raises:
        FileNotFoundError: the JSON is missing, or none of its images exists.
        ValueError: malformed JSON or schema violations (the message names file and ids).
    """
    json_file, image_root = os.fspath(json_file), os.fspath(image_root)
    data = _read_json(json_file, dataset_name)
    images = _parse_images(data["images"], json_file)
    anns_by_image, problems = _parse_annotations(data["annotations"], images, json_file)

    file_names = [os.path.normpath(os.path.join(image_root, img[1])) for img in images]
    exists = _files_exist(file_names)
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
    if not isinstance(data, dict):
        raise ValueError(
            f"{json_file}: top level must be an object with 'images' and 'annotations'"
        )
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{json_file}: missing or non-list top-level key {key!r}")
    version = (data.get("info") or {}).get("version", _SCHEMA_VERSION)
    if version != _SCHEMA_VERSION:
        raise ValueError(
            f"{json_file}: text JSON version {version!r} is not supported (expected 1)"
        )
    if not data["images"]:
        raise ValueError(f"{json_file}: lists no images")
    return data


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_relative_file_name(file_name, source: str) -> str:
    """Reject file names that could resolve outside the image root.

    Args:
        file_name: a ``file_name`` entry (relative path with POSIX separators).
        source: what to name in the error (file and entry).

    Returns:
        `file_name`, unchanged.

    Raises:
        ValueError: empty, absolute (``/x``, ``C:/x``), containing backslashes or ``..``.
    """
    if not isinstance(file_name, str) or not file_name:
        raise ValueError(f"{source}: file_name must be a non-empty string, got {file_name!r}")
    if "\\" in file_name:
        raise ValueError(f"{source}: file_name {file_name!r} must use '/' separators")
    path = PurePosixPath(file_name)
    if path.is_absolute() or (len(file_name) > 1 and file_name[1] == ":") or ".." in path.parts:
        raise ValueError(
            f"{source}: file_name {file_name!r} escapes the image root (absolute or '..' paths "
            "are not allowed; names are relative to the image root)"
        )
    return file_name


def _parse_images(entries: list, json_file: str) -> List[Tuple[int, str, int, int]]:
    images, seen = [], set()
    for index, img in enumerate(entries):
        where = f"{json_file}: images[{index}]"
        if not isinstance(img, dict):
            raise ValueError(f"{where} is not an object")
        missing = [k for k in ("id", "file_name", "height", "width") if k not in img]
        if missing:
            raise ValueError(f"{where} lacks key(s) {missing}")
        image_id, height, width = img["id"], img["height"], img["width"]
        if not _is_int(image_id):
            raise ValueError(f"{where}: id must be an integer, got {image_id!r}")
        if image_id in seen:
            raise ValueError(f"{json_file}: duplicate image id {image_id}")
        seen.add(image_id)
        if not (_is_int(height) and _is_int(width) and height > 0 and width > 0):
            raise ValueError(f"{where} (id {image_id}): height/width must be positive integers")
        check_relative_file_name(img["file_name"], f"{where} (id {image_id})")
        images.append((image_id, img["file_name"], height, width))
    return images


def _parse_annotations(entries: list, images, json_file: str):
    """Validate annotations; drop unusable polygons, repair self-intersecting ones.

    Returns:
        ``{image_id: [detectron2 annotation dict]}`` and a list of problem messages.
    """
    image_ids = {img[0] for img in images}
    seen_ids = set()
    kept_meta, kept_polys, problems = [], [], []
    for index, ann in enumerate(entries):
        where = f"{json_file}: annotations[{index}]"
        if not isinstance(ann, dict):
            raise ValueError(f"{where} is not an object")
        missing = [k for k in ("id", "image_id", "polygon", "text", "ignore") if k not in ann]
        if missing:
            raise ValueError(f"{where} lacks key(s) {missing}")
        ann_id, image_id, text, ignore = ann["id"], ann["image_id"], ann["text"], ann["ignore"]
        if not _is_int(ann_id):
            raise ValueError(f"{where}: id must be an integer, got {ann_id!r}")
        if ann_id in seen_ids:
            raise ValueError(f"{json_file}: duplicate annotation id {ann_id}")
        seen_ids.add(ann_id)
        where = f"{json_file}: annotation {ann_id} (image {image_id})"
        if image_id not in image_ids:
            raise ValueError(f"{where} refers to an image id that is not in 'images'")
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
        return anns_by_image, problems
    polygons, geoms, repair_problems = _validated_polygons(kept_polys, [m[3] for m in kept_meta])
    problems.extend(repair_problems)
    bounds = shapely.bounds(geoms)  # (K, 4) x0, y0, x1, y1; NaN for dropped
    for (image_id, text, ignore, _), poly, box in zip(kept_meta, polygons, bounds):
        if poly is None:
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
    return anns_by_image, problems


def _validated_polygons(polys: Sequence[np.ndarray], wheres: Sequence[str]):
    """Vectorized validity check; repair invalid polygons (largest valid piece).

    Args:
        polys: K arrays of shape (N_i, 2), N_i >= 3, finite.

    Returns:
        (list of K (M_i, 2) arrays or None for dropped, (K,) shapely geometries (None for
        dropped), problem messages).
    """
    counts = np.fromiter((len(p) for p in polys), dtype=np.int64, count=len(polys))
    ring_index = np.repeat(np.arange(len(polys)), counts)
    geoms = shapely.polygons(shapely.linearrings(np.concatenate(polys), indices=ring_index))
    valid = shapely.is_valid(geoms)
    out, problems = list(polys), []
    invalid = np.flatnonzero(~valid)
    if len(invalid):
        repaired = shapely.make_valid(geoms[invalid])
        for k, geom in zip(invalid, repaired):
            piece = _largest_polygon(geom)
            if piece is None:
                problems.append(f"{wheres[k]}: skipped, polygon has no area (degenerate)")
                out[k], geoms[k] = None, None
                continue
            signed = _signed_area(polys[k])
            piece = orient(piece, sign=1.0 if signed >= 0 else -1.0)
            out[k] = np.asarray(piece.exterior.coords, dtype=np.float64)[:-1]
            geoms[k] = piece
            problems.append(
                f"{wheres[k]}: self-intersecting polygon repaired (largest valid part kept, "
                f"area {piece.area:.1f} of the {len(polys[k])}-vertex original)"
            )
    return out, geoms, problems


def _largest_polygon(geom):
    """Largest-area Polygon inside a geometry (collections are searched recursively)."""
    stack, best = [geom], None
    while stack:
        g = stack.pop()
        if g is None or g.is_empty:
            continue
        if g.geom_type == "Polygon":
            if g.area > 0 and (best is None or g.area > best.area):
                best = g
        elif g.geom_type in ("MultiPolygon", "GeometryCollection"):
            stack.extend(shapely.get_parts(g))
    return best


def _signed_area(pts: np.ndarray) -> float:
    """Shoelace signed area in the (x right, y down) frame; > 0 = clockwise on screen."""
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _files_exist(paths: Sequence[str]) -> np.ndarray:
    """Existence of many files with one directory listing per folder instead of one stat each."""
    listings: Dict[str, set] = {}
    out = np.zeros(len(paths), dtype=bool)
    for i, path in enumerate(paths):
        folder, name = os.path.split(path)
        if folder not in listings:
            try:
                listings[folder] = {e.name for e in os.scandir(folder or ".") if e.is_file()}
            except (FileNotFoundError, NotADirectoryError):
                listings[folder] = set()
        out[i] = name in listings[folder]
    return out


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


def load_text_image_list(list_file, image_root, dataset_name: Optional[str] = None) -> List[dict]:
    """Dataset dicts (without ``annotations``) for the images named in a text file.

    Args:
        list_file: UTF-8 text file, one image path per line relative to `image_root` (blank lines
            and lines starting with ``#`` are ignored).
        image_root: folder the listed paths are relative to.
        dataset_name: registered name, used in messages.

    Returns:
        ``{"file_name", "image_id" (position in the list, from 1), "height", "width"}`` per
        existing image; sizes come from the image headers (EXIF orientation applied, as
        detectron2 does).

    Raises:
        FileNotFoundError: the list is missing, or none of its images exists.
        ValueError: a listed name escapes `image_root`, or the list names no image.
        CorruptImageError: an image header cannot be read.
    """
    list_file, image_root = os.fspath(list_file), os.fspath(image_root)
    if not os.path.isfile(list_file):
        label = f"Dataset {dataset_name!r}: image list" if dataset_name else "Image list"
        raise FileNotFoundError(
            f"{label} {list_file} does not exist. This split has no public annotations; create the "
            f"list yourself, one image file name per line, relative to {image_root} "
            "(see datasets/README.md)."
        )
    with open(list_file, "r", encoding="utf-8-sig") as f:
        names = [
            (lineno, s.strip())
            for lineno, s in enumerate(f.read().splitlines(), 1)
            if s.strip() and not s.lstrip().startswith("#")
        ]
    if not names:
        raise ValueError(f"{list_file}: lists no images")
    paths = [
        os.path.normpath(
            os.path.join(image_root, check_relative_file_name(n, f"{list_file}, line {k}"))
        )
        for k, n in names
    ]
    exists = _files_exist(paths)
    if not exists.any():
        raise FileNotFoundError(
            f"{list_file}: none of its {len(paths)} images exists under {image_root}"
        )
    if not exists.all():
        logger.warning(
            "%s: %d of %d listed images are missing under %s and were skipped",
            list_file,
            int((~exists).sum()),
            len(paths),
            image_root,
        )
    dicts = []
    for image_id, (path, ok) in enumerate(zip(paths, exists), start=1):
        if not ok:
            continue
        try:
            height, width = image_size(path)
        except ConversionError as e:
            raise CorruptImageError(str(e)) from e
        dicts.append(
            {
                "file_name": os.path.abspath(path),
                "image_id": image_id,
                "height": height,
                "width": width,
            }
        )
    logger.info("Loaded %d unannotated images from %s", len(dicts), list_file)
    return dicts


# ---------------------------------------------------------------------------------------------
# Registration


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

    Nothing is read until ``DatasetCatalog.get(name)`` calls :func:`load_text_json`.

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
    """Register unannotated images listed in `list_file` (see :func:`load_text_image_list`).

    The metadata gets ``has_annotations=False``; such a split is for inference/submission only.
    """
    list_file, image_root = os.fspath(list_file), os.fspath(image_root)
    DatasetCatalog.register(name, lambda: load_text_image_list(list_file, image_root, name))
    meta = dict(metadata, has_annotations=False)
    MetadataCatalog.get(name).set(
        **text_split_metadata(meta, image_list=list_file, image_root=image_root)
    )


# ---------------------------------------------------------------------------------------------
# Image reading


def read_image_checked(file_name, format: str = "RGB", expected_size=None) -> np.ndarray:
    """:func:`fasttcm.data.image_io.read_image`, optionally checked against the dataset size.

    Args:
        file_name: image path.
        format: ``"RGB"`` or ``"BGR"`` (None means ``"RGB"``).
        expected_size: optional ``(height, width)`` the decoded image must have (e.g. from the
            dataset dict).

    Returns:
        (H, W, 3) uint8 array in the displayed (EXIF-applied) orientation.

    Raises:
        FileNotFoundError: the file does not exist.
        CorruptImageError: the file cannot be decoded (truncated, corrupt, not an image).
        ValueError: the decoded size differs from `expected_size`.
    """
    file_name = os.fspath(file_name)
    image = read_image(file_name, format or "RGB")
    if expected_size is not None and tuple(image.shape[:2]) != tuple(expected_size):
        raise ValueError(
            f"{file_name}: image is {image.shape[0]}x{image.shape[1]} (HxW) but its annotation "
            f"says "
            f"{expected_size[0]}x{expected_size[1]}; the dataset JSON does not match the image"
        )
    return image
