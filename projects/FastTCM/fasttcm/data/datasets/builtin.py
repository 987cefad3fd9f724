"""Predefined dataset splits, registered at import under ``$DETECTRON2_DATASETS``.

Importing ``fasttcm`` imports this module, so every process (including workers started by
``detectron2.engine.launch``) sees the splits. Registration only joins paths; a split whose files
are missing still registers and fails with a message saying how to create them when it is loaded
(``DatasetCatalog.get(name)``).

Layout under the root (default ``./datasets``; see ``datasets/README.md``)::

    <dataset>/{train,test}.json              text JSON, made by tools/convert_dataset.py
    <dataset>/{train,test}_images/           the images the JSON names
    evaluation/<dataset>_gt/<split>/         gt_<image stem>.txt evaluation ground truth
    evaluation/lexicons/<dataset>/           end-to-end lexicons (provided by the user)
    art/test_images/ + art/nighttime_test.txt  unannotated ArT test images and the list of the
                                             night-time subset (provided by the user)
    synthtext/{train.json,train_images/}     SynthText pretraining set (no evaluation GT)
    synthetic_text/{train,test}/             generated on first load (no download)
    synthetic_text/spotting_{train,test}/    the same, single words only (spotting splits)
"""

import functools
import json
import logging
import os
import shutil
import tempfile
from typing import Optional

from detectron2.data import DatasetCatalog, MetadataCatalog

from .builtin_meta import get_text_dataset_metadata
from .text import load_text_json, register_text_images, register_text_instances, text_split_metadata

logger = logging.getLogger(__name__)

__all__ = [
    "SYNTHETIC_TEXT_SPLITS",
    "SYNTHETIC_SPOTTING_SPLITS",
    "SYNTHETIC_SPOTTING_OPTIONS",
    "SYNTHETIC_TEXT_IMAGE_SIZE",
    "register_all_text",
    "load_synthetic_text_split",
]

# name -> (dataset folder under the root, split)
_PREDEFINED_SPLITS_TEXT = {
    "icdar2015_train": ("icdar2015", "train"),
    "icdar2015_test": ("icdar2015", "test"),
    "totaltext_train": ("totaltext", "train"),
    "totaltext_test": ("totaltext", "test"),
    "ctw1500_train": ("ctw1500", "train"),
    "ctw1500_test": ("ctw1500", "test"),
    "msra_td500_train": ("msra_td500", "train"),
    "msra_td500_test": ("msra_td500", "test"),
    "art_train": ("art", "train"),
    "synthtext_train": ("synthtext", "train"),
}

# name -> (image list, image root), relative to the root; unannotated (inference/submission only)
_PREDEFINED_IMAGE_LISTS_TEXT = {
    "art_nighttime_test": ("art/nighttime_test.txt", "art/test_images"),
}

# name -> (split, number of images, seed) of the generated synthetic scene-text splits
SYNTHETIC_TEXT_SPLITS = {
    "synthetic_text_train": ("train", 400, 0),
    "synthetic_text_test": ("test", 100, 1),
}
# name -> (split, number of images, seed) of the synthetic end-to-end spotting splits: single words
# only (SYNTHETIC_SPOTTING_OPTIONS), as a recognizer without a space character can read them all
SYNTHETIC_SPOTTING_SPLITS = {
    "synthetic_spotting_train": ("spotting_train", 400, 2),
    "synthetic_spotting_test": ("spotting_test", 100, 3),
    "synthetic_spotting_val": ("spotting_val", 100, 4),  # for choosing inference thresholds, not the test split
}
SYNTHETIC_SPOTTING_OPTIONS = {"line_prob": 0.0}  # SceneTextOptions overrides: no multi-word lines
SYNTHETIC_TEXT_IMAGE_SIZE = (320, 320)  # (height, width)
_SYNTHETIC_DIR = "synthetic_text"
_SYNTHETIC_JSON = "annotations.json"  # written by generate_text_dataset into its out_dir
_SYNTHETIC_STAMP = "generation.json"  # the parameters a generated split was made with


def _split_paths(root: str, dataset: str, split: str):
    return (
        os.path.join(root, dataset, f"{split}.json"),
        os.path.join(root, dataset, f"{split}_images"),
    )


def _builtin_text_metadata(root: str, dataset: str, split: str) -> dict:
    """Static metadata of `dataset` plus the split's evaluation paths (none is checked)."""
    meta = get_text_dataset_metadata(dataset)
    converter = meta.pop("converter")
    writes_eval_gt = meta.pop("writes_eval_gt", True)
    if converter is not None:
        if writes_eval_gt:
            meta["gt_dir"] = os.path.join(root, "evaluation", f"{dataset}_gt", split)
        meta["convert_command"] = (
            f"python tools/convert_dataset.py {converter} --src /path/to/raw/{dataset} "
            f"--dst {os.path.join(root, dataset)}"
        )
    if split == "test" and any(t != "none" for t in meta["lexicon_types"]):
        meta["lexicon_dir"] = os.path.join(root, "evaluation", "lexicons", dataset)
    return meta


