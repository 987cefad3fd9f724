"""Deformable convolution v1/v2 in the v0.6 ``detectron2._C`` signatures, via torchvision.

detectron2's ``DeformConv`` / ``ModulatedDeformConv`` call these on CUDA tensors (on CPU its Python
code uses ``torchvision.ops.deform_conv2d`` itself, or refuses). They are computed with
``torchvision.ops.deform_conv2d``, whose offset layout is the same (per deformable group, per kernel
tap ``(i, j)``: channel ``2*(i*kW + j)`` is the y offset, ``+1`` the x offset; masks one channel
per tap), and the gradients come from autograd through it. They work on every device torchvision
supports.

The C++ API writes into caller-provided tensors: forwards overwrite ``output``, backwards add into
the gradient buffers (detectron2 passes zeros), the filter gradient scaled by ``scale``. The
``columns`` / ``ones`` scratch buffers and ``im2col_step`` have no role here and are ignored.
"""

from typing import Optional, Tuple

import torch
from torch import Tensor
from torchvision.ops import deform_conv2d

__all__ = [
    "deform_conv_forward",
    "deform_conv_backward_input",
    "deform_conv_backward_filter",
    "modulated_deform_conv_forward",
    "modulated_deform_conv_backward",
]


def _check_geometry(
    op: str,
    input: Tensor,
    weight: Tensor,
    offset: Tensor,
    kernel_h: int,
    kernel_w: int,
    group: int,
    deformable_group: int,
    mask: Optional[Tensor] = None,
) -> None:
    if input.dim() != 4 or weight.dim() != 4 or offset.dim() != 4:
        raise ValueError(
            f"fasttcm_ops.deform_conv.{op}: input, weight and offset must be 4-D, got "
            f"{tuple(input.shape)}, {tuple(weight.shape)}, {tuple(offset.shape)}"
        )
    if (weight.shape[2], weight.shape[3]) != (kernel_h, kernel_w):
        raise ValueError(
            f"fasttcm_ops.deform_conv.{op}: kernel size ({kernel_h}, {kernel_w}) does not match "
            f"weight {tuple(weight.shape)}"
        )
    if input.shape[1] != weight.shape[1] * group or weight.shape[0] % group != 0:
        raise ValueError(
            f"fasttcm_ops.deform_conv.{op}: {input.shape[1]} input channels, weight "
            f"{tuple(weight.shape)} and group={group} are inconsistent"
        )
    taps = kernel_h * kernel_w
    if offset.shape[1] != 2 * deformable_group * taps:
        raise ValueError(
            f"fasttcm_ops.deform_conv.{op}: offset has {offset.shape[1]} channels, expected "
            f"2 * deformable_group * kernel_h * kernel_w = {2 * deformable_group * taps}"
        )
    if input.shape[1] % deformable_group != 0:
        raise ValueError(
            f"fasttcm_ops.deform_conv.{op}: {input.shape[1]} input channels are not divisible by "
            f"deformable_group={deformable_group}"
        )
    if mask is not None and mask.shape[1] != deformable_group * taps:
        raise ValueError(
            f"fasttcm_ops.deform_conv.{op}: mask has {mask.shape[1]} channels, expected "
            f"deformable_group * kernel_h * kernel_w = {deformable_group * taps}"
        )


def _check_output(op: str, output: Tensor, result: Tensor) -> None:
    if output.shape != result.shape:
        raise ValueError(
            f"fasttcm_ops.deform_conv.{op}: output buffer has shape {tuple(output.shape)}, the "
            f"convolution gives {tuple(result.shape)}"
        )


def _deform_conv(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    mask: Optional[Tensor],
    stride: Tuple[int, int],
    padding: Tuple[int, int],
    dilation: Tuple[int, int],
) -> Tensor:
    return deform_conv2d(
        input,
        offset,
        weight,
        bias=bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        mask=mask,
    )


def deform_conv_forward(
    input: Tensor,
    weight: Tensor,
    offset: Tensor,
    output: Tensor,
    columns: Tensor,
    ones: Tensor,
    kW: int,
    kH: int,
    dW: int,
    dH: int,
    padW: int,
    padH: int,
    dilationW: int,
    dilationH: int,
    group: int,
    deformable_group: int,
    im2col_step: int,
) -> None:
    """Deformable convolution v1 forward; writes ``output`` (Tensor[B, C_out, H_out, W_out]).

    Args:
        input (Tensor[B, C_in, H, W]), weight (Tensor[C_out, C_in / group, kH, kW]),
        offset (Tensor[B, 2 * deformable_group * kH * kW, H_out, W_out]): as in detectron2.
        kW, kH, dW, dH, padW, padH, dilationW, dilationH: kernel, stride, padding, dilation.
        group, deformable_group (int): convolution and offset groups.
        columns, ones, im2col_step: unused scratch / chunking parameters of the C++ kernel.
    """
    _check_geometry("deform_conv_forward", input, weight, offset, kH, kW, group, deformable_group)
    with torch.no_grad():
        result = _deform_conv(
            input, offset, weight, None, None, (dH, dW), (padH, padW), (dilationH, dilationW)
        )
    _check_output("deform_conv_forward", output, result)
    output.copy_(result)


