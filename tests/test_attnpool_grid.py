"""The attention-pool positional table as the official TCM code parametrises it.

CLIP's 7x7 table (plus the mean-token row) is resized bilinearly once, when CLIP weights load, to
the learned grid S = MODEL.FASTTCM.ATTNPOOL_GRID (training input / 32); every forward resizes the
learned S x S grid bilinearly to the feature grid H/32 x W/32. At an input of S * 32 pixels this
equals resizing CLIP's table directly (the old parametrisation, S = 7); at other sizes it does not.
Expected values are computed here with ``F.interpolate`` and an explicit softmax attention.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone, build_model

from fasttcm.engine import AtomicDetectionCheckpointer
from fasttcm.modeling.clip import CLIPImageEncoder, load_clip_weights
from fasttcm.modeling.clip.weights import (
    clip_to_detectron2_state_dict,
    read_clip_state_dict,
    resize_clip_attnpool_table,
)
from tests.common import (
    QUICK_DETECTOR,
    config_id,
    get_config_files,
    load_config,
)

# the image encoder widths of the detector quick schedule (its MODEL.FASTTCM.IMAGE_* / EMBED_DIM)
ENCODER = dict(layers=(1, 1, 1, 1), width=8, heads=2, output_dim=64)
CHANNELS = 8 * 32  # attention-pool embed dim = 32 x stem width
POSITIONAL = "visual.attnpool.positional_embedding"


def _encoder(grid: int, seed: int = 0) -> CLIPImageEncoder:
    torch.manual_seed(seed)
    return CLIPImageEncoder(**ENCODER, attnpool_grid=grid).eval()


def _clip_file(tmp_path) -> tuple:
    """A CLIP-format image state dict with CLIP's 7x7 table, saved as an open_clip file."""
    state = {f"visual.{k}": v for k, v in _encoder(7, seed=1).state_dict().items()}
    path = tmp_path / "clip_rn_tiny.pt"
    torch.save(state, path)
    return str(path), state


def _bilinear(table: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Independent resize of a (1 + S*S, C) table's grid (the mean-token row is kept)."""
    side = math.isqrt(table.shape[0] - 1)
    grid = table[1:].T.reshape(1, -1, side, side)
    grid = F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=False)
    return torch.cat([table[:1], grid.reshape(table.shape[1], -1).T], dim=0)


def _reference_pool(pool, x: torch.Tensor, table: torch.Tensor):
    """Dense attention pool written out: (mean token + HW tokens) + table, softmax attention."""
    batch, channels, height, width = x.shape
    tokens = x.flatten(2).transpose(1, 2)
    tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1) + table
    heads, head_dim = pool.num_heads, channels // pool.num_heads

    def project(linear):
        out = tokens @ linear.weight.T + linear.bias
        return out.reshape(batch, -1, heads, head_dim).transpose(1, 2)

    q, k, v = project(pool.q_proj), project(pool.k_proj), project(pool.v_proj)
    attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim), dim=-1)
    out = (attention @ v).transpose(1, 2).reshape(batch, -1, channels)
    out = out @ pool.c_proj.weight.T + pool.c_proj.bias
    return out[:, 0], out[:, 1:].transpose(1, 2).reshape(batch, -1, height, width)


# --- once at load ---------------------------------------------------------------------------------
def test_clip_load_resizes_the_7x7_table_once_to_the_learned_grid(tmp_path):
    path, state = _clip_file(tmp_path)
    encoder = _encoder(20)
    result = load_clip_weights(path, image_encoder=encoder)
    assert result.missing_keys == [] and result.unexpected_keys == []
    table = encoder.attnpool.positional_embedding
    assert isinstance(table, torch.nn.Parameter) and table.requires_grad  # learned at 20 x 20
    assert table.shape == (1 + 20 * 20, CHANNELS)
    clip_table = state[POSITIONAL]
    assert clip_table.shape == (1 + 7 * 7, CHANNELS)
    torch.testing.assert_close(table.detach(), _bilinear(clip_table, 20, 20), rtol=0, atol=1e-6)
    assert torch.equal(table.detach()[0], clip_table[0])  # the mean-token row is kept as it is
    # everything else loads unchanged
    assert torch.equal(encoder.attnpool.q_proj.weight, state["visual.attnpool.q_proj.weight"])


def test_config_clip_weights_resize_at_backbone_build(tmp_path):
    """MODEL.FASTTCM.CLIP_WEIGHTS: the FPNC backbone of the quick detector, grid 20."""
    path, state = _clip_file(tmp_path)
    cfg = load_config(
        QUICK_DETECTOR, "MODEL.FASTTCM.CLIP_WEIGHTS", path, "MODEL.FASTTCM.ATTNPOOL_GRID", 20
    )
    backbone = build_backbone(cfg, ShapeSpec(channels=3))
    table = backbone.bottom_up.visual.attnpool.positional_embedding.detach()
    assert table.shape == (401, CHANNELS)
    torch.testing.assert_close(table, _bilinear(state[POSITIONAL], 20, 20), rtol=0, atol=1e-6)


