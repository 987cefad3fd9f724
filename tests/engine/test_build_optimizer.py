"""build_optimizer: multi-tensor (foreach) updates equal torch's per-parameter ones; full-model
gradient clipping scales all gradients by one factor."""

import copy

import pytest
import torch

from detectron2.config import get_cfg

from fasttcm import add_fasttcm_config
from fasttcm.engine.trainer import build_optimizer


def _cfg(name: str):
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.SOLVER.OPTIMIZER = name
    cfg.SOLVER.BASE_LR = 0.01
    cfg.SOLVER.WEIGHT_DECAY = 0.05
    cfg.SOLVER.WEIGHT_DECAY_NORM = 0.05
    cfg.SOLVER.MOMENTUM = 0.9
    return cfg


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def _train(model, optimizer, steps=4):
    torch.manual_seed(1)
    for _ in range(steps):
        x = torch.randn(8, 6) * 10.0
        loss = model(x).pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


_REFERENCE = {
    "SGD": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, weight_decay=0.05, foreach=False),
    "ADAM": lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.05, foreach=False),
    "ADAMW": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.05, foreach=False),
}


@pytest.mark.parametrize("name", sorted(_REFERENCE))
def test_foreach_update_equals_per_parameter_update(name):
    model = _model()
    reference = copy.deepcopy(model)
    initial = [p.detach().clone() for p in model.parameters()]
    optimizer = build_optimizer(_cfg(name), model)
    assert all(group["foreach"] for group in optimizer.param_groups)
    _train(model, optimizer)
    _train(reference, _REFERENCE[name](reference.parameters()))
    for got, want, start in zip(model.parameters(), reference.parameters(), initial):
        assert (got - start).abs().max() > 1e-4  # the steps moved every parameter
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


def test_full_model_clipping_scales_all_gradients_together():
    cfg = _cfg("SGD")
    cfg.SOLVER.MOMENTUM = 0.0
    cfg.SOLVER.WEIGHT_DECAY = cfg.SOLVER.WEIGHT_DECAY_NORM = 0.0
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "full_model"
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 0.5
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = build_optimizer(cfg, model)
    loss = model(torch.randn(8, 6) * 10.0).pow(2).sum()
    loss.backward()
    grads = [p.grad.detach().clone() for p in model.parameters()]
    total = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    assert total > 0.5  # the test is only meaningful when clipping happens
    optimizer.step()
    scale = 0.5 / total
    for p, p0, g in zip(model.parameters(), before, grads):
        # plain SGD: p = p0 - lr * g * scale, one scale for every parameter
        torch.testing.assert_close(p.detach(), p0 - 0.01 * g * scale, rtol=1e-5, atol=1e-7)
