"""gt_<id>.txt / res_<id>.txt: line formats, sample keys, zips, errors and atomic writes."""

import os
import zipfile

import numpy as np
import pytest

from fasttcm.data.converters.icdar_gt import format_icdar_gt_line
from fasttcm.evaluation.protocols.result_files import (
    format_det_line,
    round_scores,
    write_sample_zip,
)
from fasttcm.evaluation.protocols.submission_io import (
    SubmissionFormatError,
    list_sample_files,
    parse_detections,
    parse_ground_truth,
    read_detections,
    read_ground_truth,
    sample_key,
)
from fasttcm.utils.atomic_io import replace_dir_atomic


def test_ground_truth_lines_with_commas_numbers_quotes_and_dont_care():
    text = (
        "\ufeff1,2,11,2,11,12,1,12,Hello, world\r\n"  # BOM, CRLF, comma inside the text
        "\n"
        "0,0,10,0,10,10,0,10,2015\n"  # numeric transcription (odd count of numbers)
        '0,0,10,0,10,10,0,10,"12,ab"\n'  # a text starting with a number and a comma: quoted
        '0,0,10,0,10,10,0,10,"1,5"\n'  # quoted: un-quoted
        '0,0,10,0,10,10,0,10,"say \\"hi\\""\n'  # RRC escapes
        "0,0,10,0,10,10,0,10,###\n"
        "0,0,5,0,10,5,5,10,0,5,####curved text \n"  # AdelaiDet ',####' form, 5 points, stripped
        "0,0,10,0,10,10,#######\n"  # ',####' + '###'
    )
    gt = parse_ground_truth(text, "gt_1.txt")
    assert gt.texts == (
        "Hello, world",
        "2015",
        "12,ab",
        "1,5",
        'say "hi"',
        "###",
        "curved text",
        "###",
    )
    np.testing.assert_array_equal(gt.polygons[0], [[1, 2], [11, 2], [11, 12], [1, 12]])
    assert [len(p) for p in gt.polygons] == [4, 4, 4, 4, 4, 4, 5, 3]
    np.testing.assert_array_equal(gt.dont_care, [0, 0, 0, 0, 0, 1, 0, 1])


@pytest.mark.parametrize(
    "line, problem",
    [
        ("0,0,10,0,10,10,0,10", "only numbers"),  # no transcription / ambiguous
        ("0,0,10,0,hello", "at least 3 points"),
        ("0,0,10,0,10,1e999,abc", "non-finite"),
        # an odd count of numbers before the text: a coordinate is missing or malformed (or an
        # unquoted '12,ab', which the writer quotes)
        ("0,0,10,0,10,10,0,10,12,ab", "field 10 .'ab'. is not a number but follows 9 numbers"),
    ],
)
def test_malformed_ground_truth_lines_name_file_and_line(line, problem):
    with pytest.raises(SubmissionFormatError, match=f"gt_9.txt, line 2: .*{problem}"):
        parse_ground_truth("0,0,1,0,1,1,x\n" + line + "\n", "gt_9.txt")


def test_detection_lines_with_and_without_scores():
    det = parse_detections(
        "0,0,10,0,10,10,0,10,0.75\n1.5,0,10,0,10,10\n\n0,0,4,0,4,4,0,4,####abc\n", "res_1.txt"
    )
    np.testing.assert_array_equal(det.scores[:1], [0.75])
    assert np.isnan(det.scores[1:]).all()
    np.testing.assert_array_equal(det.polygons[1], [[1.5, 0], [10, 0], [10, 10]])
    assert det.texts == ("", "", "abc")


@pytest.mark.parametrize(
    "line, problem",
    [
        ("0,0,10,0,10,10,0,10,word", "field 9 .*'word'.* is not a number"),
        ("0,0,10,0,0.9", "at least|even number"),
        ("0,0,10,0,10,nan,0,10", "field 6"),
    ],
)
def test_malformed_detection_lines_name_file_and_line(line, problem):
    with pytest.raises(SubmissionFormatError, match=f"res_3.txt, line 3: .*({problem})"):
        parse_detections("0,0,1,0,1,1\n\n" + line, "res_3.txt")


def test_sample_keys():
    assert sample_key("gt_img_7.txt") == sample_key("0000007.txt") == sample_key("gt_7.txt") == "7"
    assert sample_key("res_img_7.txt", "res") == sample_key("res_0007.txt", "res") == "7"
    assert sample_key("gt_foo_bar.txt") == "foo_bar"
    assert sample_key("img_12") == "12"  # an image stem


# Transcriptions that a careless writer or reader would take apart or change: commas, numbers
# (one or several), quotes (inner, around, escaped), backslashes, the AdelaiDet separator, spaces.
TRICKY_TRANSCRIPTIONS = [
    "plain",
    "a,b",
    "Hello, world",
    "a,b, c",
    ",",
    "x,",
    "12",
    "2015",
    "-3.5",
    "1,5",
    "1,000",
    "12,ab",
    "1,2,abc",
    " 12,34",
    'q"uote',
    '"quoted"',
    ' "spaced quotes" ',
    '"',
    '"a\\b"',
    "back\\slash\\",
    '\\"',
    "###",
    "####",
    "####x",
    "a,####b",
    "12,####b",
    "",
    " ",
    " padded ",
    "tab\there",
    "Café 中文",
]