def test_converted_clip_checkpoint_for_model_weights_carries_the_resized_table(tmp_path):
    """clip_to_detectron2_state_dict(attnpool_grid=S) -> MODEL.WEIGHTS loads without a mismatch."""
    path, state = _clip_file(tmp_path)
    cfg = load_config(QUICK_DETECTOR, "MODEL.FASTTCM.ATTNPOOL_GRID", 20)
    converted = clip_to_detectron2_state_dict(read_clip_state_dict(path), attnpool_grid=20)
    name = "backbone.bottom_up.visual.attnpool.positional_embedding"
    assert converted[name].shape == (401, CHANNELS)
    model = build_model(cfg)
    checkpointer = AtomicDetectionCheckpointer(model)
    checkpointer._load_model({"model": dict(converted)})
    assert checkpointer.last_incompatible.incorrect_shapes == []
    torch.testing.assert_close(
        model.state_dict()[name], _bilinear(state[POSITIONAL], 20, 20), rtol=0, atol=1e-6
    )
    # without the grid the file's 7x7 table is kept (and would not fit a grid-20 model)
    plain = clip_to_detectron2_state_dict(read_clip_state_dict(path))
    assert torch.equal(plain[name], state[POSITIONAL])


def test_a_table_of_the_wrong_width_or_not_square_is_a_clear_error():
    with pytest.raises(ValueError, match=r"clip\.pt.*shape \(50, 12\).*\(1 \+ S\*S, 256\)"):
        resize_clip_attnpool_table(
            torch.zeros(50, 12), 20, source="clip.pt 'positional'", channels=256
        )
    with pytest.raises(ValueError, match=r"clip\.pt.*11 rows"):
        resize_clip_attnpool_table(torch.zeros(11, 4), 20, source="clip.pt 'positional'")
    with pytest.raises(ValueError, match="ATTNPOOL_GRID"):
        CLIPImageEncoder(**ENCODER, attnpool_grid=0)


# --- per forward ----------------------------------------------------------------------------------
@pytest.mark.parametrize("height, width", [(24, 17), (20, 20), (5, 9)])
def test_every_forward_resizes_the_learned_grid_to_the_feature_grid(height, width):
    pool = _encoder(20).attnpool
    with torch.no_grad():
        pool.positional_embedding.copy_(torch.randn(401, CHANNELS))
        x = torch.randn(2, CHANNELS, height, width)
        global_embedding, dense = pool(x)
        table = _bilinear(pool.positional_embedding, height, width)
        expected_global, expected_dense = _reference_pool(pool, x, table)
    assert dense.shape == (2, 64, height, width)
    torch.testing.assert_close(global_embedding, expected_global, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(dense, expected_dense, rtol=1e-4, atol=1e-5)


def test_at_640_both_parametrisations_agree_exactly_and_elsewhere_they_differ(tmp_path):
    """Old: CLIP's 7x7 resized per forward. Official: 20x20 from CLIP's once, then per forward."""
    path, _ = _clip_file(tmp_path)
    old, official = _encoder(7), _encoder(20, seed=5)
    load_clip_weights(path, image_encoder=old)
    load_clip_weights(path, image_encoder=official)
    image = torch.randn(1, 3, 640, 640)
    with torch.no_grad():
        features_old, global_old, dense_old = old(image)
        features_new, global_new, dense_new = official(image)
    assert dense_new.shape == (1, 64, 20, 20)
    assert torch.equal(global_old, global_new) and torch.equal(dense_old, dense_new)
    assert all(torch.equal(features_old[k], features_new[k]) for k in features_old)

    # at 768 x 640 (a 24 x 20 grid) the two tables differ: 7 -> 24 x 20 vs 7 -> 20 -> 24 x 20
    table_old = _bilinear(old.attnpool.positional_embedding.detach(), 24, 20)
    table_new = _bilinear(official.attnpool.positional_embedding.detach(), 24, 20)
    assert torch.equal(table_old[0], table_new[0])
    assert (table_old[1:] - table_new[1:]).abs().max() > 1e-3 * table_old.abs().max()
    with torch.no_grad():
        x = torch.randn(1, CHANNELS, 24, 20)
        _, dense_old = old.attnpool(x)
        _, dense_new = official.attnpool(x)
    assert not torch.allclose(dense_old, dense_new)


# --- configs --------------------------------------------------------------------------------------
def _grid_configs():
    """Text detection and spotting configs (paper, CPU and quick) and the DOTA paper config."""
    return [
        path
        for path in get_config_files()
        if config_id(path).startswith(("TextDetection/", "TextSpotting/"))
        or "dbnet" in config_id(path)
        or "spotter" in config_id(path)
        or config_id(path) == "DOTA/fasttcm_cr50_fpn_rrcnn_1x_dota10_ss.yaml"
    ]


@pytest.mark.parametrize("config_file", _grid_configs(), ids=config_id)
def test_the_learned_grid_is_the_training_crop_over_32(config_file):
    cfg = load_config(config_file)
    if cfg.MODEL.META_ARCHITECTURE == "FastTCMRotatedRCNN":
        crop = max(cfg.INPUT.MIN_SIZE_TRAIN)  # DOTA: square training patches
        assert crop == cfg.INPUT.MAX_SIZE_TRAIN
    else:
        crop = cfg.INPUT.TEXT_AUG.CROP_SIZE
    assert cfg.MODEL.FASTTCM.ATTNPOOL_GRID * 32 == crop
