"""C2C trivial baseline: the Java tokens copied as the "Python" translation."""

from __future__ import annotations

from typing import Any

NAME = "Java tokens copied"


def fit(samples: list) -> dict[str, Any]:
    return {}


def predict(state: dict[str, Any], samples: list) -> list[str]:
    # one space between tokens, as TransCoder-style text is compared token by token
    return [" ".join(s.java.split()) for s in samples]
