"""TextDetEvaluator end to end on a tiny registered dataset, and build_evaluator."""

import importlib.util
import json
import os
import uuid

import numpy as np
import pytest
import torch

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Instances

from fasttcm.data.converters.icdar_gt import format_icdar_gt_line as format_gt_line
from fasttcm.evaluation import EVALUATORS, TextDetEvaluator, build_evaluator
from tests.common import tiny_text_dataset_dicts

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def annotation(polygon, text, ignore=False):
    return {"segmentation": [polygon.reshape(-1).tolist()], "text": text, "ignore": ignore}


# Image 0: one word and a don't-care region; image 1: two words; image 2: only an ignored region.
GT = {
    0: [annotation(rect(10, 10, 50, 30), "hello"), annotation(rect(100, 100, 140, 120), "###")],
    1: [annotation(rect(0, 0, 40, 20), "abc"), annotation(rect(60, 0, 100, 20), "def")],
    2: [annotation(rect(0, 0, 30, 30), "smudge", ignore=True)],
}


def dataset_dicts():
    return tiny_text_dataset_dicts(GT)


@pytest.fixture
def register():
    """register(**metadata) -> name of a new tiny dataset (removed after the test)."""
    names = []

    def _register(**metadata):
        name = f"fasttcm_test_text_det_{uuid.uuid4().hex[:8]}"
        DatasetCatalog.register(name, dataset_dicts)
        meta = {"evaluator_type": "text_det", "eval_protocol": "iou", "thing_classes": ["text"]}
        MetadataCatalog.get(name).set(**{**meta, **metadata})
        names.append(name)
        return name

    yield _register
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


@pytest.fixture
def dataset(register):
    return register()


def instances(polygons, scores):
    inst = Instances((200, 200))
    inst.polygons = [torch.as_tensor(p, dtype=torch.float32) for p in polygons]
    inst.scores = torch.tensor(scores, dtype=torch.float32)
    return inst


def run(evaluator):
    """Image 0: the word (offset by 0.7 px, truncated back by int()) and a box inside the
    don't-care region; image 1: one word and a false positive at 0.35; image 2: nothing."""
    evaluator.reset()
    evaluator.process(
        [{"image_id": 0}, {"image_id": 1}],
        [
            {
                "instances": instances(
                    [rect(10, 10, 50, 30) + 0.7, rect(105, 102, 135, 118)], [0.9, 0.8]
                )
            },
            {"instances": instances([rect(0, 0, 40, 20), rect(150, 150, 170, 160)], [0.95, 0.35])},
        ],
    )
    evaluator.process([{"image_id": 2}], [{"instances": Instances((200, 200))}])
    return evaluator.evaluate()


