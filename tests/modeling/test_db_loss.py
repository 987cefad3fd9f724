"""DB losses on hand-computed cases; finiteness without text."""

import math

import pytest
import torch
import torch.nn.functional as F

from fasttcm.modeling.text_heads.db_loss import (
    DBLoss,
    balanced_bce_with_logits,
    masked_dice_loss,
    masked_l1_loss,
)


def _softplus(x):
    return math.log1p(math.exp(x))


def _as_map(values):
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 1, -1)


def test_balanced_bce_keeps_the_hardest_negatives():
    # One positive (logit 0: loss ln 2), nine negatives with logits 3, 2, 1, 0, -1, ... (loss
    # softplus(logit)).
    logits = _as_map([0.0, 3.0, 2.0, 1.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0])
    target = _as_map([1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    mask = torch.ones_like(target)
    expected = (
        math.log(2) + _softplus(3) + _softplus(2) + _softplus(1)
    ) / 4  # 3 negatives per positive
    assert balanced_bce_with_logits(logits, target, mask, 3.0).item() == pytest.approx(
        expected, rel=1e-5
    )

    # Masking out the hardest negative promotes the next one.
    mask[..., 1] = 0
    expected = (math.log(2) + _softplus(2) + _softplus(1) + _softplus(0)) / 4
    assert balanced_bce_with_logits(logits, target, mask, 3.0).item() == pytest.approx(
        expected, rel=1e-5
    )


def test_balanced_bce_uses_all_negatives_when_they_are_few():
    logits = _as_map([1.0, -1.0, 0.5])
    target = _as_map([1, 1, 0])
    expected = (_softplus(-1.0) + _softplus(1.0) + _softplus(0.5)) / 3
    loss = balanced_bce_with_logits(logits, target, torch.ones_like(target), 3.0)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_dice_and_l1_hand_cases():
    pred, gt = _as_map([1.0, 1.0, 0.0, 0.0]), _as_map([1, 0, 1, 0])
    assert masked_dice_loss(pred, gt, torch.ones_like(gt)).item() == pytest.approx(0.5, abs=1e-5)
    # Masking the false positive and the false negative leaves a perfect prediction.
    assert masked_dice_loss(pred, gt, _as_map([1, 0, 0, 1])).item() == pytest.approx(0.0, abs=1e-5)
    loss = masked_l1_loss(_as_map([0.5, 0.2, 0.9]), _as_map([0.3, 0.7, 0.1]), _as_map([1, 0, 1]))
    assert loss.item() == pytest.approx((0.2 + 0.8) / 2, rel=1e-5)


def _random_maps(shape, requires_grad=True):
    prob_logits = torch.randn(shape, requires_grad=requires_grad)
    thresh_logits = torch.randn(shape, requires_grad=requires_grad)
    prob, thresh = prob_logits.sigmoid(), thresh_logits.sigmoid()
    maps = {
        "prob_logits": prob_logits,
        "prob": prob,
        "thresh": thresh,
        "binary": torch.sigmoid(50 * (prob - thresh)),
    }
    return maps, (prob_logits, thresh_logits)


def test_db_loss_weights_its_terms():
    torch.manual_seed(0)
    shape = (2, 1, 8, 8)
    maps, _ = _random_maps(shape)
    shrink = (torch.rand(shape) > 0.7).float()
    targets = {
        "shrink_map": shrink,
        "shrink_mask": torch.ones(shape),
        "thresh_map": torch.rand(shape) * 0.4 + 0.3,
        "thresh_mask": (torch.rand(shape) > 0.5).float(),
    }
    losses = DBLoss(alpha=5.0, beta=10.0, negative_ratio=3.0)(maps, targets)
    assert set(losses) == {"loss_prob", "loss_binary", "loss_thresh"}
    bce = balanced_bce_with_logits(maps["prob_logits"], shrink, targets["shrink_mask"], 3.0)
    assert losses["loss_prob"].item() == pytest.approx(5.0 * bce.item(), rel=1e-6)
    assert losses["loss_binary"].item() == pytest.approx(
        masked_dice_loss(maps["binary"], shrink, targets["shrink_mask"]).item(), rel=1e-6
    )
    l1 = (maps["thresh"] - targets["thresh_map"]).abs()[targets["thresh_mask"] > 0].mean()
    assert losses["loss_thresh"].item() == pytest.approx(10.0 * l1.item(), rel=1e-5)
    # The prob term agrees with plain BCE when every negative is kept.
    ratio_all = DBLoss(negative_ratio=1e6)(maps, targets)["loss_prob"]
    plain = F.binary_cross_entropy(maps["prob"], shrink)
    assert ratio_all.item() == pytest.approx(5.0 * plain.item(), rel=1e-4)


def test_db_loss_is_finite_without_text_and_backpropagates():
    shape = (2, 1, 16, 16)
    maps, leaves = _random_maps(shape)
    targets = {
        "shrink_map": torch.zeros(shape),
        "shrink_mask": torch.ones(shape),
        "thresh_map": torch.full(shape, 0.3),
        "thresh_mask": torch.zeros(shape),
    }
    losses = DBLoss()(maps, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_prob"].item() == 0.0 and losses["loss_thresh"].item() == 0.0
    sum(losses.values()).backward()
    assert all(torch.isfinite(leaf.grad).all() for leaf in leaves)


def test_db_loss_rejects_mismatched_targets():
    maps, _ = _random_maps((1, 1, 8, 8))
    bad = {
        k: torch.zeros(1, 1, 8, 9)
        for k in ("shrink_map", "shrink_mask", "thresh_map", "thresh_mask")
    }
    with pytest.raises(ValueError, match="shrink_map"):
        DBLoss()(maps, bad)
