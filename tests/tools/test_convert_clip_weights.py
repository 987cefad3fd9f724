"""tools/convert_clip_weights.py: CLIP file -> detectron2 checkpoint -> DetectionCheckpointer
round trip."""

import os

import pytest
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone

from fasttcm import add_fasttcm_config


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("convert_clip_weights")


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    torch.manual_seed(0)
    clip = CLIP(
        64,
        CLIPVisionCfg(layers=(1, 1, 1, 1), width=8, image_size=224, head_width=32),
        CLIPTextCfg(width=32, heads=2, layers=2),
        quick_gelu=True,
    )
    path = tmp_path_factory.mktemp("clip") / "tiny_open_clip.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in clip.state_dict().items()}}, path)
    return path, clip.state_dict()


def _model(mode: str = "fasttcm"):
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.MODEL.BACKBONE.NAME = "build_fasttcm_cr50_fpn_backbone"
    fc = cfg.MODEL.FASTTCM
    fc.MODE = mode
    fc.IMAGE_LAYERS, fc.IMAGE_WIDTH, fc.IMAGE_HEADS, fc.EMBED_DIM = [1, 1, 1, 1], 8, 2, 64
    fc.TEXT_WIDTH, fc.TEXT_LAYERS, fc.TEXT_HEADS = 32, 2, 2
    fc.DECODER_WIDTH, fc.DECODER_HEADS, fc.DECODER_LAYERS = 32, 2, 1
    model = torch.nn.Module()  # meta-architecture stand-in holding `backbone`
    model.backbone = build_backbone(cfg, ShapeSpec(channels=3))
    return model


def test_round_trip_through_detection_checkpointer(tool, clip_file, tmp_path):
    src, clip_sd = clip_file
    dst = tmp_path / "out" / "clip_fasttcm.pth"
    assert tool.main([str(src), str(dst)]) == 0
    checkpoint = torch.load(dst, weights_only=True)
    assert (
        checkpoint["matching_heuristics"] is False
        and "tiny_open_clip.pt" in checkpoint["__author__"]
    )
    assert "backbone.bottom_up.visual.attnpool.positional_embedding" in checkpoint["model"]
    assert "backbone.bottom_up.text_encoder.token_embedding.weight" in checkpoint["model"]
    assert not any("logit_scale" in k for k in checkpoint["model"])
    assert os.listdir(dst.parent) == ["clip_fasttcm.pth"]  # atomic: no temporary file left behind

    model = _model()
    DetectionCheckpointer(model).resume_or_load(str(dst), resume=False)
    bottom_up = model.backbone.bottom_up
    for name, value in clip_sd.items():
        if name.startswith("visual."):
            assert torch.equal(bottom_up.visual.state_dict()[name[len("visual.") :]], value), name
        elif name not in ("logit_scale",):
            assert torch.equal(bottom_up.text_encoder.state_dict()[name], value), name


def test_image_only_output_and_custom_prefix(tool, clip_file, tmp_path):
    src, clip_sd = clip_file
    dst = tmp_path / "visual.pth"
    assert (
        tool.main([str(src), str(dst), "--image-only", "--prefix", "detector.backbone.bottom_up."])
        == 0
    )
    names = set(torch.load(dst, weights_only=True)["model"])
    assert names == {"detector.backbone.bottom_up." + k for k in clip_sd if k.startswith("visual.")}


def test_existing_output_is_kept_unless_overwrite(tool, clip_file, tmp_path):
    src, _ = clip_file
    dst = tmp_path / "clip.pth"
    dst.write_bytes(b"precious")
    assert tool.main([str(src), str(dst)]) == 1
    assert dst.read_bytes() == b"precious"
    with pytest.raises(FileExistsError, match="--overwrite"):
        tool.convert_clip_weights(str(src), str(dst))
    assert tool.main([str(src), str(dst), "--overwrite"]) == 0
    assert "model" in torch.load(dst, weights_only=True)


def test_bad_input_and_output_names(tool, tmp_path):
    broken = tmp_path / "RN50_broken.pt"
    broken.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="RN50_broken.pt"):
        tool.convert_clip_weights(str(broken), str(tmp_path / "out.pth"))
    assert not (tmp_path / "out.pth").exists()
    with pytest.raises(ValueError, match=r"\.pth"):
        tool.convert_clip_weights(str(broken), str(tmp_path / "out.pkl"))
    assert tool.main([str(tmp_path / "missing.pt"), str(tmp_path / "out.pth")]) == 1
