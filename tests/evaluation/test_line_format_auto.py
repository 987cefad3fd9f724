"""line_format "auto": ICDAR 2015 files (numeric words, words starting with "number,") are read
as the RRC scripts read them without --line-format, polygon files stay on the polygon rule, and
malformed numbers are still errors naming file and line."""

import json
import logging

import numpy as np
import pytest

from fasttcm.evaluation.protocols.submission_io import (
    SubmissionFormatError,
    choose_line_format,
    parse_ground_truth,
    read_ground_truth,
    read_spotting_detections,
)
from fasttcm.evaluation.protocols.text_lines import parse_gt_line, parse_spotting_line

QUADS = [
    (751, 426, 797, 433, 789, 451, 749, 445),
    (377, 117, 463, 117, 465, 130, 378, 130),
    (10, 10, 60, 10, 60, 30, 10, 30),
    (100, 200, 160, 200, 160, 230, 100, 230),
    (300, 50, 380, 52, 379, 80, 299, 78),
]
# the IC15 GT of two images: numeric words, words with a comma after a number, don't care
IC15_GT = {
    "gt_img_1.txt": [(QUADS[0], "2015"), (QUADS[1], "Genaxis Theatre"), (QUADS[2], "1,000")],
    "gt_img_2.txt": [(QUADS[3], "12,ab"), (QUADS[4], "###")],
}


def _line(quad, *fields):
    return ",".join(str(v) for v in (*quad, *fields))


