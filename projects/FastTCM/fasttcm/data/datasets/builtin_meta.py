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

__all__ = ["TEXT_DATASETS", "get_text_dataset_metadata"]

# Dataset key (= folder under $DETECTRON2_DATASETS) -> static metadata.
TEXT_DATASETS = {
    "icdar2015": {
        "converter": "icdar2015",
        "splits": ("train", "test"),
        "eval_protocol": "iou",
        "alternative_eval_protocols": [],
        "gt_geometry": "quadrilateral",
        "word_spotting": False,
        "lexicon_types": ["none", "generic", "weak", "strong"],
        "has_transcriptions": True,
    },
    "totaltext": {
        "converter": "totaltext",
        "splits": ("train", "test"),
        "eval_protocol": "iou",
        "alternative_eval_protocols": ["deteval"],
        "gt_geometry": "polygon",
        "word_spotting": True,
        "lexicon_types": ["none", "full"],
        "has_transcriptions": True,
    },
    "ctw1500": {
        "converter": "ctw1500",
        "splits": ("train", "test"),
        "eval_protocol": "iou",
        "alternative_eval_protocols": ["deteval"],
        "gt_geometry": "polygon",
        "word_spotting": False,
        "lexicon_types": ["none", "full"],
        "has_transcriptions": True,
    },
    "msra_td500": {
        "converter": "td500",
        "splits": ("train", "test"),
        "eval_protocol": "iou",
        "alternative_eval_protocols": [],
        "gt_geometry": "rotated_rectangle",
        "word_spotting": False,
        "lexicon_types": [],
        "has_transcriptions": False,
    },
    "art": {
        "converter": "art",
        "splits": ("train",),
        "eval_protocol": "iou",
        "alternative_eval_protocols": ["deteval"],
        "gt_geometry": "polygon",
        "word_spotting": False,
        "lexicon_types": [],
        "has_transcriptions": True,
    },
    "synthtext": {
        "converter": "synthtext",
        "splits": ("train",),  # pretraining only
        "writes_eval_gt": False,  # 858k GT files would serve no benchmark
        "eval_protocol": "iou",
        "alternative_eval_protocols": [],
        "gt_geometry": "quadrilateral",
        "word_spotting": False,
        "lexicon_types": [],
        "has_transcriptions": True,
    },
    "synthetic_text": {
        "converter": None,  # generated on first load (fasttcm.data.synthetic.scene_text)
        "splits": ("train", "test"),
        "eval_protocol": "iou",
        "alternative_eval_protocols": ["deteval"],
        "gt_geometry": "polygon",
        "word_spotting": False,
        "lexicon_types": [],
        "has_transcriptions": True,
    },
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
