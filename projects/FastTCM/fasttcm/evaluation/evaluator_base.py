"""What every evaluator of FastTCM-D2 shares: arguments, configuration and collected predictions.

:class:`EvaluatorBase` holds the common ``(dataset_name, output_dir, distributed)`` arguments and
the dataset's metadata, builds them from a config (``from_config``), keeps the predictions that
``process`` collects and gathers them on the main process for ``evaluate``.
"""

from typing import List, Optional

from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator

from .gather import gather_on_main_process
from .output_dir import default_output_dir

__all__ = ["EvaluatorBase"]


class EvaluatorBase(DatasetEvaluator):
    """A :class:`~detectron2.evaluation.DatasetEvaluator` that collects one record per image.

    Subclasses append their records to ``self._predictions`` in ``process`` and start
    ``evaluate`` with :meth:`_gather_predictions`. Their ``@configurable`` ``__init__`` passes
    the common arguments on to this one, and their ``from_config`` adds their own keys to
    this class's.
    """

    def __init__(
        self, dataset_name: str, output_dir: Optional[str] = None, distributed: bool = True
    ):
        """
        Args:
            dataset_name: a registered dataset.
            output_dir: where the evaluator writes its files; nothing is written when None.
            distributed: gather predictions from all processes and evaluate on the main one.
        """
        self._dataset_name = dataset_name
        self._output_dir = output_dir
        self._distributed = distributed
        self._metadata = MetadataCatalog.get(dataset_name)
        self._predictions: List[dict] = []

    @classmethod
    def from_config(cls, cfg, dataset_name: str, output_dir: Optional[str] = None) -> dict:
        """The common arguments; `output_dir` defaults to ``cfg.OUTPUT_DIR/inference/<name>``."""
        if output_dir is None:
            output_dir = default_output_dir(cfg, dataset_name)
        return {"dataset_name": dataset_name, "output_dir": output_dir, "distributed": True}

    def reset(self):
        self._predictions = []

    def _gather_predictions(self) -> Optional[List[dict]]:
        """All processes' predictions on the main process (rank order); None on the others."""
        return gather_on_main_process(self._predictions, self._distributed)