def _write(folder, files):
    folder.mkdir()
    for name, lines in files.items():
        (folder / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(folder)


def _ic15_gt(folder):
    return _write(
        folder, {name: [_line(q, w) for q, w in items] for name, items in IC15_GT.items()}
    )


@pytest.fixture(scope="module")
def cli(load_tool):
    return load_tool("evaluate")


def _run(cli, capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, (json.loads(captured.out.strip().splitlines()[-1]) if code == 0 else captured.err)


def test_ic15_gt_is_read_as_the_rrc_reads_it(tmp_path, caplog):
    gt_dir = _ic15_gt(tmp_path / "gt")
    with caplog.at_level(logging.INFO, logger="fasttcm.evaluation.protocols.submission_io"):
        gt = read_ground_truth(gt_dir)  # line_format "auto" by default
    assert gt["1"].texts == ("2015", "Genaxis Theatre", "1,000")
    assert gt["2"].texts == ("12,ab", "###") and gt["2"].dont_care.tolist() == [False, True]
    for key, items in (("1", IC15_GT["gt_img_1.txt"]), ("2", IC15_GT["gt_img_2.txt"])):
        for polygon, (quad, _) in zip(gt[key].polygons, items):
            np.testing.assert_array_equal(polygon, np.reshape(quad, (4, 2)))
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "gt_img_1.txt, line 3 is not readable by the polygon rule" in message
    assert "read as ICDAR 2015 files" in message
    # the polygon rule alone refuses the file, naming the line
    with pytest.raises(SubmissionFormatError, match=r"gt_img_1\.txt, line 3: only numbers"):
        read_ground_truth(gt_dir, line_format="polygon")


# end-to-end GT: numeric words, a word starting with "number," ("1,000" is left out: in a result
# line without a confidence column, "1,000" reads as confidence 1 and the word "000" by both rules)
IC15_E2E = {
    "gt_img_1.txt": [(QUADS[0], "2015"), (QUADS[1], "Genaxis Theatre"), (QUADS[2], "7")],
    "gt_img_2.txt": [(QUADS[3], "12,ab"), (QUADS[4], "###")],
}


def test_ic15_gt_scored_against_itself_end_to_end(cli, capsys, tmp_path):
    files = {name: [_line(q, w) for q, w in items] for name, items in IC15_E2E.items()}
    gt_dir = _write(tmp_path / "gt", files)
    # the GT files as RRC results (8 coordinates, then the word: no confidence column)
    pred = _write(tmp_path / "pred", {k.replace("gt_", "res_"): v for k, v in files.items()})
    code, out = _run(cli, capsys, "--task", "e2e", "--gt", gt_dir, "--pred", pred)
    assert code == 0, out
    assert out["totals"]["e2e_none"] == {"num_gt_care": 4, "num_det_care": 4, "correct": 4}
    assert out["hmean"] == pytest.approx(100.0)
    got = read_spotting_detections(pred)
    assert got["1"].texts == ("2015", "Genaxis Theatre", "7") and got["2"].texts[0] == "12,ab"
    assert np.isnan(got["1"].scores).all() and np.isnan(got["2"].scores).all()


def test_rrc_results_with_a_confidence_column(cli, capsys, tmp_path, caplog):
    files = {name: [_line(q, w) for q, w in items] for name, items in IC15_E2E.items()}
    gt_dir = _write(tmp_path / "gt", files)
    scored = {
        name.replace("gt_", "res_"): [_line(q, 0.9 - 0.1 * k, w) for k, (q, w) in enumerate(items)]
        for name, items in IC15_E2E.items()
    }
    assert scored["res_img_2.txt"][0] == "100,200,160,200,160,230,100,230,0.9,12,ab"
    pred = _write(tmp_path / "pred", scored)
    # "0.9,12,ab" after 8 coordinates is also a pentagon and "ab": auto keeps the polygon rule,
    # which reads every line, and warns, the other lines being quadrilaterals
    with caplog.at_level(logging.WARNING, logger="fasttcm.evaluation.protocols.submission_io"):
        got = read_spotting_detections(pred)
    assert got["2"].texts[0] == "ab" and len(got["2"].polygons[0]) == 5
    assert "res_img_2.txt, line 1: read as a 5-vertex polygon by the polygon rule" in caplog.text
    # read as ICDAR 2015 files, every line is as the RRC (with confidences) reads it
    args = ["--task", "e2e", "--gt", gt_dir, "--pred", pred, "--line-format", "icdar2015"]
    code, out = _run(cli, capsys, *args)
    assert code == 0, out
    assert out["hmean"] == pytest.approx(100.0)
    got = read_spotting_detections(pred, line_format="icdar2015")
    assert got["1"].texts == ("2015", "Genaxis Theatre", "7") and got["2"].texts[0] == "12,ab"
    np.testing.assert_allclose(got["1"].scores, [0.9, 0.8, 0.7])


def test_ic15_gt_with_numeric_words_scores_detection_only_results(cli, capsys, tmp_path):
    gt_dir = _ic15_gt(tmp_path / "gt")
    # RRC Challenge 4 task 1 results: 8 coordinates (one line with a confidence)
    det = {
        name.replace("gt_", "res_"): [
            _line(q, *((0.75,) if k == 0 else ())) for k, (q, _) in enumerate(items)
        ]
        for name, items in IC15_GT.items()
    }
    pred = _write(tmp_path / "det", det)
    code, out = _run(cli, capsys, "--task", "det", "--gt", gt_dir, "--pred", pred)
    assert code == 0, out
    assert (out["precision"], out["recall"], out["hmean"]) == pytest.approx((100.0,) * 3)
    assert (out["num_gt_care"], out["num_det_care"]) == (4, 4)


def test_polygon_files_stay_on_the_polygon_rule(tmp_path):
    # Total-Text-like GT: 7-vertex polygons, a numeric word after an odd count of numbers
    heptagon = (0, 0, 20, -2, 40, 0, 60, 4, 60, 24, 20, 18, 0, 20)
    gt_dir = _write(
        tmp_path / "gt",
        {"gt_img_1.txt": [_line(heptagon, "138"), _line(heptagon, "SALE"), _line(QUADS[0], "a")]},
    )
    gt = read_ground_truth(gt_dir)
    assert gt["1"].texts == ("138", "SALE", "a")
    assert [len(p) for p in gt["1"].polygons] == [7, 7, 4]


def test_a_malformed_number_in_a_polygon_set_is_an_error_naming_both_lines(tmp_path):
    heptagon = (0, 0, 20, -2, 40, 0, 60, 4, 60, 24, 20, 18, 0, 20)
    typo = "0,0,20,-2,40,0,60,4,60,24,20,18,0,2O,HELLO"  # y7 mistyped: 13 numbers, then text
    gt_dir = _write(tmp_path / "gt", {"gt_img_1.txt": [_line(heptagon, "SALE"), typo]})
    with pytest.raises(SubmissionFormatError) as info:
        read_ground_truth(gt_dir)
    message = str(info.value)
    assert "gt_img_1.txt, line 2: field 14 ('2O') is not a number but follows 13 numbers" in message
    assert "not read as ICDAR 2015 either, since" in message
    assert "gt_img_1.txt, line 1 is a 7-vertex polygon" in message


def test_a_line_neither_rule_reads_is_the_polygon_rules_error(tmp_path):
    # a quadrilateral set, but line 2 has a mistyped y4: both rules refuse it
    gt_dir = _write(
        tmp_path / "gt",
        {"gt_img_1.txt": [_line(QUADS[0], "A"), "751,426,797,433,789,451,749,4x5,B"]},
    )
    with pytest.raises(SubmissionFormatError) as info:
        read_ground_truth(gt_dir)
    message = str(info.value)
    assert message.startswith(f"{gt_dir}/gt_img_1.txt, line 2: field 8 ('4x5') is not a number")
    assert "the ICDAR 2015 rule refuses the set too" in message


def test_ambiguous_lines_in_a_mostly_quadrilateral_set_are_warned_about(caplog):
    # "12,34,ab" after 8 coordinates: a pentagon and "ab", or a quadrilateral and "12,34,ab"
    lines = [_line(QUADS[k % 5], f"W{k}") for k in range(20)] + [_line(QUADS[0], 12, 34, "ab")]
    with caplog.at_level(logging.WARNING, logger="fasttcm.evaluation.protocols.submission_io"):
        fmt = choose_line_format([("gt_img_9.txt", "\n".join(lines))], parse_gt_line)
    assert fmt == "polygon"
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith("gt_img_9.txt, line 21: read as a 5-vertex polygon")
    assert "20 of the 21 lines" in message and "line_format='icdar2015'" in message
    gt = parse_ground_truth("\n".join(lines), line_format="icdar2015")
    assert gt.texts[-1] == "12,34,ab"
    # a polygon set with as many polygons as quadrilaterals gets no warning
    caplog.clear()
    heptagon = _line((0, 0, 20, -2, 40, 0, 60, 4, 60, 24, 20, 18, 0, 20), "x")
    with caplog.at_level(logging.WARNING, logger="fasttcm.evaluation.protocols.submission_io"):
        text = "\n".join([heptagon] * 5 + [_line(QUADS[0], "y")] * 5)
        assert choose_line_format([("res_1.txt", text)], parse_spotting_line) == "polygon"
    assert not caplog.records


def test_cli_line_format_choices(cli, capsys, tmp_path):
    gt_dir = _ic15_gt(tmp_path / "gt")
    pred = _write(tmp_path / "pred", {"res_img_1.txt": [_line(QUADS[0])]})
    args = ["--task", "det", "--gt", gt_dir, "--pred", pred]
    code, err = _run(cli, capsys, *args, "--line-format", "polygon")
    assert code == 1 and "gt_img_1.txt, line 3: only numbers" in err
    code, out = _run(cli, capsys, *args, "--line-format", "icdar2015")
    assert code == 0 and out["num_gt_care"] == 4
    code, out = _run(cli, capsys, *args)  # auto
    assert code == 0 and out["num_gt_care"] == 4
