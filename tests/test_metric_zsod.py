"""zsOD metric: the official counting rules one by one, box validation, and the strict profile."""

from __future__ import annotations

import pytest

from fusionbrain.errors import UserError
from fusionbrain.tasks.zsod.metric import iou, iou_official, score

BOX = [0, 0, 10, 10]


def _one(pred_boxes, true_boxes, profile="aij2021"):
    r = score({"0.jpg": {"p": pred_boxes}}, {"0.jpg": {"p": true_boxes}}, profile=profile)
    return r["tp"], r["fp"], r["fn"]


def test_iou_values():
    assert iou_official([0, 0, 10, 5], BOX) == 0.5
    assert iou_official([1, 0, 10, 10], BOX) == pytest.approx(90 / 110)
    assert iou_official([0.9, 0, 0, 10, 10], BOX) == 1.0  # [score, x, y, w, h]
    assert iou_official([20, 20, 5, 5], BOX) == 0.0
    assert iou_official([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0  # zero area: 0/0 -> 0
    assert iou([0, 0, 10, 5], BOX) == 0.5
    assert iou([0, 0, 0, 10], [0, 0, 0, 10]) == 0.0


def test_exact_match_with_and_without_score():
    assert _one([BOX], [BOX]) == (1, 0, 0)
    assert _one([[0.3, *BOX]], [BOX]) == (1, 0, 0)


def test_threshold_is_inclusive():
    assert _one([[0, 0, 10, 5]], [BOX]) == (1, 0, 0)  # IoU exactly 0.5
    assert _one([[0, 0, 10, 4.9]], [BOX]) == (0, 1, 0)


def test_empty_cases():
    assert _one([], []) == (0, 0, 0)
    assert _one([BOX, [5, 5, 1, 1]], []) == (0, 2, 0)
    assert _one([], [BOX, [20, 20, 5, 5]]) == (0, 0, 2)
    assert _one([[]], []) == (0, 0, 0)  # [[]] counts as []
    assert _one([[]], [BOX]) == (0, 0, 1)


def test_no_one_to_one_matching():
    # three different boxes on one true box: three TPs
    assert _one([BOX, [1, 0, 10, 10], [0, 1, 10, 10]], [BOX]) == (3, 0, 0)


def test_fn_is_shortfall_of_predicted_count():
    # two truths, one prediction matching one of them: FN += 2 - 1
    assert _one([BOX], [BOX, [50, 50, 10, 10]]) == (1, 0, 1)
    # two predictions both on the first truth: the second truth is never counted missing
    assert _one([BOX, [1, 0, 10, 10]], [BOX, [50, 50, 10, 10]]) == (2, 0, 0)


def test_consecutive_identical_boxes_count_once():
    assert _one([BOX, BOX, BOX], [BOX]) == (1, 0, 0)
    assert _one([BOX, [0.0, 0.0, 10.0, 10.0]], [BOX]) == (1, 0, 0)  # equal as numbers
    # not consecutive: counted again
    assert _one([BOX, [50, 50, 5, 5], BOX], [BOX]) == (2, 1, 0)
    # the score is dropped first ([score, x, y, w, h] -> [x, y, w, h]): equal coordinates
    # with different scores are still one run
    assert _one([[0.9, *BOX], [0.8, *BOX]], [BOX]) == (1, 0, 0)
    assert _one([[0.9, *BOX], BOX], [BOX]) == (1, 0, 0)
    # duplicates still count in P for the FN shortfall: max(0, 2 - 2)
    assert _one([BOX, BOX], [BOX, [50, 50, 10, 10]]) == (1, 0, 0)


def test_zero_area_boxes_never_match():
    assert _one([[0, 0, 0, 0]], [[0, 0, 0, 0]]) == (0, 1, 0)
    assert _one([[5, 5, 0, 3]], [[5, 5, 0, 3]]) == (0, 1, 0)


def test_micro_f1_over_images_and_phrases():
    true = {"a": {"x": [BOX], "y": []}, "b": {"x": [BOX]}, "c": {"z": [BOX]}}
    pred = {"a": {"x": [BOX], "y": [BOX]}, "b": {"x": [[40, 40, 5, 5]]}, "c": {"z": [BOX]}}
    r = score(pred, true)
    assert (r["tp"], r["fp"], r["fn"]) == (2, 2, 0)
    assert r["precision"] == 0.5 and r["recall"] == 1.0
    assert r["f1"] == pytest.approx(2 / 3) and r["score"] == r["f1"]


def test_all_zero_denominators_give_zero():
    r = score({"a": {"x": []}}, {"a": {"x": []}})
    assert (r["precision"], r["recall"], r["f1"]) == (0.0, 0.0, 0.0)


def test_extra_prediction_phrases_are_ignored():
    assert score({"a": {"x": [BOX], "other": [BOX]}}, {"a": {"x": [BOX]}})["fp"] == 0


@pytest.mark.parametrize(
    ("pred", "match"),
    [
        ({"a": {"x": [BOX]}, "b": {}}, r"pred\.json: .*'b'"),  # extra image
        ({}, r"pred\.json: .*'a'"),  # missing image
        ({"a": {"y": [BOX]}}, r"pred\.json: key 'a': no prediction for phrase 'x'"),
        ({"a": {"x": [[1, 2, 3]]}}, r"pred\.json: key 'a': phrase 'x': box 0 has 3 numbers"),
        ({"a": {"x": [["1", 2, 3, 4]]}}, r"pred\.json: key 'a': phrase 'x': box 0 holds string"),
        ({"a": {"x": [[float("nan"), 2, 3, 4]]}}, r"box 0 holds nan"),
        ({"a": {"x": [[1, 2, 3, float("inf")]]}}, r"box 0 holds inf"),
        ({"a": {"x": [[True, 2, 3, 4]]}}, r"box 0 holds boolean"),
        ({"a": {"x": [BOX, []]}}, r"box 1 has 0 numbers"),
        ({"a": {"x": BOX}}, r"box 0 is number"),
        ({"a": {"x": None}}, r"expected a list of boxes"),
        ({"a": [BOX]}, r"pred\.json: key 'a': expected an object"),
    ],
)
def test_invalid_predictions_are_user_errors(pred, match):
    with pytest.raises(UserError, match=match):
        score(pred, {"a": {"x": [BOX]}}, pred_name="pred.json", true_name="true.json")


@pytest.mark.parametrize("true_boxes", [[[0.5, *BOX]], [[1, 2, 3]], [[]], "x"])
def test_invalid_truth_boxes_are_user_errors(true_boxes):
    with pytest.raises(UserError, match=r"true\.json: key 'a'"):
        score({"a": {"x": [BOX]}}, {"a": {"x": true_boxes}}, pred_name="pred.json",
              true_name="true.json")


def test_strict_duplicates_are_false_positives():
    assert _one([BOX, BOX], [BOX], profile="strict") == (1, 1, 0)
    assert _one([BOX, [1, 0, 10, 10]], [BOX, [50, 50, 10, 10]], profile="strict") == (1, 1, 1)


def test_strict_greedy_by_score():
    a, b = [0, 0, 10, 10], [3, 0, 10, 10]
    q = [0.1, 4, 0, 10, 10]  # only overlaps b (IoU 0.82)
    p = [0.9, 2, 0, 10, 10]  # overlaps a (0.67) and b (0.82): best b
    # p goes first because of its score, takes b, so q finds nothing left
    assert _one([q, p], [a, b], profile="strict") == (1, 1, 1)
    assert _one([q, p], [a, b], profile="aij2021") == (2, 0, 0)


def test_strict_missing_image_or_phrase_is_all_false_negatives():
    true = {"a": {"x": [BOX, [50, 50, 5, 5]]}, "b": {"y": [BOX], "z": []}}
    pred = {"b": {"z": [BOX]}, "extra": {"w": [BOX]}}
    r = score(pred, true, profile="strict")
    assert (r["tp"], r["fp"], r["fn"]) == (0, 1, 3)
    with pytest.raises(UserError):
        score(pred, true, profile="aij2021")
