"""Spotting analysis: a constructed case with a known breakdown, agreement with the e2e protocol,
the evaluator wrapper (files, reruns from saved predictions) and tools/analyze_spotting.py."""

import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode, Instances

from fasttcm.engine import FastTCMTrainer
from fasttcm.evaluation import TextSpottingEvaluator
from fasttcm.evaluation.protocols.base import ImageDetections, ImageGroundTruth
from fasttcm.evaluation.protocols.e2e import E2EProtocol, evaluate_text_spotting
from fasttcm.evaluation.protocols.pair_geometry import pair_geometry, reading_axes
from fasttcm.evaluation.spotting_analysis import (
    RECORD_FIELDS,
    CropCriteria,
    analyze_spotting,
)
from fasttcm.evaluation.spotting_analysis_evaluator import SpottingAnalysisEvaluator
from tests.common import (
    QUICK_DETECTOR,
    QUICK_SPOTTER,
    build_model_from_cfg,
    build_quick_model,
    get_config_file,
    load_config,
    tiny_text_dataset_dicts,
)


def rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


BOWTIE = np.array([[0, 0], [10, 10], [10, 0], [0, 10]], dtype=np.float64)  # self-intersecting

# image a: right (special character and case forgiven), cut + misread, clean + misread, a
# don't-care region with a detection inside, a word nobody found, a word found at IoU 0.4.
# image b: right + a duplicate, padded + misread, two background detections (one read as
# nothing), an invalid polygon. image c: two overlapping words, one detection for both.
GROUND_TRUTH = {
    "a": ImageGroundTruth.from_annotations(
        [
            rect(10, 10, 110, 40),
            rect(10, 60, 110, 90),
            rect(130, 10, 230, 40),
            rect(130, 60, 230, 90),
            rect(10, 110, 110, 140),
            rect(130, 110, 230, 140),
        ],
        ["Hello!", "World", "Street", "###", "Missed", "Half"],
    ),
    "b": ImageGroundTruth.from_annotations(
        [rect(10, 10, 110, 40), rect(10, 60, 60, 90)], ["Duplicate", "Pad"]
    ),
    "c": ImageGroundTruth.from_annotations(
        [rect(10, 10, 110, 40), rect(10, 10, 110, 38)], ["Alpha", "Beta"]
    ),
}
DETECTIONS = {
    "a": ImageDetections.from_arrays(
        [
            rect(10, 10, 110, 40),  # Hello! read "HELLO": right
            rect(10, 60, 70, 90),  # World: IoU 0.6, coverage 0.6 (cut), read "Wor"
            rect(130, 10, 230, 40),  # Street: exact, read "Stret"
            rect(135, 62, 225, 88),  # inside the don't-care region
            rect(130, 110, 170, 140),  # Half: IoU 0.4
        ],
        [0.9, 0.8, 0.7, 0.6, 0.5],
        ["HELLO", "Wor", "Stret", "xx", "Ha"],
    ),
    "b": ImageDetections.from_arrays(
        [
            rect(10, 10, 110, 40),  # right
            rect(12, 10, 110, 40),  # the same word again
            rect(5, 55, 65, 95),  # Pad: IoU 0.625, excess 0.375, read "Pads"
            rect(150, 150, 190, 170),  # nothing there, read "ghost"
            rect(150, 100, 190, 120),  # nothing there, read as nothing
            BOWTIE,
        ],
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        ["Duplicate", "Duplicate", "Pads", "ghost", "", "bow"],
    ),
    "c": ImageDetections.from_arrays([rect(10, 10, 110, 40)], [0.9], ["alpha"]),
}
# the recognizer's reading of the ground-truth crops of image a (None: no crop); b has none
READINGS = {
    "a": {
        "annotated": ["Hello", "world", "Stret", "junk", "Missed", None],
        "spotter": ["Hello", "Wrld", "Stret", None, "Missed", None],
    }
}
TEXT_SCORES = {"a": [0.9, 0.4, 0.5, 0.1, 0.2], "b": [0.9, 0.8, 0.3, 0.2, 0.0, 0.1], "c": [0.7]}
CRITERIA = CropCriteria(min_coverage=0.9, max_excess=0.3)


