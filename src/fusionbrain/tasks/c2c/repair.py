"""Syntax-aware repair of C2C translations: hand-written Java -> Python rules + ``ast`` check.

This module is **rule-assisted**, not learnt: the rules below were written by hand for the
Java of GeeksforGeeks-style functions (AVATAR). Two entry points, both on TransCoder
token text (``NEW_LINE`` / ``INDENT`` / ``DEDENT``):

:func:`translate_java` -- a small rule-based Java -> Python translator (a recursive-descent
reader of statements: blocks, ``if``/``else``, ``for`` (counting loops become
``range``; others ``while``), for-each, ``while``, ``do``/``while``, ``switch``,
``return``/``break``/``continue``, local declarations, ``++``/``--`` and expressions).
Expression rewrites: ``&& || !`` -> ``and or not``; ``true false null``; casts
``(int) x`` -> ``int(x)``; ``Math.max/min/abs/pow`` -> builtins, other ``Math.*`` ->
``math.*``; ``a.length``/``s.length()``/``l.size()`` -> ``len``; ``s.charAt(i)`` ->
``s[i]``; ``new int[n]`` -> ``[0] * (n)`` (2-D: a list comprehension); ``/`` -> ``//``
unless the statement involves a floating-point name, literal or call; char arithmetic
(``c - 'a'``) -> ``ord``; ``?:`` -> ``x if c else y``; ``System.out.print(ln)`` ->
``print`` (string concatenation wraps the other parts in ``str``); collections
(``add`` -> ``append`` for lists, ``put`` -> item assignment, ``contains`` -> ``in``).
What it does not know is left as Java tokens (the result then does not parse).

:func:`repair` -- for a model's translation: the same expression rewrites and line fixes
(trailing ``;``, leftover braces, ``i ++``, typed declarations, ``Math.max``...) are applied
line by line; if the result does not parse, the model text as it is, then the rule
translation of the Java (when given) are tried. That is the "fall back to the best
candidate that parses" step: candidates in order, the first whose detokenised source
``ast.parse`` accepts wins (the model's own text when none does). ``rule_first=True`` puts
the rule translation first and keeps the model as the fallback for Java the rules cannot
read -- on the AVATAR test split that is the more accurate order (see BENCHMARKS.md).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from fusionbrain.tasks.c2c.code_tokens import DEDENT, INDENT, NEW_LINE, detokenize

_INT_TYPES = {"int", "long", "short", "byte", "Integer", "Long", "Short", "Byte"}
_FLOAT_TYPES = {"double", "float", "Double", "Float"}
_TYPES = _INT_TYPES | _FLOAT_TYPES | {"boolean", "Boolean", "char", "Character", "String",
                                      "StringBuilder", "StringBuffer", "void", "var", "Object"}
_GENERIC = {"List", "ArrayList", "LinkedList", "Vector", "Set", "HashSet", "TreeSet",
            "LinkedHashSet", "Map", "HashMap", "TreeMap", "LinkedHashMap", "Queue", "Deque",
            "ArrayDeque", "Stack", "PriorityQueue", "Pair", "Iterator", "Entry"}
_MODIFIERS = {"public", "private", "protected", "static", "final", "synchronized"}
_CAST = {"int": "int", "long": "int", "short": "int", "byte": "int", "double": "float",
         "float": "float", "char": "chr", "Integer": "int", "Long": "int", "Double": "float",
         "String": "str"}
_MATH_BUILTIN = {"max": "max", "min": "min", "abs": "abs", "pow": "pow", "round": "round"}
_MATH_MODULE = {"PI": "pi", "E": "e", "log": "log", "toRadians": "radians",
                "toDegrees": "degrees"}
_LIMITS = {("Integer", "MAX_VALUE"): "sys . maxsize", ("Integer", "MIN_VALUE"): "- sys . maxsize",
           ("Long", "MAX_VALUE"): "sys . maxsize", ("Long", "MIN_VALUE"): "- sys . maxsize",
           ("Double", "MAX_VALUE"): "float ( 'inf' )", ("Double", "MIN_VALUE"): "0.0",
           ("Boolean", "TRUE"): "True", ("Boolean", "FALSE"): "False"}
_STATIC_CALLS = {("Integer", "parseInt"): "int", ("Long", "parseLong"): "int",
                 ("Integer", "valueOf"): "int", ("String", "valueOf"): "str",
                 ("Integer", "toString"): "str", ("Long", "toString"): "str",
                 ("Double", "parseDouble"): "float", ("Character", "getNumericValue"): "int",
                 ("Integer", "bitCount"): "bin_count"}
_CHAR_METHODS = {"isDigit": "isdigit", "isLetter": "isalpha", "isUpperCase": "isupper",
                 "isLowerCase": "islower", "isLetterOrDigit": "isalnum",
                 "isWhitespace": "isspace", "isAlphabetic": "isalpha",
                 "toUpperCase": "upper", "toLowerCase": "lower"}
_STRING_METHODS = {"toUpperCase": "upper", "toLowerCase": "lower", "trim": "strip",
                   "indexOf": "find", "lastIndexOf": "rfind", "startsWith": "startswith",
                   "endsWith": "endswith", "push": "append", "addLast": "append",
                   "offer": "append", "poll": "pop", "elementAt": "__getitem__"}
_NAME = re.compile(r"^[A-Za-z_$][\w$]*$")
_NUM_SUFFIX = re.compile(r"^(\d+)[lL]$|^(\d*\.?\d+(?:[eE][-+]?\d+)?)[fFdD]$")
_FLOAT_LIT = re.compile(r"^\d*\.\d+(?:[eE][-+]?\d+)?$|^\d+\.\d*$|^\d+[eE][-+]?\d+$")
_OPEN, _CLOSE = {"(": ")", "[": "]", "{": "}"}, {")": "(", "]": "[", "}": "{"}


def parses(token_text: str) -> bool:
    """Whether the detokenised Python of ``token_text`` is accepted by ``ast.parse``."""
    try:
        ast.parse(detokenize(token_text))
    except (SyntaxError, ValueError):
        return False
    return True


def _acceptable(token_text: str) -> bool:
    """Parses, and holds no ``++`` / ``--``: Java's increments also parse in Python, as
    repeated signs (``a ++ + b`` is ``a + (+(+b))``), and would compute something else."""
    return not any(t in ("++", "--") for t in token_text.split()) and parses(token_text)


def parse_share(texts: Sequence[str]) -> float:
    """Share of ``texts`` (token text or real source) that parse as Python."""
    return sum(parses(t) for t in texts) / len(texts) if texts else 0.0


# ---------------------------------------------------------------- token helpers

def _match_fwd(toks: Sequence[str], i: int) -> int:
    """Index of the bracket closing ``toks[i]`` (or len(toks) - 1 when unclosed)."""
    depth = 0
    for k in range(i, len(toks)):
        if toks[k] in _OPEN:
            depth += 1
        elif toks[k] in _CLOSE:
            depth -= 1
            if depth == 0:
                return k
    return len(toks) - 1


def _match_back(toks: Sequence[str], i: int) -> int:
    depth = 0
    for k in range(i, -1, -1):
        if toks[k] in _CLOSE:
            depth += 1
        elif toks[k] in _OPEN:
            depth -= 1
            if depth == 0:
                return k
    return 0


def _primary_end(toks: Sequence[str], i: int) -> int:
    """End (exclusive) of the primary expression starting at ``toks[i]``: a name, literal or
    bracketed group, with its ``.name`` / call / subscript postfixes; unary ops included."""
    if i >= len(toks):
        return i
    t = toks[i]
    if t in ("-", "+", "not", "~", "!"):
        return _primary_end(toks, i + 1)
    j = _match_fwd(toks, i) + 1 if t in _OPEN else i + 1
    while j < len(toks):
        if toks[j] in ("(", "["):
            j = _match_fwd(toks, j) + 1
        elif toks[j] == "." and j + 1 < len(toks) and _NAME.match(toks[j + 1]):
            j += 2
        else:
            break
    return j


def _primary_start(toks: Sequence[str], end: int) -> int:
    """Start of the primary expression ending at ``toks[end - 1]`` (inclusive)."""
    k = end - 1
    while k >= 0:
        if toks[k] in _CLOSE:
            k = _match_back(toks, k)
            if k > 0 and (_NAME.match(toks[k - 1]) or toks[k - 1] in _CLOSE) \
                    and toks[k - 1] not in _KEYWORDS:
                k -= 1
                continue
            return k
        if _NAME.match(toks[k]) or _is_literal(toks[k]):
            if k > 1 and toks[k - 1] == "." and (_NAME.match(toks[k - 2]) or toks[k - 2] in _CLOSE):
                k -= 2
                continue
            return k
        return k
    return 0


_KEYWORDS = {"if", "while", "for", "return", "and", "or", "not", "in", "else", "print",
             "elif", "switch"}


def _is_literal(t: str) -> bool:
    return bool(t) and (t[0].isdigit() or t[0] in "\"'")


def _split_top(toks: Sequence[str], sep: str) -> list[list[str]]:
    out: list[list[str]] = [[]]
    depth = 0
    for t in toks:
        if t in _OPEN:
            depth += 1
        elif t in _CLOSE:
            depth -= 1
        if t == sep and depth == 0:
            out.append([])
        else:
            out[-1].append(t)
    return out


def _join(parts: list[list[str]], sep: str) -> list[str]:
    out: list[str] = []
    for k, p in enumerate(parts):
        if k:
            out.append(sep)
        out.extend(p)
    return out


# ---------------------------------------------------------------- expressions

class _Scope:
    """What the translator knows of the function's names (from declarations)."""

    def __init__(self) -> None:
        self.floats: set[str] = set()
        self.chars: set[str] = set()  # char variables
        self.strings: set[str] = set()  # String / char[] (indexing gives a char)
        self.sets: set[str] = set()
        self.maps: set[str] = set()

    def declare(self, type_toks: Sequence[str], name: str) -> None:
        head = type_toks[0] if type_toks else ""
        dims = sum(t in ("[", "[]") for t in type_toks)
        if head in _FLOAT_TYPES:
            self.floats.add(name)
        elif head in ("char", "Character"):
            (self.strings if dims else self.chars).add(name)
        elif head in ("String", "StringBuilder", "StringBuffer") and not dims:
            self.strings.add(name)
        elif head in ("Set", "HashSet", "TreeSet", "LinkedHashSet"):
            self.sets.add(name)
        elif head in ("Map", "HashMap", "TreeMap", "LinkedHashMap"):
            self.maps.add(name)


