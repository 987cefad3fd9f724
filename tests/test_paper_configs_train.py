"""The paper-size text configs build their full model and run one training step.

``tests/test_configs.py`` merges and checks every shipped config; here each paper-reproduction text
detection and spotting config (IC15, Total-Text, CTW1500, TD500, SynthText pre-training; the IC15,
Total-Text and CTW1500 spotters) builds its paper-size model, with the official TCM-DBNet
parametrisation (FPNC neck, attention-pool grid of the training crop, official DB targets, losses
and post-processing), from random weights (``CLIP_WEIGHTS`` stays empty: nothing downloads), and
takes one optimizer step on a small synthetic image. Every loss must be finite, the FPNC neck and
the DB head must receive gradients and change, and the model must infer afterwards. The spotter
configs are marked ``slow`` (``make test-slow``): their detector is the detection configs' own.
"""

import numpy as np
import pytest
import torch

from detectron2.modeling import build_model
from detectron2.structures import Instances
from detectron2.utils.events import EventStorage

from fasttcm.data.mappers import DB_TARGET_IMPLEMENTATIONS, db_target_kwargs
from fasttcm.modeling.backbone import FastTCMFPNC
from tests.common import config_id, get_paper_config_files, load_config

PAPER_TEXT_CONFIGS = [
    p
    for p in get_paper_config_files()
    if config_id(p).startswith(("TextDetection/", "TextSpotting/")) and "_cpu" not in p
]
HEIGHT, WIDTH = 96, 128
WORD = np.array([[10, 20], [90, 22], [89, 50], [9, 48]], dtype=np.float32)


def _training_input(cfg):
    """One image with one word, its DB targets made as the config's mapper makes them."""
    make_targets = DB_TARGET_IMPLEMENTATIONS[cfg.INPUT.DB_TARGETS_IMPL]
    targets = make_targets([WORD], [False], HEIGHT, WIDTH, **db_target_kwargs(cfg))
    instances = Instances((HEIGHT, WIDTH))
    instances.gt_polygons = [WORD]
    instances.gt_texts = ["paper"]
    instances.gt_ignore = torch.tensor([False])
    image = torch.randint(0, 256, (3, HEIGHT, WIDTH), generator=torch.Generator().manual_seed(0))
    return {
        "file_name": "synthetic.jpg",
        "image": image.to(torch.uint8),
        "instances": instances,
        "db_targets": {k: torch.as_tensor(v) for k, v in targets.items()},
    }


def test_every_paper_text_config_is_listed():
    names = {config_id(p) for p in PAPER_TEXT_CONFIGS}
    for dataset in ("ic15", "totaltext", "ctw1500", "td500", "synthtext_pretrain"):
        assert f"TextDetection/fasttcm_cr50_fpn_dbnet_{dataset}.yaml" in names
    for dataset in ("ic15", "totaltext", "ctw1500"):
        assert f"TextSpotting/fasttcm_cr50_fpn_spotter_{dataset}.yaml" in names


@pytest.mark.parametrize(
    "config_file",
    [
        # the spotters add a CLIP4STR-B (ViT-B/16) to the same detector: about 30 s of CPU each
        pytest.param(p, marks=pytest.mark.slow) if "TextSpotting/" in p else p
        for p in PAPER_TEXT_CONFIGS
    ],
    ids=config_id,
)
def test_paper_config_builds_and_trains_one_step(config_file):
    cfg = load_config(config_file)
    assert cfg.MODEL.FASTTCM.CLIP_WEIGHTS == "" and cfg.MODEL.WEIGHTS == ""
    torch.manual_seed(0)
    model = build_model(cfg)
    assert isinstance(model.backbone, FastTCMFPNC)
    grid = cfg.MODEL.FASTTCM.ATTNPOOL_GRID
    assert grid == cfg.INPUT.TEXT_AUG.CROP_SIZE // 32  # the official learned table: crop / 32

    batch = [_training_input(cfg)]
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=1e-3)
    neck_before = model.backbone.lateral_convs[0].weight.detach().clone()
    model.train()
    with EventStorage():
        losses = model(batch)
    expected = {"loss_prob", "loss_binary", "loss_thresh"}
    if "Spotting" in config_file:
        expected |= {"loss_rec_visual", "loss_rec_cross_modal"}
    assert expected <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values()), losses
    sum(losses.values()).backward()
    assert model.backbone.smooth_convs[0].weight.grad.abs().sum() > 0
    assert model.text_head.prob_branch[0].weight.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(model.backbone.lateral_convs[0].weight, neck_before)

    model.eval()
    with torch.no_grad():
        (output,) = model([{"image": batch[0]["image"], "height": HEIGHT, "width": WIDTH}])
    assert output["instances"].image_size == (HEIGHT, WIDTH)
