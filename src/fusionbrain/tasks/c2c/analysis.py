"""What CodeBLEU reads from the parse tree of one code string: its subtrees (syntax match)
and its data-flow edges (data-flow match).  The BLEU arithmetic is in
:mod:`fusionbrain.tasks.c2c.codebleu`.

Two parsers, one per scoring profile:

- ``aij2021`` parses the text as given with :mod:`fusionbrain._ts2020`: py-tree-sitter
  0.2.0's binding and runtime with the tree-sitter-python v0.16.1 grammar (csrc/ts2020),
  the parser of the official scorer (CodeXGLUE's ``my-languages.so`` under
  ``tree_sitter==0.2.0``).  Its error recovery decides what token text such as
  ``NEW_LINE INDENT`` becomes, so no later tree-sitter can stand in for it.
- ``strict`` parses :func:`~fusionbrain.tasks.c2c.code_tokens.detokenize`'s real Python
  source with today's ``tree_sitter`` + ``tree_sitter_python`` (a grammar that knows the
  Python of today), and cuts tokens by bytes.

Both are read into the same flat pre-order lists (:func:`_flatten_2020`, done in C, or
:func:`_flatten_modern`), from which :func:`analyse` builds the S-expression multiset and
the :class:`~fusionbrain.tasks.c2c.dataflow.Tree` the data-flow walk needs.  The official
code walks ``node.children`` recursively; the lists hold the same nodes in the same order.
"""

from __future__ import annotations

import threading
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


@dataclass
class CodeAnalysis:
    tokens: list[str]  # whitespace-split text (BLEU)
    sexps: Counter  # S-expression -> how many of the tree's subtrees have it
    n_sexps: int
    dfg: Counter  # normalised data-flow edge -> count
    n_dfg: int


# (types, child counts, descendant counts incl. self, depths, start rows, start columns,
#  end rows, end columns, S-expressions of the root and every node with children,
#  {node: {field: child node or None}} for the nodes of FIELD_TYPES' types)
Flat = tuple

_parser_2020 = None
_local = threading.local()


def _flatten_2020(code: str) -> Flat:
    """The official scorer's parse of ``code``, flattened in C."""
    global _parser_2020
    from fusionbrain import _ts2020

    if _parser_2020 is None:
        _parser_2020 = _ts2020.Parser()  # holds the GIL while it works: safe to share
    return _ts2020.flatten(_parser_2020.parse(code.encode("utf-8")), FIELD_TYPES)


def _modern_parser():
    parser = getattr(_local, "parser", None)  # one per thread: a parser is not reentrant
    if parser is None:
        import tree_sitter
        import tree_sitter_python

        parser = _local.parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))
    return parser


def _flatten_modern(source: str) -> Flat:
    """Today's tree-sitter parse of ``source``, flattened like :func:`_flatten_2020`."""
    root = _modern_parser().parse(source.encode("utf-8")).root_node
    nodes: list = []
    depths: list[int] = []
    dc: list[int] = []
    stack: list[int] = []
    cursor = root.walk()
    while True:
        stack.append(len(nodes))
        depths.append(len(stack) - 1)
        nodes.append(cursor.node)
        dc.append(1)
        if cursor.goto_first_child():
            continue
        while True:
            top = stack.pop()
            dc[top] = len(nodes) - top
            if cursor.goto_next_sibling():
                break
            if not cursor.goto_parent():
                break
        if not stack:
            break
    types = [x.type for x in nodes]
    nkids = [x.child_count for x in nodes]
    start = [x.start_point for x in nodes]
    end = [x.end_point for x in nodes]
    sexps = [str(x) for i, x in enumerate(nodes) if nkids[i] or i == 0]
    fields: dict[int, dict[str, int | None]] = {}
    for i, t in enumerate(types):
        if t in FIELD_TYPES:
            fi: dict[str, int | None] = {}
            for f in FIELD_TYPES[t]:
                target = nodes[i].child_by_field_name(f)
                fi[f] = None if target is None else next(
                    j for j in range(i + 1, i + dc[i]) if nodes[j] == target)
            fields[i] = fi
    return (types, nkids, dc, depths, [p[0] for p in start], [p[1] for p in start],
            [p[0] for p in end], [p[1] for p in end], sexps, fields)


def analyse(code: str, *, strict: bool = False) -> CodeAnalysis:
    """Tokens, subtrees and data-flow edges of ``code`` under one profile (see the module)."""
    if strict:
        from fusionbrain.tasks.c2c.code_tokens import detokenize

        source = detokenize(code)
        flat = _flatten_modern(source)
    else:
        source = code
        flat = _flatten_2020(code)
    tree = build_tree(source, flat, by_bytes=strict)
    sexps = flat[8]
    dfg, n_dfg = normalized_counts(data_flow(tree))
    return CodeAnalysis(code.split(), Counter(sexps), len(sexps), dfg, n_dfg)


def build_tree(source: str, flat: Flat, *, by_bytes: bool = False) -> Tree:
    """The data-flow :class:`Tree` of a flattened parse.

    Tokens are the official ``tree_to_token_index`` leaves (no children, or a string;
    never a comment) and are cut from ``source`` as ``index_to_code_token`` does: by the
    tree's *byte* columns used as *character* indices into the lines (the official quirk,
    which garbles non-ASCII tokens), or, with ``by_bytes`` (strict), by bytes.
    """
    types, nkids, dc, depth, sr, sc, er, ec, _, fields = flat
    n = len(types)
    leafidx: list[int] = []
    specials: list[int] = []
    strkids: dict[int, int] = {}
    stringy = STRINGY
    special = SPECIAL
    i = 0
    while i < n:  # pre-order, skipping what lies inside a token (a string's parts)
        t = types[i]
        if t in stringy:
            leafidx.append(i)
            strkids[i] = nkids[i]
            i += dc[i]
        elif nkids[i] == 0:
            if t != "comment":
                leafidx.append(i)
            i += 1
        else:
            if t in special:
                specials.append(i)
            i += 1
    lsr = [sr[i] for i in leafidx]
    lsc = [sc[i] for i in leafidx]
    ler = [er[i] for i in leafidx]
    lec = [ec[i] for i in leafidx]
    if by_bytes:
        blines = source.encode("utf-8").split(b"\n")
        ltext = [(blines[a][b:d] if a == c else b"\n".join([blines[a][b:], *blines[a + 1:c], blines[c][:d]]))
                 .decode("utf-8", "replace") for a, b, c, d in zip(lsr, lsc, ler, lec, strict=True)]
    elif "\n" not in source:  # one line: rows are all 0
        ltext = [source[b:d] for b, d in zip(lsc, lec, strict=True)]
    else:
        lines = source.split("\n")
        ltext = [lines[a][b:d] if a == c else lines[a][b:] + "".join(lines[a + 1:c]) + lines[c][:d]
                 for a, b, c, d in zip(lsr, lsc, ler, lec, strict=True)]
    # The official index_to_code dict keeps, per source range, the last token with it.
    keys = list(zip(lsr, lsc, ler, lec, strict=True))
    last = dict(zip(keys, range(len(keys)), strict=True))
    lidx = list(map(last.__getitem__, keys))
    tree = Tree(types, dc, leafidx, [types[i] for i in leafidx], ltext, lidx, specials)
    tree.fields = fields
    tree.strkids = strkids
    if n > 900 and max(depth) > 900:  # only such a tree can be too deep for the official recursion
        depths = list(depth)
        for s, k in strkids.items():
            if k:
                depths[s + 1:s + dc[s]] = [-1] * (dc[s] - 1)
        tree.depths = depths
        tree.depth = max(depths)
    return tree