def _default(type_toks: Sequence[str]) -> str:
    head = type_toks[0] if type_toks else ""
    if head in _INT_TYPES:
        return "0"
    if head in _FLOAT_TYPES:
        return "0.0"
    if head in ("boolean", "Boolean"):
        return "False"
    if head in ("char", "Character"):
        return "' '"
    return "None"


def _new_expr(toks: list[str], i: int, scope: _Scope) -> tuple[list[str], int]:
    """``new ...`` at ``toks[i]`` -> (python tokens, index after it)."""
    j = i + 1
    if j >= len(toks):
        return ["new"], j
    type_name = toks[j]
    j += 1
    if j < len(toks) and toks[j] == "<":  # generics
        depth = 0
        while j < len(toks):
            depth += toks[j].count("<") - toks[j].count(">") if set(toks[j]) <= {"<", ">"} else 0
            j += 1
            if depth <= 0:
                break
    if j < len(toks) and toks[j] == "[":
        dims: list[list[str]] = []
        while j < len(toks) and toks[j] == "[":
            k = _match_fwd(toks, j)
            dims.append(toks[j + 1:k])
            j = k + 1
        if j < len(toks) and toks[j] == "{":  # new int [ ] { 1 , 2 }
            k = _match_fwd(toks, j)
            inner = _expr(toks[j + 1:k], scope)
            inner = [("[" if t == "{" else "]" if t == "}" else t) for t in inner]
            return ["["] + inner + ["]"], k + 1
        fill = _default([type_name])
        sizes = [_expr(d, scope) for d in dims if d]
        if not sizes:
            return ["[", "]"], j
        out = ["["] + fill.split() + ["]", "*", "("] + sizes[-1] + [")"]
        for size in reversed(sizes[:-1]):
            out = ["["] + out + ["for", "_", "in", "range", "("] + size + [")", "]"]
        return out, j
    if j < len(toks) and toks[j] == "(":
        k = _match_fwd(toks, j)
        args = _expr(toks[j + 1:k], scope)
        if type_name in ("ArrayList", "LinkedList", "Vector", "Stack", "ArrayDeque",
                         "PriorityQueue"):
            return (["list", "("] + args + [")"] if args and not args[0].isdigit()
                    else ["[", "]"]), k + 1
        if type_name in ("HashMap", "TreeMap", "LinkedHashMap"):
            return ["{", "}"], k + 1
        if type_name in ("HashSet", "TreeSet", "LinkedHashSet"):
            return ["set", "("] + args + [")"], k + 1
        if type_name in ("StringBuilder", "StringBuffer", "String"):
            return (args if args else ['""']), k + 1
        return [type_name, "("] + args + [")"], k + 1
    return ["new", type_name], j


