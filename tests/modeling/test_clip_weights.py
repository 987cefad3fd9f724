"""CLIP weight loading: OpenAI RN50.pt (TorchScript) and open_clip state dicts, at full RN50 shapes.

The fake checkpoints are random, built here: the OpenAI one from a hand-written list of RN50 key
names and shapes (independent of open_clip), the open_clip one from ``open_clip.model.CLIP``.
"""

import logging
from collections import OrderedDict
from typing import Dict, List, Tuple

import pytest
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from torch import nn

from fasttcm.modeling.clip import (
    CLIPImageEncoder,
    CLIPTextContextEncoder,
    clip_to_detectron2_state_dict,
    load_clip_weights,
    read_clip_state_dict,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")

RN50_PARAMETER_COUNT = (
    102_007_137  # published size of CLIP RN50 (parameters, BN statistics excluded)
)


def _bn(prefix: str, channels: int) -> List[Tuple[str, Tuple[int, ...]]]:
    return [
        (f"{prefix}.{n}", (channels,)) for n in ("weight", "bias", "running_mean", "running_var")
    ] + [(f"{prefix}.num_batches_tracked", ())]


def openai_rn50_shapes() -> "OrderedDict[str, Tuple[int, ...]]":
    """Names and shapes of the state dict of OpenAI's RN50.pt (TorchScript), written out by hand."""
    spec = [("visual.conv1.weight", (32, 3, 3, 3))] + _bn("visual.bn1", 32)
    spec += [("visual.conv2.weight", (32, 32, 3, 3))] + _bn("visual.bn2", 32)
    spec += [("visual.conv3.weight", (64, 32, 3, 3))] + _bn("visual.bn3", 64)
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), start=1):
        for b in range(blocks):
            p = f"visual.layer{stage}.{b}"
            spec += [(f"{p}.conv1.weight", (planes, inplanes, 1, 1))] + _bn(f"{p}.bn1", planes)
            spec += [(f"{p}.conv2.weight", (planes, planes, 3, 3))] + _bn(f"{p}.bn2", planes)
            spec += [(f"{p}.conv3.weight", (planes * 4, planes, 1, 1))] + _bn(
                f"{p}.bn3", planes * 4
            )
            if b == 0:
                spec += [(f"{p}.downsample.0.weight", (planes * 4, inplanes, 1, 1))] + _bn(
                    f"{p}.downsample.1", planes * 4
                )
            inplanes = planes * 4
    spec += [("visual.attnpool.positional_embedding", (50, 2048))]
    for proj in ("k_proj", "q_proj", "v_proj"):
        spec += [
            (f"visual.attnpool.{proj}.weight", (2048, 2048)),
            (f"visual.attnpool.{proj}.bias", (2048,)),
        ]
    spec += [
        ("visual.attnpool.c_proj.weight", (1024, 2048)),
        ("visual.attnpool.c_proj.bias", (1024,)),
    ]
    spec += [
        ("positional_embedding", (77, 512)),
        ("text_projection", (512, 1024)),
        ("logit_scale", ()),
    ]
    spec += [("token_embedding.weight", (49408, 512))]
    for i in range(12):
        p = f"transformer.resblocks.{i}"
        spec += [(f"{p}.attn.in_proj_weight", (1536, 512)), (f"{p}.attn.in_proj_bias", (1536,))]
        spec += [(f"{p}.attn.out_proj.weight", (512, 512)), (f"{p}.attn.out_proj.bias", (512,))]
        spec += [(f"{p}.ln_1.weight", (512,)), (f"{p}.ln_1.bias", (512,))]
        spec += [(f"{p}.mlp.c_fc.weight", (2048, 512)), (f"{p}.mlp.c_fc.bias", (2048,))]
        spec += [(f"{p}.mlp.c_proj.weight", (512, 2048)), (f"{p}.mlp.c_proj.bias", (512,))]
        spec += [(f"{p}.ln_2.weight", (512,)), (f"{p}.ln_2.bias", (512,))]
    spec += [("ln_final.weight", (512,)), ("ln_final.bias", (512,))]
    spec += [("input_resolution", ()), ("context_length", ()), ("vocab_size", ())]
    return OrderedDict(spec)


