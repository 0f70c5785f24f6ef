"""C2C computational accuracy by differential testing (torch-free).

CodeBLEU rewards surface overlap; a developer porting a function needs one that computes
the same thing. For each (Java, reference Python, translated Python) triple:

1. the Java signature gives the entry point and the parameter types (``int``, ``long``,
   ``double``/``float``, ``boolean``, ``char``, ``String``, arrays and 2-D arrays of those,
   ``List``/``Vector``/``Queue`` of numbers read as lists);
2. :func:`generate_inputs` draws ``n_inputs`` argument lists from a seed derived from the
   key (small values: g4g functions loop and recurse on them). An ``int`` named like a size
   (``n``, ``size``, ``len``, ``m``, ``rows``...) gets the length of the array it most
   likely describes, so that ``f(arr, n)`` is called as the Java caller would; a
   parameter of the reference that the Java method lacks (it read a class field) is
   drawn from its name (``arr``-like: an int array, else an int);
3. the reference and the translation each run in their **own subprocess** (never in this
   process) with a time limit per input (``SIGALRM``), a CPU-time and an address-space
   limit (``resource.setrlimit``), ``PYTHONHASHSEED=0``, in a scratch working folder;
   the namespace pre-imports ``math``, ``sys``, ``random`` (seeded), ``heapq``, ``bisect``,
   ``collections``, ``itertools``, ``functools`` and ``string`` for both sides, as the
   AVATAR references use ``math.`` without importing it. The snippets also lost their
   module constants: a capitalised name the code reads but never binds (``MAX``,
   ``MAX_CHAR``) is given 256, and when the reference reads an unbound dimension name
   (``N``, ``M``, ``R``, ``C``, ``n``...; :data:`DIM_CONSTANTS`) those get 4 and every
   generated array has 4 elements (2-D: 4x4); ``mod``/``MOD`` is 10**9 + 7 -- the same
   values on both sides. A ``Queue``/``Deque`` parameter arrives as a ``collections.deque``;
4. per input the observable behaviour is the return value, what the function printed and
   the state of the list arguments after the call (functions that sort or fill an array in
   place). A function returning ``None`` is judged on what it printed and mutated.
   Arguments are bound by name: each Python parameter takes the Java argument of the same
   name, else the one at its position (a translation that drops Java's redundant ``n``
   is still called correctly).

Comparison (:func:`same_outcome`): numbers compare with a relative tolerance of 1e-6 and
``int``/``float``/``bool`` compare by value (Java's ``int`` division translated as ``/``
returns ``7.0`` for ``7``: same value, accepted); tuples equal lists; printed text is
compared word by word after splitting on whitespace, numeric words by value (so
``print(a, b)`` and ``print(str(a) + " " + str(b))`` agree). An input on which the
*reference* raises or times out is not used; a translation passes when at least one
input was usable and it agrees on every usable input. A pair whose reference has no
usable input is *untestable* and counts as a failure (listed by the gold check).

Time limits are wall-clock: on a loaded machine a slow reference input may time out in
one run and not in another, so counts can move by a pair between runs.

This is a test harness, not a sandbox: the code runs as the calling user (in a temporary
folder, with rlimits). Run it on code you would run anyway.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

N_INPUTS = 10
TIME_PER_INPUT = 1.0  # seconds of wall time per call
MEMORY_MB = 1024  # address-space limit of each subprocess
REL_TOL = 1e-6
# value of a capitalised global the code reads but never defines (MAX, MAX_CHAR, N): the
# AVATAR snippets lost their module constants; both sides get the same value
MODULE_CONSTANT = 256

_INT = {"int", "long", "short", "byte", "Integer", "Long", "Short", "Byte", "BigInteger"}
_FLOAT = {"double", "float", "Double", "Float"}
_BOOL = {"boolean", "Boolean"}
_CHAR = {"char", "Character"}
_STR = {"String", "StringBuilder", "StringBuffer", "CharSequence"}
_COLLECTIONS = {"List", "ArrayList", "LinkedList", "Vector", "Queue", "Deque", "ArrayDeque",
                "Stack", "Set", "HashSet", "TreeSet", "PriorityQueue", "Collection"}
_MODIFIERS = {"public", "private", "protected", "static", "final", "synchronized", "abstract",
              "native", "strictfp"}
# int parameters that describe the size of an array argument
_ROW_NAMES = {"n", "size", "len", "length", "l", "sz", "n1", "len1", "size1", "r", "row", "rows",
              "nrows", "num", "count", "cnt", "arr_size", "array_size"}
_COL_NAMES = {"m", "n2", "len2", "size2", "c", "col", "cols", "column", "columns", "ncols"}


@dataclass
class Param:
    name: str
    base: str  # "int", "float", "bool", "char", "str" or "?" (unknown: treated as int)
    dims: int  # 0 scalar, 1 list, 2 list of lists
    queue: bool = False  # a Java Queue / Deque: passed as a collections.deque


@dataclass
class Signature:
    name: str
    params: list[Param]


def _matching(tokens: Sequence[str], start: int, open_: str, close: str) -> int:
    depth = 0
    for k in range(start, len(tokens)):
        if tokens[k] == open_:
            depth += 1
        elif tokens[k] == close:
            depth -= 1
            if depth == 0:
                return k
    return -1


def _split_params(tokens: Sequence[str]) -> list[list[str]]:
    """Split at commas outside ``< >`` (``Map < Integer , Integer > m``)."""
    out: list[list[str]] = [[]]
    angle = 0
    for t in tokens:
        angle += t.count("<") - t.count(">") if set(t) <= {"<", ">"} else 0
        if t == "," and angle <= 0:
            out.append([])
        else:
            out[-1].append(t)
    return [p for p in out if p]


def _base_type(words: list[str]) -> tuple[str, int]:
    """(base, extra dims) of a Java type's words, e.g. ``List < Integer >`` -> (int, 1)."""
    words = [w for w in words if w not in ("final",) and not w.startswith("@")]
    if not words:
        return "?", 0
    head = words[0].split(".")[-1]
    if head in _COLLECTIONS:
        inner = [w for w in words[1:] if w not in ("<", ">", ">>", ",")]
        base, dims = _base_type(inner) if inner else ("int", 0)
        return base, dims + 1
    for group, base in ((_INT, "int"), (_FLOAT, "float"), (_BOOL, "bool"), (_CHAR, "char"),
                        (_STR, "str")):
        if head in group:
            return base, 0
    return "?", 0


