"""Spotting result lines (x1,...,yn[,score],transcription) and tools/evaluate.py --task e2e."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from fasttcm.evaluation.protocols.result_files import format_spotting_det_line
from fasttcm.evaluation.protocols.submission_io import (
    SubmissionFormatError,
    parse_spotting_detections,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "tools", "evaluate.py")


def test_spotting_lines_with_and_without_scores_quotes_and_adelaidet_form():
    det = parse_spotting_detections(
        "0,0,10,0,10,10,0,10,0.75,hello\n"
        "0,0,10,0,10,10,0,10,hello, world\n"  # even count of numbers: no score
        '0,0,10,0,10,10,0,10,0.5,"2015"\n'  # a numeric transcription, quoted
        "0,0,10,0,10,10,0,10,0.5,####abc \n"  # AdelaiDet form (stripped)
        "0,0,10,0,10,10,0,10,####Total Text\n"
        "0,0,10,0,10,10,0,10,0.5,\n"  # an empty transcription
        "0,0,10,0,10,10,0,10,0.5, padded \n",  # IC15 rule: not stripped
        "res_img_1.txt",
    )
    assert det.texts == ("hello", "hello, world", "2015", "abc", "Total Text", "", " padded ")
    np.testing.assert_array_equal(det.scores[[0, 2, 3, 5, 6]], [0.75, 0.5, 0.5, 0.5, 0.5])
    assert np.isnan(det.scores[[1, 4]]).all()
    np.testing.assert_array_equal(det.polygons[0], [[0, 0], [10, 0], [10, 10], [0, 10]])


@pytest.mark.parametrize(
    "line, problem",
    [
        ("0,0,10,0,10,10,0,10", "no transcription"),  # a detection line
        ("0,0,10,0,0.5,abc", "at least 3 points|even number .>= 6."),
    ],
)
def test_malformed_spotting_lines_name_file_and_line(line, problem):
    with pytest.raises(SubmissionFormatError, match=f"res_4.txt, line 2: .*({problem})"):
        parse_spotting_detections("0,0,1,0,1,1,a\n" + line + "\n", "res_4.txt")


@pytest.mark.parametrize("score", [0.5, None])
def test_format_round_trip(score):
    polygon = np.array([[1.9, 2.0], [30.5, 2.0], [30.5, 12.25], [1.0, 12.0]])
    texts = [
        "plain",
        "a,b",
        "12",
        "1,5",
        "2015,abc",
        'q"uote',
        '"quoted"',
        "back\\slash",
        "###",
        "####x",
        " padded ",
        "",
        "口",
    ]
    for text in texts:
        line = format_spotting_det_line(polygon, score, text)
        det = parse_spotting_detections(line + "\n")
        assert det.texts == (text,), line
        np.testing.assert_array_equal(det.polygons[0], [[1, 2], [30, 2], [30, 12], [1, 12]])
        if score is None:
            assert np.isnan(det.scores[0])
        else:
            assert det.scores[0] == score


# gt_img_1: "Hello's" (word spotting: "Hello"), "2015" (word spotting: don't care), a don't-care
# region; gt_img_2: "Coffee".
GT_FILES = {
    "gt_img_1.txt": (
        "0,0,100,0,100,20,0,20,Hello's\n"
        "0,40,100,40,100,60,0,60,2015\n"
        "0,80,100,80,100,100,0,100,###\n"
    ),
    "gt_img_2.txt": "0,0,100,0,100,20,0,20,Coffee\n",
}
RES_FILES = {
    "res_img_1.txt": (
        "0,0,100,0,100,20,0,20,0.9,hello\n"
        '0,40,100,40,100,60,0,60,0.8,"2015"\n'
        "0,80,100,80,100,100,0,100,0.7,xx\n"
    ),
    "res_img_2.txt": "0,0,100,0,100,20,0,20,####Cofee\n",  # AdelaiDet form, no score
}
LEXICON_FILES = {
    "ch4_test_vocabulary_new.txt": "HELLO'S\n2015\nCOFFEE\n",
    "ch4_test_vocabulary_pair_list.txt": "HELLO'S Hello's\n2015 2015\nCOFFEE Coffee\n",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e_cli")
    gt = root / "gt"
    lexicons = root / "lexicons"
    for folder, content in ((gt, GT_FILES), (lexicons, LEXICON_FILES)):
        folder.mkdir()
        for name, text in content.items():
            (folder / name).write_text(text, encoding="utf-8")
    pred = root / "pred.zip"
    with zipfile.ZipFile(pred, "w") as z:
        for name, text in RES_FILES.items():
            z.writestr(name, text)
    return {"gt": str(gt), "pred": str(pred), "lexicons": str(lexicons)}


@pytest.fixture(scope="module")
def cli(load_tool):
    return load_tool("evaluate")


def run_cli(cli, capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    if code:
        return code, captured.err
    return code, json.loads(captured.out.strip().splitlines()[-1])


def test_e2e_without_and_with_word_spotting(cli, capsys, files):
    code, out = run_cli(cli, capsys, "--task", "e2e", "--gt", files["gt"], "--pred", files["pred"])
    assert code == 0
    # care GT Hello's, 2015, Coffee; care detections hello, 2015, Cofee; only 2015 is right
    # ("HELLO'S" loses no final 'S'), the box in the don't-care region is not counted
    assert (out["precision"], out["recall"], out["hmean"]) == pytest.approx((100 / 3,) * 3)
    assert out["runs"]["text_det"] == pytest.approx(
        {"precision": 100.0, "recall": 100.0, "hmean": 100.0}
    )
    assert out["totals"]["e2e_none"] == {"num_gt_care": 3, "num_det_care": 3, "correct": 1}
    assert out["num_result_files"] == 2 and out["num_images"] == 2

    code, out = run_cli(
        cli,
        capsys,
        "--task",
        "e2e",
        "--gt",
        files["gt"],
        "--pred",
        files["pred"],
        "--word-spotting",
    )
    # word spotting: 2015 and its detection become don't care; "Hello's" -> "Hello" matches
    assert out["totals"]["e2e_none"] == {"num_gt_care": 2, "num_det_care": 2, "correct": 1}
    assert out["hmean"] == pytest.approx(50.0)
    assert out["protocol"]["word_spotting"] is True


def test_e2e_with_a_weak_lexicon_and_both_far_off_rules(cli, capsys, files):
    args = ["--task", "e2e", "--gt", files["gt"], "--pred", files["pred"], "--lexicon", "weak"]
    code, out = run_cli(cli, capsys, *args, "--lexicon-dir", files["lexicons"])
    assert code == 0 and out["lexicon"] == "weak"
    # hello is 2 from HELLO'S: removed; 2015 stays; Cofee -> Coffee: P 2/2, R 2/3
    assert out["totals"]["e2e_weak"] == {"num_gt_care": 3, "num_det_care": 2, "correct": 2}
    assert (out["precision"], out["recall"], out["hmean"]) == pytest.approx((100, 200 / 3, 80))
    assert out["runs"]["e2e_none"]["hmean"] == pytest.approx(100 / 3)

    code, out = run_cli(
        cli, capsys, *args, "--lexicon-dir", files["lexicons"], "--far-off-rule", "testr"
    )
    # TESTR keeps weak-lexicon words up to distance 2: hello -> Hello's is right too
    assert out["hmean"] == pytest.approx(100.0)

    code, err = run_cli(cli, capsys, *args)
    assert code == 1 and "--lexicon weak needs --lexicon-dir" in err
    code, err = run_cli(cli, capsys, *args[:-1], "generic", "--lexicon-dir", files["lexicons"])
    assert code == 1 and "GenericVocabulary_new.txt, which does not exist" in err


def test_e2e_errors_name_the_file_and_line(cli, capsys, tmp_path, files):
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "res_img_1.txt").write_text("0,0,100,0,100,20,0,20,0.9,hello\n0,0,1,0,1,1,0.5,12\n")
    code, err = run_cli(cli, capsys, "--task", "e2e", "--gt", files["gt"], "--pred", str(pred))
    assert code == 1 and "res_img_1.txt, line 2: no transcription" in err
    (pred / "res_img_1.txt").write_text("")
    (pred / "res_img_9.txt").write_text("")
    code, err = run_cli(cli, capsys, "--task", "e2e", "--gt", files["gt"], "--pred", str(pred))
    assert code == 1 and "not present in the ground truth" in err


def test_e2e_script_entry_point(files):
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--task", "e2e", "--gt", files["gt"], "--pred", files["pred"]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("e2e_none: precision 33.33, recall 33.33, hmean 33.33")
    result = json.loads(lines[-1])
    assert result["task"] == "e2e" and result["hmean"] == pytest.approx(100 / 3)
