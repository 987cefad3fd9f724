"""DB losses against the official formulas (MMOCR 0.4 DBLoss, TCM's IdentityHead), written out in
numpy here on tiny hand-built maps."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec

from fasttcm import add_fasttcm_config
from fasttcm.modeling.losses import balanced_bce_with_logits
from fasttcm.modeling.tcm import balanced_bce_loss
from fasttcm.modeling.text_heads.db_head import FastTCMDBHead
from fasttcm.modeling.text_heads.db_loss import DBLoss, balanced_bce_on_probabilities

EPS = 1e-6


def _np_balanced_bce(prob, gt, mask, ratio=3.0, eps=EPS):
    """Official DBLoss.balance_bce_loss on probabilities (logs clamped at -100)."""
    prob, gt, mask = (np.asarray(a, dtype=np.float64) for a in (prob, gt, mask))
    positive, negative = gt * mask, (1 - gt) * mask
    n_pos = int(positive.sum())
    n_neg = min(int(negative.sum()), int(n_pos * ratio))
    with np.errstate(divide="ignore"):
        log_p, log_q = np.maximum(np.log(prob), -100), np.maximum(np.log(1 - prob), -100)
    loss = -(gt * log_p + (1 - gt) * log_q)
    hardest = np.sort((loss * negative).ravel())[::-1][:n_neg]
    return ((loss * positive).sum() + hardest.sum()) / (n_pos + n_neg + eps)


def _np_dice(pred, gt, mask, eps=EPS):
    pred, gt = np.asarray(pred) * mask, np.asarray(gt) * mask
    return 1 - 2 * (pred * gt).sum() / (pred.sum() + gt.sum() + eps)


def _np_l1(pred, gt, mask, eps=EPS):
    return np.abs((np.asarray(pred) - gt) * mask).sum() / (np.sum(mask) + eps)


def _t(values):
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 2, 4)


# Two text pixels, six background pixels (one masked out as '###').
PROB = [[0.9, 0.6, 0.2, 0.7], [0.1, 0.4, 0.05, 0.3]]
KERNEL = [[1, 1, 0, 0], [0, 0, 0, 0]]
SHRINK_MASK = [[1, 1, 1, 0], [1, 1, 1, 1]]
THRESH = [[0.35, 0.5, 0.6, 0.4], [0.3, 0.45, 0.3, 0.65]]
THRESH_GT = [[0.3, 0.55, 0.7, 0.3], [0.3, 0.6, 0.3, 0.7]]
THRESH_MASK = [[0, 1, 1, 0], [0, 1, 0, 1]]


def _maps_and_targets():
    prob = _t(PROB).requires_grad_(True)
    thresh = _t(THRESH)
    maps = {
        "prob": prob,
        "prob_logits": torch.logit(prob.detach()),
        "thresh": thresh,
        "binary": torch.sigmoid(50 * (prob - thresh)),
    }
    targets = {
        "shrink_map": _t(KERNEL),
        "shrink_mask": _t(SHRINK_MASK),
        "thresh_map": _t(THRESH_GT),
        "thresh_mask": _t(THRESH_MASK),
    }
    return maps, targets


def test_balanced_bce_known_value():
    # Positives: -ln 0.9 - ln 0.6; 2 x 3 = 6 negatives allowed, 5 available (0.7 is masked):
    # all of -ln(1 - p) for p in 0.2, 0.1, 0.4, 0.05, 0.3. Normaliser 2 + 5 + eps.
    expected = (
        -np.log(0.9) - np.log(0.6) - sum(np.log(1 - p) for p in (0.2, 0.1, 0.4, 0.05, 0.3))
    ) / (7 + EPS)
    assert _np_balanced_bce(PROB, KERNEL, SHRINK_MASK) == pytest.approx(expected, rel=1e-12)
    got = balanced_bce_on_probabilities(_t(PROB), _t(KERNEL), _t(SHRINK_MASK), 3.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # Ratio 1: only the two hardest negatives (0.4 and 0.3) count.
    expected = (-np.log(0.9) - np.log(0.6) - np.log(0.6) - np.log(0.7)) / (4 + EPS)
    got = balanced_bce_on_probabilities(_t(PROB), _t(KERNEL), _t(SHRINK_MASK), 1.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_db_loss_equals_the_official_formulas():
    maps, targets = _maps_and_targets()
    losses = DBLoss(alpha=5.0, beta=10.0)(maps, targets)
    binary = 1.0 / (1.0 + np.exp(-50 * (np.array(PROB) - np.array(THRESH))))
    assert losses["loss_prob"].item() == pytest.approx(
        5 * _np_balanced_bce(PROB, KERNEL, SHRINK_MASK), rel=1e-6
    )
    assert losses["loss_binary"].item() == pytest.approx(
        _np_dice(binary, KERNEL, SHRINK_MASK), rel=1e-5
    )
    # |0.5 - 0.55| + |0.6 - 0.7| + |0.45 - 0.6| + |0.65 - 0.7| = 0.35 over 4 mask pixels.
    assert _np_l1(THRESH, THRESH_GT, THRESH_MASK) == pytest.approx(0.35 / (4 + EPS))
    assert losses["loss_thresh"].item() == pytest.approx(10 * 0.35 / (4 + EPS), rel=1e-5)


def test_probability_and_logit_forms_agree_until_the_sigmoid_saturates():
    maps, targets = _maps_and_targets()
    official = DBLoss(prob_loss="bce")(maps, targets)["loss_prob"]
    with_logits = DBLoss(prob_loss="bce_logits")(maps, targets)["loss_prob"]
    assert official.item() == pytest.approx(with_logits.item(), rel=1e-5)

    # A false positive at logit 30: float32 sigmoid is exactly 1, log(1 - p) is clamped at -100
    # in the official form and its gradient vanishes; the logit form gives 30 and gradient 1.
    logits = torch.tensor([[[[3.0, 30.0]]]], requires_grad=True)
    gt, mask = torch.tensor([[[[1.0, 0.0]]]]), torch.ones(1, 1, 1, 2)
    prob = torch.sigmoid(logits)
    assert prob[0, 0, 0, 1].item() == 1.0
    loss = balanced_bce_on_probabilities(prob, gt, mask, 3.0)
    expected = _np_balanced_bce([[1 / (1 + np.exp(-3.0)), 1.0]], [[1, 0]], [[1, 1]])
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx((np.log1p(np.exp(-3.0)) + 100) / (2 + EPS), rel=1e-9)
    loss.backward()
    assert logits.grad[0, 0, 0, 1].item() == 0.0
    logits.grad = None
    balanced_bce_with_logits(logits, gt, mask, 3.0).backward()
    assert logits.grad[0, 0, 0, 1].item() == pytest.approx(0.5, rel=1e-4)  # sigmoid(30) / 2


def test_prob_loss_option_and_config_wiring():
    with pytest.raises(ValueError, match="MODEL.DB_HEAD.PROB_LOSS"):
        DBLoss(prob_loss="dice")
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    assert cfg.MODEL.DB_HEAD.PROB_LOSS == "bce"
    cfg.MODEL.DB_HEAD.PROB_LOSS = "bce_logits"
    cfg.MODEL.DB_HEAD.CONV_DIMS = 16
    shapes = {f"p{i}": ShapeSpec(channels=8, stride=2**i) for i in (2, 3, 4, 5)}
    head = FastTCMDBHead(cfg, shapes)
    assert head.loss.prob_loss == "bce_logits"


def _np_identity_loss_official(logits_up, gt, mask, ratio=3.0, eps=EPS):
    """TCM's IdentityHead.balance_bce_loss, broadcasting included: the loss has shape
    (N, 1, H, W) and the masks (N, H, W), so their product is (N, N, H, W)."""
    positive, negative = gt * mask, (1 - gt) * mask
    n_pos = int(positive.sum())
    n_neg = min(int(negative.sum()), int(n_pos * ratio))
    x, y = logits_up, gt[:, None]
    loss = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))  # BCE with logits
    pos_loss = loss * positive  # (N, 1, H, W) * (N, H, W) -> (N, N, H, W)
    neg_loss = np.sort((loss * negative).ravel())[::-1][:n_neg]
    return (pos_loss.sum() + neg_loss.sum()) / (n_pos + n_neg + eps)


def _identity_case(batch):
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(batch, 1, 2, 2, generator=g) * 3
    up = F.interpolate(logits, size=(64, 64), mode="bilinear", align_corners=False)
    gt = torch.zeros(batch, 64, 64)
    gt[:, 10:30, 12:50] = 1.0
    if batch > 1:
        gt[1] = 0.0
        gt[1, 40:60, 5:25] = 1.0
    mask = torch.ones(batch, 64, 64)
    mask[:, 0:5, :] = 0.0
    return logits, up, gt, mask


def test_identity_loss_equals_the_official_one_per_image():
    logits, up, gt, mask = _identity_case(1)
    official = _np_identity_loss_official(up.double().numpy(), gt.double().numpy(), mask.numpy())
    ours = balanced_bce_loss(logits, gt, mask, negative_ratio=3.0)
    assert ours.item() == pytest.approx(official, rel=1e-5)


def test_identity_loss_does_not_mix_the_images_of_a_batch():
    # With N > 1 the official broadcast weighs image i's loss with image j's masks for every
    # (i, j). The project pools the batch pixel by pixel (what the official code does for N = 1).
    logits, up, gt, mask = _identity_case(2)
    x, y, m = up.double().numpy(), gt.double().numpy(), mask.double().numpy()
    ours = balanced_bce_loss(logits, gt, mask, negative_ratio=3.0).item()
    loss = np.maximum(x[:, 0], 0) - x[:, 0] * y + np.log1p(np.exp(-np.abs(x[:, 0])))
    n_pos = int((y * m).sum())
    n_neg = min(int(((1 - y) * m).sum()), 3 * n_pos)
    pooled = ((loss * y * m).sum() + np.sort((loss * (1 - y) * m).ravel())[::-1][:n_neg].sum()) / (
        n_pos + n_neg + EPS
    )
    assert ours == pytest.approx(pooled, rel=1e-5)
    assert _np_identity_loss_official(x, y, m) != pytest.approx(pooled, rel=1e-2)
