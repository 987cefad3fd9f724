"""ICDAR 2019 ArT (Arbitrary-shaped Text) -> project text JSON + evaluation GT.

Native format: a single ``train_labels.json`` mapping an image stem to its instances::

    {"gt_0": [{"transcription": "HELLO", "points": [[x1, y1], [x2, y2], ...],
               "language": "Latin", "illegibility": false}, ...], ...}

``points`` is the polygon (absolute pixels, >= 4 vertices in the official data). Illegible
instances (``"illegibility": true``) and the transcription ``###`` are don't care.
``language`` is not used for detection.

EXIF orientation: which frame the labels use for an image with an EXIF orientation other than 1
is not documented (ArT gathers Total-Text, SCUT-CTW1500 and new photos), so such an image is
converted as written, with a warning naming it
(:func:`~fasttcm.data.converters.exif_frame.warn_unverified_frame`).

Only the training split has public labels. Expected source layout::

    SRC/train_images/gt_*.jpg
    SRC/train_labels.json
"""

import json
import logging
from pathlib import Path
from typing import Dict, List

from ...structures.text import DONT_CARE_TEXT
from .annotations import SourceImage, TextAnnotation, make_annotation
from .exif_frame import warn_unverified_frame
from .source_files import ConversionError, find_existing_dir, find_images, natural_key

logger = logging.getLogger(__name__)

__all__ = ["SPLITS", "parse_art_labels", "collect_split"]

SPLITS = ("train",)
_LABEL_FILES = ("train_labels.json", "labels/train_labels.json")


def parse_art_labels(path) -> Dict[str, List[TextAnnotation]]:
    """Parse ``train_labels.json`` into ``{image stem: [TextAnnotation, ...]}`` (file order).

    Raises:
        ConversionError: the file is not JSON of the documented structure (names the image key
            and instance index of the first problem).
    """
    try:
        with open(path, "r", encoding="utf-8-sig") as f:
            labels = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConversionError(path, f"not a valid UTF-8 JSON file ({e})") from e
    if not isinstance(labels, dict):
        raise ConversionError(path, "expected an object mapping image names to instance lists")
    parsed = {}
    for key, instances in labels.items():
        if not isinstance(instances, list):
            raise ConversionError(path, f"{key!r}: expected a list of instances")
        anns = []
        for index, inst in enumerate(instances):
            where = f"{path} ({key!r}, instance {index})"
            if not isinstance(inst, dict) or "points" not in inst:
                raise ConversionError(where, "instance without 'points'")
            text = inst.get("transcription", DONT_CARE_TEXT)
            if not isinstance(text, str):
                raise ConversionError(where, f"transcription must be a string, got {text!r}")
            ignore = bool(inst.get("illegibility", False)) or text == DONT_CARE_TEXT
            try:
                ann = make_annotation(
                    inst["points"], DONT_CARE_TEXT if ignore else text, ignore, path=where
                )
            except ConversionError:
                raise
            except (TypeError, ValueError) as e:
                raise ConversionError(where, f"malformed points ({e})") from e
            if ann is not None:
                anns.append(ann)
        parsed[str(key)] = anns
    return parsed


def collect_split(src, split: str) -> List[SourceImage]:
    """Images of `split` (only "train") under `src` with their parsed annotations."""
    if split not in SPLITS:
        raise ValueError(f"ArT has public labels only for {SPLITS}, got {split!r}")
    image_dir = find_existing_dir(src, ("train_images",), "ArT train images")
    label_file = next((Path(src) / n for n in _LABEL_FILES if (Path(src) / n).is_file()), None)
    if label_file is None:
        raise FileNotFoundError(
            "ArT labels not found; looked for "
            + ", ".join(str(Path(src) / n) for n in _LABEL_FILES)
        )
    labels = parse_art_labels(label_file)
    images = find_images(image_dir)
    if not images:
        raise ValueError(f"ArT train: no images in {image_dir}")
    missing = [stem for stem in images if stem not in labels]
    if missing:
        raise FileNotFoundError(
            f"{label_file}: no labels for {len(missing)} image(s) of {image_dir}, "
            f"e.g. {images[missing[0]]}"
        )
    unused = sorted(set(labels) - set(images), key=natural_key)
    if unused:
        logger.warning(
            "%s: %d labelled image(s) missing from %s (e.g. %s)",
            label_file,
            len(unused),
            image_dir,
            unused[0],
        )
    collected = [
        SourceImage(path=str(images[stem]), file_name=images[stem].name, annotations=labels[stem])
        for stem in sorted(images, key=natural_key)
    ]
    return warn_unverified_frame(collected, "ArT train")
