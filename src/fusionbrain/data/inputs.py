"""Challenge input items that cannot be read still get a prediction.

A challenge ``input/<TASK>`` folder may hold a corrupt or missing image, or an empty request.
Its sample is skipped (the model never sees it), but the prediction file must still hold its
key, or the official scorers reject the whole file. ``read_input`` therefore returns an
:class:`InputSamples` list that remembers each skipped key with its empty prediction, and
``prediction_json`` adds those back (:func:`merge_defaults`). Torch-free.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from fusionbrain.data.report import SkipReport

# One warning line per skipped item up to this many, then one line for the rest.
MAX_WARNINGS = 20


class InputSamples(list):
    """A list of samples read from a challenge input folder, plus ``defaults``: the
    prediction (empty) of every key that was skipped, in the file's order."""

    def __init__(self, samples: Iterable[Any] = (), defaults: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(samples)
        self.defaults: dict[str, Any] = dict(defaults or {})


def ascii_digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` is also true for "²" or "٣", which ``int`` refuses
    or reads differently; and no more digits than ``int`` converts."""
    return text.isascii() and text.isdecimal() and len(text) <= 4000


def natural_key(key: str) -> tuple:
    """Sort order of challenge keys: "2" before "10" (numbers written as strings)."""
    return (0, int(key), "") if ascii_digits(key) else (1, 0, key)


def natural_file_key(name: str) -> tuple:
    """Sort order of image file names by their stem: "2.png" before "10.png"."""
    stem = Path(name).stem
    return (0, int(stem), name) if ascii_digits(stem) else (1, 0, name)


def merge_defaults(pred: dict, samples: Any, order: Callable[[str], Any]) -> dict:
    """``pred`` plus the default prediction of every skipped input key it lacks, keys sorted
    by ``order`` (the input's natural order). ``pred`` itself when nothing was skipped."""
    defaults = getattr(samples, "defaults", None)
    if not defaults:
        return pred
    merged = dict(pred)
    for k, v in defaults.items():
        if k not in merged:
            merged[k] = _copy(v)
    return {k: merged[k] for k in sorted(merged, key=order)}


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def warn_skipped(report: SkipReport, before: int, task: str,
                 file: TextIO | None = None) -> None:
    """One line per item skipped since ``before``: where it is, why, and that it gets an
    empty prediction."""
    out = file or sys.stderr
    entries = report.entries[before:]
    for e in entries[:MAX_WARNINGS]:
        print(f"warning: {e.source}: {e.item}: {e.reason}; {task} predicts empty for it",
              file=out)
    if len(entries) > MAX_WARNINGS:
        print(f"warning: {task}: {len(entries) - MAX_WARNINGS} more unreadable input items "
              "predicted empty", file=out)
