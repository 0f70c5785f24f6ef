"""C2C differential check: signatures, inputs, subprocess runs, comparison, CLI."""

from __future__ import annotations

import json
import os

import pytest

from fusionbrain.cli import main
from fusionbrain.tasks.c2c import check

JAVA = "static int f ( int arr [ ] , int n ) { int s = 0 ; for ( int i = 0 ; i < n ; i ++ ) s += arr [ i ] ; return s ; }"
REF = "def f(arr, n):\n    s = 0\n    for i in range(n):\n        s += arr[i]\n    return s\n"
FAST = {"n_inputs": 4, "time_per_input": 0.5}


def test_java_signature_types() -> None:
    sig = check.java_signature(
        "public static long g ( int arr [ ] , final int n , String s , double d , char c , "
        "boolean b , int [ ] [ ] m , List < Integer > l , Map < Integer , String > mp , char [ ] w ) { }")
    assert sig is not None and sig.name == "g"
    got = [(p.name, p.base, p.dims) for p in sig.params]
    assert got == [("arr", "int", 1), ("n", "int", 0), ("s", "str", 0), ("d", "float", 0),
                   ("c", "char", 0), ("b", "bool", 0), ("m", "int", 2), ("l", "int", 1),
                   ("mp", "?", 0), ("w", "char", 1)]  # a map: unknown, drawn as an int
    assert check.java_signature("no method here") is None


def test_inputs_are_reproducible_and_sizes_follow_arrays() -> None:
    sig = check.java_signature(JAVA)
    a = check.generate_inputs(sig, 8, 123)
    assert a == check.generate_inputs(sig, 8, 123) != check.generate_inputs(sig, 8, 124)
    assert all(n == len(arr) for arr, n in a)
    grid = check.java_signature("static int h ( int mat [ ] [ ] , int rows , int cols ) { }")
    for mat, rows, cols in check.generate_inputs(grid, 6, 1):
        assert rows == len(mat) and cols == len(mat[0])
    json.dumps(a)  # inputs travel as JSON


def test_correct_and_wrong_translations() -> None:
    ok = check.check_pair("k", JAVA, REF, "def f(arr, n):\n    return sum(arr[:n])\n", **FAST)
    assert ok.passed and ok.usable == 4
    wrong = check.check_pair("k", JAVA, REF, "def f(arr, n):\n    return sum(arr[:n]) + 1\n", **FAST)
    assert not wrong.passed and wrong.reason.startswith("different output")
    bad = check.check_pair("k", JAVA, REF, "def f(arr, n) return 0\n", **FAST)
    assert not bad.passed and not bad.parses and bad.reason == "translation does not parse"
    # int vs float of the same value agree (Java int division translated with /)
    assert check.check_pair("k", JAVA, REF, "def f(arr, n):\n    return sum(arr) / 1\n", **FAST).passed


def test_translation_dropping_the_size_parameter_is_bound_by_name() -> None:
    assert check.check_pair("k", JAVA, REF, "def f(arr):\n    return sum(arr)\n", **FAST).passed


def test_limits_and_isolation() -> None:
    loop = check.check_pair("k", JAVA, REF, "def f(arr, n):\n    while True:\n        pass\n",
                            n_inputs=2, time_per_input=0.3)
    assert not loop.passed and loop.reason.startswith("timeout")
    hog = check.check_pair("k", JAVA, REF, "def f(arr, n):\n    x = [0] * (10 ** 10)\n    return 1\n",
                           **FAST, memory_mb=512)
    assert not hog.passed and "MemoryError" in hog.reason
    # the code runs in a subprocess: exiting or reading the pid does not touch this process
    ex = check.check_pair("k", JAVA, REF, "import sys\ndef f(arr, n):\n    sys.exit(3)\n", **FAST)
    assert not ex.passed and "SystemExit" in ex.reason
    outs = check.run_python("import os\ndef f(a):\n    return os.getpid()\n", "f", [[1]], ["a"])
    assert outs[0]["ret"] != os.getpid()


def test_prints_and_mutations_are_compared() -> None:
    java = "static void p ( int arr [ ] , int n ) { Arrays . sort ( arr ) ; System . out . println ( arr [ 0 ] ) ; }"
    ref = "def p(arr, n):\n    arr.sort()\n    print(arr[0])\n"
    assert check.check_pair("k", java, ref, "def p(arr, n):\n    arr.sort()\n    print(min(arr))\n",
                            **FAST).passed
    no_sort = "def p(arr, n):\n    print(min(arr))\n"  # same print, array not sorted in place
    assert not check.check_pair("k", java, ref, no_sort, **FAST).passed
    # printed numbers compare by value, words after splitting on whitespace
    assert check.same_outcome({"ret": None, "out": "1 2.0\n", "args": {}},
                              {"ret": None, "out": "1.0  2\n", "args": {}})
    assert not check.same_outcome({"ret": None, "out": "1 2\n", "args": {}},
                                  {"ret": None, "out": "12\n", "args": {}})