def load_cli():
    spec = importlib.util.spec_from_file_location(
        "evaluate_cli", os.path.join(REPO, "tools", "evaluate.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_end_to_end_counts_files_and_cli_agreement(dataset, tmp_path, capsys):
    out = tmp_path / "inference"
    results = run(TextDetEvaluator(dataset, output_dir=str(out)))
    m = results["text_det"]
    # matched 2 of 3 care GTs (the ignored region is don't care), 3 care detections
    assert m["precision"] == pytest.approx(200 / 3)
    assert m["recall"] == pytest.approx(200 / 3)
    assert m["hmean"] == pytest.approx(200 / 3)
    # without the 0.35 false positive (threshold 0.4): P 100, R 66.7 -> 80
    assert m["sweep_hmean"] == pytest.approx(80.0)
    assert m["sweep_score_thr"] == pytest.approx(0.4)

    det_txt = out / "det_txt"
    assert sorted(os.listdir(det_txt)) == ["res_0.txt", "res_1.txt", "res_2.txt"]
    assert (
        det_txt / "res_0.txt"
    ).read_text() == "10,10,50,10,50,30,10,30,0.9\n105,102,135,102,135,118,105,118,0.8\n"
    assert (det_txt / "res_2.txt").read_text() == ""
    records = json.loads((out / "text_results.json").read_text())
    assert records[0]["image_id"] == 0 and records[0]["polygons"][0][0] == pytest.approx(
        [10.7, 10.7]
    )
    protocol = json.loads((out / "eval_protocol.json").read_text())
    assert protocol["protocol"]["name"] == "iou" and protocol["ground_truth"] == "dataset dicts"
    assert (protocol["num_gt_care"], protocol["num_det_care"], protocol["recall_credit"]) == (
        3,
        3,
        2,
    )
    assert protocol["metric_units"] == "percent"

    # The written files score the same with the offline tool (GT written in the ICDAR format).
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    for image_id, anns in GT.items():
        lines = [
            format_gt_line(
                np.reshape(a["segmentation"][0], (-1, 2)), "###" if a["ignore"] else a["text"]
            )
            for a in anns
        ]
        (gt_dir / f"gt_{image_id}.txt").write_text("\n".join(lines) + "\n")
    cli = load_cli()
    assert (
        cli.main(["--task", "det", "--gt", str(gt_dir), "--pred", str(det_txt), "--score-sweep"])
        == 0
    )
    offline = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("precision", "recall", "hmean", "sweep_hmean", "sweep_score_thr"):
        assert offline[key] == pytest.approx(m[key])


def test_ground_truth_from_gt_dir_matched_by_file_stem(register, tmp_path):
    gt_dir = tmp_path / "icdar_gt"
    gt_dir.mkdir()
    for image_id, anns in GT.items():
        lines = [
            format_gt_line(
                np.reshape(a["segmentation"][0], (-1, 2)), "###" if a["ignore"] else a["text"]
            )
            for a in anns
        ]
        (gt_dir / f"gt_img_{image_id}.txt").write_text("\n".join(lines) + "\n")
    dataset = register(gt_dir=str(gt_dir))
    out = tmp_path / "inference"
    results = run(TextDetEvaluator(dataset, output_dir=str(out), score_sweep=False))
    assert results["text_det"] == pytest.approx(
        {"precision": 200 / 3, "recall": 200 / 3, "hmean": 200 / 3}
    )
    # result files follow the GT names (gt_img_<n>.txt -> res_img_<n>.txt)
    assert sorted(os.listdir(out / "det_txt")) == [
        "res_img_0.txt",
        "res_img_1.txt",
        "res_img_2.txt",
    ]
    assert "file stem" in json.loads((out / "eval_protocol.json").read_text())["ground_truth"]


def test_missing_gt_dir_is_a_clear_error(register, tmp_path):
    dataset = register(gt_dir=str(tmp_path / "nope"), convert_command="tools/convert_dataset.py x")
    with pytest.raises(
        FileNotFoundError, match="does not exist; create it with: tools/convert_dataset.py x"
    ):
        run(TextDetEvaluator(dataset))


def test_deteval_protocol_from_metadata_or_override(register, tmp_path):
    dataset = register(eval_protocol="deteval")  # the metadata's protocol is the default
    evaluator = TextDetEvaluator(dataset, output_dir=str(tmp_path), score_sweep=False)
    evaluator.reset()
    # one 40x20 word detected as two halves: DetEval split credit 0.8 (IoU would give 0)
    evaluator.process(
        [{"image_id": 1}],
        [{"instances": instances([rect(0, 0, 20, 20), rect(20, 0, 40, 20)], [0.9, 0.9])}],
    )
    m = evaluator.evaluate()["text_det"]
    assert m["recall"] == pytest.approx(100 * 0.8 / 3)  # 3 care GTs over the dataset
    assert m["precision"] == pytest.approx(100 * 1.6 / 2)
    assert (
        json.loads((tmp_path / "eval_protocol.json").read_text())["protocol"]["name"] == "deteval"
    )
    with pytest.raises(ValueError, match="unknown text-detection protocol 'bogus'"):
        TextDetEvaluator(dataset, protocol="bogus")


def test_ground_truth_matching_no_processed_image_is_an_error(dataset):
    evaluator = TextDetEvaluator(dataset, distributed=False)
    evaluator.reset()
    evaluator.process([{"image_id": 99}], [{"instances": instances([rect(0, 0, 5, 5)], [0.9])}])
    with pytest.raises(ValueError, match="matches 0 of the 1 processed images"):
        evaluator.evaluate()
    evaluator.process([{"image_id": 0}], [{"instances": instances([rect(0, 0, 5, 5)], [0.9])}])
    with pytest.raises(ValueError, match="not in the ground truth.*99"):
        evaluator.evaluate()


def test_bad_model_outputs_are_reported(dataset):
    evaluator = TextDetEvaluator(dataset)
    inst = Instances((10, 10))
    inst.scores = torch.tensor([0.5])
    with pytest.raises(KeyError, match="lack field.*polygons"):
        evaluator.process([{"image_id": 0}], [{"instances": inst}])
    with pytest.raises(ValueError, match="shape \\(N, 2\\)"):
        evaluator.process([{"image_id": 0}], [{"instances": instances([np.zeros((4, 3))], [0.5])}])


def test_degenerate_predictions_are_removed_before_scoring(dataset, tmp_path):
    evaluator = TextDetEvaluator(dataset, output_dir=str(tmp_path), score_sweep=False)
    evaluator.reset()
    bad = [np.array([[0.0, 0.0], [5.0, 5.0]]), np.array([[0, 0], [np.nan, 1], [2, 2]])]
    evaluator.process(
        [{"image_id": 1}], [{"instances": instances([rect(0, 0, 40, 20)] + bad, [0.9, 0.8, 0.7])}]
    )
    m = evaluator.evaluate()["text_det"]
    assert m["precision"] == pytest.approx(100.0)
    assert (tmp_path / "det_txt" / "res_1.txt").read_text() == "0,0,40,0,40,20,0,20,0.9\n"


def test_build_evaluator_uses_the_evaluator_type_table(register, tmp_path):
    dataset = register()
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    evaluator = build_evaluator(cfg, dataset)
    assert isinstance(evaluator, TextDetEvaluator) and EVALUATORS["text_det"] is TextDetEvaluator
    run(evaluator)  # writes under cfg.OUTPUT_DIR/inference/<dataset> by default
    assert (tmp_path / "inference" / dataset / "eval_protocol.json").is_file()
    run(build_evaluator(cfg, dataset, str(tmp_path / "x")))
    assert (tmp_path / "x" / "det_txt" / "res_0.txt").is_file()
    with pytest.raises(KeyError, match="'mystery', which has no evaluator"):
        build_evaluator(cfg, register(evaluator_type="mystery"))
    other = f"{dataset}_no_type"
    with pytest.raises(KeyError, match="no 'evaluator_type'"):
        build_evaluator(cfg, other)
    MetadataCatalog.remove(other)
