"""CodeBLEU's data-flow graph for Python, as the official scoring code builds it.

This is a re-implementation of ``DFG_python`` / ``get_data_flow`` /
``normalize_dataflow`` from the reference CodeBLEU code (CodeXGLUE, used unchanged by
the AI Journey 2021 Fusion Brain scorer), working on a light copy of the tree-sitter
tree (:class:`Tree`) that is built once per distinct string.  Everything the reference
does is kept on purpose -- including its oddities -- so the numbers agree:

- tokens are cut from the source lines by tree-sitter's *byte* columns used as
  *character* indices (wrong for non-ASCII text; reproduced in the aij2021 profile);
- any exception inside the graph walk (e.g. a ``for`` whose ``left`` field is missing
  after error recovery) empties the whole graph;
- a tree too deep for the reference's Python recursion limit empties the graph
  (:data:`TOKEN_DEPTH_LIMIT`, :data:`LOOKUP_FRAME_LIMIT`);
- ``list(set(names))`` is replaced by :func:`set_order`, the order CPython gives with
  ``PYTHONHASHSEED=0``, so the result is deterministic and equals the reference's
  result under that seed.
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from collections import Counter
from itertools import chain, compress
from operator import itemgetter, ne

from fusionbrain.tasks.c2c.setorder import set_order

STRINGY = ("string_literal", "string", "character_literal")
FIELD_TYPES = {
    "default_parameter": ("name", "value"),
    "assignment": ("left", "right"),
    "augmented_assignment": ("left", "right"),
    "for_in_clause": ("left", "right"),
    "for_statement": ("left", "right"),
}

# The official script runs ``get_data_flow`` three Python frames below the top
# (evaluate.py -> corpus_dataflow_match -> get_data_flow) under the default recursion
# limit of 1000, so ``DFG_python(root)`` runs in frame 4, and each call one deeper.  Its
# recursion fails -- and that string's graph is empty -- when ``tree_to_token_index``
# reaches a token TOKEN_DEPTH_LIMIT deep, or when a token's ``index_to_code`` look-up
# (in ``DFG_python`` or ``tree_to_variable_index``; the tuple-key comparison costs three
# more levels) runs in frame LOOKUP_FRAME_LIMIT or deeper.  (A node's ``sorted(...,
# key=lambda ...)`` fails later than the look-ups of its own tokens, so it never decides.)
# Measured with the official code on CPython 3.11 (nested parentheses, brackets and unary
# minus, in plain and chained assignments); see tests/test_metric_c2c.py.
ROOT_FRAME = 4
TOKEN_DEPTH_LIMIT = 997
LOOKUP_FRAME_LIMIT = 998


class Tree:
    """A tree-sitter tree as flat pre-order arrays, for the data-flow walk.

    Every visible node has a pre-order id; ``dc[i]`` is its number of descendants
    (itself included), ``ntype[i]`` its type.  A *leaf* is what the reference treats as
    one token (no children, or a string node), comments excepted; ``leafidx`` lists
    their ids in source order, and per leaf position ``j``: ``ltype[j]``, ``ltext[j]``
    (the token text as the reference cuts it) and ``lidx[j]`` (its token index: the
    last leaf with the same source range, as the reference's dict keeps it).  ``var``
    lists the leaf positions whose text differs from their type -- the only ones the
    reference ever records -- so the walk skips punctuation and keywords without
    looking at them.  ``specials`` (sorted) are the nodes of the types the reference
    handles specially; a subtree without one is *plain*: its data flow is a
    left-to-right pass over its leaves.  Nodes inside a string token are numbered but
    never visited.
    """

    __slots__ = ("ntype", "dc", "leafidx", "ltype", "ltext", "lidx", "var", "specials",
                 "fields", "strkids", "depth", "depths", "_kids")

    def __init__(self, ntype: list[str], dc: list[int], leafidx: list[int], ltype: list[str],
                 ltext: list[str], lidx: list[int], specials: list[int]) -> None:
        self.ntype, self.dc, self.leafidx, self.specials = ntype, dc, leafidx, specials
        self.ltype, self.ltext, self.lidx = ltype, ltext, lidx
        # C-level: positions j with ltype[j] != ltext[j]
        self.var = list(compress(range(len(ltype)), map(ne, ltype, ltext)))
        self.fields: dict[int, dict[str, int | None]] = {}
        self.strkids: dict[int, int] = {}  # string leaf -> its real child count
        self.depth = 0  # of the deepest node outside strings (only computed for big trees)
        self.depths: list[int] = []  # per node, -1 inside strings (idem)
        self._kids: dict[int, list[int]] = {}

    def is_leaf(self, i: int) -> bool:
        t = self.ntype[i]
        return (self.dc[i] == 1 and t != "comment") or t in STRINGY

    def kids(self, i: int) -> list[int] | None:
        """The children of node ``i`` (pre-order ids), None for a leaf."""
        if self.is_leaf(i):
            return None
        out = self._kids.get(i)
        if out is None:
            dc = self.dc
            out = []
            c, end = i + 1, i + dc[i]
            while c < end:
                out.append(c)
                c += dc[c]
            self._kids[i] = out
        return out

    def plain(self, i: int) -> bool:
        sp = self.specials
        return not sp or bisect_left(sp, i) == bisect_left(sp, i + self.dc[i])

    def var_range(self, i: int) -> list[int]:
        """The ``var`` leaf positions under node ``i``."""
        leafidx, var = self.leafidx, self.var
        lo = bisect_left(leafidx, i)
        hi = bisect_left(leafidx, i + self.dc[i])
        return var[bisect_left(var, lo):bisect_left(var, hi)]


SPECIAL = frozenset(("default_parameter", "assignment", "augmented_assignment", "for_in_clause",
                      "if_statement", "for_statement", "while_statement"))

# Stands for a child of a string token: the reference would look it up among the
# tokens and fail (KeyError), which empties the graph.
_POISON = -1


class _Poisoned(Exception):
    pass


_by_pos = itemgetter(1)
_NONE = object()
_EMPTY: list = []  # shared: never changed in place (see dfg_python)


def _merge_loop(DFG: list) -> list:
    dic: dict = {}
    for x in DFG:
        k = (x[0], x[1], x[2])
        if k not in dic:
            dic[k] = [x[3], x[4]]
        else:
            dic[k][0] = set_order(dic[k][0] + x[3])
            dic[k][1] = sorted(set(dic[k][1] + x[4]))
    return [(x[0], x[1], x[2], y[0], y[1]) for x, y in sorted(dic.items(), key=lambda t: t[0][1])]


def dfg_python(tree: Tree) -> list:
    """The reference ``DFG_python(root, index_to_code, {})`` graph, before filtering.

    Entries are ``(name, token index, relation, parent names, parent indices)``.  The
    per-level sorts of the reference are left out: they are stable sorts on the same
    key, so only the final sort (done by the caller) matters.  The reference copies its
    lists defensively; nothing here or downstream changes a list in place once it is
    stored, so they are shared instead.
    """
    ntype, kids, plain, var_range = tree.ntype, tree.kids, tree.plain, tree.var_range
    fields, strkids, ltype, ltext, lidx = tree.fields, tree.strkids, tree.ltype, tree.ltext, tree.lidx
    depths, leafidx = tree.depths, tree.leafidx
    # only a tree this deep can reach the official recursion limit (frames stay within a
    # few levels of the tree depth)
    deep = tree.depth + ROOT_FRAME + 8 >= LOOKUP_FRAME_LIMIT
    ldepth = [depths[i] for i in leafidx] if deep else []

    def check_lookups(i, frame):
        # the official recursion from node i (in ``frame``) looks up every token below i,
        # one frame deeper per tree level
        lo = bisect_left(leafidx, i)
        hi = bisect_left(leafidx, i + tree.dc[i])
        if hi > lo and frame + max(ldepth[lo:hi]) - depths[i] >= LOOKUP_FRAME_LIMIT:
            raise RecursionError("the official recursion would fail here")

    def field(i, name):
        return fields[i].get(name)

    def children(i):
        # ``node.children`` of the reference; None -> AttributeError as there
        if i is None:
            raise AttributeError("'NoneType' object has no attribute 'children'")
        k = kids(i)
        if k is None:
            return [_POISON] * strkids.get(i, 0)
        return k

    def not_comma(i):
        return i == _POISON or ntype[i] != ","

    def tvi(i, f):
        # tree_to_variable_index, called from frame f: leaf positions under i whose text
        # differs from their type
        if i is None:
            raise AttributeError("'NoneType' object has no attribute 'children'")
        if i == _POISON:
            raise _Poisoned
        if deep:
            check_lookups(i, f + 1)
        return var_range(i)

    def walk(i, states, f):
        # DFG_python(i) in frame f
        if i == _POISON:
            raise _Poisoned
        states = states.copy()
        if plain(i):
            if deep:
                check_lookups(i, f)
            out = []
            add = out.append
            get = states.get
            for j in var_range(i):
                code = ltext[j]
                known = get(code, _NONE)
                if known is not _NONE:
                    add((code, lidx[j], "comesFrom", [code], known))
                else:
                    if ltype[j] == "identifier":
                        states[code] = [lidx[j]]
                    add((code, lidx[j], "comesFrom", _EMPTY, _EMPTY))
            return out, states
        t = ntype[i]
        if t == "default_parameter":
            name = field(i, "name")
            value = field(i, "value")
            DFG = []
            if value is None:
                for j in tvi(name, f):
                    idx, code = lidx[j], ltext[j]
                    DFG.append((code, idx, "comesFrom", [], []))
                    states[code] = [idx]
                return DFG, states
            name_indexs = tvi(name, f)
            value_indexs = tvi(value, f)
            temp, states = walk(value, states, f + 1)
            DFG += temp
            for j1 in name_indexs:
                idx1, code1 = lidx[j1], ltext[j1]
                for j2 in value_indexs:
                    DFG.append((code1, idx1, "comesFrom", [ltext[j2]], [lidx[j2]]))
                states[code1] = [idx1]
            return DFG, states
        if t in ("assignment", "augmented_assignment", "for_in_clause"):
            if t == "for_in_clause":
                right_nodes = [kids(i)[-1]]
                left_nodes = [field(i, "left")]
            else:
                if field(i, "right") is None:
                    return [], states
                left, right = field(i, "left"), field(i, "right")
                left_nodes = [x for x in children(left) if not_comma(x)]
                right_nodes = [x for x in children(right) if not_comma(x)]
                if len(right_nodes) != len(left_nodes):
                    left_nodes = [left]
                    right_nodes = [right]
                if len(left_nodes) == 0:
                    left_nodes = [left]
                if len(right_nodes) == 0:
                    right_nodes = [right]
            DFG = []
            for node in right_nodes:
                temp, states = walk(node, states, f + 1)
                DFG += temp
            for left_node, right_node in zip(left_nodes, right_nodes, strict=False):
                lt = tvi(left_node, f)
                rt = tvi(right_node, f)
                names = [ltext[x] for x in rt]
                poss = [lidx[x] for x in rt]
                for j1 in lt:
                    idx1, code1 = lidx[j1], ltext[j1]
                    DFG.append((code1, idx1, "computedFrom", names, poss))
                    states[code1] = [idx1]
            return DFG, states
        if t == "if_statement":
            DFG = []
            current_states = states.copy()
            others_states = []
            tag = False
            for child in kids(i):
                ct = ntype[child]
                if "else" in ct:
                    tag = True
                if ct not in ("elif_clause", "else_clause"):
                    temp, current_states = walk(child, current_states, f + 1)
                    DFG += temp
                else:
                    temp, new_states = walk(child, states, f + 1)
                    DFG += temp
                    others_states.append(new_states)
            others_states.append(current_states)
            if tag is False:
                others_states.append(states)
            new_states = {}
            for dic in others_states:
                for key in dic:
                    if key not in new_states:
                        new_states[key] = dic[key].copy()
                    else:
                        new_states[key] += dic[key]
            for key in new_states:
                new_states[key] = sorted(set(new_states[key]))
            return DFG, new_states
        if t == "for_statement":
            DFG = []
            for _ in range(2):
                left, right = field(i, "left"), field(i, "right")
                right_nodes = [x for x in children(right) if not_comma(x)]
                left_nodes = [x for x in children(left) if not_comma(x)]
                if len(right_nodes) != len(left_nodes):
                    left_nodes = [left]
                    right_nodes = [right]
                if len(left_nodes) == 0:
                    left_nodes = [left]
                if len(right_nodes) == 0:
                    right_nodes = [right]
                for node in right_nodes:
                    temp, states = walk(node, states, f + 1)
                    DFG += temp
                for left_node, right_node in zip(left_nodes, right_nodes, strict=False):
                    lt = tvi(left_node, f)
                    rt = tvi(right_node, f)
                    names = [ltext[x] for x in rt]
                    poss = [lidx[x] for x in rt]
                    for j1 in lt:
                        idx1, code1 = lidx[j1], ltext[j1]
                        DFG.append((code1, idx1, "computedFrom", names, poss))
                        states[code1] = [idx1]
                last = kids(i)[-1]
                if ntype[last] == "block":
                    temp, states = walk(last, states, f + 1)
                    DFG += temp
            return _merge_loop(DFG), states
        if t == "while_statement":
            DFG = []
            for _ in range(2):
                for child in kids(i):
                    temp, states = walk(child, states, f + 1)
                    DFG += temp
            return _merge_loop(DFG), states
        DFG = []
        ks = kids(i)
        for child in ks:
            if ntype[child] == "for_in_clause":
                temp, states = walk(child, states, f + 1)
                DFG += temp
        for child in ks:
            if ntype[child] != "for_in_clause":
                temp, states = walk(child, states, f + 1)
                DFG += temp
        return DFG, states

    return walk(0, {}, ROOT_FRAME)[0]


_positions = itemgetter(4)


def data_flow(tree: Tree | None) -> list:
    """The reference ``get_data_flow`` once the tokens are known: graph, filter, merge."""
    if tree is None or tree.depth >= TOKEN_DEPTH_LIMIT:
        return []
    limit = sys.getrecursionlimit()
    need = 2 * tree.depth + 200 + _stack_depth()
    try:
        if need > limit:
            sys.setrecursionlimit(need)
        try:
            DFG = dfg_python(tree)
        except Exception:  # the reference swallows every error here
            DFG = []
    finally:
        if need > limit:
            sys.setrecursionlimit(limit)
    if not DFG:
        return []
    DFG.sort(key=_by_pos)  # stable, as the reference's sorted()
    # keep the entries with parents and those some entry points to
    indexs = set(chain.from_iterable(map(_positions, DFG)))
    indexs.update([d[1] for d in DFG if d[4]])
    dfg = [d for d in DFG if d[1] in indexs]
    if len(set(map(_by_pos, dfg))) == len(dfg):  # no token twice: nothing to merge
        return dfg
    dic: dict = {}
    for d in dfg:
        if d[1] not in dic:
            dic[d[1]] = d
        else:
            old = dic[d[1]]
            # positions (item 4) are never read again, their order does not matter
            dic[d[1]] = (d[0], d[1], d[2], set_order(old[3] + d[3]), sorted(set(old[4] + d[4])))
    return list(dic.values())


def _stack_depth() -> int:
    f = sys._getframe()
    n = 0
    while f is not None:
        n += 1
        f = f.f_back
    return n


def normalize_dataflow(dataflow: list) -> list:
    """The reference's ``normalize_dataflow``, with ``var_N`` as the integer N: the
    edges are only ever compared with each other, so the spelling does not matter.
    Names are numbered in order of first appearance, each entry's parents before the
    entry's own name, as there."""
    seq: list[str] = []
    add, extend = seq.append, seq.extend
    for item in dataflow:
        extend(item[3])
        add(item[0])
    num = {name: i for i, name in enumerate(dict.fromkeys(seq))}.__getitem__
    return [(num(item[0]), item[2], tuple(map(num, item[3]))) for item in dataflow]


def normalized_counts(dataflow: list) -> tuple[Counter, int]:
    """Multiset of normalised edges (each matched edge is used once) and their number."""
    norm = normalize_dataflow(dataflow)
    return Counter(norm), len(norm)
