"""RRC end-to-end rules (docs/protocols.md, "End-to-end text spotting") on hand-made images with
known counts."""

import numpy as np
import pytest

from fasttcm.evaluation.protocols.base import DetectionCounts, ImageDetections, ImageGroundTruth
from fasttcm.evaluation.protocols.e2e import (
    E2EProtocol,
    evaluate_text_spotting,
    is_correct_transcription,
    is_spotting_word,
    normalize_spotting_word,
    transcription_match,
)
from fasttcm.evaluation.protocols.lexicon import FAR_OFF_RULES, Lexicon, LexiconCorrector
from fasttcm.evaluation.protocols.text_det import evaluate_text_detection


def rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def ground_truth(*items):
    """ground_truth((polygon, text), ...) -> ImageGroundTruth."""
    return ImageGroundTruth.from_annotations([p for p, _ in items], [t for _, t in items])


def detections(*items):
    """detections((polygon, text), ...) -> ImageDetections, scores descending."""
    scores = np.linspace(0.9, 0.5, len(items)) if items else []
    return ImageDetections.from_arrays([p for p, _ in items], scores, [t for _, t in items])


def counts(correct, num_gt, num_det):
    return DetectionCounts(float(correct), float(correct), num_gt, num_det)


@pytest.mark.parametrize(
    "gt, det, expected",
    [
        ("HELLO", "HELLO", True),
        ("HELLO!", "HELLO", True),  # one special character off the end of the GT
        ("(HELLO", "HELLO", True),  # ... off the start
        ("(HELLO)", "HELLO", True),  # ... off both ends
        ("(HELLO)", "(HELLO", True),
        ("HELLO·", "HELLO", True),  # U+00B7 is special
        ("'HELLO'", "HELLO", True),
        ("HELLO", "HELLO!", False),  # nothing is removed from the detection
        ("!!HELLO", "HELLO", False),  # at most one character per end
        ("HEL.LO", "HELLO", False),  # only at the ends
        ("HELLO-", "HELLO", False),  # '-' is not special
        ("HELLO", "hello", False),  # case-sensitive here: callers upper-case
        ("!", "", True),
        ("", "", True),
        ("", "A", False),  # an empty GT: the official IndexError counts as a mismatch
    ],
)
def test_transcription_match(gt, det, expected):
    assert transcription_match(gt, det) is expected


def test_text_test_of_a_matched_pair_is_case_insensitive():
    assert is_correct_transcription("Hello!", "hELLO", word_spotting=False)
    assert is_correct_transcription("Straße", "STRASSE", word_spotting=False)  # str.upper()
    assert is_correct_transcription("Hello", "HELLO", word_spotting=True)
    assert not is_correct_transcription("Hello!", "hello", word_spotting=True)  # exact only


@pytest.mark.parametrize(
    "word, normalised, passes",
    [
        ("Hello's", "Hello", True),  # final 's dropped
        ("HELLO'S", "HELLO", True),
        ("(Hello)", "Hello", True),
        ("-abc-", "abc", True),  # hyphens stripped at the ends only
        ("e-mail", "e-mail", True),
        ("ABC·", "ABC", True),
        ("café", "café", True),  # U+00C0-U+01BF
        ("Ωμέγα", "Ωμέγα", True),  # U+0386-U+03FF
        ("it", "it", False),  # shorter than 3
        ("it's", "it", False),
        ("abc1", "abc1", False),  # digits
        ("2015", "2015", False),
        ("two words", "two words", False),  # a space
        ("a.b.c", "a b c", False),  # separators become spaces
        ("a×b", "a×b", False),
        ("中文字", "中文字", False),
    ],
)
def test_word_spotting_dictionary_test(word, normalised, passes):
    assert normalize_spotting_word(word) == normalised
    assert is_spotting_word(word) is passes


