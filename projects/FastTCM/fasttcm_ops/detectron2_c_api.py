"""The ``detectron2._C`` API of detectron2 v0.6, implemented by the project's own ops.

The ``.pth`` hook of ``dev/d2_ops_hook`` serves this module's ``__all__`` as ``detectron2._C`` when
detectron2 was installed without its compiled extension (never when a compiled ``_C`` exists).
Importing it also registers ``torch.ops.detectron2.nms_rotated``, which detectron2 calls through
``torch.ops`` rather than ``_C``. Nothing here imports detectron2 or ``fasttcm``.

Provided names and their callers in detectron2 v0.6:

* ``box_iou_rotated``: ``layers.rotated_boxes.pairwise_iou_rotated`` (and
  ``structures.pairwise_iou_rotated``);
* ``roi_align_rotated_forward`` / ``roi_align_rotated_backward``: ``layers.ROIAlignRotated``;
* ``deform_conv_*`` / ``modulated_deform_conv_*``: ``layers.DeformConv`` / ``ModulatedDeformConv``
  (on CUDA tensors; detectron2's Python code handles or refuses CPU itself);
* ``InstanceAnnotation``, ``ImageEvaluation``, ``COCOevalEvaluateImages``, ``COCOevalAccumulate``:
  ``evaluation.fast_eval_api.COCOeval_opt``;
* ``get_compiler_version``, ``get_cuda_version``, ``has_cuda``: ``utils.collect_env``.
"""

from .build_info import get_compiler_version, get_cuda_version, has_cuda
from .coco_eval import (
    COCOevalAccumulate,
    COCOevalEvaluateImages,
    ImageEvaluation,
    InstanceAnnotation,
)
from .deform_conv import (
    deform_conv_backward_filter,
    deform_conv_backward_input,
    deform_conv_forward,
    modulated_deform_conv_backward,
    modulated_deform_conv_forward,
)
from .nms_rotated import nms_rotated, register_nms_rotated_op
from .roi_align_rotated import roi_align_rotated_backward, roi_align_rotated_forward
from .rotated_iou import box_iou_rotated

__all__ = [
    "box_iou_rotated",
    "nms_rotated",
    "roi_align_rotated_forward",
    "roi_align_rotated_backward",
    "deform_conv_forward",
    "deform_conv_backward_input",
    "deform_conv_backward_filter",
    "modulated_deform_conv_forward",
    "modulated_deform_conv_backward",
    "InstanceAnnotation",
    "ImageEvaluation",
    "COCOevalEvaluateImages",
    "COCOevalAccumulate",
    "get_compiler_version",
    "get_cuda_version",
    "has_cuda",
]

register_nms_rotated_op()
