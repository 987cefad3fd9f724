"""detectron2 backbones of FastTCM-D2, registered on import: FPN (p2..p6), FPNC (one fused map)."""

from .fpn import FastTCMFPN, build_fasttcm_cr50_fpn_backbone
from .fpnc import FastTCMFPNC, build_fasttcm_cr50_fpnc_backbone

__all__ = [
    "FastTCMFPN",
    "FastTCMFPNC",
    "build_fasttcm_cr50_fpn_backbone",
    "build_fasttcm_cr50_fpnc_backbone",
]