def _records(analysis, kind, image, index):
    (record,) = [
        r
        for r in analysis.records
        if r["kind"] == kind and r["image"] == image and r["index"] == index
    ]
    return record


def _analyze(**kwargs):
    """The constructed case through analyze_spotting (plus `kwargs`)."""
    return analyze_spotting(
        GROUND_TRUTH,
        DETECTIONS,
        E2EProtocol(),
        criteria=CRITERIA,
        gt_readings=READINGS,
        text_scores=TEXT_SCORES,
        **kwargs,
    )


@pytest.fixture(scope="module")
def analysis():
    return _analyze()


def test_known_breakdown(analysis):
    counts = analysis.counts()
    assert counts["gt"] == {
        "care": 9,
        "correct": 3,  # Hello!, Duplicate, Alpha
        "missed": 3,
        "missed_no_overlap": 1,  # Missed
        "missed_low_iou": 1,  # Half
        "missed_taken": 1,  # Beta: its only detection went to Alpha
        "missed_rejected_right": 0,  # no gate-dropped detections given
        "missed_rejected_wrong": 0,
        "missed_by_detector": 3,
        "misread": 3,
        "misread_crop": 2,  # World (recognizer: GT crop right), Pad (geometry: padded)
        "misread_clean": 1,  # Street (recognizer: GT crop wrong too)
        "dont_care": 1,
    }
    assert counts["det"] == {
        "total": 12,
        "care": 10,
        "correct": 3,
        "misread": 3,
        "false_positive": 4,
        "fp_with_reading": 3,
        "fp_empty_reading": 1,
        "fp_duplicate": 1,
        "fp_low_iou": 1,
        "fp_background": 2,
        "dont_care": 1,
        "invalid": 1,
    }
    signals = counts["misread_signals"]
    assert signals["by_recognizer"] == 2 and signals["by_geometry"] == 1
    assert (signals["geometric_cut"], signals["geometric_pad"], signals["geometric_clean"]) == (
        1,
        1,
        1,
    )
    assert signals["recognizer_crop"] == 1 and signals["recognizer_clean"] == 1
    assert signals["geometric_crop_recognizer_crop"] == 1  # World
    assert signals["geometric_clean_recognizer_clean"] == 1  # Street
    assert signals["crop_outline"] == 0 and signals["crop_rectification"] == 1  # "Wrld"

    world = _records(analysis, "gt", "a", 1)
    assert world["category"] == "misread_crop" and world["detail"] == "rectification"
    assert world["verdict_source"] == "recognizer" and world["geometric"] == "cut"
    assert world["partner_text"] == "Wor" and world["text_score"] == 0.4
    assert world["iou"] == pytest.approx(0.6) and world["coverage"] == pytest.approx(0.6)
    assert world["end"] == pytest.approx(-40 / 30) and world["start"] == pytest.approx(0.0)
    pad = _records(analysis, "gt", "b", 1)
    assert pad["category"] == "misread_crop" and pad["verdict_source"] == "geometry"
    assert pad["geometric"] == "pad" and pad["excess"] == pytest.approx(0.375)
    assert [pad[s] for s in ("start", "end", "top", "bottom")] == pytest.approx([1 / 6] * 4)
    half = _records(analysis, "gt", "a", 5)
    assert (half["detail"], half["partner_index"]) == ("low_iou", 4)
    assert half["iou"] == pytest.approx(0.4)
    assert _records(analysis, "gt", "a", 4)["partner_index"] is None
    assert _records(analysis, "gt", "c", 1)["partner_index"] == 0  # taken by Alpha
    assert _records(analysis, "det", "b", 1)["partner_index"] == 0  # duplicate of Duplicate
    assert _records(analysis, "det", "b", 4)["reading"] == "empty_reading"
    for record in analysis.records:
        assert set(RECORD_FIELDS) <= set(record)


