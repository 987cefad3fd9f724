"""tools/compose_spotter_weights.py: detector + recognizer checkpoints -> one spotter checkpoint."""

import os
import sys
from pathlib import Path

import pytest
import torch

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from fasttcm.modeling.meta_arch.text_detector import FastTCMTextDetector
from fasttcm.modeling.meta_arch.text_recognizer import FastTCMTextRecognizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "modeling"))
from test_text_spotter import _tiny_cfg  # noqa: E402  (the tiny spotter settings of the spotter tests)


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("compose_spotter_weights")


def test_composed_checkpoint_loads_both_parts_into_the_spotter(tool, tmp_path):
    cfg = _tiny_cfg()
    torch.manual_seed(1)
    detector = FastTCMTextDetector(cfg)
    recognizer = FastTCMTextRecognizer(cfg)
    torch.save({"model": detector.state_dict(), "iteration": 999}, tmp_path / "det.pth")
    torch.save({"model": recognizer.state_dict(), "iteration": 5}, tmp_path / "rec.pth")
    out = str(tmp_path / "spotter_init.pth")
    assert (
        tool.main(
            [
                "--detector",
                str(tmp_path / "det.pth"),
                "--recognizer",
                str(tmp_path / "rec.pth"),
                "--output",
                out,
            ]
        )
        == 0
    )

    torch.manual_seed(2)
    spotter = build_model(cfg)
    DetectionCheckpointer(spotter).load(out)
    state = spotter.state_dict()
    for name, value in detector.state_dict().items():
        torch.testing.assert_close(state[name], value, msg=name)
    for name, value in recognizer.state_dict().items():
        torch.testing.assert_close(state[name], value, msg=name)
    assert "iteration" not in torch.load(out, weights_only=True)  # a fresh schedule for the spotter

    # never overwrites unless asked; inputs of the wrong role are named
    before = os.path.getmtime(out)
    assert (
        tool.main(
            [
                "--detector",
                str(tmp_path / "det.pth"),
                "--recognizer",
                str(tmp_path / "rec.pth"),
                "--output",
                out,
            ]
        )
        == 1
    )
    assert os.path.getmtime(out) == before
    with pytest.raises(ValueError, match="det.pth.*not a FastTCMTextRecognizer"):
        tool.compose_spotter_weights(
            str(tmp_path / "det.pth"), str(tmp_path / "det.pth"), str(tmp_path / "x.pth")
        )
    with pytest.raises(ValueError, match="rec.pth.*not a text detector"):
        tool.compose_spotter_weights(
            str(tmp_path / "rec.pth"), str(tmp_path / "rec.pth"), str(tmp_path / "x.pth")
        )
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth"):
        tool.compose_spotter_weights(
            str(tmp_path / "junk.pth"), str(tmp_path / "rec.pth"), str(tmp_path / "x.pth")
        )
