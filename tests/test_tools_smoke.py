"""End-to-end runs of the command-line tools on tiny generated data (subprocesses, as a user runs
them).

* ``tools/train_net.py`` trains the instant-test config, evaluates at the end, and
  ``--eval-only`` on the final checkpoint reproduces the same numbers;
* ``tools/train_net.py --num-gpus 2`` on a machine without CUDA runs two CPU processes joined by
  gloo: the training sampler is sharded, the evaluator gathers predictions from both ranks;
* ``tools/demo.py`` writes one PNG per input and predictions.json.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INSTANT = REPO / "projects/FastTCM/configs/quick_schedules/fasttcm_cr50_fpn_dbnet_instant_test.yaml"


@pytest.fixture(scope="module")
def datasets_root(tmp_path_factory):
    """$DETECTRON2_DATASETS holding tiny synthetic_text_{train,test} splits (the builtin names)."""
    from fasttcm.data.synthetic.scene_text_dataset import generate_text_dataset

    root = tmp_path_factory.mktemp("datasets")
    generate_text_dataset(root / "synthetic_text" / "train", 6, seed=0, image_size=(128, 128))
    generate_text_dataset(root / "synthetic_text" / "test", 4, seed=1, image_size=(128, 128))
    return root


def _run(args, datasets_root, timeout=600):
    env = dict(os.environ, DETECTRON2_DATASETS=str(datasets_root), CUDA_VISIBLE_DEVICES="")
    res = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0, f"{args} failed:\n{res.stdout[-4000:]}\n{res.stderr[-6000:]}"
    return res.stdout + res.stderr


def _final_metrics(output_dir: Path) -> dict:
    evals = [json.loads(line) for line in (output_dir / "metrics.json").read_text().splitlines()]
    evals = [e for e in evals if "text_det/hmean" in e]
    assert evals, "no text_det evaluation in metrics.json"
    return {k: v for k, v in evals[-1].items() if k.startswith("text_det/")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, datasets_root):
    out = tmp_path_factory.mktemp("train")
    _run(
        [
            "tools/train_net.py",
            "--config-file",
            str(INSTANT),
            "OUTPUT_DIR",
            str(out),
            "SOLVER.MAX_ITER",
            "4",
        ],
        datasets_root,
    )
    return out


def test_train_net_writes_checkpoints_and_evaluates(trained):
    assert (trained / "model_final.pth").is_file()
    assert (trained / "last_checkpoint").read_text().strip() == "model_final.pth"
    assert (trained / "config.yaml").is_file()
    metrics = _final_metrics(trained)
    for k in ("precision", "recall", "hmean"):
        assert 0.0 <= metrics[f"text_det/{k}"] <= 100.0
    det_txt = trained / "inference" / "synthetic_text_test" / "det_txt"
    assert len(list(det_txt.glob("res_*.txt"))) == 4  # one result file per test image
    assert not list(trained.glob("*.tmp")) and not list(trained.glob(".*.tmp"))


def test_eval_only_reproduces_training_end_numbers(trained, datasets_root, tmp_path):
    out = _run(
        [
            "tools/train_net.py",
            "--config-file",
            str(INSTANT),
            "--eval-only",
            "MODEL.WEIGHTS",
            str(trained / "model_final.pth"),
            "OUTPUT_DIR",
            str(tmp_path),
        ],
        datasets_root,
    )
    at_train_end = _final_metrics(trained)
    # detectron2 prints "copypaste: <names>" then "copypaste: <values>" for each task
    lines = [ln.split("copypaste: ", 1)[1] for ln in out.splitlines() if "copypaste: " in ln]
    names_idx = next(i for i, ln in enumerate(lines) if "hmean" in ln.split(","))
    names = lines[names_idx].split(",")
    values = [float(v) for v in lines[names_idx + 1].split(",")]
    got = dict(zip(names, values))
    for k in ("precision", "recall", "hmean"):
        assert got[k] == pytest.approx(at_train_end[f"text_det/{k}"], abs=1e-3)


def test_train_net_two_cpu_processes_gloo(datasets_root, tmp_path):
    log = _run(
        [
            "tools/train_net.py",
            "--num-gpus",
            "2",
            "--config-file",
            str(INSTANT),
            "OUTPUT_DIR",
            str(tmp_path),
            "SOLVER.MAX_ITER",
            "2",
            "SOLVER.IMS_PER_BATCH",
            "2",
        ],
        datasets_root,
    )
    assert "gloo" in log
    assert "World size: 2" in log
    assert (tmp_path / "model_final.pth").is_file()
    # rank 0 gathered the predictions of both ranks: one result file per test image
    det_txt = tmp_path / "inference" / "synthetic_text_test" / "det_txt"
    assert len(list(det_txt.glob("res_*.txt"))) == 4


def test_demo_draws_every_input(trained, datasets_root, tmp_path):
    images = sorted((datasets_root / "synthetic_text" / "test" / "images").iterdir())[:2]
    out = tmp_path / "vis"
    _run(
        [
            "tools/demo.py",
            "--config-file",
            str(INSTANT),
            "--input",
            *map(str, images),
            "--output",
            str(out),
            "--opts",
            "MODEL.WEIGHTS",
            str(trained / "model_final.pth"),
        ],
        datasets_root,
    )
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted(p.stem + ".png" for p in images)
    preds = json.loads((out / "predictions.json").read_text())
    assert set(preds) == {str(p) for p in images}
    for result in preds.values():
        assert result["status"] == "ok"
        for r in result["predictions"]:
            assert len(r["polygon"]) >= 3 and 0.0 <= r["score"] <= 1.0