def test_totals_equal_the_e2e_protocol(analysis):
    result = evaluate_text_spotting(GROUND_TRUTH, DETECTIONS, E2EProtocol())
    summary = analysis.summary()
    assert summary["metrics"] == result.metrics()  # e2e_none and text_det, exactly
    # P = 3 / 10, R = 3 / 9; detection only: 6 matched of 10 detections and 9 words
    assert summary["metrics"]["e2e_none"]["precision"] == pytest.approx(30.0)
    assert summary["metrics"]["e2e_none"]["recall"] == pytest.approx(100 / 3)
    assert summary["metrics"]["text_det"]["precision"] == pytest.approx(60.0)
    assert summary["metrics"]["text_det"]["recall"] == pytest.approx(200 / 3)
    what_if = summary["what_if"]
    assert what_if["crop_misreads_read_right"]["recall"] == pytest.approx(500 / 9)
    assert what_if["all_misreads_read_right"] == pytest.approx(summary["metrics"]["text_det"])
    assert what_if["false_positives_rejected"]["precision"] == pytest.approx(50.0)
    readings = summary["gt_crop_readings"]
    assert readings["annotated"]["cropped"] == 4 and readings["annotated"]["correct"] == 3
    assert readings["spotter"]["correct"] == 2
    assert summary["text_scores"]["misread"]["count"] == 3
    assert summary["text_scores"]["misread"]["median"] == pytest.approx(0.4)
    json.dumps(summary)


def test_word_spotting_uses_the_e2e_dont_care_set():
    gt = {
        "x": ImageGroundTruth.from_annotations(
            [rect(0, 0, 40, 20), rect(50, 0, 90, 20)], ["ab", "Word's"]
        )
    }
    det = {
        "x": ImageDetections.from_arrays(
            [rect(0, 0, 40, 20), rect(50, 0, 90, 20)], [0.9, 0.9], ["ab", "WORD"]
        )
    }
    protocol = E2EProtocol(word_spotting=True)
    analysis = analyze_spotting(gt, det, protocol)
    counts = analysis.counts()
    # "ab" is too short under word spotting: don't care, and so is its detection
    assert counts["gt"]["care"] == 1 and counts["gt"]["correct"] == 1
    assert counts["gt"]["dont_care"] == 1 and counts["det"]["dont_care"] == 1
    assert analysis.summary()["metrics"] == evaluate_text_spotting(gt, det, protocol).metrics()


def test_mismatched_readings_and_bad_criteria_are_refused():
    with pytest.raises(ValueError, match="2 ground truths but 1 'annotated' readings"):
        analyze_spotting(
            {"b": GROUND_TRUTH["b"]},
            {"b": DETECTIONS["b"]},
            E2EProtocol(),
            gt_readings={"b": {"annotated": ["x"]}},
        )
    with pytest.raises(ValueError, match="min_coverage"):
        CropCriteria(min_coverage=1.5)


def test_pair_geometry_in_the_reading_frame():
    # a word written downwards (top side from (0, 0) to (0, 100)): reading axis +y, height 20
    gt = np.array([[0, 0], [0, 100], [-20, 100], [-20, 0]], dtype=np.float64)
    u, v, height = reading_axes(gt)
    assert u == pytest.approx([0, 1]) and v == pytest.approx([-1, 0]) and height == 20
    det = np.array([[5, -10], [5, 90], [-20, 90], [-20, -10]], dtype=np.float64)
    geometry = pair_geometry(gt, det)
    # starts 10 px early (+0.5), stops 10 px short (-0.5), 5 px above the top side (+0.25)
    assert geometry.sides == pytest.approx((0.5, -0.5, 0.25, 0.0))
    assert geometry.coverage == pytest.approx(0.9)
    assert geometry.excess == pytest.approx(1 - 1800 / 2500)


# ------------------------------------------------------------------------------------------------
# the detectron2 evaluator and the tool


@pytest.fixture
def register():
    """register(name, dataset_dicts, **metadata): a dataset removed after the test."""
    names = []

    def _register(name, dicts, **metadata):
        DatasetCatalog.register(name, lambda: dicts)
        MetadataCatalog.get(name).set(**metadata)
        names.append(name)
        return name

    yield _register
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def _constructed_dataset():
    """The constructed case as dataset dicts (image ids 0, 1, 2 for a, b, c)."""
    gt_dicts = {}
    for image_id, gt in enumerate(GROUND_TRUTH.values()):
        gt_dicts[image_id] = [
            {"segmentation": [p.reshape(-1).tolist()], "text": t, "ignore": False}
            for p, t in zip(gt.polygons, gt.texts)
        ]
    return tiny_text_dataset_dicts(gt_dicts, size=240)


