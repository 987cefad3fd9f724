"""Released CLIP4STR Lightning checkpoints -> FastTCM-D2 recognizer (engine.conversion.clip4str).

The official checkpoints are built here: a tiny recognizer's tensors (random values) under the
official VL4STR names (the project's names without ``recognizer.``) plus the official-only
``clip_model.logit_scale``, in a PyTorch Lightning layout whose ``hyper_parameters`` is an
``AttributeDict`` holding OmegaConf lists. Lightning is not installed: a stand-in module provides
the class under Lightning's qualified name while the file is written.
"""

import sys
import types

import pytest
import torch
from omegaconf import OmegaConf

from fasttcm.engine.checkpoint import AtomicDetectionCheckpointer
from fasttcm.engine.conversion import ConversionError, ConversionReport, convert_checkpoint
from fasttcm.engine.conversion.clip4str import clip4str_settings
from fasttcm.structures.charset import load_charset
from tests.common import QUICK_RECOGNIZER, build_model_from_cfg, load_config

LIGHTNING_MODULE = "pytorch_lightning.utilities.parsing"
MAX_LABEL_LENGTH = 5  # released: 25; 5 keeps the autoregressive decoding of the tests short


class AttributeDict(dict):
    """Lightning's hyper-parameter container: a dict with attribute access."""

    def __getattr__(self, key):
        return self[key]


def _save_lightning(path, state, hparams, **extra):
    """``torch.save`` a Lightning-layout checkpoint whose hyper_parameters pickle as Lightning's."""
    module = types.ModuleType(LIGHTNING_MODULE)
    module.AttributeDict = AttributeDict
    with pytest.MonkeyPatch.context() as patch:
        for name in ("pytorch_lightning", "pytorch_lightning.utilities", LIGHTNING_MODULE):
            patch.setitem(sys.modules, name, types.ModuleType(name))
        patch.setitem(sys.modules, LIGHTNING_MODULE, module)
        patch.setattr(AttributeDict, "__module__", LIGHTNING_MODULE)
        checkpoint = {
            "epoch": 10,
            "global_step": 1000,
            "pytorch-lightning_version": "1.9.0",
            "state_dict": state,
            "hparams_name": "kwargs",
            "hyper_parameters": AttributeDict(hparams),
            **extra,
        }
        torch.save(checkpoint, path)
    return path


def _hparams(charset_train: str) -> dict:
    return {
        "charset_train": charset_train,
        "charset_test": "0123456789abcdefghijklmnopqrstuvwxyz",
        "max_label_length": MAX_LABEL_LENGTH,
        "img_size": OmegaConf.create([32, 64]),
        "patch_size": OmegaConf.create([8, 8]),
        "dec_num_heads": 2,
        "dec_mlp_ratio": 4,
        "dropout": 0.1,
        "perm_num": 6,
        "perm_forward": True,
        "perm_mirrored": True,
        "refine_iters": 1,
        "context_length": 16,
        "clip_pretrained": "pretrained/clip/ViT-B-16.pt",
        "model": OmegaConf.create({"name": "vl4str", "lr": 8.4e-5}),
    }


def _official(tmp_path, charset_name: str = "94_full", seed: int = 1):
    """(model A, its official state dict, the .ckpt file)."""
    cfg = load_config(
        QUICK_RECOGNIZER,
        "MODEL.RECOGNIZER.CHARSET", charset_name,
        "MODEL.RECOGNIZER.MAX_LABEL_LENGTH", MAX_LABEL_LENGTH,
    )  # fmt: skip
    model = build_model_from_cfg(cfg, seed=seed).eval()
    state = {k[len("recognizer.") :]: v.clone() for k, v in model.state_dict().items()}
    state["clip_model.logit_scale"] = torch.tensor(4.6052)
    path = _save_lightning(
        tmp_path / "clip4str_base16x16.ckpt", state, _hparams(load_charset(charset_name))
    )
    return model, state, path


def _convert(path, out, **kwargs) -> ConversionReport:
    report = ConversionReport(source="clip4str", input=str(path))
    cfg = load_config(QUICK_RECOGNIZER, *kwargs.pop("opts", []))
    return convert_checkpoint("clip4str", str(path), str(out), cfg, report=report, **kwargs)