def _ternary(toks: list[str]) -> list[str]:
    """``c ? a : b`` -> ``( a ) if c else ( b )`` at the top level of ``toks``."""
    depth, q = 0, -1
    for k, t in enumerate(toks):
        if t in _OPEN:
            depth += 1
        elif t in _CLOSE:
            depth -= 1
        elif t == "?" and depth == 0:
            q = k
            break
    if q < 0:
        return toks
    depth, nest, c = 0, 0, -1
    for k in range(q + 1, len(toks)):
        t = toks[k]
        if t in _OPEN:
            depth += 1
        elif t in _CLOSE:
            depth -= 1
        elif t == "?" and depth == 0:
            nest += 1
        elif t == ":" and depth == 0:
            if nest == 0:
                c = k
                break
            nest -= 1
    if c < 0:
        return toks
    cond, a, b = toks[:q], toks[q + 1:c], _ternary(toks[c + 1:])
    return ["("] + _ternary(a) + [")", "if"] + cond + ["else", "("] + b + [")"]


def _charlike(toks: list[str], scope: _Scope) -> bool:
    if len(toks) == 1:
        return toks[0] in scope.chars or (toks[0].startswith("'") and len(toks[0]) >= 3)
    return len(toks) >= 4 and toks[-1] == "]" and toks[0] in scope.strings and toks[1] == "["


def _char_arith(toks: list[str], scope: _Scope) -> list[str]:
    """``c - 'a'`` / ``s [ i ] - '0'`` / ``'a' + k`` -> ``ord`` on the char operands."""
    out = list(toks)
    k = 0
    while k < len(out):
        if out[k] in ("+", "-") and 0 < k < len(out) - 1:
            ls = _primary_start(out, k)
            left = out[ls:k]
            re_ = _primary_end(out, k + 1)
            right = out[k + 1:re_]
            lc, rc = _charlike(left, scope), _charlike(right, scope)
            if (lc or rc) and not (out[k] == "+" and (_is_str(left) or _is_str(right))):
                if (lc and not rc and left[0].startswith('"')) or (rc and right[0].startswith('"')):
                    k += 1
                    continue
                new_right = ["ord", "("] + right + [")"] if rc else right
                new_left = ["ord", "("] + left + [")"] if lc else left
                out[ls:re_] = new_left + [out[k]] + new_right
                k = ls + len(new_left) + 1
                continue
        k += 1
    return out


def _is_str(toks: list[str]) -> bool:
    return len(toks) == 1 and toks[0].startswith('"')


def _has_float(toks: Sequence[str], scope: _Scope) -> bool:
    return any(_FLOAT_LIT.match(t) or t in scope.floats or t in ("float", "sqrt", "pow", "log",
                                                                 "random", "PI")
               for t in toks)


def _print_args(args: list[str]) -> list[str]:
    """Java string concatenation in print arguments -> ``str`` around non-string parts."""
    parts = _split_top(args, "+")
    if len(parts) > 1 and any(_is_str(p) for p in parts):
        out: list[list[str]] = []
        for p in parts:
            out.append(p if _is_str(p) or not p else ["str", "("] + p + [")"])
        return _join(out, "+")
    return args


