"""Challenge scoring: one task's files, a whole prediction folder, and the integral score S.

Torch-free: importing this package (and running ``fusionbrain score``) loads only
the standard library, the task metric modules and, for Russian VQA answers, pymorphy3.
"""

from __future__ import annotations

import codecs
import math
import os
from pathlib import Path
from typing import Any

from fusionbrain.errors import UserError
from fusionbrain.scoring.common import PROFILES, check_profile
from fusionbrain.tasks import TASKS, check_task, task_module
from fusionbrain.utils.io import read_json

__all__ = [
    "PASS_MARK",
    "PROFILES",
    "integral_score",
    "passed",
    "pred_file_name",
    "read_score_json",
    "score_dir",
    "score_files",
    "true_file_name",
]

# The challenge's minimum bar for the integral score S.
PASS_MARK = 0.85
# Scoring files above this size are refused before reading, so a huge wrong file fails at
# once instead of filling memory: the challenge's largest file (zsOD) is a few MB and a
# 100,000-item file stays well below this. FUSIONBRAIN_SCORE_MAX_MB raises the limit.
MAX_SCORE_JSON_BYTES = 128 << 20
_MAX_ENV = "FUSIONBRAIN_SCORE_MAX_MB"


def pred_file_name(task: str) -> str:
    return f"prediction_{check_task(task)}.json"


def true_file_name(task: str) -> str:
    return f"true_{check_task(task)}.json"


def _sniff(head: bytes, whole: bool, path: Path | None = None) -> None:
    """Fail fast on input that cannot be a UTF-8 JSON object, from its first bytes only
    (``whole``: they are the whole input)."""
    skip = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    head = head[skip:]
    try:
        # incremental: a multi-byte character cut by the sniff window is not an error
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError as e:
        raise UserError(f"not UTF-8 text (bad byte at offset {e.start + skip})", path=path) from None
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        if whole:
            raise UserError("empty file, expected a JSON object", path=path)
        return
    if stripped[0] != "{":
        raise UserError("expected a JSON object at top level (the file does not start with '{')",
                        path=path)


def _max_bytes() -> int:
    raw = os.environ.get(_MAX_ENV)
    if not raw:
        return MAX_SCORE_JSON_BYTES
    try:
        mb = float(raw)
    except ValueError:
        mb = math.nan
    if not math.isfinite(mb) or mb <= 0:
        raise UserError(f"{_MAX_ENV}={raw!r} is not a positive number of megabytes")
    return int(min(mb, 1 << 40) * (1 << 20))


def read_score_json(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> dict:
    """Read a prediction or truth file (or pipe): a JSON object, with one-line errors
    naming the file. Read once; its first bytes are checked before the rest is read."""
    max_bytes = _max_bytes() if max_bytes is None else max_bytes
    path = Path(path)
    return read_json(path, max_bytes=max_bytes, expect=dict,
                     check_head=lambda head, whole: _sniff(head, whole, path),
                     too_large_note=f" to score; set {_MAX_ENV} to raise it")


def score_files(task: str, pred_path: str | os.PathLike[str], true_path: str | os.PathLike[str],
                profile: str = "aij2021") -> dict:
    """Score one task's prediction file against its truth file; returns the metric's dict."""
    task = check_task(task)
    check_profile(profile)
    true = read_score_json(true_path)
    pred = read_score_json(pred_path)
    try:
        metric = task_module(task, "metric")
    except ModuleNotFoundError as e:
        raise UserError(f"the {task} metric is not available ({e.name} missing)") from None
    result = metric.score(pred, true, profile=profile, pred_name=str(pred_path),
                          true_name=str(true_path))
    return {"task": task, "profile": profile, **result}


def score_dir(pred_dir: str | os.PathLike[str], true_dir: str | os.PathLike[str],
              profile: str = "aij2021") -> dict:
    """Score every task whose ``true_<TASK>.json`` is in ``true_dir``.

    Returns ``{"profile", "tasks": {TASK: result}, "S", "passed"}``. A truth file
    without its ``prediction_<TASK>.json`` is an error naming the missing file.
    """
    check_profile(profile)
    pred_dir, true_dir = Path(pred_dir), Path(true_dir)
    for d in (true_dir, pred_dir):
        if not d.exists():
            raise UserError("folder not found", path=d)
        if not d.is_dir():
            raise UserError("not a folder", path=d)
    present = [t for t in TASKS if (true_dir / true_file_name(t)).exists()]
    if not present:
        names = ", ".join(true_file_name(t) for t in TASKS)
        raise UserError(f"no truth files found (expected any of {names})", path=true_dir)
    for task in present:
        pred_path = pred_dir / pred_file_name(task)
        if not pred_path.exists():
            raise UserError(f"prediction file missing for task {task} "
                            f"({true_file_name(task)} is present)", path=pred_path)
    tasks = {task: score_files(task, pred_dir / pred_file_name(task),
                               true_dir / true_file_name(task), profile)
             for task in present}
    s = integral_score({t: r["score"] for t, r in tasks.items()})
    return {"profile": profile, "tasks": tasks, "S": s, "passed": passed(s)}


def integral_score(per_task: dict[str, Any]) -> float:
    """S = the sum over the four tasks of each score rounded to 3 decimals; absent tasks count 0.

    ``per_task`` maps task name to a score or to a metric result holding ``"score"``.
    """
    total = 0.0
    for name, value in per_task.items():
        check_task(name)
        v = value["score"] if isinstance(value, dict) else value
        if v is not None:
            total += round(float(v), 3)
    # the sum of 3-decimal terms, rounded again to drop float noise (0.1 + 0.2 ...)
    return round(total, 3)


def passed(s: float) -> bool:
    """Whether the integral score reaches the challenge's minimum bar S ≥ 0.85."""
    return s >= PASS_MARK
