"""COPY metric: exact-match accuracy."""

from __future__ import annotations

from fusionbrain.errors import UserError


def score(pred: dict, true: dict, *, profile: str = "aij2021", pred_name: str = "prediction",
          true_name: str = "truth") -> dict:
    missing = [k for k in true if k not in pred]
    if missing:
        raise UserError(f"{pred_name}: missing key {missing[0]!r}")
    hits = sum(str(pred[k]) == str(v) for k, v in true.items())
    acc = hits / len(true) if true else 0.0
    return {"score": acc, "accuracy": acc, "n": len(true)}
