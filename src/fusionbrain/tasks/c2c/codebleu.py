"""CodeBLEU (Ren et al., 2020) for Python, the arithmetic as the official scorer does it.

Components, all corpus-level (see docs/competition.md, "C2C"):

- BLEU: NLTK ``corpus_bleu`` as copied into CodeXGLUE's CodeBLEU (smoothing method1,
  epsilon 0.1, returns 0 when no unigram matches);
- weighted BLEU: the reference ``weighted_ngram_match`` (recall against the reference
  counts; keywords weigh 1, other tokens 0.2 in the unigram part; the brevity penalty is
  taken against a "reference length" of 2 per item, as the reference code does because
  it measures the length of the ``[tokens, weights]`` pair);
- syntax match: share of the reference's subtrees (the root and every node with
  children, compared as S-expressions) found anywhere in the candidate's tree;
- data-flow match: :mod:`fusionbrain.tasks.c2c.dataflow`.

The trees are read in :mod:`fusionbrain.tasks.c2c.analysis` (parsed once per distinct
string; the official code parses every pair four times); this module only counts.  The
pairs' counts are integers (and two float sums taken in the official order), summed in the
truth file's order, so the result is exact and deterministic.  One process: the parse and
the tree pass are C code, the rest is a few dict operations per token
(bench/score_speed.py).
"""

from __future__ import annotations

import gc
import math
from collections import Counter
from itertools import repeat
from operator import add, mul

from fusionbrain.tasks.c2c.analysis import CodeAnalysis, analyse

KEYWORDS = frozenset(
    "False None True and as assert async await break class continue def del elif else except "
    "finally for from global if import in is lambda nonlocal not or pass raise return try while "
    "with yield".split()
)
EPSILON = 0.1  # NLTK SmoothingFunction().method1


def _clipped(a: Counter, b: Counter) -> int:
    """Sum over the shared keys of the smaller count (exact: integers)."""
    common = a.keys() & b.keys()
    return sum(map(min, map(a.__getitem__, common), map(b.__getitem__, common)))


def _ngram_clips(rt: list[str], ht: list[str]) -> list[int]:
    """Clipped 2-, 3- and 4-gram counts of a pair (sum over n-grams of min(hyp, ref)).

    The tokens are numbered (a bijection within the pair) and each n-gram is the integer
    ``ids[i] * V**(n-1) + ... + ids[i+n-1]`` (exact: Python integers), built from the
    (n-1)-grams by one multiply-add per position: integers are cheaper to build, hash
    and compare than tuples of strings, and equal exactly when the n-grams are equal.
    """
    out = [0, 0, 0]
    m = min(len(rt), len(ht))
    if m < 2:
        return out
    num = {t: i for i, t in enumerate({*rt, *ht})}.__getitem__  # any numbering will do
    v = len(rt) + len(ht)  # more than the number of distinct tokens
    rk = r = list(map(num, rt))
    hk = h = list(map(num, ht))
    for n in range(2, min(m, 4) + 1):
        # map stops at the shorter input: ids[n-1:] has one item fewer than the (n-1)-grams
        rk = list(map(add, map(mul, rk, repeat(v)), r[n - 1:]))
        hk = list(map(add, map(mul, hk, repeat(v)), h[n - 1:]))
        out[n - 2] = _clipped(Counter(rk), Counter(hk))
    return out


