"""Dataset splits generated on first load: synthetic scene text, word crops and aerial images.

Each loader (or ``prepare`` callable) checks whether its folder is complete, generates it
otherwise, and then reads it with the dataset's ordinary loader. Generation goes through
:func:`fasttcm.utils.atomic_io.build_dir_once`: the files are written into a temporary sibling
folder that is renamed into place, so concurrent processes never see a partial split (the first
to finish wins; the others use its result), and the parameters a folder was generated with are
stored in it as ``generation.json``; asking for other parameters logs a warning and uses the
existing files.

Folders under the dataset root (``$DETECTRON2_DATASETS``)::

    synthetic_text/<split>/{annotations.json,images/}       text JSON (polygons in pixels)
    synthetic_words/<split>/{data.mdb,lock.mdb}             STR LMDB of word crops
    synthetic_aerial/<split>/{images,labelTxt}/             DOTA-v1.0 layout
    synthetic_aerial_split/ss1024/<split>/{images,labelTxt}/  its 1024 px patches

The predefined splits using these loaders are registered by
:mod:`fasttcm.data.datasets.builtin`.

The generators are imported inside the functions that call them: they are only needed the first
time a split is loaded, and importing :mod:`fasttcm.data.synthetic` (fonts, renderers) at
``import fasttcm`` would slow down every process.
"""

import logging
import os
from typing import Optional

from ...utils.atomic_io import build_dir_once
from ..dota_split import SplitConfig, ensure_split_dataset
from .str_lmdb import load_str_lmdb
from .text_json import load_text_json

__all__ = [
    "SYNTHETIC_TEXT_DIR",
    "SYNTHETIC_TEXT_JSON",
    "SYNTHETIC_TEXT_IMAGE_SIZE",
    "SYNTHETIC_WORDS_DIR",
    "load_synthetic_text_split",
    "load_synthetic_words_split",
    "ensure_synthetic_aerial",
    "ensure_synthetic_aerial_patches",
]

logger = logging.getLogger(__name__)

SYNTHETIC_TEXT_DIR = "synthetic_text"
"""Folder of the synthetic scene-text splits under the dataset root."""
SYNTHETIC_TEXT_JSON = "annotations.json"
"""The text JSON ``generate_text_dataset`` writes into a split folder (written last)."""
SYNTHETIC_TEXT_IMAGE_SIZE = (320, 320)
"""(height, width) in pixels of the synthetic scene-text images."""
SYNTHETIC_WORDS_DIR = "synthetic_words"
"""Folder of the synthetic word-crop LMDB splits under the dataset root."""

_STAMP = "generation.json"  # the parameters a generated split was made with


def load_synthetic_text_split(
    root,
    split: str,
    *,
    num_images: int,
    seed: int,
    dataset_name=None,
    options: Optional[dict] = None,
):
    """Dataset dicts of a synthetic scene-text split, generating it on first use.

    The split lives in ``<root>/synthetic_text/<split>/`` (``annotations.json`` + images); it is
    complete once ``annotations.json`` exists. If it is not,
    ``fasttcm.data.synthetic.scene_text_dataset.generate_text_dataset`` writes it (see the
    module docstring for how concurrent processes are handled).

    Args:
        root: dataset root (``$DETECTRON2_DATASETS``).
        split: ``"train"`` or ``"test"`` (any name works; it is only a folder name).
        num_images, seed: generation parameters (``SYNTHETIC_TEXT_SPLITS`` of
            :mod:`fasttcm.data.datasets.builtin` for the builtins).
        dataset_name: registered name, for messages.
        options: :class:`~fasttcm.data.synthetic.scene_text_options.SceneTextOptions` overrides
            (e.g. the builtin ``SYNTHETIC_SPOTTING_OPTIONS``); None = the default difficulty.

    Returns:
        detectron2 dataset dicts, as :func:`~fasttcm.data.datasets.text_json.load_text_json`.
    """
    out_dir = os.path.join(os.fspath(root), SYNTHETIC_TEXT_DIR, split)
    json_file = os.path.join(out_dir, SYNTHETIC_TEXT_JSON)
    params = {
        "num_images": int(num_images),
        "seed": int(seed),
        "image_size": list(SYNTHETIC_TEXT_IMAGE_SIZE),
    }
    if options:
        params["options"] = dict(options)

    def build(tmp_dir: str) -> None:
        # Imported here: the generator loads fonts and is only needed the first time.
        from ..synthetic.scene_text_dataset import generate_text_dataset

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

    build_dir_once(
        out_dir,
        build,
        params,
        stamp_name=_STAMP,
        is_complete=lambda d: os.path.isfile(os.path.join(d, SYNTHETIC_TEXT_JSON)),
    )
    return load_text_json(json_file, out_dir, dataset_name)


