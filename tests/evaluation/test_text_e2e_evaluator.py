"""TextSpottingEvaluator on tiny registered datasets: metrics, lexicons, files, CLI agreement."""

import importlib.util
import json
import logging
import os
import uuid

import numpy as np
import pytest
import torch

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Instances

from fasttcm.config import add_fasttcm_config
from fasttcm.data.converters.icdar_gt import format_icdar_gt_line as format_gt_line
from fasttcm.evaluation import EVALUATORS, TextSpottingEvaluator, build_evaluator
from fasttcm.evaluation.protocols.lexicon import LexiconError
from tests.common import tiny_text_dataset_dicts

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def annotation(polygon, text, ignore=False):
    return {"segmentation": [polygon.reshape(-1).tolist()], "text": text, "ignore": ignore}


# image 0: a word ending in a special character and a don't-care region; image 1: two words;
# image 2: no text at all.
GT = {
    0: [annotation(rect(10, 10, 50, 30), "Hello!"), annotation(rect(100, 100, 140, 120), "###")],
    1: [annotation(rect(0, 0, 40, 20), "Station"), annotation(rect(60, 0, 100, 20), "Street")],
    2: [],
}


def dataset_dicts():
    return tiny_text_dataset_dicts(GT)


@pytest.fixture
def register():
    """register(dicts_fn, **metadata) -> name of a new tiny dataset (removed after the test)."""
    names = []

    def _register(dicts_fn=dataset_dicts, **metadata):
        name = f"fasttcm_test_text_e2e_{uuid.uuid4().hex[:8]}"
        DatasetCatalog.register(name, dicts_fn)
        meta = {"evaluator_type": "text_e2e", "eval_protocol": "iou", "thing_classes": ["text"]}
        MetadataCatalog.get(name).set(**{**meta, **metadata})
        names.append(name)
        return name

    yield _register
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


@pytest.fixture
def lexicon_dir(tmp_path):
    folder = tmp_path / "lexicons"
    folder.mkdir()
    (folder / "weak_voc_new.txt").write_text("Station\nStreet\nHello\n", encoding="utf-8")
    (folder / "weak_voc_pair_list.txt").write_text(
        "STATION Station\nSTREET Street\nHELLO Hello!\n", encoding="utf-8"
    )
    return str(folder)


def instances(polygons, scores, texts):
    inst = Instances((200, 200))
    inst.polygons = [torch.as_tensor(p, dtype=torch.float32) for p in polygons]
    inst.scores = torch.tensor(scores, dtype=torch.float32)
    inst.texts = list(texts)
    return inst


