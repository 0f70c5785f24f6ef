"""CodeBLEU (Ren et al., 2020) for Python, computed as the reference implementation does.

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

Speed: each distinct string is parsed and analysed once (:class:`CodeAnalysis`; the
reference parses every pair four times), the tree-sitter language is loaded once per
process, the tree is read in one pre-order pass, all subtree S-expressions are cut from
one ``str(root)``, the data-flow walk skips the subtrees that need no special handling,
and the reference's quadratic list look-ups are replaced by counters.  Parsing is then
about a third of the time (bench/score_speed.py).
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate

from fusionbrain.tasks.c2c.dataflow import (
    FIELD_TYPES,
    SORT_DEPTH_LIMIT,
    SPECIAL,
    STRINGY,
    Tree,
    data_flow,
    normalized_counts,
)

KEYWORDS = frozenset(
    "False None True and as assert async await break class continue def del elif else except "
    "finally for from global if import in is lambda nonlocal not or pass raise return try while "
    "with yield".split()
)
EPSILON = 0.1  # NLTK SmoothingFunction().method1

_language = None
_local = threading.local()


def get_parser():
    """The tree-sitter Python parser: the language is loaded once per process, a parser
    is built once per thread (a parser must not be shared between threads)."""
    global _language
    parser = getattr(_local, "parser", None)
    if parser is None:
        import tree_sitter

        if _language is None:
            import tree_sitter_python

            _language = tree_sitter.Language(tree_sitter_python.language())
        parser = _local.parser = tree_sitter.Parser(_language)
    return parser


@dataclass
class CodeAnalysis:
    tokens: list[str]
    sexps: Counter  # S-expression -> how many of the tree's subtrees have it
    n_sexps: int
    dfg: Counter  # normalised data-flow edge -> count
    n_dfg: int


def analyse(code: str, *, byte_columns_as_chars: bool = True) -> CodeAnalysis:
    """Parse ``code`` once and compute everything CodeBLEU needs from it.

    ``byte_columns_as_chars`` reproduces the reference's token cutting (tree-sitter byte
    columns used as character indices); False cuts tokens by bytes (strict profile).
    """
    tokens = code.split()
    src = code.encode("utf-8")  # UnicodeEncodeError (lone surrogates) is the caller's to report
    root = get_parser().parse(src).root_node

    # All visible nodes in pre-order (the one Python loop over the tree), then their
    # attributes by comprehension.
    nodes: list = []
    stack = [root]
    pop, push_all, add = stack.pop, stack.extend, nodes.append
    while stack:
        node = pop()
        add(node)
        children = node.children
        if children:
            push_all(reversed(children))
    n = len(nodes)
    ntype = [x.type for x in nodes]
    cc = [x.child_count for x in nodes]
    dc = [x.descendant_count for x in nodes]
    named = [x.is_named for x in nodes]
    missing = [x.is_missing for x in nodes]

    # Syntax match: the root and every node with children, as S-expressions.  The
    # nodes an S-expression prints are the named and the missing ones.
    printed = [nm or ms for nm, ms in zip(named, missing, strict=True)]
    printed[0] = True
    pidx = [i for i in range(n) if printed[i]]
    flags = [cc[i] > 0 for i in pidx]
    flags[0] = True  # the root counts even without children
    sexps = _subtree_sexps(root, flags, lambda: {j: ntype[i] for j, i in enumerate(pidx) if missing[i]},
                           lambda: [nodes[i] for i in pidx])
    sexps += [str(nodes[i]) for i in range(n) if cc[i] and not printed[i]]

    # Data flow: leaves (tokens) and the node types handled specially, minus whatever
    # lies inside a string token (the reference never looks there).
    leaf = [(c == 0 or t in STRINGY) and t != "comment" for t, c in zip(ntype, cc, strict=True)]
    leafidx = [i for i in range(n) if leaf[i]]
    specials = [i for i in range(n) if ntype[i] in SPECIAL]
    strings = [i for i in leafidx if cc[i]]
    if strings:
        inside: set[int] = set()
        for i in strings:
            if i not in inside:
                inside.update(range(i + 1, i + dc[i]))
        leafidx = [i for i in leafidx if i not in inside]
        specials = [i for i in specials if i not in inside]
    else:
        inside = set()
    if specials:
        mark = [0] * (n + 1)
        for i in specials:
            mark[i + 1] = 1
        cum = list(accumulate(mark))
        plain = [cum[i + d] == cum[i] for i, d in enumerate(dc)]
    else:
        plain = [True] * n
    tree = Tree(ntype, dc, leaf, leafidx, plain)
    for i in strings:
        if i not in inside:
            tree.strkids[i] = cc[i]
    for i in specials:
        wanted = FIELD_TYPES.get(ntype[i])
        if wanted:
            kids = tree.kids[i]
            fi: dict[str, int | None] = {}
            for f in wanted:
                target = nodes[i].child_by_field_name(f)
                fi[f] = None
                if target is not None:
                    for k in kids:
                        if nodes[k] == target:
                            fi[f] = k
                            break
                    else:  # not a direct child: never seen with tree-sitter's API
                        raise AssertionError(f"field {f} of {ntype[i]} is not a child")
            tree.fields[i] = fi
    if n > SORT_DEPTH_LIMIT:  # only a big tree can be too deep for the reference
        depths = [0] * n
        ends: list[int] = []
        for i in range(n):
            while ends and ends[-1] <= i:
                ends.pop()
            depths[i] = -1 if i in inside else len(ends)
            ends.append(i + dc[i])
        tree.depths = depths
        tree.depth = max(depths)

    # Tokens of the leaves, cut from the source as the reference does; a later token
    # with the same (start, end) overwrites an earlier one, as in its dict.
    if byte_columns_as_chars and "\n" not in code:
        # one line (the usual token text): rows are 0, columns are byte offsets
        lkey = [nodes[i].byte_range for i in leafidx]
        index_to_code = {k: (idx, code[k[0]:k[1]]) for idx, k in enumerate(lkey)}
    else:
        lkey = [(nodes[i].start_point, nodes[i].end_point) for i in leafidx]
        index_to_code = _index_to_code(code, src, lkey, byte_columns_as_chars)
    ic = [index_to_code[k] for k in lkey]
    dfg_counts, n_dfg = normalized_counts(data_flow(tree, ic))
    return CodeAnalysis(tokens, Counter(sexps), len(sexps), dfg_counts, n_dfg)


def analyse_code(code: str, strict: bool = False) -> CodeAnalysis:
    """:func:`analyse` for one profile: aij2021 parses the text as given; strict parses
    :func:`~fusionbrain.tasks.c2c.code_tokens.detokenize`'s source (tokens for BLEU stay
    the whitespace-split text)."""
    if not strict:
        return analyse(code)
    from fusionbrain.tasks.c2c.code_tokens import detokenize

    a = analyse(detokenize(code), byte_columns_as_chars=False)
    a.tokens = code.split()
    return a


def analyse_many(codes: list[str], *, strict: bool = False) -> dict[str, CodeAnalysis]:
    """Analyse each distinct string of ``codes`` once.

    (Worker processes were tried: on the 2-core machines here, shipping the analyses
    back -- about 14 MB for the 682 AVATAR pairs -- costs what the second core saves.)
    """
    return {c: analyse_code(c, strict) for c in dict.fromkeys(codes)}


_QUOTED_PARENS = ('"("', '")"', "'('", "')'")
_MISSING = re.compile(r"\(MISSING ")


def _subtree_sexps(root, flags: list[bool], printed_missing, printed_nodes) -> list[str]:
    """``str(node)`` for the root and every node with children, from one ``str(root)``.

    ``flags`` has one entry per node the S-expression prints (the named and the missing
    ones, in pre-order): whether its own S-expression is wanted.  That S-expression is
    the balanced span of the root's starting at the node's opening parenthesis; spans
    are paired level by level with numpy.  Two things need care: quoted parentheses
    (``(MISSING ")")``, ``(UNEXPECTED '(')``), masked before pairing, and missing *hidden*
    tokens, which the string prints as ``(MISSING name)`` although they are no node's
    child; ``printed_missing()`` (printed position -> type of the missing nodes) tells
    them apart.  Anything that does not line up falls back to one ``str()`` per node.
    """
    import numpy as np

    text = str(root)
    clean = text
    for q in _QUOTED_PARENS:
        if q in clean:
            clean = clean.replace(q, q[0] + "_" + q[2])  # same length, no parenthesis
    if "INVALID)" in clean or not clean.isascii():
        return _sexps_slow(flags, printed_nodes)
    arr = np.frombuffer(clean.encode("ascii"), dtype=np.uint8)
    op = np.flatnonzero(arr == 40)
    cl = np.flatnonzero(arr == 41)
    if len(op) != len(cl) or len(op) < len(flags):
        return _sexps_slow(flags, printed_nodes)
    # pair each "(" with its ")": same nesting level, in position order
    pos = np.concatenate((op, cl))
    step = np.concatenate((np.ones(len(op), np.int64), np.full(len(cl), -1, np.int64)))
    order = np.argsort(pos, kind="stable")
    after = np.cumsum(step[order])
    if after.min() < 0:
        return _sexps_slow(flags, printed_nodes)
    level = np.empty_like(after)
    level[order] = after
    lv_open, lv_close = level[: len(op)], level[len(op):] + 1
    oo = np.lexsort((op, lv_open))
    oc = np.lexsort((cl, lv_close))
    if not np.array_equal(lv_open[oo], lv_close[oc]):
        return _sexps_slow(flags, printed_nodes)
    close_of = np.empty_like(op)
    close_of[oo] = cl[oc]
    extra_n = len(op) - len(flags)
    if extra_n:
        # drop the opens of missing hidden tokens
        missing = printed_missing()
        starts = [m.start() for m in _MISSING.finditer(clean)]
        ks = np.searchsorted(op, starts).tolist()
        drop: list[int] = []
        for k, at in zip(ks, starts, strict=True):
            rest = text[at + 9:]
            name = rest[1:rest.index('"', 1)] if rest.startswith('"') else rest[:rest.index(")")]
            if missing.get(k - len(drop)) != name:
                drop.append(k)
        if len(drop) != extra_n:
            return _sexps_slow(flags, printed_nodes)
        keep = np.ones(len(op), dtype=bool)
        keep[drop] = False
        op, close_of = op[keep], close_of[keep]
    sel = np.flatnonzero(np.asarray(flags, dtype=bool))
    return [text[a:b] for a, b in zip(op[sel].tolist(), (close_of[sel] + 1).tolist(), strict=True)]


def _sexps_slow(flags: list[bool], printed_nodes) -> list[str]:
    # exact by construction
    return [str(x) for x, wanted in zip(printed_nodes(), flags, strict=True) if wanted]


def _index_to_code(code: str, src: bytes, lkey: list, byte_columns_as_chars: bool) -> dict:
    index_to_code: dict = {}
    if byte_columns_as_chars:
        lines = code.split("\n")
        for idx, key in enumerate(lkey):
            (sr, sc), (er, ec) = key
            if sr == er:
                s = lines[sr][sc:ec]
            else:
                s = lines[sr][sc:] + "".join(lines[sr + 1:er]) + lines[er][:ec]
            index_to_code[key] = (idx, s)
    else:
        blines = src.split(b"\n")
        for idx, key in enumerate(lkey):
            (sr, sc), (er, ec) = key
            if sr == er:
                b = blines[sr][sc:ec]
            else:
                b = b"\n".join([blines[sr][sc:], *blines[sr + 1:er], blines[er][:ec]])
            index_to_code[key] = (idx, b.decode("utf-8", "replace"))
    return index_to_code


def _ngram_counts(tokens: list[str], n: int) -> Counter:
    if n == 1:
        return Counter(tokens)
    if len(tokens) < n:
        return Counter()
    return Counter(zip(*(tokens[i:] for i in range(n)), strict=False))


def pair_counts(ref: CodeAnalysis, hyp: CodeAnalysis) -> tuple:
    """One pair's additive contribution to the corpus-level sums (see :func:`combine`)."""
    rt, ht = ref.tokens, hyp.tokens
    # Both BLEUs clip the same n-gram counts: sum over n-grams of min(hyp, ref) counts
    # (BLEU divides by the hypothesis' n-grams, the weighted one -- the reference's
    # "modified recall" -- by the reference's).  Unigrams are summed in the reference's
    # token order, with keyword weights, as the reference does.
    hc = Counter(ht)
    rc = Counter(rt)
    num = den = 0
    clipped = 0
    for g, c in rc.items():
        w = 1 if g in KEYWORDS else 0.2
        m = min(c, hc[g]) if g in hc else 0
        clipped += m
        num += m * w
        den += c * w
    clip = [clipped, 0, 0, 0]
    for n in (2, 3, 4):
        if len(ht) >= n and len(rt) >= n:
            hc = _ngram_counts(ht, n)
            rc = _ngram_counts(rt, n)
            if len(hc) > len(rc):
                hc, rc = rc, hc
            clip[n - 1] = sum(min(c, rc[g]) for g, c in hc.items() if g in rc)
    hs = hyp.sexps
    syn_match = sum(c for s, c in ref.sexps.items() if s in hs)
    df_match = 0
    if ref.n_dfg:
        hd = hyp.dfg
        df_match = sum(min(c, hd[e]) for e, c in ref.dfg.items())
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