def test_wrong_text_consumes_gt_special_characters_and_dont_care():
    gt = ground_truth(
        (rect(0, 0, 100, 20), "Hello!"),
        (rect(0, 40, 100, 60), "World"),
        (rect(0, 80, 100, 100), "###"),
        (rect(200, 0, 300, 20), "Exit"),
    )
    det = detections(
        (rect(0, 0, 100, 20), "HELLO"),  # g0, right up to the GT's special character: TP
        (rect(0, 40, 100, 60), "W0RLD"),  # g1 with a wrong text: consumes g1, FP
        (rect(0, 40, 100, 60), "world"),  # right text, but g1 is taken: FP
        (rect(2, 80, 100, 100), "foo"),  # inside the don't-care region: not counted
        (rect(200, 0, 300, 20), "exit!"),  # g3; the detection's '!' is never removed: FP
        (rect(500, 500, 510, 510), "lost"),  # nothing there: FP
    )
    protocol = E2EProtocol()
    geometry = protocol.prepare(gt, det)
    pairs, correct = protocol.match(geometry)
    assert pairs.tolist() == [[0, 0], [1, 1], [3, 4]]
    assert correct.tolist() == [True, False, False]
    assert protocol.count(geometry) == counts(1, 3, 5)
    assert protocol.count_detection(geometry) == counts(3, 3, 5)
    # lexicon-style overrides: other texts and a subset of detections, same geometry
    texts = ["hello", "World", "world", "foo", "EXIT", "lost"]
    assert protocol.count(geometry, texts=texts) == counts(3, 3, 5)
    keep = np.array([True, False, True, True, True, False])
    assert protocol.count(geometry, keep, texts) == counts(3, 3, 3)  # d2 now takes g1


def test_word_spotting_changes_the_dont_care_sets():
    gt = ground_truth(
        (rect(0, 0, 100, 20), "Hello's"),
        (rect(0, 40, 100, 60), "A1B2"),
        (rect(0, 80, 100, 100), "it"),
        (rect(200, 0, 300, 20), "café"),
        (rect(200, 40, 300, 60), "Tokyo"),
        (rect(200, 80, 300, 100), "###"),
    )
    det = detections(
        (rect(0, 0, 100, 20), "hello"),
        (rect(0, 40, 100, 60), "A1B2"),
        (rect(0, 80, 100, 100), "it"),
        (rect(200, 0, 300, 20), "CAFÉ"),
        (rect(200, 40, 300, 60), "Tokyo!"),
        (rect(200, 80, 300, 100), "###"),
    )
    spotting = E2EProtocol(word_spotting=True)
    geometry = spotting.prepare(gt, det)
    assert geometry.gt_texts[0] == "Hello"
    assert geometry.e2e.gt_dont_care.tolist() == [False, True, True, False, False, True]
    assert geometry.e2e.det_dont_care.tolist() == [False, True, True, False, False, True]
    # care GT: Hello's, café, Tokyo; care detections: hello (TP), CAFÉ (TP), Tokyo! (FP)
    assert spotting.count(geometry) == counts(2, 3, 3)
    # the detection-only figure keeps '###' as its only don't-care text
    assert spotting.count_detection(geometry) == counts(5, 5, 5)

    plain = E2EProtocol(word_spotting=False)
    geometry = plain.prepare(gt, det)
    # "HELLO'S" != "HELLO" (S is not special); A1B2, it, CAFÉ right; Tokyo! wrong
    assert plain.count(geometry) == counts(3, 5, 5)
    assert plain.count_detection(geometry) == counts(5, 5, 5)


def test_iou_and_dont_care_thresholds_are_strict():
    gt = ground_truth((rect(0, 0, 10, 10), "abc"), (rect(100, 0, 110, 10), "###"))
    half = detections((rect(0, 0, 10, 5), "abc"), (rect(100, 0, 110, 20), "x"))
    # IoU exactly 0.5: no match; area precision exactly 0.5 in the don't-care region: counted
    assert E2EProtocol().evaluate_image(gt, half) == counts(0, 1, 2)
    more = detections((rect(0, 0, 10, 6), "ABC"), (rect(100, 0, 110, 19), "x"))
    assert E2EProtocol().evaluate_image(gt, more) == counts(1, 1, 1)


