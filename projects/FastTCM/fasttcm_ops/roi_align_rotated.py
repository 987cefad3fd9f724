"""ROIAlignRotated forward and backward as gathers (``_C.roi_align_rotated_forward/backward``).

Semantics are those of detectron2 v0.6's kernels:

* ``rois`` is Tensor[K, 6]: ``(batch_index, cx, cy, w, h, angle)`` in input-image pixels, angle in
  degrees, counter-clockwise (detectron2 ``RotatedBoxes``). They are scaled by ``spatial_scale`` and
  shifted by -0.5 (continuous coordinates, "aligned"): feature pixel ``(i, j)`` is sampled at its
  centre, continuous ``(j + 0.5, i + 0.5)``.
* Each of the ``pooled_h x pooled_w`` bins averages a regular ``grid_h x grid_w`` grid of bilinear
  samples; the grid is ``sampling_ratio`` per side, or ``ceil(roi_size / pooled_size)`` per roi when
  ``sampling_ratio <= 0``. A sample at local offset ``(u, v)`` from the roi centre (u along the
  width) reads the feature map at ``x = cx + u*cos(a) + v*sin(a)``,
  ``y = cy - u*sin(a) + v*cos(a)``.
* A sample outside ``[-1, W] x [-1, H]`` reads 0; otherwise coordinates below 0 are clamped to 0 and
  a coordinate at or past the last pixel reads that pixel (detectron2's bilinear rules).

Every sample is one row of a sparse linear map from the flattened feature map ``(B*H*W, C)`` to the
pooled bins ``(K*pooled_h*pooled_w, C)``: four ``(bin, pixel, weight)`` entries. The forward pass
applies the map with ``embedding_bag`` (weighted sums of gathered rows); the backward pass applies
its transpose the same way, after sorting the entries by pixel. No loop runs over rois or pixels;
only rois with different adaptive grid sizes are planned separately, and very large inputs in
chunks of rois to bound memory.
"""

import math
from typing import Iterator, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["roi_align_rotated_forward", "roi_align_rotated_backward", "bilinear_sampling_plan"]

# Sparse entries planned at once (each costs ~20 bytes), bounding the memory of one chunk.
_MAX_ENTRIES_PER_CHUNK = 1 << 23


class SamplingPlan(NamedTuple):
    """Sparse map from feature pixels to pooled bins, for a chunk of rois.

    ``output[bins[e]] += weights[e] * features[pixels[e]]`` over all entries ``e``, with ``bins``
    indexing the flattened ``(K, pooled_h, pooled_w)`` output and ``pixels`` the flattened
    ``(B, H, W)`` feature map. Entries are sorted by bin.
    """

    bins: Tensor  # int64 [E]
    pixels: Tensor  # int64 [E]
    weights: Tensor  # [E], the compute dtype
    first_bin: int  # bins of this chunk are first_bin .. first_bin + num_bins - 1
    num_bins: int


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _check_rois(rois: Tensor, batch_size: int, op: str) -> None:
    if rois.dim() != 2 or rois.shape[1] != 6:
        raise ValueError(
            f"fasttcm_ops.roi_align_rotated.{op}: rois must have shape (K, 6) as "
            f"(batch_index, cx, cy, w, h, angle_deg), got {tuple(rois.shape)}"
        )
    if not rois.is_floating_point():
        raise TypeError(f"fasttcm_ops.roi_align_rotated.{op}: rois must be floating point")
    if rois.numel() == 0:
        return
    if not bool(torch.isfinite(rois).all()):
        raise ValueError(f"fasttcm_ops.roi_align_rotated.{op}: rois contain NaN or infinite values")
    batch = rois[:, 0]
    if bool(((batch < 0) | (batch >= batch_size) | (batch != batch.trunc())).any()):
        raise ValueError(
            f"fasttcm_ops.roi_align_rotated.{op}: rois[:, 0] must be integer batch indices in "
            f"[0, {batch_size}), got values in [{batch.min().item()}, {batch.max().item()}]"
        )
    if bool((rois[:, 3:5] < 0).any()):
        raise ValueError(
            f"fasttcm_ops.roi_align_rotated.{op}: rois must have non-negative width and height"
        )


def _grid_sizes(rois: Tensor, spatial_scale: float, pooled_h: int, pooled_w: int, ratio: int):
    """Samples per bin side for each roi, Tensor[K] each (int64)."""
    if ratio > 0:
        full = torch.full((rois.shape[0],), ratio, dtype=torch.int64, device=rois.device)
        return full, full
    grid_h = torch.ceil(rois[:, 4] * spatial_scale / pooled_h).long()
    grid_w = torch.ceil(rois[:, 3] * spatial_scale / pooled_w).long()
    return grid_h, grid_w


