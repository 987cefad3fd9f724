"""Deformable-convolution kernels in detectron2's ``_C`` calling convention vs torchvision autograd.

On CPU, detectron2 v0.6's ``DeformConv`` calls torchvision itself and refuses backward and
``ModulatedDeformConv``; its ``_C`` kernels are only reached with CUDA tensors. The CPU tests call
the kernels directly with the argument lists detectron2 uses; the ``gpu`` test runs detectron2's
layers end to end.
"""

import pytest
import torch
from torchvision.ops import deform_conv2d

from fasttcm_ops import deform_conv as ops

# fmt: off
CASES = [
    # batch, in, out, H, W, kernel, stride, padding, dilation, groups, deformable_groups
    (2, 4, 6, 7, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1),
    (1, 4, 4, 9, 7, (3, 2), (2, 1), (1, 0), (2, 1), 2, 2),
]
# fmt: on


def make_inputs(case, modulated, seed=0):
    b, cin, cout, h, w, (kh, kw), (sh, sw), (ph, pw), (dh, dw), groups, dgroups = case
    g = torch.Generator().manual_seed(seed)
    ho = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    wo = (w + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    x = torch.randn(b, cin, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(cout, cin // groups, kh, kw, generator=g, dtype=torch.float64)
    offset = torch.randn(b, 2 * dgroups * kh * kw, ho, wo, generator=g, dtype=torch.float64) * 2
    mask = torch.rand(b, dgroups * kh * kw, ho, wo, generator=g, dtype=torch.float64)
    bias = torch.randn(cout, generator=g, dtype=torch.float64)
    grad_out = torch.randn(b, cout, ho, wo, generator=g, dtype=torch.float64)
    return x, weight, offset, (mask if modulated else None), bias, grad_out


def torchvision_grads(grad_out, stride, padding, dilation, **inputs):
    """Output of torchvision's deform_conv2d and the gradients of its (non-None) inputs."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items() if v is not None}
    out = deform_conv2d(
        leaves["x"],
        leaves["offset"],
        leaves["weight"],
        bias=leaves.get("bias"),
        stride=stride,
        padding=padding,
        dilation=dilation,
        mask=leaves.get("mask"),
    )
    out.backward(grad_out)
    return out.detach(), {k: v.grad for k, v in leaves.items()}


@pytest.mark.parametrize("case", CASES)
def test_deform_conv_kernels_match_torchvision(case):
    _, _, _, _, _, (kh, kw), (sh, sw), (ph, pw), (dh, dw), groups, dgroups = case
    x, weight, offset, _, _, grad_out = make_inputs(case, modulated=False)
    out_ref, grads = torchvision_grads(
        grad_out, (sh, sw), (ph, pw), (dh, dw), x=x, weight=weight, offset=offset
    )
    scratch = x.new_empty(0)
    output = x.new_empty(out_ref.shape)
    # Argument order as in detectron2.layers.deform_conv._DeformConv.
    ops.deform_conv_forward(
        x,
        weight,
        offset,
        output,
        scratch,
        scratch,
        kw,
        kh,
        sw,
        sh,
        pw,
        ph,
        dw,
        dh,
        groups,
        dgroups,
        64,
    )
    torch.testing.assert_close(output, out_ref)
    grad_input, grad_offset = torch.zeros_like(x), torch.zeros_like(offset)
    ops.deform_conv_backward_input(
        x,
        offset,
        grad_out,
        grad_input,
        grad_offset,
        weight,
        scratch,
        kw,
        kh,
        sw,
        sh,
        pw,
        ph,
        dw,
        dh,
        groups,
        dgroups,
        64,
    )
    torch.testing.assert_close(grad_input, grads["x"])
    torch.testing.assert_close(grad_offset, grads["offset"])
    grad_weight = torch.ones_like(weight)  # accumulates: 1 + scale * gradient
    ops.deform_conv_backward_filter(
        x,
        offset,
        grad_out,
        grad_weight,
        scratch,
        scratch,
        kw,
        kh,
        sw,
        sh,
        pw,
        ph,
        dw,
        dh,
        groups,
        dgroups,
        0.5,
        64,
    )
    torch.testing.assert_close(grad_weight, 1 + 0.5 * grads["weight"])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_modulated_deform_conv_kernels_match_torchvision(case, with_bias):
    _, _, _, _, _, (kh, kw), (sh, sw), (ph, pw), (dh, dw), groups, dgroups = case
    x, weight, offset, mask, bias, grad_out = make_inputs(case, modulated=True, seed=1)
    out_ref, grads = torchvision_grads(
        grad_out,
        (sh, sw),
        (ph, pw),
        (dh, dw),
        x=x,
        weight=weight,
        offset=offset,
        mask=mask,
        bias=bias if with_bias else None,
    )
    if not with_bias:
        bias = x.new_empty(1)  # detectron2 passes a placeholder
    scratch = x.new_empty(0)
    output = x.new_empty(out_ref.shape)
    # Argument order as in detectron2.layers.deform_conv._ModulatedDeformConv.
    ops.modulated_deform_conv_forward(
        x,
        weight,
        bias,
        scratch,
        offset,
        mask,
        output,
        scratch,
        kh,
        kw,
        sh,
        sw,
        ph,
        pw,
        dh,
        dw,
        groups,
        dgroups,
        with_bias,
    )
    torch.testing.assert_close(output, out_ref)
    buffers = [torch.zeros_like(t) for t in (x, weight, bias, offset, mask)]
    gx, gw, gb, goff, gm = buffers
    ops.modulated_deform_conv_backward(
        x,
        weight,
        bias,
        scratch,
        offset,
        mask,
        scratch,
        gx,
        gw,
        gb,
        goff,
        gm,
        grad_out,
        kh,
        kw,
        sh,
        sw,
        ph,
        pw,
        dh,
        dw,
        groups,
        dgroups,
        with_bias,
    )
    torch.testing.assert_close(gx, grads["x"])
    torch.testing.assert_close(gw, grads["weight"])
    torch.testing.assert_close(goff, grads["offset"])
    torch.testing.assert_close(gm, grads["mask"])
    if with_bias:
        torch.testing.assert_close(gb, grads["bias"])
    else:
        assert not gb.any()


def test_inconsistent_geometry_raises():
    x, weight, offset, _, _, _ = make_inputs(CASES[0], modulated=False)
    output = x.new_empty(0)
    with pytest.raises(ValueError, match="kernel size"):
        ops.deform_conv_forward(
            x, weight, offset, output, output, output, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 64
        )
    with pytest.raises(ValueError, match="offset has"):
        ops.deform_conv_forward(
            x, weight, offset, output, output, output, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2, 64
        )
    with pytest.raises(ValueError, match="output buffer"):
        ops.deform_conv_forward(
            x, weight, offset, output, output, output, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 64
        )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_detectron2_deform_layers_on_cuda():
    from detectron2.layers import DeformConv, ModulatedDeformConv

    torch.manual_seed(0)
    x = torch.randn(2, 8, 12, 10, device="cuda", requires_grad=True)
    offset = torch.randn(2, 2 * 9, 12, 10, device="cuda", requires_grad=True)
    mask = torch.rand(2, 9, 12, 10, device="cuda", requires_grad=True)
    layer = DeformConv(8, 6, 3, padding=1).cuda()
    out = layer(x, offset)
    ref = deform_conv2d(x, offset, layer.weight, padding=(1, 1))
    torch.testing.assert_close(out, ref)
    grads = torch.autograd.grad(out.square().sum(), (x, offset, layer.weight))
    ref_grads = torch.autograd.grad(ref.square().sum(), (x, offset, layer.weight))
    for ours, expected in zip(grads, ref_grads):
        torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
    layer = ModulatedDeformConv(8, 6, 3, padding=1, bias=True).cuda()
    torch.nn.init.normal_(layer.bias)
    out = layer(x, offset, mask)
    ref = deform_conv2d(x, offset, layer.weight, layer.bias, padding=(1, 1), mask=mask)
    torch.testing.assert_close(out, ref)
    wrt = (x, offset, mask, layer.weight, layer.bias)
    grads = torch.autograd.grad(out.square().sum(), wrt)
    ref_grads = torch.autograd.grad(ref.square().sum(), wrt)
    for ours, expected in zip(grads, ref_grads):
        torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