@pytest.mark.parametrize("text", TRICKY_TRANSCRIPTIONS)
def test_gt_line_round_trip(text):
    """format_icdar_gt_line -> parse_ground_truth gives back the polygon and the text exactly."""
    polygons = [
        np.array([[1.0, 2.0], [30.5, 2.0], [30.5, 12.25], [1.0, 12.0]]),
        np.array([[0.0, 0.0], [5.125, -1.5], [10.0, 3.0], [7.0, 9.0], [2.0, 8.0]]),
    ]
    lines = [format_icdar_gt_line(polygon, text) + "\n" for polygon in polygons]
    gt = parse_ground_truth("".join(lines))
    assert gt.texts == (text, text)
    for got, polygon in zip(gt.polygons, polygons):
        np.testing.assert_array_equal(got, polygon)


def test_gt_line_quoting_and_line_breaks():
    square = [[0, 0], [10, 0], [10, 10], [0, 10]]
    assert format_icdar_gt_line(square, "a,b") == "0,0,10,0,10,10,0,10,a,b"
    assert format_icdar_gt_line(square, "2015") == "0,0,10,0,10,10,0,10,2015"
    assert format_icdar_gt_line(square, "1,000") == '0,0,10,0,10,10,0,10,"1,000"'
    assert format_icdar_gt_line(square, "####x") == '0,0,10,0,10,10,0,10,"####x"'
    # a line break would end the instance: it becomes a space
    assert parse_ground_truth(format_icdar_gt_line(square, "two\r\nlines")).texts == ("two  lines",)


def test_detection_line_format_round_trip():
    # AdelaiDet writes int()-truncated coordinates (toward zero)
    assert (
        format_det_line([[10.9, -0.5], [20.2, 0.0], [20.0, 9.99]], 0.123456789)
        == "10,0,20,0,20,9,0.123457"
    )
    assert (
        format_det_line([[1.5, 2], [3, 4], [5, 6]], None, integer_coords=False) == "1.5,2,3,4,5,6"
    )
    np.testing.assert_array_equal(round_scores([0.5, 0.30000001192092896, 1.0]), [0.5, 0.3, 1.0])
    det = parse_detections(format_det_line([[0, 0], [1, 0], [1, 1]], 0.30000001192092896))
    assert det.scores[0] == 0.3


def _write(folder, name, text):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
        f.write(text)


def test_folder_and_zip_reading(tmp_path):
    folder = tmp_path / "gt"
    _write(folder, "gt_img_1.txt", "0,0,10,0,10,10,0,10,a\n")
    _write(folder, "gt_img_2.txt", "")
    _write(folder, ".hidden.txt", "junk")
    _write(folder, "notes.md", "junk")
    gt = read_ground_truth(str(folder))
    assert sorted(gt) == ["1", "2"] and len(gt["2"]) == 0

    archive = tmp_path / "res.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("submit/res_img_1.txt", "0,0,10,0,10,10,0,10,0.9\n")
        z.writestr("__MACOSX/submit/._res_img_1.txt", "junk")
        z.writestr("submit/", "")
    det = read_detections(str(archive))
    assert list(det) == ["1"] and det["1"].scores.tolist() == [0.9]
    files = list_sample_files(str(archive), "res")
    assert files["1"].where.endswith("res.zip:submit/res_img_1.txt")


def test_bad_folders_and_duplicate_keys(tmp_path):
    with pytest.raises(SubmissionFormatError, match="no such folder"):
        read_ground_truth(str(tmp_path / "missing"))
    (tmp_path / "plain.zip").write_text("not a zip")
    with pytest.raises(SubmissionFormatError, match="neither a folder nor a zip"):
        read_ground_truth(str(tmp_path / "plain.zip"))
    _write(tmp_path / "dup", "gt_img_7.txt", "")
    _write(tmp_path / "dup", "0000007.txt", "")
    with pytest.raises(SubmissionFormatError, match="same sample key '7'"):
        read_ground_truth(str(tmp_path / "dup"))
    (tmp_path / "latin").mkdir()
    (tmp_path / "latin" / "gt_1.txt").write_bytes("0,0,1,0,1,1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(SubmissionFormatError, match="gt_1.txt: not UTF-8"):
        read_ground_truth(str(tmp_path / "latin"))


def test_atomic_folder_and_zip_writes(tmp_path):
    out = tmp_path / "det_txt"
    replace_dir_atomic(str(out), {"res_1.txt": "a\n", "res_2.txt": ""})
    replace_dir_atomic(str(out), {"res_3.txt": "c\n"})  # replaces the whole folder
    assert sorted(os.listdir(out)) == ["res_3.txt"]
    assert sorted(os.listdir(tmp_path)) == ["det_txt"]  # no temporary folders left behind
    with pytest.raises(ValueError, match="must not contain a folder"):
        replace_dir_atomic(str(out), {"../evil.txt": ""})
    assert sorted(os.listdir(out)) == ["res_3.txt"]  # a failed write leaves the old folder intact
    write_sample_zip(str(tmp_path / "det.zip"), {"res_1.txt": "0,0,10,0,10,10,0.5\n"})
    assert read_detections(str(tmp_path / "det.zip"))["1"].scores.tolist() == [0.5]
