"""HTR metric: the official script's quirks (aij2021), the strict profile, CER/WER."""

from __future__ import annotations

import random

import pytest

from fusionbrain.errors import UserError
from fusionbrain.tasks.htr.metric import edit_distance, score


def _dp_distance(a, b) -> int:
    """Textbook O(len(a)*len(b)) Levenshtein, the reference for the bit-parallel one."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def test_edit_distance_matches_dynamic_programming():
    rng = random.Random(7)
    for _ in range(400):
        alphabet = "abё "[: rng.randint(1, 4)]
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        assert edit_distance(a, b) == _dp_distance(a, b), (a, b)
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == 1


def test_plain_equality_no_folding():
    true = {"0": "word", "1": "Word", "2": "ёж", "3": "caf\u00e9", "4": "a b"}
    pred = {"0": "word ", "1": "word", "2": "еж", "3": "cafe\u0301", "4": "a b"}
    r = score(pred, true)
    assert r["score"] == pytest.approx(1 / 5)
    assert r["string_accuracy"] == r["score"]
    assert r["n"] == 5


def test_keys_from_truth_missing_is_empty_extra_ignored():
    true = {"a": "", "b": "x", "c": "y"}
    pred = {"c": "y", "zzz": "x"}
    r = score(pred, true)
    # "a" missing -> "" == "" counts as right; "b" missing -> wrong; "c" right; "zzz" ignored
    assert r["score"] == pytest.approx(2 / 3)
    assert r["missing"] == 2


def test_non_string_prediction_compared_as_is():
    true = {"0": "5", "1": 5, "2": "7"}
    pred = {"0": 5, "1": 5.0, "2": None}
    r = score(pred, true)
    assert r["score"] == pytest.approx(1 / 3)  # only 5 == 5.0


def test_empty_truth_is_a_clear_error():
    with pytest.raises(UserError, match="true_HTR.json"):
        score({}, {}, true_name="true_HTR.json")


def test_non_dict_inputs_are_errors():
    with pytest.raises(UserError, match="pred.json"):
        score(["x"], {"0": "x"}, pred_name="pred.json")  # type: ignore[arg-type]


def test_cer_and_wer_both_profiles():
    true = {"0": "hello world", "1": "abc"}
    pred = {"0": "hallo world", "1": "abd"}
    for profile in ("aij2021", "strict"):
        r = score(pred, true, profile=profile)
        assert r["score"] == 0.0
        assert r["cer"] == pytest.approx(2 / 14)  # one substitution in each
        assert r["wer"] == pytest.approx(2 / 3)  # "hallo" and "abd" are wrong words


def test_cer_is_zero_when_everything_matches():
    r = score({"0": "ok"}, {"0": "ok"})
    assert (r["score"], r["cer"], r["wer"]) == (1.0, 0.0, 0.0)


def test_strict_nfc_and_outer_whitespace():
    true = {"0": "caf\u00e9", "1": "word", "2": "Word", "3": " x "}
    pred = {"0": "cafe\u0301", "1": "  word\n", "2": "word", "3": "x"}
    assert score(pred, true, profile="aij2021")["score"] == 0.0
    r = score(pred, true, profile="strict")
    assert r["score"] == pytest.approx(3 / 4)  # case still matters
    assert r["cer"] == pytest.approx(1 / 13)  # W/w over 4+4+4+1 truth characters


def test_strict_missing_or_non_string_prediction_is_wrong():
    true = {"0": "", "1": "5", "2": "ok"}
    pred = {"1": 5, "2": "ok"}
    assert score(pred, true, profile="aij2021")["score"] == pytest.approx(2 / 3)
    assert score(pred, true, profile="strict")["score"] == pytest.approx(1 / 3)


def test_strict_rejects_non_string_truth():
    with pytest.raises(UserError, match="'7'"):
        score({"7": "1"}, {"7": 1}, profile="strict")


def test_unknown_profile():
    with pytest.raises(UserError, match="profile"):
        score({"0": "a"}, {"0": "a"}, profile="nope")
