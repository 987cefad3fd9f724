"""Scene-text-recognition datasets in the standard LMDB layout, and their builtin registration.

A split is a folder holding one or more LMDB environments (any folder with a ``data.mdb``, found
recursively, as PARSeq's ``build_tree_dataset``), each with ``num-samples``, ``image-%09d`` and
``label-%09d`` (see :mod:`fasttcm.data.converters.str_lmdb`).

Labels are filtered at load time as in the official loader (clip4str.md sections 1.5 and 4):
whitespace removed, NFKD normalisation with non-ASCII dropped, labels longer than
``max_label_length`` dropped (checked before removing unsupported characters), characters
outside the charset removed, labels that end up empty dropped. Every skip is counted and logged.
Evaluation splits are loaded with the 94-character charset; the evaluator applies its own
(36-character by default) adapter to ground truth and prediction.

Dataset dicts (one per kept sample)::

    {"lmdb_path": str, "image_key": "image-000000001", "image_id": "<split>/<lmdb>/<index>",
     "text": str}

Builtin splits live under ``$DETECTRON2_DATASETS/str_lmdb/`` in PARSeq's tree
(``train/{real,synth}``, ``val``, ``test/<benchmark>``); ``synthetic_words_{train,test}`` are
generated on first load into ``$DETECTRON2_DATASETS/synthetic_words/<split>``.
"""

import functools
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from typing import Dict, List, Optional, Tuple

import lmdb

from detectron2.data import DatasetCatalog, MetadataCatalog

from ...structures.charset import CharsetAdapter, load_charset, preprocess_label
from ..converters.str_lmdb import NUM_SAMPLES_KEY, image_key, label_key

__all__ = [
    "STR_LMDB_SPLITS",
    "SYNTHETIC_WORDS_SPLITS",
    "find_lmdb_dirs",
    "scan_str_lmdb",
    "load_str_lmdb",
    "register_str_lmdb",
    "load_synthetic_words_split",
    "register_all_str",
]

logger = logging.getLogger(__name__)

# name -> (folder under <root>/str_lmdb, number of samples the official protocol evaluates or None)
STR_LMDB_SPLITS = {
    "str_real_train": ("train/real", None),  # Real 3.3M (PARSeq)
    "str_synth_train": ("train/synth", None),  # MJSynth + SynthText
    "str_val": ("val", None),
    "str_iiit5k_test": ("test/IIIT5k", 3000),
    "str_svt_test": ("test/SVT", 647),
    "str_ic13_1015_test": ("test/IC13_1015", 1015),
    "str_ic15_1811_test": ("test/IC15_1811", 1811),
    "str_ic15_2077_test": ("test/IC15_2077", 2077),
    "str_svtp_test": ("test/SVTP", 645),
    "str_cute80_test": ("test/CUTE80", 288),
    "str_host_test": ("test/HOST", 2416),
    "str_wost_test": ("test/WOST", 2416),
    "str_coco_v1.4_test": ("test/COCOv1.4", 9825),
    "str_art_test": ("test/ArT", 35149),
    "str_uber_test": ("test/Uber", 80551),
}

# name -> (split folder, number of crops, seed) of the generated synthetic word crops
SYNTHETIC_WORDS_SPLITS = {
    "synthetic_words_train": ("train", 40000, 0),
    "synthetic_words_test": ("test", 1000, 1),
}
_SYNTHETIC_WORDS_DIR = "synthetic_words"
_SYNTHETIC_STAMP = "generation.json"
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


def register_str_lmdb(name: str, root: str, metadata: Optional[dict] = None, **load_kwargs) -> None:
    """Register an STR LMDB split (evaluated by ``WordAccuracyEvaluator``, ``evaluator_type="str"``).

    Args:
        name: dataset name.
        root: split folder (LMDB environments found recursively).
        metadata: extra metadata (e.g. ``expected_num_samples``).
        **load_kwargs: options of :func:`load_str_lmdb`.
    """
    DatasetCatalog.register(name, functools.partial(load_str_lmdb, root, dataset_name=name, **load_kwargs))
    MetadataCatalog.get(name).set(evaluator_type="str", lmdb_root=root, **(metadata or {}))


def load_synthetic_words_split(root: str, split: str, *, num_crops: int, seed: int, dataset_name: Optional[str] = None):
    """Dataset dicts of a synthetic word-crop split, generating it on first use.

    The split is the LMDB folder ``<root>/synthetic_words/<split>``. If absent, it is generated by
    :func:`fasttcm.data.synthetic.word_crops.generate_word_crops` into a temporary folder renamed
    into place, so concurrent processes never see a partial split.
    """
    out_dir = os.path.join(os.fspath(root), _SYNTHETIC_WORDS_DIR, split)
    params = {"num_crops": int(num_crops), "seed": int(seed)}
    if not os.path.isfile(os.path.join(out_dir, "data.mdb")):
        _generate_synthetic_words(out_dir, params)
    else:
        _warn_if_stale(out_dir, params)
    return load_str_lmdb(out_dir, dataset_name=dataset_name)


def _generate_synthetic_words(out_dir: str, params: dict) -> None:
    # Imported here: rendering loads fonts and is only needed the first time.
    from ..synthetic.word_crops import generate_word_crops

    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", suffix=".tmp", dir=parent)
    try:
        logger.info(f"Generating synthetic word crops {out_dir}: {params['num_crops']} crops (seed {params['seed']})")
        lmdb_dir = os.path.join(staging, "lmdb")
        generate_word_crops(lmdb_dir, params["num_crops"], params["seed"])
        with open(os.path.join(lmdb_dir, _SYNTHETIC_STAMP), "w", encoding="utf-8") as f:
            json.dump(params, f)
        try:
            os.rename(lmdb_dir, out_dir)  # atomic; replaces only an absent or empty folder
        except OSError as e:
            if not os.path.isfile(os.path.join(out_dir, "data.mdb")):
                raise OSError(
                    f"Cannot move the generated split into {out_dir} ({e}); the folder exists without data.mdb "
                    "(left over from an interrupted run?). Delete it and load the split again."
                ) from e
            logger.info(f"Another process generated {out_dir} first; using its split")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _warn_if_stale(out_dir: str, params: dict) -> None:
    try:
        with open(os.path.join(out_dir, _SYNTHETIC_STAMP), "r", encoding="utf-8") as f:
            made_with = json.load(f)
    except (OSError, ValueError):
        return
    if made_with != params:
        logger.warning(
            f"{out_dir} was generated with {made_with} but {params} is requested; using the existing files. "
            "Delete the folder to regenerate it."
        )


def register_all_str(root: str) -> None:
    """Register the builtin STR LMDB splits and the synthetic word splits rooted at `root` (no file is read)."""
    for name, (folder, expected) in STR_LMDB_SPLITS.items():
        metadata = {"expected_num_samples": expected} if expected is not None else {}
        register_str_lmdb(name, os.path.join(root, "str_lmdb", folder), metadata)
    for name, (split, num_crops, seed) in SYNTHETIC_WORDS_SPLITS.items():
        DatasetCatalog.register(
            name,
            functools.partial(
                load_synthetic_words_split, root, split, num_crops=num_crops, seed=seed, dataset_name=name
            ),
        )
        MetadataCatalog.get(name).set(
            evaluator_type="str",
            lmdb_root=os.path.join(root, _SYNTHETIC_WORDS_DIR, split),
            num_crops=num_crops,
            seed=seed,
        )
