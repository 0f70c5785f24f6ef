"""Small helpers shared by the task metrics: profile checks, key listings, number checks.

Torch-free and numpy-free on purpose: ``fusionbrain score`` must start fast.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from fusionbrain.errors import UserError

PROFILES: tuple[str, ...] = ("aij2021", "strict")


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is known, else raise a clear error."""
    if profile not in PROFILES:
        raise UserError(f"unknown scoring profile {profile!r}; expected one of {', '.join(PROFILES)}")
    return profile


def show_keys(keys: Iterable[Any], limit: int = 5) -> str:
    """Render a few keys for an error message: ``'a', 'b', 'c' (and 7 more)``."""
    keys = sorted(keys, key=str)
    shown = ", ".join(repr(k) for k in keys[:limit])
    if len(keys) > limit:
        shown += f" (and {len(keys) - limit} more)"
    return shown


def check_keys_equal(pred: dict, true: dict, *, pred_name: str, what: str = "keys") -> None:
    """Raise naming the missing and extra prediction keys unless both key sets are equal."""
    if pred.keys() == true.keys():
        return
    missing = true.keys() - pred.keys()
    extra = pred.keys() - true.keys()
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} {what} of the truth: {show_keys(missing)}")
    if extra:
        parts.append(f"{len(extra)} {what} not in the truth: {show_keys(extra)}")
    raise UserError("; ".join(parts), path=pred_name)


def require_dict(obj: Any, *, name: str, key: object = None, what: str = "a JSON object") -> dict:
    """Return ``obj`` if it is a dict, else raise naming the file (and key)."""
    if not isinstance(obj, dict):
        raise UserError(f"expected {what}, got {json_type(obj)}", path=name, key=key)
    return obj


def json_type(obj: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "boolean"
    if isinstance(obj, (int, float)):
        return "number"
    if isinstance(obj, str):
        return "string"
    if isinstance(obj, list):
        return "array"
    if isinstance(obj, dict):
        return "object"
    return type(obj).__name__


def is_finite_number(v: Any) -> bool:
    """A JSON number that is finite (booleans, NaN, inf and overflowing integers are not)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer too large for a float
        return False


def safe_div(num: float, den: float) -> float:
    """``num / den``, or 0.0 where the denominator is 0 (the challenge convention)."""
    return num / den if den > 0 else 0.0
