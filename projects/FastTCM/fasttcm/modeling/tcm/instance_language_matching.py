"""Instance-language matching (ILM): cosine score map and its auxiliary losses
(docs/model.md, ILM)."""

import torch
import torch.nn.functional as F

from ..losses import balanced_bce_with_logits

__all__ = ["score_map", "balanced_bce_loss", "per_class_bce_loss"]


def score_map(dense_embedding: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every location of I-hat with every text embedding.

    Args:
        dense_embedding: (B, D, h, w) prompted embedding map I-hat.
        text_embeddings: (B or 1, K, D) text embeddings t.

    Returns:
        S: (B, K, h, w), raw cosine similarities in [-1, 1] (not divided by tau).
    """
    visual = F.normalize(dense_embedding, dim=1)
    text = F.normalize(text_embeddings, dim=-1).expand(visual.shape[0], -1, -1)
    return torch.einsum("bchw,bkc->bkhw", visual, text)


def _resize_to(logits: torch.Tensor, size) -> torch.Tensor:
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


def balanced_bce_loss(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, **bce_options
) -> torch.Tensor:
    """Balanced binary cross-entropy with online hard-negative mining (DBNet's BalanceBCE).

    All positives count; among the negatives only the ``min(#neg, negative_ratio * #pos)`` with the
    largest loss do, pooled over the whole batch. With no positives no negative is kept either and
    the loss is exactly 0 (still connected to the graph).

    Args:
        logits: (B, 1, h, w) or (B, h, w) logits S / tau; bilinearly upsampled (align_corners=False)
            to the target size when it differs (stride 32 -> padded input size).
        target: (B, H, W) binary target (the shrunk text mask, 1 inside text kernels).
        mask: (B, H, W) binary weight (0 on ignored "###" regions and padding).
        bce_options: ``negative_ratio``, negatives kept per positive (3), and ``eps``, added to
            the denominator, of :func:`~fasttcm.modeling.losses.balanced_bce_with_logits`.

    Returns:
        Scalar loss = (sum of positive losses + sum of the hardest negative losses) / (#pos + #neg).
    """
    if logits.dim() == 3:
        logits = logits[:, None]
    if logits.dim() != 4 or logits.shape[1] != 1:
        raise ValueError(
            f"balanced_bce_loss expects logits of shape (B, 1, h, w), got {tuple(logits.shape)}"
        )
    if target.shape != mask.shape or target.dim() != 3 or target.shape[0] != logits.shape[0]:
        raise ValueError(
            f"balanced_bce_loss: target {tuple(target.shape)} and mask {tuple(mask.shape)} "
            "must both be (B, H, W) "
            f"with B = {logits.shape[0]}"
        )
    logits = _resize_to(logits, target.shape[-2:])[:, 0]
    return balanced_bce_with_logits(logits, target.to(logits.dtype), mask, **bce_options)


def per_class_bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean per-class sigmoid BCE of the score logits against per-class masks (oriented detection).

    Args:
        logits: (B, K, h, w) logits S / tau; bilinearly upsampled to the target size when it
            differs.
        targets: (B, K, H, W) binary masks, channel k = boxes of class k rasterized in input pixels.

    Returns:
        Scalar mean BCE over all B*K*H*W elements (finite for all-zero targets).
    """
    if logits.dim() != 4 or targets.dim() != 4 or logits.shape[:2] != targets.shape[:2]:
        raise ValueError(
            f"per_class_bce_loss expects logits (B, K, h, w) and targets (B, K, H, W), got "
            f"{tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    logits = _resize_to(logits, targets.shape[-2:])
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
