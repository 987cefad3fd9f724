"""Scene-text-recognition datasets in the standard LMDB layout: loading and registration.

A split is a folder holding one or more LMDB environments (any folder with a ``data.mdb``, found
recursively, as PARSeq's ``build_tree_dataset``), each with ``num-samples``, ``image-%09d`` and
``label-%09d`` (see :mod:`fasttcm.data.converters.str_lmdb`).

Labels are filtered at load time as in the official CLIP4STR (PARSeq) loader:
whitespace removed, NFKD normalisation with non-ASCII dropped, labels longer than
``max_label_length`` dropped (checked before removing unsupported characters), characters
outside the charset removed, labels that end up empty dropped. Every skip is counted and logged.
Evaluation splits are loaded with the 94-character charset; the evaluator applies its own
(36-character by default) adapter to ground truth and prediction.

Dataset dicts (one per kept sample)::

    {"lmdb_path": str, "image_key": "image-000000001", "image_id": "<split>/<lmdb>/<index>",
     "text": str}

The predefined splits (PARSeq's tree under ``$DETECTRON2_DATASETS/str_lmdb/`` and the
generated ``synthetic_words_{train,test}``) are registered by
:mod:`fasttcm.data.datasets.builtin`.
"""

import functools
import logging
import os
from collections import Counter
from typing import Dict, List, Optional, Tuple

import lmdb

from detectron2.data import DatasetCatalog, MetadataCatalog

from ...structures.charset import CharsetAdapter, load_charset, preprocess_label
from ..converters.str_lmdb import NUM_SAMPLES_KEY, image_key, label_key

__all__ = [
    "find_lmdb_dirs",
    "scan_str_lmdb",
    "load_str_lmdb",
    "register_str_lmdb",
]

logger = logging.getLogger(__name__)

_LOAD_CHARSET = "94_full"
_MAX_LABEL_LENGTH = 25


def find_lmdb_dirs(root: str) -> List[str]:
    """Every folder under `root` (itself included) holding a ``data.mdb``, sorted by path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        if "data.mdb" in filenames:
            found.append(dirpath)
    return sorted(found)


def scan_str_lmdb(
    lmdb_dir: str,
    adapter: CharsetAdapter,
    *,
    max_label_length: int = _MAX_LABEL_LENGTH,
    remove_whitespace: bool = True,
    normalize_unicode: bool = True,
) -> Tuple[List[Tuple[int, str]], Counter]:
    """Read and filter the labels of one LMDB environment (images are not read).

    Returns:
        kept: ``(1-based index, filtered label)`` of every kept sample.
        skipped: counts by reason: ``too_long``, ``empty`` (nothing left in the charset),
        ``missing_label``, ``undecodable_label`` (not UTF-8).

    Raises:
        ValueError: the environment has no valid ``num-samples`` entry.
    """
    kept: List[Tuple[int, str]] = []
    skipped: Counter = Counter()
    env = lmdb.open(lmdb_dir, readonly=True, lock=False, readahead=False, meminit=False, max_readers=1)
    try:
        with env.begin(write=False) as txn:
            raw = txn.get(NUM_SAMPLES_KEY)
            try:
                num_samples = int(raw)
            except (TypeError, ValueError):
                raise ValueError(f"{lmdb_dir}/data.mdb has no valid 'num-samples' entry ({raw!r})") from None
            for index in range(1, num_samples + 1):
                raw_label = txn.get(label_key(index))
                if raw_label is None:
                    skipped["missing_label"] += 1
                    continue
                try:
                    label = raw_label.decode("utf-8")
                except UnicodeDecodeError:
                    skipped["undecodable_label"] += 1
                    continue
                label, reason = preprocess_label(
                    label,
                    adapter,
                    max_label_length,
                    remove_whitespace=remove_whitespace,
                    normalize_unicode=normalize_unicode,
                )
                if label is None:
                    skipped[reason] += 1
                else:
                    kept.append((index, label))
    finally:
        env.close()
    return kept, skipped


def load_str_lmdb(
    root: str,
    *,
    charset: str = _LOAD_CHARSET,
    max_label_length: int = _MAX_LABEL_LENGTH,
    remove_whitespace: bool = True,
    normalize_unicode: bool = True,
    dataset_name: Optional[str] = None,
) -> List[Dict]:
    """Dataset dicts of every LMDB environment under `root`, labels filtered as the official loader.

    Args:
        root: a split folder (see the module docstring).
        charset: charset name or file (see :func:`load_charset`) the labels are adapted to.
        max_label_length: longer labels are dropped (raw length after normalisation).
        remove_whitespace, normalize_unicode: the official label normalisation options.
        dataset_name: registered name, for messages and image ids.

    Returns:
        list of dicts ``{"lmdb_path", "image_key", "image_id", "text"}``.

    Raises:
        FileNotFoundError: `root` holds no LMDB environment.
        ValueError: an environment has no valid ``num-samples`` entry (the message names it).
    """
    name = dataset_name or root
    lmdb_dirs = find_lmdb_dirs(root)
    if not lmdb_dirs:
        raise FileNotFoundError(
            f"STR dataset {name!r}: no LMDB environment (folder with data.mdb) under {root}; create one with "
            "tools/create_lmdb_dataset.py or place the PARSeq/CLIP4STR LMDB archives there"
        )
    adapter = CharsetAdapter(load_charset(charset))
    skipped: Counter = Counter()
    dataset_dicts = []
    for lmdb_dir in lmdb_dirs:
        relative = os.path.relpath(lmdb_dir, root).replace(os.sep, "/")
        prefix = name if relative == "." else f"{name}/{relative}"
        try:
            kept, dropped = scan_str_lmdb(
                lmdb_dir,
                adapter,
                max_label_length=max_label_length,
                remove_whitespace=remove_whitespace,
                normalize_unicode=normalize_unicode,
            )
        except ValueError as e:
            raise ValueError(f"STR dataset {name!r}: {e}") from e
        skipped.update(dropped)
        dataset_dicts.extend(
            {"lmdb_path": lmdb_dir, "image_key": image_key(i).decode(), "image_id": f"{prefix}/{i}", "text": label}
            for i, label in kept
        )
    total = len(dataset_dicts) + sum(skipped.values())
    message = f"Loaded {len(dataset_dicts)} of {total} samples of STR dataset {name!r} from {len(lmdb_dirs)} LMDB(s)"
    if skipped:
        message += (
            f"; skipped {dict(skipped)} (too_long: > {max_label_length} chars; empty: nothing left in the charset)"
        )
    logger.info(message)
    return dataset_dicts


def register_str_lmdb(
    name: str, root: str, metadata: Optional[dict] = None, **load_kwargs
) -> None:
    """Register an STR LMDB split (``evaluator_type="str"``, scored by ``WordAccuracyEvaluator``).

    Args:
        name: dataset name.
        root: split folder (LMDB environments found recursively).
        metadata: extra metadata (e.g. ``expected_num_samples``).
        **load_kwargs: options of :func:`load_str_lmdb`.
    """
    DatasetCatalog.register(
        name, functools.partial(load_str_lmdb, root, dataset_name=name, **load_kwargs)
    )
    MetadataCatalog.get(name).set(evaluator_type="str", lmdb_root=root, **(metadata or {}))
