"""SynthText converter: word quadrilaterals outside their image, or degenerate once clipped to it,
are left out of the JSON and counted in one warning, as the other converters do."""

import logging

import numpy as np

from fasttcm.data.converters import synthtext
from fasttcm.data.datasets.text_json import load_text_json
from tests.data.test_synthtext_converter import as_word_bb, make_synthtext, read_json, write_image

# image a.jpg is 30 wide, 20 high: the image covers [0, 30] x [0, 20]
INSIDE = [[2.0, 2.0], [12.0, 2.0], [12.0, 8.0], [2.0, 8.0]]
FAR_OUTSIDE = [[40.0, 2.0], [60.0, 2.0], [60.0, 8.0], [40.0, 8.0]]
ON_THE_EDGE = [[30.0, 2.0], [40.0, 2.0], [40.0, 8.0], [30.0, 8.0]]  # touches x = 30 only
SLIVER = [[29.5, 0.0], [40.0, 0.0], [40.0, 1.0], [29.5, 1.0]]  # 0.5 x 1 px inside
PARTLY = [[25.0, 5.0], [40.0, 5.0], [40.0, 10.0], [25.0, 10.0]]  # 5 x 5 px inside: kept
# b.jpg (10 x 10): its only word lies above the image
ABOVE = [[1.0, -9.0], [8.0, -9.0], [8.0, -2.0], [1.0, -2.0]]


def _write_set(src):
    write_image(src / "a.jpg", 20, 30)
    write_image(src / "b.jpg", 10, 10)
    return make_synthtext(
        src,
        imnames=["a.jpg", "b.jpg"],
        word_bbs=[
            as_word_bb([INSIDE, FAR_OUTSIDE, ON_THE_EDGE, SLIVER, PARTLY]),
            as_word_bb([ABOVE]),
        ],
        txts=[np.array(["in far edge sliver part"]), np.array(["up"])],
    )


def test_words_outside_their_image_are_dropped_and_counted(tmp_path, caplog):
    src, dst = _write_set(tmp_path / "SynthText"), tmp_path / "synthtext"
    with caplog.at_level(logging.INFO, logger="fasttcm.data.converters.synthtext"):
        out = synthtext.convert(src, dst, workers=1)["train"]

    assert (out.num_images, out.num_annotations) == (2, 2)
    anns = read_json(dst / "train.json")["annotations"]
    assert [(a["image_id"], a["text"]) for a in anns] == [(1, "in"), (1, "part")]
    np.testing.assert_allclose(anns[0]["polygon"], INSIDE)
    np.testing.assert_allclose(anns[1]["polygon"], PARTLY)  # partly outside: kept as annotated

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    message = warnings[0]
    assert message.startswith(f"{src / 'gt.mat'}: dropped 4 word quadrilateral(s) lying outside")
    assert "e.g. image 0 (a.jpg, 30x20) word 1: [[40.0, 2.0]" in message
    assert "1 image(s) are left with no word by these drops, e.g. image 1 (b.jpg)" in message
    info = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Wrote")]
    assert "2 words (0 degenerate and 4 outside their image skipped)" in info[0]

    # the loader finds nothing more to drop: converter and loader judge the same polygons
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        dicts = load_text_json(dst / "train.json", dst / "train_images")
    assert [len(d["annotations"]) for d in dicts] == [2, 0]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "(0 had polygons, all dropped or skipped above" in messages[0]


def test_no_warning_when_every_word_is_inside(tmp_path, caplog):
    src = tmp_path / "SynthText"
    write_image(src / "a.jpg", 20, 30)
    make_synthtext(src, imnames=["a.jpg"], word_bbs=[as_word_bb([INSIDE])], txts=[np.array(["in"])])
    with caplog.at_level(logging.WARNING, logger="fasttcm.data.converters.synthtext"):
        out = synthtext.convert(src, tmp_path / "out", workers=1)["train"]
    assert out.num_annotations == 1 and not caplog.records
