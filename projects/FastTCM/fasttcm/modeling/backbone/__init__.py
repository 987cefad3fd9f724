"""detectron2 backbones of FastTCM-D2 (registered on import)."""

from .fpn import FastTCMFPN, build_fasttcm_cr50_fpn_backbone

__all__ = ["FastTCMFPN", "build_fasttcm_cr50_fpn_backbone"]