def register_all_text(root: str) -> None:
    """Register every predefined scene-text split rooted at `root` (no file is read)."""
    for name, (dataset, split) in _PREDEFINED_SPLITS_TEXT.items():
        json_file, image_root = _split_paths(root, dataset, split)
        register_text_instances(
            name, _builtin_text_metadata(root, dataset, split), json_file, image_root
        )

    for name, (list_file, image_root) in _PREDEFINED_IMAGE_LISTS_TEXT.items():
        meta = _builtin_text_metadata(root, "art", "test")
        meta.pop("gt_dir", None)  # no public ground truth
        register_text_images(
            name, meta, os.path.join(root, list_file), os.path.join(root, image_root)
        )

    synthetic = [(name, spec, None) for name, spec in SYNTHETIC_TEXT_SPLITS.items()]
    synthetic += [(name, spec, SYNTHETIC_SPOTTING_OPTIONS) for name, spec in SYNTHETIC_SPOTTING_SPLITS.items()]
    for name, (split, num_images, seed), options in synthetic:
        out_dir = os.path.join(root, _SYNTHETIC_DIR, split)
        DatasetCatalog.register(
            name,
            functools.partial(
                load_synthetic_text_split,
                root,
                split,
                num_images=num_images,
                seed=seed,
                dataset_name=name,
                options=options,
            ),
        )
        meta = _builtin_text_metadata(root, _SYNTHETIC_DIR, split)
        meta.update(num_images=num_images, seed=seed)
        if options:
            meta.update(generation_options=dict(options))
        MetadataCatalog.get(name).set(
            **text_split_metadata(
                meta, json_file=os.path.join(out_dir, _SYNTHETIC_JSON), image_root=out_dir
            )
        )


def load_synthetic_text_split(
    root, split: str, *, num_images: int, seed: int, dataset_name=None, options: Optional[dict] = None
):
    """Dataset dicts of a synthetic scene-text split, generating it on first use.

    The split lives in ``<root>/synthetic_text/<split>/`` (``annotations.json`` + images). If it
    is absent, ``fasttcm.data.synthetic.scene_text.generate_text_dataset`` writes it into a
    temporary folder that is then renamed into place, so concurrent processes never see a partial
    split (the first to finish wins; the others use its result).

    Args:
        root: dataset root (``$DETECTRON2_DATASETS``).
        split: ``"train"`` or ``"test"`` (any name works; it is only a folder name).
        num_images, seed: generation parameters (:data:`SYNTHETIC_TEXT_SPLITS` for the builtins).
        dataset_name: registered name, for messages.
        options: :class:`~fasttcm.data.synthetic.scene_text.SceneTextOptions` overrides (e.g.
            :data:`SYNTHETIC_SPOTTING_OPTIONS`); None = the default difficulty.

    Returns:
        detectron2 dataset dicts, as :func:`load_text_json`.
    """
    out_dir = os.path.join(os.fspath(root), _SYNTHETIC_DIR, split)
    json_file = os.path.join(out_dir, _SYNTHETIC_JSON)
    params = {
        "num_images": int(num_images),
        "seed": int(seed),
        "image_size": list(SYNTHETIC_TEXT_IMAGE_SIZE),
    }
    if options:
        params["options"] = dict(options)
    if not os.path.isfile(json_file):
        _generate_synthetic_split(out_dir, params)
    else:
        _warn_if_stale(out_dir, params)
    return load_text_json(json_file, out_dir, dataset_name)


def _generate_synthetic_split(out_dir: str, params: dict) -> None:
    # Imported here: the generator loads fonts and is only needed the first time.
    from fasttcm.data.synthetic.scene_text import generate_text_dataset

    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", suffix=".tmp", dir=parent)
    try:
        logger.info(
            "Generating synthetic text split %s: %d images (seed %d, %dx%d)",
            out_dir,
            params["num_images"],
            params["seed"],
            *params["image_size"],
        )
        generate_text_dataset(
            tmp_dir,
            params["num_images"],
            params["seed"],
            image_size=tuple(params["image_size"]),
            **params.get("options", {}),
        )
        with open(os.path.join(tmp_dir, _SYNTHETIC_STAMP), "w", encoding="utf-8") as f:
            json.dump(params, f)
        try:
            os.rename(tmp_dir, out_dir)  # atomic; replaces only an absent or empty folder
        except OSError as e:
            if not os.path.isfile(os.path.join(out_dir, _SYNTHETIC_JSON)):
                raise OSError(
                    f"Cannot move the generated synthetic split into {out_dir} ({e}); the folder "
                    "exists without annotations.json (left over from an interrupted run?). "
                    "Delete it and load the split again."
                ) from e
            logger.info("Another process generated %s first; using its split", out_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _warn_if_stale(out_dir: str, params: dict) -> None:
    stamp = os.path.join(out_dir, _SYNTHETIC_STAMP)
    try:
        with open(stamp, "r", encoding="utf-8") as f:
            made_with = json.load(f)
    except (OSError, ValueError):
        return
    if made_with != params:
        logger.warning(
            "%s was generated with %s but %s is requested; using the existing files. Delete the "
            "folder to regenerate it.",
            out_dir,
            made_with,
            params,
        )


if __name__.endswith(".builtin"):
    # Assume pre-defined datasets live in `./datasets` (detectron2's convention).
    _root = os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))
    register_all_text(_root)
    from .dota import register_all_dota

    register_all_dota(_root)
    from .str_lmdb import register_all_str

    register_all_str(_root)
