"""Greedy non-maximum suppression of rotated boxes (``torch.ops.detectron2.nms_rotated``).

Boxes are XYWHA rows ``(cx, cy, w, h, angle)``, angle in degrees, counter-clockwise (detectron2
``RotatedBoxes``). The result is exactly the greedy one: visit boxes by decreasing score (ties by
lower index first) and keep a box unless a kept box overlaps it with IoU >= ``iou_threshold``
(detectron2's CPU kernel compares with ``>=``).

Rather than walking the boxes one by one, the greedy result is computed from the graph of
"suppresses" edges (i -> j when i comes first and IoU(i, j) >= threshold) by rounds of vectorized
updates: a box whose every predecessor is removed is kept, a box with a kept predecessor is removed.
Each round settles at least the first unsettled box: a chain of boxes each suppressing the next
takes a round per link, typical detections a handful of rounds.
Only pairs whose bounding boxes overlap and whose areas allow the threshold are given to the exact
IoU.
"""

import importlib.machinery
import importlib.util
import os

import torch
from torch import Tensor

from .rotated_iou import (
    MIN_BOX_AREA,
    PREFILTER_CHUNK,
    RotatedBoxFrames,
    candidate_pairs,
    check_rotated_boxes,
    pairs_iou,
    screening_bounds,
)

__all__ = ["nms_rotated", "greedy_suppression", "register_nms_rotated_op"]

_UNDECIDED, _KEPT, _REMOVED = 0, 1, 2


def greedy_suppression(num_boxes: int, src: Tensor, dst: Tensor) -> Tensor:
    """Greedy NMS on a precomputed suppression graph.

    Args:
        num_boxes (int): number of boxes, already in visiting order (best first).
        src, dst (Tensor[E]): int64 edges with ``src < dst``: box ``src`` suppresses box ``dst``
            if ``src`` is kept.

    Returns:
        Tensor[num_boxes]: bool, True for the boxes the sequential greedy pass keeps.
    """
    state = torch.full((num_boxes,), _UNDECIDED, dtype=torch.int8, device=src.device)
    while True:
        undecided = state == _UNDECIDED
        if not bool(undecided.any()):
            return state == _KEPT
        src_state = state[src]
        killed = torch.zeros_like(undecided)
        killed[dst[src_state == _KEPT]] = True
        blocked = torch.zeros_like(undecided)
        blocked[dst[src_state == _UNDECIDED]] = True
        state[undecided & killed] = _REMOVED
        state[undecided & ~killed & ~blocked] = _KEPT
        # Edges from removed boxes or into settled boxes can no longer change anything.
        live = (state[dst] == _UNDECIDED) & (state[src] != _REMOVED)
        src, dst = src[live], dst[live]


def nms_rotated(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Rotated NMS (the v0.6 ``nms_rotated`` contract).

    Args:
        boxes (Tensor[N, 5]): XYWHA boxes ``(cx, cy, w, h, angle_degrees)``, CCW, finite.
        scores (Tensor[N]): scores, not NaN, on the same device.
        iou_threshold (float): a box is discarded when a kept box overlaps it with
            IoU >= iou_threshold.

    Returns:
        Tensor[K]: int64 indices of the kept boxes, sorted by decreasing score.
    """
    check_rotated_boxes(boxes, "boxes")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"fasttcm_ops.nms_rotated: scores must have shape ({boxes.shape[0]},), "
            f"got {tuple(scores.shape)}"
        )
    if scores.device != boxes.device:
        raise ValueError(
            f"fasttcm_ops.nms_rotated: boxes on {boxes.device} but scores on {scores.device}"
        )
    if bool(torch.isnan(scores).any()):
        raise ValueError("fasttcm_ops.nms_rotated: scores contain NaN")
    iou_threshold = float(iou_threshold)
    if iou_threshold != iou_threshold:
        raise ValueError("fasttcm_ops.nms_rotated: iou_threshold is NaN")
    n = boxes.shape[0]
    with torch.no_grad():
        order = torch.sort(scores, descending=True, stable=True).indices
        if n <= 1 or iou_threshold <= 0.0:
            # Every IoU is >= 0: the best box suppresses all others.
            return order[: min(n, 1)]
        sorted_boxes = boxes[order].double()
        frames = RotatedBoxFrames.from_boxes(sorted_boxes)
        bounds = screening_bounds(sorted_boxes)
        area = frames.area
        srcs, dsts = [], []
        rows_per_block = max(1, PREFILTER_CHUNK // n)
        for row_start in range(0, n, rows_per_block):
            rows, cols = candidate_pairs(
                bounds, bounds, row_start, row_start + rows_per_block, upper_triangle=True
            )
            # IoU <= min(area) / max(area): pairs of too unequal sizes cannot reach the threshold.
            small = torch.minimum(area[rows], area[cols])
            large = torch.maximum(area[rows], area[cols])
            possible = (small >= iou_threshold * large * (1 - 1e-9)) & (small >= MIN_BOX_AREA)
            rows, cols = rows[possible], cols[possible]
            hit = pairs_iou(frames, rows, frames, cols) >= iou_threshold
            srcs.append(rows[hit])
            dsts.append(cols[hit])
        src = torch.cat(srcs) if srcs else order.new_empty(0)
        dst = torch.cat(dsts) if dsts else order.new_empty(0)
        keep = greedy_suppression(n, src, dst)
        return order[keep]


_REGISTERED_OP = None


def register_nms_rotated_op() -> None:
    """Register :func:`nms_rotated` as ``torch.ops.detectron2.nms_rotated`` if nothing provides it.

    detectron2's ``layers.nms.nms_rotated`` calls that op. A compiled detectron2 ``_C`` registers it
    itself; this registration is only made when it is absent and no compiled ``_C`` is installed
    (registering first would make the later load of the compiled extension abort the process with
    torch's "duplicate registration" error), and it holds for the whole process.
    The op works on every device (it is made of PyTorch operations) and has a fake implementation
    for tracing, with a data-dependent output length.
    """
    global _REGISTERED_OP
    if _REGISTERED_OP is not None or _op_exists() or compiled_detectron2_c_installed():
        return

    def _impl(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
        return nms_rotated(boxes, scores, iou_threshold)

    op = torch.library.custom_op("detectron2::nms_rotated", _impl, mutates_args=())

    @op.register_fake
    def _fake(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
        num_kept = torch.library.get_ctx().new_dynamic_size()
        return boxes.new_empty((num_kept,), dtype=torch.int64)

    _REGISTERED_OP = op


def compiled_detectron2_c_installed() -> bool:
    """Whether the importable ``detectron2`` package holds a compiled ``_C`` extension file
    (found without importing detectron2)."""
    try:
        spec = importlib.util.find_spec("detectron2")
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for folder in spec.submodule_search_locations:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        if any(name.startswith("_C.") and name.endswith(suffixes) for name in names):
            return True
    return False


def _op_exists() -> bool:
    try:
        torch.ops.detectron2.nms_rotated
    except (AttributeError, RuntimeError):
        return False
    return True
