"""nms_rotated equals a brute-force sequential greedy NMS, directly and through detectron2."""

import pytest
import torch

from detectron2.layers import batched_nms_rotated
from detectron2.layers import nms_rotated as d2_nms_rotated

from fasttcm_ops.nms_rotated import greedy_suppression, nms_rotated
from fasttcm_ops.rotated_iou import box_iou_rotated


def greedy_reference(boxes, scores, iou_threshold):
    """The textbook loop: visit by decreasing score (ties: lower index first), keep a box unless a
    kept box overlaps it with IoU >= threshold."""
    iou = box_iou_rotated(boxes.double(), boxes.double()).numpy()
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    kept = []
    for i in order:
        if all(iou[k, i] < iou_threshold for k in kept):
            kept.append(i)
    return kept


def random_case(gen, n, spread, with_duplicates, integer_scores):
    boxes = torch.cat(
        [
            torch.rand(n, 2, generator=gen) * spread,
            torch.rand(n, 2, generator=gen) * 30 + 1,
            torch.rand(n, 1, generator=gen) * 360 - 180,
        ],
        dim=1,
    )
    if integer_scores:  # many ties
        scores = torch.randint(0, 8, (n,), generator=gen).float()
    else:
        scores = torch.rand(n, generator=gen)
    if with_duplicates and n > 1:
        half = n // 2
        boxes[half:] = boxes[: n - half].clone()
    return boxes, scores


@pytest.mark.parametrize("seed", range(8))
def test_matches_brute_force_greedy(seed):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 160, (1,), generator=g))
    spread = [20.0, 60.0, 200.0][seed % 3]
    boxes, scores = random_case(
        g, n, spread, with_duplicates=seed % 2 == 0, integer_scores=seed % 4 < 2
    )
    for thr in (0.05, 0.5, 0.7, 1.0):
        kept = nms_rotated(boxes, scores, thr)
        assert kept.dtype == torch.int64
        assert kept.tolist() == greedy_reference(boxes, scores, thr), (seed, thr)


def test_duplicates_and_threshold_edges():
    boxes = torch.tensor([[10.0, 10, 8, 4, 30]] * 3 + [[40.0, 40, 8, 4, 30]])
    scores = torch.tensor([0.5, 0.9, 0.7, 0.1])
    # IoU of duplicates is exactly 1 and the comparison is >=, so even threshold 1 removes them.
    assert nms_rotated(boxes, scores, 1.0).tolist() == [1, 3]
    assert nms_rotated(boxes, scores, 0.5).tolist() == [1, 3]
    # Every IoU is >= 0: a non-positive threshold keeps only the best box.
    assert nms_rotated(boxes, scores, 0.0).tolist() == [1]
    assert nms_rotated(boxes[:0], scores[:0], 0.5).tolist() == []
    assert nms_rotated(boxes[:1], scores[:1], 0.5).tolist() == [0]


def test_greedy_suppression_on_a_chain():
    # 0 -> 1 -> 2 -> 3 -> 4: keeping 0 removes 1, which frees 2, which removes 3, which frees 4.
    src = torch.tensor([0, 1, 2, 3])
    dst = torch.tensor([1, 2, 3, 4])
    assert greedy_suppression(5, src, dst).tolist() == [True, False, True, False, True]
    assert greedy_suppression(3, src[:0], dst[:0]).tolist() == [True, True, True]


def test_through_torch_ops_and_detectron2():
    g = torch.Generator().manual_seed(7)
    boxes, scores = random_case(g, 300, 80.0, with_duplicates=True, integer_scores=False)
    expected = nms_rotated(boxes, scores, 0.5)
    assert torch.equal(torch.ops.detectron2.nms_rotated(boxes, scores, 0.5), expected)
    assert torch.equal(d2_nms_rotated(boxes, scores, 0.5), expected)


def test_batched_nms_rotated_is_per_class():
    g = torch.Generator().manual_seed(8)
    boxes, scores = random_case(g, 200, 50.0, with_duplicates=True, integer_scores=False)
    labels = torch.randint(0, 3, (200,), generator=g)
    kept = batched_nms_rotated(boxes, scores, labels, 0.4)
    expected = []
    for c in range(3):
        idx = (labels == c).nonzero().squeeze(1)
        expected += idx[greedy_reference(boxes[idx], scores[idx], 0.4)].tolist()
    assert sorted(kept.tolist()) == sorted(expected)
    assert torch.all(scores[kept][:-1] >= scores[kept][1:])  # decreasing score


def test_bad_inputs_raise_clear_errors():
    boxes = torch.zeros(3, 5)
    boxes[:, 2:4] = 1
    with pytest.raises(ValueError, match="scores must have shape"):
        nms_rotated(boxes, torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="scores contain NaN"):
        nms_rotated(boxes, torch.tensor([0.1, float("nan"), 0.2]), 0.5)
    with pytest.raises(ValueError, match=r"shape \(N, 5\)"):
        nms_rotated(torch.zeros(3, 4), torch.zeros(3), 0.5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(9)
    boxes, scores = random_case(g, 1500, 300.0, with_duplicates=True, integer_scores=False)
    labels = torch.randint(0, 4, (1500,), generator=g)
    expected = nms_rotated(boxes, scores, 0.5)
    kept = torch.ops.detectron2.nms_rotated(boxes.cuda(), scores.cuda(), 0.5)
    assert kept.is_cuda and torch.equal(kept.cpu(), expected)
    expected = batched_nms_rotated(boxes, scores, labels, 0.5)
    assert torch.equal(
        batched_nms_rotated(boxes.cuda(), scores.cuda(), labels.cuda(), 0.5).cpu(), expected
    )
