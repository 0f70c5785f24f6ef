"""C2C repair: the rule-based Java -> Python translator, line fixes and the parse fallback."""

from __future__ import annotations

import ast

import pytest

from fusionbrain.tasks.c2c import repair
from fusionbrain.tasks.c2c.code_tokens import detokenize


def _python(java: str) -> str:
    text = repair.translate_java(java)
    source = detokenize(text)
    ast.parse(source)  # every case below must translate to valid Python
    return source


def _run(java: str, *args):
    """Run the translation (our own rule output on fixed Java, not untrusted code)."""
    ns: dict = {}
    exec(compile(_python(java), "<rule>", "exec"), ns)  # noqa: S102
    name = java.split("(")[0].split()[-1]
    return ns[name](*args)


@pytest.mark.parametrize(("java", "needle"), [
    ("static int f ( int a , int b ) { return Math . max ( a , b ) ; }", "max(a, b)"),
    ("static void f ( int a ) { System . out . println ( a ) ; }", "print(a)"),
    ("static void f ( int a ) { System . out . print ( a ) ; }", 'print(a, end = "")'),
    ("static int f ( int a , int b ) { return a / b ; }", "a // b"),
    ("static double f ( double a , int b ) { return a / b ; }", "a / b"),
    ("static int f ( int a ) { a ++ ; return a ; }", "a += 1"),
    ("static int f ( int a ) { -- a ; return a ; }", "a -= 1"),
    ("static int [ ] f ( int n ) { int [ ] d = new int [ n ] ; return d ; }", "[0] * (n)"),
    ("static boolean f ( boolean a , boolean b ) { return a && ! b || false ; }",
     "a and not b or False"),
    ("static Object f ( ) { return null ; }", "return None"),
    ("static int f ( int a ) { return a > 0 ? a : - a ; }", "if a > 0 else"),
    ("static int f ( double a ) { return ( int ) a ; }", "int(a)"),
    ("static int f ( int a [ ] ) { return a . length ; }", "len(a)"),
    ("static char f ( String s ) { return s . charAt ( 0 ) ; }", "s[0]"),
    ("static int f ( int n ) { int s = 0 ; for ( int i = 0 ; i < n ; i ++ ) s += i ; return s ; }",
     "for i in range(0, n):"),
    ("static int f ( String s ) { return s . charAt ( 0 ) - '0' ; }", "ord(s[0]) - ord('0')"),
])
def test_rules(java: str, needle: str) -> None:
    assert needle in _python(java)


def test_translations_compute_like_java() -> None:
    gcd = "static int gcd ( int a , int b ) { if ( b == 0 ) return a ; return gcd ( b , a % b ) ; }"
    assert _run(gcd, 12, 18) == 6
    count = ("static int count ( String s ) { int [ ] c = new int [ 26 ] ; for ( int i = 0 ; "
             "i < s . length ( ) ; i ++ ) c [ s . charAt ( i ) - 'a' ] ++ ; int best = 0 ; "
             "for ( int i = 25 ; i >= 0 ; i -- ) best = c [ i ] > best ? c [ i ] : best ; "
             "return best ; }")
    assert _run(count, "abcab") == 2
    loop = ("static int f ( int n ) { int i = 0 , s = 0 ; while ( true ) { if ( i >= n ) break ; "
            "s += i * i ; i += 2 ; } do { s -- ; } while ( s > 100 ) ; return s ; }")
    assert _run(loop, 7) == 0 + 4 + 16 + 36 - 1
    grid = ("static int f ( int n ) { int d [ ] [ ] = new int [ n ] [ n ] ; for ( int i = 0 ; i < n ; "
            "i ++ ) for ( int j = 0 ; j < n ; j ++ ) d [ i ] [ j ] = i * j ; return d [ n - 1 ] [ n - 1 ] ; }")
    assert _run(grid, 4) == 9
    sw = ("static String f ( int k ) { switch ( k ) { case 1 : return \" one \" ; case 2 : "
          "case 3 : return \" few \" ; default : return \" many \" ; } }")
    assert [_run(sw, k) for k in (1, 3, 9)] == ["one", "few", "many"]


