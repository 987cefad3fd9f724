"""Helpers shared by the test suite: FastTCM-D2's config files and tiny models built from them.

Import as ``from tests.common import load_config``: with ``--import-mode=importlib`` (pytest.ini)
pytest names test modules after their path from the rootdir (``tests.modeling.test_x``) and makes
``tests`` a namespace package over this folder, whether it runs as ``pytest`` or ``python -m
pytest`` and from any working directory; ``tests/`` has no ``__init__.py`` on purpose.

Tiny models come from the quick-schedule configs (``configs/quick_schedules/*_instant_test.yaml``)
plus overrides, so that the suite and ``train_net.py`` smoke runs share one set of small widths.
"""

import os
from pathlib import Path
from typing import Any, List, Sequence

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "projects" / "FastTCM" / "configs"
QUICK_SCHEDULES_DIR = CONFIG_DIR / "quick_schedules"

# Quick schedules, by task.
QUICK_DETECTOR = "quick_schedules/fasttcm_cr50_fpn_dbnet_instant_test.yaml"
QUICK_SPOTTER = "quick_schedules/fasttcm_cr50_fpn_spotter_instant_test.yaml"
QUICK_RECOGNIZER = "quick_schedules/clip4str_instant_test.yaml"
QUICK_RRCNN = "quick_schedules/fasttcm_cr50_fpn_rrcnn_instant_test.yaml"


def _is_base(path: Path) -> bool:
    return path.name.startswith("Base-")


def get_config_files(include_base: bool = False) -> List[str]:
    """Every YAML under ``projects/FastTCM/configs`` (``Base-*`` ones only with `include_base`)."""
    paths = sorted(CONFIG_DIR.rglob("*.yaml"))
    return [str(p) for p in paths if include_base or not _is_base(p)]


def get_quick_schedule_config_files() -> List[str]:
    """The quick-schedule configs: tiny widths, a few iterations on synthetic data."""
    return [str(p) for p in sorted(QUICK_SCHEDULES_DIR.glob("*.yaml")) if not _is_base(p)]


def get_paper_config_files() -> List[str]:
    """Non-base configs outside ``quick_schedules/`` (paper-size models: load, never build)."""
    quick = set(get_quick_schedule_config_files())
    return [p for p in get_config_files() if p not in quick]


def config_id(path: str) -> str:
    """A readable pytest id: the path relative to the config directory."""
    return os.path.relpath(path, CONFIG_DIR)


def get_config_file(path_or_relative: str) -> str:
    """An absolute config path from an absolute one or one relative to the config directory."""
    path = Path(path_or_relative)
    if not path.is_absolute():
        path = CONFIG_DIR / path
    if not path.is_file():
        raise FileNotFoundError(f"no config file {path}")
    return str(path)


def key_values(prefix: str, **values: Any) -> List[Any]:
    """``key_values("MODEL.RECOGNIZER", PERM_NUM=2)`` -> ``["MODEL.RECOGNIZER.PERM_NUM", 2]``."""
    return [item for key, value in values.items() for item in (f"{prefix}.{key}", value)]


def _flatten(overrides: Sequence[Any]) -> List[Any]:
    if len(overrides) % 2:
        raise ValueError(f"overrides must be KEY, VALUE pairs; got {len(overrides)} items")
    return list(overrides)


def load_config(path_or_relative: str, *overrides: Any, device: str = "cpu"):
    """``get_cfg()`` + FastTCM keys + the YAML file + ``overrides`` (KEY, VALUE, ...), unfrozen.

    `path_or_relative` is absolute or relative to ``projects/FastTCM/configs``. ``MODEL.DEVICE``
    is set to `device` before the overrides are merged. Values keep their Python types (yacs
    still checks them against the defaults: a float key needs a float).
    """
    from detectron2.config import get_cfg

    from fasttcm import add_fasttcm_config, merge_config_file

    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, get_config_file(path_or_relative))
    cfg.MODEL.DEVICE = device
    cfg.merge_from_list(_flatten(overrides))
    return cfg


def build_model_from_cfg(cfg, seed: int = 0):
    """``detectron2.modeling.build_model`` after seeding the default torch generator."""
    from detectron2.modeling import build_model

    torch.manual_seed(seed)
    return build_model(cfg)


def build_quick_model(path_or_relative: str, *overrides: Any, seed: int = 0):
    """A model built from a quick-schedule (or other small) config plus overrides, on CPU."""
    return build_model_from_cfg(load_config(path_or_relative, *overrides), seed=seed)


def compiled_detectron2_c() -> bool:
    """Whether detectron2 ships a compiled ``_C`` extension (install B), found without importing it.

    With one, detectron2 uses it and the project's ops (install A's ``_C`` stand-in) stay unloaded.
    """
    import importlib.machinery
    import importlib.util

    spec = importlib.util.find_spec("detectron2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return any(
        name.startswith("_C") and name.endswith(suffixes)
        for folder in folders
        for name in os.listdir(folder)
    )


def tiny_text_dataset_dicts(gt: dict, size: int = 200) -> List[dict]:
    """detectron2 dataset dicts for evaluator tests: ``{image_id: annotations}`` -> one square
    ``size`` x ``size`` image per id (file names that do not exist: evaluators read no pixels)."""
    return [
        {
            "file_name": f"/nonexistent/img_{i}.jpg",
            "image_id": i,
            "height": size,
            "width": size,
            "annotations": anns,
        }
        for i, anns in gt.items()
    ]
