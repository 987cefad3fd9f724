"""Official OCRCLIP (TCM / FastTCM) checkpoints -> FastTCM-D2 text detector (engine.conversion).

The official-format state dicts are made here from the official key list: a tiny project model's
tensors (random values) renamed the official way by this file's own table (written in the reverse
direction of the converter's), with the official shapes where they differ (the 18-row text
positional table, ``pix_w`` = W^T). Official-style DB branches, ContextDecoder and BSM, written
from the official definitions, check that the renamed tensors mean what they meant there.
"""

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fasttcm.engine.checkpoint import AtomicDetectionCheckpointer, IncompleteWeightsError
from fasttcm.engine.conversion import ConversionError, ConversionReport, convert_checkpoint
from fasttcm.engine.conversion.tcm import rename_context_decoder, tcm_settings
from tests.common import QUICK_DETECTOR, build_model_from_cfg, load_config

N_CTX, PROMPT_TOKENS = 4, 14  # official context_length 18 = n_ctx + the 14 prompt tokens

# project name (regex) -> official name, written from the official module structure
_OFFICIAL_NAMES = [
    (r"^backbone\.bottom_up\.visual\.", "backbone."),
    (r"^backbone\.bottom_up\.text_encoder\.", "text_encoder."),
    (r"^backbone\.bottom_up\.text_context_decoder\.gamma$", "gamma"),
    (r"^backbone\.bottom_up\.visual_prompt_generator\.gamma$", "vis_gamma"),
    (r"^backbone\.bottom_up\.text_context_decoder\.decoder\.", "context_decoder."),
    (r"^backbone\.bottom_up\.visual_prompt_generator\.decoder\.", "visual_prompt_generator."),
    (r"^backbone\.bottom_up\.language_prompt_generator\.mlp\.", "prompt_generator.prompt_proj."),
    (r"^backbone\.bottom_up\.language_prompt_generator\.meta_query$", "meta_query"),
    (r"^backbone\.bottom_up\.prompt_learner\.contexts$", "contexts"),
    (r"^backbone\.bottom_up\.bimodal_similarity_matching\.projection\.weight$", "pix_w"),
    (r"^backbone\.(lateral|smooth)_convs\.(\d+)\.weight$", r"neck.\1_convs.\2.conv.weight"),
]
# project DB-branch layer -> official index (Conv, BN, ReLU, ConvT, BN, ReLU, ConvT, Sigmoid)
_DB_LAYERS = [("0.weight", "0.weight"), ("0.norm.", "1."), ("1.", "3."), ("2.", "4."), ("4.", "6.")]


def _official_name(name: str) -> str:
    for pattern, replacement in _OFFICIAL_NAMES:
        if re.search(pattern, name):
            name = re.sub(pattern, replacement, name)
            break
    if name.startswith(("context_decoder.", "visual_prompt_generator.")):
        name = name.replace(".query_proj.", ".text_proj.")
        name = re.sub(r"\.layers\.(\d+)\.", r".decoder.\1.", name)
        name = re.sub(r"_attn\.out_proj\.", "_attn.proj.", name)
    for branch, official in (("prob_branch", "binarize"), ("thresh_branch", "threshold")):
        for ours, theirs in _DB_LAYERS:
            if name.startswith(f"text_head.{branch}.{ours}"):
                return f"bbox_head.{official}.{theirs}" + name[len(f"text_head.{branch}.{ours}") :]
    return name