def _calls(toks: list[str], scope: _Scope) -> list[str]:
    """Library calls, field reads and ``new`` (left to right, nesting via recursion)."""
    out: list[str] = []
    i = 0
    n = len(toks)
    while i < n:
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < n else ""
        nxt2 = toks[i + 2] if i + 2 < n else ""
        if t == "new":
            new, i = _new_expr(toks, i, scope)
            out += new
            continue
        if t == "System" and nxt == "." and nxt2 == "out" and i + 5 < n and toks[i + 5] == "(":
            meth = toks[i + 4]
            k = _match_fwd(toks, i + 5)
            args = _print_args(_calls(toks[i + 6:k], scope))
            if meth == "println":
                out += ["print", "("] + args + [")"]
            elif meth == "printf":
                fmt = _split_top(args, ",")
                out += ["print", "("] + fmt[0] + ["%", "("] + _join(fmt[1:], ",") + [",", ")",
                                                                                   ",", "end",
                                                                                   "=", '""', ")"]
            else:
                out += ["print", "("] + args + [",", "end", "=", '""', ")"]
            i = k + 1
            continue
        if nxt == "." and (t, nxt2) in _LIMITS:
            out += _LIMITS[(t, nxt2)].split()
            i += 3
            continue
        if t == "Math" and nxt == ".":
            if nxt2 == "random":
                out += ["random", ".", "random"]
            else:
                out += [_MATH_BUILTIN[nxt2]] if nxt2 in _MATH_BUILTIN else \
                    ["math", ".", _MATH_MODULE.get(nxt2, nxt2)]
            i += 3
            continue
        if nxt == "." and (t, nxt2) in _STATIC_CALLS and i + 3 < n and toks[i + 3] == "(":
            k = _match_fwd(toks, i + 3)
            inner = _calls(toks[i + 4:k], scope)
            fn = _STATIC_CALLS[(t, nxt2)]
            if fn == "bin_count":
                out += ["bin", "("] + inner + [")", ".", "count", "(", "'1'", ")"]
            else:
                out += [fn, "("] + inner + [")"]
            i = k + 1
            continue
        if t == "Character" and nxt == "." and nxt2 in _CHAR_METHODS and i + 3 < n \
                and toks[i + 3] == "(":
            k = _match_fwd(toks, i + 3)
            inner = _calls(toks[i + 4:k], scope)
            out += ["("] + inner + [")", ".", _CHAR_METHODS[nxt2], "(", ")"]
            i = k + 1
            continue
        if t == "Collections" and nxt == "." and i + 3 < n and toks[i + 3] == "(":
            k = _match_fwd(toks, i + 3)
            args = _split_top(_calls(toks[i + 4:k], scope), ",")
            if nxt2 in ("max", "min") and len(args) == 1:
                out += [nxt2, "("] + args[0] + [")"]
            elif nxt2 in ("sort", "reverse") and len(args) == 1:
                out += args[0] + [".", nxt2, "(", ")"]
            elif nxt2 == "addAll" and len(args) == 2 and args[0] and args[0][0] in scope.sets:
                out += args[0] + [".", "update", "("] + args[1] + [")"]
            elif nxt2 == "swap" and len(args) == 3:
                a, x, y = args
                out += a + ["[", *x, "]", ",", *a, "[", *y, "]", "=", *a, "[", *y, "]", ",",
                            *a, "[", *x, "]"]
            else:
                out += [t, ".", nxt2, "("] + _join(args, ",") + [")"]
            i = k + 1
            continue
        if t == "Arrays" and nxt2 == "stream" and i + 3 < n and toks[i + 3] == "(":
            k = _match_fwd(toks, i + 3)  # Arrays . stream ( a ) . max ( ) . getAsInt ( )
            rest = toks[k + 1:k + 5]
            if len(rest) == 4 and rest[0] == "." and rest[1] in ("max", "min", "sum") \
                    and rest[2:] == ["(", ")"]:
                out += [rest[1], "("] + _calls(toks[i + 4:k], scope) + [")"]
                k += 4
                if toks[k + 1:k + 3] in ([".", "getAsInt"], [".", "getAsDouble"],
                                         [".", "getAsLong"]):
                    k += 4
                i = k + 1
                continue
        if t == "System" and nxt2 == "exit" and i + 3 < n and toks[i + 3] == "(":
            k = _match_fwd(toks, i + 3)
            out += ["sys", ".", "exit", "("] + _calls(toks[i + 4:k], scope) + [")"]
            i = k + 1
            continue
        if t == "Arrays" and nxt == "." and i + 3 < n and toks[i + 3] == "(":
            k = _match_fwd(toks, i + 3)
            args = _split_top(_calls(toks[i + 4:k], scope), ",")
            if nxt2 == "sort" and len(args) == 1:
                out += args[0] + [".", "sort", "(", ")"]
            elif nxt2 == "sort" and len(args) == 3:
                a, lo, hi = args
                out += a + ["[", *lo, ":", *hi, "]", "=", "sorted", "("] + a + ["[", *lo, ":",
                                                                              *hi, "]", ")"]
            elif nxt2 == "fill" and len(args) == 4:
                a, lo, hi, v = args
                out += a + ["[", *lo, ":", *hi, "]", "=", "["] + v + ["]", "*", "(", *hi, "-",
                                                                     *lo, ")"]
            elif nxt2 == "fill" and len(args) == 2:
                out += args[0] + ["[", ":", "]", "=", "["] + args[1] + ["]", "*", "len", "("] \
                    + args[0] + [")"]
            else:
                out += ["list", "("] + args[0] + [")"] if nxt2 in ("copyOf", "asList") \
                    else [t, ".", nxt2, "("] + _join(args, ",") + [")"]
            i = k + 1
            continue
        if t == "." and _NAME.match(nxt) and out:
            start = _primary_start(out, len(out))
            recv = out[start:]
            has_call = nxt2 == "("
            k = _match_fwd(toks, i + 2) if has_call else i + 1
            args = _calls(toks[i + 3:k], scope) if has_call else []
            new = _method(recv, nxt, args, has_call, scope)
            if new is not None:
                del out[start:]
                out += new
                i = k + 1
                continue
        if t in ("(", "[") and i + 1 < n:  # recurse into groups so that inner calls see recv
            k = _match_fwd(toks, i)
            out += [t] + _calls(toks[i + 1:k], scope) + ([toks[k]] if k > i else [])
            i = k + 1
            continue
        out.append(t)
        i += 1
    return out


