"""tools/convert_checkpoint.py: the command line, its summary and its last-line JSON."""

import json

import pytest
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

from tests.common import (
    QUICK_DETECTOR,
    QUICK_RECOGNIZER,
    build_model_from_cfg,
    get_config_file,
    load_config,
)
from tests.engine.test_convert_tcm import _official_state


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("convert_checkpoint")


def _last_json(capsys) -> dict:
    lines = capsys.readouterr().out.strip().splitlines()
    return json.loads(lines[-1])


def test_tcm_conversion_prints_counts_lists_and_config_last(tool, tmp_path, capsys):
    model = build_model_from_cfg(load_config(QUICK_DETECTOR, "MODEL.FASTTCM.MODE", "tcm"), seed=4)
    state = _official_state(model)
    state["identity_head.unused_buffer"] = torch.zeros(1)
    source = tmp_path / "tcm_ic15.pth"
    torch.save({"state_dict": state}, source)
    out = tmp_path / "converted.pth"
    argv = ["--from", "tcm", "--input", str(source), "--output", str(out)]
    argv += ["--config-file", get_config_file(QUICK_DETECTOR)]
    assert tool.main(argv) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed.strip().splitlines()[-1])
    assert (summary["consumed"], summary["unused"], summary["unfilled"]) == (len(state) - 1, 1, 0)
    assert list(summary["unused_keys"]) == ["identity_head.unused_buffer"]
    assert summary["config"]["MODEL.FASTTCM.MODE"] == "tcm"
    assert summary["output"] == str(out) and out.is_file()
    assert 'MODE: "tcm"' in printed  # the YAML snippet
    # the output is never replaced without --overwrite; the failure is JSON too
    assert tool.main(argv) == 1
    failure = _last_json(capsys)
    assert "--overwrite" in failure["error"] and failure["consumed"] == 0


def test_open_clip_conversion_reports_the_parts_clip_cannot_fill(tool, tmp_path, capsys):
    torch.manual_seed(0)
    clip = CLIP(
        64,
        CLIPVisionCfg(layers=(1, 1, 1, 1), width=8, image_size=224, head_width=32),
        CLIPTextCfg(width=32, heads=2, layers=2),
        quick_gelu=True,
    )
    source = tmp_path / "tiny_open_clip.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in clip.state_dict().items()}}, source)
    out = tmp_path / "clip.pth"
    argv = ["--from", "open_clip", "--input", str(source), "--output", str(out)]
    assert tool.main(argv + ["--config-file", get_config_file(QUICK_DETECTOR)]) == 0
    summary = _last_json(capsys)
    assert summary["consumed"] == len(clip.state_dict()) - 1  # logit_scale is not a weight here
    assert "backbone.bottom_up.prompt_learner.contexts" in summary["unfilled_keys"]
    assert any("attnpool.positional_embedding: resized" in note for note in summary["notes"])
    written = torch.load(out, weights_only=True)["model"]
    table = written["backbone.bottom_up.visual.attnpool.positional_embedding"]
    assert table.shape == (1 + 4 * 4, 256)  # ATTNPOOL_GRID 4 of the quick config

    # the recognizer's CLIP towers are a target as well; its widths differ: a named shape error
    argv[-1] = str(tmp_path / "rec.pth")
    assert tool.main(argv + ["--config-file", get_config_file(QUICK_RECOGNIZER)]) == 1
    assert "has shape" in _last_json(capsys)["error"]


def test_bad_input_is_exit_status_1_with_the_reason(tool, tmp_path, capsys):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00" * 128)
    argv = ["--from", "clip4str", "--input", str(garbage), "--output", str(tmp_path / "o.pth")]
    assert tool.main(argv + ["--config-file", get_config_file(QUICK_RECOGNIZER)]) == 1
    assert "garbage.ckpt" in _last_json(capsys)["error"]
    assert not (tmp_path / "o.pth").exists()


def test_convert_clip_weights_resizes_the_attnpool_table_to_the_grid(load_tool, tmp_path):
    torch.manual_seed(0)
    clip = CLIP(
        64,
        CLIPVisionCfg(layers=(1, 1, 1, 1), width=8, image_size=224, head_width=32),
        CLIPTextCfg(width=32, heads=2, layers=2),
    )
    source = tmp_path / "clip.pt"
    torch.save(clip.state_dict(), source)
    out = tmp_path / "clip_grid4.pth"
    assert (
        load_tool("convert_clip_weights").main([str(source), str(out), "--attnpool-grid", "4"]) == 0
    )
    table = torch.load(out, weights_only=True)["model"][
        "backbone.bottom_up.visual.attnpool.positional_embedding"
    ]
    assert table.shape == (17, 256)
    torch.testing.assert_close(
        table[0], clip.state_dict()["visual.attnpool.positional_embedding"][0]
    )
