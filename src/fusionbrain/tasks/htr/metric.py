"""HTR metric: string accuracy (the challenge metric) plus CER and WER.

Profiles:

- ``aij2021`` reproduces the official ``HTR_string_accuracy/evaluate.py``: keys come
  from the truth file, a missing prediction is the empty string, extra prediction
  keys are ignored, values are compared with plain ``==`` (no stripping, no case or
  Unicode folding; a non-string prediction such as ``5`` never equals ``"5"``).
  An empty truth file (a division by zero there) is a clear error here.
- ``strict`` compares after Unicode NFC and trimming outer white space; a missing
  or non-string prediction is simply wrong.

CER / WER are micro averages: total edit distance over total truth characters
(words). For them a non-string prediction counts as the empty string.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Hashable, Sequence
from typing import Any

from fusionbrain.errors import UserError
from fusionbrain.scoring.common import check_profile, json_type, require_dict


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Levenshtein distance between two sequences (characters or words).

    Bit-parallel (Myers 1999 / Hyyrö 2001) on Python integers: one pass over ``b``
    with a few big-integer operations per element, so 100,000 lines score in
    about a second without a compiled dependency.
    """
    if len(a) < len(b):
        a, b = b, a  # the bit vector runs over the longer sequence
    if not b:
        return len(a)
    m = len(a)
    peq: dict[Hashable, int] = {}
    for i, sym in enumerate(a):
        peq[sym] = peq.get(sym, 0) | (1 << i)
    mask = (1 << m) - 1
    top = 1 << (m - 1)
    pv, mv, dist = mask, 0, m
    for sym in b:
        eq = peq.get(sym, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | ~(xh | pv)
        mh = pv & xh
        if ph & top:
            dist += 1
        elif mh & top:
            dist -= 1
        ph = (ph << 1) | 1
        mh <<= 1
        pv = (mh | ~(xv | ph)) & mask
        mv = ph & xv & mask
    return dist


def _strict_text(value: str) -> str:
    return unicodedata.normalize("NFC", value).strip()


def score(pred: dict, true: dict, *, profile: str = "aij2021", pred_name: str = "prediction",
          true_name: str = "truth") -> dict:
    """Score HTR predictions; returns ``score`` (= ``string_accuracy``), ``cer``, ``wer``, ``n``."""
    check_profile(profile)
    require_dict(pred, name=pred_name)
    require_dict(true, name=true_name)
    if not true:
        raise UserError("no items in the truth file (string accuracy is undefined)", path=true_name)

    correct = missing = 0
    char_err = char_total = word_err = word_total = 0
    for key, t in true.items():
        if key in pred:
            p: Any = pred[key]
        else:
            missing += 1
            p = ""
        if profile == "aij2021":
            correct += t == p  # plain equality, exactly as the official script
            t_text = t if isinstance(t, str) else str(t)
            p_text = p if isinstance(p, str) else ""
        else:
            if not isinstance(t, str):
                raise UserError(f"expected a string transcription, got {json_type(t)}",
                                path=true_name, key=key)
            t_text = _strict_text(t)
            p_text = _strict_text(p) if isinstance(p, str) else ""
            correct += key in pred and isinstance(p, str) and p_text == t_text
        if p_text != t_text:
            char_err += edit_distance(t_text, p_text)
            word_err += edit_distance(t_text.split(), p_text.split())
        char_total += len(t_text)
        word_total += len(t_text.split())

    n = len(true)
    acc = correct / n
    return {
        "score": acc,
        "string_accuracy": acc,
        # an all-empty truth has no characters; any error then counts against a base of 1
        "cer": char_err / max(char_total, 1),
        "wer": word_err / max(word_total, 1),
        "n": n,
        "correct": int(correct),
        "missing": missing,
    }