def test_string_literal_brackets_are_not_code() -> None:
    java = 'static void f ( int a ) { System . out . print ( " { " + a + " } " ) ; }'
    assert 'print("{" + str(a) + "}", end = "")' in _python(java)


def test_generics_and_collections() -> None:
    java = ("static int f ( int arr [ ] , int n ) { HashMap < Integer , Integer > mp = new HashMap < > ( ) ; "
            "for ( int i = 0 ; i < n ; i ++ ) { if ( mp . containsKey ( arr [ i ] ) ) mp . put ( arr [ i ] , "
            "mp . get ( arr [ i ] ) + 1 ) ; else mp . put ( arr [ i ] , 1 ) ; } return mp . size ( ) ; }")
    assert _run(java, [1, 2, 1, 3], 4) == 3


def test_unknown_java_is_left_as_java() -> None:
    java = "static int f ( int a ) { return a ++ + ++ a ; }"
    text = repair.translate_java(java)
    # Python reads the leftover increments as signs: it parses, but repair does not take it
    assert "++" in text and repair.parses(text)
    assert repair.repair("def f ( a ) : NEW_LINE INDENT return a ++ NEW_LINE DEDENT", java) \
        == "def f ( a ) : NEW_LINE INDENT return a ++ NEW_LINE DEDENT"


def test_fix_tokens_on_model_output() -> None:
    model = ("def f ( a , b ) : NEW_LINE INDENT int c = Math . max ( a , b ) ; NEW_LINE c ++ ; "
             "NEW_LINE if ( a > 0 && b > 0 ) : NEW_LINE INDENT return true NEW_LINE DEDENT "
             "return c NEW_LINE DEDENT")
    assert not repair.parses(model)
    fixed = repair.fix_tokens(model)
    assert repair.parses(fixed)
    assert "c = max ( a , b )" in fixed and "c += 1" in fixed and "a > 0 and b > 0" in fixed


def test_repair_falls_back_to_a_candidate_that_parses() -> None:
    java = "static int f ( int a ) { return a * 2 ; }"
    good = "def f ( a ) : NEW_LINE INDENT return a * 2 NEW_LINE DEDENT"
    assert repair.repair(good, java) == good
    broken = "def f ( a ) : NEW_LINE INDENT return a * * ) 2 NEW_LINE DEDENT"
    assert repair.repair(broken, java) == repair.translate_java(java)
    assert repair.repair(broken) == broken  # no Java, nothing that parses: unchanged
    assert repair.repair(good, java, rule_first=True) == repair.translate_java(java)


def test_parse_share() -> None:
    texts = ["def f ( ) : NEW_LINE INDENT return 1 NEW_LINE DEDENT", "def f ( :", "x = 1\n"]
    assert repair.parse_share(texts) == pytest.approx(2 / 3)
    assert repair.parse_share([]) == 0.0


def test_java_semantics_kept() -> None:
    # a variable named like a builtin the rules call is renamed
    shadow = ("static int f ( String s ) { int len = s . length ( ) ; int max = 0 ; "
              "for ( int i = 0 ; i < len ; i ++ ) max = Math . max ( max , s . charAt ( i ) - 'a' ) ; "
              "return max ; }")
    assert _run(shadow, "abd") == 3
    # a loop variable declared outside the loop keeps Java's value after it (not range's)
    after = ("static int f ( int n ) { int j ; for ( j = 0 ; j < n ; j ++ ) { } return j ; }")
    assert _run(after, 4) == 4
    # a body that moves the loop variable is not a range loop
    skip = ("static int f ( int n ) { int c = 0 ; for ( int i = 0 ; i < n ; i ++ ) { c ++ ; i ++ ; } "
            "return c ; }")
    assert _run(skip, 5) == 3
    stream = "static int f ( int arr [ ] ) { return Arrays . stream ( arr ) . max ( ) . getAsInt ( ) ; }"
    assert _run(stream, [3, 9, 2]) == 9