def java_signature(java: str) -> Signature | None:
    """Entry-point name and parameters of the first method in TransCoder-tokenised Java."""
    toks = java.split()
    try:
        i = toks.index("(")
    except ValueError:
        return None
    if i == 0:
        return None
    name = toks[i - 1]
    end = _matching(toks, i, "(", ")")
    if end < 0 or not re.match(r"^[A-Za-z_$][\w$]*$", name):
        return None
    params: list[Param] = []
    for words in _split_params(toks[i + 1:end]):
        words = [w for w in words if w not in _MODIFIERS]
        dims = words.count("[") + words.count("[]") + words.count("...")
        words = [w for w in words if w not in ("[", "]", "[]", "...")]
        if len(words) < 2:
            return None
        base, extra = _base_type(words[:-1])
        queue = words[0].split(".")[-1] in ("Queue", "Deque", "ArrayDeque")
        params.append(Param(words[-1], base, dims + extra, queue))
    return Signature(name, params)


# ---------------------------------------------------------------- inputs

def _scalar(base: str, rng: random.Random, big: bool, alphabet: str,
            index_below: int = 0) -> object:
    if base == "float":
        return round(rng.uniform(0.5, 50.0 if big else 10.0), 2)
    if base == "bool":
        return rng.random() < 0.5
    if base == "char":
        return rng.choice(alphabet)
    if base == "str":
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
    if big:
        return rng.randint(0, 100)
    if index_below < 0:  # values 1..n of an array of n (permutations, "missing number")
        return rng.randint(1, -index_below)
    return rng.randint(0, index_below - 1) if index_below else rng.randint(1, 12)


