"""TransCoder-style Python token text <-> real Python source.

The C2C files hold Python as TransCoder tokens: tokens separated by single spaces,
``NEW_LINE`` for the end of a logical line, ``INDENT`` / ``DEDENT`` for indentation
changes; inside string literals the text is split into words and punctuation with the
original spaces written as ``▁`` (newlines and tabs as ``STRNEWLINE`` / ``TABSYMBOL``):

    def f ( x ) : NEW_LINE INDENT print ( " x ▁ = " , x ) NEW_LINE DEDENT

:func:`detokenize` turns that back into indented, runnable source; :func:`tokenize_python`
does the inverse with the standard library's ``tokenize`` (docstrings and comments are
dropped, as TransCoder does).  Both are pure functions of their input, torch-free.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
import unicodedata

NEW_LINE, INDENT, DEDENT = "NEW_LINE", "INDENT", "DEDENT"
SPACE, STRNEWLINE, TABSYMBOL = "\u2581", "STRNEWLINE", "TABSYMBOL"

_STRING_START = re.compile(r"""^([rRbBuUfF]{0,2})("\"\"|'''|"|')""")
_PREFIXES = {"r", "u", "f", "b", "rf", "fr", "rb", "br"}
_OPEN = {"(", "[", "{"}
_CLOSE = {")", "]", "}"}
_NAME = re.compile(r"^[^\W\d]\w*$")


# ---------------------------------------------------------------- detokenize

def _close_quote(tok: str, q: str) -> bool:
    """``tok`` ends with the quote ``q`` and that quote is not escaped."""
    if not tok.endswith(q):
        return False
    body = tok[: len(tok) - len(q)]
    backslashes = len(body) - len(body.rstrip("\\"))
    return backslashes % 2 == 0


def _string_text(pieces: list[str]) -> str:
    out = "".join(pieces)
    return out.replace(SPACE, " ").replace(STRNEWLINE, "\\n").replace(TABSYMBOL, "\\t")


def _merge_strings(tokens: list[str]) -> list[str]:
    """Glue the pieces of each string literal back into one token."""
    out: list[str] = []
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        m = _STRING_START.match(tok)
        if m is None:
            out.append(tok)
            i += 1
            continue
        prefix, q = m.group(1), m.group(2)
        head = tok[len(prefix):]
        if len(head) >= 2 * len(q) and _close_quote(head[len(q):], q):
            out.append(prefix + _string_text([head]))  # a whole literal, e.g. '0'
            i += 1
            continue
        # collect up to the token that closes the literal
        j = i + 1
        while j < n and not _close_quote(tokens[j], q):
            j += 1
        if j >= n:  # never closed: leave the tokens as they are
            out.append(tok)
            i += 1
            continue
        out.append(prefix + _string_text(tokens[i:j + 1]))
        i = j + 1
    # a string prefix written as a separate word (``f " x "``)
    glued: list[str] = []
    for tok in out:
        if glued and glued[-1].lower() in _PREFIXES and _STRING_START.match(tok) and \
                not _STRING_START.match(tok).group(1):
            glued[-1] = glued[-1] + tok
        else:
            glued.append(tok)
    return glued


def _is_name(tok: str) -> bool:
    return bool(_NAME.match(tok)) and not keyword.iskeyword(tok)


def _is_string(tok: str) -> bool:
    return _STRING_START.match(tok) is not None


def _join_line(tokens: list[str]) -> str:
    """Join one logical line's tokens with readable spacing that never changes meaning.

    Only spaces Python ignores are dropped: after an opening bracket, before a closing
    bracket or ``, ; :``, and around an attribute dot or before a call's / subscript's
    bracket (after a name, a closing bracket or a string).
    """
    parts: list[str] = []
    prev = None
    after_attr_dot = False
    for tok in tokens:
        attached = prev is not None and (_is_name(prev) or prev in _CLOSE or _is_string(prev))
        attr_dot = tok == "." and attached
        if prev is None:
            parts.append(tok)
        elif (after_attr_dot or prev in _OPEN or tok in _CLOSE or tok in (",", ";", ":")
              or attr_dot or (tok in ("(", "[") and attached)):
            parts.append(tok)
        else:
            parts.append(" " + tok)
        after_attr_dot = attr_dot
        prev = tok
    return "".join(parts)


def detokenize(code: str) -> str:
    """TransCoder token text -> Python source with real lines and 4-space indentation.

    Text that already has real line breaks and no ``NEW_LINE`` token is returned as it
    is.  Unbalanced ``DEDENT`` tokens are ignored; an ``INDENT`` or ``DEDENT`` in the
    middle of a line ends that line first.
    """
    if "\n" in code and NEW_LINE not in code.split():
        return code
    lines: list[str] = []
    level = 0
    current: list[str] = []

    def flush() -> None:
        if current:
            lines.append("    " * level + _join_line(_merge_strings(current)))
            current.clear()

    for tok in code.split():
        if tok == NEW_LINE:
            flush()
        elif tok == INDENT:
            flush()
            level += 1
        elif tok == DEDENT:
            flush()
            level = max(0, level - 1)
        else:
            current.append(tok)
    flush()
    return "\n".join(lines) + ("\n" if lines else "")


# ---------------------------------------------------------------- tokenize

def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def _is_symbol(ch: str) -> bool:
    return unicodedata.category(ch).startswith("S")


def _split_punct(s: str) -> str:
    """sacrebleu's 13a "international" tokenisation (v1.4), without the regex module."""
    # ([^\d])([\p{P}]) -> '\1 \2 '
    out, i, n = [], 0, len(s)
    while i < n:
        if i + 1 < n and not s[i].isdecimal() and _is_punct(s[i + 1]):
            out.append(s[i] + " " + s[i + 1] + " ")
            i += 2
        else:
            out.append(s[i])
            i += 1
    s = "".join(out)
    # ([\p{P}])([^\d]) -> ' \1 \2'
    out, i, n = [], 0, len(s)
    while i < n:
        if i + 1 < n and _is_punct(s[i]) and not s[i + 1].isdecimal():
            out.append(" " + s[i] + " " + s[i + 1])
            i += 2
        else:
            out.append(s[i])
            i += 1
    s = "".join(out)
    # ([\p{S}]) -> ' \1 '
    s = "".join(" " + ch + " " if _is_symbol(ch) else ch for ch in s)
    return s.strip()


_PROTECT = {"#": "STOKEN0", "\\n": "STOKEN1", '"""': "STOKEN2", "'''": "STOKEN3"}


def _string_tokens(tok: str) -> str:
    """One string literal as TransCoder writes it (``"x = "`` -> ``" x ▁ = "``)."""
    s = tok.replace(" ", f" {SPACE} ")
    for char, special in _PROTECT.items():
        s = s.replace(char, f" {special} ")
    s = s.replace("\n", f" {STRNEWLINE} ").replace("\t", f" {TABSYMBOL} ")
    s = re.sub(" +", " ", s)
    s = _split_punct(s)
    s = re.sub(" +", " ", s)
    for char, special in _PROTECT.items():
        s = s.replace(special, char)
    s = s.replace("\r", "")
    m = _STRING_START.match(s)
    if m and m.group(1) and s[len(m.group(1)):].startswith(" "):
        s = m.group(1) + s[len(m.group(1)):].lstrip(" ")  # keep the prefix on the quote
    return s


def tokenize_python(source: str) -> str:
    """Python source -> TransCoder token text (the inverse of :func:`detokenize`).

    Raises ``ValueError`` when the standard tokenizer rejects the source.
    """
    tokens: list[str] = []
    skip_newline = False
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source.replace("\r", "")).readline):
            kind, text = tok.type, tok.string
            if kind in (tokenize.NL, tokenize.COMMENT, tokenize.ENCODING):
                continue
            if kind == tokenize.NEWLINE:
                if skip_newline:
                    skip_newline = False
                    continue
                tokens.append(NEW_LINE)
            elif kind == tokenize.STRING:
                if text == tok.line.strip():  # a docstring / bare string statement
                    skip_newline = True
                    continue
                tokens.append(_string_tokens(text))
            elif kind == tokenize.INDENT:
                tokens.append(INDENT)
            elif kind == tokenize.DEDENT:
                if tokens and tokens[-1] == INDENT:  # empty block
                    tokens.pop()
                else:
                    tokens.append(DEDENT)
            elif kind == tokenize.ENDMARKER:
                break
            else:
                tokens.append(text)
    except (tokenize.TokenError, IndentationError, SyntaxError) as e:
        raise ValueError(f"cannot tokenize the Python source: {e}") from None
    return " ".join(tokens)
