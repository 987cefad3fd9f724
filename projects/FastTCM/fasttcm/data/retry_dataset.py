"""A training dataset that maps samples and replaces the ones its mapper rejects.

A mapper returns None for a sample it cannot use: a word crop that does not decode, an image
whose random crop kept no instance. detectron2's ``MapDataset`` then retries with another random
index, but in detectron2 0.6 it draws that index with ``random.Random.sample`` on a ``set``,
which Python 3.11 refuses (``TypeError``), so the first rejected sample ends training.
:class:`RetryingMapDataset` keeps detectron2's behaviour without that failure:

* a rejected index is set aside (its failure may be transient: a random crop), and another index
  is drawn uniformly from the ones not set aside; an index that maps again is taken back;
* every rejection is counted (:attr:`~RetryingMapDataset.num_skipped`, and the distinct indices
  in :attr:`~RetryingMapDataset.num_distinct_skipped`) and reported by a warning, at most once per
  `log_period` seconds, that carries both counts;
* when every index has been rejected in a row, a ``RuntimeError`` says so instead of looping.

Data-loader workers each hold a copy: counts and warnings are per worker process.
"""

import logging
import random
import time
from typing import Any, Callable, Optional, Set

import torch
from torch.utils.data import Dataset

from detectron2.utils.serialize import PicklableWrapper

__all__ = ["RetryingMapDataset"]

logger = logging.getLogger(__name__)


def _describe(sample: Any) -> str:
    """A short name of a dataset dict for messages: its image, LMDB entry or id."""
    if not isinstance(sample, dict):
        return repr(sample)[:200]
    if "lmdb_path" in sample:
        return f"{sample.get('image_key', '?')} in {sample['lmdb_path']}"
    for key in ("file_name", "image_id"):
        if key in sample:
            return f"{key}={sample[key]!r}"
    return f"a sample with keys {sorted(sample)}"


class RetryingMapDataset(Dataset):
    """Map-style dataset ``mapper(dataset[i])`` that replaces rejected samples (module docstring).

    Args:
        dataset: a map-style dataset of dataset dicts (e.g. detectron2's ``DatasetFromList``).
        mapper: callable returning the model's input dict, or None to reject the sample.
        seed: seed of the replacement draws in the main process; a data-loader worker reseeds
            from its own torch seed, so workers draw different replacements.
        log_period: seconds between two warnings about rejected samples (the first rejection
            is always reported).
    """

    def __init__(
        self,
        dataset: Dataset,
        mapper: Callable[[Any], Optional[Any]],
        *,
        seed: int = 42,
        log_period: float = 60.0,
    ):
        self._dataset = dataset
        self._mapper = PicklableWrapper(mapper)  # a lambda survives the spawn of workers
        self._seed = seed
        self._rng = random.Random(seed)
        self._rng_worker: Optional[int] = None
        self.log_period = log_period
        self._last_log = -float("inf")
        self._set_aside: Set[int] = set()
        self._ever_rejected: Set[int] = set()
        self.num_skipped = 0

    @property
    def num_distinct_skipped(self) -> int:
        """How many different indices the mapper has rejected at least once."""
        return len(self._ever_rejected)

    def __len__(self) -> int:
        return len(self._dataset)

    def _random_index(self) -> int:
        worker = torch.utils.data.get_worker_info()
        if worker is not None and self._rng_worker != worker.id:
            self._rng = random.Random(worker.seed)
            self._rng_worker = worker.id
        n = len(self._dataset)
        if len(self._set_aside) >= n:
            raise RuntimeError(
                f"RetryingMapDataset: the mapper rejected all {n} training samples one after "
                f"another ({self.num_skipped} rejections so far); check the mapper's warnings "
                "and the dataset"
            )
        if len(self._set_aside) > n // 2:  # mostly rejected: draw among the rest directly
            return self._rng.choice([i for i in range(n) if i not in self._set_aside])
        while True:
            index = self._rng.randrange(n)
            if index not in self._set_aside:
                return index

    def _report(self, index: int, sample: Any) -> None:
        now = time.monotonic()
        if now - self._last_log < self.log_period:
            return
        self._last_log = now
        logger.warning(
            f"Skipped {self.num_skipped} training sample(s) so far that the mapper could not use "
            f"({self.num_distinct_skipped} distinct); latest: index {index}, "
            f"{_describe(sample)}. Each was replaced by a random other sample."
        )

    def __getitem__(self, index: int) -> Any:
        index = int(index)
        while True:
            sample = self._dataset[index]
            mapped = self._mapper(sample)
            if mapped is not None:
                self._set_aside.discard(index)
                return mapped
            self.num_skipped += 1
            self._ever_rejected.add(index)
            self._set_aside.add(index)
            self._report(index, sample)
            index = self._random_index()