def _plan_uniform_grid(
    rois: Tensor,
    roi_ids: Tensor,
    spatial_scale: float,
    pooled_h: int,
    pooled_w: int,
    grid_h: int,
    grid_w: int,
    height: int,
    width: int,
    backward: bool,
):
    """(bins, pixels, weights), each [len(roi_ids) * pooled_h * pooled_w * grid_h * grid_w * 4],
    for rois that share one grid size. Ordered by (roi, ph, pw, sample, corner)."""
    dtype = rois.dtype
    k = rois.shape[0]
    cx = rois[:, 1] * spatial_scale - 0.5
    cy = rois[:, 2] * spatial_scale - 0.5
    roi_w = rois[:, 3] * spatial_scale
    roi_h = rois[:, 4] * spatial_scale
    theta = rois[:, 5] * (math.pi / 180.0)
    cos, sin = torch.cos(theta), torch.sin(theta)
    bin_h, bin_w = roi_h / pooled_h, roi_w / pooled_w

    # Sample offsets from the roi centre along its height (v) and width (u) axes.
    ph = torch.arange(pooled_h, dtype=dtype, device=rois.device)
    pw = torch.arange(pooled_w, dtype=dtype, device=rois.device)
    iy = torch.arange(grid_h, dtype=dtype, device=rois.device) + 0.5
    ix = torch.arange(grid_w, dtype=dtype, device=rois.device) + 0.5
    v = (-0.5 * roi_h)[:, None, None] + ph[None, :, None] * bin_h[:, None, None]
    v = v + iy[None, None, :] * (bin_h / grid_h)[:, None, None]  # (K, PH, GH)
    u = (-0.5 * roi_w)[:, None, None] + pw[None, :, None] * bin_w[:, None, None]
    u = u + ix[None, None, :] * (bin_w / grid_w)[:, None, None]  # (K, PW, GW)
    v = v[:, :, None, :, None]  # -> (K, PH, PW, GH, GW)
    u = u[:, None, :, None, :]
    c, s = cos.view(k, 1, 1, 1, 1), sin.view(k, 1, 1, 1, 1)
    y = v * c - u * s + cy.view(k, 1, 1, 1, 1)
    x = v * s + u * c + cx.view(k, 1, 1, 1, 1)

    inside = (y >= -1.0) & (y <= height) & (x >= -1.0) & (x <= width)
    y = y.clamp(min=0.0)
    x = x.clamp(min=0.0)
    y_low = y.floor().long()
    x_low = x.floor().long()
    y_edge = y_low >= height - 1
    x_edge = x_low >= width - 1
    y_low = torch.where(y_edge, height - 1, y_low)
    x_low = torch.where(x_edge, width - 1, x_low)
    y_high = torch.where(y_edge, y_low, y_low + 1)
    x_high = torch.where(x_edge, x_low, x_low + 1)
    ly = torch.where(y_edge, 0.0, y - y_low.to(dtype))
    lx = torch.where(x_edge, 0.0, x - x_low.to(dtype))
    hy, hx = 1.0 - ly, 1.0 - lx

    # Forward averages over max(grid, 1) samples; backward divides by the grid (no sample if 0).
    count = grid_h * grid_w if backward else max(grid_h * grid_w, 1)
    scale = inside.to(dtype) / count
    weights = torch.stack((hy * hx, hy * lx, ly * hx, ly * lx), dim=-1) * scale[..., None]
    image_start = rois[:, 0].long().view(k, 1, 1, 1, 1) * (height * width)
    row_low = image_start + y_low * width
    row_high = image_start + y_high * width
    pixels = torch.stack(
        (row_low + x_low, row_low + x_high, row_high + x_low, row_high + x_high), dim=-1
    )
    bins_per_roi = pooled_h * pooled_w
    bins = roi_ids[:, None] * bins_per_roi + torch.arange(bins_per_roi, device=rois.device)
    bins = bins[:, :, None].expand(k, bins_per_roi, grid_h * grid_w * 4)
    return bins.reshape(-1), pixels.reshape(-1), weights.reshape(-1)


