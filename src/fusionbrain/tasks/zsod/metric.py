"""zsOD metric: micro-averaged F1 over (image, phrase) box predictions.

Boxes are ``[x, y, w, h]`` (truth and prediction) or ``[score, x, y, w, h]``
(prediction, as the challenge README specifies). A prediction of ``[[]]`` counts
as ``[]``. Every box must hold 4 or 5 finite numbers; anything else is a clear
error naming the file, image and phrase.

Profiles:

- ``aij2021`` reproduces the official ``zsOD_F1/evaluate.py``: image keys must be
  equal and every truth phrase present in the prediction (phrases only in the
  prediction are ignored). Per image and phrase with T true and P predicted boxes:
  both empty → nothing; T = 0 → FP += P; P = 0 → FN += T; otherwise
  FN += max(0, T − P) and each predicted box is a TP when its IoU with ANY true
  box is ≥ 0.5, else an FP — no one-to-one matching. A run of consecutive equal
  predicted boxes (compared as written, score included) counts once. IoU is
  computed with the official arithmetic (corners ``x + w``, a zero denominator
  gives 0), so zero-area boxes give 0.
- ``strict``: each true box is matched at most once, predictions taken greedily by
  score (boxes without a score count as score 1, in file order) to the unmatched
  true box of highest IoU ≥ 0.5; duplicates are FPs, unmatched truths FNs. A
  missing image or phrase in the prediction is simply all FNs.

P = TP/(TP+FP), R = TP/(TP+FN), F1 = 2PR/(P+R), each 0 where its denominator is 0.
"""

from __future__ import annotations

from typing import Any

from fusionbrain.errors import UserError
from fusionbrain.scoring.common import (
    check_keys_equal,
    check_profile,
    is_finite_number,
    json_type,
    require_dict,
)

IOU_THRESHOLD = 0.5


def _boxes(value: Any, *, name: str, img: str, phrase: str, allow_score: bool) -> list[list]:
    """Validate one phrase's box list; return it with ``[[]]`` read as ``[]``."""
    where = f"phrase {phrase!r}"
    if not isinstance(value, list):
        raise UserError(f"{where}: expected a list of boxes, got {json_type(value)}",
                        path=name, key=img)
    if allow_score and value == [[]]:
        return []
    sizes = "4 ([x, y, w, h]) or 5 ([score, x, y, w, h])" if allow_score else "4 ([x, y, w, h])"
    for i, box in enumerate(value):
        if not isinstance(box, list):
            raise UserError(f"{where}: box {i} is {json_type(box)}, expected a list of {sizes} "
                            "numbers", path=name, key=img)
        if len(box) != 4 and not (allow_score and len(box) == 5):
            raise UserError(f"{where}: box {i} has {len(box)} numbers, expected {sizes}",
                            path=name, key=img)
        for v in box:
            if not is_finite_number(v):
                shown = v if isinstance(v, float) else json_type(v)
                raise UserError(f"{where}: box {i} holds {shown}, expected finite numbers",
                                path=name, key=img)
    return value


def _xywh(box: list) -> list:
    return box[1:] if len(box) == 5 else box


def iou_official(pred_box: list, true_box: list) -> float:
    """IoU exactly as the official script computes it (including its odd cases).

    Corners are ``x + w`` in the input's number type; the intersection is taken in
    doubles and clipped at 0; areas may be negative for negative sizes; a zero
    denominator (0/0, i.e. NaN there) gives 0.
    """
    a = _xywh(pred_box)
    b = _xywh(true_box)
    a1 = (a[0], a[1], a[0] + a[2], a[1] + a[3])
    b1 = (b[0], b[1], b[0] + b[2], b[1] + b[3])
    wh = []
    for i in range(2):
        lo = float(a1[i] if a1[i] > b1[i] else b1[i])
        hi = float(a1[i + 2] if a1[i + 2] < b1[i + 2] else b1[i + 2])
        d = hi - lo
        wh.append(d if d > 0 else 0.0)
    inter = wh[0] * wh[1]
    area_a = (a1[2] - a1[0]) * (a1[3] - a1[1])
    area_b = (b1[2] - b1[0]) * (b1[3] - b1[1])
    den = float(area_a + area_b) - inter
    if den == 0:
        return 0.0  # 0/0 is NaN there, which it maps to 0 (inter > 0 implies den > 0)
    r = inter / den
    return 0.0 if r != r else r


