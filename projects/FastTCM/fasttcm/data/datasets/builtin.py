"""Predefined dataset splits, all registered here at import under ``$DETECTRON2_DATASETS``.

Importing ``fasttcm`` imports this module, so every process (including workers started by
``detectron2.engine.launch``) sees the splits. Registration only joins paths; a split whose files
are missing still registers and fails with a message saying how to create them when it is loaded
(``DatasetCatalog.get(name)``). Synthetic splits are generated on their first load
(:mod:`fasttcm.data.datasets.synthetic_splits`).

Layout under the root (default ``./datasets``; see ``datasets/README.md``)::

    <dataset>/{train,test}.json              text JSON, made by tools/convert_dataset.py
    <dataset>/{train,test}_images/           the images the JSON names
    evaluation/<dataset>_gt/<split>/         gt_<image stem>.txt evaluation ground truth
    evaluation/lexicons/<dataset>/           end-to-end lexicons (provided by the user)
    art/test_images/ + art/nighttime_test.txt  unannotated ArT test images and the list of the
                                             night-time subset (provided by the user)
    synthtext/{train.json,train_images/}     SynthText pretraining set (no evaluation GT)
    synthetic_text/{train,test}/             generated on first load (no download)
    synthetic_text/spotting_{train,test,val}/  the same, single words only (spotting splits)
    synthetic_text/word_scenes_train/        more such scenes, for their words (see below)

    dota10/{train,val,test}/{images,labelTxt}          dota10_{train,val,test}
    dota10_split/{ss1024,ms1024}/{train,val,trainval,test}/{images,labelTxt}
                                                       dota10_{train,val,trainval,test}_{ss,ms}1024
    dota15/..., dota15_split/...                       the same names with dota15 (16 classes)
    synthetic_aerial/{train,val,test}/{images,labelTxt}   synthetic_aerial_{train,val,test}
    synthetic_aerial_split/ss1024/{train,val,test}/...   synthetic_aerial_{train,val,test}_ss1024

    str_lmdb/{train/{real,synth},val,test/<benchmark>}/  STR LMDB splits (PARSeq's tree)
    synthetic_words/{train,test}/                       word-crop LMDBs, generated on first load

The words of the spotting scenes are also recognition datasets, cut on the fly from the scenes
(:mod:`~fasttcm.data.datasets.text_word_crops`): ``synthetic_spotting_{train,val,test}_words``
and ``synthetic_scene_words_train`` (the words of ``synthetic_word_scenes_train``).

DOTA splits are cut with ``tools/dota_split.py`` and the configs in ``datasets/dota_split_configs``;
the synthetic aerial splits are generated (and cut) on first load. DOTA test splits have no labels:
their evaluation only writes ``Task1_<class>.txt`` files. DOTA labels and detections are
quadrilaterals in absolute pixels; the dataset dicts carry detectron2 XYWHA boxes (angle in
degrees, counter-clockwise).
"""

import functools
import os
from typing import Optional

from detectron2.data import DatasetCatalog, MetadataCatalog

from .builtin_meta import get_text_dataset_metadata
from .dota import register_dota
from .str_lmdb import register_str_lmdb
from .synthetic_splits import (
    SYNTHETIC_TEXT_DIR,
    SYNTHETIC_TEXT_JSON,
    SYNTHETIC_WORDS_DIR,
    ensure_synthetic_aerial,
    ensure_synthetic_aerial_patches,
    load_synthetic_text_split,
    load_synthetic_words_split,
)
from .text_word_crops import register_text_word_crops
from .text_registration import register_text_images, register_text_instances, text_split_metadata

__all__ = [
    "SYNTHETIC_TEXT_SPLITS",
    "SYNTHETIC_SPOTTING_SPLITS",
    "SYNTHETIC_SPOTTING_OPTIONS",
    "SYNTHETIC_AERIAL_SPLITS",
    "STR_LMDB_SPLITS",
    "SYNTHETIC_WORDS_SPLITS",
    "SYNTHETIC_WORD_SCENE_SPLITS",
    "SYNTHETIC_SCENE_WORD_SPLITS",
    "register_all_text",
    "register_all_dota",
    "register_all_str",
]

# ------------------------------------------------------------------------------------------------
# scene text

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
    # for choosing inference thresholds, not the test split
    "synthetic_spotting_val": ("spotting_val", 100, 4),
}
SYNTHETIC_SPOTTING_OPTIONS = {"line_prob": 0.0}  # SceneTextOptions overrides: no multi-word lines
# name -> (split, number of images, seed) of more scenes like the spotting splits, generated for
# their words: the recognizer of the spotting schedule trains on crops cut from them
SYNTHETIC_WORD_SCENE_SPLITS = {
    "synthetic_word_scenes_train": ("word_scenes_train", 4000, 5),
}
# name -> text split: recognition datasets of the words of a scene split, cut on the fly
# (text_word_crops.py); evaluator_type "str"
SYNTHETIC_SCENE_WORD_SPLITS = {
    "synthetic_scene_words_train": "synthetic_word_scenes_train",
    "synthetic_spotting_train_words": "synthetic_spotting_train",
    "synthetic_spotting_val_words": "synthetic_spotting_val",
    "synthetic_spotting_test_words": "synthetic_spotting_test",
}


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


