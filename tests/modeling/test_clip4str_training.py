"""A few CLIP4STR training steps on synthetic word crops lower the loss (trainer's optimizer and
mapper)."""

import torch

from detectron2.modeling import build_model

from fasttcm.data.datasets.str_lmdb import load_str_lmdb
from fasttcm.data.str_mapper import STRDatasetMapper
from fasttcm.data.synthetic.word_crops import generate_word_crops
from fasttcm.engine.trainer import build_optimizer
from tests.common import QUICK_RECOGNIZER, load_config


def test_training_steps_on_synthetic_crops_lower_the_loss(tmp_path):
    cfg = load_config(
        QUICK_RECOGNIZER,
        "SOLVER.BASE_LR",
        3e-3,
        "SOLVER.RECOGNIZER.DECODER_LR_FACTOR",
        1.0,
        "MODEL.RECOGNIZER.DECODER_DROPOUT",
        0.0,
    )
    torch.manual_seed(0)
    model = build_model(cfg)
    optimizer = build_optimizer(cfg, model)
    assert all(
        g["betas"] == (0.9, 0.98) for g in optimizer.param_groups
    )  # the recognizer's own groups

    dicts = load_str_lmdb(str(generate_word_crops(tmp_path / "words", 12, seed=5)))
    mapper = STRDatasetMapper(cfg, is_train=False)  # no augmentation: a fixed batch to fit
    batch = [mapper(d) for d in dicts]
    assert all(b["image"].shape == (3, 32, 64) for b in batch)

    model.train()
    losses = []
    for _ in range(30):
        loss_dict = model(batch)
        loss = sum(loss_dict.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert set(loss_dict) == {"loss_visual", "loss_cross_modal"}
    assert sum(losses[-3:]) / 3 < 0.6 * losses[0], losses