def _method(recv: list[str], name: str, args: list[str], call: bool,
            scope: _Scope) -> list[str] | None:
    """``recv . name ( args )`` -> Python tokens, or None to leave it as it is."""
    base = recv[0] if recv else ""
    if not call:
        if name == "length":
            return ["len", "("] + recv + [")"]
        return None
    if name in ("length", "size") and not args:
        return ["len", "("] + recv + [")"]
    if name == "charAt" or (name == "get" and base not in scope.maps):
        return recv + ["["] + args + ["]"]
    if name == "elementAt":
        return recv + ["["] + args + ["]"]
    if name == "equals":
        return ["("] + recv + ["==", "("] + args + [")", ")"]
    if name in ("contains", "containsKey"):
        return ["("] + ["("] + args + [")", "in"] + recv + [")"]
    if name == "add" and base not in scope.sets and len(_split_top(args, ",")) == 1:
        return recv + [".", "append", "("] + args + [")"]
    if name in ("isEmpty", "empty"):
        return ["(", "len", "("] + recv + [")", "==", "0", ")"]
    if name in ("keySet", "entrySet", "values") and not args:
        return recv + [".", {"keySet": "keys", "entrySet": "items"}.get(name, name), "(", ")"]
    if name in ("getKey", "getValue", "getFirst", "getSecond") and not args:
        return recv + ["[", "0" if name in ("getKey", "getFirst") else "1", "]"]
    if name == "toCharArray":
        return ["list", "("] + recv + [")"]
    if name == "toString":
        return ["str", "("] + recv + [")"] if not args else None
    if name in ("peek", "lastElement", "getLast", "peekLast") and not args:
        return recv + ["[", "-", "1", "]"]
    if name in ("getOrDefault",):
        return recv + [".", "get", "("] + args + [")"]
    if name == "substring":
        parts = _split_top(args, ",")
        if len(parts) == 2:
            return recv + ["["] + parts[0] + [":"] + parts[1] + ["]"]
        return recv + ["["] + parts[0] + [":", "]"]
    if name == "append" and base in scope.strings:
        return None  # handled as a statement (s = s + x)
    if name in _STRING_METHODS:
        new = _STRING_METHODS[name]
        if new == "__getitem__":
            return recv + ["["] + args + ["]"]
        return recv + [".", new, "("] + args + [")"]
    return None


def _casts(toks: list[str]) -> list[str]:
    out = list(toks)
    k = 0
    while k + 3 < len(out):
        if out[k] == "(" and out[k + 1] in _CAST and out[k + 2] == ")" and \
                (k == 0 or not _NAME.match(out[k - 1]) or out[k - 1] in _KEYWORDS):
            end = _primary_end(out, k + 3)
            inner = out[k + 3:end]
            out[k:end] = [_CAST[out[k + 1]], "("] + inner + [")"]
        k += 1
    return out


def _simple(toks: list[str]) -> list[str]:
    out: list[str] = []
    for k, t in enumerate(toks):
        m = _NUM_SUFFIX.match(t)
        if m:
            t = m.group(1) or m.group(2)
        nxt = toks[k + 1] if k + 1 < len(toks) else ""
        out.append({"&&": "and", "||": "or", "true": "True", "false": "False", "null": "None",
                    ">>>": ">>", "!": "not"}.get(t, t) if not (t == "!" and nxt == "=") else t)
    return out


def _expr(toks: list[str], scope: _Scope) -> list[str]:
    """One Java expression (no assignment statements inside) -> Python tokens."""
    toks = _simple(list(toks))
    toks = _calls(toks, scope)
    toks = _casts(toks)
    toks = _char_arith(toks, scope)
    if "/" in toks and not _has_float(toks, scope):
        toks = ["//" if t == "/" else t for t in toks]
    if "?" in toks:
        toks = _ternary_all(toks)
    return toks


def _ternary_all(toks: list[str]) -> list[str]:
    """Ternaries at every bracket level, each argument separately."""
    out: list[str] = []
    i = 0
    while i < len(toks):
        if toks[i] in ("(", "["):
            k = _match_fwd(toks, i)
            inner = _split_top(toks[i + 1:k], ",")
            out += [toks[i]] + _join([_ternary_all(p) for p in inner], ",") + [toks[k]]
            i = k + 1
        else:
            out.append(toks[i])
            i += 1
    return _join([_ternary(p) for p in _split_top(out, ",")], ",")


# ---------------------------------------------------------------- statements

_ASSIGN_OPS = ("=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", ">>>=")

