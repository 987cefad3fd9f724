"""WordAccuracyEvaluator: the 36-character protocol, case-sensitive mode, 1-NED, skips and
misses."""

import json

import pytest

from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog

from fasttcm import add_fasttcm_config
from fasttcm.evaluation import EVALUATORS, build_evaluator
from fasttcm.evaluation.str_evaluator import (
    WordAccuracyEvaluator,
    edit_distance,
    word_accuracy_metrics,
)


@pytest.mark.parametrize(
    "a, b, d",
    [
        ("kitten", "sitting", 3),
        ("", "abc", 3),
        ("abc", "abc", 0),
        ("flaw", "lawn", 2),
        ("ab", "ba", 2),
    ],
)
def test_edit_distance(a, b, d):
    assert edit_distance(a, b) == d == edit_distance(b, a)


def test_metrics_on_adapted_strings():
    m = word_accuracy_metrics(["hello", "word", "abc", ""], ["hello", "world", "abc", "xy"])
    assert m["num_samples"] == 4
    assert m["accuracy"] == pytest.approx(50.0)
    assert m["one_minus_NED"] == pytest.approx(100.0 * (1 + 0.8 + 1 + 0) / 4)
    assert word_accuracy_metrics([], []) == {
        "accuracy": 0.0,
        "one_minus_NED": 0.0,
        "num_samples": 0,
    }


def _run(evaluator, pairs):
    evaluator.reset()
    inputs = [{"image_id": i, "text": gt, **extra} for i, (gt, _, extra) in enumerate(pairs)]
    outputs = [{"text": pred, "score": 0.5} for _, pred, _ in pairs]
    evaluator.process(inputs, outputs)
    return evaluator.evaluate()["str"]


CASES = [
    ("Hello", "hello", {}),  # case-insensitive match
    ("world!", "word", {}),  # miss, NED 1/5
    ("ABC", "A-B-C", {}),  # punctuation removed on both sides: match
    ("x1", "x!1", {}),  # match
    ("!!!", "", {}),  # ground truth empty after the adapter: not evaluated
    ("abc", "abc", {"image_error": "unreadable"}),  # unreadable crop: a miss whatever was predicted
]


def test_evaluator_36_char_protocol(tmp_path):
    evaluator = WordAccuracyEvaluator("str_toy_eval", output_dir=str(tmp_path), distributed=False)
    metrics = _run(evaluator, CASES)
    assert metrics["num_samples"] == 5
    assert metrics["accuracy"] == pytest.approx(100.0 * 3 / 5)
    assert metrics["one_minus_NED"] == pytest.approx(100.0 * (1 + 0.8 + 1 + 1 + 0) / 5)
    saved = json.loads((tmp_path / "str_predictions.json").read_text())
    assert saved["charset"] == "0123456789abcdefghijklmnopqrstuvwxyz"
    assert [s["correct"] for s in saved["samples"]] == [True, False, True, True, False]


def test_evaluator_case_sensitive_and_punctuation_modes():
    cased = WordAccuracyEvaluator("str_toy_eval", distributed=False, case_sensitive=True)
    metrics = _run(cased, CASES)
    assert metrics["accuracy"] == pytest.approx(100.0 * 2 / 5)  # "Hello" vs "hello" now differs
    full = WordAccuracyEvaluator(
        "str_toy_eval", distributed=False, case_sensitive=True, punctuation=True
    )
    metrics = _run(full, CASES)
    assert metrics["num_samples"] == 6  # "!!!" is now a valid label
    assert metrics["accuracy"] == pytest.approx(
        0.0
    )  # x1 vs x!1, ABC vs A-B-C, "!!!" vs "" all differ


def test_evaluator_is_built_from_the_metadata_and_config(tmp_path):
    assert EVALUATORS["str"] is WordAccuracyEvaluator
    MetadataCatalog.get("str_toy_cfg").set(evaluator_type="str", expected_num_samples=3)
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.TEST.STR.CASE_SENSITIVE = True
    cfg.OUTPUT_DIR = str(tmp_path)
    evaluator = build_evaluator(cfg, "str_toy_cfg")
    assert isinstance(evaluator, WordAccuracyEvaluator)
    metrics = _run(evaluator, [("Ab", "Ab", {}), ("cd", "CD", {})])
    assert metrics["accuracy"] == pytest.approx(50.0)
    assert (tmp_path / "inference" / "str_toy_cfg" / "str_predictions.json").is_file()
    with pytest.raises(KeyError, match="no 'text'"):
        evaluator.process([{"image_id": 0, "text": "a"}], [{"score": 1.0}])