def generate_inputs(sig: Signature, n_inputs: int, seed: int,
                    fixed_size: int | None = None) -> list[list]:
    """``n_inputs`` argument lists for ``sig`` (JSON values), reproducible from ``seed``.

    Half the draws use small numbers (1..12), the other half larger ones (0..100); strings
    and chars come from lowercase letters, digits or ``01`` in turn (functions parsing a
    number or a bit string get usable text); arrays have 3..10 elements (the small ints
    are then valid indices of them: ``l``, ``r``, ``k``; one small draw in four fills the
    arrays with values 1..length, as for permutations), 2-D arrays are square in two
    draws out of three. Size-like ints follow the arrays (see the module
    docstring). ``fixed_size``: every array (and 2-D side) has that length -- for code
    that reads the dimensions from module constants (``N``, ``M``) instead of arguments.
    """
    rng = random.Random(seed)
    out: list[list] = []
    alphabets = ("abcdefghijklmnopqrstuvwxyz", "0123456789", "01", "abcab")
    has_1d = any(p.dims == 1 for p in sig.params)
    for k in range(n_inputs):
        big = k >= n_inputs // 2
        alphabet = alphabets[k % len(alphabets)]
        length = rng.randint(3, 10)
        rows = rng.randint(1, 5)
        cols = rows if k % 3 else rng.randint(1, 5)
        if fixed_size is not None:
            length = rows = cols = fixed_size
        args: list = []
        for p in sig.params:
            if p.dims == 0:  # with an array, small ints are valid indices of it
                args.append(_scalar(p.base, rng, big, alphabet, length if has_1d else 0))
            elif p.dims == 1:  # one small draw in four holds values 1..length
                bound = -length if k % 4 == 1 and not big else 0
                args.append([_scalar(p.base, rng, big, alphabet, bound) for _ in range(length)])
            else:
                args.append([[_scalar(p.base, rng, big, alphabet) for _ in range(cols)]
                             for _ in range(rows)])
        for j, p in enumerate(sig.params):
            if p.dims or p.base not in ("int", "?"):
                continue
            low = p.name.lower()
            if low in _ROW_NAMES or p.name == "N":
                args[j] = length if has_1d else rows
            elif low in _COL_NAMES:
                args[j] = length if has_1d else cols
        out.append(args)
    return out


# module constants that hold an array's dimensions in g4g code (``for i in range(N)``)
DIM_CONSTANTS = {"N", "M", "R", "C", "ROW", "COL", "ROWS", "COLS", "n", "m", "V"}
DIM_SIZE = 4
# lower-case constants of g4g code with one conventional value
NAMED_CONSTANTS = {"mod": 1_000_000_007, "MOD": 1_000_000_007}


def free_names(source: str) -> set[str]:
    """Names the code reads but never binds (parsed with ``ast``, not run)."""
    import ast
    import builtins

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
             and not isinstance(n.ctx, ast.Load)}
    bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
              for a in n.args + n.kwonlyargs}
    bound |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Load) and n.id not in bound
            and not hasattr(builtins, n.id)}


_ARRAY_NAMES = re.compile(r"^(arr|array|a|A|list|lst|nums|v|vec)\d*$")


def _add_python_params(sig: Signature, reference: str) -> None:
    """Parameters of the reference that the Java method lacks (a Java method reading class
    fields instead of arguments): ``arr``-like names become int arrays, others ints."""
    m = re.search(r"^\s*def\s+\w+\s*\(([^)]*)\)", reference, flags=re.M)
    if m is None:
        return
    known = {p.name for p in sig.params}
    names = [w.split("=")[0].strip() for w in m.group(1).split(",") if w.strip()]
    if len(names) <= len(sig.params):
        return
    for name in names:
        if name not in known and re.match(r"^[A-Za-z_]\w*$", name):
            sig.params.append(Param(name, "int", 1 if _ARRAY_NAMES.match(name) else 0))


def input_seed(key: str) -> int:
    return zlib.crc32(key.encode("utf-8"))


# ---------------------------------------------------------------- running