def _pool_job(job: tuple[list[tuple[str, str]], bool]) -> list[tuple]:
    pairs, strict = job
    cache: dict[str, CodeAnalysis] = {}

    def get(code: str) -> CodeAnalysis:
        a = cache.get(code)
        if a is None:
            a = cache[code] = analyse_code(code, strict)
        return a

    return [pair_counts(get(r), get(h)) for r, h in pairs]


# Pairs per job of the process pool.
_CHUNK = 32


def corpus_scores_code(refs: list[str], hyps: list[str], *, strict: bool = False,
                       workers: int = 1) -> dict:
    """:func:`corpus_scores` from the code strings, in ``workers`` processes.

    Each process analyses its share of the pairs and sends back only their counts, which
    are summed here in the pairs' order, so the result is the same for any ``workers``.
    """
    if workers > 1 and len(refs) > _CHUNK:
        import multiprocessing

        pairs = list(zip(refs, hyps, strict=True))
        jobs = [(pairs[i:i + _CHUNK], strict) for i in range(0, len(pairs), _CHUNK)]
        try:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(workers, initializer=_fresh_parser) as pool:
                counts = [c for part in pool.imap(_pool_job, jobs) for c in part]
            return combine(counts)
        except OSError:  # no processes to be had: do it here
            pass
    analyses = analyse_many(refs + hyps, strict=strict)
    return combine([pair_counts(analyses[r], analyses[h]) for r, h in zip(refs, hyps, strict=True)])


def _fresh_parser() -> None:
    _local.parser = None


def default_workers(n_pairs: int) -> int:
    """Processes for ``n_pairs`` pairs: the CPUs that are idle right now (usable CPUs minus
    the 1-minute load average), at most 4 -- but one when there are under 200 pairs, off
    Linux (fork), or in a process that runs other threads or has loaded torch (forking
    such a process is not worth the risk).  On a busy machine a pool only adds overhead
    (about 20 % more CPU in all), so then this is 1 too."""
    if n_pairs < 200 or not sys.platform.startswith("linux"):
        return 1
    if threading.active_count() > 1 or "torch" in sys.modules:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
        idle = cpus - os.getloadavg()[0]
    except (AttributeError, OSError):
        return 1
    return max(1, min(4, int(idle + 0.5)))


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
