"""tools/evaluate.py --task det on GT / result files written by the test (folders and zips)."""

import json
import os
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "tools", "evaluate.py")

# gt_img_1: two words and a don't-care region; gt_img_2: one word whose transcription has commas.
GT_FILES = {
    "gt_img_1.txt": (
        "0,0,10,0,10,10,0,10,hello\n20,0,30,0,30,10,20,10,world\n50,0,60,0,60,10,50,10,###\n"
    ),
    "gt_img_2.txt": "\ufeff0,0,20,0,20,10,0,10,a, b, c\n",
}
# image 1: one match, one box in the don't-care region (ignored), one false positive;
# image 2: the word split into two halves (IoU 0.5 each: no match, two false positives).
RES_FILES = {
    "res_img_1.txt": (
        "0,0,10,0,10,10,0,10,0.9\n51,1,59,1,59,9,51,9,0.8\n100,100,110,100,110,110,100,110,0.2\n"
    ),
    "res_img_2.txt": "0,0,10,0,10,10,0,10,0.7\n10,0,20,0,20,10,10,10,0.6\n",
}


def write_folder(folder, files):
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return str(folder)


def write_zip(path, files):
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return str(path)


@pytest.fixture(scope="module")
def cli(load_tool):
    return load_tool("evaluate")


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def test_command_line_on_folders(tmp_path):
    gt = write_folder(tmp_path / "gt", GT_FILES)
    pred = write_folder(tmp_path / "pred", RES_FILES)
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--task", "det", "--gt", gt, "--pred", pred],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = last_json(proc.stdout)
    # matched 1; care GT 3; care detections 4 (the don't-care one removed)
    assert (result["num_gt_care"], result["num_det_care"], result["recall_credit"]) == (3, 4, 1)
    assert result["precision"] == pytest.approx(25.0)
    assert result["recall"] == pytest.approx(100 / 3)
    assert result["hmean"] == pytest.approx(2 * 25 * (100 / 3) / (25 + 100 / 3))
    assert result["task"] == "det" and result["protocol"]["name"] == "iou"


def test_zip_inputs_deteval_and_sweep(cli, tmp_path, capsys):
    gt = write_zip(tmp_path / "gt.zip", GT_FILES)
    pred = write_zip(tmp_path / "det.zip", RES_FILES)
    assert (
        cli.main(
            ["--task", "det", "--gt", gt, "--pred", pred, "--protocol", "deteval", "--score-sweep"]
        )
        == 0
    )
    result = last_json(capsys.readouterr().out)
    # DetEval: hello one-to-one (1/1), the split word 0.8 / 1.6; dets after the don't-care
    # filter: 4; care GTs 3
    assert result["recall"] == pytest.approx(100 * 1.8 / 3)
    assert result["precision"] == pytest.approx(100 * 2.6 / 4)
    # sweep: from 0.3 on the 0.2 false positive is gone -> P 2.6 / 3
    assert result["sweep_precision"] == pytest.approx(100 * 2.6 / 3)
    assert result["sweep_score_thr"] == pytest.approx(0.3)
    assert len(result["sweep"]) == 7


def test_missing_result_file_counts_as_no_detections(cli, tmp_path, capsys):
    gt = write_folder(tmp_path / "gt", GT_FILES)
    pred = write_folder(tmp_path / "pred", {"res_1.txt": RES_FILES["res_img_1.txt"]})  # key "1" too
    assert cli.main(["--task", "det", "--gt", gt, "--pred", pred]) == 0
    result = last_json(capsys.readouterr().out)
    assert (result["num_gt_care"], result["num_det_care"], result["num_result_files"]) == (3, 2, 1)


@pytest.mark.parametrize(
    "res_files, message",
    [
        (
            {"res_img_1.txt": "0,0,10,0,10,10,0,10,0.9\n0,0,10,oops,10,10\n"},
            r"res_img_1.txt, line 2: field 4",
        ),
        ({"res_img_3.txt": "0,0,10,0,10,10\n"}, r"not present in the ground truth, e.g. \['3'\]"),
        ({"res_img_1.txt": "0,0,10,0,10,10,0,10\n"}, r"needs a score"),
    ],
)
def test_errors_exit_with_status_1_and_a_clear_message(cli, tmp_path, capsys, res_files, message):
    gt = write_folder(tmp_path / "gt", GT_FILES)
    pred = write_folder(tmp_path / "pred", res_files)
    assert cli.main(["--task", "det", "--gt", gt, "--pred", pred, "--score-sweep"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("evaluate.py: error:")
    assert __import__("re").search(message, err), err


def test_malformed_ground_truth_and_unknown_protocol(cli, tmp_path, capsys):
    gt = write_folder(tmp_path / "gt", {"gt_img_1.txt": "0,0,10,0,hello\n"})
    pred = write_folder(tmp_path / "pred", {})
    assert cli.main(["--task", "det", "--gt", gt, "--pred", pred]) == 1
    assert (
        "gt_img_1.txt, line 1: a ground-truth line needs at least 3 points"
        in capsys.readouterr().err
    )
    assert cli.main(["--task", "det", "--gt", gt, "--pred", pred, "--protocol", "voc"]) == 1
    assert "unknown text-detection protocol 'voc'" in capsys.readouterr().err
    empty = write_folder(tmp_path / "empty", {})
    assert cli.main(["--task", "det", "--gt", empty, "--pred", pred]) == 1
    assert "no ground-truth files" in capsys.readouterr().err