_RUNNER = r'''
import collections, io, json, os, signal, sys, resource, itertools, math, random
req = json.loads(sys.stdin.read())
res_fd = os.dup(1)
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 1)
os.dup2(null, 2)
results = os.fdopen(res_fd, "w")
mem = req["memory_mb"] * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
cpu = int(req["cpu_s"]) + 1
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
sys.setrecursionlimit(3000)
sys.set_int_max_str_digits(0)

class _Timeout(BaseException):
    pass

def _alarm(signum, frame):
    raise _Timeout()

signal.signal(signal.SIGALRM, _alarm)
NS = {"__name__": "__c2c__", "__builtins__": __builtins__}
if "np." in req["source"]:
    try:
        import numpy
        NS["np"] = numpy
    except ImportError:
        pass
exec("import math, sys, random, heapq, bisect, collections, itertools, functools, string\n"
     "from collections import *\nmt = math\n"
     "from math import (sqrt, ceil, floor, log, log2, log10, exp, sin, cos, tan, atan,\n"
     "                  gcd, factorial, pi, fabs, hypot, isqrt)\n"
     "INT_MAX = sys.maxsize\nINT_MIN = -sys.maxsize - 1", NS)

def canon(x, depth=0):
    if depth > 50:
        return {"obj": "deep"}
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, int):
        return x if abs(x) < 10 ** 300 else {"bigint": hex(x)}
    if isinstance(x, float):
        return x if math.isfinite(x) else {"float": repr(x)}
    if isinstance(x, (list, tuple, range)) or type(x).__name__ == "deque":
        return [canon(v, depth + 1) for v in itertools.islice(x, 100000)]
    if isinstance(x, (set, frozenset)):
        return {"set": sorted(json.dumps(canon(v, depth + 1), sort_keys=True) for v in x)}
    if isinstance(x, dict):
        return {"dict": sorted([json.dumps(canon(k, depth + 1), sort_keys=True),
                                canon(v, depth + 1)] for k, v in x.items())}
    if isinstance(x, (bytes, bytearray)):
        return x.decode("latin-1")
    if hasattr(x, "tolist"):  # numpy values and arrays
        return canon(x.tolist(), depth + 1)
    if hasattr(x, "__next__"):
        return [canon(v, depth + 1) for v in itertools.islice(x, 100000)]
    return {"obj": type(x).__name__}

def emit(obj):
    results.write(json.dumps(obj) + "\n")
    results.flush()

fatal = None
try:
    signal.setitimer(signal.ITIMER_REAL, req["time_per_input"] * 2)
    exec(compile(req["source"], "<translation>", "exec"), NS)
    signal.setitimer(signal.ITIMER_REAL, 0)
except SyntaxError as e:
    fatal = "SyntaxError: " + str(e.msg)
except BaseException as e:
    fatal = "while defining: " + type(e).__name__
if fatal is None:
    # capitalised names read but never bound: module constants the snippet lost
    import ast, builtins
    tree = ast.parse(req["source"])
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
             and not isinstance(n.ctx, ast.Load)}
    bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
              for a in n.args + n.kwonlyargs}
    for name, value in req["constants"].items():
        NS.setdefault(name, value)
    for n in ast.walk(tree):
        if (isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id.isupper()
                and n.id not in bound and n.id not in NS and not hasattr(builtins, n.id)):
            NS[n.id] = req["constant"]
sys.stdout = sys.__stdout__
fn = NS.get(req["name"])
if fatal is None and not callable(fn):
    fatal = "no function named " + req["name"]
if fatal is None:
    import inspect
    try:
        py_params = [p for p in inspect.signature(fn).parameters.values()
                     if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        py_params = []
names = req["names"]
SIZE_NAMES = set(req["size_names"])

def bind(values):
    """Arguments for the Python parameters: by name when Java has that name, else by
    position; a parameter with a default and no Java counterpart keeps its default."""
    out, used = [], {}
    for i, p in enumerate(py_params):
        if p.name in names:
            j = names.index(p.name)
        elif i < len(values) and names[i] not in [q.name for q in py_params]:
            j = i
        elif p.default is not p.empty:
            break
        elif p.name.lower() in SIZE_NAMES and any(isinstance(v, list) for v in values):
            out.append(len(next(v for v in values if isinstance(v, list))))
            continue
        else:
            j = i if i < len(values) else None
        if j is None:
            break
        value = values[j]
        if names[j] in req["queues"]:
            value = collections.deque(value)
        out.append(value)
        used[names[j]] = value
    return out, used
if fatal is not None:
    emit({"fatal": fatal})
    os._exit(0)

for values in req["inputs"]:
    args, used = bind(values)
    buf = io.StringIO()
    sys.stdout = buf
    random.seed(0)
    NS["random"].seed(0)
    try:
        signal.setitimer(signal.ITIMER_REAL, req["time_per_input"])
        ret = fn(*args)
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout = sys.__stdout__
        emit({"ret": canon(ret), "out": buf.getvalue()[:100000],
              "args": {k: canon(v) for k, v in used.items()}})
    except _Timeout:
        sys.stdout = sys.__stdout__
        emit({"error": "timeout"})
    except BaseException as e:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout = sys.__stdout__
        emit({"error": type(e).__name__, "msg": str(e)[:120]})
'''