def _randomize(model: nn.Module, seed: int) -> None:
    """Every float tensor random (BN variances positive), so no tensor can pass by its init."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                tensor.fill_(7)  # num_batches_tracked
                continue
            values = torch.randn(tensor.shape, generator=generator) * 0.2
            tensor.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)


def _official_state(model: nn.Module) -> dict:
    official = {_official_name(k): v.clone() for k, v in model.state_dict().items()}
    official["text_encoder.positional_embedding"] = official["text_encoder.positional_embedding"][
        : N_CTX + PROMPT_TOKENS
    ].clone()
    if "pix_w" in official:
        official["pix_w"] = official["pix_w"].t().contiguous()  # official: g = I-bar @ pix_w
    return official


@pytest.fixture(scope="module", params=["tcm", "fasttcm"])
def official(request, tmp_path_factory):
    """(mode, model A, official state dict of A, its file)."""
    cfg = load_config(QUICK_DETECTOR, "MODEL.FASTTCM.MODE", request.param)
    model = build_model_from_cfg(cfg, seed=1).eval()
    _randomize(model, seed=2)
    state = _official_state(model)
    path = tmp_path_factory.mktemp("official") / f"{request.param}_ocrclip.pth"
    # mmcv layout: meta + DDP-prefixed state_dict
    torch.save(
        {"meta": {"epoch": 1200}, "state_dict": {"module." + k: v for k, v in state.items()}}, path
    )
    return request.param, model, state, path


def _convert(path, out, cfg=None, **kwargs) -> ConversionReport:
    report = ConversionReport(source="tcm", input=str(path))
    cfg = cfg if cfg is not None else load_config(QUICK_DETECTOR)  # MODE fasttcm by default
    return convert_checkpoint("tcm", str(path), str(out), cfg, report=report, **kwargs)


def _loaded_model(report: ConversionReport, seed: int = 5):
    """A model built with the config values the report names, loaded strictly from the output."""
    cfg = load_config(QUICK_DETECTOR, *[x for kv in report.config.items() for x in kv])
    model = build_model_from_cfg(cfg, seed=seed).eval()
    AtomicDetectionCheckpointer(model).load_trained_weights(report.output)
    return model


@pytest.fixture(scope="module")
def converted(official, tmp_path_factory):
    """(report, the model loaded strictly from the converted file) for `official`."""
    _, _, _, path = official
    report = _convert(path, tmp_path_factory.mktemp("converted") / "out.pth")
    return report, _loaded_model(report)


def test_every_official_key_is_consumed_and_the_model_is_filled(official, converted):
    mode, _, state, _ = official
    report, _ = converted
    assert sorted(report.consumed) == sorted(state)
    assert report.unused == {} and report.unfilled == []
    assert report.config["MODEL.FASTTCM.MODE"] == mode
    assert report.config["MODEL.FASTTCM.CONTEXT_LENGTH"] == N_CTX
    assert report.config["MODEL.FASTTCM.ATTNPOOL_GRID"] == 4
    assert any("18 rows" in note for note in report.notes)
    assert ("pix_w" in state) == any(note.startswith("pix_w: transposed") for note in report.notes)
    written = torch.load(report.output, weights_only=True)
    assert written["matching_heuristics"] is False and "--from tcm" in written["__author__"]


def test_converted_model_gives_the_maps_of_the_model_it_came_from(official, converted):
    _, model, _, _ = official
    _, loaded = converted
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        features_a, aux_a = model.extract_features(images)
        features_b, aux_b = loaded.extract_features(images)
        maps_a, _ = model.text_head(features_a, return_all_maps=True)
        maps_b, _ = loaded.text_head(features_b, return_all_maps=True)
    torch.testing.assert_close(aux_b["score_map"], aux_a["score_map"], rtol=1e-5, atol=1e-6)
    for key in ("prob", "thresh", "binary"):
        torch.testing.assert_close(maps_b[key], maps_a[key], rtol=1e-5, atol=1e-6)


class _OfficialAttention(nn.Module):
    """The official decoder attention: bias-free q/k/v, ``proj`` with bias."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.proj = nn.Linear(dim, dim)

    def forward(self, q, k, v):
        b, n, c = q.shape
        m, h = k.shape[1], self.heads
        q = self.q_proj(q).reshape(b, n, h, c // h)
        k = self.k_proj(k).reshape(b, m, h, c // h)
        v = self.v_proj(v).reshape(b, m, h, c // h)
        attention = (torch.einsum("bnhc,bmhc->bhnm", q, k) * (c // h) ** -0.5).softmax(-1)
        return self.proj(torch.einsum("bhnm,bmhc->bnhc", attention, v).reshape(b, n, c))


class _OfficialDecoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.self_attn, self.cross_attn = (
            _OfficialAttention(dim, heads),
            _OfficialAttention(dim, heads),
        )
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, dim * 4), nn.GELU(), nn.Dropout(0.0), nn.Linear(dim * 4, dim)
        )

    def forward(self, x, memory):
        q = k = v = self.norm1(x)
        x = x + self.self_attn(q, k, v)
        x = x + self.cross_attn(self.norm2(x), memory, memory)
        return x + self.mlp(self.norm3(x))


class _OfficialContextDecoder(nn.Module):
    """The official ``ContextDecoder`` (names ``text_proj``, ``memory_proj``, ``decoder``)."""

    def __init__(self, width: int, heads: int, layers: int, visual_dim: int):
        super().__init__()
        self.memory_proj = nn.Sequential(
            nn.LayerNorm(visual_dim), nn.Linear(visual_dim, width), nn.LayerNorm(width)
        )
        self.text_proj = nn.Sequential(nn.LayerNorm(visual_dim), nn.Linear(visual_dim, width))
        self.decoder = nn.ModuleList(_OfficialDecoderLayer(width, heads) for _ in range(layers))
        self.out_proj = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, visual_dim))

    def forward(self, text, visual):
        visual, x = self.memory_proj(visual), self.text_proj(text)
        for layer in self.decoder:
            x = layer(x, visual)
        return self.out_proj(x)


def _official_part(state: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def test_renamed_modules_compute_what_the_official_modules_compute(official, converted):
    mode, _, state, _ = official
    _, loaded = converted
    bottom_up = loaded.backbone.bottom_up
    cfg = load_config(QUICK_DETECTOR).MODEL.FASTTCM
    torch.manual_seed(0)

    # context decoders (text side and VPG): official module with the official tensors
    for official_prefix, ours in (
        ("context_decoder.", bottom_up.text_context_decoder.decoder),
        ("visual_prompt_generator.", bottom_up.visual_prompt_generator.decoder),
    ):
        reference = _OfficialContextDecoder(
            cfg.DECODER_WIDTH, cfg.DECODER_HEADS, cfg.DECODER_LAYERS, cfg.EMBED_DIM
        ).eval()
        reference.load_state_dict(_official_part(state, official_prefix), strict=True)
        queries, memory = torch.randn(2, 3, cfg.EMBED_DIM), torch.randn(2, 7, cfg.EMBED_DIM)
        with torch.no_grad():
            torch.testing.assert_close(ours(queries, memory), reference(queries, memory))

    # DB branches: the official Sequential (Conv no bias, BN, ReLU, ConvT, BN, ReLU, ConvT, Sigmoid)
    fused = torch.randn(1, 32, 12, 10)
    for official_name, branch in (("binarize", "prob"), ("threshold", "thresh")):
        reference = nn.Sequential(
            nn.Conv2d(32, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.ConvTranspose2d(8, 8, 2, 2), nn.BatchNorm2d(8), nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 2, 2), nn.Sigmoid(),
        ).eval()  # fmt: skip
        reference.load_state_dict(_official_part(state, f"bbox_head.{official_name}."))
        with torch.no_grad():
            maps, _ = loaded.text_head({"fused": fused}, return_all_maps=True)
            torch.testing.assert_close(maps[branch], reference(fused), rtol=1e-5, atol=1e-6)

    # BSM: official g = normalize(I-bar @ pix_w), t = normalize(t), t = <t, g> g + t
    if mode == "fasttcm":
        image, text = torch.randn(2, cfg.EMBED_DIM), torch.randn(1, 1, cfg.EMBED_DIM)
        g = F.normalize(image @ state["pix_w"], dim=-1)[:, None]
        t = F.normalize(text, dim=-1)
        expected = (t * g).sum(-1, keepdim=True) * g + t
        with torch.no_grad():
            got = bottom_up.bimodal_similarity_matching(text, image)
        torch.testing.assert_close(got, expected)


def test_settings_and_renames_of_the_official_names():
    assert rename_context_decoder("text_proj.1.weight") == "query_proj.1.weight"
    assert (
        rename_context_decoder("decoder.2.cross_attn.proj.bias")
        == "layers.2.cross_attn.out_proj.bias"
    )
    assert (
        rename_context_decoder("decoder.0.self_attn.q_proj.weight")
        == "layers.0.self_attn.q_proj.weight"
    )
    assert rename_context_decoder("memory_proj.2.weight") == "memory_proj.2.weight"
    state = {
        "backbone.attnpool.positional_embedding": torch.zeros(401, 8),
        "contexts": torch.zeros(1, 32, 4),
        "prompt_generator.prompt_proj.0.weight": torch.zeros(4),
    }
    assert tcm_settings(state) == {
        "MODEL.FASTTCM.MODE": "tcm",
        "MODEL.FASTTCM.LANGUAGE_PROMPT": True,
        "MODEL.FASTTCM.CONTEXT_LENGTH": 32,
        "MODEL.FASTTCM.ATTNPOOL_GRID": 20,
    }
    assert tcm_settings({"meta_query": torch.zeros(3)})["MODEL.FASTTCM.MODE"] == "fasttcm"


def _save(path, state):
    torch.save({"state_dict": state}, path)
    return path


def test_wrong_shape_is_an_error_naming_key_and_both_shapes(official, tmp_path):
    _, _, state, _ = official
    bad = dict(state, **{"neck.smooth_convs.1.conv.weight": torch.zeros(8, 32, 1, 1)})
    path = _save(tmp_path / "bad_shape.pth", bad)
    with pytest.raises(ConversionError) as info:
        _convert(path, tmp_path / "out.pth")
    message = str(info.value)
    assert (
        "neck.smooth_convs.1.conv.weight" in message and "backbone.smooth_convs.1.weight" in message
    )
    assert "(8, 32, 1, 1)" in message and "(8, 32, 3, 3)" in message and "bad_shape.pth" in message
    assert not (tmp_path / "out.pth").exists()


def test_missing_key_is_listed_unfilled_and_refused_for_evaluation(official, tmp_path):
    _, _, state, _ = official
    path = _save(tmp_path / "missing.pth", {k: v for k, v in state.items() if k != "vis_gamma"})
    report = _convert(path, tmp_path / "out.pth")
    assert report.unfilled == ["backbone.bottom_up.visual_prompt_generator.gamma"]
    cfg = load_config(QUICK_DETECTOR, *[x for kv in report.config.items() for x in kv])
    with pytest.raises(IncompleteWeightsError, match="visual_prompt_generator.gamma"):
        AtomicDetectionCheckpointer(build_model_from_cfg(cfg)).load_trained_weights(report.output)
    with pytest.raises(ConversionError, match="visual_prompt_generator.gamma"):
        _convert(path, tmp_path / "strict.pth", strict=True)
    assert not (tmp_path / "strict.pth").exists()


def test_unknown_and_loss_only_keys_are_listed_unused_with_a_reason(official, tmp_path):
    _, _, state, _ = official
    extra = {"some_new_head.weight": torch.zeros(3), "logit_scale": torch.tensor(2.0)}
    report = _convert(_save(tmp_path / "extra.pth", {**state, **extra}), tmp_path / "out.pth")
    assert set(report.unused) == set(extra)
    assert "no counterpart" in report.unused["some_new_head.weight"]
    assert "TAU" in report.unused["logit_scale"]
    assert report.unfilled == []


def test_fpn_config_lists_the_neck_unused_and_the_fuse_convs_unfilled(official, tmp_path):
    _, _, state, path = official
    cfg = load_config(
        QUICK_DETECTOR,
        "MODEL.BACKBONE.NAME", "build_fasttcm_cr50_fpn_backbone",
        "MODEL.DB_HEAD.IN_FEATURES", ["p2", "p3", "p4", "p5"],
        "MODEL.DB_HEAD.FUSE_CONVS", True,
    )  # fmt: skip
    report = _convert(path, tmp_path / "out.pth", cfg=cfg)
    assert set(report.unused) == {k for k in state if k.startswith("neck.")}
    assert all("FPNC" in reason for reason in report.unused.values())
    assert any(k.startswith("text_head.fuse_convs.") for k in report.unfilled)
    assert any(k.startswith("backbone.fpn_output") for k in report.unfilled)


def test_released_pix_w_of_shape_d_by_d_over_2_is_refused_with_the_reason(tmp_path):
    cfg = load_config(QUICK_DETECTOR)
    model = build_model_from_cfg(cfg, seed=3)
    state = _official_state(model)
    embed = cfg.MODEL.FASTTCM.EMBED_DIM
    state["pix_w"] = torch.ones(embed, embed // 2)  # the released FastTCM init, (1024, 512)
    path = _save(tmp_path / "fasttcm_released.pth", state)
    with pytest.raises(ConversionError) as info:
        _convert(path, tmp_path / "out.pth")
    message = str(info.value)
    assert f"({embed}, {embed // 2})" in message and "cannot run" in message
    assert "identity" in message and "--bsm-identity" in message
    report = _convert(path, tmp_path / "out.pth", bsm_identity=True)
    assert "pix_w" in report.unused and report.unfilled == []
    weight = torch.load(report.output, weights_only=True)["model"][
        "backbone.bottom_up.bimodal_similarity_matching.projection.weight"
    ]
    torch.testing.assert_close(weight, torch.eye(embed))


def test_corrupt_truncated_and_foreign_files_are_clear_errors(official, tmp_path):
    _, _, _, path = official
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[:5000])
    for bad in (garbage, truncated):
        with pytest.raises(ConversionError, match=bad.name):
            _convert(bad, tmp_path / "out.pth")
    foreign = _save(tmp_path / "resnet.pth", {"conv1.weight": torch.zeros(1)})
    with pytest.raises(ConversionError, match="not an official OCRCLIP"):
        _convert(foreign, tmp_path / "out.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        _convert(tmp_path / "missing.pth", tmp_path / "out.pth")
    assert not (tmp_path / "out.pth").exists()


def test_existing_output_is_kept_unless_overwrite(official, tmp_path):
    _, _, _, path = official
    out = tmp_path / "out.pth"
    out.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="--overwrite"):
        _convert(path, out)
    assert out.read_bytes() == b"precious"
    _convert(path, out, overwrite=True)
    assert "model" in torch.load(out, weights_only=True)
    with pytest.raises(ConversionError, match=r"\.pth"):
        _convert(path, tmp_path / "out.pkl")
