"""Lexicon correction (docs/protocols.md, "Lexicons"): edit distance, ties, pair lists, far-off
rules, files."""

import random

import numpy as np
import pytest

from fasttcm.evaluation.protocols.lexicon import (
    FAR_OFF_RULES,
    NO_MATCH_DISTANCE,
    Lexicon,
    LexiconCorrector,
    LexiconError,
    _codes,
    _levenshtein_bit_parallel,
    _levenshtein_dp,
    build_lexicon_corrector,
    levenshtein,
    read_pair_list,
    read_word_list,
)


def reference_levenshtein(a: str, b: str) -> int:
    """Textbook O(len(a) * len(b)) dynamic programme, one cell at a time."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        prev, row[0] = row[:], i
        for j, cb in enumerate(b, start=1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
    return row[-1]


def test_levenshtein_known_values():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == levenshtein("abc", "") == 3
    assert levenshtein("", "") == 0
    assert levenshtein("flaw", "lawn") == 2
    assert levenshtein("café", "cafe") == 1  # code points, not bytes
    assert levenshtein("ABC", "abc") == 3  # case-sensitive: callers upper-case


def test_both_vectorized_distances_agree_with_the_textbook_dp():
    rng = random.Random(0)
    alphabet = "abcé口"
    for _ in range(300):
        query = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 70)))
        length = rng.randint(0, 9)
        words = ["".join(rng.choice(alphabet) for _ in range(length)) for _ in range(4)]
        codes = _codes("".join(words)).reshape(4, length)
        expected = [reference_levenshtein(query, w) for w in words]
        assert _levenshtein_dp(_codes(query), codes).tolist() == expected
        if len(query) <= 64:  # one uint64 per word
            assert _levenshtein_bit_parallel(_codes(query), codes).tolist() == expected
        assert [levenshtein(query, w) for w in words] == expected  # dispatcher, both paths


def test_nearest_word_is_case_insensitive_and_ties_go_to_the_earlier_word():
    words = ["cart", "card", "Hello", "world", "CARE"]
    lexicon = Lexicon(words, {w.upper(): w for w in words})
    assert lexicon.correct("hello") == ("Hello", 0)
    assert lexicon.correct("HELLO") == ("Hello", 0)
    # 'carx' is 1 away from cart, card and CARE: the first in file order wins
    assert lexicon.nearest_index("carx") == (0, 1)
    assert lexicon.correct("carx") == ("cart", 1)
    reordered = Lexicon(words[::-1], {w.upper(): w for w in words})
    assert reordered.correct("carx") == ("CARE", 1)
    # a tie between words of different lengths: 'wor' is 1 from 'word' and from 'wo'
    lexicon = Lexicon(["word", "wo"], {"WORD": "word", "WO": "wo"})
    assert lexicon.correct("wor") == ("word", 1)
    lexicon = Lexicon(["wo", "word"], {"WORD": "word", "WO": "wo"})
    assert lexicon.correct("wor") == ("wo", 1)


def test_nearest_word_agrees_with_a_brute_force_scan():
    rng = random.Random(1)
    words = ["".join(rng.choice("abcdef") for _ in range(rng.randint(1, 9))) for _ in range(400)]
    lexicon = Lexicon(words, {w.upper(): w for w in words})
    for _ in range(40):
        query = "".join(rng.choice("abcdefg") for _ in range(rng.randint(0, 10)))
        distances = [reference_levenshtein(query.upper(), w.upper()) for w in words]
        best = min(distances)
        assert lexicon.nearest_index(query) == (distances.index(best), best)


def test_pair_list_spelling_empty_lexicon_and_missing_pairs():
    lexicon = Lexicon(["HELLO", "Tokyo"], {"HELLO": "Hello!", "TOKYO": "Tokyo"})
    assert lexicon.correct("helo") == ("Hello!", 1)  # the pair list's original spelling
    assert Lexicon([], {}).correct("anything") == ("", NO_MATCH_DISTANCE)
    # only a distance below 100 can win (official dist_min start value)
    far = Lexicon(["a" * 101], {"A" * 101: "a" * 101})
    assert far.correct("") == ("", NO_MATCH_DISTANCE)
    assert far.correct("a") == ("", NO_MATCH_DISTANCE)  # exactly 100 away: not below 100
    assert far.correct("aa") == ("a" * 101, 99)
    unpaired = Lexicon(["apple"], {}, source="lex.txt")
    with pytest.raises(LexiconError, match="lex.txt: lexicon word 'apple'.*no entry 'APPLE'"):
        unpaired.correct("appel")


def test_word_and_pair_files_follow_the_official_parsing(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("\ufeffHello \n\n world\r\nNew York\n", encoding="utf-8")
    assert read_word_list(str(words)) == ["Hello", "world", "New York"]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(
        "hello Hello!\nWORLD world\nNEW York New York\nworld World\nBIG Apple pie\n",
        encoding="utf-8",
    )
    # key: first token upper-cased; value: everything after it; later lines win; a line whose
    # two halves agree ignoring case is a key of several words and its spelling
    assert read_pair_list(str(pairs)) == {
        "HELLO": "Hello!",
        "WORLD": "World",
        "NEW YORK": "New York",
        "BIG": "Apple pie",
    }
    with pytest.raises(LexiconError, match="nope.txt does not exist"):
        read_word_list(str(tmp_path / "nope.txt"))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(LexiconError, match="latin1.txt: not UTF-8"):
        read_word_list(str(tmp_path / "latin1.txt"))


def corrector(rule, lexicon_type, words):
    lexicon = Lexicon(words, {w.upper(): w for w in words})
    return LexiconCorrector(lexicon_type, FAR_OFF_RULES[rule][lexicon_type], {None: lexicon})


def test_far_off_rules():
    words = ["station", "street"]
    texts = ["STATION", "statlon", "stotlon", "strxxx"]  # distances 0, 1, 2 (station), 3 (street)
    fixed, dist, keep = corrector("adelaidet", "full", words).apply("1", texts)
    assert fixed == ["station", "station", "station", "street"]
    assert dist.tolist() == [0, 1, 2, 3]
    assert keep.tolist() == [True, True, False, False]  # distance < 1.5
    for lexicon_type in ("generic", "weak", "strong"):
        _, _, keep = corrector("adelaidet", lexicon_type, words).apply("1", texts)
        assert keep.tolist() == [True, True, False, False]
    # TESTR: full and generic always replace, weak/strong keep distance < 2.5
    for lexicon_type, expected in [
        ("full", [True] * 4),
        ("generic", [True] * 4),
        ("weak", [True, True, True, False]),
        ("strong", [True, True, True, False]),
    ]:
        _, _, keep = corrector("testr", lexicon_type, words).apply("1", texts)
        assert keep.tolist() == expected, lexicon_type
    fixed, dist, keep = corrector("adelaidet", "full", words).apply("1", [])
    assert fixed == [] and dist.shape == (0,) and keep.shape == (0,)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_build_correctors_from_the_official_file_names(tmp_path):
    write(tmp_path / "ch4_test_vocabulary_new.txt", "HELLO\nWORLD\n")
    write(tmp_path / "ch4_test_vocabulary_pair_list.txt", "HELLO Hello\nWORLD World!\n")
    weak = build_lexicon_corrector(str(tmp_path), "weak")
    assert weak.max_distance == 1.5
    assert weak.apply("7", ["w0rld"])[0] == ["World!"]

    # full without a pair list: every word maps to itself (official CTW1500 path)
    write(tmp_path / "weak_voc_new.txt", "Apple\nBanana\n")
    full = build_lexicon_corrector(str(tmp_path), "full", far_off_rule="testr")
    assert full.max_distance is None
    assert full.apply("1", ["APPLE", "banan"])[0] == ["Apple", "Banana"]

    # strong: one lexicon per image, chosen by the sample key
    write(tmp_path / "new_strong_lexicon" / "new_voc_img_1.txt", "CAT\n")
    write(tmp_path / "new_strong_lexicon" / "pair_voc_img_1.txt", "CAT cat\n")
    write(tmp_path / "new_strong_lexicon" / "new_voc_img_2.txt", "DOG\n")
    write(tmp_path / "new_strong_lexicon" / "pair_voc_img_2.txt", "DOG dog\n")
    strong = build_lexicon_corrector(str(tmp_path), "strong", ["1", "2"])
    assert strong.apply("1", ["cot"])[0] == ["cat"]
    assert strong.apply("2", ["cot"])[0] == ["dog"]
    with pytest.raises(LexiconError, match="no strong lexicon was loaded for image '3'"):
        strong.apply("3", ["cot"])


def test_missing_lexicon_files_name_the_expected_path(tmp_path):
    with pytest.raises(
        LexiconError, match="generic lexicon needs the file .*GenericVocabulary_new"
    ):
        build_lexicon_corrector(str(tmp_path), "generic")
    write(tmp_path / "GenericVocabulary_new.txt", "A\n")
    with pytest.raises(LexiconError, match="pair list .*GenericVocabulary_pair_list.txt"):
        build_lexicon_corrector(str(tmp_path), "generic")
    write(tmp_path / "new_strong_lexicon" / "new_voc_img_1.txt", "CAT\n")
    write(tmp_path / "new_strong_lexicon" / "pair_voc_img_1.txt", "CAT cat\n")
    with pytest.raises(LexiconError, match="new_strong_lexicon/new_voc_img_2.txt"):
        build_lexicon_corrector(str(tmp_path), "strong", ["1", "2"])
    with pytest.raises(KeyError, match="unknown lexicon type 'huge'"):
        build_lexicon_corrector(str(tmp_path), "huge")
    with pytest.raises(KeyError, match="unknown far-off rule"):
        build_lexicon_corrector(str(tmp_path), "generic", far_off_rule="lenient")


def test_duplicate_upper_case_words_first_wins_for_distance_last_for_identity_pairs(tmp_path):
    write(tmp_path / "weak_voc_new.txt", "Hello\nHELLO\n")
    full = build_lexicon_corrector(str(tmp_path), "full")
    # both entries are 0 away; the first wins, and its key maps (as in the official dict built
    # line by line) to the last spelling with that upper-case form
    assert full.lexicons[None].nearest_index("hello") == (0, 0)
    assert full.apply("1", ["hello"])[0] == ["HELLO"]
    assert np.array_equal(full.apply("1", ["hello"])[2], [True])
