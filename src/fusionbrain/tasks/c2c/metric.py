"""C2C metric: CodeBLEU, as the AI Journey 2021 Fusion Brain scorer computes it.

``score(pred, true, profile="aij2021")`` equals the official
``evaluation/C2C_codeBLEU/evaluate.py`` (run with its pinned ``tree_sitter==0.2.0`` and
the tree-sitter-python v0.16.1 grammar, under ``PYTHONHASHSEED=0``) bit for bit wherever
that script prints a number -- it parses with the same runtime and grammar
(:mod:`fusionbrain._ts2020`) -- and raises :class:`UserError` (naming the file and key) where it crashes:

- a truth key without a prediction (the script breaks out of its loop and then fails
  an assertion), a value that is not a string (``.split()`` fails), a string that
  cannot be encoded as UTF-8 (lone surrogates: ``bytes(code, "utf8")`` fails), and an
  empty truth file (division by zero in the syntax match);
- extra prediction keys are ignored; the order is the truth file's key order.

The only randomness of the official script -- the order of ``list(set(names))`` in its
data-flow code, which follows the per-process string hash -- is fixed to what CPython
gives with ``PYTHONHASHSEED=0`` (see :mod:`fusionbrain.tasks.c2c.setorder`).

``profile="strict"`` turns the TransCoder token text (``NEW_LINE`` / ``INDENT`` /
``DEDENT``) back into real Python with :func:`fusionbrain.tasks.c2c.code_tokens.detokenize`
before parsing (BLEU still runs on the whitespace-split token text), cuts tokens by
bytes rather than by characters, and scores a missing prediction as an empty string.

Torch-free; the parsers are imported on first use.
"""

from __future__ import annotations

from fusionbrain.errors import UserError

PROFILES = ("aij2021", "strict")


def _check_value(value: object, name: str, key: str) -> str:
    if not isinstance(value, str):
        raise UserError(f"expected a string (Python code), got {_json_type(value)}", path=name, key=key)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError("the code is not valid Unicode (lone surrogate escape)", path=name, key=key) from None
    return value


def _json_type(value: object) -> str:
    return {dict: "an object", list: "an array", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)


def score(pred: dict, true: dict, *, profile: str = "aij2021",
          pred_name: str = "prediction", true_name: str = "truth") -> dict:
    """CodeBLEU of ``pred`` against ``true`` (both ``{key: python_code}``), corpus-level.

    Returns ``score`` (CodeBLEU) and its parts ``bleu``, ``weighted_bleu``,
    ``syntax_match``, ``dataflow_match``, plus ``n`` (items scored), ``missing``
    (predictions scored as empty, strict only) and ``profile``.
    """
    from fusionbrain.tasks.c2c import codebleu

    if profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    if not isinstance(true, dict):
        raise UserError("expected a JSON object {key: code}", path=true_name)
    if not isinstance(pred, dict):
        raise UserError("expected a JSON object {key: code}", path=pred_name)
    if not true:
        raise UserError("no items to score (empty truth file)", path=true_name)
    strict = profile == "strict"

    refs: list[str] = []
    hyps: list[str] = []
    missing = 0
    for key, ref in true.items():
        refs.append(_check_value(ref, true_name, key))
        if key in pred:
            hyps.append(_check_value(pred[key], pred_name, key))
        elif strict:
            hyps.append("")
            missing += 1
        else:
            raise UserError("no prediction for this key", path=pred_name, key=key)

    result = codebleu.corpus_scores_code(refs, hyps, strict=strict)
    result["n"] = len(refs)
    result["missing"] = missing
    result["profile"] = profile
    # beside CodeBLEU (surface overlap): the share of predictions whose detokenised text
    # parses as Python -- one that does not parse cannot run (``fusionbrain c2c-check``)
    from fusionbrain.tasks.c2c.repair import parse_share

    result["parse"] = parse_share(hyps)
    return result
