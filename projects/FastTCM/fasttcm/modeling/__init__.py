"""Model components. Importing this module registers them with detectron2's registries."""

from .backbone import (
    fpn,  # noqa: F401  (registers build_fasttcm_cr50_fpn_backbone)
    fpnc,  # noqa: F401  (registers build_fasttcm_cr50_fpnc_backbone)
)
from .meta_arch import (
    rotated_rcnn,  # noqa: F401  (registers FastTCMRotatedRCNN)
    text_detector,  # noqa: F401  (registers FastTCMTextDetector)
    text_recognizer,  # noqa: F401  (registers FastTCMTextRecognizer)
    text_spotter,  # noqa: F401  (registers FastTCMTextSpotter)
)
from .proposal_generator import sparse_matching_rrpn  # noqa: F401  (registers SparseMatchingRRPN)
from .roi_heads import rotated_roi_heads  # noqa: F401  (registers FastTCMRROIHeads)
from .text_heads import db_head  # noqa: F401  (registers FastTCMDBHead)
