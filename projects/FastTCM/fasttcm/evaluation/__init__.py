"""Evaluators of FastTCM-D2, chosen by the dataset's ``MetadataCatalog`` ``evaluator_type``.

``EVALUATORS`` maps an ``evaluator_type`` to a :class:`~detectron2.evaluation.DatasetEvaluator`
class; :func:`build_evaluator` looks it up (a table instead of detectron2's if/else chain). The
pure numpy/shapely protocols behind the evaluators live in :mod:`fasttcm.evaluation.protocols`.
"""

from typing import Dict, Optional, Type

from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator, DatasetEvaluators

from .coco_text_evaluator import TextCOCOEvaluator
from .dota_evaluator import DOTAEvaluator
from .output_dir import default_output_dir
from .str_evaluator import WordAccuracyEvaluator
from .text_det_evaluator import TextDetEvaluator
from .text_e2e_evaluator import TextSpottingEvaluator

__all__ = [
    "EVALUATORS",
    "build_evaluator",
    "TextDetEvaluator",
    "TextCOCOEvaluator",
    "DOTAEvaluator",
    "TextSpottingEvaluator",
    "WordAccuracyEvaluator",
]

EVALUATORS: Dict[str, Type[DatasetEvaluator]] = {
    "text_det": TextDetEvaluator,
    "dota": DOTAEvaluator,
    "text_e2e": TextSpottingEvaluator,
    "str": WordAccuracyEvaluator,
    "coco": TextCOCOEvaluator,
}
"""``evaluator_type`` -> evaluator class.

An entry is either ``@configurable`` with ``from_config(cls, cfg, dataset_name, output_dir)``
(called as ``cls(cfg, dataset_name, output_dir)``) or a plain class called as
``cls(dataset_name, output_dir=output_dir)``. Types joined by ``+`` (``"text_det+coco"``) build
one evaluator each, run together on one inference pass (:class:`DatasetEvaluators`).
"""


def build_evaluator(
    cfg, dataset_name: str, output_folder: Optional[str] = None
) -> DatasetEvaluator:
    """Build the evaluator registered for ``MetadataCatalog.get(dataset_name).evaluator_type``.

    ``cfg.TEST.EVALUATOR_TYPE``, when set (non-empty), replaces the metadata's type for every test
    set: a spotter scores the text-detection splits end to end with ``"text_e2e"``. A type of
    several entries joined by ``+`` (``"text_det+coco"``) gives a :class:`DatasetEvaluators` of
    them, in that order, fed by one inference pass (their result keys must differ).

    Args:
        cfg: the detectron2 config (``OUTPUT_DIR`` gives the default output folder).
        dataset_name: a registered dataset.
        output_folder: where the evaluator writes its files; default
            ``cfg.OUTPUT_DIR/inference/<dataset_name>``.

    Raises:
        KeyError: the dataset has no ``evaluator_type`` or one (or a ``+`` part of one) missing
            from ``EVALUATORS``.
    """
    evaluator_type = cfg.TEST.get("EVALUATOR_TYPE", "") or MetadataCatalog.get(dataset_name).get(
        "evaluator_type", None
    )
    if evaluator_type is None:
        raise KeyError(
            f"dataset {dataset_name!r} has no 'evaluator_type' in its metadata; "
            f"set one of {sorted(EVALUATORS)} when registering it"
        )
    parts = [part.strip() for part in evaluator_type.split("+")]
    unknown = [part for part in parts if part not in EVALUATORS]
    if unknown:
        raise KeyError(
            f"dataset {dataset_name!r} has evaluator_type {evaluator_type!r}, which has no "
            f"evaluator (TEST.EVALUATOR_TYPE replaces the metadata's type when set); known types: "
            f"{sorted(EVALUATORS)}, or several joined by '+'"
        )
    if output_folder is None:
        output_folder = default_output_dir(cfg, dataset_name)
    evaluators = [_build_one(EVALUATORS[part], cfg, dataset_name, output_folder) for part in parts]
    return evaluators[0] if len(evaluators) == 1 else DatasetEvaluators(evaluators)


def _build_one(
    evaluator_cls: Type[DatasetEvaluator], cfg, dataset_name: str, output_folder: str
) -> DatasetEvaluator:
    """One ``EVALUATORS`` entry, built as the table's docstring says."""
    if hasattr(evaluator_cls, "from_config"):
        return evaluator_cls(cfg, dataset_name, output_folder)
    return evaluator_cls(dataset_name, output_dir=output_folder)
