"""Folding eval-mode BatchNorm layers into the convolutions that feed them (inference only).

A BatchNorm in eval mode is a per-channel affine map ``y = s * x + b`` with
``s = weight / sqrt(running_var + eps)`` and ``b = bias - running_mean * s``. When it directly
follows a convolution (nothing in between), it can be merged into that convolution's weights and
bias, which saves a full pass over the feature map per folded layer. On the FastTCM-CR50 detector
that is every BatchNorm of the CLIP ResNet (stem, bottlenecks, downsample branches) and of the DB
head (the conv of each branch and its first transposed convolution).

Only pairs whose forward order is known are folded:

* detectron2 :class:`~detectron2.layers.Conv2d` with a BatchNorm ``norm`` (its forward applies
  ``norm`` right after the convolution);
* consecutive (``Conv2d`` or ``ConvTranspose2d``, ``BatchNorm2d``) children of an
  ``nn.Sequential``;
* ``convN`` / ``bnN`` attribute pairs of open_clip's ``Bottleneck`` and ``ModifiedResNet`` stem,
  whose forwards are ``bnN(convN(x))``.

The folded BatchNorm is replaced by ``nn.Identity`` (or the Conv2d's ``norm`` set to None), so
parameter names of the model change: fold a model only after its weights are loaded, and never
train or save it afterwards.
"""

from typing import Optional, Tuple

import torch
from torch import nn

__all__ = ["fold_batchnorm", "fold_conv_bn"]

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def _bn_scale_shift(bn: nn.modules.batchnorm._BatchNorm) -> Tuple[torch.Tensor, torch.Tensor]:
    """(C,) scale and shift of an eval-mode BatchNorm, in float64 for an exact fold."""
    var = bn.running_var.double()
    mean = bn.running_mean.double()
    scale = torch.rsqrt(var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    return scale, shift


def fold_conv_bn(conv: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> None:
    """Merge ``bn`` (applied to ``conv``'s output) into ``conv``'s weight and bias, in place.

    Args:
        conv: ``nn.Conv2d`` (weight (out, in / groups, kh, kw)) or ``nn.ConvTranspose2d`` (weight
            (in, out / groups, kh, kw)), groups 1 for the transposed one.
        bn: a BatchNorm over ``conv``'s output channels, with running statistics.
    """
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("batchnorm_folding: a BatchNorm without running statistics cannot fold")
    scale, shift = _bn_scale_shift(bn)
    weight = conv.weight.detach().double()
    if isinstance(conv, nn.ConvTranspose2d):
        if conv.groups != 1:
            raise ValueError("batchnorm_folding: grouped ConvTranspose2d is not supported")
        weight = weight * scale.view(1, -1, 1, 1)
    else:
        weight = weight * scale.view(-1, 1, 1, 1)
    bias = shift if conv.bias is None else conv.bias.detach().double() * scale + shift
    dtype = conv.weight.dtype
    conv.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
    conv.bias = nn.Parameter(bias.to(dtype), requires_grad=False)


def _is_bn(module: Optional[nn.Module]) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats


def _open_clip_pair_owners() -> tuple:
    try:
        from open_clip.modified_resnet import Bottleneck, ModifiedResNet
    except ImportError:  # pragma: no cover - open_clip is a dependency of the package
        return ()
    return (Bottleneck, ModifiedResNet)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every foldable eval-mode BatchNorm of ``model`` into its convolution, in place.

    Args:
        model: a module in eval mode (``model.eval()``); training mode raises a ValueError,
            since a folded model can no longer update BatchNorm statistics.

    Returns:
        the number of BatchNorm layers folded.
    """
    if model.training:
        raise ValueError("batchnorm_folding.fold_batchnorm: call model.eval() before folding")
    from detectron2.layers import Conv2d as D2Conv2d

    pair_owners = _open_clip_pair_owners()
    folded = 0
    with torch.no_grad():
        for module in list(model.modules()):
            if isinstance(module, D2Conv2d) and _is_bn(module.norm):
                fold_conv_bn(module, module.norm)
                module.norm = None
                folded += 1
            elif isinstance(module, nn.Sequential):
                names = list(module._modules)
                for first, second in zip(names, names[1:]):
                    conv, bn = module._modules[first], module._modules[second]
                    if isinstance(conv, _CONVS) and _is_bn(bn):
                        fold_conv_bn(conv, bn)
                        module._modules[second] = nn.Identity()
                        folded += 1
            if pair_owners and isinstance(module, pair_owners):
                for index in (1, 2, 3):
                    conv = getattr(module, f"conv{index}", None)
                    bn = getattr(module, f"bn{index}", None)
                    if isinstance(conv, nn.Conv2d) and _is_bn(bn):
                        fold_conv_bn(conv, bn)
                        setattr(module, f"bn{index}", nn.Identity())
                        folded += 1
    return folded
