"""Recognition datasets made of the words of a text-detection dataset, cut on the fly.

A scene-text detection split with transcriptions (Total-Text, CTW1500, ICDAR 2015, the synthetic
scenes) is also a recognition split: every legible word is a labelled crop. Cut from the scene
by the recognizer's data pipeline rather than stored as crops, the same word can be framed
differently each time it is drawn (:class:`~fasttcm.data.str_mapper.STRDatasetMapper` moves the
polygon's sides at random and rectifies it as the text spotter does), so a recognizer can learn
the crops it will be given inside a spotter, and the word list costs no disk.

One dataset dict per kept word::

    {"file_name": scene image path, "image_id": "<source image_id>/<word index>",
     "word_polygon": [[x, y], ...],  # (K, 2) absolute pixels of the scene image, annotated layout
     "text": str}                    # filtered label (as the STR LMDB loader filters labels)

Polygons keep the source dataset's vertex order (4 points clockwise from the top-left corner, or
2n points: n along the top edge, then n along the bottom edge), which is what
:func:`~fasttcm.structures.rectification.rectify.polygon_sampling_grids` calls the "annotated" layout.
Don't-care words (``ignore`` or ``"###"``) and labels the filter rejects are skipped and counted.
"""

import logging
from collections import Counter
from typing import Dict, Iterable, List, Optional

import numpy as np

from detectron2.data import DatasetCatalog, MetadataCatalog

from ...structures.charset import CharsetAdapter, load_charset, preprocess_label
from ...structures.text import DONT_CARE_TEXT

__all__ = ["text_word_crop_dicts", "register_text_word_crops"]

logger = logging.getLogger(__name__)

_LOAD_CHARSET = "94_full"  # as the STR LMDB loader: the evaluator applies its own charset
_MAX_LABEL_LENGTH = 25


def _word_polygon(annotation: Dict) -> Optional[np.ndarray]:
    """The (K, 2) float32 polygon of a text annotation, or None when it has none."""
    segmentation = annotation.get("segmentation")
    if not segmentation:
        return None
    if len(segmentation) != 1:  # a word is one polygon; several parts cannot be rectified
        return None
    points = np.asarray(segmentation[0], dtype=np.float32).reshape(-1, 2)
    if len(points) < 4 or not np.isfinite(points).all():
        return None
    return points


def text_word_crop_dicts(
    scene_dicts: Iterable[Dict],
    *,
    charset: str = _LOAD_CHARSET,
    max_label_length: int = _MAX_LABEL_LENGTH,
    dataset_name: str = "",
) -> List[Dict]:
    """The recognition dataset dicts of every legible word of text-detection dataset dicts.

    Args:
        scene_dicts: detectron2 dicts of a text-detection split (``file_name``, ``image_id``,
            ``annotations`` with ``segmentation`` = one polygon in absolute pixels, ``text`` and
            ``ignore``; what :func:`~fasttcm.data.datasets.text_json.load_text_json` returns).
        charset, max_label_length: label filter, as :func:`~.str_lmdb.load_str_lmdb`.
        dataset_name: for the log message.

    Returns:
        one dict per kept word (module docstring), in scene order then annotation order.
    """
    adapter = CharsetAdapter(load_charset(charset))
    skipped: Counter = Counter()
    words: List[Dict] = []
    num_scenes = 0
    for scene in scene_dicts:
        num_scenes += 1
        for index, annotation in enumerate(scene.get("annotations", ())):
            text = str(annotation.get("text", ""))
            if annotation.get("ignore", False) or text.strip() == DONT_CARE_TEXT:
                skipped["dont_care"] += 1
                continue
            polygon = _word_polygon(annotation)
            if polygon is None:
                skipped["no_polygon"] += 1
                continue
            label, reason = preprocess_label(text, adapter, max_label_length)
            if label is None:
                skipped[reason] += 1
                continue
            words.append(
                {
                    "file_name": scene["file_name"],
                    "image_id": f"{scene.get('image_id', num_scenes - 1)}/{index}",
                    "word_polygon": polygon.tolist(),
                    "text": label,
                }
            )
    message = f"Word crops of {dataset_name or 'a text dataset'}: {len(words)} words of {num_scenes} scenes"
    if skipped:
        message += f"; skipped {dict(skipped)}"
    logger.info(message)
    return words


def register_text_word_crops(name: str, source_name: str, **metadata) -> None:
    """Register `name` as the words of the registered text-detection dataset `source_name`.

    The source is loaded (``DatasetCatalog.get``) only when `name` is. The metadata says
    ``evaluator_type="str"`` (word accuracy, :class:`~fasttcm.evaluation.STREvaluator`) and
    ``source_dataset``; `metadata` adds to it.

    Example: ``register_text_word_crops("totaltext_train_words", "totaltext_train")`` and
    ``DATASETS.TRAIN ("str_synth_train", "totaltext_train_words")`` in a recognizer config.
    """

    def load() -> List[Dict]:
        return text_word_crop_dicts(DatasetCatalog.get(source_name), dataset_name=name)

    DatasetCatalog.register(name, load)
    MetadataCatalog.get(name).set(evaluator_type="str", source_dataset=source_name, **metadata)