def _outputs(key):
    det = DETECTIONS[key]
    instances = Instances((240, 240))
    instances.polygons = [torch.as_tensor(p, dtype=torch.float32) for p in det.polygons]
    instances.scores = torch.as_tensor(det.scores, dtype=torch.float32)
    instances.texts = list(det.texts)
    instances.text_scores = torch.tensor(TEXT_SCORES[key], dtype=torch.float32)
    output = {"instances": instances}
    if key in READINGS:
        output["gt_readings"] = READINGS[key]
    return [output]


def test_evaluator_scores_like_the_e2e_evaluator_and_reruns_from_its_file(
    register, analysis, tmp_path
):
    dataset = register(
        "fasttcm_test_spotting_analysis", _constructed_dataset(), evaluator_type="text_e2e"
    )
    out = tmp_path / "analysis"
    evaluator = SpottingAnalysisEvaluator(
        dataset, output_dir=str(out), distributed=False, criteria=CRITERIA
    )
    reference = TextSpottingEvaluator(dataset, output_dir=None, distributed=False)
    for image_id, key in enumerate(DETECTIONS):
        evaluator.process([{"image_id": image_id}], _outputs(key))
        reference.process([{"image_id": image_id}], _outputs(key))
    results = evaluator.evaluate()
    expected = reference.evaluate()
    assert {k: results[k] for k in expected} == dict(expected)
    assert results["spotting_analysis"]["gt_misread_crop"] == 2
    # the same breakdown as the protocol-level analysis (keys "0", "1", "2" instead of a, b, c)
    assert evaluator.analysis.counts() == analysis.counts()
    scores = evaluator.analysis.summary()["text_scores"]  # float32 in the model outputs
    for category, expected_scores in analysis.summary()["text_scores"].items():
        assert scores[category] == pytest.approx(expected_scores)

    summary = json.loads((out / "spotting_analysis.json").read_text())
    assert summary["counts"] == analysis.counts()
    lines = (out / "spotting_instances.jsonl").read_text().splitlines()
    assert len(lines) == 10 + 12  # ground truths + detections
    rows = list(csv.DictReader(io.StringIO((out / "spotting_instances.csv").read_text())))
    assert len(rows) == 22 and list(rows[0])[: len(RECORD_FIELDS)] == list(RECORD_FIELDS)
    assert "gt_crop_annotated" in rows[0]
    e2e_eval = json.loads((out / "e2e_eval.json").read_text())
    assert e2e_eval["metrics"]["e2e_none"] == results["e2e_none"]

    # rerun from the saved predictions: no model, the same analysis
    saved = json.loads((out / "text_results.json").read_text())
    assert saved[0]["gt_readings"]["annotated"][1] == "world"
    rerun = SpottingAnalysisEvaluator(
        dataset, output_dir=None, distributed=False, criteria=CRITERIA
    )
    rerun.add_saved_predictions(saved, "text_results.json")
    assert rerun.evaluate() == results
    assert rerun.analysis.records == evaluator.analysis.records
    with pytest.raises(ValueError, match="record 0: 1 polygons, 1 scores, 2 texts"):
        rerun.add_saved_predictions(
            [
                {
                    "image_id": 0,
                    "polygons": [[[0, 0], [1, 0], [1, 1]]],
                    "scores": [1],
                    "texts": ["a", "b"],
                }
            ],
            "bad.json",
        )


# what a reading gate of 0.5 drops in image a: "Missed" found and read right, "Half" found at
# IoU 1 and read wrong, and a background detection
REJECTED = {
    "a": ImageDetections.from_arrays(
        [rect(10, 110, 110, 140), rect(130, 110, 230, 140), rect(150, 150, 190, 170)],
        [0.6, 0.6, 0.6],
        ["missed", "Hulf", "x"],
    )
}


