"""DBNet losses (MMOCR ``DBLoss(alpha=5, beta=10, bbce_loss=True)``, as TCM-DBNet trains).

``L = alpha * L_prob + L_binary + beta * L_thresh`` with

- ``L_prob``: balanced binary cross-entropy on the probability map P against the shrunk text
  kernels, with online hard-negative mining (at most ``negative_ratio`` negatives per positive,
  the hardest ones), inside ``shrink_mask``. Two forms (``prob_loss``):

  * ``"bce"`` (official): BCE of the sigmoid output P itself (``F.binary_cross_entropy``, whose
    log is clamped at -100). Where the sigmoid saturates in float32 (|logit| above about 17 for a
    false positive, 88 for a false negative) the loss stops growing and its gradient vanishes;
  * ``"bce_logits"``: BCE with logits (exact everywhere, gradient never vanishes). The two agree
    to float32 rounding as long as the sigmoid does not saturate.
- ``L_binary``: dice loss on the approximate binary map B = sigmoid(k (P - T)) against the same
  kernels, inside ``shrink_mask``;
- ``L_thresh``: L1 between the threshold map T and its target inside ``thresh_mask``.

All counts and sums run over the whole batch, as in MMOCR: ``#pos = int(sum(kernel * mask))``,
``#neg = min(int(sum((1 - kernel) * mask)), int(#pos * ratio))``, ``L_prob = (sum of positive
losses + sum of the #neg largest negative losses) / (#pos + #neg + eps)``; dice
``1 - 2 sum(B G) / (sum(B) + sum(G) + eps)`` over the masked pixels; L1 ``sum(|T - G_t| M_t) /
(sum(M_t) + eps)``; ``eps`` = 1e-6.
"""

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import balanced_bce_with_logits

__all__ = [
    "DBLoss",
    "PROB_LOSSES",
    "balanced_bce_on_probabilities",
    "balanced_bce_with_logits",
    "masked_dice_loss",
    "masked_l1_loss",
]

PROB_LOSSES = ("bce", "bce_logits")


def balanced_bce_on_probabilities(
    prob: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    negative_ratio: float = 3.0,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Official ``DBLoss.balance_bce_loss``: balanced BCE with hard-negative mining on
    probabilities, pooled over the batch.

    Args:
        prob: probabilities in [0, 1], any shape (the sigmoid output P).
        target: binary target of the same shape (1 = text kernel).
        mask: same shape, 1 where the loss applies.
        negative_ratio: at most this many negatives per positive enter the loss (the hardest).
        eps: added to the normaliser.

    Returns:
        scalar ``(sum of positive losses + sum of the k largest negative losses) /
        (#pos + k + eps)``, k = min(#negatives, int(#pos * negative_ratio)), with the per-pixel
        loss ``-(y log p + (1 - y) log(1 - p))``, each log clamped at -100; 0 without positives.
    """
    prob = prob.float()
    target = target.float()
    positive = target * mask
    negative = (1.0 - target) * mask
    num_positive = int(positive.float().sum())
    num_negative = min(int(negative.float().sum()), int(num_positive * negative_ratio))
    # binary_cross_entropy refuses to run under autocast; the official head forces fp32 here too.
    with torch.autocast(device_type=prob.device.type, enabled=False):
        loss = F.binary_cross_entropy(prob, target, reduction="none")
    positive_loss = (loss * positive).sum()
    negative_loss = torch.topk((loss * negative).flatten(), num_negative, sorted=False).values.sum()
    return (positive_loss + negative_loss) / (num_positive + num_negative + eps)


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
        prob_loss: "bce" (official: BCE of the probabilities, ``maps["prob"]``) or "bce_logits"
            (BCE with logits, ``maps["prob_logits"]``); see the module docstring.
    """

    def __init__(
        self,
        *,
        alpha: float = 5.0,
        beta: float = 10.0,
        negative_ratio: float = 3.0,
        eps: float = 1e-6,
        prob_loss: str = "bce",
    ):
        super().__init__()
        if prob_loss not in PROB_LOSSES:
            raise ValueError(
                f"db_loss.DBLoss: prob_loss (MODEL.DB_HEAD.PROB_LOSS) must be one of "
                f"{PROB_LOSSES}, got {prob_loss!r}."
            )
        self.alpha = alpha
        self.beta = beta
        self.negative_ratio = negative_ratio
        self.eps = eps
        self.prob_loss = prob_loss

    def forward(
        self, maps: Dict[str, torch.Tensor], targets: Dict[str, torch.Tensor]
    ) -> Dict[str, torch.Tensor]:
        """
        Args:
            maps: head outputs, each (B, 1, H, W): "prob" (P) for "bce", "prob_logits"
                (pre-sigmoid P) for "bce_logits", "thresh" (T), "binary" (B = sigmoid(k (P - T))).
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
        if self.prob_loss == "bce":
            loss_prob = balanced_bce_on_probabilities(
                maps["prob"], shrink_map, shrink_mask, self.negative_ratio, self.eps
            )
        else:
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
