"""Config files by name, from a source checkout or an installed package, and the predictors'
config.

A config is named by a path, or by its path relative to the project's configs folder, with or
without ``.yaml``: ``"TextSpotting/fasttcm_cr50_fpn_spotter_ic15"``. The folder is found in
two places, in this order:

* ``fasttcm/configs/`` inside the installed package: ``setup.py`` ships every YAML of
  ``projects/FastTCM/configs`` there as package data, so ``pip install .`` (a regular, not
  editable, install) carries them;
* ``projects/FastTCM/configs/``, the folder beside the package in a source checkout (what an
  editable install, ``pip install -e .``, imports from).

``_BASE_`` chains stay inside the configs folder, so a config resolves the same from either.
"""

import os
from pathlib import Path
from typing import List, Optional, Sequence, Union

from detectron2.config import get_cfg

from ..config import add_fasttcm_config, merge_config_file

__all__ = ["config_dirs", "get_config_file", "list_config_files", "build_predictor_config"]

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the `fasttcm` package folder


def config_dirs(package_dir: Optional[Union[str, os.PathLike]] = None) -> List[Path]:
    """The configs folders that exist, in search order (see the module docstring).

    Args:
        package_dir: the ``fasttcm`` package folder to search from (default: this package's).
    """
    package = Path(package_dir) if package_dir is not None else _PACKAGE_DIR
    candidates = (package / "configs", package.parent / "configs")
    return [folder for folder in candidates if folder.is_dir()]


def list_config_files(package_dir: Optional[Union[str, os.PathLike]] = None) -> List[str]:
    """Names (relative, without ``.yaml``) of the configs a predictor can be built from; the
    ``Base-*`` files that others inherit from are left out."""
    names = set()
    for folder in config_dirs(package_dir):
        for path in folder.rglob("*.yaml"):
            if not path.name.startswith("Base-"):
                names.add(path.relative_to(folder).with_suffix("").as_posix())
    return sorted(names)


def get_config_file(name: Union[str, os.PathLike], package_dir=None) -> str:
    """The absolute path of a config given by path or by name.

    Args:
        name: an existing YAML file, or a path relative to the configs folder, ``.yaml``
            optional (e.g. ``"DOTA/fasttcm_cr50_fpn_rrcnn_1x_dota10_ss"``).
        package_dir: as in :func:`config_dirs`.

    Returns:
        the path of the file.

    Raises:
        FileNotFoundError: no such file; the message lists where it was looked for and the
            names that exist.
    """
    text = os.fspath(name)
    if os.path.isfile(text):
        return os.path.abspath(text)
    folders = config_dirs(package_dir)
    relative = Path(text)
    if not relative.is_absolute() and ".." not in relative.parts:
        for folder in folders:
            for candidate in (folder / relative, folder / (text + ".yaml")):
                if candidate.suffix == ".yaml" and candidate.is_file():
                    return str(candidate)
    known = list_config_files(package_dir)
    raise FileNotFoundError(
        f"config {text!r}: no such file, nor a config of that name in "
        f"{[str(f) for f in folders] or 'any configs folder (none found)'}; known names: "
        + ", ".join(known)
    )


def build_predictor_config(
    config: Union[str, os.PathLike],
    weights: Optional[Union[str, os.PathLike]],
    *,
    device: str = "cpu",
    opts: Optional[Sequence] = None,
):
    """``get_cfg()`` + the project's keys + the config file + `opts`, with ``MODEL.WEIGHTS`` and
    ``MODEL.DEVICE`` set; frozen.

    Args:
        config: a config path or name (:func:`get_config_file`).
        weights: the weights file (``MODEL.WEIGHTS``); None or "" leaves it empty, which the
            strict loader then refuses.
        device: ``MODEL.DEVICE`` ("cpu", "cuda", "cuda:1", ...).
        opts: config overrides as a flat ``[KEY, VALUE, ...]`` list, as after ``--opts``; they
            come last, so ``MODEL.WEIGHTS`` / ``MODEL.DEVICE`` there win.

    Raises:
        FileNotFoundError: the config, or a weights file given as a local path, does not exist.
    """
    path = get_config_file(config)
    weights = os.fspath(weights) if weights else ""
    if weights and "://" not in weights and not os.path.isfile(weights):
        raise FileNotFoundError(f"weights {weights!r}: no such file (config {path})")
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, path)
    cfg.MODEL.WEIGHTS = weights
    cfg.MODEL.DEVICE = device
    opts = list(opts or [])
    if len(opts) % 2:
        raise ValueError(f"opts must be KEY, VALUE pairs; got {len(opts)} items: {opts}")
    cfg.merge_from_list(opts)
    cfg.freeze()
    return cfg