def test_words_dropped_by_the_reading_gate_are_not_blamed_on_the_detector(analysis):
    gated = _analyze(rejected=REJECTED)
    counts = gated.counts()["gt"]
    assert counts["missed"] == 3  # the gated spotter's output is unchanged ...
    assert counts["missed_rejected_right"] == 1  # Missed
    assert counts["missed_rejected_wrong"] == 1  # Half
    assert counts["missed_by_detector"] == 1  # Beta, taken
    assert _records(gated, "gt", "a", 4)["detail"] == "rejected_right"
    assert _records(gated, "gt", "a", 5)["detail"] == "rejected_wrong"
    # ... and so are the metrics and every other count
    assert gated.e2e == analysis.e2e and gated.detection == analysis.detection
    assert gated.counts()["det"] == analysis.counts()["det"]


def test_evaluator_applies_the_reading_gate_as_the_spotter_would(register, analysis, tmp_path):
    dataset = register(
        "fasttcm_test_spotting_analysis_gate", _constructed_dataset(), evaluator_type="text_e2e"
    )
    gate = 0.45
    out = tmp_path / "gated"
    evaluator = SpottingAnalysisEvaluator(
        dataset, output_dir=str(out), distributed=False, criteria=CRITERIA, reading_gate=gate
    )
    reference = TextSpottingEvaluator(dataset, output_dir=None, distributed=False)
    for image_id, key in enumerate(DETECTIONS):
        evaluator.process([{"image_id": image_id}], _outputs(key))
        outputs = _outputs(key)
        instances = outputs[0]["instances"]
        keep = (instances.text_scores >= gate).nonzero()[:, 0].tolist()
        gated = Instances(instances.image_size)
        gated.polygons = [instances.polygons[i] for i in keep]
        gated.scores = instances.scores[keep]
        gated.texts = [instances.texts[i] for i in keep]
        reference.process([{"image_id": image_id}], [{"instances": gated}])
    results = evaluator.evaluate()
    expected = reference.evaluate()
    assert {k: results[k] for k in expected} == dict(expected)
    counts = evaluator.analysis.counts()["gt"]
    # the gate drops World (read "Wor", 0.4), Pad ("Pads", 0.3) and Half ("Ha", 0.2, IoU 0.4:
    # not a match); World and Pad were misread, so they are now missed, found, read wrong
    assert counts["missed_rejected_wrong"] == 2 and counts["missed_rejected_right"] == 0
    assert counts["misread"] == analysis.counts()["gt"]["misread"] - 2
    # the dropped detections are saved and a rerun from the file gives the same analysis
    saved = json.loads((out / "text_results.json").read_text())
    assert saved[0]["rejected"]["texts"] == ["Wor", "xx", "Ha"]
    rerun = SpottingAnalysisEvaluator(
        dataset, output_dir=None, distributed=False, criteria=CRITERIA
    )
    rerun.add_saved_predictions(saved, "text_results.json")
    assert rerun.evaluate() == results
    assert rerun.analysis.records == evaluator.analysis.records
    bad = [{**saved[0], "rejected": {**saved[0]["rejected"], "texts": ["a"]}}]
    with pytest.raises(ValueError, match="record 0, rejected: 3 polygons, 3 scores, 1 texts"):
        rerun.add_saved_predictions(bad, "bad.json")


@pytest.fixture
def tiny_spotting_split(register, tmp_path):
    """One 160 x 120 noise image with a quad word, a curved (2n-point) word and a don't-care one."""
    image = tmp_path / "img_0.png"
    pixels = np.random.default_rng(0).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image)
    top = [(10 + 20 * i, 70 - 8 * np.sin(np.pi * i / 4)) for i in range(5)]
    curved = top + [(x, y + 20) for x, y in reversed(top)]
    annotations = [
        (rect(20, 10, 100, 40), "Station", False),
        (np.array(curved), "Curve", False),
        (rect(110, 80, 150, 110), "###", True),
    ]
    dicts = [
        {
            "file_name": str(image),
            "image_id": 0,
            "height": 120,
            "width": 160,
            "annotations": [
                {
                    "segmentation": [p.reshape(-1).tolist()],
                    "bbox": [*p.min(axis=0).tolist(), *p.max(axis=0).tolist()],
                    "bbox_mode": BoxMode.XYXY_ABS,
                    "category_id": 0,
                    "text": t,
                    "ignore": ignore,
                }
                for p, t, ignore in annotations
            ],
        }
    ]
    metadata = {"evaluator_type": "text_det", "eval_protocol": "iou", "thing_classes": ["text"]}
    return register("fasttcm_test_spotting_analysis_tiny", dicts, **metadata), dicts


