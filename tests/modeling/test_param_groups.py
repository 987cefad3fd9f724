"""build_fasttcm_param_groups: frozen text encoder, image encoder lr factor, norm/bias decay."""

import torch

from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone

from fasttcm.solver import build_fasttcm_param_groups
from tests.common import QUICK_DETECTOR, load_config


def tiny_cfg(freeze_text: bool = True):
    """The detector quick schedule's backbone, narrower (FPN 16, text 16 x 1 layer), and lr factors
    and decays that the expected group settings below are computed from."""
    return load_config(
        QUICK_DETECTOR,
        "MODEL.BACKBONE.NAME",
        "build_fasttcm_cr50_fpn_backbone",
        "MODEL.FPN.OUT_CHANNELS",
        16,
        "MODEL.FASTTCM.EMBED_DIM",
        32,
        "MODEL.FASTTCM.TEXT_WIDTH",
        16,
        "MODEL.FASTTCM.TEXT_LAYERS",
        1,
        "MODEL.FASTTCM.DECODER_WIDTH",
        16,
        "MODEL.FASTTCM.DECODER_HEADS",
        2,
        "MODEL.FASTTCM.FREEZE_TEXT_ENCODER",
        freeze_text,
        "MODEL.FASTTCM.IMAGE_ENCODER_LR_FACTOR",
        0.1,
        "MODEL.FASTTCM.TEXT_ENCODER_LR_FACTOR",
        0.01,
        "SOLVER.BASE_LR",
        2.0,
        "SOLVER.WEIGHT_DECAY",
        1e-4,
        "SOLVER.WEIGHT_DECAY_NORM",
        0.0,
    )


class _Model(torch.nn.Module):
    """A meta-architecture stand-in: the backbone plus a head, like GeneralizedRCNN."""

    def __init__(self, cfg):
        super().__init__()
        self.backbone = build_backbone(cfg, ShapeSpec(channels=3))
        self.head = torch.nn.Conv2d(16, 1, 1)


def _settings(groups):
    """{parameter id: (lr, weight_decay)}, checking that each parameter appears once."""
    out = {}
    for group in groups:
        for param in group["params"]:
            assert id(param) not in out
            out[id(param)] = (group["lr"], group["weight_decay"])
    return out


def test_groups_follow_the_recipe():
    cfg = tiny_cfg()
    model = _Model(cfg)
    settings = _settings(build_fasttcm_param_groups(model, cfg))
    bottom_up = model.backbone.bottom_up
    named = dict(model.named_parameters())

    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert set(settings) == trainable
    assert not any(
        id(p) in settings for p in bottom_up.text_encoder.parameters()
    )  # frozen: excluded

    assert settings[id(bottom_up.visual.conv1.weight)] == (0.2, 1e-4)
    assert settings[id(bottom_up.visual.attnpool.q_proj.weight)] == (0.2, 1e-4)
    assert settings[id(bottom_up.visual.bn1.weight)] == (0.2, 0.0)  # norm: WEIGHT_DECAY_NORM
    assert settings[id(bottom_up.prompt_learner.contexts)] == (2.0, 1e-4)
    assert settings[id(bottom_up.language_prompt_generator.meta_query)] == (2.0, 1e-4)
    assert settings[id(bottom_up.language_prompt_generator.mlp[0].weight)] == (
        2.0,
        0.0,
    )  # LayerNorm
    assert settings[id(bottom_up.visual_prompt_generator.gamma)] == (2.0, 1e-4)
    assert settings[id(named["backbone.fpn_lateral5.weight"])] == (2.0, 1e-4)
    assert settings[id(model.head.bias)] == (2.0, 1e-4)
    image_ids = {id(p) for p in bottom_up.visual.parameters()}
    assert all(lr == 0.2 for pid, (lr, _) in settings.items() if pid in image_ids)
    assert all(lr == 2.0 for pid, (lr, _) in settings.items() if pid not in image_ids)


def test_bias_overrides_and_unfrozen_text_encoder():
    cfg = tiny_cfg(freeze_text=False)
    cfg.SOLVER.BIAS_LR_FACTOR = 2.0
    cfg.SOLVER.WEIGHT_DECAY_BIAS = 0.0
    model = _Model(cfg)
    settings = _settings(build_fasttcm_param_groups(model, cfg))
    bottom_up = model.backbone.bottom_up
    assert settings[id(bottom_up.text_encoder.text_projection)] == (0.02, 1e-4)
    assert settings[id(bottom_up.text_encoder.ln_final.weight)] == (0.02, 0.0)
    assert settings[id(bottom_up.visual.attnpool.c_proj.bias)] == (0.4, 0.0)
    assert settings[id(model.head.bias)] == (4.0, 0.0)


def test_optimizer_step_leaves_the_text_encoder_untouched_and_moves_the_prompts():
    cfg = tiny_cfg()
    model = _Model(cfg)
    optimizer = torch.optim.AdamW(build_fasttcm_param_groups(model, cfg), lr=cfg.SOLVER.BASE_LR)
    text_before = {
        k: v.clone() for k, v in model.backbone.bottom_up.text_encoder.state_dict().items()
    }
    contexts_before = model.backbone.bottom_up.prompt_learner.contexts.detach().clone()
    features, aux = model.backbone.forward_with_aux(torch.randn(2, 3, 64, 64))
    (model.head(features["p2"]).mean() + aux["logits"].mean()).backward()
    optimizer.step()
    for key, value in model.backbone.bottom_up.text_encoder.state_dict().items():
        assert torch.equal(value, text_before[key]), key
    assert not torch.equal(model.backbone.bottom_up.prompt_learner.contexts, contexts_before)


def test_trainable_text_encoder_keeps_its_token_table_frozen_by_default():
    """FREEZE_TEXT_ENCODER False trains the transformer but not the (vocab, width) token table,
    unless FREEZE_TOKEN_EMBEDDING False asks for it."""
    cfg = tiny_cfg(freeze_text=False)
    model = _Model(cfg)
    text = model.backbone.bottom_up.text_encoder
    ids = {id(p) for g in build_fasttcm_param_groups(model, cfg) for p in g["params"]}
    assert id(text.token_embedding.weight) not in ids
    assert id(text.transformer.resblocks[0].attn.in_proj_weight) in ids
    table_before = text.token_embedding.weight.detach().clone()
    features, aux = model.backbone.forward_with_aux(torch.randn(2, 3, 64, 64))
    (model.head(features["p2"]).mean() + aux["logits"].mean()).backward()
    assert text.token_embedding.weight.grad is None
    assert text.transformer.resblocks[0].attn.in_proj_weight.grad is not None
    assert torch.equal(text.token_embedding.weight, table_before)

    cfg.MODEL.FASTTCM.FREEZE_TOKEN_EMBEDDING = False
    model = _Model(cfg)
    ids = {id(p) for g in build_fasttcm_param_groups(model, cfg) for p in g["params"]}
    assert id(model.backbone.bottom_up.text_encoder.token_embedding.weight) in ids