def test_dataset_totals_empty_images_and_errors():
    gt = {
        "1": ground_truth((rect(0, 0, 10, 10), "one"), (rect(20, 0, 30, 10), "two")),
        "2": ground_truth((rect(0, 0, 10, 10), "three")),  # never detected
        "3": ImageGroundTruth.empty(),  # no GT: its detection is a false positive
        "4": ground_truth((rect(0, 0, 10, 10), "###")),  # only don't care, nothing detected
    }
    det = {
        "1": detections((rect(0, 0, 10, 10), "ONE"), (rect(20, 0, 30, 10), "tw0")),
        "3": detections((rect(0, 0, 10, 10), "ghost")),
        "4": ImageDetections.empty(),
    }
    result = evaluate_text_spotting(gt, det, E2EProtocol())
    assert result.e2e["none"] == counts(1, 3, 3)
    assert result.detection == counts(2, 3, 3)
    assert result.per_image["2"]["none"] == counts(0, 1, 0)
    assert result.per_image["4"]["none"] == counts(0, 0, 0)
    metrics = result.metrics()
    assert set(metrics) == {"e2e_none", "text_det"}
    assert metrics["e2e_none"] == pytest.approx(
        {"precision": 100 / 3, "recall": 100 / 3, "hmean": 100 / 3}
    )
    assert metrics["text_det"]["hmean"] == pytest.approx(200 / 3)

    # no detections at all: everything 0, as the RRC script reports
    result = evaluate_text_spotting(gt, {}, E2EProtocol())
    assert result.metrics()["e2e_none"] == {"precision": 0.0, "recall": 0.0, "hmean": 0.0}

    with pytest.raises(ValueError, match="not present in the ground truth.*'9'"):
        evaluate_text_spotting(gt, {"9": ImageDetections.empty()}, E2EProtocol())
    with pytest.raises(ValueError, match="no images"):
        evaluate_text_spotting({}, {}, E2EProtocol())
    untranscribed = {"1": ImageDetections.from_arrays([rect(0, 0, 10, 10)], [0.9])}
    with pytest.raises(ValueError, match="image '1': 1 detections but 0 transcriptions"):
        evaluate_text_spotting(gt, untranscribed, E2EProtocol())


def test_e2e_protocol_plugs_into_the_detection_sweep():
    gt = {"1": ground_truth((rect(0, 0, 10, 10), "one"), (rect(20, 0, 30, 10), "two"))}
    det = {
        "1": ImageDetections.from_arrays(
            [rect(0, 0, 10, 10), rect(20, 0, 30, 10)], [0.9, 0.35], ["one", "two"]
        )
    }
    result = evaluate_text_detection(gt, det, E2EProtocol(), score_thresholds=[0.3, 0.5])
    assert result.counts == counts(2, 2, 2)
    assert result.sweep.counts == (counts(2, 2, 2), counts(1, 2, 1))


def full_lexicon(rule, words):
    lexicon = Lexicon(words, {w.upper(): w for w in words})
    return LexiconCorrector("full", FAR_OFF_RULES[rule]["full"], {None: lexicon})


def test_lexicon_runs_with_far_off_words_and_ties():
    words = ["Station", "Street", "Avenue", "Cart", "Card"]
    gt = {
        "1": ground_truth(
            (rect(0, 0, 100, 20), "Station"),
            (rect(0, 40, 100, 60), "Street"),
            (rect(0, 80, 100, 100), "Avenue"),
            (rect(200, 0, 300, 20), "Card"),
        )
    }
    det = {
        "1": detections(
            (rect(0, 0, 100, 20), "statlon"),  # 1 from STATION: corrected, TP
            (rect(0, 40, 100, 60), "strxxx"),  # 3 from STREET: far off
            (rect(0, 80, 100, 100), "avenve"),  # 1 from AVENUE: TP
            (rect(200, 0, 300, 20), "carx"),  # 1 from CART and CARD: the earlier (Cart) wins, FP
            (rect(500, 500, 600, 520), "zzzzzzzz"),  # nowhere, far from every word
        )
    }
    result = evaluate_text_spotting(
        gt,
        det,
        E2EProtocol(),
        lexicons={"full": full_lexicon("adelaidet", words), "weak": full_lexicon("testr", words)},
    )
    assert result.e2e["none"] == counts(0, 4, 5)
    # AdelaiDet: far-off words (distance >= 2) leave the run: neither TP nor FP
    assert result.e2e["full"] == counts(2, 4, 3)
    # TESTR on a full lexicon always replaces: STREET becomes a TP, zzzzzzzz an FP
    assert result.e2e["weak"] == counts(3, 4, 5)
    words_out, distances, keep = result.corrections["full"]["1"]
    assert words_out[:4] == ["Station", "Street", "Avenue", "Cart"]
    assert distances[:4].tolist() == [1, 3, 1, 1]
    assert keep.tolist() == [True, False, True, True, False]
    metrics = result.metrics()
    assert list(metrics) == ["e2e_none", "e2e_full", "e2e_weak", "text_det"]
    assert metrics["e2e_full"]["precision"] == pytest.approx(200 / 3)
    assert metrics["e2e_full"]["recall"] == pytest.approx(50.0)
    assert result.detection == counts(4, 4, 5)
