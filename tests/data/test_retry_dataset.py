"""Training never stops on a sample its mapper rejects: RetryingMapDataset and the train loader.

detectron2 0.6's ``MapDataset`` retries a rejected sample with ``random.sample`` on a set, which
Python 3.11 refuses; the project's train loader replaces it. An STR LMDB with undecodable crops
is iterated by the real train loader (and trained on for two iterations), every rejection is
counted and reported, and no rejected crop reaches the model.
"""

import logging

import cv2
import numpy as np
import pytest

from detectron2.data import DatasetFromList, MapDataset

from fasttcm.data.build import build_train_loader
from fasttcm.data.converters.str_lmdb import StrLmdbWriter
from fasttcm.data.datasets.str_lmdb import register_str_lmdb
from fasttcm.data.retry_dataset import RetryingMapDataset
from fasttcm.data.str_mapper import STRDatasetMapper
from tests.common import QUICK_RECOGNIZER, load_config


class _Records(logging.Handler):
    """Collects the messages of one logger (detectron2's setup may stop propagation to root)."""

    def __init__(self, name):
        super().__init__(logging.WARNING)
        self.messages = []
        self.logger = logging.getLogger(name)

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __enter__(self):
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)


def _reject_odd(x):
    return None if x % 2 else {"value": x}


def test_detectron2_map_dataset_retry_fails_on_this_python():
    """The reason for RetryingMapDataset: detectron2 0.6's retry raises instead of retrying."""
    with pytest.raises(TypeError):
        MapDataset(DatasetFromList(list(range(6)), copy=False), _reject_odd)[1]


def test_rejected_samples_are_replaced_counted_and_reported():
    dataset = RetryingMapDataset(
        DatasetFromList(list(range(10)), copy=False), _reject_odd, log_period=0.0
    )
    with _Records("fasttcm.data.retry_dataset") as records:
        values = [dataset[i]["value"] for i in range(10)]
    assert values[0::2] == [0, 2, 4, 6, 8]  # accepted samples are returned as they are
    assert all(v % 2 == 0 for v in values)  # rejected ones replaced by accepted ones
    # index 1, 3, 5, 7, 9 were each rejected when asked for; replacements never draw a known
    # rejected index, so any extra rejection is a not-yet-seen odd index
    assert dataset.num_distinct_skipped == 5
    assert 5 <= dataset.num_skipped <= 10
    assert len(records.messages) == dataset.num_skipped  # log_period 0: every rejection
    assert records.messages[-1].startswith(
        f"Skipped {dataset.num_skipped} training sample(s) so far"
    )
    assert "(5 distinct)" in records.messages[-1]


def test_reports_are_rate_limited():
    dataset = RetryingMapDataset(
        DatasetFromList(list(range(10)), copy=False), _reject_odd, log_period=3600.0
    )
    with _Records("fasttcm.data.retry_dataset") as records:
        for i in (1, 3, 5):
            dataset[i]
    assert dataset.num_skipped >= 3 and len(records.messages) == 1


def test_all_samples_rejected_is_a_clear_error():
    dataset = RetryingMapDataset(DatasetFromList([1, 3, 5], copy=False), _reject_odd)
    with pytest.raises(RuntimeError, match="rejected all 3 training samples"):
        dataset[0]
    assert dataset.num_skipped == 3


def _png(seed):
    image = np.random.default_rng(seed).integers(0, 256, size=(12, 30, 3), dtype=np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


GOOD = ["alpha", "beta", "gamma", "delta", "omega"]
BAD = ["garbage", "empty", "truncated"]


@pytest.fixture
def lmdb_split(tmp_path):
    """5 decodable crops and 3 that are not: random bytes, nothing, a cut PNG."""
    broken = {"garbage": b"not an image at all", "empty": b"", "truncated": _png(99)[:40]}
    with StrLmdbWriter(tmp_path / "split") as writer:
        for i, label in enumerate(["alpha", "garbage", "beta", "gamma", "empty", "delta"]):
            writer.add(broken.get(label, _png(i)), label)
        writer.add(broken["truncated"], "truncated")
        writer.add(_png(7), "omega")
    name = f"retry_test_lmdb_{tmp_path.name}"
    register_str_lmdb(name, str(tmp_path / "split"))
    return name


def _find_retrying(loader):
    obj = loader
    for _ in range(5):
        if isinstance(obj, RetryingMapDataset):
            return obj
        obj = obj.dataset
    raise AssertionError("no RetryingMapDataset in the train loader")


def test_train_loader_skips_undecodable_crops_and_counts_them(lmdb_split):
    cfg = load_config(
        QUICK_RECOGNIZER,
        "DATASETS.TRAIN",
        (lmdb_split,),
        "SOLVER.IMS_PER_BATCH",
        4,
        "DATALOADER.NUM_WORKERS",
        0,
    )
    mapper = STRDatasetMapper(cfg, is_train=True)
    loader = build_train_loader(cfg, mapper)
    retrying = _find_retrying(loader)
    retrying.log_period = 0.0
    texts = []
    with _Records("fasttcm.data.retry_dataset") as records:
        for _, batch in zip(range(12), loader):  # 48 samples: 6 epochs of the 8 indices
            texts += [sample["text"] for sample in batch]
            assert all(tuple(s["image"].shape) == (3, 32, 64) for s in batch)
    assert len(texts) == 48 and set(texts) <= set(GOOD)
    assert set(texts) == set(GOOD)
    # the sampler asks for every index each epoch: the 3 broken crops were all met
    assert retrying.num_distinct_skipped == 3
    assert retrying.num_skipped == mapper.num_unreadable >= 6
    assert records.messages[-1].startswith(f"Skipped {retrying.num_skipped} training sample(s)")
    assert "(3 distinct)" in records.messages[-1]


def test_trainer_trains_on_an_lmdb_with_undecodable_crops(lmdb_split, tmp_path):
    from fasttcm.engine import FastTCMTrainer

    cfg = load_config(
        QUICK_RECOGNIZER,
        "DATASETS.TRAIN",
        (lmdb_split,),
        "DATASETS.TEST",
        (),
        "SOLVER.MAX_ITER",
        3,
        "SOLVER.CHECKPOINT_PERIOD",
        100,
        "OUTPUT_DIR",
        str(tmp_path / "out"),
    )
    trainer = FastTCMTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert trainer.iter == 3  # all MAX_ITER iterations ran
    assert np.isfinite(trainer.storage.history("total_loss").latest())
    assert _find_retrying(trainer._trainer.data_loader).num_skipped >= 3
