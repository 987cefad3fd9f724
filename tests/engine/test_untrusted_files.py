"""Files from elsewhere run no code, and a model is never evaluated or served half random.

Each payload test plants a pickle, a torch checkpoint or a YAML tag that would create a marker
file if it ran, goes through the real entry point, and asserts the error names the file and the
marker is absent.
"""

import logging
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from detectron2.config import get_cfg

from fasttcm import add_fasttcm_config, merge_config_file
from fasttcm.engine import (
    AtomicDetectionCheckpointer,
    CheckpointPathError,
    FastTCMPredictor,
    IncompleteWeightsError,
)
from fasttcm.utils.safe_pickle import UnsafePickleError, restricted_pickle_load
from tests.common import QUICK_DETECTOR, REPO_ROOT, get_config_file


class _MarkerPayload:
    """Unpickling this calls ``os.system("touch <marker>")``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _TinyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(3, 4)
        self.head = nn.Linear(4, 2)
        self.register_buffer("steps", torch.zeros(1))


def _full_state(model):
    return {k: v.detach().clone() + 1.0 for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------------- pickles (.pkl)
def test_pkl_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "owned"
    weights = tmp_path / "evil.pkl"
    weights.write_bytes(pickle.dumps({"model": {"w": _MarkerPayload(marker)}, "__author__": "x"}))
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl.*posix\.system|evil\.pkl.*os\.system"):
        AtomicDetectionCheckpointer(_TinyModel()).load(str(weights))
    assert not marker.exists()


def test_pkl_with_numpy_arrays_loads(tmp_path):
    model = _TinyModel()
    state = {k: v.numpy() for k, v in _full_state(model).items()}
    weights = tmp_path / "zoo.pkl"
    with open(weights, "wb") as f:
        pickle.dump({"model": state, "__author__": "test"}, f, protocol=2)
    AtomicDetectionCheckpointer(model).load_trained_weights(str(weights))
    np.testing.assert_array_equal(model.head.bias.detach().numpy(), state["head.bias"])


def test_caffe2_style_blobs_pickle_drops_momentum(tmp_path):
    data = {"blobs": {"conv1_w": np.ones((2, 2), np.float32), "conv1_w_momentum": np.zeros(2)}}
    weights = tmp_path / "c2.pkl"
    weights.write_bytes(pickle.dumps(data, protocol=2))
    loaded = AtomicDetectionCheckpointer(_TinyModel())._load_file(str(weights))
    assert loaded["matching_heuristics"] and list(loaded["model"]) == ["conv1_w"]


def test_restricted_unpickler_names_file_on_garbage(tmp_path):
    path = tmp_path / "garbage.pkl"
    path.write_bytes(b"not a pickle at all")
    with open(path, "rb") as f, pytest.raises(pickle.UnpicklingError, match="garbage.pkl"):
        restricted_pickle_load(f, str(path))


# --------------------------------------------------------------------------- torch checkpoints
def test_pth_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "owned"
    weights = tmp_path / "evil.pth"
    torch.save({"model": {"w": _MarkerPayload(marker)}}, weights)
    with pytest.raises(RuntimeError, match=r"evil\.pth.*weights-only"):
        AtomicDetectionCheckpointer(_TinyModel()).load(str(weights))
    assert not marker.exists()


# -------------------------------------------------------------------------------------- configs
def _payload_yaml(marker):
    return f'MODEL:\n  WEIGHTS: !!python/object/apply:os.system ["touch {marker}"]\n'


def test_yaml_python_tag_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "owned"
    config = tmp_path / "evil.yaml"
    config.write_text(_payload_yaml(marker))
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    with pytest.raises(ValueError, match=r"evil\.yaml.*YAML tag"):
        merge_config_file(cfg, str(config))
    assert not marker.exists()


def test_yaml_python_tag_in_a_base_file_is_refused(tmp_path):
    marker = tmp_path / "owned"
    (tmp_path / "Base-evil.yaml").write_text(_payload_yaml(marker))
    child = tmp_path / "child.yaml"
    child.write_text('_BASE_: "Base-evil.yaml"\nSOLVER:\n  MAX_ITER: 3\n')
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    with pytest.raises(ValueError, match="YAML tag"):
        merge_config_file(cfg, str(child))
    assert not marker.exists()


def test_base_chains_still_load():
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, get_config_file(QUICK_DETECTOR))
    assert cfg.MODEL.META_ARCHITECTURE == "FastTCMTextDetector" and cfg.INPUT.DB_TARGETS


def test_train_net_refuses_a_tagged_config_without_running_it(tmp_path):
    marker = tmp_path / "owned"
    config = tmp_path / "evil.yaml"
    config.write_text(_payload_yaml(marker))
    proc = subprocess.run(
        [sys.executable, "tools/train_net.py", "--config-file", str(config), "--eval-only"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "evil.yaml" in proc.stderr and "YAML tag" in proc.stderr
    assert not marker.exists()


# --------------------------------------------------------------------------- last_checkpoint
@pytest.mark.parametrize("tag", ["../evil.pth", "/tmp/evil.pth", "sub/model.pth", ".."])
def test_resume_refuses_last_checkpoint_outside_output_dir(tmp_path, tag):
    marker = tmp_path / "owned"
    out = tmp_path / "out"
    out.mkdir()
    torch.save({"model": {"w": _MarkerPayload(marker)}}, tmp_path / "evil.pth")
    (out / "last_checkpoint").write_text(tag)
    checkpointer = AtomicDetectionCheckpointer(_TinyModel(), save_dir=str(out))
    with pytest.raises(CheckpointPathError, match="last_checkpoint"):
        checkpointer.resume_or_load("", resume=True)
    assert not marker.exists()


def test_resume_refuses_a_link_leading_out_of_output_dir(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    torch.save({"model": _full_state(_TinyModel())}, tmp_path / "elsewhere.pth")
    os.symlink(tmp_path / "elsewhere.pth", out / "model_final.pth")
    (out / "last_checkpoint").write_text("model_final.pth")
    with pytest.raises(CheckpointPathError, match="outside"):
        AtomicDetectionCheckpointer(_TinyModel(), save_dir=str(out)).resume_or_load("", resume=True)


def test_resume_reads_a_checkpoint_inside_output_dir(tmp_path):
    model = _TinyModel()
    checkpointer = AtomicDetectionCheckpointer(model, save_dir=str(tmp_path))
    checkpointer.save("model_0000004", iteration=4)
    fresh = AtomicDetectionCheckpointer(_TinyModel(), save_dir=str(tmp_path))
    assert fresh.resume_or_load("", resume=True)["iteration"] == 4


# ------------------------------------------------------------------------ incomplete weights
def test_incomplete_weights_are_refused_for_evaluation_with_the_keys(tmp_path):
    model = _TinyModel()
    state = _full_state(model)
    del state["head.weight"]
    state["backbone.bias"] = torch.zeros(7)  # wrong shape
    path = tmp_path / "partial.pth"
    torch.save({"model": state}, path)
    with pytest.raises(IncompleteWeightsError) as info:
        AtomicDetectionCheckpointer(_TinyModel()).load_trained_weights(str(path))
    message = str(info.value)
    assert "partial.pth" in message and "head.weight" in message
    assert "backbone.bias (file (7,), model (4,))" in message


def test_empty_weights_are_refused_for_evaluation():
    with pytest.raises(IncompleteWeightsError, match="MODEL.WEIGHTS is empty"):
        AtomicDetectionCheckpointer(_TinyModel()).load_trained_weights("")


def test_partial_initialisation_for_training_logs_a_table(tmp_path, caplog):
    state = _full_state(_TinyModel())
    del state["head.weight"], state["head.bias"]
    path = tmp_path / "backbone_only.pth"
    torch.save({"model": state}, path)
    model = _TinyModel()
    checkpointer = AtomicDetectionCheckpointer(model)
    with caplog.at_level(logging.INFO):
        checkpointer.load(str(path))  # training: allowed
    table = checkpointer.load_table(checkpointer.last_incompatible)
    rows = {
        cells[0]: cells[1:]
        for cells in (
            [c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]
        )
    }
    assert rows == {"backbone": ["2", "0", "0"], "head": ["0", "2", "0"], "steps": ["1", "0", "0"]}
    assert torch.equal(model.backbone.weight, state["backbone.weight"])
    assert "Weights loaded per module" in caplog.text


def test_predictor_refuses_a_random_model():
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    merge_config_file(cfg, get_config_file(QUICK_DETECTOR))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    with pytest.raises(IncompleteWeightsError):
        FastTCMPredictor(cfg)


def test_eval_only_exits_non_zero_with_random_weights(tmp_path):
    proc = subprocess.run(
        [
            sys.executable, "tools/train_net.py", "--config-file", get_config_file(QUICK_DETECTOR),
            "--eval-only", "MODEL.WEIGHTS", "", "OUTPUT_DIR", str(tmp_path), "MODEL.DEVICE", "cpu",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "randomly initialised model is refused" in proc.stderr


# ------------------------------------------------------------------------- stale temp files
def test_stale_checkpoint_temp_files_are_removed(tmp_path):
    stale = [tmp_path / ".model_0000009.pth.k2j3.tmp", tmp_path / ".last_checkpoint.a1b2.tmp"]
    kept = [tmp_path / "model_0000004.pth", tmp_path / ".other.tmp", tmp_path / "notes.tmp"]
    for path in stale + kept:
        path.write_bytes(b"x")
    removed = AtomicDetectionCheckpointer(
        _TinyModel(), save_dir=str(tmp_path)
    ).remove_stale_temp_files()
    assert sorted(removed) == sorted(str(p) for p in stale)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale)
