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

The C++ functions take long positional argument lists that share their geometry part (kernel size,
stride, padding, dilation, groups). Each function here takes ``*args`` and binds them by the
parameter names listed once in ``_PARAMETERS``; the geometry becomes one ``_Geometry``.
"""

from types import SimpleNamespace
from typing import Any, NamedTuple, Optional, Tuple

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

# Geometry parameters of the C++ API: v1 gives each pair width first, v2 height first.
_V1_GEOMETRY = ("kW", "kH", "dW", "dH", "padW", "padH", "dilationW", "dilationH")
_V2_PAIRS = ("kernel", "stride", "pad", "dilation")
_V2_GEOMETRY = tuple(f"{name}_{axis}" for name in _V2_PAIRS for axis in ("h", "w"))
_GROUPS = ("group", "deformable_group")
_V2_TENSORS = ("input", "weight", "bias", "ones", "offset", "mask")

# Positional parameters of each op, in the order of the C++ API.
_PARAMETERS = {
    "deform_conv_forward": (
        ("input", "weight", "offset", "output", "columns", "ones")
        + _V1_GEOMETRY
        + _GROUPS
        + ("im2col_step",)
    ),
    "deform_conv_backward_input": (
        ("input", "offset", "gradOutput", "gradInput", "gradOffset", "weight", "columns")
        + _V1_GEOMETRY
        + _GROUPS
        + ("im2col_step",)
    ),
    "deform_conv_backward_filter": (
        ("input", "offset", "gradOutput", "gradWeight", "columns", "ones")
        + _V1_GEOMETRY
        + _GROUPS
        + ("scale", "im2col_step")
    ),
    "modulated_deform_conv_forward": (
        _V2_TENSORS + ("output", "columns") + _V2_GEOMETRY + _GROUPS + ("with_bias",)
    ),
    "modulated_deform_conv_backward": (
        _V2_TENSORS
        + ("columns", "grad_input", "grad_weight", "grad_bias", "grad_offset", "grad_mask")
        + ("grad_output",)
        + _V2_GEOMETRY
        + _GROUPS
        + ("with_bias",)
    ),
}


class _Geometry(NamedTuple):
    """Convolution geometry: ``(h, w)`` pairs and the group counts."""

    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    dilation: Tuple[int, int]
    group: int
    deformable_group: int


def _bind(op: str, args: Tuple[Any, ...]) -> Tuple[SimpleNamespace, _Geometry]:
    """Names the positional arguments of ``op`` and gathers its geometry.

    Args:
        op (str): the op's name, a key of ``_PARAMETERS``.
        args (tuple): the positional arguments, in the C++ order.

    Returns:
        tuple: the arguments as attributes of a namespace, and their ``_Geometry``.

    Raises:
        TypeError: if the number of arguments is not the op's.
    """
    names = _PARAMETERS[op]
    if len(args) != len(names):
        raise TypeError(
            f"{op}() takes {len(names)} positional arguments but {len(args)} were given"
        )
    bound = dict(zip(names, args))
    if "kW" in bound:
        values = [bound[name] for name in _V1_GEOMETRY]
        pairs = [(h, w) for w, h in zip(values[0::2], values[1::2])]
    else:
        values = [bound[name] for name in _V2_GEOMETRY]
        pairs = list(zip(values[0::2], values[1::2]))
    geometry = _Geometry(*pairs, bound["group"], bound["deformable_group"])
    return SimpleNamespace(**bound), geometry


def _check_geometry(
    op: str,
    input: Tensor,
    weight: Tensor,
    offset: Tensor,
    geometry: _Geometry,
    mask: Optional[Tensor] = None,
) -> None:
    kernel_h, kernel_w = geometry.kernel
    group, deformable_group = geometry.group, geometry.deformable_group
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
    geometry: _Geometry,
) -> Tensor:
    return deform_conv2d(
        input,
        offset,
        weight,
        bias=bias,
        stride=geometry.stride,
        padding=geometry.padding,
        dilation=geometry.dilation,
        mask=mask,
    )


def deform_conv_forward(*args: Any) -> None:
    """Deformable convolution v1 forward; writes ``output`` (Tensor[B, C_out, H_out, W_out]).

    Args:
        *args: in this order ``input`` (Tensor[B, C_in, H, W]), ``weight``
            (Tensor[C_out, C_in / group, kH, kW]), ``offset``
            (Tensor[B, 2 * deformable_group * kH * kW, H_out, W_out]), ``output``, ``columns``,
            ``ones``, ``kW, kH, dW, dH, padW, padH, dilationW, dilationH`` (kernel, stride,
            padding, dilation), ``group, deformable_group`` (convolution and offset groups),
            ``im2col_step``; as in detectron2. ``columns``, ``ones`` and ``im2col_step`` are
            unused scratch / chunking parameters of the C++ kernel.
    """
    op = "deform_conv_forward"
    a, geometry = _bind(op, args)
    _check_geometry(op, a.input, a.weight, a.offset, geometry)
    with torch.no_grad():
        result = _deform_conv(a.input, a.offset, a.weight, None, None, geometry)
    _check_output(op, a.output, result)
    a.output.copy_(result)


def deform_conv_backward_input(*args: Any) -> None:
    """Deformable convolution v1: gradients of input and offset, added into ``gradInput`` and
    ``gradOffset`` (same shapes as ``input`` and ``offset``).

    Args:
        *args: in this order ``input, offset, gradOutput, gradInput, gradOffset, weight,
            columns, kW, kH, dW, dH, padW, padH, dilationW, dilationH, group, deformable_group,
            im2col_step``, as in ``deform_conv_forward``.
    """
    op = "deform_conv_backward_input"
    a, geometry = _bind(op, args)
    _check_geometry(op, a.input, a.weight, a.offset, geometry)
    with torch.enable_grad():
        x = a.input.detach().requires_grad_(True)
        off = a.offset.detach().requires_grad_(True)
        out = _deform_conv(x, off, a.weight.detach(), None, None, geometry)
        grad_input, grad_offset = torch.autograd.grad(out, (x, off), a.gradOutput)
    a.gradInput.add_(grad_input)
    a.gradOffset.add_(grad_offset)


def deform_conv_backward_filter(*args: Any) -> None:
    """Deformable convolution v1: ``scale`` times the weight gradient, added into ``gradWeight``.

    Args:
        *args: in this order ``input, offset, gradOutput, gradWeight, columns, ones, kW, kH, dW,
            dH, padW, padH, dilationW, dilationH, group, deformable_group, scale (float),
            im2col_step``, as in ``deform_conv_forward``.
    """
    op = "deform_conv_backward_filter"
    a, geometry = _bind(op, args)
    _check_geometry(op, a.input, a.gradWeight, a.offset, geometry)
    with torch.enable_grad():
        # The output is linear in the weight, so its weight gradient does not depend on the
        # weight's values: zeros serve as the point of differentiation.
        w = torch.zeros_like(a.gradWeight).requires_grad_(True)
        out = _deform_conv(a.input.detach(), a.offset.detach(), w, None, None, geometry)
        (grad_weight,) = torch.autograd.grad(out, (w,), a.gradOutput)
    a.gradWeight.add_(grad_weight, alpha=a.scale)


def modulated_deform_conv_forward(*args: Any) -> None:
    """Modulated deformable convolution (v2) forward; writes ``output``.

    Args:
        *args: in this order ``input`` (Tensor[B, C_in, H, W]), ``weight``
            (Tensor[C_out, C_in / group, kernel_h, kernel_w]), ``bias`` (Tensor[C_out], used iff
            ``with_bias``), ``ones``, ``offset``
            (Tensor[B, 2 * deformable_group * kernel_h * kernel_w, H_out, W_out]), ``mask``
            (Tensor[B, deformable_group * kernel_h * kernel_w, H_out, W_out]), ``output``,
            ``columns``, ``kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h,
            dilation_w, group, deformable_group``, ``with_bias`` (bool). ``ones`` and ``columns``
            are unused scratch buffers of the C++ kernel.
    """
    op = "modulated_deform_conv_forward"
    a, geometry = _bind(op, args)
    _check_geometry(op, a.input, a.weight, a.offset, geometry, a.mask)
    with torch.no_grad():
        bias = a.bias if a.with_bias else None
        result = _deform_conv(a.input, a.offset, a.weight, bias, a.mask, geometry)
    _check_output(op, a.output, result)
    a.output.copy_(result)


def modulated_deform_conv_backward(*args: Any) -> None:
    """Modulated deformable convolution (v2) backward: gradients of input, weight, bias (iff
    ``with_bias``), offset and mask, added into the corresponding buffers.

    Args:
        *args: in this order ``input, weight, bias, ones, offset, mask, columns, grad_input,
            grad_weight, grad_bias, grad_offset, grad_mask, grad_output, kernel_h, kernel_w,
            stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, group, deformable_group,
            with_bias``, as in ``modulated_deform_conv_forward``.
    """
    op = "modulated_deform_conv_backward"
    a, geometry = _bind(op, args)
    _check_geometry(op, a.input, a.weight, a.offset, geometry, a.mask)
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_(True) for t in (a.input, a.weight, a.offset, a.mask)]
        b = a.bias.detach().requires_grad_(True) if a.with_bias else None
        out = _deform_conv(leaves[0], leaves[2], leaves[1], b, leaves[3], geometry)
        grads = torch.autograd.grad(out, leaves + ([b] if a.with_bias else []), a.grad_output)
    a.grad_input.add_(grads[0])
    a.grad_weight.add_(grads[1])
    a.grad_offset.add_(grads[2])
    a.grad_mask.add_(grads[3])
    if a.with_bias:
        a.grad_bias.add_(grads[4])
