"""Data loaders of FastTCM-D2: the mapper registry and the train / test loader builders.

Shaped like DensePose's ``densepose/data/build.py``: the trainer only wires these together.

* A mapper class registers itself under the name that ``INPUT.DATASET_MAPPER_NAME`` uses
  (``@register_mapper("text")``); :func:`build_mapper` builds it as ``cls(cfg, is_train)``.
* :func:`build_train_loader` adds ``DATASETS.TRAIN_FRACTION`` (a deterministic subset of the
  training images) to detectron2's train loader, and maps samples through
  :class:`~fasttcm.data.retry_dataset.RetryingMapDataset`: a sample the mapper rejects (returns
  None for, e.g. an undecodable word crop) is counted, reported and replaced by another, where
  detectron2 0.6's own retry fails on Python 3.11.
* :func:`build_test_loader` batches ``TEST.STR.BATCH_SIZE`` samples for a mapper that declares
  ``batched_inference = True`` (word crops), and one image per batch otherwise (detectron2).
"""

import logging
from typing import Callable, Dict, TypeVar

import torch

from detectron2.data import (
    DatasetFromList,
    MapDataset,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.data.build import trivial_batch_collator
from detectron2.data.samplers import InferenceSampler

from .datasets.fractions import select_fraction
from .retry_dataset import RetryingMapDataset

__all__ = [
    "MAPPER_REGISTRY",
    "register_mapper",
    "build_mapper",
    "build_train_loader",
    "build_test_loader",
]

logger = logging.getLogger(__name__)

MapperT = TypeVar("MapperT", bound=Callable)

MAPPER_REGISTRY: Dict[str, Callable] = {}
"""``INPUT.DATASET_MAPPER_NAME`` -> mapper class, called as ``cls(cfg, is_train)``."""


def register_mapper(name: str) -> Callable[[MapperT], MapperT]:
    """Class decorator: register a dataset mapper under ``INPUT.DATASET_MAPPER_NAME`` `name`."""

    def decorator(mapper_cls: MapperT) -> MapperT:
        if name in MAPPER_REGISTRY and MAPPER_REGISTRY[name] is not mapper_cls:
            raise KeyError(
                f"dataset mapper name {name!r} is already registered to {MAPPER_REGISTRY[name]}"
            )
        MAPPER_REGISTRY[name] = mapper_cls
        return mapper_cls

    return decorator


def build_mapper(cfg, is_train: bool):
    """The mapper registered as ``cfg.INPUT.DATASET_MAPPER_NAME``, built for train or test."""
    name = cfg.INPUT.DATASET_MAPPER_NAME
    if name not in MAPPER_REGISTRY:
        raise KeyError(
            f"INPUT.DATASET_MAPPER_NAME={name!r}; known mappers: {sorted(MAPPER_REGISTRY)}"
        )
    return MAPPER_REGISTRY[name](cfg, is_train)


def build_train_loader(cfg, mapper=None):
    """detectron2's train loader over ``DATASETS.TRAIN``, subsampled by ``TRAIN_FRACTION``.

    Args:
        cfg: the config (``DATASETS``, ``DATALOADER``, ``SOLVER.IMS_PER_BATCH``).
        mapper: the mapper; default: the one ``INPUT.DATASET_MAPPER_NAME`` names.

    Returns:
        detectron2's infinite training loader of lists of mapped dicts; samples the mapper
        rejects are replaced (see :class:`~fasttcm.data.retry_dataset.RetryingMapDataset`).
    """
    dataset = get_detection_dataset_dicts(
        cfg.DATASETS.TRAIN,
        filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
        proposal_files=cfg.DATASETS.PROPOSAL_FILES_TRAIN if cfg.MODEL.LOAD_PROPOSALS else None,
    )
    if cfg.DATASETS.TRAIN_FRACTION < 1.0:
        before = len(dataset)
        dataset = select_fraction(
            dataset, cfg.DATASETS.TRAIN_FRACTION, cfg.DATASETS.TRAIN_FRACTION_SEED
        )
        logger.info(
            f"DATASETS.TRAIN_FRACTION={cfg.DATASETS.TRAIN_FRACTION}: training on "
            f"{len(dataset)} of {before} images (seed {cfg.DATASETS.TRAIN_FRACTION_SEED})"
        )
    if mapper is None:
        mapper = build_mapper(cfg, True)
    # detectron2's arguments (sampler, batch size, workers) from the config, but its MapDataset,
    # whose retry of a rejected sample raises on Python 3.11, replaced by RetryingMapDataset
    kwargs = build_detection_train_loader.from_config(cfg, mapper=mapper, dataset=dataset)
    kwargs["dataset"] = RetryingMapDataset(
        DatasetFromList(kwargs["dataset"], copy=False), kwargs["mapper"]
    )
    kwargs["mapper"] = None  # already mapped: no second MapDataset
    return build_detection_train_loader(**kwargs)


def build_test_loader(cfg, dataset_name: str, mapper=None):
    """Test loader of one dataset; batched for mappers with ``batched_inference = True``.

    detectron2's ``build_detection_test_loader`` always batches one image. Recognition decodes a
    whole batch in one autoregressive loop, so word crops are batched ``TEST.STR.BATCH_SIZE`` at
    a time (the official CLIP4STR test script uses 512). Each process gets its
    :class:`InferenceSampler` shard, every sample exactly once.

    Returns:
        an iterable of lists of mapped dicts.
    """
    if mapper is None:
        mapper = build_mapper(cfg, False)
    if not getattr(mapper, "batched_inference", False):
        return build_detection_test_loader(cfg, dataset_name, mapper=mapper)
    dicts = get_detection_dataset_dicts([dataset_name], filter_empty=False)
    dataset = MapDataset(DatasetFromList(dicts, copy=False), mapper)
    batch_sampler = torch.utils.data.BatchSampler(
        InferenceSampler(len(dataset)), cfg.TEST.STR.BATCH_SIZE, drop_last=False
    )
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        collate_fn=trivial_batch_collator,
    )
