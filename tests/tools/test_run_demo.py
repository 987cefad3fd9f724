"""tools/run_demo.py: every task points at a shipped config, and results are read back from
metrics.json."""

import json
import os

import pytest

from detectron2.config import get_cfg

from fasttcm import add_fasttcm_config


@pytest.fixture(scope="module")
def run_demo(load_tool):
    return load_tool("run_demo")


def test_every_task_config_exists_and_names_its_evaluator(run_demo):
    expected_evaluator = {
        "text_det": "text_det",
        "dota": "dota",
        "str": "str",
        "e2e_none": "text_e2e",
    }
    for task, (stage, _images) in run_demo.TASKS.items():
        assert os.path.isfile(stage.config), task
        cfg = get_cfg()
        add_fasttcm_config(cfg)
        cfg.merge_from_file(stage.config)
        assert cfg.MODEL.DEVICE == "cpu", task
        if cfg.TEST.EVALUATOR_TYPE:
            assert cfg.TEST.EVALUATOR_TYPE == expected_evaluator[stage.prefix], task


def test_spotting_demo_recognizer_matches_the_recognition_demo(run_demo):
    """make spotting-demo loads the recognition demo's checkpoint into the spotter: same
    MODEL.RECOGNIZER."""

    def recognizer_settings(config):
        cfg = get_cfg()
        add_fasttcm_config(cfg)
        cfg.merge_from_file(config)
        return dict(cfg.MODEL.RECOGNIZER)

    recognition = recognizer_settings(run_demo.TASKS["recognition"][0].config)
    spotting = recognizer_settings(run_demo.TASKS["spotting"][0].config)
    differ = {k: v for k, v in spotting.items() if recognition[k] != v}
    assert set(differ) <= {"CTC_CONFIDENCE_WEIGHT"}, differ  # scores readings, not weights


def test_last_evaluation_is_read_from_metrics_json(run_demo, tmp_path):
    records = [
        {"iteration": 19, "total_loss": 3.0},
        {"iteration": 99, "e2e_none/hmean": 10.0, "e2e_none/precision": 20.0},
        {"iteration": 199, "total_loss": 1.0},
        {
            "iteration": 200,
            "e2e_none/hmean": 61.5,
            "e2e_none/precision": 70.0,
            "e2e_none/recall": 54.9,
            "e2e_generic/hmean": 80.0,
        },
    ]
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    metrics = run_demo.last_eval(str(tmp_path), "e2e_none")
    assert metrics == {"hmean": 61.5, "precision": 70.0, "recall": 54.9}
    line = run_demo.report("test split", run_demo.SPOTTER, metrics)
    assert "precision 70.00  recall 54.90  hmean 61.50" in line
    assert run_demo.last_eval(str(tmp_path / "missing"), "str") is None
    assert "no evaluation results" in run_demo.report("x", run_demo.RECOGNIZER, None)
