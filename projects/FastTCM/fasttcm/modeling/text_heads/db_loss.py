"""DBNet losses (MMOCR ``DBLoss(alpha=5, beta=10, bbce_loss=True)``).

``L = alpha * L_prob + L_binary + beta * L_thresh`` with

- ``L_prob``: balanced binary cross-entropy on the probability map P against the shrunk text
  kernels, with online hard-negative mining (at most ``negative_ratio`` negatives per positive,
  the hardest ones), inside ``shrink_mask``;
- ``L_binary``: dice loss on the approximate binary map B = sigmoid(k (P - T)) against the same
  kernels, inside ``shrink_mask``;
- ``L_thresh``: L1 between the threshold map T and its target inside ``thresh_mask``.

All counts and sums run over the whole batch, as in MMOCR.
"""

from typing import Dict

import torch
from torch import nn

from ..losses import balanced_bce_with_logits

__all__ = ["DBLoss", "balanced_bce_with_logits", "masked_dice_loss", "masked_l1_loss"]


def masked_dice_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """``1 - 2 |P ∩ G| / (|P| + |G|)`` over the masked pixels of the whole batch.

    Args:
        pred: (B, 1, H, W) values in [0, 1].
        target, mask: (B, 1, H, W).

    Returns:
        scalar in [0, 1].
    """
    pred = pred.float() * mask
    target = target * mask
    intersection = (pred * target).sum()
    return 1.0 - 2.0 * intersection / (pred.sum() + target.sum() + eps)


def masked_l1_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """Mean absolute error over the masked pixels; 0 when the mask is empty.

    Args:
        pred, target, mask: (B, 1, H, W).
    """
    return ((pred.float() - target).abs() * mask).sum() / (mask.sum() + eps)


class DBLoss(nn.Module):
    """The three DBNet loss terms, weighted as in MMOCR.

    Args:
        alpha: weight of the probability-map loss (``alpha`` in DBNet, 5).
        beta: weight of the threshold-map loss (``beta`` in DBNet, 10).
        negative_ratio: hard-negative mining ratio of the balanced BCE (3).
        eps: numerical guard of the normalisers.
    """

    def __init__(
        self,
        *,
        alpha: float = 5.0,
        beta: float = 10.0,
        negative_ratio: float = 3.0,
        eps: float = 1e-6,
    ):
        super().__init__()
        self.alpha = alpha
        self.beta = beta
        self.negative_ratio = negative_ratio
        self.eps = eps

    def forward(
        self, maps: Dict[str, torch.Tensor], targets: Dict[str, torch.Tensor]
    ) -> Dict[str, torch.Tensor]:
        """
        Args:
            maps: head outputs, each (B, 1, H, W): "prob_logits" (pre-sigmoid P), "thresh" (T),
                "binary" (B = sigmoid(k (P - T))).
            targets: each (B, 1, H, W) float: "shrink_map", "shrink_mask", "thresh_map",
                "thresh_mask".

        Returns:
            dict with scalar "loss_prob" (already times alpha), "loss_binary", "loss_thresh"
            (already times beta). All finite for a batch without text.
        """
        shrink_map, shrink_mask = targets["shrink_map"], targets["shrink_mask"]
        for name in ("shrink_map", "shrink_mask", "thresh_map", "thresh_mask"):
            value = targets[name]
            if value.shape != maps["prob_logits"].shape:
                raise ValueError(
                    f"db_loss.DBLoss: target '{name}' has shape {tuple(value.shape)}, "
                    f"the predicted maps {tuple(maps['prob_logits'].shape)}."
                )
        loss_prob = balanced_bce_with_logits(
            maps["prob_logits"], shrink_map, shrink_mask, self.negative_ratio, self.eps
        )
        loss_binary = masked_dice_loss(maps["binary"], shrink_map, shrink_mask, self.eps)
        loss_thresh = masked_l1_loss(
            maps["thresh"], targets["thresh_map"], targets["thresh_mask"], self.eps
        )
        return {
            "loss_prob": self.alpha * loss_prob,
            "loss_binary": loss_binary,
            "loss_thresh": self.beta * loss_thresh,
        }