class _Node(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _is_buffer(name: str) -> bool:
    return name.endswith(("running_mean", "running_var", "num_batches_tracked")) or name in (
        "input_resolution",
        "context_length",
        "vocab_size",
    )


def write_openai_torchscript(path, shapes) -> Dict[str, torch.Tensor]:
    """Save a TorchScript archive whose state dict has `shapes`; matrices in float16 like
    RN50.pt."""
    generator = torch.Generator().manual_seed(0)
    root, values = _Node(), {}
    for name, shape in shapes.items():
        *path_parts, leaf = name.split(".")
        module = root
        for part in path_parts:
            if not hasattr(module, part):
                module.add_module(part, _Node())
            module = getattr(module, part)
        if name.endswith("num_batches_tracked") or name in (
            "input_resolution",
            "context_length",
            "vocab_size",
        ):
            value = torch.tensor(224 if name == "input_resolution" else 7, dtype=torch.long)
        else:
            value = torch.randn(shape, generator=generator)
            value = value.half() if value.dim() >= 2 else value
        values[name] = value
        if _is_buffer(name):
            module.register_buffer(leaf, value)
        else:
            module.register_parameter(leaf, nn.Parameter(value, requires_grad=False))
    torch.jit.script(root).save(str(path))
    return values


@pytest.fixture(scope="module")
def rn50_encoders():
    """Full-size CR50 image encoder and CLIP RN50 text encoder (random init), shared by the
    tests."""
    torch.manual_seed(0)
    return CLIPImageEncoder(), CLIPTextContextEncoder()


def _assert_loaded(image_encoder, text_encoder, expected: Dict[str, torch.Tensor]):
    own = {"visual." + k: v for k, v in image_encoder.state_dict().items()}
    own.update(text_encoder.state_dict())
    for name, value in own.items():
        assert torch.equal(value, expected[name].to(value.dtype)), name


def test_hand_written_rn50_spec_has_the_published_size():
    shapes = openai_rn50_shapes()
    count = sum(torch.Size(s).numel() for n, s in shapes.items() if not _is_buffer(n))
    assert count == RN50_PARAMETER_COUNT


def test_openai_torchscript_rn50_loads_without_missing_keys(tmp_path, rn50_encoders, caplog):
    image_encoder, text_encoder = rn50_encoders
    path = tmp_path / "RN50.pt"
    values = write_openai_torchscript(path, openai_rn50_shapes())
    with caplog.at_level(logging.WARNING):
        result = load_clip_weights(
            str(path), image_encoder=image_encoder, text_encoder=text_encoder
        )
    assert result.missing_keys == []
    assert result.unexpected_keys == []
    assert "missing" not in caplog.text
    state_dict = read_clip_state_dict(str(path))
    assert all(
        v.dtype in (torch.float32, torch.int64) for v in state_dict.values()
    )  # float16 -> float32
    assert "input_resolution" not in state_dict and "logit_scale" not in state_dict
    _assert_loaded(image_encoder, text_encoder, values)


def test_open_clip_rn50_state_dict_loads_without_missing_keys(tmp_path, rn50_encoders):
    image_encoder, text_encoder = rn50_encoders
    torch.manual_seed(1)
    model = CLIP(
        1024,
        CLIPVisionCfg(layers=(3, 4, 6, 3), width=64, image_size=224),
        CLIPTextCfg(),
        quick_gelu=True,
    )
    state_dict = model.state_dict()
    path = tmp_path / "open_clip_rn50.pt"
    torch.save(state_dict, path)
    result = load_clip_weights(str(path), image_encoder=image_encoder, text_encoder=text_encoder)
    assert result.missing_keys == []
    assert result.unexpected_keys == []
    _assert_loaded(image_encoder, text_encoder, state_dict)


def _tiny_clip_state_dict(seed: int = 0) -> Dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = CLIP(
        64,
        CLIPVisionCfg(layers=(1, 1, 1, 1), width=8, image_size=224, head_width=32),
        CLIPTextCfg(width=32, heads=2, layers=2),
        quick_gelu=True,
    )
    return model.state_dict()


def _tiny_encoders():
    return (
        CLIPImageEncoder(layers=(1, 1, 1, 1), width=8, heads=2, output_dim=64),
        CLIPTextContextEncoder(width=32, layers=2, heads=2, embed_dim=64),
    )


def test_wrapped_and_prefixed_state_dict(tmp_path):
    state_dict = _tiny_clip_state_dict()
    wrapped = {"state_dict": {"module." + k: v for k, v in state_dict.items()}, "epoch": 3}
    path = tmp_path / "wrapped.pt"
    torch.save(wrapped, path)
    image_encoder, text_encoder = _tiny_encoders()
    result = load_clip_weights(str(path), image_encoder=image_encoder, text_encoder=text_encoder)
    assert result.missing_keys == [] and result.unexpected_keys == []
    _assert_loaded(image_encoder, text_encoder, state_dict)


def test_image_only_model_reports_no_missing_keys(tmp_path):
    path = tmp_path / "clip.pt"
    torch.save(_tiny_clip_state_dict(), path)
    image_encoder, _ = _tiny_encoders()
    result = load_clip_weights(str(path), image_encoder=image_encoder, text_encoder=None)
    assert result.missing_keys == [] and result.unexpected_keys == []


def test_encoder_without_attention_pool_loads_the_rest(tmp_path):
    state_dict = _tiny_clip_state_dict()
    path = tmp_path / "clip.pt"
    torch.save(state_dict, path)
    image_encoder = CLIPImageEncoder(
        layers=(1, 1, 1, 1), width=8, heads=2, output_dim=64, with_attention_pool=False
    )
    result = load_clip_weights(str(path), image_encoder=image_encoder)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert torch.equal(
        image_encoder.layer4[0].conv3.weight, state_dict["visual.layer4.0.conv3.weight"]
    )


def test_attnpool_positional_table_is_resized_to_the_model_grid(tmp_path):
    state_dict = _tiny_clip_state_dict()
    path = tmp_path / "clip.pt"
    torch.save(state_dict, path)
    image_encoder = CLIPImageEncoder(
        layers=(1, 1, 1, 1), width=8, heads=2, output_dim=64, attnpool_grid=5
    )
    load_clip_weights(str(path), image_encoder=image_encoder)
    table = state_dict["visual.attnpool.positional_embedding"]
    grid = table[1:].reshape(1, 7, 7, -1).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(
        grid, size=(5, 5), mode="bilinear", align_corners=False
    )
    loaded = image_encoder.attnpool.positional_embedding.detach()
    assert torch.equal(loaded[0], table[0])
    torch.testing.assert_close(loaded[1:], expected.permute(0, 2, 3, 1).reshape(25, -1))


def test_shape_mismatch_names_the_file_and_key(tmp_path):
    path = tmp_path / "clip.pt"
    torch.save(_tiny_clip_state_dict(), path)
    image_encoder = CLIPImageEncoder(layers=(1, 1, 1, 1), width=16, heads=2, output_dim=64)
    with pytest.raises(ValueError, match=r"clip\.pt.*visual\.conv1\.weight"):
        load_clip_weights(str(path), image_encoder=image_encoder)


@pytest.mark.parametrize("content", [b"not a checkpoint at all", b"PK\x03\x04 truncated zip"])
def test_corrupt_file_error_names_the_file(tmp_path, content):
    path = tmp_path / "broken_RN50.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="broken_RN50.pt"):
        read_clip_state_dict(str(path))


def test_truncated_checkpoint_error_names_the_file(tmp_path):
    path = tmp_path / "clip.pt"
    torch.save(_tiny_clip_state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"clip\.pt"):
        read_clip_state_dict(str(path))


def test_file_without_clip_keys_is_rejected(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match=r"resnet\.pt.*no CLIP"):
        read_clip_state_dict(str(path))


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nowhere/RN50.pt"):
        read_clip_state_dict("/nowhere/RN50.pt")


def test_detectron2_names():
    state_dict = {
        "visual.conv1.weight": torch.zeros(1),
        "ln_final.bias": torch.ones(1),
        "logit_bias": torch.ones(1),
    }
    renamed = clip_to_detectron2_state_dict(state_dict)
    assert set(renamed) == {
        "backbone.bottom_up.visual.conv1.weight",
        "backbone.bottom_up.text_encoder.ln_final.bias",
    }
