"""SparseMatchingRRPN: the same anchor labels as detectron2's dense RRPN matching."""

import pytest
import torch

from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling.matcher import Matcher
from detectron2.modeling.proposal_generator import build_proposal_generator
from detectron2.structures import Instances, RotatedBoxes

from fasttcm import add_fasttcm_config
from fasttcm.modeling.proposal_generator import SparseMatchingRRPN, match_sparse_iou
from fasttcm_ops.rotated_iou import box_iou_rotated, sparse_box_iou_rotated


def _sparse(dense):
    rows, cols = dense.nonzero().unbind(1)
    return rows, cols, dense[rows, cols]


def _random_iou(g, num_gt, num_anchors, density=0.05):
    """Sparse IoU matrices with many exact ties (values on a 0.05 grid)."""
    values = torch.randint(1, 20, (num_gt, num_anchors), generator=g).float() * 0.05
    mask = torch.rand(num_gt, num_anchors, generator=g) < density
    return values * mask


@pytest.mark.parametrize("allow_low_quality", [True, False])
@pytest.mark.parametrize("thresholds,labels", [([0.3, 0.7], [0, -1, 1]), ([0.5], [0, 1])])
def test_sparse_matching_equals_the_dense_matcher(allow_low_quality, thresholds, labels):
    matcher = Matcher(thresholds, labels, allow_low_quality_matches=allow_low_quality)
    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        num_gt, num_anchors = int(torch.randint(1, 12, (1,), generator=g)), 400
        dense = _random_iou(g, num_gt, num_anchors, density=0.3)
        # every ground-truth box overlaps something (the other case is tested below)
        dense[torch.arange(num_gt), torch.randint(0, num_anchors, (num_gt,), generator=g)] = 0.35
        want_matches, want_labels = matcher(dense)
        got_matches, got_labels = match_sparse_iou(matcher, num_gt, num_anchors, *_sparse(dense))
        assert torch.equal(got_labels, want_labels), trial
        assert torch.equal(got_matches, want_matches), trial
        assert got_labels.dtype == torch.int8 and got_matches.dtype == torch.int64


def test_ground_truth_without_overlap_and_no_ground_truth_match_the_dense_matcher():
    matcher = Matcher([0.3, 0.7], [0, -1, 1], allow_low_quality_matches=True)
    dense = torch.zeros(3, 50)
    dense[0, 5], dense[2, 7] = 0.8, 0.2  # ground truth 1 overlaps no anchor
    for got, want in zip(match_sparse_iou(matcher, 3, 50, *_sparse(dense)), matcher(dense)):
        assert torch.equal(got, want)
    empty = torch.zeros(0, 50)
    for got, want in zip(match_sparse_iou(matcher, 0, 50, *_sparse(empty)), matcher(empty)):
        assert torch.equal(got, want)
    with pytest.raises(ValueError, match="must be > 0"):
        match_sparse_iou(matcher, 1, 2, torch.tensor([0]), torch.tensor([1]), torch.tensor([0.0]))


def test_sparse_iou_lists_exactly_the_non_zero_entries_in_row_major_order():
    g = torch.Generator().manual_seed(1)
    boxes1 = torch.cat(
        [
            torch.rand(7, 2, generator=g) * 100,
            torch.rand(7, 2, generator=g) * 30 + 2,
            torch.rand(7, 1, generator=g) * 180 - 90,
        ],
        1,
    )
    boxes2 = torch.cat(
        [
            torch.rand(300, 2, generator=g) * 100,
            torch.rand(300, 2, generator=g) * 20 + 1,
            torch.rand(300, 1, generator=g) * 180 - 90,
        ],
        1,
    )
    rows, cols, ious = sparse_box_iou_rotated(boxes1, boxes2)
    dense = box_iou_rotated(boxes1, boxes2)
    want_rows, want_cols = dense.nonzero().unbind(1)
    assert torch.equal(rows, want_rows) and torch.equal(cols, want_cols)
    assert torch.equal(ious, dense[rows, cols]) and bool((ious > 0).all())
    assert 0 < rows.numel() < dense.numel()
    r, c, v = sparse_box_iou_rotated(boxes1[:0], boxes2)
    assert r.numel() == c.numel() == v.numel() == 0 and v.dtype == torch.float32


def _rpn_pair():
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.MODEL.ANCHOR_GENERATOR.NAME = "RotatedAnchorGenerator"
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[8], [16]]
    cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]
    cfg.MODEL.ANCHOR_GENERATOR.ANGLES = [[-60, 0, 60]]
    cfg.MODEL.RPN.IN_FEATURES = ["p2", "p3"]
    cfg.MODEL.RPN.BBOX_REG_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0)
    cfg.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 64
    shapes = {"p2": ShapeSpec(channels=8, stride=4), "p3": ShapeSpec(channels=8, stride=8)}
    cfg.MODEL.PROPOSAL_GENERATOR.NAME = "RRPN"
    dense = build_proposal_generator(cfg, shapes)
    cfg.MODEL.PROPOSAL_GENERATOR.NAME = "SparseMatchingRRPN"
    sparse = build_proposal_generator(cfg, shapes)
    assert isinstance(sparse, SparseMatchingRRPN)
    return dense, sparse


def test_labels_and_matched_boxes_equal_detectron2_rrpn():
    dense_rpn, sparse_rpn = _rpn_pair()
    features = [torch.zeros(1, 8, 16, 16), torch.zeros(1, 8, 8, 8)]
    anchors = dense_rpn.anchor_generator(features)
    g = torch.Generator().manual_seed(2)
    gt_instances = []
    for num_gt in (9, 1, 0):
        inst = Instances((64, 64))
        inst.gt_boxes = RotatedBoxes(
            torch.cat(
                [
                    torch.rand(num_gt, 2, generator=g) * 64,
                    torch.rand(num_gt, 2, generator=g) * 24 + 4,
                    torch.rand(num_gt, 1, generator=g) * 180 - 90,
                ],
                1,
            )
        )
        gt_instances.append(inst)
    torch.manual_seed(3)
    want_labels, want_boxes = dense_rpn.label_and_sample_anchors(anchors, gt_instances)
    torch.manual_seed(3)
    got_labels, got_boxes = sparse_rpn.label_and_sample_anchors(anchors, gt_instances)
    for got, want in zip(got_labels, want_labels):
        assert torch.equal(got, want)
    for got, want, labels in zip(got_boxes, want_boxes, want_labels):
        assert torch.equal(got[labels == 1], want[labels == 1])
    assert int((want_labels[0] == 1).sum()) > 0 and int((want_labels[2] == 1).sum()) == 0