class _Translator:
    def __init__(self, toks: list[str]) -> None:
        self.t = toks
        self.i = 0
        self.lines: list[tuple[int, list[str]]] = []
        self.scope = _Scope()

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.t[j] if j < len(self.t) else ""

    def emit(self, level: int, toks: list[str]) -> None:
        self.lines.append((level, toks))

    def until(self, stop: str) -> list[str]:
        """Tokens up to the top-level ``stop`` (consumed, not returned)."""
        start = self.i
        depth = 0
        while self.i < len(self.t):
            tok = self.t[self.i]
            if tok in _OPEN:
                depth += 1
            elif tok in _CLOSE:
                if depth == 0:
                    break
                depth -= 1
            elif tok == stop and depth == 0:
                out = self.t[start:self.i]
                self.i += 1
                return out
            self.i += 1
        return self.t[start:self.i]

    def group(self) -> list[str]:
        """A parenthesised group's inside (the group consumed)."""
        if self.peek() != "(":
            return []
        k = _match_fwd(self.t, self.i)
        out = self.t[self.i + 1:k]
        self.i = k + 1
        return out

    # -- declarations
    def _decl_type(self, toks: list[str]) -> int:
        """Length of a leading type in ``toks`` (0 when it is not a declaration)."""
        k = 0
        while k < len(toks) and toks[k] in _MODIFIERS:
            k += 1
        if k >= len(toks):
            return 0
        head = toks[k]
        if head in _KEYWORDS or not _NAME.match(head) or head in ("return", "new", "throw"):
            return 0
        k += 1
        while k + 1 < len(toks) and toks[k] == "." and _NAME.match(toks[k + 1]):  # Map . Entry
            k += 2
        if k < len(toks) and toks[k] == "<":
            depth = 0
            while k < len(toks):
                if set(toks[k]) <= {"<", ">"}:
                    depth += toks[k].count("<") - toks[k].count(">")
                k += 1
                if depth <= 0:
                    break
        while k + 1 < len(toks) and toks[k] == "[" and toks[k + 1] == "]":
            k += 2
        if k < len(toks) and _NAME.match(toks[k]) and toks[k] not in _KEYWORDS:
            return k
        return 0

    def simple_statement(self, toks: list[str]) -> list[list[str]]:
        """A statement without its ``;`` -> Python lines (tokens each)."""
        if not toks:
            return []
        n = self._decl_type(toks)
        if n:
            type_toks = [t for t in toks[:n] if t not in _MODIFIERS]
            out: list[list[str]] = []
            for part in _split_top(toks[n:], ","):
                if not part:
                    continue
                name = part[0]
                rest = part[1:]
                dims = 0
                while len(rest) >= 2 and rest[0] == "[" and rest[1] == "]":
                    rest, dims = rest[2:], dims + 1
                self.scope.declare(type_toks + ["["] * dims, name)
                if rest and rest[0] == "=":
                    value = rest[1:]
                    if value and value[0] == "{":
                        k = _match_fwd(value, 0)
                        inner = _expr(value[1:k], self.scope)
                        inner = ["[" if t == "{" else "]" if t == "}" else t for t in inner]
                        out.append([name, "=", "["] + inner + ["]"])
                    else:
                        out.append([name, "="] + _expr(value, self.scope))
                else:
                    out.append([name, "=", *_default(type_toks if not dims else ["?"]).split()])
            return out
        # ++ / -- as statements
        if len(toks) >= 2 and toks[-1] in ("++", "--") and "=" not in toks:
            return [_expr(toks[:-1], self.scope) + ["+=" if toks[-1] == "++" else "-=", "1"]]
        if toks[0] in ("++", "--"):
            return [_expr(toks[1:], self.scope) + ["+=" if toks[0] == "++" else "-=", "1"]]
        # x . put ( k , v ) ; sb . append ( x )
        if len(toks) > 4 and toks[1] == "." and toks[3] == "(" and toks[-1] == ")":
            args = _split_top(toks[4:-1], ",")
            if toks[2] == "put" and len(args) == 2:
                return [[toks[0], "["] + _expr(args[0], self.scope) + ["]", "="]
                        + _expr(args[1], self.scope)]
            if toks[2] == "append" and toks[0] in self.scope.strings and len(args) == 1:
                return [[toks[0], "+=", "str", "("] + _expr(args[0], self.scope) + [")"]]
            if toks[2] == "setCharAt" and len(args) == 2:
                name = toks[0]
                i, c = _expr(args[0], self.scope), _expr(args[1], self.scope)
                return [[name, "=", name, "[", ":"] + i + ["]", "+"] + c + ["+", name, "["]
                        + i + ["+", "1", ":", "]"]]
        # assignment (also compound): split at the first top-level assignment operator
        depth = 0
        for k, tok in enumerate(toks):
            if tok in _OPEN:
                depth += 1
            elif tok in _CLOSE:
                depth -= 1
            elif depth == 0 and tok in ("=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=",
                                        "<<=", ">>=", ">>>="):
                target = _expr(toks[:k], self.scope)
                rhs_toks = toks[k + 1:]
                # chained a = b = 0
                op = {">>>=": ">>="}.get(tok, tok)
                if op == "/=" and not _has_float(toks, self.scope):
                    op = "//="
                if "=" in rhs_toks and op == "=":
                    rest = self.simple_statement(rhs_toks)
                    if rest:
                        return [target + ["="] + rest[-1]]
                rhs = _expr(rhs_toks, self.scope)
                if rhs and rhs[-1] in ("++", "--") and len(rhs) == 2:  # x = y ++
                    return [target + ["="] + rhs[:1], [rhs[0], "+=" if rhs[-1] == "++" else "-=",
                                                      "1"]]
                return [target + [op] + rhs]
        return [_expr(toks, self.scope)]

    # -- statements
    def statement(self, level: int) -> None:
        tok = self.peek()
        if tok == "":
            return
        if tok == "{":
            self.i += 1
            self.block_body(level)
            return
        if tok == ";":
            self.i += 1
            return
        if tok == "if":
            self.i += 1
            cond = _expr(self.group(), self.scope)
            self.emit(level, ["if"] + cond + [":"])
            self.body(level + 1)
            while self.peek() == "else":
                self.i += 1
                if self.peek() == "if":
                    self.i += 1
                    cond = _expr(self.group(), self.scope)
                    self.emit(level, ["elif"] + cond + [":"])
                else:
                    self.emit(level, ["else", ":"])
                self.body(level + 1)
            return
        if tok == "while":
            self.i += 1
            cond = _expr(self.group(), self.scope)
            self.emit(level, ["while"] + cond + [":"])
            self.body(level + 1)
            return
        if tok == "do":
            self.i += 1
            self.emit(level, ["while", "True", ":"])
            self.body(level + 1)
            if self.peek() == "while":
                self.i += 1
                cond = _expr(self.group(), self.scope)
                if self.peek() == ";":
                    self.i += 1
                self.emit(level + 1, ["if", "not", "("] + cond + [")", ":"])
                self.emit(level + 2, ["break"])
            return
        if tok == "for":
            self.i += 1
            self.for_loop(self.group(), level)
            return
        if tok == "switch":
            self.i += 1
            self.switch(_expr(self.group(), self.scope), level)
            return
        if tok == "return":
            self.i += 1
            value = self.until(";")
            self.emit(level, ["return"] + (_expr(value, self.scope) if value else []))
            return
        if tok in ("break", "continue"):
            self.i += 1
            self.until(";")
            self.emit(level, [tok])
            return
        if tok == "try":
            self.i += 1
            self.emit(level, ["try", ":"])
            self.body(level + 1)
            while self.peek() in ("catch", "finally"):
                kind = self.t[self.i]
                self.i += 1
                if kind == "catch":
                    self.group()
                    self.emit(level, ["except", "Exception", ":"])
                else:
                    self.emit(level, ["finally", ":"])
                self.body(level + 1)
            return
        if tok == "throw":
            self.i += 1
            self.until(";")
            self.emit(level, ["raise", "Exception", "(", ")"])
            return
        start = self.i
        toks = self.until(";")
        if self.i == start:  # a stray closing bracket: skip it
            self.i += 1
            return
        for line in self.simple_statement(toks):
            self.emit(level, line)

    def body(self, level: int) -> None:
        before = len(self.lines)
        if self.peek() == "{":
            self.i += 1
            self.block_body(level)
        else:
            self.statement(level)
        if len(self.lines) == before:
            self.emit(level, ["pass"])

    def block_body(self, level: int) -> None:
        """Statements up to the matching ``}`` (consumed)."""
        while self.i < len(self.t) and self.peek() != "}":
            before = self.i
            self.statement(level)
            if self.i == before:
                self.i += 1
        if self.peek() == "}":
            self.i += 1

    def for_loop(self, head: list[str], level: int) -> None:
        parts = _split_top(head, ";")
        if len(parts) != 3:  # for-each: for ( Type x : expr )
            colon = head.index(":") if ":" in head else -1
            if colon > 0:
                var = head[colon - 1]
                self.scope.declare(head[: colon - 1], var)
                self.emit(level, ["for", var, "in"] + _expr(head[colon + 1:], self.scope) + [":"])
            else:
                self.emit(level, ["while", "True", ":"])
            self.body(level + 1)
            return
        init, cond, update = parts
        rng = self._range(init, cond, update)
        if rng is not None:
            self.emit(level, rng)
            self.body(level + 1)
            return
        for line in self.simple_statement(init) if init else []:
            self.emit(level, line)
        self.emit(level, ["while"] + (_expr(cond, self.scope) if cond else ["True"]) + [":"])
        mark = len(self.lines)
        self.body(level + 1)
        body_lines = self.lines[mark:]
        if body_lines == [(level + 1, ["pass"])]:
            self.lines = self.lines[:mark]
        for u in _split_top(update, ","):
            for line in self.simple_statement(u):
                self.emit(level + 1, line)

    def _range(self, init: list[str], cond: list[str], update: list[str]) -> list[str] | None:
        """``for ( int i = a ; i < b ; i ++ )`` -> ``for i in range ( a , b ) :``."""
        n = self._decl_type(init)
        decl = init[n:] if n else init
        # a loop variable declared outside lives on after the loop (Java leaves it at the
        # bound, range at the bound - 1): only loops that declare it become range
        if not n or len(decl) < 3 or decl[1] != "=" or "," in decl:
            return None
        var = decl[0]
        if self.i < len(self.t):  # the body must not assign the variable
            end = _match_fwd(self.t, self.i) if self.peek() == "{" else self.i
            while self.peek() != "{" and end < len(self.t) and self.t[end] != ";":
                end += 1
            body = self.t[self.i:end + 1]
            for k, tok in enumerate(body):
                if tok == var and ((k + 1 < len(body) and body[k + 1] in _ASSIGN_OPS + ("++", "--"))
                                   or (k > 0 and body[k - 1] in ("++", "--"))):
                    return None
        if n:
            self.scope.declare(init[:n], var)
        start = _expr(decl[2:], self.scope)
        if len(cond) < 3 or cond[0] != var or cond[1] not in ("<", "<=", ">", ">="):
            return None
        bound = _expr(cond[2:], self.scope)
        if var in bound or "and" in bound or "or" in bound:
            return None
        if update in ([var, "++"], ["++", var]):
            step = None
        elif update in ([var, "--"], ["--", var]):
            step = ["-", "1"]
        elif len(update) >= 3 and update[0] == var and update[1] in ("+=", "-="):
            step = _expr(update[2:], self.scope)
            if update[1] == "-=":
                step = ["-"] + (step if len(step) == 1 else ["("] + step + [")"])
        else:
            return None
        down = step is not None and step[0] == "-"
        if cond[1] in ("<", "<=") and down or cond[1] in (">", ">=") and not down:
            return None
        if cond[1] == "<=":
            bound = bound + ["+", "1"]
        elif cond[1] == ">=":
            bound = bound + ["-", "1"]
        args = start + [","] + bound + ([","] + step if step is not None else [])
        return ["for", var, "in", "range", "("] + args + [")", ":"]

    def switch(self, subject: list[str], level: int) -> None:
        if self.peek() != "{":
            return
        end = _match_fwd(self.t, self.i)
        self.i += 1
        first = True
        labels: list[list[str]] = []
        while self.i < end:
            tok = self.peek()
            if tok in ("case", "default"):
                self.i += 1
                if tok == "case":
                    labels.append(_expr(self.until(":"), self.scope))
                else:
                    self.until(":")
                    labels.append([])
                continue
            is_default = any(not lab for lab in labels)
            if is_default:
                head = ["else", ":"] if not first else ["if", "True", ":"]
            else:
                cond = _join([subject + ["=="] + lab for lab in labels], "or")
                head = ["if" if first else "elif"] + cond + [":"]
            self.emit(level, head)
            first, labels = False, []
            mark = len(self.lines)
            while self.i < end and self.peek() not in ("case", "default"):
                before = self.i
                if self.peek() == "break":
                    self.i += 1
                    self.until(";")
                    continue
                self.statement(level + 1)
                if self.i == before:
                    self.i += 1
            if len(self.lines) == mark:
                self.emit(level + 1, ["pass"])
        self.i = end + 1

    def function(self) -> list[tuple[int, list[str]]]:
        toks = self.t
        try:
            p = toks.index("(")
        except ValueError:
            return []
        name = toks[p - 1] if p else "f"
        close = _match_fwd(toks, p)
        params: list[str] = []
        for part in _split_top(toks[p + 1:close], ","):
            words = [w for w in part if w not in _MODIFIERS and w not in ("[", "]", "...")]
            if words:
                self.scope.declare(part[:-1], words[-1])
                if part.count("[") and part[0] in ("char",):
                    self.scope.strings.add(words[-1])
                params.append(words[-1])
        self.emit(0, ["def", name, "("] + _join([[q] for q in params], ",") + [")", ":"])
        self.i = close + 1
        while self.i < len(toks) and toks[self.i] != "{":  # throws ...
            self.i += 1
        self.i += 1
        mark = len(self.lines)
        self.block_body(1)
        if len(self.lines) == mark:
            self.emit(1, ["pass"])
        return self.lines


