"""A training job killed (SIGKILL) while writing a checkpoint resumes from the last complete one.

``tools/train_net.py`` runs the instant-test detector (4 iterations, a checkpoint every 2) through
``train_net_stalling_save.py``, which stalls the second checkpoint save (``model_0000003.pth``)
halfway through writing it; the test waits for the stall and kills the process group with
SIGKILL. Then:

* the interrupted checkpoint never appears under its final name, ``last_checkpoint`` still
  names the first one, and only the temporary file holds the partial write;
* ``--resume`` starts from iteration 2 (the complete checkpoint's iteration 1, plus one), removes
  the temporary file when the trainer is built, and writes complete checkpoints.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.common import QUICK_DETECTOR, REPO_ROOT, get_config_file

WRAPPER = Path(__file__).resolve().parent / "train_net_stalling_save.py"


@pytest.fixture(scope="module")
def datasets_root(tmp_path_factory):
    """$DETECTRON2_DATASETS with a tiny synthetic_text_train split (the config's train set)."""
    from fasttcm.data.synthetic.scene_text_dataset import generate_text_dataset

    root = tmp_path_factory.mktemp("datasets")
    generate_text_dataset(root / "synthetic_text" / "train", 4, seed=0, image_size=(128, 128))
    return root


def _train_args(out_dir):
    return [
        "--config-file",
        get_config_file(QUICK_DETECTOR),
        "OUTPUT_DIR",
        str(out_dir),
        "SOLVER.MAX_ITER",
        "4",
        "SOLVER.CHECKPOINT_PERIOD",
        "2",
        "DATASETS.TEST",
        "()",
    ]


def _env(datasets_root):
    return dict(os.environ, DETECTRON2_DATASETS=str(datasets_root), CUDA_VISIBLE_DEVICES="")


def _temp_files(out_dir):
    return sorted(p.name for p in out_dir.iterdir() if p.name.endswith(".tmp"))


def test_sigkill_during_checkpoint_write_then_resume(datasets_root, tmp_path):
    out_dir = tmp_path / "out"
    flag = tmp_path / "writing"
    log_path = tmp_path / "killed_run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(WRAPPER), str(flag), "2", *_train_args(out_dir)],
            cwd=REPO_ROOT,
            env=_env(datasets_root),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kill reaches every child
        )
        try:
            deadline = time.monotonic() + 120
            while not flag.exists():
                assert proc.poll() is None, f"training ended early:\n{log_path.read_text()[-4000:]}"
                assert time.monotonic() < deadline, "the checkpoint write was never reached"
                time.sleep(0.1)
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert flag.read_text() == "3"  # the stalled save was the one of iteration 3

    # killed inside the write: the final name never appeared, the tag names the complete one
    assert not (out_dir / "model_0000003.pth").exists()
    assert not (out_dir / "model_final.pth").exists()
    assert (out_dir / "last_checkpoint").read_text() == "model_0000001.pth"
    stale = _temp_files(out_dir)
    assert len(stale) == 1 and re.fullmatch(r"\.model_0000003\.pth\..+\.tmp", stale[0]), stale
    assert (out_dir / stale[0]).stat().st_size > 0  # the partial write is in the temporary file

    resumed = subprocess.run(
        [sys.executable, "tools/train_net.py", "--resume", *_train_args(out_dir)],
        cwd=REPO_ROOT,
        env=_env(datasets_root),
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-6000:]
    removed = f"Removed 1 temporary file(s) of interrupted checkpoint saves: {stale[0]}"
    assert removed in log
    assert f"Loading trainer from {out_dir / 'model_0000001.pth'}" in log
    assert "Starting training from iteration 2" in log
    # the removal happens when the trainer is built, before training starts
    assert log.index(removed) < log.index("Starting training from iteration 2")
    assert _temp_files(out_dir) == []
    assert (out_dir / "last_checkpoint").read_text() == "model_final.pth"
    for name, iteration in (("model_0000003.pth", 3), ("model_final.pth", 3)):
        checkpoint = torch.load(out_dir / name, map_location="cpu", weights_only=True)
        assert checkpoint["iteration"] == iteration, name