def bilinear_sampling_plan(
    rois: Tensor,
    spatial_scale: float,
    pooled_h: int,
    pooled_w: int,
    sampling_ratio: int,
    height: int,
    width: int,
    backward: bool = False,
) -> Iterator[SamplingPlan]:
    """Plan the sparse sampling map of ROIAlignRotated, in chunks of consecutive rois.

    Args:
        rois (Tensor[K, 6]): ``(batch_index, cx, cy, w, h, angle_deg)``, in the compute dtype.
        spatial_scale (float): feature-map pixels per input pixel.
        pooled_h, pooled_w (int): output bins per roi.
        sampling_ratio (int): samples per bin side, or <= 0 for ``ceil(roi_size / pooled_size)``.
        height, width (int): feature-map size.
        backward (bool): use the backward kernel's normalization (see the module docstring).

    Yields:
        SamplingPlan: entries of a chunk of rois, sorted by output bin.
    """
    grid_h, grid_w = _grid_sizes(rois, spatial_scale, pooled_h, pooled_w, sampling_ratio)
    entries = grid_h.clamp(min=1) * grid_w.clamp(min=1) * (pooled_h * pooled_w * 4)
    # Chunks of consecutive rois, each within the entry budget (one roi may exceed it alone).
    ends = torch.cumsum(entries, 0).cpu()
    boundaries = [0]
    while boundaries[-1] < rois.shape[0]:
        used = int(ends[boundaries[-1] - 1]) if boundaries[-1] > 0 else 0
        budget = torch.tensor(used + _MAX_ENTRIES_PER_CHUNK, dtype=ends.dtype)
        nxt = int(torch.searchsorted(ends, budget, right=True))
        boundaries.append(max(nxt, boundaries[-1] + 1))
    bins_per_roi = pooled_h * pooled_w
    for start, end in zip(boundaries[:-1], boundaries[1:]):
        gh, gw = grid_h[start:end], grid_w[start:end]
        groups = torch.unique(torch.stack((gh, gw), dim=1), dim=0).tolist()
        parts = []
        for group_h, group_w in groups:
            if group_h == 0 or group_w == 0:
                continue  # an empty grid samples nothing: the bins stay 0
            ids = ((gh == group_h) & (gw == group_w)).nonzero().squeeze(1) + start
            parts.append(
                _plan_uniform_grid(
                    rois[ids],
                    ids,
                    spatial_scale,
                    pooled_h,
                    pooled_w,
                    group_h,
                    group_w,
                    height,
                    width,
                    backward,
                )
            )
        if parts:
            bins, pixels, weights = (torch.cat(p) for p in zip(*parts))
            if len(parts) > 1:
                order = torch.sort(bins, stable=True).indices
                bins, pixels, weights = bins[order], pixels[order], weights[order]
        else:
            bins = pixels = torch.empty(0, dtype=torch.int64, device=rois.device)
            weights = torch.empty(0, dtype=rois.dtype, device=rois.device)
        yield SamplingPlan(
            bins, pixels, weights, start * bins_per_roi, (end - start) * bins_per_roi
        )


def _weighted_bag_sums(
    keys: Tensor, num_bags: int, first: int, members: Tensor, weights: Tensor, table: Tensor
) -> Tensor:
    """``out[b] = sum over entries e with keys[e] == first + b of weights[e] * table[members[e]]``
    for sorted ``keys``; Tensor[num_bags, C]."""
    counts = torch.bincount(keys - first, minlength=num_bags)
    offsets = torch.cumsum(counts, 0) - counts
    return F.embedding_bag(
        members, table, offsets, mode="sum", per_sample_weights=weights, include_last_offset=False
    )


class _Pooling(NamedTuple):
    """The pooling arguments shared by the forward and backward ops."""

    spatial_scale: float
    pooled_height: int
    pooled_width: int
    sampling_ratio: int


def _nonempty_plans(
    rois: Tensor, pooling: _Pooling, height: int, width: int, backward: bool
) -> Iterator[SamplingPlan]:
    """The chunks of ``bilinear_sampling_plan`` that have entries.

    Args:
        rois (Tensor[K, 6]): the rois, in the compute dtype.
        pooling (_Pooling): the op's pooling arguments.
        height, width (int): feature-map size.
        backward (bool): use the backward kernel's normalization.

    Returns:
        Iterator[SamplingPlan]: the non-empty chunks, in order.
    """
    plans = bilinear_sampling_plan(
        rois,
        pooling.spatial_scale,
        pooling.pooled_height,
        pooling.pooled_width,
        pooling.sampling_ratio,
        height,
        width,
        backward=backward,
    )
    return (plan for plan in plans if plan.bins.numel() > 0)


