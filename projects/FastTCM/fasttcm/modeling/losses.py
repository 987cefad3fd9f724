"""Losses shared by several heads (DB head, instance-language matching)."""

import torch
import torch.nn.functional as F

__all__ = ["balanced_bce_with_logits"]


def balanced_bce_with_logits(
    logits: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    negative_ratio: float = 3.0,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Balanced BCE with online hard-negative mining (DBNet's BalanceBCE), pooled over the batch.

    Args:
        logits: pre-sigmoid logits, any shape.
        target: binary target of the same shape (1 = text kernel).
        mask: same shape, 1 where the loss applies.
        negative_ratio: at most this many negatives per positive enter the loss (the hardest).
        eps: added to the normaliser.

    Returns:
        scalar: (sum of positive losses + sum of the top-k negative losses)
        / (num positives + k + eps), with k = min(#negatives, floor(#positives * negative_ratio)).
        0 when there is no positive.
    """
    positive = target * mask
    negative = (1.0 - target) * mask
    num_positive = int(positive.sum().item())
    num_negative = min(int(negative.sum().item()), int(num_positive * negative_ratio))
    loss = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    positive_loss = (loss * positive).sum()
    negative_loss = torch.topk((loss * negative).flatten(), num_negative, sorted=False).values.sum()
    return (positive_loss + negative_loss) / (num_positive + num_negative + eps)
