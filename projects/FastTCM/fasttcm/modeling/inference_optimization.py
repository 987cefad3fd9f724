"""``optimize_for_inference``: CPU speed-ups of an eval-mode model that keep its outputs.

Two rewrites, both exact up to float rounding:

* **BatchNorm folding** (:mod:`.batchnorm_folding`): every BatchNorm that directly follows a
  convolution is merged into it (the CLIP ResNet's 53 at CR50 depth, the DB head's), saving one
  pass over each feature map.
* **channels_last** (NHWC) weights: oneDNN convolutions then run without reordering their inputs
  and weights at every call, and the DB head's stride-2 transposed convolutions, which oneDNN
  runs slowly on NCHW tensors, become several times faster. Activations follow the weights'
  format (PyTorch picks channels_last for a convolution when its weight is channels_last), so
  callers keep passing ordinary NCHW images. Tensor shapes are unchanged; only strides differ.

Measured on the FastTCM-CR50 detector at 800 x 600 (2 CPU threads): see ``tools/benchmark.py
--task inference`` (backend ``pytorch-opt`` against ``pytorch``).

The model must not be trained or saved afterwards: folded BatchNorms become ``nn.Identity`` and
the state dict's names change (load weights first).
"""

from typing import Dict

import torch
from torch import nn

from .batchnorm_folding import fold_batchnorm

__all__ = ["optimize_for_inference"]


def optimize_for_inference(
    model: nn.Module, *, fold_bn: bool = True, channels_last: bool = True
) -> Dict[str, int]:
    """Rewrite an eval-mode model in place for faster CPU inference (see the module docstring).

    Args:
        model: the model, weights loaded; it is put in eval mode.
        fold_bn: fold BatchNorms into their convolutions.
        channels_last: store 4-D weights channels_last (NHWC).

    Returns:
        {"folded_batchnorms": count, "channels_last_tensors": 4-D parameters and buffers}.
    """
    model.eval()
    folded = fold_batchnorm(model) if fold_bn else 0
    converted = 0
    if channels_last:
        converted = sum(1 for p in model.parameters() if p.dim() == 4) + sum(
            1 for b in model.buffers() if b.dim() == 4
        )
        model.to(memory_format=torch.channels_last)
    return {"folded_batchnorms": folded, "channels_last_tensors": converted}