def roi_align_rotated_forward(
    input: Tensor,
    rois: Tensor,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
) -> Tensor:
    """ROIAlignRotated forward (v0.6 ``_C.roi_align_rotated_forward``).

    Args:
        input (Tensor[B, C, H, W]): feature map.
        rois (Tensor[K, 6]): ``(batch_index, cx, cy, w, h, angle_deg)`` in input-image pixels,
            angle counter-clockwise; same dtype as ``input``.
        spatial_scale (float): feature-map pixels per input pixel.
        pooled_height, pooled_width (int): output bins per roi.
        sampling_ratio (int): samples per bin side; <= 0 for adaptive.

    Returns:
        Tensor[K, C, pooled_height, pooled_width], the dtype of ``input``.
    """
    if input.dim() != 4:
        raise ValueError(
            f"fasttcm_ops.roi_align_rotated.forward: input must be (B, C, H, W), got "
            f"{tuple(input.shape)}"
        )
    if rois.device != input.device:
        raise ValueError(
            f"fasttcm_ops.roi_align_rotated.forward: input on {input.device}, rois on {rois.device}"
        )
    batch, channels, height, width = input.shape
    _check_rois(rois, batch, "forward")
    dtype = _compute_dtype(input.dtype)
    num_rois = rois.shape[0]
    pooling = _Pooling(spatial_scale, pooled_height, pooled_width, sampling_ratio)
    with torch.no_grad():
        output = input.new_zeros((num_rois * pooled_height * pooled_width, channels), dtype=dtype)
        if output.numel() > 0 and height > 0 and width > 0:
            table = input.to(dtype).permute(0, 2, 3, 1).reshape(batch * height * width, channels)
            for plan in _nonempty_plans(rois.to(dtype), pooling, height, width, backward=False):
                output[plan.first_bin : plan.first_bin + plan.num_bins] = _weighted_bag_sums(
                    plan.bins, plan.num_bins, plan.first_bin, plan.pixels, plan.weights, table
                )
        output = output.view(num_rois, pooled_height, pooled_width, channels).permute(0, 3, 1, 2)
        return output.contiguous().to(input.dtype)


def roi_align_rotated_backward(
    grad: Tensor,
    rois: Tensor,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    batch_size: int,
    channels: int,
    height: int,
    width: int,
    sampling_ratio: int,
) -> Tensor:
    """ROIAlignRotated backward (v0.6 ``_C.roi_align_rotated_backward``).

    Args:
        grad (Tensor[K, C, pooled_height, pooled_width]): gradient of the pooled output.
        rois (Tensor[K, 6]): the forward's rois.
        spatial_scale, pooled_height, pooled_width, sampling_ratio: the forward's arguments.
        batch_size, channels, height, width (int): the forward input's shape.

    Returns:
        Tensor[batch_size, channels, height, width]: gradient of the input, the dtype of ``grad``.
    """
    expected = (rois.shape[0], channels, pooled_height, pooled_width)
    if tuple(grad.shape) != expected:
        raise ValueError(
            f"fasttcm_ops.roi_align_rotated.backward: grad must have shape {expected}, got "
            f"{tuple(grad.shape)}"
        )
    if rois.device != grad.device:
        raise ValueError(
            f"fasttcm_ops.roi_align_rotated.backward: grad on {grad.device}, rois on {rois.device}"
        )
    _check_rois(rois, batch_size, "backward")
    dtype = _compute_dtype(grad.dtype)
    num_pixels = batch_size * height * width
    pooling = _Pooling(spatial_scale, pooled_height, pooled_width, sampling_ratio)
    with torch.no_grad():
        grad_table = grad.new_zeros((num_pixels, channels), dtype=dtype)
        if grad.numel() > 0 and num_pixels > 0:
            grad_rows = grad.to(dtype).permute(0, 2, 3, 1).reshape(-1, channels)
            for plan in _nonempty_plans(rois.to(dtype), pooling, height, width, backward=True):
                # The transposed map: bags are pixels, members are the bins that sampled them.
                order = torch.sort(plan.pixels, stable=True).indices
                grad_table += _weighted_bag_sums(
                    plan.pixels[order],
                    num_pixels,
                    0,
                    plan.bins[order],
                    plan.weights[order],
                    grad_rows,
                )
        grad_input = grad_table.view(batch_size, height, width, channels).permute(0, 3, 1, 2)
        return grad_input.contiguous().to(grad.dtype)
