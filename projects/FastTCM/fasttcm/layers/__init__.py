"""Rotated-box and deformable ops of FastTCM-D2 (implemented in ``fasttcm_ops``).

These are the project's own implementations of the ops detectron2 compiles into ``detectron2._C``.
Through detectron2 (``detectron2.layers.nms_rotated``, ``ROIAlignRotated``,
``RotatedBoxes``/``pairwise_iou_rotated``) they are used automatically when detectron2 has no
compiled ``_C``; importing them from here uses them directly in either install. Importing this
package registers nothing with torch or detectron2.

Boxes are XYWHA ``(cx, cy, w, h, angle)``, angle in degrees, counter-clockwise (detectron2
``RotatedBoxes``).
"""

from fasttcm_ops.nms_rotated import nms_rotated
from fasttcm_ops.roi_align_rotated import roi_align_rotated_backward, roi_align_rotated_forward
from fasttcm_ops.rotated_iou import (
    box_iou_rotated,
    paired_box_iou_rotated,
    rotated_boxes_intersection_area,
)

__all__ = [
    "box_iou_rotated",
    "paired_box_iou_rotated",
    "rotated_boxes_intersection_area",
    "nms_rotated",
    "roi_align_rotated_forward",
    "roi_align_rotated_backward",
]
