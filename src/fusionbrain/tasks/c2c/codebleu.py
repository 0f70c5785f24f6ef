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

Speed: each distinct string is parsed and analysed once (:class:`CodeAnalysis`), the
tree-sitter parser is built once per process, and the quadratic list look-ups of the
reference are replaced by counters with the same results.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from fusionbrain.tasks.c2c.dataflow import (
    FIELD_TYPES,
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

_parser = None


def get_parser():
    """The tree-sitter Python parser, built once per process."""
    global _parser
    if _parser is None:
        import tree_sitter
        import tree_sitter_python

        _parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))
    return _parser


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

    # One pass over the whole tree: the data-flow part as flat arrays (dataflow.Tree),
    # and the pre-order list of the nodes an S-expression prints (named or missing),
    # marking those with children: their S-expressions are cut from the root's below.
    tree = Tree()
    ntype, kids, lo, depth_of = tree.ntype, tree.kids, tree.lo, []
    ltype, lkey, strkids = tree.ltype, tree.lkey, tree.strkids
    field_idx: dict[int, dict[str, int | None]] = {}
    printed: list[bool] = []  # per printed node in pre-order: has children
    printed_nodes: list = []  # the same nodes (only needed by the slow path)
    unprinted: list[str] = []
    # stack items: (node, parent id or -1, depth); parent None = below a data-flow leaf
    stack: list = [(root, -1, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, parent, depth = pop()
        children = node.children
        if parent == -1:  # the root: always counted, printed even without children
            printed.append(True)
            printed_nodes.append(node)
        elif node.is_named or node.is_missing:
            printed.append(bool(children))
            printed_nodes.append(node)
        elif children:  # an anonymous node with children is not in its parent's string
            unprinted.append(str(node))
        if parent is None:
            for c in reversed(children):
                push((c, None, 0))
            continue
        i = len(ntype)
        t = node.type
        ntype.append(t)
        depth_of.append(depth)
        lo.append(len(ltype))
        if parent >= 0:
            kids[parent].append(i)
        if (not children or t in STRINGY) and t != "comment":
            kids.append(None)
            sp, ep = node.start_point, node.end_point
            ltype.append(t)
            lkey.append(((sp[0], sp[1]), (ep[0], ep[1])))
            if children:
                strkids[i] = len(children)
                for c in reversed(children):
                    push((c, None, 0))
            continue
        kids.append([])
        wanted = FIELD_TYPES.get(t)
        if wanted:
            fi: dict[str, int | None] = {}
            for f in wanted:
                target = node.child_by_field_name(f)
                fi[f] = None
                if target is not None:
                    for k, c in enumerate(children):
                        if c == target:
                            fi[f] = k
                            break
                    else:  # not a direct child: never seen with tree-sitter's API
                        raise AssertionError(f"field {f} of {t} is not a child")
            field_idx[i] = fi
        d1 = depth + 1
        for c in reversed(children):
            push((c, i, d1))
    sexps = _subtree_sexps(root, printed, printed_nodes)
    sexps += unprinted
    n = len(ntype)
    hi = [0] * n
    plain = [True] * n
    for i in range(n - 1, -1, -1):
        ks = kids[i]
        if ks is None:
            hi[i] = lo[i] + 1
        else:
            hi[i] = hi[ks[-1]] if ks else lo[i]
            plain[i] = ntype[i] not in SPECIAL and all(plain[k] for k in ks)
    tree.hi, tree.plain = hi, plain
    tree.fields = {i: {f: (None if k is None else kids[i][k]) for f, k in fi.items()}
                   for i, fi in field_idx.items()}
    tree.depth = max(depth_of)
    tree.depths = depth_of

    # Tokens of the leaves, cut from the source as the reference does; a later token
    # with the same (start, end) overwrites an earlier one, as in its dict.
    index_to_code: dict = {}
    if byte_columns_as_chars:
        lines = code.split("\n")
        for idx, ((sr, sc), (er, ec)) in enumerate(lkey):
            if sr == er:
                s = lines[sr][sc:ec]
            else:
                s = lines[sr][sc:] + "".join(lines[sr + 1:er]) + lines[er][:ec]
            index_to_code[(sr, sc), (er, ec)] = (idx, s)
    else:
        blines = src.split(b"\n")
        for idx, ((sr, sc), (er, ec)) in enumerate(lkey):
            if sr == er:
                b = blines[sr][sc:ec]
            else:
                b = b"\n".join([blines[sr][sc:], *blines[sr + 1:er], blines[er][:ec]])
            index_to_code[(sr, sc), (er, ec)] = (idx, b.decode("utf-8", "replace"))
    ic = [index_to_code[k] for k in lkey]
    dfg_counts, n_dfg = normalized_counts(data_flow(tree, ic))
    return CodeAnalysis(tokens, Counter(sexps), len(sexps), dfg_counts, n_dfg)


_EVENTS = re.compile(r"""\((?:MISSING "[()]"|UNEXPECTED '[()]')?|\)""")


def _subtree_sexps(root, printed: list[bool], nodes: list) -> list[str]:
    """``str(node)`` for the root and every node with children, from one ``str(root)``.

    A node's S-expression is the balanced span of the root's that starts at its own
    opening parenthesis (the k-th one for the k-th printed node in pre-order).  Quoted
    parentheses (``(MISSING ")")``, ``(UNEXPECTED '(')``) are matched as part of the
    opening; if anything does not line up, fall back to one ``str()`` per node.
    """
    text = str(root)
    out: list[str] = []
    if "INVALID)" not in text:
        opens: list[int] = []
        k = 0
        n = len(printed)
        try:
            for m in _EVENTS.finditer(text):
                if m.end() - m.start() != 1 or text[m.start()] == "(":
                    opens.append(k)
                    opens.append(m.start())
                    k += 1
                else:
                    start = opens.pop()
                    if printed[opens.pop()]:
                        out.append(text[start:m.end()])
            if k == n and not opens:
                return out
        except IndexError:
            pass
    # slow path: exact by construction
    return [str(x) for x, has_children in zip(nodes, printed, strict=False) if has_children]


def _ngram_counts(tokens: list[str], n: int) -> Counter:
    if n == 1:
        return Counter(tokens)
    if len(tokens) < n:
        return Counter()
    return Counter(zip(*(tokens[i:] for i in range(n)), strict=False))


def corpus_scores(refs: list[CodeAnalysis], hyps: list[CodeAnalysis]) -> dict:
    """All four components and CodeBLEU for aligned lists of analyses (one reference each)."""
    assert len(refs) == len(hyps)
    b_num = [0, 0, 0, 0]
    b_den = [0, 0, 0, 0]
    w_num = [0, 0, 0, 0]
    w_den = [0, 0, 0, 0]
    hyp_len = ref_len = 0
    syn_match = syn_total = 0
    df_match = df_total = 0
    for ref, hyp in zip(refs, hyps, strict=False):
        rt, ht = ref.tokens, hyp.tokens
        for n in (1, 2, 3, 4):
            hc = _ngram_counts(ht, n)
            rc = _ngram_counts(rt, n)
            # BLEU: modified precision (clipped hypothesis counts)
            b_num[n - 1] += sum(min(c, rc[g]) for g, c in hc.items()) if hc else 0
            b_den[n - 1] += max(1, len(ht) - n + 1)
            # weighted BLEU: the reference's "modified recall" (clipped reference counts)
            if n == 1:
                num = 0
                den = 0
                for g, c in rc.items():  # reference order, as the reference sums
                    w = 1 if g in KEYWORDS else 0.2
                    m = min(c, hc[g])
                    num += m * w
                    den += c * w
                w_num[0] += num
                w_den[0] += max(1, den)
            else:
                w_num[n - 1] += sum(min(c, hc[g]) for g, c in rc.items()) if rc else 0
                w_den[n - 1] += max(1, len(rt) - n + 1)
        hyp_len += len(ht)
        ref_len += len(rt)
        hs = hyp.sexps
        syn_match += sum(c for s, c in ref.sexps.items() if s in hs)
        syn_total += ref.n_sexps
        if ref.n_dfg:
            df_total += ref.n_dfg
            hd = hyp.dfg
            df_match += sum(min(c, hd[e]) for e, c in ref.dfg.items())
    bleu = _bleu(b_num, b_den, ref_len, hyp_len)
    # the reference passes [tokens, weights] pairs, whose "length" is 2
    weighted = _bleu(w_num, w_den, 2 * len(refs), hyp_len)
    if syn_total == 0:
        raise ZeroDivisionError("no references")  # the reference divides by zero too
    syntax = syn_match / syn_total
    dataflow = df_match / df_total if df_total else 0
    score = 0.25 * bleu + 0.25 * weighted + 0.25 * syntax + 0.25 * dataflow
    return {"score": score, "bleu": bleu, "weighted_bleu": weighted,
            "syntax_match": syntax, "dataflow_match": dataflow,
            "dataflow_edges": df_total}


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
