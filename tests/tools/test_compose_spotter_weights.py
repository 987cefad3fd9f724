"""tools/compose_spotter_weights.py: detector + recognizer checkpoints -> one spotter checkpoint,
checked against the spotter its config builds."""

import logging
import os

import pytest
import torch

from detectron2.checkpoint import DetectionCheckpointer

from fasttcm.engine import IncompleteWeightsError
from fasttcm.modeling.meta_arch.text_detector import FastTCMTextDetector
from fasttcm.modeling.meta_arch.text_recognizer import FastTCMTextRecognizer
from tests.common import (
    QUICK_DETECTOR,
    QUICK_SPOTTER,
    build_quick_model,
    get_config_file,
    load_config,
)

SPOTTER_CONFIG = get_config_file(QUICK_SPOTTER)


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("compose_spotter_weights")


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Detector and recognizer checkpoints of the quick spotter's widths, and their states."""
    folder = tmp_path_factory.mktemp("parts")
    cfg = load_config(QUICK_SPOTTER)
    torch.manual_seed(1)
    detector, recognizer = FastTCMTextDetector(cfg), FastTCMTextRecognizer(cfg)
    torch.save({"model": detector.state_dict(), "iteration": 999}, folder / "det.pth")
    torch.save({"model": recognizer.state_dict(), "iteration": 5}, folder / "rec.pth")
    return folder, detector.state_dict(), recognizer.state_dict()


def _argv(folder, out, *extra, detector="det.pth", recognizer="rec.pth"):
    return [
        "--detector",
        str(folder / detector),
        "--recognizer",
        str(folder / recognizer),
        "--config-file",
        SPOTTER_CONFIG,
        "--output",
        str(out),
        *extra,
    ]


def test_composed_checkpoint_loads_both_parts_into_the_spotter(tool, parts, tmp_path):
    folder, det_state, rec_state = parts
    out = tmp_path / "spotter_init.pth"
    assert tool.main(_argv(folder, out)) == 0

    spotter = build_quick_model(QUICK_SPOTTER, seed=2)
    DetectionCheckpointer(spotter).load(str(out))
    state = spotter.state_dict()
    for name, value in {**det_state, **rec_state}.items():
        torch.testing.assert_close(state[name], value, msg=name)
    assert "iteration" not in torch.load(out, weights_only=True)  # a fresh schedule for the spotter

    # never overwrites unless asked; inputs of the wrong role are named
    before = os.path.getmtime(out)
    assert tool.main(_argv(folder, out)) == 1
    assert os.path.getmtime(out) == before
    kwargs = {"config_file": SPOTTER_CONFIG}
    x = str(tmp_path / "x.pth")
    with pytest.raises(ValueError, match="det.pth.*not a FastTCMTextRecognizer"):
        tool.compose_spotter_weights(str(folder / "det.pth"), str(folder / "det.pth"), x, **kwargs)
    with pytest.raises(ValueError, match="rec.pth.*not a text detector"):
        tool.compose_spotter_weights(str(folder / "rec.pth"), str(folder / "rec.pth"), x, **kwargs)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth"):
        tool.compose_spotter_weights(
            str(tmp_path / "junk.pth"), str(folder / "rec.pth"), x, **kwargs
        )
    assert not os.path.exists(x)


def test_missing_and_misshaped_tensors_are_listed_and_nothing_is_written(tool, parts, tmp_path):
    folder, det_state, rec_state = parts
    # a detector checkpoint without its text head, and a recognizer one with a wrong-width tensor
    # (BatchNorm's num_batches_tracked counters are not weights: detectron2 never asks for them)
    head = sorted(k for k in det_state if k.startswith("text_head.") and "num_batches" not in k)
    assert head
    trimmed = {k: v for k, v in det_state.items() if not k.startswith("text_head.")}
    torch.save({"model": trimmed}, tmp_path / "det_no_head.pth")
    bad_key = next(k for k, v in rec_state.items() if v.ndim == 2)
    wrong = dict(rec_state)
    wrong[bad_key] = torch.zeros(rec_state[bad_key].shape[0] + 1, rec_state[bad_key].shape[1])
    torch.save({"model": wrong}, tmp_path / "rec_wrong.pth")
    out = tmp_path / "spotter_init.pth"
    with pytest.raises(IncompleteWeightsError) as info:
        tool.compose_spotter_weights(
            str(tmp_path / "det_no_head.pth"),
            str(tmp_path / "rec_wrong.pth"),
            str(out),
            config_file=SPOTTER_CONFIG,
        )
    message = str(info.value)
    assert f"{len(head)} missing: {head[0]}" in message
    shape = tuple(rec_state[bad_key].shape)
    wrong_shape = (shape[0] + 1, shape[1])
    assert f"1 with the wrong shape: {bad_key} (weights {wrong_shape}, model {shape})" in message
    assert SPOTTER_CONFIG in message and "--allow-partial" in message
    assert not out.exists() and not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    # the command line exits non-zero
    argv = _argv(tmp_path, out, detector="det_no_head.pth", recognizer="rec_wrong.pth")
    assert tool.main(argv) == 1 and not out.exists()


def test_allow_partial_writes_and_logs_the_table(tool, parts, tmp_path, caplog):
    folder, det_state, rec_state = parts
    trimmed = {k: v for k, v in det_state.items() if not k.startswith("text_head.")}
    torch.save({"model": trimmed}, tmp_path / "det_no_head.pth")
    out = tmp_path / "spotter_init.pth"
    argv = _argv(tmp_path, out, "--allow-partial", detector="det_no_head.pth")
    argv[3] = str(folder / "rec.pth")  # --recognizer from the shared parts
    with caplog.at_level(logging.WARNING, logger="fasttcm.compose_spotter_weights"):
        assert tool.main(argv) == 0
    saved = torch.load(out, weights_only=True)["model"]
    assert set(saved) == set(trimmed) | set(rec_state)
    warning = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    num_head = sum(k.startswith("text_head.") and "num_batches" not in k for k in det_state)
    assert f"--allow-partial: {out} leaves the spotter" in warning
    assert f"{num_head} missing" in warning
    assert "| module" in warning and "| text_head" in warning  # the per-module table


def test_a_config_that_builds_no_spotter_is_refused(tool, parts, tmp_path):
    folder, _, _ = parts
    with pytest.raises(ValueError, match="FastTCMTextDetector.*not a text spotter config"):
        tool.compose_spotter_weights(
            str(folder / "det.pth"),
            str(folder / "rec.pth"),
            str(tmp_path / "x.pth"),
            config_file=get_config_file(QUICK_DETECTOR),
        )
    assert not (tmp_path / "x.pth").exists()
