"""C2C golden cases and their generator (the official scorer as the oracle).

The cases below, and the 682 AVATAR test pairs with two kinds of prediction, were scored by
the official C2C scorer (``../shared/tools/c2c-oracle.sh``: the challenge's own
``evaluation/C2C_codeBLEU`` code with ``tree_sitter==0.2.0`` and tree-sitter-python
v0.16.1) under ``PYTHONHASHSEED=0``; its printed numbers (or the exception it died of) are
stored in ``tests/data/c2c_golden.json``, which tests/test_metric_c2c.py reads -- CI never
runs the oracle.  To regenerate (about two minutes):

    PYTHONHASHSEED=0 .venv/bin/python tests/c2c_golden_cases.py ../shared/tools/c2c-oracle.sh [--only-new]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AVATAR_TEST = ROOT / "src/fusionbrain/assets/avatar-g4g/test.jsonl"
GOLDEN = Path(__file__).resolve().parent / "data/c2c_golden.json"

FUNC = "def f ( x ) : NEW_LINE INDENT return x NEW_LINE DEDENT"
AREA = "def area_square ( side ) : NEW_LINE INDENT area = side * side NEW_LINE return area NEW_LINE DEDENT"
SEED_TRUE = ("def items ( n , a ) : NEW_LINE INDENT a . sort ( ) NEW_LINE z = a [ n - 1 ] NEW_LINE x = 1 "
             "NEW_LINE s = 0 NEW_LINE for i in range ( 0 , n - 1 ) : NEW_LINE INDENT s += a [ i ] NEW_LINE "
             "if ( s <= z ) : NEW_LINE INDENT x += 1 NEW_LINE DEDENT else : NEW_LINE INDENT break NEW_LINE "
             "DEDENT DEDENT return x NEW_LINE DEDENT")
SEED_PRED = ("def items ( n , a ) NEW_LINE a . sort ( ) NEW_LINE z = a [ n - 1 ] NEW_LINE x x = 1 NEW_LINE "
             "s = 0 NEW_LINE for i in range ( 0 , n - 1 ) : NEW_LINE INDENT s += a [ i ] NEW_LINE if ( s <= z ) "
             ": NEW_LINE INDENT x += 1 NEW_LINE DEDENT else : NEW_LINE INDENT break DEDENT DEDENT return x "
             "NEW_LINE DEDENT")
LONG = "def f ( a , b ) : NEW_LINE INDENT c = a + b NEW_LINE d = c * 2 NEW_LINE return d NEW_LINE DEDENT"


def paren(k: int) -> str:
    return "x = " + "( " * k + "y" + " )" * k + " NEW_LINE z = x"


def neg(k: int) -> str:
    return "x = " + "- " * k + "y NEW_LINE z = x"


def parenr(k: int) -> str:
    return "x = 1\nz = " + "(" * k + "x" + ")" * k + "\n"


def callr(k: int) -> str:
    return "x = 1\nz = " + "f(" * k + "x" + ")" * k + "\n"


def one(true: str, pred: str) -> dict:
    return {"true": {"0": true}, "pred": {"0": pred}}


def avatar_rows() -> list[dict]:
    return [json.loads(line) for line in AVATAR_TEST.read_text(encoding="utf-8").splitlines()]


def drop_every_7th(code: str) -> str:
    """A deterministic imperfect prediction: the truth without every 7th token (from the 4th)."""
    return " ".join(t for i, t in enumerate(code.split()) if i % 7 != 3)


def avatar_sets() -> dict[str, dict]:
    """The 682 AVATAR test pairs: Java tokens as predictions (the trivial baseline), and the
    truth with tokens dropped."""
    rows = avatar_rows()
    true = {r["id"]: r["python"][0] for r in rows}
    return {
        "avatar682_java_tokens": {"true": true, "pred": {r["id"]: r["java"][0] for r in rows}},
        "avatar682_drop_every_7th": {"true": true, "pred": {k: drop_every_7th(v) for k, v in true.items()}},
    }


def cases() -> dict[str, dict]:
    rows = avatar_rows()[:6]
    c = {
        # clean token text
        "identical_function": one(FUNC, FUNC),
        "short_identical": one("x = 1", "x = 1"),
        "renamed_variables": one("def f ( x ) : NEW_LINE INDENT y = x + 1 NEW_LINE return y NEW_LINE DEDENT",
                                 "def f ( y ) : NEW_LINE INDENT z = y + 1 NEW_LINE return z NEW_LINE DEDENT"),
        "keywords_only_match": one("if x : return y", "if a : return b"),
        "repeated_prediction": one("x = y NEW_LINE x = y", "x = y NEW_LINE x = y NEW_LINE x = y"),
        "edge_used_once": one("x = y NEW_LINE x = y NEW_LINE x = y", "x = y NEW_LINE x = y"),
        "brevity_penalty": one(LONG, "def f ( a"),
        "layout_tokens": one("return NEW_LINE x", "return x"),
        "issue_area_square": one(AREA, "return area"),
        "issue_area_square_full": one(AREA, AREA.replace("side * side", "side ** 2")),
        "loops_tuple_assignment": one("while j < n : NEW_LINE INDENT b , a = a , a + b NEW_LINE j += 1 NEW_LINE DEDENT",
                                      "while i < n : NEW_LINE INDENT a , b = b , a + b NEW_LINE i += 1 NEW_LINE DEDENT"),
        "for_tuple_unpack": one("for a , b in zip ( x , y ) : NEW_LINE INDENT s += a * b NEW_LINE DEDENT",
                                "for b , a in zip ( y , x ) : NEW_LINE INDENT s = s + a * b NEW_LINE DEDENT"),
        "while_else": one("while x : NEW_LINE INDENT x -= 1 NEW_LINE DEDENT else : NEW_LINE INDENT y = x NEW_LINE DEDENT",
                          "while x > 0 : NEW_LINE INDENT x = x - 1 NEW_LINE DEDENT y = x"),
        "if_elif_else": one("if a : NEW_LINE INDENT b = 1 NEW_LINE DEDENT elif c : NEW_LINE INDENT b = 2 NEW_LINE "
                            "DEDENT else : NEW_LINE INDENT b = 3 NEW_LINE DEDENT return b",
                            "if a : NEW_LINE INDENT b = 1 NEW_LINE DEDENT else : NEW_LINE INDENT b = 3 NEW_LINE DEDENT"),
        "comprehension": one("y = [ x * 2 for x in xs if x ] NEW_LINE z = y", "y = [ v * 2 for v in xs ] NEW_LINE z = y"),
        "default_parameters": one("def f ( a , b = 1 , * args , ** kw ) : NEW_LINE INDENT return a + b NEW_LINE DEDENT",
                                  "def f ( a , b = 2 ) : NEW_LINE INDENT return a + b NEW_LINE DEDENT"),
        "augmented_and_lambda": one("s = 0 NEW_LINE s += 1 NEW_LINE g = lambda t : t + s",
                                    "s = 0 NEW_LINE s = s + 1 NEW_LINE g = lambda t : s + t"),
        "nested_global_try": one("def f ( ) : NEW_LINE INDENT global g NEW_LINE try : NEW_LINE INDENT g = int ( x ) "
                                 "NEW_LINE DEDENT except ValueError : NEW_LINE INDENT g = 0 NEW_LINE DEDENT DEDENT",
                                 "def f ( ) : NEW_LINE INDENT try : NEW_LINE INDENT g = int ( x ) NEW_LINE DEDENT "
                                 "except : NEW_LINE INDENT pass NEW_LINE DEDENT DEDENT"),
        "class_method": one("class A : NEW_LINE INDENT def f ( self ) : NEW_LINE INDENT return self . x NEW_LINE DEDENT DEDENT",
                            "class A : NEW_LINE INDENT def f ( self ) : return 1"),
        "decorator_semicolons": one("@ staticmethod NEW_LINE def f ( ) : NEW_LINE INDENT return 1 ; NEW_LINE DEDENT",
                                    "def f ( ) : NEW_LINE INDENT return 1 ; NEW_LINE DEDENT"),
        "print_string_tokens": one("print ( \" a ▁ b \" ) NEW_LINE", "print ( \" a b \" ) NEW_LINE"),
        "fstring": one("x = f\"{a} {b}\" NEW_LINE y = x", "x = f\"{a}\" NEW_LINE y = x"),
        "hash_seed_dependent": one(SEED_TRUE, SEED_PRED),
        "l4_division": one("def v ( l_4 , b , h ) : NEW_LINE INDENT return ( ( l_4 * b * h ) / 2 ) NEW_LINE",
                           "def v ( l , b , h ) : NEW_LINE INDENT return ( l * b * h ) / 2 NEW_LINE DEDENT"),
        "no_reference_edges": one("print ( 1 )", "print ( 2 )"),
        # broken token text (error recovery decides the trees)
        "broken_missing_colon": one(FUNC, "def f ( x ) NEW_LINE return x"),
        "broken_brackets": one("x = [ ( 1 ] NEW_LINE y = ( ( ( x", "x = [ ( 1 ]"),
        "broken_dollar": one("x = $", "x = $ NEW_LINE y = x"),
        "broken_question": one("x = ? (", "x = ( ?"),
        "broken_if_paren": one("def f ( x ) : NEW_LINE INDENT if ( x : return ( NEW_LINE DEDENT", FUNC),
        "quoted_parentheses": one("x = '(' + \")\"", "print ( ' ) ' )"),
        "broken_non_ascii": one("é = 'ж' ( NEW_LINE", "é = 'ж' NEW_LINE"),
        "broken_multiline_source": one("def f(x):\n    if x:\n        return (\n", "def f(x):\n    return x\n"),
        "broken_for": one("for i in range ( n ) : NEW_LINE INDENT s += i NEW_LINE DEDENT", "for i in range ( n : x"),
        "deep_parentheses_50": one("x = " + "( " * 50 + "y" + " )" * 49, "x = ( y )"),
        # the official recursion limit: the last depth that works, the first that fails
        "recursion_paren_988": one(paren(988), paren(988)),
        "recursion_paren_989": one(paren(989), paren(989)),
        "recursion_neg_987": one(neg(987), neg(987)),
        "recursion_neg_988": one(neg(988), neg(988)),
        "recursion_source_990": one(parenr(990), parenr(990)),
        "recursion_source_991": one(parenr(991), parenr(991)),
        "recursion_call_495": one(callr(495), callr(495)),
        "recursion_call_496": one(callr(496), callr(496)),
        "java_as_prediction": one(rows[0]["python"][0], rows[0]["java"][0]),
        "java_as_truth": one(rows[1]["java"][0], rows[1]["python"][0]),
        # empty and whitespace
        "empty_both": one("", ""),
        "empty_prediction": one("x = 1", ""),
        "empty_truth": one("", "x = 1"),
        "whitespace_prediction": one(FUNC, "   "),
        "newlines_prediction": one(FUNC, "\n\n"),
        "whitespace_both": one(" \t ", " \n "),
        "extra_spaces": one("x = 1 NEW_LINE y = x", "x  =  1   NEW_LINE  y = x "),
        "nbsp_and_formfeed": one("x\u00a0= 1 NEW_LINE y = x", "x = 1\x0cNEW_LINE y = x"),
        # comments, tabs, real source
        "comment_in_token_text": one("x = 1 # c NEW_LINE y = x", "x = 1 NEW_LINE y = x"),
        "comment_only": one("# hello", "# hello"),
        "comment_in_source": one("x = 1  # one\ny = x\n", "x = 1\ny = x  # y\n"),
        "docstring_source": one('def f(x):\n    """Doc."""\n    return x\n', "def f(x):\n    return x\n"),
        "tabs_source": one("def f ( x ) :\n\tif x :\n\t\treturn x\n", "def f ( x ) :\n    if x :\n        return x\n"),
        "tabs_token_text": one("x\t=\t1 NEW_LINE y = x", "x = 1 NEW_LINE y = x"),
        "real_source": one("def f(x):\n    z = x\n    return z\n", "def f(x):\n    y = x\n    return y\n"),
        "crlf_source": one("x = 1\r\ny = x\r\n", "x = 1\ny = x\n"),
        "line_continuation": one("x = 'a\\\nb'\ny = x\n", "x = 'ab'\ny = x\n"),
        "triple_quoted_multiline": one('s = """é\nж"""\nt = s + u\n', 's = """a\nb"""\nt = s + u\n'),
        "multiline_list_non_ascii": one("x = [\n'é',\n'ж'\n]\ny = x\n", "x = ['é', 'ж']\ny = x\n"),
        "unclosed_def_source": one("def f(\n", "def f():\n    pass\n"),
        "fstring_comment_source": one("x = f\"{'a'} {y}\"\nz = x  # c\n", "x = f\"{y}\"\nz = x\n"),
        # non-ASCII (byte columns used as character indices)
        "non_ascii_strings": one("x = \" мир \" NEW_LINE y = x + b", "x = \" привет \" NEW_LINE y = x + a"),
        "non_ascii_identifier": one("é = 1 NEW_LINE y = é", "é = 1 NEW_LINE y = é"),
        "non_ascii_identifiers_differ": one("значение = 1 NEW_LINE итог = значение + 2",
                                            "значение = 1 NEW_LINE итог = значение * 2"),
        "emoji_string": one("x = '😀' NEW_LINE y = x", "x = '😀😀' NEW_LINE y = x"),
        "cjk_source": one("def 函数(参数):\n    结果 = 参数\n    return 结果\n", "def 函数(参数):\n    return 参数\n"),
        # multi-item corpora
        "corpus_two_items_extra_key": {
            "true": {"1": "for i in range ( n ) : NEW_LINE INDENT s = s + i NEW_LINE DEDENT", "0": "a = b + c"},
            "pred": {"0": "a = b + c", "1": "for i in range ( n ) : NEW_LINE INDENT s += i NEW_LINE DEDENT", "x": "junk"}},
        "corpus_avatar6_java": {"true": {r["id"]: r["python"][0] for r in rows},
                                "pred": {r["id"]: r["java"][0] for r in rows}},
        "corpus_avatar6_some_empty": {"true": {r["id"]: r["python"][0] for r in rows},
                                      "pred": {r["id"]: (r["python"][0] if i % 2 else "") for i, r in enumerate(rows)}},
        "corpus_avatar6_shifted": {"true": {r["id"]: r["python"][0] for r in rows},
                                   "pred": {r["id"]: rows[(i + 1) % 6]["python"][0] for i, r in enumerate(rows)}},
        "corpus_duplicates": {"true": {"a": FUNC, "b": FUNC, "c": "x = 1"}, "pred": {"a": FUNC, "b": "", "c": FUNC}},
        # where the official script dies
        "missing_key": {"true": {"0": "x = 1"}, "pred": {}},
        "missing_key_among_many": {"true": {"a": "x", "b": "y", "c": "z"}, "pred": {"a": "x", "c": "z"}},
        "number_prediction": {"true": {"0": "x = 1"}, "pred": {"0": 5}},
        "null_prediction": {"true": {"0": "x = 1"}, "pred": {"0": None}},
        "list_truth": {"true": {"0": ["x = 1"]}, "pred": {"0": "x = 1"}},
        "empty_truth_file": {"true": {}, "pred": {"0": "x"}},
        "lone_surrogate": {"true": {"0": "x = 1"}, "pred": {"0": "x = '\ud800'"}},
    }
    return c


_LINE = re.compile(r"ngram match: (\S+), weighted ngram match: (\S+), syntax_match: (\S+), dataflow_match: (\S+)")


def run_oracle(oracle: str, true: dict, pred: dict) -> dict:
    """The oracle's four parts and CodeBLEU, or the exception it died of."""
    with tempfile.TemporaryDirectory() as d:
        tp, pp = Path(d, "true.json"), Path(d, "pred.json")
        tp.write_text(json.dumps(true), encoding="utf-8")
        pp.write_text(json.dumps(pred), encoding="utf-8")
        env = dict(os.environ, PYTHONHASHSEED="0")
        p = subprocess.run(["bash", oracle, str(tp), str(pp)], capture_output=True, text=True, env=env)
    m = _LINE.search(p.stdout)
    if p.returncode != 0 or not m:
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": last.split(":")[0]}
    total = re.search(r"CodeBLEU score:\s+(\S+)", p.stdout).group(1)
    names = ("bleu", "weighted_bleu", "syntax_match", "dataflow_match")
    return {**{k: float(v) for k, v in zip(names, m.groups(), strict=True)}, "score": float(total)}


def main(oracle: str, only_new: bool = False) -> None:
    """Score every case with the oracle (``--only-new``: only those not in the file yet)."""
    old = json.loads(GOLDEN.read_text(encoding="utf-8")) if only_new and GOLDEN.exists() else {}
    out: dict = {"cases": {}, "avatar": {}}
    for part, items in (("cases", cases()), ("avatar", avatar_sets())):
        for name, case in items.items():
            known = old.get(part, {}).get(name)
            out[part][name] = known or run_oracle(oracle, case["true"], case["pred"])
            print(name, out[part][name], flush=True)
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], "--only-new" in sys.argv[2:])
