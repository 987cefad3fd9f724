"""Metadata of the predefined scene-text datasets: how each one is evaluated.

Evaluators read these from ``MetadataCatalog``; nothing is ever inferred from a dataset's name.

Keys of every text split's metadata:

* ``thing_classes``: ``["text"]``.
* ``evaluator_type``: ``"text_det"``.
* ``eval_protocol``: ``"iou"`` = ICDAR/RRC IoU protocol (IoU > 0.5, ``###`` don't care with area
  precision > 0.5, greedy one-to-one matching).
* ``alternative_eval_protocols``: other protocols that are meaningful for the split, e.g.
  ``["deteval"]`` (Total-Text DetEval) for the curved-text sets.
* ``gt_geometry``: the ground-truth shape: ``"quadrilateral"`` (ICDAR 2015), ``"polygon"``
  (Total-Text, CTW1500, ArT, synthetic), ``"rotated_rectangle"`` (MSRA-TD500).
* ``word_spotting``: RRC end-to-end word-spotting mode: True only for Total-Text.
* ``lexicon_types``: end-to-end lexicon settings the dataset defines (``"none"``, ``"generic"``,
  ``"weak"``, ``"strong"``, ``"full"``).
* ``has_transcriptions``: False for MSRA-TD500 (detection only).
* ``converter``: the ``tools/convert_dataset.py`` dataset argument that builds the split.
* ``writes_eval_gt``: False for a training-only set whose converter writes no evaluation GT files
  (SynthText); such a split gets no ``gt_dir`` and evaluators read its JSON. Default True.

Paths (``json_file``, ``image_root``, ``gt_dir``, ``lexicon_dir``, ``convert_command``) are added
by :mod:`fasttcm.data.datasets.builtin`, which knows the dataset root.
"""

import copy
from typing import Optional, Sequence, Tuple

__all__ = ["TEXT_DATASETS", "get_text_dataset_metadata"]


def _text_dataset(
    converter: Optional[str],
    gt_geometry: str,
    *,
    splits: Tuple[str, ...] = ("train", "test"),
    alternative_eval_protocols: Sequence[str] = (),
    word_spotting: bool = False,
    lexicon_types: Sequence[str] = (),
    has_transcriptions: bool = True,
    **extra,
) -> dict:
    """One entry of :data:`TEXT_DATASETS`; every split is evaluated with the ``"iou"`` protocol.

    Args:
        converter: the ``tools/convert_dataset.py`` dataset argument, or None.
        gt_geometry: the ground-truth shape.
        splits: the splits the dataset has.
        alternative_eval_protocols, word_spotting, lexicon_types, has_transcriptions: the
            metadata keys of the same names (see the module docstring).
        **extra: further keys, e.g. ``writes_eval_gt``.

    Returns:
        dict: the metadata, keys in a fixed order.
    """
    return {
        "converter": converter,
        "splits": splits,
        **extra,
        "eval_protocol": "iou",
        "alternative_eval_protocols": list(alternative_eval_protocols),
        "gt_geometry": gt_geometry,
        "word_spotting": word_spotting,
        "lexicon_types": list(lexicon_types),
        "has_transcriptions": has_transcriptions,
    }


# Dataset key (= folder under $DETECTRON2_DATASETS) -> static metadata.
TEXT_DATASETS = {
    "icdar2015": _text_dataset(
        "icdar2015", "quadrilateral", lexicon_types=["none", "generic", "weak", "strong"]
    ),
    "totaltext": _text_dataset(
        "totaltext",
        "polygon",
        alternative_eval_protocols=["deteval"],
        word_spotting=True,
        lexicon_types=["none", "full"],
    ),
    "ctw1500": _text_dataset(
        "ctw1500", "polygon", alternative_eval_protocols=["deteval"], lexicon_types=["none", "full"]
    ),
    "msra_td500": _text_dataset("td500", "rotated_rectangle", has_transcriptions=False),
    "art": _text_dataset(
        "art", "polygon", splits=("train",), alternative_eval_protocols=["deteval"]
    ),
    "synthtext": _text_dataset(
        "synthtext",
        "quadrilateral",
        splits=("train",),  # pretraining only
        writes_eval_gt=False,  # 858k GT files would serve no benchmark
    ),
    # Generated on first load (fasttcm.data.synthetic.scene_text).
    "synthetic_text": _text_dataset(None, "polygon", alternative_eval_protocols=["deteval"]),
}


def get_text_dataset_metadata(dataset: str) -> dict:
    """Static metadata of a predefined text dataset (a copy; without ``splits``).

    Args:
        dataset: a key of :data:`TEXT_DATASETS`, e.g. ``"totaltext"``.

    Raises:
        KeyError: unknown dataset, listing the known ones.
    """
    if dataset not in TEXT_DATASETS:
        raise KeyError(f"unknown text dataset {dataset!r}; known: {sorted(TEXT_DATASETS)}")
    meta = copy.deepcopy(TEXT_DATASETS[dataset])
    meta.pop("splits")
    return meta
