"""Text-editing view of C2C (LaserTagger-style): Java tokens -> tags -> Python tokens.

Java and Python share most of their tokens (names, operators, literals), so a translation
is mostly "keep this, delete that, insert a short phrase here". Every Java token gets a tag
(KEEP or DELETE, plus a phrase inserted before it) and one final slot holds a phrase
appended after the last token::

    java   static int f ( int a ) { return a + 1 ; }
    python def f ( a ) : NEW_LINE INDENT return a + 1 NEW_LINE DEDENT

    static -> DELETE, insert "def"     int -> DELETE      f ( -> KEEP     int -> DELETE
    a ) -> KEEP       { -> DELETE, insert ": NEW_LINE INDENT"   ...

The phrases come from a vocabulary of the most frequent insertions in the training pairs
(index 0 = nothing inserted). Torch-free: alignment, labels, vocabulary, reconstruction.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

KEEP, DELETE = 0, 1
NO_PHRASE = ""  # vocabulary entry 0


@dataclass
class Edit:
    """Gold edit of one pair: ``keep[i]`` for each source token, ``added[i]`` the phrase
    inserted before source token i (``added[len(src)]``: appended at the end)."""

    keep: list[bool]
    added: list[str]


# Java tokens that usually become a given Python token: inside a replaced span they anchor
# the new tokens, so that ``;`` -> NEW_LINE and ``}`` -> DEDENT get a phrase of their own
# (``; } }`` -> "NEW_LINE", "DEDENT", "DEDENT") instead of one long phrase on the first
# token ("NEW_LINE DEDENT DEDENT"): fewer, more regular phrases that are easier to learn.
_COUNTERPART = {";": "NEW_LINE", "}": "DEDENT", "{": "INDENT", "&&": "and", "||": "or",
                "!": "not", "true": "True", "false": "False", "null": "None"}


def align(src: Sequence[str], tgt: Sequence[str]) -> Edit:
    """The edit turning ``src`` into ``tgt`` (token lists), from a longest-match alignment.

    ``difflib`` opcodes: equal -> KEEP; delete -> DELETE; insert -> phrase before the next
    source token; replace -> DELETE the span; its new tokens go before the span's source
    tokens they are anchored to (``_COUNTERPART``), the rest before the span's first token
    (``realize(src, align(src, tgt)) == tgt`` always holds).
    """
    keep = [True] * len(src)
    added: list[list[str]] = [[] for _ in range(len(src) + 1)]
    matcher = difflib.SequenceMatcher(None, list(src), list(tgt), autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op in ("delete", "replace"):
            for i in range(i1, i2):
                keep[i] = False
        if op == "insert":
            added[i1].extend(tgt[j1:j2])
        elif op == "replace":
            _anchor(src, tgt, i1, i2, j1, j2, added)
    return Edit(keep, [" ".join(a) for a in added])


def _anchor(src: Sequence[str], tgt: Sequence[str], i1: int, i2: int, j1: int, j2: int,
            added: list[list[str]]) -> None:
    """Spread ``tgt[j1:j2]`` over the deleted ``src[i1:i2]``: each anchored pair (i, j) puts
    the new tokens up to and including j before source token i, in order; what follows
    the last anchor goes before the token after it (the one after the span at worst)."""
    mapped = [_COUNTERPART.get(t, t) for t in src[i1:i2]]
    inner = difflib.SequenceMatcher(None, mapped, list(tgt[j1:j2]), autojunk=False)
    j = j1
    last = i1 - 1
    for a, b, size in inner.get_matching_blocks():
        for k in range(size):
            i, jj = i1 + a + k, j1 + b + k
            added[i].extend(tgt[j: jj + 1])
            j, last = jj + 1, i
    if j < j2:
        added[max(last + 1, i1)].extend(tgt[j:j2])


def realize(src: Sequence[str], keep: Sequence[bool], added: Sequence[str]) -> str:
    """Apply an edit: per source token its phrase, then the token if kept; then the final
    phrase. Source tokens past ``len(keep)`` (an untagged tail) are kept as they are."""
    out: list[str] = []
    for i, tok in enumerate(src):
        if i < len(added) and added[i]:
            out.append(added[i])
        if i >= len(keep) or keep[i]:
            out.append(tok)
    if len(added) > len(src) and added[len(src)]:
        out.append(added[len(src)])
    return " ".join(" ".join(out).split())


def phrase_vocabulary(pairs: Iterable[tuple[str, str]], max_phrases: int) -> list[str]:
    """The ``max_phrases`` most frequent inserted phrases over (java, python) token texts,
    entry 0 being the empty phrase; ties broken by the phrase text (deterministic)."""
    counts: Counter[str] = Counter()
    for java, python in pairs:
        counts.update(p for p in align(java.split(), python.split()).added if p)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [NO_PHRASE] + [p for p, _ in ranked[: max(0, max_phrases - 1)]]


def labels(src: Sequence[str], tgt: Sequence[str], index: dict[str, int],
           oov: int = -100) -> tuple[list[int], list[int]]:
    """Training labels: keep/delete per source token and phrase ids per slot
    (``len(src) + 1``). A phrase missing from the vocabulary gets ``oov`` (default: ignored
    by the loss, so the rest of the pair still teaches)."""
    edit = align(src, tgt)
    keep = [KEEP if k else DELETE for k in edit.keep]
    return keep, [index.get(p, oov) for p in edit.added]


def oracle(java: str, python: str, phrases: Sequence[str]) -> str:
    """The best output the tagger can produce with ``phrases``: the gold tags, an
    out-of-vocabulary phrase replaced by nothing."""
    src = java.split()
    edit = align(src, python.split())
    vocab = set(phrases)
    return realize(src, edit.keep, [p if p in vocab else NO_PHRASE for p in edit.added])
