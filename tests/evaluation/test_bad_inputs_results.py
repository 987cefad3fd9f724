"""Bad and tricky result / ground-truth files: malformed numbers, numeric transcriptions, DOTA
scores that are not finite, lexicon files of the CTW1500 release and oversized zips."""

import json
import zipfile

import numpy as np
import pytest

from fasttcm.data.converters.icdar_gt import format_icdar_gt_line
from fasttcm.evaluation.dota_merge import merge_patch_detections, merge_task1_dir
from fasttcm.evaluation.protocols.dota_task1_io import read_task1_dir, read_task1_file
from fasttcm.evaluation.protocols.lexicon import (
    build_lexicon_corrector,
    read_pair_list,
    split_pair_line,
)
from fasttcm.evaluation.protocols.result_files import format_spotting_det_line
from fasttcm.evaluation.protocols.submission_io import (
    SubmissionFormatError,
    parse_detections,
    parse_ground_truth,
    parse_spotting_detections,
    read_ground_truth,
)
from fasttcm.evaluation.protocols.zip_reading import ZipLimitError, ZipLimits

QUAD = "751,426,797,433,789,451,749,445"
QUAD_POINTS = [[751, 426], [797, 433], [789, 451], [749, 445]]


def run_cli(cli, capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    if code:
        return code, captured.err
    return code, json.loads(captured.out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cli(load_tool):
    return load_tool("evaluate")


# ------------------------------------------------------------------ malformed numbers (item 2)


@pytest.mark.parametrize(
    "line, message",
    [
        # y4 mistyped: an odd count of numbers before the text
        (
            "751,426,797,433,789,451,749,1O,HELLO",
            r"gt_7\.txt, line 2: field 8 \('1O'\) is not a number but follows 7 numbers",
        ),
        # x5 of a CTW1500-like line mistyped: ',####' after a non-number
        (
            "0,0,10,0,20,0,30,0,1O,10,0,10,####HELLO",
            r"gt_7\.txt, line 2: field 9 \('1O'\) is not a number, but ',####' follows",
        ),
        # an unquoted transcription that starts with a number and a comma is ambiguous
        (f"{QUAD},12,ab", r"gt_7\.txt, line 2: field 10 \('ab'\) is not a number"),
        ("751,426,797,1O,HELLO", r"gt_7\.txt, line 2: .*at least 3 points"),
    ],
)
def test_malformed_gt_coordinates_name_file_line_and_field(line, message):
    with pytest.raises(SubmissionFormatError, match=message):
        parse_ground_truth(f"0,0,1,0,1,1,a\n{line}\n", "gt_7.txt")


def test_icdar2015_rule_checks_all_eight_coordinates():
    # x4 mistyped leaves an even count: the polygon rule cannot tell it from a triangle, the
    # ICDAR 2015 rule can
    line = "751,426,797,433,789,451,1O,445,HELLO"
    gt = parse_ground_truth(line, "gt_7.txt")
    assert gt.texts == ("1O,445,HELLO",) and len(gt.polygons[0]) == 3  # the documented limit
    with pytest.raises(SubmissionFormatError, match=r"gt_7\.txt, line 1: field 7 \('1O'\)"):
        parse_ground_truth(line, "gt_7.txt", line_format="icdar2015")
    with pytest.raises(SubmissionFormatError, match=r"res_7\.txt, line 1: field 7 \('1O'\)"):
        parse_spotting_detections(line, "res_7.txt", line_format="icdar2015")
    with pytest.raises(SubmissionFormatError, match="line 1: an ICDAR 2015 ground-truth line"):
        parse_ground_truth(QUAD, "gt_7.txt", line_format="icdar2015")


def test_the_issue_example_is_an_error_in_both_rules():
    # 751 would be the score, '1O,40,HELLO' the text: a score must lie in [0, 1]
    line = "10,10,50,10,50,30,751,1O,40,HELLO"
    with pytest.raises(
        SubmissionFormatError,
        match=r"res_1\.txt, line 1: field 7 \('751'\) is read as the score, which must lie in",
    ):
        parse_spotting_detections(line, "res_1.txt")
    with pytest.raises(SubmissionFormatError, match=r"res_1\.txt, line 1: field 8 \('1O'\)"):
        parse_spotting_detections(line, "res_1.txt", line_format="icdar2015")
    with pytest.raises(SubmissionFormatError, match=r"res_1\.txt, line 1: field 7 .*'751'.*score"):
        parse_detections("10,10,50,10,50,30,751", "res_1.txt")


def test_long_bad_lines_are_not_echoed_whole():
    line = "0,0,10,0,10,1O," + "x" * 5000
    with pytest.raises(SubmissionFormatError) as info:
        parse_ground_truth(line, "gt_1.txt")
    message = str(info.value)
    assert "gt_1.txt, line 1" in message and f"({len(line)} characters)" in message
    assert len(message) < 700


def test_evaluate_cli_reports_a_malformed_number(cli, capsys, tmp_path):
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "gt_img_1.txt").write_text(f"{QUAD},HELLO\n")
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "res_img_1.txt").write_text("751,426,797,433,789,451,749,1O,HELLO\n")
    args = ["--task", "e2e", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred")]
    code, err = run_cli(cli, capsys, *args, "--line-format", "icdar2015")
    assert code == 1 and "res_img_1.txt, line 1: field 8 ('1O') is not a number" in err


# ------------------------------------------------------------- numeric transcriptions (item 4)


@pytest.mark.parametrize("line_format", ["polygon", "icdar2015"])
def test_numeric_transcriptions_read_as_the_rrc_does(line_format):
    det = parse_spotting_detections(
        f"{QUAD},2015\n{QUAD},0.9,2015\n{QUAD},0.5,-3.5\n{QUAD},1\n",
        "res_1.txt",
        line_format=line_format,
    )
    assert det.texts == ("2015", "2015", "-3.5", "1")
    np.testing.assert_array_equal(det.polygons[0], QUAD_POINTS)
    assert np.isnan(det.scores[[0, 3]]).all() and det.scores[1:3].tolist() == [0.9, 0.5]
    gt = parse_ground_truth(f"{QUAD},2015\n", "gt_1.txt", line_format=line_format)
    assert gt.texts == ("2015",) and len(gt.polygons[0]) == 4


def test_icdar2015_rule_keeps_everything_after_the_eighth_comma():
    gt = parse_ground_truth(f"{QUAD},12,ab\n{QUAD},1,000\n", line_format="icdar2015")
    assert gt.texts == ("12,ab", "1,000")
    det = parse_spotting_detections(
        f"{QUAD},0.75,1,000\n{QUAD},HELLO, 2\n", line_format="icdar2015"
    )
    assert det.texts == ("1,000", "HELLO, 2")
    assert det.scores[0] == 0.75 and np.isnan(det.scores[1])


def test_numeric_word_needs_four_points_in_a_line_of_only_numbers():
    with pytest.raises(SubmissionFormatError, match=r"res_1\.txt, line 1: no transcription"):
        parse_spotting_detections("0,0,10,0,10,10,0,10", "res_1.txt")
    # a Total-Text polygon of 8 points with a numeric word and a score
    coords = ",".join(str(v) for v in range(16))
    det = parse_spotting_detections(f"{coords},0.25,138")
    assert det.texts == ("138",) and len(det.polygons[0]) == 8 and det.scores[0] == 0.25


@pytest.mark.parametrize("line_format", ["polygon", "icdar2015"])
@pytest.mark.parametrize("text", ["2015", "1,000", "12,ab", "a,####b", "####x", " 7 ", '"q"'])
def test_writers_round_trip_in_both_rules(line_format, text):
    quad = np.array(QUAD_POINTS, dtype=np.float64)
    gt = parse_ground_truth(format_icdar_gt_line(quad, text), line_format=line_format)
    assert gt.texts == (text,)
    np.testing.assert_array_equal(gt.polygons[0], quad)
    for score in (0.5, None):
        line = format_spotting_det_line(quad, score, text)
        det = parse_spotting_detections(line, line_format=line_format)
        assert det.texts == (text,), line


def write_files(folder, files):
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return str(folder)


@pytest.mark.parametrize("line_format", ["polygon", "icdar2015"])
def test_numeric_words_in_gt_and_results_agree(cli, capsys, tmp_path, line_format):
    """IC15 GT and RRC result lines with numeric words: the GT scored against itself is 100."""
    lines = f"{QUAD},2015\n0,0,40,0,40,20,0,20,HELLO\n100,0,140,0,140,20,100,20,7\n"
    gt = write_files(tmp_path / "gt", {"gt_img_1.txt": lines})
    pred = write_files(tmp_path / "pred", {"res_img_1.txt": lines})
    code, out = run_cli(
        cli, capsys, "--task", "e2e", "--gt", gt, "--pred", pred, "--line-format", line_format
    )
    assert code == 0, out
    assert out["totals"]["e2e_none"] == {"num_gt_care": 3, "num_det_care": 3, "correct": 3}
    assert out["hmean"] == pytest.approx(100.0)


def test_total_text_polygons_with_numeric_words_score_100(cli, capsys, tmp_path):
    polygon = [[0, 0], [20, -2], [40, 0], [60, 4], [60, 24], [40, 20], [20, 18], [0, 20]]
    lines = format_icdar_gt_line(polygon, "138") + "\n" + format_icdar_gt_line(polygon, "#1") + "\n"
    assert lines.startswith("0,0,20,-2,") and ",138\n" in lines  # written unquoted
    gt = write_files(tmp_path / "gt", {"gt_img1.txt": lines})
    pred = write_files(tmp_path / "pred", {"res_img1.txt": lines})
    code, out = run_cli(cli, capsys, "--task", "e2e", "--gt", gt, "--pred", pred)
    assert code == 0 and out["hmean"] == pytest.approx(100.0)


# --------------------------------------------------------------------- DOTA scores (item 3)


@pytest.mark.parametrize(
    "line, what",
    [
        ("P0001 nan 1 1 9 1 9 9 1 9", "non-finite score 'nan'"),
        ("P0001 inf 1 1 9 1 9 9 1 9", "non-finite score 'inf'"),
        ("P0001 0.5 1 1 9 1 9 -inf 1 9", "non-finite coordinate '-inf'"),
    ],
)
def test_dota_task1_non_finite_values_name_file_and_line(tmp_path, line, what):
    path = tmp_path / "Task1_plane.txt"
    path.write_text(f"P0001 0.9 1 1 9 1 9 9 1 9\n\n{line}\n")
    with pytest.raises(ValueError, match=rf"Task1_plane\.txt:3: {what}"):
        read_task1_file(path)
    with pytest.raises(ValueError, match=rf"Task1_plane\.txt:3: {what}"):
        read_task1_dir(tmp_path, ["plane"])


def test_dota_merge_refuses_non_finite_scores(tmp_path):
    (tmp_path / "patches").mkdir()
    (tmp_path / "patches" / "Task1_plane.txt").write_text(
        "P0001__1__0___0 0.9 1 1 9 1 9 9 1 9\nP0001__1__0___0 NaN 1 1 9 1 9 9 1 9\n"
    )
    with pytest.raises(ValueError, match=r"Task1_plane\.txt:2: non-finite score 'NaN'"):
        merge_task1_dir(str(tmp_path / "patches"), str(tmp_path / "merged"))
    assert not (tmp_path / "merged").exists()
    boxes = np.array([[5.0, 5.0, 8.0, 8.0, 0.0]] * 2)
    with pytest.raises(ValueError, match="detection 1 on patch 'P0001__1__0___0'.*non-finite"):
        merge_patch_detections(["P0001__1__0___0"] * 2, boxes, [0.9, np.inf], [0, 0])


# ----------------------------------------------------------------- CTW1500 lexicons (item 6)


def test_pair_lines_of_several_words_split_in_the_middle():
    assert split_pair_line("SINCE 1958 since 1958") == ("SINCE 1958", "since 1958")
    assert split_pair_line("HELLO Hello") == ("HELLO", "Hello")
    assert split_pair_line("A B C a b c") == ("A B C", "a b c")
    # halves that differ: the official first-token rule
    assert split_pair_line("KEY some other words") == ("KEY", "some other words")


def test_ctw1500_release_lexicon_names(tmp_path):
    (tmp_path / "ctw1500_lexicon.txt").write_text("since 1958\nHello World\nLatin\n")
    (tmp_path / "ctw1500_pair_list.txt").write_text(
        "SINCE 1958 since 1958\nHELLO WORLD Hello World\nLATIN Latin\n"
    )
    assert read_pair_list(str(tmp_path / "ctw1500_pair_list.txt")) == {
        "SINCE 1958": "since 1958",
        "HELLO WORLD": "Hello World",
        "LATIN": "Latin",
    }
    full = build_lexicon_corrector(str(tmp_path), "full")
    fixed, dist, keep = full.apply("1001", ["SINCE 1958", "hello wrld", "latn"])
    assert fixed == ["since 1958", "Hello World", "Latin"]
    assert dist.tolist() == [0, 1, 1] and keep.all()
    # the project's own names still come first when present
    (tmp_path / "weak_voc_new.txt").write_text("Other\n")
    assert build_lexicon_corrector(str(tmp_path), "full").apply("1", ["othr"])[0] == ["Other"]


def test_missing_full_lexicon_names_both_choices(tmp_path):
    with pytest.raises(ValueError, match="ctw1500_lexicon.txt beside it.*weak_voc_new.txt"):
        build_lexicon_corrector(str(tmp_path), "full")


# --------------------------------------------------------------------------- zip limits (item 8)


def write_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return str(path)


def test_zip_bomb_member_is_refused_by_ratio(tmp_path, cli, capsys):
    line = b"0,0,10,0,10,10,0,10,0.5\n"
    bomb = write_zip(tmp_path / "res.zip", {"res/res_img_1.txt": line * 200_000})  # 4.8 MB
    assert (tmp_path / "res.zip").stat().st_size < 100_000
    gt = write_files(tmp_path / "gt", {"gt_img_1.txt": "0,0,10,0,10,10,0,10,a\n"})
    args = ["--task", "det", "--gt", gt, "--pred", bomb]
    code, err = run_cli(cli, capsys, *args)
    assert code == 1
    assert f"{bomb}:res/res_img_1.txt: compression ratio" in err and "--zip-max-ratio" in err
    code, out = run_cli(cli, capsys, *args, "--zip-max-ratio", "100000")
    assert code == 0 and out["num_gt_care"] == 1


def test_zip_member_and_total_limits(tmp_path, cli, capsys):
    members = {f"gt_img_{i}.txt": "0,0,10,0,10,10,0,10,a\n" * 100 for i in range(3)}
    archive = write_zip(tmp_path / "gt.zip", members, compression=zipfile.ZIP_STORED)
    with pytest.raises(ZipLimitError, match=r"gt\.zip:gt_img_0\.txt: uncompressed size"):
        read_ground_truth(archive, zip_limits=ZipLimits(max_member_bytes=1000))
    with pytest.raises(ZipLimitError, match=r"gt\.zip: the members up to gt_img_1\.txt"):
        read_ground_truth(archive, zip_limits=ZipLimits(max_total_bytes=3000))
    assert len(read_ground_truth(archive)) == 3
    pred = write_files(tmp_path / "pred", {})
    code, err = run_cli(
        cli,
        capsys,
        "--task",
        "det",
        "--gt",
        archive,
        "--pred",
        pred,
        "--zip-max-member-mb",
        "0.001",
    )
    assert code == 1 and "gt_img_0.txt: uncompressed size" in err
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(
            ["--task", "det", "--gt", "g", "--pred", "p", "--zip-max-ratio", "0"]
        )
