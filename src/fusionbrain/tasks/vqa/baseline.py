"""VQA trivial baseline: the most frequent training answer for the question's type.

The challenge input carries no question type, so the type is the question's opening words
(as in the classic VQA "prior per question type" baseline): the longest opening of 1-3
words seen in training picks its most frequent answer; else the overall most frequent one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

NAME = "most frequent training answer per question type"
MAX_PREFIX = 3


def openings(question: str) -> list[str]:
    """The question's "type": its opening 1-3 words, longest first (lower case, no "?")."""
    words = question.lower().replace("?", " ").split()
    return [" ".join(words[:n]) for n in range(min(MAX_PREFIX, len(words)), 0, -1)]


def fit(samples: list) -> dict[str, Any]:
    by_type: dict[str, Counter] = defaultdict(Counter)
    overall: Counter = Counter()
    for s in samples:
        if not s.answers:
            continue
        answer = s.answers[0]
        overall[answer] += 1
        for p in openings(s.question):
            by_type[p][answer] += 1
    return {"types": {p: c.most_common(1)[0][0] for p, c in by_type.items()},
            "overall": overall.most_common(1)[0][0] if overall else ""}


def predict(state: dict[str, Any], samples: list) -> list[str]:
    out = []
    for s in samples:
        answer = state["overall"]
        for p in openings(s.question):  # longest opening first
            if p in state["types"]:
                answer = state["types"][p]
                break
        out.append(answer)
    return out
