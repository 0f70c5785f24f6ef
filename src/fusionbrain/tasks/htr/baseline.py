"""HTR trivial baseline: every image is read as the most frequent training word."""

from __future__ import annotations

from collections import Counter
from typing import Any

NAME = "most frequent training word"


def fit(samples: list) -> dict[str, Any]:
    words = Counter(w for s in samples for w in s.text.split())
    word = words.most_common(1)[0][0] if words else ""
    return {"word": word}


def predict(state: dict[str, Any], samples: list) -> list[str]:
    return [state["word"] for _ in samples]