def load_synthetic_words_split(
    root: str, split: str, *, num_crops: int, seed: int, dataset_name: Optional[str] = None
):
    """Dataset dicts of a synthetic word-crop split, generating it on first use.

    The split is the LMDB folder ``<root>/synthetic_words/<split>``; it is complete once its
    ``data.mdb`` exists. If it is not,
    :func:`fasttcm.data.synthetic.word_crops.generate_word_crops` writes it (see the module
    docstring for how concurrent processes are handled).

    Args:
        root: dataset root (``$DETECTRON2_DATASETS``).
        split: folder name of the split.
        num_crops, seed: generation parameters (``SYNTHETIC_WORDS_SPLITS`` of
            :mod:`fasttcm.data.datasets.builtin` for the builtins).
        dataset_name: registered name, for messages.

    Returns:
        detectron2 dataset dicts, as :func:`~fasttcm.data.datasets.str_lmdb.load_str_lmdb`.
    """
    out_dir = os.path.join(os.fspath(root), SYNTHETIC_WORDS_DIR, split)
    params = {"num_crops": int(num_crops), "seed": int(seed)}

    def build(tmp_dir: str) -> None:
        # Imported here: rendering loads fonts and is only needed the first time.
        from ..synthetic.word_crops import generate_word_crops

        logger.info(
            f"Generating synthetic word crops {out_dir}: {params['num_crops']} crops "
            f"(seed {params['seed']})"
        )
        # the LMDB writer makes its folder itself: let it replace the empty `tmp_dir`
        generate_word_crops(tmp_dir, params["num_crops"], params["seed"], overwrite=True)

    build_dir_once(
        out_dir,
        build,
        params,
        stamp_name=_STAMP,
        is_complete=lambda d: os.path.isfile(os.path.join(d, "data.mdb")),
    )
    return load_str_lmdb(out_dir, dataset_name=dataset_name)


def ensure_synthetic_aerial(raw_dir: str, num_images: int, seed: int) -> None:
    """Generate the synthetic aerial split ``raw_dir/{images,labelTxt}`` unless it exists.

    The ``prepare`` step of the ``synthetic_aerial_<split>`` datasets: DOTA-v1.0 classes,
    images 2048-4096 px a side, labels in absolute pixels of each image; safe to call from
    several processes.

    Args:
        raw_dir: the split folder.
        num_images, seed: generation parameters.
    """
    # Imported here: the aerial renderer is only needed the first time.
    from ..synthetic.aerial import ensure_aerial_dataset

    ensure_aerial_dataset(raw_dir, num_images, seed)


def ensure_synthetic_aerial_patches(
    raw_dir: str, patch_dir: str, num_images: int, seed: int
) -> None:
    """Generate the synthetic aerial split if needed, then cut it into 1024 px patches.

    The ``prepare`` step of the ``synthetic_aerial_<split>_ss1024`` datasets: the patches are
    cut with the default :class:`~fasttcm.data.dota_split.SplitConfig` (single scale, 1024 px
    windows, gap 200, rate 1) into ``patch_dir/{images,labelTxt}`` unless that folder exists.

    Args:
        raw_dir: the full-image split folder (see :func:`ensure_synthetic_aerial`).
        patch_dir: the patch split folder.
        num_images, seed: generation parameters of the full images.
    """
    ensure_synthetic_aerial(raw_dir, num_images, seed)
    ensure_split_dataset(
        [os.path.join(raw_dir, "images")],
        [os.path.join(raw_dir, "labelTxt")],
        patch_dir,
        SplitConfig(),  # ss1024: 1024 px patches, gap 200, rate 1
        version="1.0",
    )