def _layout(lines: list[tuple[int, list[str]]]) -> str:
    out: list[str] = []
    level = 0
    for lvl, toks in lines:
        while level < lvl:
            out.append(INDENT)
            level += 1
        while level > lvl:
            out.append(DEDENT)
            level -= 1
        out += toks + [NEW_LINE]
    out += [DEDENT] * level
    return " ".join(out)


_GLUE = "\x01"  # joins the pieces of one string literal while the rules run


def _merge_literals(toks: list[str]) -> list[str]:
    """Glue the TransCoder pieces of each string / char literal (``" { "``) into one token,
    so that brackets and operators inside literals are not read as code."""
    out: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        q = t[0] if t and t[0] in "\"'" else ""
        if q and not (len(t) >= 2 and t.endswith(q) and not t.endswith("\\" + q)):
            j = i + 1
            while j < len(toks) and not (toks[j].endswith(q) and not toks[j].endswith("\\" + q)):
                j += 1
            if j < len(toks):
                out.append(_GLUE.join(toks[i:j + 1]))
                i = j + 1
                continue
        out.append(t)
        i += 1
    return out


def _drop_generics(toks: list[str]) -> list[str]:
    """``HashMap < Integer , List < Integer > >`` -> ``HashMap`` (type arguments only:
    the bracket must follow a capitalised name and hold type-like tokens)."""
    out: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t in ("<", "<>") and out and out[-1][:1].isupper() and _NAME.match(out[-1]):
            if t == "<>":
                i += 1
                continue
            depth, j = 0, i
            while j < len(toks):
                tok = toks[j]
                if set(tok) <= {"<", ">"}:
                    depth += tok.count("<") - tok.count(">")
                elif not (_NAME.match(tok) or tok in (",", "?", ".", "[", "]", "extends")):
                    break
                j += 1
                if depth <= 0:
                    break
            if depth == 0 and j > i:
                i = j
                continue
        out.append(t)
        i += 1
    return out