def run(evaluator):
    evaluator.reset()
    evaluator.process(
        [{"image_id": 0}],
        [
            {
                "instances": instances(
                    [rect(10.7, 10.7, 50.2, 30.4), rect(105, 102, 135, 118)],
                    [0.9, 0.8],
                    ["hello", "junk"],  # right up to the GT's '!'; inside the don't-care region
                )
            }
        ],
    )
    evaluator.process(
        [{"image_id": 1}],
        [
            {
                "instances": instances(
                    [rect(0, 0, 40, 20), rect(60, 0, 100, 20), rect(150, 150, 190, 170)],
                    [0.95, 0.7, 0.2],
                    ["statlon", "Street ", "ghost"],  # wrong (1 from Station); right; nowhere
                )
            }
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


def cli_json(cli, capsys, *argv):
    assert cli.main(list(argv)) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_metrics_files_and_cli_agreement(register, lexicon_dir, tmp_path, capsys):
    dataset = register(word_spotting=False, lexicon_types=["none", "full"], lexicon_dir=lexicon_dir)
    out = tmp_path / "inference"
    results = run(TextSpottingEvaluator(dataset, output_dir=str(out), distributed=False))
    assert list(results) == ["e2e_none", "e2e_full", "text_det"]
    # none: care GT Hello!, Station, Street; care detections hello, statlon, Street, ghost;
    # correct: hello (the GT's final '!' may be dropped) and "Street " (stripped)
    assert results["e2e_none"]["precision"] == pytest.approx(50.0)
    assert results["e2e_none"]["recall"] == pytest.approx(200 / 3)
    assert results["e2e_none"]["hmean"] == pytest.approx(400 / 7)
    # full lexicon: hello -> "Hello!", statlon -> Station (distance 1), ghost far off: removed
    assert results["e2e_full"] == pytest.approx(
        {"precision": 100.0, "recall": 100.0, "hmean": 100.0}
    )
    # detection only: 3 of 3 GT found by 4 care detections
    assert results["text_det"]["precision"] == pytest.approx(75.0)
    assert results["text_det"]["recall"] == pytest.approx(100.0)

    e2e_txt = out / "e2e_txt"
    assert sorted(os.listdir(e2e_txt)) == ["res_0.txt", "res_1.txt", "res_2.txt"]
    assert (e2e_txt / "res_0.txt").read_text() == (
        "10,10,50,10,50,30,10,30,0.9,hello\n105,102,135,102,135,118,105,118,0.8,junk\n"
    )
    assert (e2e_txt / "res_2.txt").read_text() == ""
    assert (out / "e2e_txt_full" / "res_1.txt").read_text() == (
        "0,0,40,0,40,20,0,20,0.95,Station\n60,0,100,0,100,20,60,20,0.7,Street\n"
    )
    records = json.loads((out / "text_results.json").read_text())
    assert records[1]["texts"] == ["statlon", "Street ", "ghost"]
    assert records[0]["polygons"][0][0] == pytest.approx([10.7, 10.7])
    summary = json.loads((out / "e2e_eval.json").read_text())
    assert summary["totals"]["e2e_none"] == {"num_gt_care": 3, "num_det_care": 4, "correct": 2}
    assert summary["totals"]["e2e_full"] == {"num_gt_care": 3, "num_det_care": 3, "correct": 3}
    assert summary["protocol"]["word_spotting"] is False
    assert summary["lexicons"]["full"]["max_distance"] == 1.5
    assert summary["metric_units"] == "percent"

    # the offline script on the written files reports the same numbers
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    for image_id, anns in GT.items():
        lines = [
            format_gt_line(np.array(a["segmentation"][0]).reshape(-1, 2), a["text"]) for a in anns
        ]
        (gt_dir / f"gt_{image_id}.txt").write_text("".join(line + "\n" for line in lines))
    cli = load_cli()
    offline = cli_json(cli, capsys, "--task", "e2e", "--gt", str(gt_dir), "--pred", str(e2e_txt))
    assert offline["runs"] == {k: results[k] for k in ("e2e_none", "text_det")}  # bit for bit
    offline = cli_json(
        cli,
        capsys,
        *("--task", "e2e", "--gt", str(gt_dir), "--pred", str(e2e_txt)),
        *("--lexicon", "full", "--lexicon-dir", lexicon_dir),
    )
    assert offline["runs"] == dict(results)
    assert offline["hmean"] == pytest.approx(100.0)
    # the written lexicon run, scored without a lexicon, is that run
    offline = cli_json(
        cli, capsys, "--task", "e2e", "--gt", str(gt_dir), "--pred", str(out / "e2e_txt_full")
    )
    assert offline["runs"]["e2e_none"] == results["e2e_full"]


def test_build_evaluator_from_config_score_threshold_and_word_spotting(register, tmp_path):
    dataset = register(word_spotting=False, lexicon_types=["none"])
    assert EVALUATORS["text_e2e"] is TextSpottingEvaluator
    cfg = get_cfg()
    add_fasttcm_config(cfg)
    cfg.OUTPUT_DIR = str(tmp_path)
    cfg.TEST.E2E.SCORE_THRESH = 0.3  # drops "ghost" (0.2)
    evaluator = build_evaluator(cfg, dataset)
    assert isinstance(evaluator, TextSpottingEvaluator)
    results = run(evaluator)
    assert results["e2e_none"]["precision"] == pytest.approx(200 / 3)
    assert results["text_det"]["precision"] == pytest.approx(100.0)
    assert os.path.isfile(tmp_path / "inference" / dataset / "e2e_eval.json")

    # word spotting from the config: "Hello!" normalises to "Hello"; "hello" still matches,
    # "Street" too, and nothing becomes don't care (all are dictionary words)
    cfg.TEST.E2E.WORD_SPOTTING = True
    results = run(build_evaluator(cfg, dataset))
    assert results["e2e_none"]["recall"] == pytest.approx(200 / 3)
    summary = json.loads((tmp_path / "inference" / dataset / "e2e_eval.json").read_text())
    assert summary["protocol"]["word_spotting"] is True

    # without the config override, the metadata decides (Total-Text: word spotting on)
    totaltext_like = register(word_spotting=True)
    cfg.TEST.E2E.WORD_SPOTTING = None
    run(build_evaluator(cfg, totaltext_like))
    summary = json.loads((tmp_path / "inference" / totaltext_like / "e2e_eval.json").read_text())
    assert summary["protocol"]["word_spotting"] is True


def test_lexicons_listed_only_are_skipped_requested_ones_must_exist(register, tmp_path, caplog):
    dataset = register(lexicon_types=["none", "full"], lexicon_dir=str(tmp_path / "missing"))
    with caplog.at_level(logging.WARNING):
        results = run(TextSpottingEvaluator(dataset, distributed=False))
    assert list(results) == ["e2e_none", "text_det"]
    assert "weak_voc_new.txt, which does not exist; the full run is skipped" in caplog.text

    evaluator = TextSpottingEvaluator(dataset, distributed=False, lexicon_types=["full"])
    with pytest.raises(LexiconError, match=f"{dataset}.*needs the file .*missing/weak_voc_new.txt"):
        run(evaluator)
    with pytest.raises(ValueError, match="unknown lexicon type"):
        TextSpottingEvaluator(dataset, lexicon_types=["huge"])
    no_dir = register(lexicon_types=["none", "full"])
    with pytest.raises(ValueError, match="neither lexicon_dir nor the metadata's lexicon_dir"):
        TextSpottingEvaluator(no_dir, lexicon_types=["full"])
    with pytest.raises(ValueError, match="unknown far_off_rule"):
        TextSpottingEvaluator(dataset, far_off_rule="lenient")


def test_strong_lexicons_follow_gt_dir_sample_keys(register, tmp_path):
    # IC15 layout: images img_1.jpg, img_2.jpg; GT gt_img_<n>.txt; per-image strong lexicons
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    (gt_dir / "gt_img_1.txt").write_text("0,0,40,0,40,20,0,20,Coffee\n")
    (gt_dir / "gt_img_2.txt").write_text("0,0,40,0,40,20,0,20,Tea\n")
    strong = tmp_path / "lex" / "new_strong_lexicon"
    strong.mkdir(parents=True)
    (strong / "new_voc_img_1.txt").write_text("COFFEE\nTOFFEE\n")
    (strong / "pair_voc_img_1.txt").write_text("COFFEE Coffee\nTOFFEE Toffee\n")
    (strong / "new_voc_img_2.txt").write_text("TEA\nSEA\n")
    (strong / "pair_voc_img_2.txt").write_text("TEA Tea\nSEA Sea\n")

    def dicts():
        return [
            {"file_name": f"/x/img_{i}.jpg", "image_id": 10 + i, "height": 50, "width": 50}
            for i in (1, 2)
        ]

    dataset = register(
        dicts,
        gt_dir=str(gt_dir),
        lexicon_types=["none", "generic", "weak", "strong"],
        lexicon_dir=str(tmp_path / "lex"),
    )
    evaluator = TextSpottingEvaluator(dataset, output_dir=str(tmp_path / "out"), distributed=False)
    evaluator.reset()
    for i, text in ((1, "Ciffee"), (2, "xea")):
        evaluator.process(
            [{"image_id": 10 + i}], [{"instances": instances([rect(0, 0, 40, 20)], [0.9], [text])}]
        )
    results = evaluator.evaluate()
    # generic and weak are listed but absent: skipped; strong: Ciffee -> Coffee (1), xea -> Tea
    # (1 from TEA and SEA: the earlier word)
    assert list(results) == ["e2e_none", "e2e_strong", "text_det"]
    assert results["e2e_none"]["hmean"] == 0.0
    assert results["e2e_strong"]["hmean"] == pytest.approx(100.0)
    written = tmp_path / "out" / "e2e_txt_strong" / "res_img_2.txt"
    assert written.read_text() == "0,0,40,0,40,20,0,20,0.9,Tea\n"


def test_bad_model_outputs_are_reported(register):
    dataset = register()
    evaluator = TextSpottingEvaluator(dataset, distributed=False)
    inst = Instances((200, 200))
    inst.polygons = [rect(0, 0, 10, 10)]
    inst.scores = torch.tensor([0.5])
    with pytest.raises(KeyError, match="lack field 'texts'"):
        evaluator.process([{"image_id": 0}], [{"instances": inst}])
    inst.texts = [3]
    with pytest.raises(TypeError, match="must hold str, found int"):
        evaluator.process([{"image_id": 0}], [{"instances": inst}])
    with pytest.raises(KeyError, match="has no 'instances'"):
        evaluator.process([{"image_id": 0}], [{}])