def test_untestable_reference_and_summary() -> None:
    broken_ref = "def f(arr, n):\n    return undefined_helper(arr)\n"
    r = check.check_pair("k", JAVA, broken_ref, REF, **FAST)
    assert not r.passed and r.reason.startswith("untestable") and "NameError" in r.reason
    # the capitalised constants a snippet lost get the same value on both sides
    const = "def f(arr, n):\n    return MAX + n\n"
    assert check.check_pair("k", JAVA, const, "def f(arr, n):\n    return n + MAX\n", **FAST).passed
    results = [r, check.PairResult("a", True, "", 4), check.PairResult("b", False, "x", 4, False)]
    s = check.summary(results)
    assert s["n"] == 3 and s["passed"] == 1 and s["untestable"] == 1
    assert s["computational_accuracy"] == pytest.approx(1 / 3)
    assert s["parse"] == pytest.approx(2 / 3) and s["accuracy_on_testable"] == pytest.approx(1 / 2)


def _files(tmp_path, pred: dict | None = None):
    (tmp_path / "req.json").write_text(json.dumps({"0": JAVA, "1": JAVA}))
    ref_tokens = ("def f ( arr , n ) : NEW_LINE INDENT s = 0 NEW_LINE for i in range ( n ) : "
                  "NEW_LINE INDENT s += arr [ i ] NEW_LINE DEDENT return s NEW_LINE DEDENT")
    (tmp_path / "true.json").write_text(json.dumps({"0": ref_tokens, "1": ref_tokens}))
    args = ["c2c-check", "--requests", str(tmp_path / "req.json"), "--true",
            str(tmp_path / "true.json"), "--inputs", "3", "--json"]
    if pred is not None:
        (tmp_path / "pred.json").write_text(json.dumps(pred))
        args += ["--pred", str(tmp_path / "pred.json")]
    return args


def test_cli_pred_rules_and_repair(tmp_path, capsys) -> None:
    pred = {"0": "def f ( arr , n ) : NEW_LINE INDENT return sum ( arr ) NEW_LINE DEDENT",
            "1": "def f ( arr , n ) : NEW_LINE INDENT int s = 0 ; NEW_LINE for i in range ( n ) : "
                 "NEW_LINE INDENT s += arr [ i ] ; NEW_LINE DEDENT return s ; } NEW_LINE DEDENT"}
    assert main(_files(tmp_path, pred)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] == 1 and out["parse"] == 0.5 and list(out["failures"]) == ["1"]
    written = tmp_path / "fixed.json"
    assert main(_files(tmp_path, pred) + ["--repair", "model-first", "--write-pred",
                                          str(written)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] == 2 and out["parse"] == 1.0
    assert "int s" not in json.loads(written.read_text())["1"]
    assert main(_files(tmp_path) + ["--rules"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] == 2


def test_cli_user_errors(tmp_path, capsys) -> None:
    assert main(_files(tmp_path)) == 2  # none of --pred / --gold / --rules
    assert "exactly one of" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    args = _files(tmp_path)
    args[args.index("--true") + 1] = str(tmp_path / "bad.json")
    assert main(args + ["--gold"]) == 2
    assert "bad.json" in capsys.readouterr().err
    (tmp_path / "req.json").write_text(json.dumps({"0": JAVA}))
    assert main(args[:4] + [str(tmp_path / "true.json"), "--gold"]) == 2
    assert "no Java request" in capsys.readouterr().err
    assert main(["c2c-check", "--avatar", "test", "--gold", "--inputs", "0"]) == 2


def test_cli_writes_the_avatar_challenge_folder(tmp_path) -> None:
    assert main(["c2c-check", "--avatar", "valid", "--write-challenge", str(tmp_path)]) == 0
    req = json.loads((tmp_path / "input" / "C2C" / "requests.json").read_text())
    true = json.loads((tmp_path / "true" / "true_C2C.json").read_text())
    assert len(req) == len(true) == 341 and list(req)[:2] == ["0", "1"]


def test_lost_module_constants_and_queues() -> None:
    java = "static int t ( int mat [ ] [ ] ) { int s = 0 ; for ( int i = 0 ; i < N ; i ++ ) s += mat [ i ] [ i ] ; return s ; }"
    ref = "def t(mat):\n    return sum(mat[i][i] for i in range(N))\n"
    r = check.check_pair("k", java, ref, "def t(mat):\n    return sum(mat[i][i] for i in range(len(mat)))\n",
                         **FAST)
    assert r.passed and r.usable == 4  # N is 4 and every matrix 4x4
    java_q = "static int q ( Queue < Integer > q ) { return q . peek ( ) ; }"
    ref_q = "def q(q):\n    return q.popleft()\n"
    popped = "def q(q):\n    x = q.popleft()\n    return x\n"
    assert check.check_pair("k", java_q, ref_q, popped, **FAST).passed
    # reading without removing leaves a different queue behind: compared too
    assert not check.check_pair("k", java_q, ref_q, "def q(q):\n    return q[0]\n", **FAST).passed


def test_reference_parameters_missing_from_java_are_drawn_by_name() -> None:
    java = "static int total ( ) { int s = 0 ; for ( int i = 0 ; i < n ; i ++ ) s += arr [ i ] ; return s ; }"
    ref = "def total(arr, n):\n    return sum(arr[:n])\n"
    r = check.check_pair("k", java, ref, "def total(arr, n):\n    return sum(arr)\n", **FAST)
    assert r.passed and r.usable == 4
