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

Speed (bench/score_speed.py, bench/results/score_speed.md; the 682 AVATAR pairs on the
2-core AMD EPYC, in one process with the reference): about 1.9x less CPU time than the
reference in one process.  Tree-sitter's parse is the floor -- about 0.46 s CPU for the
1315 distinct strings, 40 % of ours, mostly error recovery since the token text is not
valid Python (the detokenised source parses five times faster), and the Python binding
holds the GIL while parsing, so threads cannot overlap it -- which caps the one-process
speed-up at about 4.8x; only the forked workers below go past it, on idle cores.  The
rest:

- each distinct string is parsed and analysed once (:class:`CodeAnalysis`; the
  reference parses every pair four times); the language is loaded once per process;
- the tree is read with one cursor walk (one Node object per node, no per-parent child
  lists); per node only ``kind_id`` and ``descendant_count`` are asked, and everything
  else comes from C-level ``map`` / ``compress`` / ``accumulate`` passes;
- all subtree S-expressions are cut from one ``str(root)``, paired with ``split`` and
  ``accumulate`` (no numpy, whose import alone cost 0.07 s);
- the data-flow walk visits only the subtrees that need special handling and, within
  them, only the tokens whose text differs from their type;
- the reference's quadratic list look-ups are counters, and clipped counts are sums
  over key-set intersections; n-grams are integers (the pair's tokens numbered), not
  tuples of strings (:func:`_ngram_clips`);
- the cyclic garbage collector is paused while scoring (its passes over the few hundred
  thousand objects cost over a tenth of the time);
- with ``workers`` > 1 the pairs are shared out between forked processes, which send
  back only per-pair counts (:func:`corpus_scores_code`).
"""

from __future__ import annotations

import gc
import math
import os
import pickle
import re
import signal
import struct
import sys
import threading
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate, compress, islice, repeat
from operator import add, attrgetter, eq, le, lt, mul, sub

from fusionbrain.tasks.c2c.dataflow import (
    FIELD_TYPES,
    SORT_DEPTH_LIMIT,
    SPECIAL,
    STRINGY,
    Tree,
    data_flow,
    normalized_counts,
)

STRINGY_SET = frozenset(STRINGY)

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


class _Kinds:
    """Per-language tables indexed by a node's ``kind_id``: reading one small integer per
    node (and looking its type and namedness up here) is much cheaper than asking each
    node for its ``type`` string and ``is_named``."""

    def __init__(self, language) -> None:
        ids = [*range(language.node_kind_count), 0xFFFF]  # 0xFFFF: ERROR
        names = {k: language.node_kind_for_id(k) for k in ids}
        # one string object per type name, so that type comparisons hit identity
        canon: dict[str, str] = {}
        self.name = {k: canon.setdefault(v, v) for k, v in names.items() if v is not None}
        self.named = frozenset(k for k in self.name if language.node_kind_is_named(k))


_kinds: _Kinds | None = None
_kind_id = attrgetter("kind_id")
_desc = attrgetter("descendant_count")
_start = attrgetter("start_byte")
_end = attrgetter("end_byte")


def _tables() -> _Kinds:
    global _kinds
    if _kinds is None:
        _kinds = _Kinds(get_parser().language)
    return _kinds


def analyse(code: str, *, byte_columns_as_chars: bool = True) -> CodeAnalysis:
    """Parse ``code`` once and compute everything CodeBLEU needs from it.

    ``byte_columns_as_chars`` reproduces the reference's token cutting (tree-sitter byte
    columns used as character indices); False cuts tokens by bytes (strict profile).

    Per node only ``kind_id`` and ``descendant_count`` are read (leaves: also their byte
    range); everything else is derived with C-level ``map``/``compress`` passes rather
    than Python loops.  Facts relied on (checked against tree-sitter's own attributes
    on the test corpora): ``child_count > 0`` iff ``descendant_count > 1``; a missing
    node is a leaf of zero width.
    """
    tokens = code.split()
    src = code.encode("utf-8")  # UnicodeEncodeError (lone surrogates) is the caller's to report
    root = get_parser().parse(src).root_node
    kt = _tables()

    # All visible nodes in pre-order (the one Python loop over the tree).  A cursor
    # visits the same nodes as ``node.children`` recursively, in the same order, but
    # builds one Node object per node instead of one list of them per parent.
    nodes: list = []
    cursor = root.walk()
    append = nodes.append
    first_child, next_sibling, parent = cursor.goto_first_child, cursor.goto_next_sibling, cursor.goto_parent
    while True:
        append(cursor.node)
        if first_child():
            continue
        while not next_sibling():
            if not parent():
                break
        else:
            continue
        break
    n = len(nodes)
    rng = range(n)
    kinds = list(map(_kind_id, nodes))
    try:
        ntype = list(map(kt.name.__getitem__, kinds))
        named = list(map(kt.named.__contains__, kinds))
    except KeyError:  # a kind the language table does not list: ask the nodes
        ntype = [x.type for x in nodes]
        named = [x.is_named for x in nodes]
    dc = list(map(_desc, nodes))
    childless = list(compress(rng, map((1).__eq__, dc)))
    cnodes = list(map(nodes.__getitem__, childless))
    cstart = list(map(_start, cnodes))
    cend = list(map(_end, cnodes))
    # missing nodes are zero-width leaves; only those are asked
    missing = [i for i, x in compress(zip(childless, cnodes, strict=True), map(eq, cstart, cend)) if x.is_missing]
    kset = set(ntype)

    # Syntax match: the root and every node with children, as S-expressions.  The
    # nodes an S-expression prints are the named and the missing ones.
    printed = named
    for i in missing:
        printed[i] = True
    printed[0] = True
    pidx = list(compress(rng, printed))
    flags = list(map((1).__lt__, map(dc.__getitem__, pidx)))
    if sum(flags) != n - len(childless):  # some node with children is not printed
        sexps_extra = [str(nodes[i]) for i in compress(rng, map((1).__lt__, dc)) if not printed[i]]
    else:
        sexps_extra = []
    flags[0] = True  # the root counts even without children
    missing_set = set(missing)

    def wanted_sizes() -> list[int]:
        # printed nodes in each wanted node's subtree (pre-order ids i .. i + dc[i]):
        # those of pidx from the node's own position k up to the first id past it
        wn = list(compress(pidx, flags))
        ends = map(bisect_left, repeat(pidx), map(add, wn, map(dc.__getitem__, wn)))
        return list(map(sub, ends, compress(range(len(pidx)), flags)))

    sexps = _subtree_sexps(root, flags, wanted_sizes,
                           lambda: {j: ntype[i] for j, i in enumerate(pidx) if i in missing_set},
                           lambda: [nodes[i] for i in pidx])
    sexps += sexps_extra

    # Data flow: leaves (tokens) and the node types handled specially, minus whatever
    # lies inside a string token (the reference never looks there).
    if "comment" in kset:
        lpos = [k for k, i in enumerate(childless) if ntype[i] != "comment"]
    else:
        lpos = None
    leafidx = childless if lpos is None else [childless[k] for k in lpos]
    strings = [i for i in compress(rng, map(STRINGY_SET.__contains__, ntype)) if dc[i] > 1] \
        if not STRINGY_SET.isdisjoint(kset) else []
    specials = list(compress(rng, map(SPECIAL.__contains__, ntype))) if not SPECIAL.isdisjoint(kset) else []
    inside: set[int] = set()
    if strings:
        for i in strings:
            if i not in inside:
                inside.update(range(i + 1, i + dc[i]))
        outer = [i for i in strings if i not in inside]
        keep = [k for k, i in enumerate(leafidx) if i not in inside]
        if len(keep) != len(leafidx):
            lpos = keep if lpos is None else [lpos[k] for k in keep]
        # merge the string nodes into the leaves, in pre-order
        base = childless if lpos is None else [childless[k] for k in lpos]
        lstart = cstart if lpos is None else [cstart[k] for k in lpos]
        lend = cend if lpos is None else [cend[k] for k in lpos]
        leafidx = sorted(base + outer)
        if outer:
            pos = {i: k for k, i in enumerate(base)}
            sb = {i: (nodes[i].start_byte, nodes[i].end_byte) for i in outer}
            lstart = [lstart[pos[i]] if i in pos else sb[i][0] for i in leafidx]
            lend = [lend[pos[i]] if i in pos else sb[i][1] for i in leafidx]
        specials = [i for i in specials if i not in inside]
    else:
        outer = []
        lstart = cstart if lpos is None else [cstart[k] for k in lpos]
        lend = cend if lpos is None else [cend[k] for k in lpos]
    ltype = list(map(ntype.__getitem__, leafidx))

    # Tokens of the leaves, cut from the source as the reference does.
    if byte_columns_as_chars and "\n" not in code:
        # one line (the usual token text): rows are 0, columns are byte offsets
        ltext = list(map(code.__getitem__, map(slice, lstart, lend)))
    elif not byte_columns_as_chars:
        # by bytes: the reference's line-wise cut (rejoined with "\n") is this slice
        ltext = [src[a:b].decode("utf-8", "replace") for a, b in zip(lstart, lend, strict=True)]
    elif code.isascii():
        # characters are bytes; the reference joins the lines of a multi-line token
        # without their "\n"
        ltext = list(map(code.__getitem__, map(slice, lstart, lend)))
        ltext = [t.replace("\n", "") if "\n" in t else t for t in ltext]
    else:
        lkey = [(nodes[i].start_point, nodes[i].end_point) for i in leafidx]
        index_to_code = _index_to_code(code, src, lkey, byte_columns_as_chars)
        ltext = [index_to_code[k][1] for k in lkey]
    # A later token with the same source range overwrites an earlier one in the
    # reference's dict (only zero-width tokens can share one); with no zero-width token
    # and strictly increasing starts every range is distinct.
    L = len(leafidx)
    if any(map(eq, lstart, lend)) or not all(map(lt, lstart, islice(lstart, 1, None))):
        keys = list(zip(lstart, lend, strict=True))
        last = dict(zip(keys, range(L), strict=True))
        lidx = list(map(last.__getitem__, keys))
    else:
        lidx = list(range(L))

    tree = Tree(ntype, dc, leafidx, ltype, ltext, lidx, specials)
    for i in outer:
        tree.strkids[i] = nodes[i].child_count
    for i in specials:
        wanted = FIELD_TYPES.get(ntype[i])
        if wanted:
            kids = tree.kids(i)
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

    dfg_counts, n_dfg = normalized_counts(data_flow(tree))
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
    """Analyse each distinct string of ``codes`` once.  (Worker processes do not ship
    analyses -- about 14 MB for the 682 AVATAR pairs -- but only per-pair counts: see
    :func:`corpus_scores_code`.)"""
    return {c: analyse_code(c, strict) for c in dict.fromkeys(codes)}


_QUOTED_PARENS = ('"("', '")"', "'('", "')'")
_MISSING = re.compile(r"\(MISSING ")


def _subtree_sexps(root, flags: list[bool], wanted_sizes, printed_missing, printed_nodes) -> list[str]:
    """``str(node)`` for the root and every node with children, from one ``str(root)``.

    ``flags`` has one entry per node the S-expression prints (the named and the missing
    ones, in pre-order): whether its own S-expression is wanted; ``wanted_sizes()``
    gives, per wanted node, how many printed nodes its subtree holds.  A node's
    S-expression is the balanced span of the root's from its opening parenthesis: the
    k-th "(" opens the k-th printed node, and the ")" are in post-order, so the node
    at k with a subtree of s printed nodes closes at the (s - 1 + closes before it)-th
    ")".  All positions come from ``split`` / ``accumulate`` (C loops, no numpy).  Two
    things need care: quoted parentheses (``(MISSING ")")``, ``(UNEXPECTED '(')``),
    masked first, and missing *hidden* tokens, which the string prints as ``(MISSING
    name)`` although they are no node's child; ``printed_missing()`` (printed position
    -> type of the missing nodes) tells them apart, and such strings are paired level
    by level instead.  Anything that does not line up falls back to one ``str()`` per
    node.
    """
    text = str(root)
    clean = text
    for q in _QUOTED_PARENS:
        if q in clean:
            clean = clean.replace(q, q[0] + "_" + q[2])  # same length, no parenthesis
    if "INVALID)" in clean:
        return _sexps_slow(flags, printed_nodes)
    parts = clean.split("(")
    cparts = clean.split(")")
    n_open = len(parts) - 1
    if n_open != len(cparts) - 1 or n_open < len(flags):
        return _sexps_slow(flags, printed_nodes)
    # cb[k]: the ")" before the k-th "("; balanced iff never more than the "(" before
    cb = list(accumulate(map(str.count, parts, repeat(")"))))
    if not all(map(le, cb, range(n_open))):
        return _sexps_slow(flags, printed_nodes)
    opos = list(map(add, accumulate(map(len, parts)), range(n_open)))
    # cend[m + 1]: just past the m-th ")"
    cend = [0, *map(add, accumulate(map(len, cparts)), range(1, n_open + 1))]
    if n_open == len(flags):
        wanted = list(compress(range(n_open), flags))
        close = map(cend.__getitem__, map(add, wanted_sizes(), map(cb.__getitem__, wanted)))
        return list(map(text.__getitem__, map(slice, map(opos.__getitem__, wanted), close)))
    # drop the opens of missing hidden tokens
    missing = printed_missing()
    starts = [m.start() for m in _MISSING.finditer(clean)]
    drop: list[int] = []
    for at in starts:
        k = bisect_left(opos, at)
        rest = text[at + 9:]
        name = rest[1:rest.index('"', 1)] if rest.startswith('"') else rest[:rest.index(")")]
        if missing.get(k - len(drop)) != name:
            drop.append(k)
    if len(drop) != n_open - len(flags):
        return _sexps_slow(flags, printed_nodes)
    # pair each "(" with its ")" level by level (stable sorts by nesting level)
    odepth = list(map(sub, range(n_open), cb))
    cdepth = list(map(sub, accumulate(map(str.count, cparts, repeat("("))), range(1, n_open + 1)))
    oo = sorted(range(n_open), key=odepth.__getitem__)
    oc = sorted(range(n_open), key=cdepth.__getitem__)
    close_at = dict(zip(oo, [cend[m + 1] for m in oc], strict=True))
    dropped = set(drop)
    kept = [k for k in range(n_open) if k not in dropped]
    return [text[opos[k]:close_at[k]] for k in compress(kept, flags)]


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


def _chunk_counts(refs: list[str], hyps: list[str], lo: int, hi: int, strict: bool,
                  cache: dict[str, CodeAnalysis]) -> list[tuple]:
    """:func:`pair_counts` of pairs ``lo:hi``, analysing each distinct string once."""
    out = []
    for r, h in zip(refs[lo:hi], hyps[lo:hi], strict=True):
        a = cache.get(r)
        if a is None:
            a = cache[r] = analyse_code(r, strict)
        b = cache.get(h)
        if b is None:
            b = cache[h] = analyse_code(h, strict)
        out.append(pair_counts(a, b))
    return out


# Pairs per unit of work shared between processes: small enough that the two finish
# within a few milliseconds of each other, large enough that handing out units is free.
_CHUNK = 12
_ID = struct.Struct("<I")


def _counts_forked(refs: list[str], hyps: list[str], strict: bool, workers: int) -> list[tuple] | None:
    """The pairs' counts computed by this process and ``workers - 1`` forked children.

    The chunks of pairs are handed out through a pipe filled beforehand with their
    numbers: each process reads one number at a time (pipe reads of 4 bytes are
    atomic), so whichever process is free takes the next chunk, and a process slowed
    down by other load simply takes fewer.  Children send back only the counts of their
    chunks (a few bytes per pair); whatever a child fails to deliver is computed here,
    so the result never depends on the children.  None when no process can be forked.
    """
    n = len(refs)
    chunk = max(_CHUNK, -(-n // 8000))  # at most 8000 ids: 32 KB, within a pipe's buffer
    n_chunks = -(-n // chunk)
    try:
        qr, qw = os.pipe()
    except OSError:
        return None
    children: list[tuple[int, int]] = []
    try:
        os.write(qw, b"".join(_ID.pack(c) for c in range(n_chunks)))
        for _ in range(workers - 1):
            try:
                rr, rw = os.pipe()
                pid = os.fork()
            except OSError:
                break
            if pid == 0:  # child: never returns
                _child(refs, hyps, strict, chunk, qr, qw, rr, rw)
            os.close(rw)
            children.append((pid, rr))
        os.close(qw)
        qw = -1
        cache: dict[str, CodeAnalysis] = {}
        done = _drain(qr, refs, hyps, strict, chunk, cache)
        for pid, rr in children:
            data = _read_all(rr)
            os.close(rr)
            _, status = os.waitpid(pid, 0)
            if status == 0 and data:
                try:
                    done.update(pickle.loads(data))
                except Exception:  # noqa: BLE001 -- a broken message: recompute below
                    pass
        children = []
        for c in range(n_chunks):
            if c not in done:
                done[c] = _chunk_counts(refs, hyps, c * chunk, (c + 1) * chunk, strict, cache)
        return [x for c in range(n_chunks) for x in done[c]]
    finally:
        if qw >= 0:
            os.close(qw)
        os.close(qr)
        for pid, rr in children:  # interrupted: do not leave children behind
            os.close(rr)
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass


def _drain(qr: int, refs: list[str], hyps: list[str], strict: bool, chunk: int,
           cache: dict[str, CodeAnalysis]) -> dict[int, list[tuple]]:
    """Take chunk numbers from the shared queue until it is empty; their per-pair counts."""
    done: dict[int, list[tuple]] = {}
    while True:
        got = os.read(qr, _ID.size)
        if len(got) < _ID.size:
            return done
        c = _ID.unpack(got)[0]
        done[c] = _chunk_counts(refs, hyps, c * chunk, (c + 1) * chunk, strict, cache)


def _child(refs: list[str], hyps: list[str], strict: bool, chunk: int, qr: int, qw: int,
           rr: int, rw: int) -> None:
    code = 1
    try:
        os.close(qw)
        os.close(rr)
        _local.parser = None  # a parser of its own, not the parent's copy
        done = _drain(qr, refs, hyps, strict, chunk, {})
        data = memoryview(pickle.dumps(done, protocol=pickle.HIGHEST_PROTOCOL))
        while data:
            data = data[os.write(rw, data):]
        code = 0
    finally:
        os._exit(code)  # no atexit handlers, no flushing of the parent's buffers


def _read_all(fd: int) -> bytes:
    parts = []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            return b"".join(parts)
        parts.append(b)


def corpus_scores_code(refs: list[str], hyps: list[str], *, strict: bool = False,
                       workers: int = 1) -> dict:
    """:func:`corpus_scores` from the code strings, in ``workers`` processes.

    Each process analyses its share of the pairs and only their counts travel; they are
    summed here in the pairs' order, so the result is the same for any ``workers``.
    The cyclic garbage collector is paused meanwhile: the analyses allocate a few
    hundred thousand objects and hold no cycles, and its passes over them cost more
    than a tenth of the time.
    """
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        counts = None
        if workers > 1 and len(refs) > 2 * _CHUNK and hasattr(os, "fork"):
            counts = _counts_forked(refs, hyps, strict, workers)
        if counts is None:
            counts = _chunk_counts(refs, hyps, 0, len(refs), strict, {})
        return combine(counts)
    finally:
        if gc_was_on:
            gc.enable()


def default_workers(n_pairs: int) -> int:
    """Processes for ``n_pairs`` pairs: the CPUs that are idle right now (usable CPUs minus
    the 1-minute load average), at most 4 -- but one when there are under 200 pairs, off
    Linux (fork), or in a process that runs other threads or has loaded torch (forking
    such a process is not worth the risk).  On a busy machine a second process only
    competes with the others, so then this is 1 too."""
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
