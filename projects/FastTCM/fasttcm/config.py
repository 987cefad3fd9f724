"""Config keys of FastTCM-D2. :func:`add_fasttcm_config` only *adds* keys to a detectron2 config."""
from detectron2.config import CfgNode as CN


def add_fasttcm_config(cfg):
    """Add FastTCM-D2's keys to `cfg` (a detectron2 CfgNode from ``get_cfg()``), in place.

    Each key carries a one-line comment naming the paper symbol or spec section it stands for.
    detectron2's own defaults are never changed here; configs under ``projects/FastTCM/configs``
    set the values a model needs.
    """
    _add_backbone_config(cfg)
    _add_text_detection_config(cfg)
    _add_dataset_config(cfg)
    _add_dota_config(cfg)


def _add_backbone_config(cfg):
    """MODEL.FASTTCM: the FastTCM-CR50 backbone (DECISIONS.md section 2)."""
    cfg.MODEL.FASTTCM = CN()


def _add_text_detection_config(cfg):
    """MODEL.DB_HEAD and TEST.TEXT: DBNet-style head, targets, losses, post-processing."""


def _add_dataset_config(cfg):
    """DATASETS.*: few-shot subsets and other dataset options."""


def _add_dota_config(cfg):
    """MODEL.DOTA / INPUT.DOTA: oriented detection on aerial images."""
