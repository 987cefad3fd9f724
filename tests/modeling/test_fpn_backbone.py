"""build_fasttcm_cr50_fpn_backbone: registry build, shapes, padding, training, eval cache,
weights."""

import logging

import pytest
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone
from detectron2.structures import ImageList

from fasttcm import add_fasttcm_config
from fasttcm.modeling.tcm import balanced_bce_loss
from fasttcm.solver import build_fasttcm_param_groups
from tests.common import QUICK_DETECTOR, load_config


def tiny_cfg(mode: str = "fasttcm"):
    """The detector quick schedule's backbone on FPN (width 32) with 2-layer, 2-head decoders."""
    return load_config(
        QUICK_DETECTOR,
        "MODEL.BACKBONE.NAME",
        "build_fasttcm_cr50_fpn_backbone",
        "MODEL.FASTTCM.MODE",
        mode,
        "MODEL.FASTTCM.DECODER_HEADS",
        2,
        "MODEL.FASTTCM.DECODER_LAYERS",
        2,
        "SOLVER.BASE_LR",
        0.1,
    )


def build(cfg):
    torch.manual_seed(0)
    return build_backbone(cfg, ShapeSpec(channels=3))


STRIDES = {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}


@pytest.mark.parametrize("mode", ["fasttcm", "tcm", "none"])
def test_pyramid_shapes_match_output_shape(mode):
    backbone = build(tiny_cfg(mode)).eval()
    assert backbone.size_divisibility == 32
    with torch.no_grad():
        features, aux = backbone.forward_with_aux(torch.randn(2, 3, 64, 96))
        plain = backbone(torch.randn(2, 3, 64, 96))
    shapes = backbone.output_shape()
    assert list(features) == list(plain) == list(shapes) == list(STRIDES)
    for name, feature in features.items():
        assert shapes[name].stride == STRIDES[name]
        assert feature.shape == (
            2,
            shapes[name].channels,
            -(-64 // STRIDES[name]),
            -(-96 // STRIDES[name]),
        )
        assert shapes[name].channels == 32
    bottom_up = backbone.bottom_up.output_shape()
    num_prompts = 0 if mode == "none" else 1
    assert {k: v.channels for k, v in bottom_up.items()} == {
        "res2": 32,
        "res3": 64,
        "res4": 128,
        "res5": 256 + num_prompts,
    }
    if mode == "none":
        assert aux == {}
    else:
        assert aux["score_map"].shape == (2, 1, 2, 3)
        assert aux["score_map"].abs().max() <= 1.0
        torch.testing.assert_close(aux["logits"], aux["score_map"] / 0.07)
        assert aux["text_embeddings"].shape == (2, 1, 64)


def test_score_map_is_the_last_res5_channel():
    backbone = build(tiny_cfg()).eval().bottom_up
    with torch.no_grad():
        features, aux = backbone.forward_with_aux(torch.randn(1, 3, 64, 64))
    assert features["res5"].shape == (1, 257, 2, 2)
    assert torch.equal(features["res5"][:, 256:], aux["score_map"])


def test_unpadded_input_is_an_error_and_imagelist_pads():
    backbone = build(tiny_cfg()).eval()
    images = [torch.randn(3, 50, 70), torch.randn(3, 64, 40)]
    with pytest.raises(ValueError, match=r"\(50, 70\) is not a multiple of 32.*ImageList"):
        backbone(images[0][None])
    batch = ImageList.from_tensors(images, size_divisibility=backbone.size_divisibility)
    assert batch.tensor.shape == (2, 3, 64, 96)
    with torch.no_grad():
        features = backbone(batch.tensor)
    assert features["p2"].shape == (2, 32, 16, 24) and features["p6"].shape == (2, 32, 1, 2)


def test_clip_compatible_parameter_names():
    names = set(build(tiny_cfg()).state_dict())
    for name in (
        "bottom_up.visual.attnpool.q_proj.weight",
        "bottom_up.visual.layer4.0.downsample.0.weight",
        "bottom_up.text_encoder.token_embedding.weight",
        "bottom_up.text_encoder.text_projection",
        "bottom_up.text_encoder.transformer.resblocks.1.attn.in_proj_weight",
        "bottom_up.prompt_learner.contexts",
        "bottom_up.language_prompt_generator.meta_query",
        "bottom_up.bimodal_similarity_matching.projection.weight",
        "fpn_lateral5.weight",
    ):
        assert name in names, name


@pytest.mark.parametrize("mode", ["tcm", "fasttcm"])
def test_train_step_reaches_prompts_but_not_the_text_encoder(mode):
    cfg = tiny_cfg(mode)
    backbone = build(cfg).train()
    bottom_up = backbone.bottom_up
    optimizer = torch.optim.SGD(build_fasttcm_param_groups(backbone, cfg), lr=0.1)
    target = torch.zeros(2, 64, 64)
    target[:, 8:24, 8:40] = 1
    features, aux = backbone.forward_with_aux(torch.randn(2, 3, 64, 64))
    loss = sum(f.mean() for f in features.values()) + balanced_bce_loss(
        aux["logits"], target, torch.ones_like(target)
    )
    assert torch.isfinite(loss)
    loss.backward()
    # Every trainable parameter is used (DistributedDataParallel needs no find_unused_parameters).
    unused = [n for n, p in backbone.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []

    learnable = [
        bottom_up.prompt_learner.contexts,
        bottom_up.visual_prompt_generator.gamma,
        bottom_up.text_context_decoder.gamma,
        bottom_up.visual.attnpool.q_proj.weight,
    ]
    learnable += [p for p in bottom_up.language_prompt_generator.mlp.parameters()]
    if mode == "fasttcm":
        learnable += [
            bottom_up.language_prompt_generator.meta_query,
            bottom_up.bimodal_similarity_matching.projection.weight,
        ]
    for param in learnable:
        assert param.grad is not None and param.grad.abs().sum() > 0
    for param in bottom_up.text_encoder.parameters():
        assert not param.requires_grad and param.grad is None
    before = bottom_up.prompt_learner.contexts.detach().clone()
    optimizer.step()
    assert not torch.equal(before, bottom_up.prompt_learner.contexts)


def test_mode_none_is_a_plain_clip_resnet_with_fpn():
    backbone = build(tiny_cfg("none")).train()
    assert backbone.bottom_up.visual.attnpool is None and backbone.bottom_up.text_encoder is None
    features, aux = backbone.forward_with_aux(torch.randn(2, 3, 64, 64))
    assert aux == {}
    sum(f.mean() for f in features.values()).backward()
    assert all(p.grad is not None for p in backbone.parameters())


def _count_text_runs(backbone):
    calls = []
    backbone.bottom_up.text_encoder.transformer.register_forward_hook(lambda *args: calls.append(1))
    return calls


def test_fasttcm_eval_runs_the_text_transformer_once_until_parameters_change():
    cfg = tiny_cfg("fasttcm")
    backbone = build(cfg).eval()
    calls = _count_text_runs(backbone)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        first = backbone.forward_with_aux(images)[1]
        for _ in range(2):
            again = backbone.forward_with_aux(images)[1]
            torch.testing.assert_close(again["score_map"], first["score_map"])
        backbone.forward_with_aux(torch.randn(1, 3, 96, 64))
    assert len(calls) == 1

    backbone.train()
    optimizer = torch.optim.SGD(build_fasttcm_param_groups(backbone, cfg), lr=0.1)
    features, aux = backbone.forward_with_aux(images)
    (aux["logits"].square().mean() + features["p2"].mean()).backward()
    optimizer.step()
    assert len(calls) == 2  # training never uses the cache

    backbone.eval()
    with torch.no_grad():
        after = backbone.forward_with_aux(images)[1]
        backbone.forward_with_aux(images)
    assert len(calls) == 3  # recomputed once after the step, then cached again
    assert not torch.allclose(after["text_embeddings"], first["text_embeddings"])

    with (
        torch.no_grad()
    ):  # a parameter change in eval mode (e.g. loading a checkpoint) invalidates it too
        backbone.bottom_up.prompt_learner.contexts.add_(1.0)
        backbone.forward_with_aux(images)
    assert len(calls) == 4


def test_tcm_eval_runs_the_text_transformer_per_batch():
    backbone = build(tiny_cfg("tcm")).eval()
    calls = _count_text_runs(backbone)
    with torch.no_grad():
        for _ in range(3):
            backbone(torch.randn(2, 3, 64, 64))
    assert len(calls) == 3


@pytest.mark.parametrize("mode", ["fasttcm", "tcm"])
def test_without_language_prompt_no_cue_reaches_the_text_encoder(mode):
    """MODEL.FASTTCM.LANGUAGE_PROMPT False (official DOTA code): no LPG, the prompts alone
    make t."""
    cfg = tiny_cfg(mode)
    cfg.MODEL.FASTTCM.LANGUAGE_PROMPT = False
    cfg.MODEL.FASTTCM.CLASS_PROMPTS = ["plane", "small vehicle"]
    backbone = build(cfg).train()
    bottom_up = backbone.bottom_up
    assert bottom_up.mode == mode and bottom_up.language_prompt_generator is None
    assert not any("language_prompt_generator" in name for name, _ in backbone.named_parameters())
    features, aux = backbone.forward_with_aux(torch.randn(2, 3, 64, 64))
    assert aux["text_embeddings"].shape == (2, 2, 64)  # (B, K, D)
    (aux["logits"].square().mean() + sum(f.mean() for f in features.values())).backward()
    unused = [n for n, p in backbone.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []
    assert bottom_up.prompt_learner.contexts.grad.abs().sum() > 0

    # the text embedding equals the text encoder run on [SOS, ctx, prompt, EOS] with no cue
    token_ids, contexts = bottom_up.prompt_learner()
    with torch.no_grad():
        expected = bottom_up.text_encoder(token_ids, contexts, None)
        if mode == "fasttcm":
            global_embedding = torch.randn(2, 64)
            got = bottom_up.text_embeddings(global_embedding)
            expected = bottom_up.bimodal_similarity_matching(expected, global_embedding)
        else:
            got = bottom_up.text_embeddings(torch.randn(2, 64))
            expected = expected.expand(2, -1, -1)
    torch.testing.assert_close(got, expected)

    # image-independent in both modes, so computed once in eval mode
    backbone.eval()
    calls = _count_text_runs(backbone)
    with torch.no_grad():
        for _ in range(3):
            backbone(torch.randn(2, 3, 64, 64))
    assert len(calls) == 1


def test_prompts_from_dataset_metadata():
    name = "fasttcm_test_backbone_prompts_from_metadata"
    MetadataCatalog.get(name).set(thing_classes=["plane", "small-vehicle", "ground-track-field"])
    cfg = tiny_cfg()
    cfg.DATASETS.TRAIN = (name,)
    cfg.MODEL.FASTTCM.PROMPTS_FROM_METADATA = True
    cfg.MODEL.FASTTCM.CLASS_PROMPT_TEMPLATE = "an aerial image of a {name}."
    backbone = build(cfg).eval()
    assert backbone.bottom_up.prompt_learner.class_prompts == [
        "an aerial image of a plane.",
        "an aerial image of a small vehicle.",
        "an aerial image of a ground track field.",
    ]
    assert backbone.bottom_up.output_shape()["res5"].channels == 256 + 3
    with torch.no_grad():
        _, aux = backbone.forward_with_aux(torch.randn(1, 3, 64, 64))
    assert aux["score_map"].shape == (1, 3, 2, 2)

    cfg.DATASETS.TRAIN = ("fasttcm_test_backbone_no_classes",)
    with pytest.raises(ValueError, match="no thing_classes"):
        build(cfg)


def test_backbone_from_modules_without_a_config():
    from fasttcm.modeling.clip import CLIPImageEncoder, CLIPTextContextEncoder
    from fasttcm.modeling.tcm import (
        FastTCMBackbone,
        LanguagePromptGenerator,
        PromptLearner,
        TextContextDecoder,
        VisualPromptGenerator,
    )

    torch.manual_seed(0)
    decoder = dict(embed_dim=64, width=32, heads=2, layers=1)
    text_branch = dict(
        text_encoder=CLIPTextContextEncoder(width=32, layers=1, heads=2, embed_dim=64),
        prompt_learner=PromptLearner(
            class_prompts=["text", "logo"], context_length=2, token_width=32
        ),
        language_prompt_generator=LanguagePromptGenerator(
            mode="tcm", visual_dim=64, token_width=32
        ),
        visual_prompt_generator=VisualPromptGenerator(**decoder),
        text_context_decoder=TextContextDecoder(**decoder),
    )
    image = dict(layers=(1, 1, 1, 1), width=8, heads=2, output_dim=64)
    backbone = FastTCMBackbone(
        image_encoder=CLIPImageEncoder(**image), tau=0.5, **text_branch
    ).eval()
    assert backbone.mode == "tcm" and backbone.output_shape()["res5"].channels == 258
    with torch.no_grad():
        features, aux = backbone.forward_with_aux(torch.randn(1, 3, 32, 64))
    torch.testing.assert_close(aux["logits"], aux["score_map"] * 2)
    assert features["res5"].shape == (1, 258, 1, 2)

    with pytest.raises(ValueError, match="all text-branch modules"):
        FastTCMBackbone(
            image_encoder=CLIPImageEncoder(**image), text_encoder=text_branch["text_encoder"]
        )
    with pytest.raises(ValueError, match="attention pool"):
        FastTCMBackbone(
            image_encoder=CLIPImageEncoder(**image, with_attention_pool=False), **text_branch
        )
    with pytest.raises(ValueError, match="bimodal_similarity_matching is required"):
        text_branch["language_prompt_generator"] = LanguagePromptGenerator(
            mode="fasttcm", visual_dim=64, token_width=32
        )
        FastTCMBackbone(image_encoder=CLIPImageEncoder(**image), **text_branch)
    with pytest.raises(ValueError, match="without the text branch"):
        FastTCMBackbone(
            image_encoder=CLIPImageEncoder(**image),
            language_prompt_generator=text_branch["language_prompt_generator"],
        )
    text_branch["language_prompt_generator"] = None  # no cue: still MODE tcm (no BSM)
    assert FastTCMBackbone(image_encoder=CLIPImageEncoder(**image), **text_branch).mode == "tcm"


def test_bad_config_values():
    cfg = tiny_cfg()
    cfg.MODEL.FASTTCM.MODE = "clip"
    with pytest.raises(ValueError, match="MODEL.FASTTCM.MODE"):
        build(cfg)
    cfg = tiny_cfg()
    cfg.MODEL.FASTTCM.CLASS_PROMPTS = []
    with pytest.raises(ValueError, match="CLASS_PROMPTS is empty"):
        build(cfg)


def test_clip_weights_from_config(tmp_path, caplog):
    torch.manual_seed(3)
    clip = CLIP(
        64,
        CLIPVisionCfg(layers=(1, 1, 1, 1), width=8, image_size=224, head_width=32),
        CLIPTextCfg(width=32, heads=2, layers=2),
        quick_gelu=True,
    )
    path = tmp_path / "tiny_clip.pt"
    torch.save(clip.state_dict(), path)
    cfg = tiny_cfg()
    cfg.MODEL.FASTTCM.CLIP_WEIGHTS = str(path)
    bottom_up = build(cfg).bottom_up
    assert torch.equal(bottom_up.visual.attnpool.c_proj.weight, clip.visual.attnpool.c_proj.weight)
    assert torch.equal(bottom_up.text_encoder.text_projection, clip.text_projection)
    assert not bottom_up.text_encoder.text_projection.requires_grad

    cfg.MODEL.FASTTCM.CLIP_WEIGHTS = ""
    with caplog.at_level(logging.WARNING, logger="fasttcm"):
        build(cfg)
    assert "random init" in caplog.text


@pytest.mark.parametrize(
    "mode, res5_channels",
    [("fasttcm", 2049), pytest.param("tcm", 2049, marks=pytest.mark.slow), ("none", 2048)],
)
def test_full_rn50_variants_build_from_config(mode, res5_channels):
    """The benchmark variants at CR50 widths (the defaults), random weights, on a small input."""
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.MODEL.BACKBONE.NAME = "build_fasttcm_cr50_fpn_backbone"
    cfg.MODEL.FASTTCM.MODE = mode
    backbone = build(cfg).eval()
    assert backbone.bottom_up.output_shape()["res5"].channels == res5_channels
    assert {k: v.channels for k, v in backbone.output_shape().items()} == dict.fromkeys(
        STRIDES, 256
    )
    with torch.no_grad():
        features, aux = backbone.forward_with_aux(torch.randn(1, 3, 64, 64))
    assert features["p2"].shape == (1, 256, 16, 16)
    if mode != "none":
        assert aux["text_embeddings"].shape == (1, 1, 1024)
        assert backbone.bottom_up.text_encoder.transformer.layers == 12


def test_dumped_config_reloads_with_the_default_prompt_template(tmp_path):
    """config.yaml written by default_setup must load again (yacs literal-evals strings)."""
    from detectron2.config import get_cfg

    from fasttcm import add_fasttcm_config

    cfg = get_cfg()
    add_fasttcm_config(cfg)
    path = tmp_path / "config.yaml"
    path.write_text(cfg.dump())
    again = get_cfg()
    add_fasttcm_config(again)
    again.merge_from_file(str(path))
    assert again.MODEL.FASTTCM.CLASS_PROMPT_TEMPLATE == "{name}"
