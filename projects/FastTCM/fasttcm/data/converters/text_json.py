"""The project text JSON of a converted split: built in memory, or streamed image by image.

Schema (also described in ``datasets/README.md``)::

    {"info": {"description": str, "version": 1},
     "images": [{"id", "file_name", "height", "width"}],
     "annotations": [{"id", "image_id", "polygon": [[x, y], ...], "text", "ignore"}],
     "categories": [{"id": 1, "name": "text"}]}

``file_name`` is relative to ``DST/<split>_images`` with POSIX separators; polygons are in
absolute pixels of the image as detectron2 reads it (EXIF orientation applied; x right, y down);
``"###"`` marks a don't-care region and always comes with ``"ignore": true``. Image and
annotation ids count from 1 in output order. No detectron2 import.
"""

import itertools
import json
import shutil
import tempfile
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np

from ...structures.text import DONT_CARE_TEXT
from ...utils.atomic_io import atomic_open
from .annotations import SourceImage

__all__ = ["JSON_SCHEMA_VERSION", "build_text_json", "TextJsonStreamWriter"]

JSON_SCHEMA_VERSION = 1


def build_text_json(
    records: Sequence[Tuple[SourceImage, Tuple[int, int]]], description: str
) -> dict:
    """The project text JSON for ``(image, (height, width))`` pairs; ids from 1, in order.

    Args:
        records: each image with its size as detectron2 reads it, in output order.
        description: ``info.description``.
    """
    images, annotations = [], []
    for image_id, (src, (height, width)) in enumerate(records, start=1):
        images.append(
            {"id": image_id, "file_name": src.file_name, "height": height, "width": width}
        )
        for ann in src.annotations:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "polygon": ann.polygon.tolist(),
                    "text": ann.text,
                    "ignore": bool(ann.ignore),
                }
            )
    return {
        "info": {"description": description, "version": JSON_SCHEMA_VERSION},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "text"}],
    }


class TextJsonStreamWriter:
    """Builds a split's text JSON image by image, without holding its annotations in memory.

    Image objects are kept serialized in memory (~100 bytes each); annotation objects are appended
    to an anonymous temporary file in the output's folder. :meth:`finish` assembles the JSON from
    both and writes it atomically; :meth:`discard` drops everything. The document is the one
    :func:`build_text_json` gives for the same images.

    Args:
        json_file: the JSON to write; its folder must exist.
        description: ``info.description``.
    """

    def __init__(self, json_file: Path, description: str):
        self.json_file, self.description = Path(json_file), description
        self._annotations = tempfile.TemporaryFile(
            "w+", encoding="utf-8", dir=self.json_file.parent
        )
        self._images: List[str] = []
        self.num_annotations = 0
        self.num_ignored = 0

    def add_image(self, image_id: int, file_name: str, size, polygons, words) -> None:
        """Add an image and its words (a word ``"###"`` is a don't-care region).

        Args:
            image_id: the image's id (1-based).
            file_name: path relative to the image root (POSIX separators).
            size: (height, width) of the image.
            polygons: (K, N, 2) word polygons (absolute pixels, x right, y down).
            words: the K transcriptions.
        """
        height, width = size
        self._images.append(
            json.dumps(
                {"id": image_id, "file_name": file_name, "height": height, "width": width},
                ensure_ascii=False,
            )
        )
        first_id = self.num_annotations + 1
        annotations = [
            {
                "id": ann_id,
                "image_id": image_id,
                "polygon": polygon,
                "text": text,
                "ignore": text == DONT_CARE_TEXT,
            }
            for ann_id, polygon, text in zip(
                itertools.count(first_id), np.asarray(polygons).tolist(), words
            )
        ]
        if annotations:
            self.num_annotations += len(annotations)
            self.num_ignored += sum(a["ignore"] for a in annotations)
            separator = "," if first_id > 1 else ""  # after earlier images' objects
            # one dumps call per image; [1:-1] strips the list brackets
            self._annotations.write(separator + json.dumps(annotations, ensure_ascii=False)[1:-1])

    def finish(self) -> None:
        """Write the JSON atomically and drop the temporary annotation file."""
        info = {"description": self.description, "version": JSON_SCHEMA_VERSION}
        self._annotations.flush()
        self._annotations.seek(0)
        with atomic_open(self.json_file, "w", encoding="utf-8") as out:
            out.write('{"info": ' + json.dumps(info) + ', "images": [')
            out.write(",".join(self._images))
            out.write('], "annotations": [')
            shutil.copyfileobj(self._annotations, out, length=1 << 22)
            out.write('], "categories": [{"id": 1, "name": "text"}]}')
        self.discard()

    def discard(self) -> None:
        """Drop the temporary annotation file (the JSON, if written, stays)."""
        self._annotations.close()