def pair_counts(ref: CodeAnalysis, hyp: CodeAnalysis) -> tuple:
    """One pair's additive contribution to the corpus-level sums (see :func:`combine`)."""
    rt, ht = ref.tokens, hyp.tokens
    # Both BLEUs clip the same n-gram counts: sum over n-grams of min(hyp, ref) counts
    # (BLEU divides by the hypothesis' n-grams, the weighted one -- the reference's
    # "modified recall" -- by the reference's).  The weighted unigram sums are float
    # sums, so they are taken term by term in the reference's order (the reference
    # token's first occurrence); a term that is zero leaves a float sum unchanged, so
    # only the tokens the hypothesis shares are added to ``num``.
    hc = Counter(ht)
    rc = Counter(rt)
    num = den = 0
    keywords = KEYWORDS
    for g, c in rc.items():
        w = 1 if g in keywords else 0.2
        den += c * w
        m = hc.get(g)
        if m:
            num += (m if m < c else c) * w
    clip = [_clipped(rc, hc), *_ngram_clips(rt, ht)]
    rs = ref.sexps
    syn_match = sum(map(rs.__getitem__, rs.keys() & hyp.sexps.keys()))
    df_match = _clipped(ref.dfg, hyp.dfg) if ref.n_dfg else 0
    return (clip, num, max(1, den), len(ht), len(rt), syn_match, ref.n_sexps, df_match, ref.n_dfg)


def combine(counts: list[tuple]) -> dict:
    """All four components and CodeBLEU from the pairs' :func:`pair_counts`, in order."""
    b_num = [0, 0, 0, 0]
    b_den = [0, 0, 0, 0]
    w_num = [0, 0, 0, 0]
    w_den = [0, 0, 0, 0]
    hyp_len = ref_len = 0
    syn_match = syn_total = 0
    df_match = df_total = 0
    for clip, num, den, hl, rl, sm, st, dm, dt in counts:
        for n in range(4):
            b_num[n] += clip[n]
            b_den[n] += max(1, hl - n)
            w_num[n] += clip[n] if n else num
            w_den[n] += max(1, rl - n) if n else den
        hyp_len += hl
        ref_len += rl
        syn_match += sm
        syn_total += st
        df_match += dm
        df_total += dt
    bleu = _bleu(b_num, b_den, ref_len, hyp_len)
    # the reference passes [tokens, weights] pairs, whose "length" is 2
    weighted = _bleu(w_num, w_den, 2 * len(counts), hyp_len)
    if syn_total == 0:
        raise ZeroDivisionError("no references")  # the reference divides by zero too
    syntax = syn_match / syn_total
    dataflow = df_match / df_total if df_total else 0
    score = 0.25 * bleu + 0.25 * weighted + 0.25 * syntax + 0.25 * dataflow
    return {"score": score, "bleu": bleu, "weighted_bleu": weighted,
            "syntax_match": syntax, "dataflow_match": dataflow,
            "dataflow_edges": df_total}


def corpus_scores(refs: list[CodeAnalysis], hyps: list[CodeAnalysis]) -> dict:
    """All four components and CodeBLEU for aligned lists of analyses (one reference each)."""
    assert len(refs) == len(hyps)
    return combine([pair_counts(r, h) for r, h in zip(refs, hyps, strict=True)])


def corpus_scores_code(refs: list[str], hyps: list[str], *, strict: bool = False) -> dict:
    """:func:`corpus_scores` from the code strings, each distinct string analysed once.

    The cyclic garbage collector is paused meanwhile: the analyses allocate a few hundred
    thousand objects and hold no cycles, and its passes over them cost about a tenth of
    the time.
    """
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        cache: dict[str, CodeAnalysis] = {}
        counts = []
        for r, h in zip(refs, hyps, strict=True):
            a = cache.get(r)
            if a is None:
                a = cache[r] = analyse(r, strict=strict)
            b = cache.get(h)
            if b is None:
                b = cache[h] = analyse(h, strict=strict)
            counts.append(pair_counts(a, b))
        return combine(counts)
    finally:
        if gc_was_on:
            gc.enable()


def _bleu(num: list, den: list, ref_len: int, hyp_len: int) -> float:
    if hyp_len > ref_len:
        bp = 1
    elif hyp_len == 0:
        bp = 0
    else:
        bp = math.exp(1 - ref_len / hyp_len)
    if num[0] == 0:
        return 0
    s = math.fsum(0.25 * math.log((x + EPSILON if x == 0 else x) / d) for x, d in zip(num, den, strict=False))
    return bp * math.exp(s)