def iou(box_a: list, box_b: list) -> float:
    """Plain IoU of two ``xywh`` boxes (score dropped); empty or negative boxes give 0."""
    ax, ay, aw, ah = (float(v) for v in _xywh(box_a))
    bx, by, bw, bh = (float(v) for v in _xywh(box_b))
    if aw <= 0 or ah <= 0 or bw <= 0 or bh <= 0:
        return 0.0
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def _count_official(pred: list, true: list) -> tuple[int, int, int]:
    if not pred and not true:
        return 0, 0, 0
    if not true:
        return 0, len(pred), 0
    if not pred:
        return 0, 0, len(true)
    tp = fp = 0
    prev: list | None = None
    for box in pred:
        # A 5-number box is [score, x, y, w, h]; the official script only knows
        # [x, y, w, h], so the score is dropped before anything else, including
        # the groupby that merges runs of consecutive equal boxes into one.
        coords = box[1:] if len(box) == 5 else box
        if prev is not None and coords == prev:
            continue
        prev = coords
        if any(iou_official(box, t) >= IOU_THRESHOLD for t in true):
            tp += 1
        else:
            fp += 1
    return tp, fp, max(0, len(true) - len(pred))


def _count_strict(pred: list, true: list) -> tuple[int, int, int]:
    order = sorted(pred, key=lambda b: -float(b[0]) if len(b) == 5 else -1.0)
    matched = [False] * len(true)
    tp = fp = 0
    for box in order:
        best, best_iou = -1, IOU_THRESHOLD
        for j, t in enumerate(true):
            if not matched[j]:
                v = iou(box, t)
                if v >= best_iou and (best < 0 or v > best_iou):
                    best, best_iou = j, v
        if best >= 0:
            matched[best] = True
            tp += 1
        else:
            fp += 1
    return tp, fp, len(true) - sum(matched)


def score(pred: dict, true: dict, *, profile: str = "aij2021", pred_name: str = "prediction",
          true_name: str = "truth") -> dict:
    """Score zsOD predictions; returns ``score`` (= ``f1``), precision, recall, tp, fp, fn."""
    check_profile(profile)
    require_dict(pred, name=pred_name)
    require_dict(true, name=true_name)
    strict = profile == "strict"
    if not strict:
        check_keys_equal(pred, true, pred_name=pred_name, what="image keys")

    tp = fp = fn = n_phrases = 0
    for img, phrases in true.items():
        require_dict(phrases, name=true_name, key=img,
                     what="an object mapping phrases to box lists")
        pred_phrases = pred.get(img)
        # like the official loop, an image without truth phrases never looks at its prediction
        if phrases and (pred_phrases is not None or not strict):
            require_dict(pred_phrases, name=pred_name, key=img,
                         what="an object mapping phrases to box lists")
        for phrase, true_value in phrases.items():
            t = _boxes(true_value, name=true_name, img=img, phrase=phrase, allow_score=False)
            n_phrases += 1
            if pred_phrases is None or phrase not in pred_phrases:
                if not strict:
                    raise UserError(f"no prediction for phrase {phrase!r}", path=pred_name,
                                    key=img)
                fn += len(t)
                continue
            p = _boxes(pred_phrases[phrase], name=pred_name, img=img, phrase=phrase,
                       allow_score=True)
            d_tp, d_fp, d_fn = (_count_strict if strict else _count_official)(p, t)
            tp += d_tp
            fp += d_fp
            fn += d_fn

    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    # same expression and order as the official script, so the float is identical
    f1 = 2 * precision * recall / (precision + recall) if precision > 0 or recall > 0 else 0.0
    return {
        "score": f1,
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "n_images": len(true),
        "n_phrases": n_phrases,
    }