# Python builtins the rules call: a Java variable of that name (``int len``) is renamed
_SHADOWED = {"len", "max", "min", "abs", "str", "list", "set", "sum", "pow",
             "print", "range", "ord", "chr", "round", "sorted", "dict", "bin", "math", "sys",
             "map", "type", "id", "next", "iter", "all", "any", "hash", "zip", "input", "bool",
             "reversed", "divmod", "object", "format", "filter", "slice", "tuple", "not", "and",
             "or", "in", "is", "def", "lambda", "pass", "None", "True", "False", "del",
             "global", "from", "as", "with", "yield", "elif", "except", "raise", "import",
             "nonlocal", "assert"}


def _rename_shadowing(toks: list[str]) -> list[str]:
    """``int len = 0 ; ... len ++`` -> ``len_``: names declared in the Java (a name right
    after a type or ``]`` and before ``= , ; ) [ :``) that would hide a builtin."""
    declared = set()
    for k in range(1, len(toks) - 1):
        t = toks[k]
        if t in _SHADOWED and (_NAME.match(toks[k - 1]) or toks[k - 1] == "]") \
                and toks[k - 1] not in ("return", "new", ".", "case") \
                and toks[k + 1] in ("=", ",", ";", ")", "[", ":"):
            declared.add(t)
    if not declared:
        return toks
    return [t + "_" if t in declared and (k == 0 or toks[k - 1] != ".") else t
            for k, t in enumerate(toks)]


def translate_java(java: str) -> str:
    """Rule-based translation of one tokenised Java method -> TransCoder Python token text."""
    toks = _rename_shadowing(_drop_generics(_merge_literals(java.split())))
    try:
        text = _layout(_Translator(toks).function())
    except (IndexError, ValueError, RecursionError):
        return java
    return text.replace(_GLUE, " ")


# ---------------------------------------------------------------- repair of model output

def _fix_line(toks: list[str], scope: _Scope) -> list[str]:
    while toks and toks[-1] in (";", "{", "}"):
        toks = toks[:-1]
    toks = [t for t in toks if t not in ("{", "}")] if toks and toks[-1] == ":" else toks
    if not toks:
        return toks
    tr = _Translator(toks)
    tr.scope = scope
    if toks[0] in ("if", "elif", "while", "for", "def", "else", "return", "print", "try",
                   "except", "with", "class", "import", "from", "pass", "break", "continue"):
        head, tail = toks[:1], toks[1:]
        if head[0] == "return":
            return head + _expr(tail, scope)
        if head[0] in ("if", "elif", "while") and tail and tail[-1] == ":":
            return head + _expr(tail[:-1], scope) + [":"]
        return toks
    lines = tr.simple_statement([t for t in toks if t != ";"])
    return lines[0] if len(lines) == 1 else toks


def fix_tokens(token_text: str) -> str:
    """Line-by-line Java leftovers -> Python in a (model's) token text, layout kept."""
    scope = _Scope()
    out: list[str] = []
    line: list[str] = []

    def flush() -> None:
        if line:
            out.extend(_fix_line(line, scope))
            line.clear()

    for tok in _drop_generics(_merge_literals(token_text.split())):
        if tok in (NEW_LINE, INDENT, DEDENT):
            flush()
            out.append(tok)
        else:
            line.append(tok)
    flush()
    return " ".join(out).replace(_GLUE, " ")


def candidates(token_text: str, java: str | None = None, *,
               rule_first: bool = False) -> list[str]:
    """Candidate translations in order of preference: the model text with its line fixes,
    the model text as it is, the rule translation of ``java`` (first with ``rule_first``)."""
    out = [fix_tokens(token_text), token_text]
    if java is not None:
        rule = translate_java(java)
        out = [rule] + out if rule_first else out + [rule]
    return out


def repair(token_text: str, java: str | None = None, *, rule_first: bool = False) -> str:
    """The first of :func:`candidates` that parses as Python and holds no Java ``++`` /
    ``--`` (the model text when none does)."""
    for cand in candidates(token_text, java, rule_first=rule_first):
        if _acceptable(cand):
            return cand
    return token_text
