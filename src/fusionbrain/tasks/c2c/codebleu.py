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
from collections import Counter
from dataclasses import dataclass

from fusionbrain.tasks.c2c.dataflow import _FIELD_TYPES, _STRINGY, DNode, data_flow, normalized_counts

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
    tree = get_parser().parse(src)
    root = tree.root_node

    sexps: list[str] = [str(root)]
    # Walk every node once: S-expressions of all nodes with children (syntax match), and
    # a DNode copy of the part of the tree the data-flow walk visits.
    droot = DNode(root.type)
    leaves: list[DNode] = []
    max_depth = 0
    # stack of (tree-sitter node, DNode or None when below a data-flow leaf, depth)
    stack = [(root, droot, 0)]
    while stack:
        node, dn, depth = stack.pop()
        children = node.children
        if dn is not None:
            if depth > max_depth:
                max_depth = depth
            t = dn.type
            if (not children or t in _STRINGY) and t != "comment":
                dn.leaf = True
                sp, ep = node.start_point, node.end_point
                dn.key = ((sp[0], sp[1]), (ep[0], ep[1]))
                leaves.append(dn)
                dcs = None
            else:
                dcs = [DNode(c.type) for c in children]
                dn.children = dcs
                fields = _FIELD_TYPES.get(t)
                if fields:
                    dn.fields = {}
                    for f in fields:
                        target = node.child_by_field_name(f)
                        if target is None:
                            dn.fields[f] = None
                            continue
                        for c, dc in zip(children, dcs):
                            if c == target:
                                dn.fields[f] = dc
                                break
                        else:  # not a direct child: cannot happen with tree-sitter's API
                            raise AssertionError(f"field {f} of {t} is not a child")
        else:
            dcs = None
        for i in range(len(children) - 1, -1, -1):
            c = children[i]
            if c.child_count:
                sexps.append(str(c))
            stack.append((c, dcs[i] if dcs is not None else None, depth + 1))
    # The walk pushes children in reverse, so leaves come out in source order.

    # Tokens of the data-flow leaves, cut from the source as the reference does.
    index_to_code: dict = {}
    if byte_columns_as_chars:
        lines = code.split("\n")
        for idx, dn in enumerate(leaves):
            (sr, sc), (er, ec) = dn.key
            if sr == er:
                s = lines[sr][sc:ec]
            else:
                s = lines[sr][sc:] + "".join(lines[sr + 1:er]) + lines[er][:ec]
            index_to_code[dn.key] = (idx, s)
    else:
        blines = src.split(b"\n")
        for idx, dn in enumerate(leaves):
            (sr, sc), (er, ec) = dn.key
            if sr == er:
                b = blines[sr][sc:ec]
            else:
                b = b"\n".join([blines[sr][sc:], *blines[sr + 1:er], blines[er][:ec]])
            index_to_code[dn.key] = (idx, b.decode("utf-8", "replace"))
    dfg = data_flow(droot, index_to_code, max_depth)
    dfg_counts, n_dfg = normalized_counts(dfg)
    sexp_counts = Counter(sexps)
    return CodeAnalysis(tokens, sexp_counts, len(sexps), dfg_counts, n_dfg)


def _ngram_counts(tokens: list[str], n: int) -> Counter:
    if n == 1:
        return Counter(tokens)
    if len(tokens) < n:
        return Counter()
    return Counter(zip(*(tokens[i:] for i in range(n))))


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
    for ref, hyp in zip(refs, hyps):
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
    s = math.fsum(0.25 * math.log((x + EPSILON if x == 0 else x) / d) for x, d in zip(num, den))
    return bp * math.exp(s)