def deform_conv_backward_input(
    input: Tensor,
    offset: Tensor,
    gradOutput: Tensor,
    gradInput: Tensor,
    gradOffset: Tensor,
    weight: Tensor,
    columns: Tensor,
    kW: int,
    kH: int,
    dW: int,
    dH: int,
    padW: int,
    padH: int,
    dilationW: int,
    dilationH: int,
    group: int,
    deformable_group: int,
    im2col_step: int,
) -> None:
    """Deformable convolution v1: gradients of input and offset, added into ``gradInput`` and
    ``gradOffset`` (same shapes as ``input`` and ``offset``)."""
    _check_geometry(
        "deform_conv_backward_input", input, weight, offset, kH, kW, group, deformable_group
    )
    with torch.enable_grad():
        x = input.detach().requires_grad_(True)
        off = offset.detach().requires_grad_(True)
        out = _deform_conv(
            x, off, weight.detach(), None, None, (dH, dW), (padH, padW), (dilationH, dilationW)
        )
        grad_input, grad_offset = torch.autograd.grad(out, (x, off), gradOutput)
    gradInput.add_(grad_input)
    gradOffset.add_(grad_offset)


def deform_conv_backward_filter(
    input: Tensor,
    offset: Tensor,
    gradOutput: Tensor,
    gradWeight: Tensor,
    columns: Tensor,
    ones: Tensor,
    kW: int,
    kH: int,
    dW: int,
    dH: int,
    padW: int,
    padH: int,
    dilationW: int,
    dilationH: int,
    group: int,
    deformable_group: int,
    scale: float,
    im2col_step: int,
) -> None:
    """Deformable convolution v1: ``scale`` times the weight gradient, added into ``gradWeight``."""
    _check_geometry(
        "deform_conv_backward_filter", input, gradWeight, offset, kH, kW, group, deformable_group
    )
    with torch.enable_grad():
        # The output is linear in the weight, so its weight gradient does not depend on the
        # weight's values: zeros serve as the point of differentiation.
        w = torch.zeros_like(gradWeight).requires_grad_(True)
        out = _deform_conv(
            input.detach(),
            offset.detach(),
            w,
            None,
            None,
            (dH, dW),
            (padH, padW),
            (dilationH, dilationW),
        )
        (grad_weight,) = torch.autograd.grad(out, (w,), gradOutput)
    gradWeight.add_(grad_weight, alpha=scale)


def modulated_deform_conv_forward(
    input: Tensor,
    weight: Tensor,
    bias: Tensor,
    ones: Tensor,
    offset: Tensor,
    mask: Tensor,
    output: Tensor,
    columns: Tensor,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dilation_h: int,
    dilation_w: int,
    group: int,
    deformable_group: int,
    with_bias: bool,
) -> None:
    """Modulated deformable convolution (v2) forward; writes ``output``.

    Args:
        input (Tensor[B, C_in, H, W]), weight (Tensor[C_out, C_in / group, kernel_h, kernel_w]),
        bias (Tensor[C_out], used iff ``with_bias``),
        offset (Tensor[B, 2 * deformable_group * kernel_h * kernel_w, H_out, W_out]),
        mask (Tensor[B, deformable_group * kernel_h * kernel_w, H_out, W_out]).
        ones, columns: unused scratch buffers of the C++ kernel.
    """
    _check_geometry(
        "modulated_deform_conv_forward",
        input,
        weight,
        offset,
        kernel_h,
        kernel_w,
        group,
        deformable_group,
        mask,
    )
    with torch.no_grad():
        result = _deform_conv(
            input,
            offset,
            weight,
            bias if with_bias else None,
            mask,
            (stride_h, stride_w),
            (pad_h, pad_w),
            (dilation_h, dilation_w),
        )
    _check_output("modulated_deform_conv_forward", output, result)
    output.copy_(result)


def modulated_deform_conv_backward(
    input: Tensor,
    weight: Tensor,
    bias: Tensor,
    ones: Tensor,
    offset: Tensor,
    mask: Tensor,
    columns: Tensor,
    grad_input: Tensor,
    grad_weight: Tensor,
    grad_bias: Tensor,
    grad_offset: Tensor,
    grad_mask: Tensor,
    grad_output: Tensor,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dilation_h: int,
    dilation_w: int,
    group: int,
    deformable_group: int,
    with_bias: bool,
) -> None:
    """Modulated deformable convolution (v2) backward: gradients of input, weight, bias (iff
    ``with_bias``), offset and mask, added into the corresponding buffers."""
    _check_geometry(
        "modulated_deform_conv_backward",
        input,
        weight,
        offset,
        kernel_h,
        kernel_w,
        group,
        deformable_group,
        mask,
    )
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_(True) for t in (input, weight, offset, mask)]
        b = bias.detach().requires_grad_(True) if with_bias else None
        out = _deform_conv(
            leaves[0],
            leaves[2],
            leaves[1],
            b,
            leaves[3],
            (stride_h, stride_w),
            (pad_h, pad_w),
            (dilation_h, dilation_w),
        )
        grads = torch.autograd.grad(out, leaves + ([b] if with_bias else []), grad_output)
    grad_input.add_(grads[0])
    grad_weight.add_(grads[1])
    grad_offset.add_(grads[2])
    grad_mask.add_(grads[3])
    if with_bias:
        grad_bias.add_(grads[4])
