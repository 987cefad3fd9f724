"""tools/sweep_text_score.py: end-to-end scores of one spotter run at several MIN_TEXT_SCORE
values."""

import os
import sys
from pathlib import Path

import pytest
import torch

from detectron2.structures import Instances

from fasttcm.evaluation import TextSpottingEvaluator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
from test_text_e2e_evaluator import rect, register  # noqa: E402,F401  (tiny e2e dataset: Hello!, ###, Station, Street)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("sweep_text_score")


def _instances(polygons, texts, text_scores):
    inst = Instances((200, 200))
    inst.polygons = [torch.as_tensor(p, dtype=torch.float32) for p in polygons]
    inst.scores = torch.full((len(texts),), 0.9)
    inst.texts = list(texts)
    inst.text_scores = torch.tensor(text_scores, dtype=torch.float32)
    return inst


RUNS = [
    (
        [{"image_id": 0}],
        [
            {
                "instances": _instances(
                    [rect(10, 10, 50, 30), rect(105, 102, 135, 118)], ["hello", "junk"], [0.9, 0.1]
                )
            }
        ],
    ),  # right; don't-care
    (
        [{"image_id": 1}],
        [
            {
                "instances": _instances(
                    [rect(0, 0, 40, 20), rect(60, 0, 100, 20), rect(150, 150, 190, 170)],
                    ["statlon", "Street", "ghost"],
                    [0.2, 0.8, 0.3],
                )
            }
        ],
    ),  # wrong; right; nowhere
    ([{"image_id": 2}], [{"instances": _instances([], [], [])}]),
]


def test_thresholds_drop_low_confidence_readings(tool, register):  # noqa: F811 (fixture)
    dataset = register(word_spotting=False, lexicon_types=["none"])
    evaluator = TextSpottingEvaluator(dataset, output_dir=None, distributed=False)
    rows = tool.sweep_min_text_score(evaluator, RUNS, [0.0, 0.25, 0.5, 0.85])
    # 3 cared-for words; kept detections: {hello, statlon, Street, ghost} -> {hello, Street, ghost}
    # -> {hello, Street} -> {hello}; 'junk' lies in the don't-care region at every threshold
    expected = [(50.0, 200 / 3), (200 / 3, 200 / 3), (100.0, 200 / 3), (100.0, 100 / 3)]
    assert [row["min_text_score"] for row in rows] == [0.0, 0.25, 0.5, 0.85]
    for row, (precision, recall) in zip(rows, expected):
        assert row["precision"] == pytest.approx(precision, abs=1e-6)
        assert row["recall"] == pytest.approx(recall, abs=1e-6)
        assert row["hmean"] == pytest.approx(
            2 * precision * recall / (precision + recall), abs=1e-6
        )


def test_select_instances_indexes_list_and_tensor_fields(tool):
    inst = RUNS[1][1][0]["instances"]
    picked = tool.select_instances(inst, torch.tensor([2, 0]))
    assert picked.texts == ["ghost", "statlon"] and picked.image_size == (200, 200)
    torch.testing.assert_close(picked.text_scores, torch.tensor([0.3, 0.2]))
    torch.testing.assert_close(picked.polygons[0], inst.polygons[2])
    assert len(tool.select_instances(inst, torch.zeros(0, dtype=torch.long))) == 0


def test_refuses_configs_that_are_not_spotters_and_bad_thresholds(tool, capsys):
    detector = os.path.join(
        REPO, "projects/FastTCM/configs/TextDetection/fasttcm_cr50_fpn_dbnet_synthetic_cpu.yaml"
    )
    assert tool.main(["--config-file", detector, "--dataset", "synthetic_spotting_val"]) == 1
    assert "not a FastTCMTextSpotter" in capsys.readouterr().err
    spotter = os.path.join(
        REPO, "projects/FastTCM/configs/TextSpotting/fasttcm_cr50_fpn_spotter_synthetic_cpu.yaml"
    )
    assert (
        tool.main(
            ["--config-file", spotter, "--dataset", "synthetic_spotting_val", "--thresholds", "1.5"]
        )
        == 1
    )
    assert "must lie in [0, 1]" in capsys.readouterr().err