def _register_synthetic_text(
    root: str, name: str, split: str, num_images: int, seed: int, options: Optional[dict]
) -> None:
    out_dir = os.path.join(root, SYNTHETIC_TEXT_DIR, split)
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
    meta = _builtin_text_metadata(root, SYNTHETIC_TEXT_DIR, split)
    meta.update(num_images=num_images, seed=seed)
    if options:
        meta.update(generation_options=dict(options))
    MetadataCatalog.get(name).set(
        **text_split_metadata(
            meta, json_file=os.path.join(out_dir, SYNTHETIC_TEXT_JSON), image_root=out_dir
        )
    )


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

    for name, (split, num_images, seed) in SYNTHETIC_TEXT_SPLITS.items():
        _register_synthetic_text(root, name, split, num_images, seed, None)
    for splits in (SYNTHETIC_SPOTTING_SPLITS, SYNTHETIC_WORD_SCENE_SPLITS):
        for name, (split, num_images, seed) in splits.items():
            _register_synthetic_text(
                root, name, split, num_images, seed, SYNTHETIC_SPOTTING_OPTIONS
            )
    for name, source in SYNTHETIC_SCENE_WORD_SPLITS.items():
        register_text_word_crops(name, source)


# ------------------------------------------------------------------------------------------------
# DOTA and synthetic aerial images

_DOTA_VERSIONS = {"dota10": "1.0", "dota15": "1.5"}
_DOTA_RAW_SPLITS = ("train", "val", "test")
_DOTA_SPLIT_SOURCES = {  # patch split -> the raw splits it is cut from (configs' source_splits)
    "train": ("train",),
    "val": ("val",),
    "trainval": ("train", "val"),
    "test": ("test",),
}
_DOTA_SPLIT_SCHEMES = ("ss1024", "ms1024")  # datasets/dota_split_configs/{ss,ms}_*.json

SYNTHETIC_AERIAL_SPLITS = {
    # split: (number of images, seed); images are 2048-4096 px a side
    "train": (24, 0),
    "val": (6, 2),  # for choosing test-time settings without looking at the test split
    "test": (6, 1),
}
"""Size and seed of the generated ``synthetic_aerial_{train,val,test}`` splits."""


def _label_dir_or_none(split: str, path: str) -> Optional[str]:
    return None if split == "test" else path  # DOTA test labels are not published


def register_all_dota(root: str) -> None:
    """Register every predefined DOTA and synthetic-aerial split rooted at `root`.

    See the module docstring for the names and the layout. Nothing is read or generated here.
    """
    for prefix, version in _DOTA_VERSIONS.items():
        for split in _DOTA_RAW_SPLITS:
            base = os.path.join(root, prefix, split)
            labels = _label_dir_or_none(split, os.path.join(base, "labelTxt"))
            register_dota(
                f"{prefix}_{split}", os.path.join(base, "images"), labels, version, gt_dir=labels
            )
        for scheme in _DOTA_SPLIT_SCHEMES:
            for split, sources in _DOTA_SPLIT_SOURCES.items():
                base = os.path.join(root, f"{prefix}_split", scheme, split)
                gt_dirs = [os.path.join(root, prefix, s, "labelTxt") for s in sources]
                register_dota(
                    f"{prefix}_{split}_{scheme}",
                    os.path.join(base, "images"),
                    _label_dir_or_none(split, os.path.join(base, "labelTxt")),
                    version,
                    gt_dir=None if split == "test" else gt_dirs,
                    split_scheme=scheme,
                )
    for split, (num_images, seed) in SYNTHETIC_AERIAL_SPLITS.items():
        raw = os.path.join(root, "synthetic_aerial", split)
        raw_labels = os.path.join(raw, "labelTxt")
        register_dota(
            f"synthetic_aerial_{split}",
            os.path.join(raw, "images"),
            raw_labels,
            "1.0",
            gt_dir=raw_labels,
            prepare=functools.partial(ensure_synthetic_aerial, raw, num_images, seed),
        )
        patches = os.path.join(root, "synthetic_aerial_split", "ss1024", split)
        register_dota(
            f"synthetic_aerial_{split}_ss1024",
            os.path.join(patches, "images"),
            os.path.join(patches, "labelTxt"),
            "1.0",
            gt_dir=raw_labels,
            prepare=functools.partial(
                ensure_synthetic_aerial_patches, raw, patches, num_images, seed
            ),
            split_scheme="ss1024",
        )


# ------------------------------------------------------------------------------------------------
# scene-text recognition (LMDB)

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


def register_all_str(root: str) -> None:
    """Register the STR LMDB splits and the synthetic word splits rooted at `root` (no file is
    read)."""
    for name, (folder, expected) in STR_LMDB_SPLITS.items():
        metadata = {"expected_num_samples": expected} if expected is not None else {}
        register_str_lmdb(name, os.path.join(root, "str_lmdb", folder), metadata)
    for name, (split, num_crops, seed) in SYNTHETIC_WORDS_SPLITS.items():
        DatasetCatalog.register(
            name,
            functools.partial(
                load_synthetic_words_split,
                root,
                split,
                num_crops=num_crops,
                seed=seed,
                dataset_name=name,
            ),
        )
        MetadataCatalog.get(name).set(
            evaluator_type="str",
            lmdb_root=os.path.join(root, SYNTHETIC_WORDS_DIR, split),
            num_crops=num_crops,
            seed=seed,
        )


if __name__.endswith(".builtin"):
    # Assume pre-defined datasets live in `./datasets` (detectron2's convention).
    _root = os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))
    register_all_text(_root)
    register_all_dota(_root)
    register_all_str(_root)
