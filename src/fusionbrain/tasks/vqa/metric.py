"""VQA metric: answer accuracy, overall and per language.

Profiles:

- ``aij2021`` reproduces the official ``VQA_accuracy/evaluation.py`` + ``vqaEval.py``:
  prediction keys must equal truth keys; only the prediction is normalised
  (:func:`fusionbrain.tasks.vqa.normalize.normalize_answer`) and must equal the
  truth answer as written (or one element of a truth list); overall accuracy is
  rounded to 3 decimals. Where the official script crashes (key mismatch, a
  non-string prediction, a truth item without ``answer``/``lang``, no items) this
  raises :class:`UserError` naming the file and key.
- ``strict`` normalises truth and prediction alike, accepts a list of answers
  (VQA v2 soft accuracy ``min(1, matches / 3)`` when ten answers are given), and
  counts a missing or non-string prediction as wrong. Not rounded.

``by_lang`` holds the unrounded accuracy for each ``lang`` label of the truth.
"""

from __future__ import annotations

from typing import Any

from fusionbrain.errors import UserError
from fusionbrain.scoring.common import check_keys_equal, check_profile, json_type, require_dict
from fusionbrain.tasks.vqa.normalize import normalize_answer

# VQA v2 gives ten human answers per question; soft accuracy counts 3 matches as fully right.
_HUMAN_ANSWERS = 10
_SOFT_MATCHES = 3


def _truth_item(true: dict, key: str, true_name: str) -> tuple[Any, Any]:
    item = true[key]
    if not isinstance(item, dict):
        raise UserError(f"expected an object with 'answer' and 'lang', got {json_type(item)}",
                        path=true_name, key=key)
    for field in ("answer", "lang"):
        if field not in item:
            raise UserError(f"missing field {field!r}", path=true_name, key=key)
    return item["answer"], item["lang"]


def _strict_answers(answer: Any, lang: Any, key: str, true_name: str) -> list[str]:
    answers = answer if isinstance(answer, list) else [answer]
    if not answers or not all(isinstance(a, str) for a in answers):
        raise UserError("'answer' must be a string or a non-empty list of strings",
                        path=true_name, key=key)
    return [normalize_answer(a, lang) for a in answers]


def score(pred: dict, true: dict, *, profile: str = "aij2021", pred_name: str = "prediction",
          true_name: str = "truth") -> dict:
    """Score VQA predictions; returns ``score`` (= ``accuracy``), ``by_lang``, ``n``."""
    check_profile(profile)
    require_dict(pred, name=pred_name)
    require_dict(true, name=true_name)
    if profile == "aij2021":
        check_keys_equal(pred, true, pred_name=pred_name, what="question keys")
    if not true:
        raise UserError("no questions in the truth file (accuracy is undefined)", path=true_name)

    total = 0.0
    missing = 0
    per_lang: dict[str, list[float]] = {}
    for key in true:
        answer, lang = _truth_item(true, key, true_name)
        p = pred.get(key)
        if profile == "aij2021":
            if not isinstance(p, str):
                raise UserError(f"expected a string answer, got {json_type(p)}",
                                path=pred_name, key=key)
            truths = answer if isinstance(answer, list) else [answer]
            acc = 1.0 if normalize_answer(p, lang) in truths else 0.0
        else:
            truths = _strict_answers(answer, lang, key, true_name)
            if key not in pred:
                missing += 1
            if not isinstance(p, str):
                acc = 0.0
            else:
                norm = normalize_answer(p, lang)
                if len(truths) == _HUMAN_ANSWERS:
                    acc = min(1.0, truths.count(norm) / _SOFT_MATCHES)
                else:
                    acc = 1.0 if norm in truths else 0.0
        total += acc
        slot = per_lang.setdefault(str(lang), [0.0, 0])
        slot[0] += acc
        slot[1] += 1

    n = len(true)
    accuracy = total / n
    if profile == "aij2021":
        accuracy = round(accuracy, 3)  # the official tool reports 3 decimals (n=3)
    return {
        "score": accuracy,
        "accuracy": accuracy,
        "by_lang": {lang: s / c for lang, (s, c) in sorted(per_lang.items())},
        "n_by_lang": {lang: int(c) for lang, (_, c) in sorted(per_lang.items())},
        "n": n,
        "missing": missing,
    }
