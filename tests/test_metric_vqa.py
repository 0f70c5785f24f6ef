"""VQA metric: each normalisation quirk of the official tool, errors, and the strict profile."""

from __future__ import annotations

import pytest

from fusionbrain.errors import UserError
from fusionbrain.tasks.vqa.metric import score
from fusionbrain.tasks.vqa.normalize import normalize_answer, strip_punctuation


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        # newlines/tabs become spaces, then strip
        ("two\ndogs", "en", "2 dogs"),
        ("\tyes\n", "en", "yes"),
        # punctuation next to a space is deleted, elsewhere it becomes a space
        ("yes!", "en", "yes"),
        ("red,blue", "en", "red blue"),
        ("x-y", "en", "x y"),
        ("a-b, c", "en", "b c"),  # "a b c", then the article "a" is dropped
        ("red (car)", "en", "red car"),
        # digit-comma-digit anywhere: every punctuation character is deleted
        ("1,000", "en", "1000"),
        ("x-y 1,5", "en", "xy 15"),
        ("x-y 1,a", "en", "x y 1"),
        # full stops removed unless followed by a digit
        ("3.5", "en", "3.5"),
        ("e.g.", "en", "eg"),
        ("1.5.", "en", "1.5"),
        # ... but at most 32 of them (re.UNICODE passed as `count`)
        ("." * 40 + "x", "en", "." * 8 + "x"),
        # English words: numbers, articles, contractions (capitalised keys never match)
        ("Two dogs.", "en", "2 dogs"),
        ("None", "en", "0"),
        ("the dog", "en", "dog"),
        ("a", "en", ""),
        ("dont", "en", "don't"),
        ("Im", "en", "im"),
        ("somebody'd", "en", "somebodyd"),
        ("Ten", "de", "10"),  # any language other than "ru" takes the English rules
        ("Ten", None, "10"),
        # Russian: pymorphy3 lemma of the first parse, then number words
        ("Два", "ru", "2"),
        ("Две кошки", "ru", "2 кошка"),
        ("никаких", "ru", "0"),
        ("одна", "ru", "1"),
        ("десяти", "ru", "10"),
        ("три.", "ru", "3"),
        ("еж", "ru", "ёж"),  # the lemma restores ё
        ("the dog", "ru", "the dog"),  # no article rule for Russian
    ],
)
def test_normalize_answer(text, lang, expected):
    assert normalize_answer(text, lang) == expected


def test_punctuation_test_uses_the_original_text():
    # "-" is tested against the original text: "a -b" has " -", so every "-" is deleted
    assert strip_punctuation("a -b c-d") == "a b cd"


def _true(*items):
    return {str(i): {"answer": a, "question_id": i, "lang": lang}
            for i, (a, lang) in enumerate(items)}


def test_only_the_prediction_is_normalised():
    true = _true(("Blue", "en"), ("two", "en"), ("blue", "en"), ("2", "en"))
    pred = {"0": "blue", "1": "two", "2": "Blue.", "3": "Two"}
    r = score(pred, true)
    assert r["score"] == 0.5  # truths "Blue" and "two" can never be matched
    assert r["accuracy"] == r["score"]


def test_truth_list_any_element():
    true = _true((["red", "dark red"], "en"), (["кот", "кошка"], "ru"))
    assert score({"0": "Dark red!", "1": "кошки"}, true)["score"] == 1.0


def test_accuracy_rounded_to_three_decimals_and_by_lang():
    true = _true(("yes", "en"), ("no", "en"), ("да", "ru"))
    r = score({"0": "yes", "1": "yes", "2": "да"}, true)
    assert r["score"] == 0.667
    assert r["by_lang"] == {"en": 0.5, "ru": 1.0}
    assert r["n"] == 3


def test_key_mismatch_names_missing_and_extra():
    true = _true(("a", "en"), ("b", "en"))
    with pytest.raises(UserError) as e:
        score({"0": "a", "9": "b"}, true, pred_name="prediction_VQA.json")
    msg = str(e.value)
    assert "prediction_VQA.json" in msg and "'1'" in msg and "'9'" in msg


def test_non_string_prediction_is_an_error():
    with pytest.raises(UserError, match=r"p\.json: key '0'"):
        score({"0": 2}, _true(("2", "en")), pred_name="p.json")


@pytest.mark.parametrize("item", [{"answer": "x"}, {"lang": "en"}, "x", None])
def test_malformed_truth_item_is_an_error(item):
    with pytest.raises(UserError, match=r"t\.json: key '0'"):
        score({"0": "x"}, {"0": item}, true_name="t.json")


def test_empty_truth_is_an_error():
    with pytest.raises(UserError, match="t.json"):
        score({}, {}, true_name="t.json")


def test_strict_normalises_both_sides_and_tolerates_missing():
    true = _true(("Blue", "en"), ("two", "en"), ("Кошки", "ru"), ("x", "en"))
    pred = {"0": "blue", "1": "2", "2": "кошка", "5": "extra"}
    r = score(pred, true, profile="strict")
    assert r["score"] == 0.75  # "3" missing: simply wrong
    assert r["missing"] == 1


def test_strict_soft_accuracy_with_ten_answers():
    answers = ["red"] * 2 + ["dark red"] * 8
    true = _true((answers, "en"), (answers, "en"), (["x"] * 5 + ["y"] * 5, "en"))
    r = score({"0": "red", "1": "Dark red", "2": "y"}, true, profile="strict")
    # min(1, 2/3), min(1, 8/3), min(1, 5/3)
    assert r["score"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert score({"0": "red", "1": "x", "2": "z"}, true, profile="aij2021")["score"] == 0.333


def test_strict_non_string_prediction_is_wrong_not_an_error():
    assert score({"0": 2}, _true(("2", "en")), profile="strict")["score"] == 0.0