def test_cli_on_the_quick_spotter_with_random_weights(
    load_tool, tiny_spotting_split, tmp_path, capsys
):
    tool = load_tool("analyze_spotting")
    dataset, dicts = tiny_spotting_split
    weights = tmp_path / "spotter.pth"
    torch.save({"model": build_quick_model(QUICK_SPOTTER).state_dict()}, weights)
    out = tmp_path / "out"
    config = get_config_file(QUICK_SPOTTER)
    argv = ["--config-file", config, "--dataset", dataset, "--output", str(out)]
    assert tool.main([*argv, "MODEL.WEIGHTS", str(weights)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("dataset", "output_dir", "metrics", "counts", "what_if", "gt_crop_readings"):
        assert key in report
    gt, det = report["counts"]["gt"], report["counts"]["det"]
    num_words = sum(len(d["annotations"]) for d in dicts)
    assert gt["care"] + gt["dont_care"] == num_words
    assert gt["correct"] + gt["missed"] + gt["misread"] == gt["care"]
    assert (
        gt["missed_no_overlap"] + gt["missed_low_iou"] + gt["missed_taken"]
        == (gt["missed_by_detector"])
    )
    gated = gt["missed_rejected_right"] + gt["missed_rejected_wrong"]
    assert gt["missed_by_detector"] + gated == gt["missed"]
    assert gt["misread_crop"] + gt["misread_clean"] == gt["misread"]
    saved = json.loads((out / "text_results.json").read_text())
    assert det["total"] == sum(len(r["texts"]) for r in saved)
    assert det["care"] + det["dont_care"] + det["invalid"] == det["total"]
    assert det["correct"] + det["misread"] + det["false_positive"] == det["care"]
    assert det["fp_with_reading"] + det["fp_empty_reading"] == det["false_positive"]
    assert det["fp_duplicate"] + det["fp_low_iou"] + det["fp_background"] == det["false_positive"]
    assert report["gt_crop_readings"]["annotated"]["cropped"] == gt["care"]
    e2e_eval = json.loads((out / "e2e_eval.json").read_text())
    assert report["metrics"] == e2e_eval["metrics"]
    lines = (out / "spotting_instances.jsonl").read_text().splitlines()
    assert len(lines) == num_words + det["total"]

    # rerun from the saved predictions, without the model
    again = tmp_path / "again"
    argv = ["--config-file", config, "--dataset", dataset, "--output", str(again)]
    assert tool.main([*argv, "--predictions", str(out / "text_results.json")]) == 0
    rerun = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {**rerun, "output_dir": None} == {**report, "output_dir": None}


def test_read_polygons_crops_as_the_spotter_does(load_tool, tiny_spotting_split):
    """Reading the spotter's own detections gives back the spotter's own texts."""
    tool = load_tool("analyze_spotting")
    dataset, _ = tiny_spotting_split
    cfg = load_config(QUICK_SPOTTER)
    model = build_model_from_cfg(cfg).eval()
    (inputs,) = list(FastTCMTrainer.build_test_loader(cfg, dataset))
    with torch.no_grad():
        (output,) = model(inputs)
    instances = output["instances"]
    assert len(instances) > 0
    (texts,) = tool.read_polygons(model, inputs, [instances.polygons], model.crop_layout)
    assert texts == instances.texts


def test_cli_refuses_a_detector_config_and_bad_criteria(load_tool, capsys):
    tool = load_tool("analyze_spotting")
    detector = get_config_file(QUICK_DETECTOR)
    assert tool.main(["--config-file", detector, "--dataset", "synthetic_spotting_val"]) == 1
    assert "not a FastTCMTextSpotter" in capsys.readouterr().err
    spotter = get_config_file(QUICK_SPOTTER)
    argv = ["--config-file", spotter, "--dataset", "synthetic_spotting_val", "--max-excess", "2"]
    assert tool.main(argv) == 1
    assert "max_excess must lie in [0, 1]" in capsys.readouterr().err