def _function_name(source: str, java_name: str) -> str:
    """The function to call: the Java method's name when the Python defines it, else the
    first ``def`` (a translation that renamed the entry point can still be tested)."""
    names = re.findall(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", source, flags=re.M)
    if java_name in names or not names:
        return java_name
    return names[0]


def run_python(source: str, name: str, inputs: list[list], names: Sequence[str] = (), *,
               time_per_input: float = TIME_PER_INPUT,
               memory_mb: int = MEMORY_MB, constants: dict | None = None,
               queues: Sequence[str] = ()) -> list[dict]:
    """Run function ``name`` of ``source`` on every input in a fresh subprocess.

    ``names`` are the Java parameter names of the input values: each Python parameter
    takes the value of the Java parameter of the same name, else the one at its position
    (a translation that drops Java's redundant ``n`` is called without it).

    Returns one outcome per input: ``{"ret", "out", "args"}`` or ``{"error": kind}``
    (``"timeout"`` for a call past its time, ``"killed"`` when the whole process died),
    or a single ``{"fatal": reason}`` repeated when the code could not be defined.
    """
    names = list(names) or [f"arg{i}" for i in range(len(inputs[0]) if inputs else 0)]
    req = {"source": source, "name": name, "inputs": inputs, "names": names,
           "size_names": sorted(_ROW_NAMES), "constant": MODULE_CONSTANT,
           "constants": constants or {}, "queues": list(queues),
           "time_per_input": time_per_input,
           "memory_mb": memory_mb, "cpu_s": time_per_input * (len(inputs) + 2)}
    wall = time_per_input * (len(inputs) + 2) + 10
    env = {"PYTHONHASHSEED": "0", "PYTHONIOENCODING": "utf-8", "PATH": os.defpath}
    with tempfile.TemporaryDirectory(prefix="c2c-check-") as tmp:
        try:
            proc = subprocess.run([sys.executable, "-s", "-B", "-c", _RUNNER],
                                  input=json.dumps(req), capture_output=True, text=True,
                                  cwd=tmp, env=env, timeout=wall, check=False)
            stdout = proc.stdout
        except subprocess.TimeoutExpired as e:
            out = e.stdout or b""
            stdout = out.decode("utf-8", "replace") if isinstance(out, bytes) else out
    outcomes: list[dict] = []
    for line in stdout.splitlines():
        try:
            outcomes.append(json.loads(line))
        except json.JSONDecodeError:
            break
    if outcomes and "fatal" in outcomes[0]:
        return outcomes[:1] * len(inputs)
    return outcomes[: len(inputs)] + [{"error": "killed"}] * (len(inputs) - len(outcomes))


# ---------------------------------------------------------------- comparison

def _same_value(a: object, b: object) -> bool:
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    return a == b


def _number(word: str) -> float | None:
    try:
        return float(word)
    except ValueError:
        return None


def _same_text(a: str, b: str) -> bool:
    wa, wb = a.split(), b.split()
    if len(wa) != len(wb):
        return False
    for x, y in zip(wa, wb, strict=True):
        if x == y:
            continue
        fx, fy = _number(x), _number(y)
        if fx is None or fy is None or not math.isclose(fx, fy, rel_tol=REL_TOL, abs_tol=1e-9):
            return False
    return True


def same_outcome(ref: dict, hyp: dict) -> bool:
    """Whether a translation's outcome on one input matches the reference's (usable) one."""
    if "ret" not in hyp:
        return False
    common = ref["args"].keys() & hyp["args"].keys()  # list arguments both were given
    return (_same_value(ref["ret"], hyp["ret"]) and _same_text(ref["out"], hyp["out"])
            and all(_same_value(ref["args"][k], hyp["args"][k]) for k in common))


# ---------------------------------------------------------------- one pair, many pairs

@dataclass
class PairResult:
    key: str
    passed: bool
    reason: str  # "" when passed
    usable: int = 0  # inputs on which the reference ran
    parses: bool = True
    details: dict = field(default_factory=dict)


def _parses(source: str) -> bool:
    import ast

    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True


def check_pair(key: str, java: str, reference: str, translation: str, *,
               n_inputs: int = N_INPUTS, time_per_input: float = TIME_PER_INPUT,
               memory_mb: int = MEMORY_MB, ref_outcomes: list[dict] | None = None) -> PairResult:
    """Differential test of one translation (Python source, not token text)."""
    parses = _parses(translation)
    sig = java_signature(java)
    if sig is None:
        return PairResult(key, False, "untestable: no Java method signature", parses=parses)
    _add_python_params(sig, reference)
    # dimensions held in module constants the snippet lost: fixed-size arrays, same constants
    free = free_names(reference)
    dims: dict[str, int] = {n: DIM_SIZE for n in free & DIM_CONSTANTS}
    constants = dict(dims, **{n: v for n, v in NAMED_CONSTANTS.items() if n in free})
    queues = [p.name for p in sig.params if p.queue]
    inputs = generate_inputs(sig, n_inputs, input_seed(key), DIM_SIZE if dims else None)
    names = [p.name for p in sig.params]
    if ref_outcomes is None:
        ref_outcomes = run_python(reference, _function_name(reference, sig.name), inputs, names,
                                  time_per_input=time_per_input, memory_mb=memory_mb,
                                  constants=constants, queues=queues)
    usable = [i for i, o in enumerate(ref_outcomes) if "ret" in o]
    if not usable:
        kinds = sorted({(o.get("error") or o.get("fatal") or "?")
                        + (f": {o['msg']}" if o.get("msg") else "") for o in ref_outcomes})
        return PairResult(key, False, "untestable: the reference fails on every input ("
                          + ", ".join(kinds) + ")", parses=parses)
    if not parses:
        return PairResult(key, False, "translation does not parse", len(usable), parses)
    hyp = run_python(translation, _function_name(translation, sig.name),
                     [inputs[i] for i in usable], names, time_per_input=time_per_input,
                     memory_mb=memory_mb, constants=constants, queues=queues)
    for j, i in enumerate(usable):
        h = hyp[j]
        if "fatal" in h:
            return PairResult(key, False, h["fatal"], len(usable), parses)
        if not same_outcome(ref_outcomes[i], h):
            what = (f"{h['error']}" + (f" ({h['msg']})" if h.get("msg") else "")
                    if "error" in h else "different output")
            return PairResult(key, False, f"{what} on input {json.dumps(inputs[i])[:200]}",
                              len(usable), parses)
    return PairResult(key, True, "", len(usable), parses)


def check_all(items: Sequence[tuple[str, str, str, str]], *, jobs: int = 2,
              n_inputs: int = N_INPUTS, time_per_input: float = TIME_PER_INPUT,
              memory_mb: int = MEMORY_MB,
              progress: Callable[[int, int], None] | None = None) -> list[PairResult]:
    """:func:`check_pair` over ``(key, java, reference, translation)`` items, ``jobs``
    subprocesses at a time; results in the items' order."""
    def one(item: tuple[str, str, str, str]) -> PairResult:
        return check_pair(*item, n_inputs=n_inputs, time_per_input=time_per_input,
                          memory_mb=memory_mb)

    results: list[PairResult] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for n, r in enumerate(pool.map(one, items), 1):
            results.append(r)
            if progress is not None:
                progress(n, len(items))
    return results


def summary(results: Sequence[PairResult]) -> dict:
    """Counts and shares: ``computational_accuracy`` = passed / all pairs (untestable
    pairs count as failures), ``parse`` = share of translations that parse."""
    n = len(results)
    passed = sum(r.passed for r in results)
    untestable = sum(r.reason.startswith("untestable") for r in results)
    return {"n": n, "passed": passed,
            "computational_accuracy": passed / n if n else 0.0,
            "parse": sum(r.parses for r in results) / n if n else 0.0,
            "untestable": untestable,
            "accuracy_on_testable": passed / (n - untestable) if n > untestable else 0.0}