def _loaded(report: ConversionReport):
    cfg = load_config(QUICK_RECOGNIZER, *[x for kv in report.config.items() for x in kv])
    model = build_model_from_cfg(cfg, seed=7).eval()
    AtomicDetectionCheckpointer(model).load_trained_weights(report.output)
    return model


def _assert_same_logits(model_a, model_b):
    images = model_a.recognizer.normalize(torch.rand(2, 3, 32, 64) * 255)
    torch.testing.assert_close(model_b.recognizer(images), model_a.recognizer(images))


def _assert_same_state(model_a, model_b):
    """Every tensor equal (outputs then are; the first test checks them once)."""
    state_b = model_b.state_dict()
    for name, value in model_a.state_dict().items():
        assert torch.equal(state_b[name], value), name


def test_lightning_checkpoint_converts_and_gives_the_same_logits(tmp_path):
    model, state, path = _official(tmp_path)
    report = _convert(path, tmp_path / "out" / "clip4str.pth")
    assert sorted(report.consumed) == sorted(k for k in state if k != "clip_model.logit_scale")
    assert list(report.unused) == ["clip_model.logit_scale"] and report.unfilled == []
    assert any("logit_scale dropped" in note for note in report.notes)
    assert any("stand-ins" in note and "AttributeDict" in note for note in report.notes)
    config = report.config
    assert config["MODEL.RECOGNIZER.CHARSET"] == "94_full"
    assert config["MODEL.RECOGNIZER.TEST_CHARSET"] == "36_lowercase"
    assert config["MODEL.RECOGNIZER.MAX_LABEL_LENGTH"] == MAX_LABEL_LENGTH
    assert config["MODEL.RECOGNIZER.IMAGE_SIZE"] == (32, 64)
    assert config["MODEL.RECOGNIZER.PATCH_SIZE"] == (8, 8)
    assert config["MODEL.RECOGNIZER.VISION_WIDTH"] == 32
    assert (
        config["MODEL.RECOGNIZER.TEXT_LAYERS"] == 2
        and config["MODEL.RECOGNIZER.DECODER_LAYERS"] == 1
    )
    snippet = report.config_snippet()
    assert "RECOGNIZER:" in snippet and f"MAX_LABEL_LENGTH: {MAX_LABEL_LENGTH}" in snippet
    assert "IMAGE_SIZE: [32, 64]" in snippet
    _assert_same_logits(model, _loaded(report))


def test_charset_that_is_not_shipped_is_written_next_to_the_output(tmp_path):
    charset = "zyxwvutsrqponmlkjihgfedcba9876543210"
    charset_file = tmp_path / "reversed.txt"
    charset_file.write_text(charset + "\n", encoding="utf-8")
    model, _, path = _official(tmp_path, charset_name=str(charset_file))
    out = tmp_path / "out" / "clip4str_rev.pth"
    report = _convert(path, out)
    written = tmp_path / "out" / "clip4str_rev.charset_train.txt"
    assert report.config["MODEL.RECOGNIZER.CHARSET"] == str(written)
    assert written.read_text(encoding="utf-8") == charset + "\n"
    loaded = _loaded(report)
    assert loaded.recognizer.charset == charset
    _assert_same_state(model, loaded)


def test_hyper_parameters_that_contradict_the_tensors_are_errors(tmp_path):
    _, state, _ = _official(tmp_path)
    bad = _hparams(load_charset("94_full"))
    bad["patch_size"] = OmegaConf.create([16, 16])
    path = _save_lightning(tmp_path / "bad_patch.ckpt", state, bad)
    with pytest.raises(ConversionError, match=r"patch_size.*\(8, 8\)"):
        _convert(path, tmp_path / "out.pth")
    bad = dict(_hparams(load_charset("94_full")), max_label_length=30)
    path = _save_lightning(tmp_path / "bad_length.ckpt", state, bad)
    with pytest.raises(ConversionError, match=f"max_label_length 30.*{MAX_LABEL_LENGTH + 1} slots"):
        _convert(path, tmp_path / "out.pth")
    assert not (tmp_path / "out.pth").exists()


