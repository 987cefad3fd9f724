"""Deterministic training subsets (the paper's few-shot protocol trains on 10% of the images)."""

import math
from numbers import Real
from typing import List, Sequence

import numpy as np

__all__ = ["select_fraction"]


def select_fraction(dataset_dicts: Sequence[dict], fraction: float, seed: int) -> List[dict]:
    """Select ``max(1, round(fraction * N))`` images, the same ones on every run and machine.

    The dicts are first sorted by ``(image_id, file_name)``, so the subset does not depend on
    the input order; a permutation drawn from ``numpy.random.default_rng(seed)`` then picks the
    first k. For one seed the subsets are nested: a smaller fraction selects a subset of what a
    larger one selects.

    Args:
        dataset_dicts: detectron2 dataset dicts with ``image_id`` and ``file_name``.
        fraction: share of images to keep, in (0, 1]; 1 returns all dicts in their input order.
        seed: seed of the permutation (``DATASETS.TRAIN_FRACTION_SEED``).

    Returns:
        The selected dicts (the same objects), sorted by ``(image_id, file_name)``.

    Raises:
        ValueError: `fraction` is not a finite number in (0, 1], or `dataset_dicts` is empty.
        TypeError: `seed` is not an integer.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, Real) or not math.isfinite(fraction):
        raise ValueError(f"fraction must be a finite number in (0, 1], got {fraction!r}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1] (1.0 = all images), got {fraction}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if len(dataset_dicts) == 0:
        raise ValueError("cannot select a fraction of an empty dataset")
    if fraction == 1.0:
        return list(dataset_dicts)
    ordered = sorted(dataset_dicts, key=lambda d: (d["image_id"], d.get("file_name", "")))
    num_keep = max(1, math.floor(fraction * len(ordered) + 0.5))
    chosen = np.sort(np.random.default_rng(int(seed)).permutation(len(ordered))[:num_keep])
    return [ordered[i] for i in chosen]
