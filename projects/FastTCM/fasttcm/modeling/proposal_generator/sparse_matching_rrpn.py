"""Rotated RPN whose anchor labelling works on the overlapping (ground truth, anchor) pairs only.

detectron2's :class:`~detectron2.modeling.proposal_generator.RRPN` labels anchors from the dense
G x A IoU matrix. With a DOTA patch's few dozen ground-truth boxes against ~200k anchors that
matrix is more than 99 % zeros, yet it is allocated, filled and scanned ~6 times per image by the
:class:`~detectron2.modeling.matcher.Matcher`. :func:`match_sparse_iou` gives the Matcher's exact
output from the non-zero entries (:func:`fasttcm_ops.rotated_iou.sparse_box_iou_rotated`).

Boxes are detectron2 XYWHA rotated boxes: ``(cx, cy, w, h, angle)``, angle in degrees,
counter-clockwise.
"""

from typing import List, Tuple

import torch
from torch import Tensor

from detectron2.modeling.matcher import Matcher
from detectron2.modeling.proposal_generator import PROPOSAL_GENERATOR_REGISTRY
from detectron2.modeling.proposal_generator.rrpn import RRPN
from detectron2.structures import Instances, RotatedBoxes

from fasttcm_ops.rotated_iou import sparse_box_iou_rotated

__all__ = ["SparseMatchingRRPN", "match_sparse_iou"]


def match_sparse_iou(
    matcher: Matcher, num_gt: int, num_anchors: int, rows: Tensor, cols: Tensor, ious: Tensor
) -> Tuple[Tensor, Tensor]:
    """``matcher(iou_matrix)`` for a G x A IoU matrix given by its non-zero entries.

    Args:
        matcher: a detectron2 Matcher (thresholds, labels, allow_low_quality_matches).
        num_gt, num_anchors: G and A, the matrix shape.
        rows, cols (int64 Tensor[P]): ground-truth and anchor index of each non-zero entry, each
            pair at most once.
        ious (Tensor[P]): the entries, all > 0; every other entry is 0.

    Returns:
        (matches, match_labels): int64 Tensor[A] (ground-truth index; the lowest index among equal
        best IoUs, 0 for anchors that overlap nothing) and int8 Tensor[A] of the matcher's labels,
        equal to ``matcher(dense_matrix)``.
    """
    device = ious.device
    if num_gt == 0 or num_anchors == 0:
        dense = torch.zeros(num_gt, num_anchors, dtype=ious.dtype, device=device)
        return matcher(dense)
    if bool((ious <= 0).any()):
        raise ValueError(
            "match_sparse_iou: the listed IoU entries must be > 0 (zeros are implicit)"
        )
    best_iou = torch.zeros(num_anchors, dtype=ious.dtype, device=device)
    best_iou.scatter_reduce_(0, cols, ious, reduce="amax")
    # Dense max(dim=0) returns the first maximal row; anchors without any overlap get row 0.
    is_best = ious == best_iou[cols]
    matches = torch.full((num_anchors,), num_gt, dtype=torch.int64, device=device)
    matches.scatter_reduce_(0, cols[is_best], rows[is_best], reduce="amin")
    matches[matches == num_gt] = 0

    match_labels = torch.ones(num_anchors, dtype=torch.int8, device=device)
    for label, low, high in zip(matcher.labels, matcher.thresholds[:-1], matcher.thresholds[1:]):
        match_labels[(best_iou >= low) & (best_iou < high)] = label

    if matcher.allow_low_quality_matches:
        best_per_gt = torch.zeros(num_gt, dtype=ious.dtype, device=device)
        best_per_gt.scatter_reduce_(0, rows, ious, reduce="amax")
        if bool((best_per_gt == 0).any()):
            # A ground-truth box that overlaps no anchor: the dense matcher then marks every anchor
            # at IoU 0 with it as positive. Rare (empty or off-image boxes); keep its exact result.
            dense = torch.zeros(num_gt, num_anchors, dtype=ious.dtype, device=device)
            dense[rows, cols] = ious
            return matcher(dense)
        highest = ious == best_per_gt[rows]
        match_labels[cols[highest]] = 1
    return matches, match_labels


@PROPOSAL_GENERATOR_REGISTRY.register()
class SparseMatchingRRPN(RRPN):
    """detectron2's RRPN with :func:`match_sparse_iou` in place of the dense IoU matrix.

    Same config keys, same outputs (labels, sampled anchors, matched boxes) as ``RRPN`` for the
    same random state; only the anchor labelling is computed differently.
    """

    @torch.no_grad()
    def label_and_sample_anchors(
        self, anchors: List[RotatedBoxes], gt_instances: List[Instances]
    ) -> Tuple[List[Tensor], List[Tensor]]:
        """
        Args:
            anchors: anchors of each feature level (RotatedBoxes, XYWHA), shared by the images.
            gt_instances: ``gt_boxes`` (RotatedBoxes) of each image.

        Returns:
            labels: per image, int Tensor[A] in {-1: ignore, 0: background, 1: foreground} after
                sampling ``RPN.BATCH_SIZE_PER_IMAGE`` anchors.
            matched_gt_boxes: per image, Tensor[A, 5] the matched ground-truth box of each anchor
                (meaningful where the label is 1).
        """
        anchors = RotatedBoxes.cat(anchors)
        num_anchors = len(anchors)
        gt_labels, matched_gt_boxes = [], []
        for instances in gt_instances:
            gt_boxes = instances.gt_boxes
            rows, cols, ious = sparse_box_iou_rotated(gt_boxes.tensor, anchors.tensor)
            matched_idxs, labels = match_sparse_iou(
                self.anchor_matcher, len(gt_boxes), num_anchors, rows, cols, ious
            )
            labels = self._subsample_labels(labels.to(device=gt_boxes.device))
            if len(gt_boxes) == 0:
                matched = torch.zeros_like(anchors.tensor)  # unused: every anchor is background
            else:
                matched = gt_boxes.tensor[matched_idxs]
            gt_labels.append(labels)
            matched_gt_boxes.append(matched)
        return gt_labels, matched_gt_boxes