def test_wrong_shape_missing_and_unknown_keys(tmp_path):
    _, state, _ = _official(tmp_path)
    hparams = _hparams(load_charset("94_full"))
    name = "cross_decoder.layers.0.linear1.weight"
    path = _save_lightning(
        tmp_path / "shape.ckpt", dict(state, **{name: torch.zeros(64, 33)}), hparams
    )
    with pytest.raises(ConversionError) as info:
        _convert(path, tmp_path / "out.pth")
    assert (
        name in str(info.value) and "(64, 33)" in str(info.value) and "(128, 32)" in str(info.value)
    )

    reduced = {k: v for k, v in state.items() if k != "visual_decoder.norm.bias"}
    reduced["visual_decoder.extra_gate"] = torch.zeros(2)
    path = _save_lightning(tmp_path / "reduced.ckpt", reduced, hparams)
    report = _convert(path, tmp_path / "out.pth")
    assert report.unfilled == ["recognizer.visual_decoder.norm.bias"]
    assert "no counterpart" in report.unused["visual_decoder.extra_gate"]


def test_a_bare_state_dict_converts_with_the_config_charsets(tmp_path):
    model, state, _ = _official(tmp_path)
    path = tmp_path / "bare.pth"
    torch.save(state, path)
    report = _convert(path, tmp_path / "out.pth")
    assert any("no hyper_parameters" in note for note in report.notes)
    assert "MODEL.RECOGNIZER.CHARSET" not in report.config
    _assert_same_state(model, _loaded(report))


def test_files_naming_code_are_refused_and_not_executed(tmp_path):
    _, state, _ = _official(tmp_path)
    payload = types.ModuleType("evil_payload")

    class Payload:
        def __reduce__(self):
            return (print, ("this must never print",))

    Payload.__module__ = "evil_payload"
    payload.Payload = Payload
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "evil_payload", payload)
        path = _save_lightning(
            tmp_path / "evil.ckpt",
            state,
            _hparams(load_charset("94_full")),
            callbacks={"x": Payload()},
        )
    with pytest.raises(ConversionError, match=r"refused.*builtins\.print"):
        _convert(path, tmp_path / "out.pth")
    assert not (tmp_path / "out.pth").exists()


def test_clip4str_large_sizes_come_from_the_tensors():
    """CLIP4STR-L (ViT-L/14, D = 768): shapes only (meta tensors), no weights allocated."""
    meta = dict(device="meta")
    state = {
        "clip_model.visual.conv1.weight": torch.empty(1024, 3, 14, 14, **meta),
        "clip_model.visual.positional_embedding": torch.empty(257, 1024, **meta),
        "clip_model.text_projection": torch.empty(768, 768, **meta),
        "clip_model.positional_embedding": torch.empty(77, 768, **meta),
        "clip_model.token_embedding.weight": torch.empty(49408, 768, **meta),
        "visual_decoder.pos_queries": torch.empty(1, 26, 768, **meta),
        "visual_decoder.layers.0.linear1.weight": torch.empty(3072, 768, **meta),
    }
    block = torch.empty(1024, **meta)
    state.update(
        {f"clip_model.visual.transformer.resblocks.{i}.ln_1.weight": block for i in range(24)}
    )
    state.update({f"clip_model.transformer.resblocks.{i}.ln_1.weight": block for i in range(12)})
    hparams = {"img_size": [224, 224], "patch_size": [14, 14], "max_label_length": 25}
    settings, charsets = clip4str_settings(state, hparams, "clip4str_large.ckpt")
    assert charsets == {}
    assert settings == {
        "PATCH_EMBED": "linear",
        "QUICK_GELU": True,
        "MAX_LABEL_LENGTH": 25,
        "IMAGE_SIZE": (224, 224),
        "PATCH_SIZE": (14, 14),
        "VISION_WIDTH": 1024,
        "VISION_HEADS": 16,
        "VISION_LAYERS": 24,
        "TEXT_LAYERS": 12,
        "DECODER_LAYERS": 1,
        "TEXT_WIDTH": 768,
        "EMBED_DIM": 768,
        "TEXT_HEADS": 12,
        "TEXT_MAX_LENGTH": 77,
        "VOCAB_SIZE": 49408,
        "DECODER_MLP_RATIO": 4.0,
    }
