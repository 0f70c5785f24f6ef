"""``fusionbrain c2c-check``: computational accuracy of C2C translations by differential testing.

    fusionbrain c2c-check --avatar test --gold                     # validate the check itself
    fusionbrain c2c-check --avatar test --rules                    # rule-based translator alone
    fusionbrain c2c-check --avatar test --write-challenge DIR      # DIR/input/C2C, DIR/true
    fusionbrain c2c-check --avatar test --pred prediction_C2C.json [--repair model-first]
    fusionbrain c2c-check --requests input/C2C/requests.json --true true_C2C.json --pred P.json

Each translation and its reference run in subprocesses on inputs generated from the Java
signature (see :mod:`fusionbrain.tasks.c2c.check`). Torch-free.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fusionbrain.errors import UserError

REPAIRS = ("none", "model-first", "rule-first")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("pairs (Java + reference Python)")
    src.add_argument("--avatar", choices=("train", "valid", "test"),
                     help="the embedded AVATAR split, keys '0'.. in file order (the keys "
                     "--write-challenge gives)")
    src.add_argument("--requests", metavar="FILE", help="input/C2C/requests.json (Java)")
    src.add_argument("--true", metavar="FILE", help="true_C2C.json (reference Python)")
    what = parser.add_argument_group("what to check (one)")
    what.add_argument("--pred", metavar="FILE", help="prediction_C2C.json")
    what.add_argument("--gold", action="store_true",
                      help="the references against themselves: which pairs the check can test")
    what.add_argument("--rules", action="store_true",
                      help="the rule-based Java -> Python translator alone (a baseline)")
    parser.add_argument("--repair", choices=REPAIRS, default="none",
                        help="repair --pred before checking: model-first (line fixes, "
                        "fallback to the rules when it does not parse) or rule-first")
    parser.add_argument("--write-pred", metavar="FILE",
                        help="write the checked translations (after --repair / --rules)")
    parser.add_argument("--write-challenge", metavar="DIR",
                        help="with --avatar: write DIR/input/C2C/requests.json and "
                        "DIR/true/true_C2C.json, then stop")
    parser.add_argument("--codebleu", action="store_true", help="also CodeBLEU (aij2021)")
    parser.add_argument("--inputs", type=int, default=10, help="inputs per function (10)")
    parser.add_argument("--time-limit", type=float, default=1.0,
                        help="seconds per call (1.0)")
    parser.add_argument("--memory-mb", type=int, default=1024,
                        help="address-space limit per subprocess (1024)")
    parser.add_argument("--jobs", type=int, default=2, help="subprocesses at a time (2)")
    parser.add_argument("--failures", action="store_true", help="list every failing key")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _load_pairs(args: argparse.Namespace) -> tuple[dict[str, str], dict[str, str]]:
    """(java by key, reference Python token text by key)."""
    from fusionbrain.utils.io import read_json

    if args.avatar:
        if args.requests or args.true:
            raise UserError("use either --avatar or --requests/--true, not both")
        from fusionbrain.tasks.c2c.data import AVATAR_DIR, read_avatar

        samples = read_avatar(AVATAR_DIR / f"{args.avatar}.jsonl")
        return ({str(i): s.java for i, s in enumerate(samples)},
                {str(i): s.python for i, s in enumerate(samples)})
    if not (args.requests and args.true):
        raise UserError("give --avatar SPLIT, or --requests and --true")
    java = read_json(args.requests, expect=dict)
    true = read_json(args.true, expect=dict)
    for key, ref in true.items():
        if key not in java:
            raise UserError("no Java request for this key", path=args.requests, key=key)
        for value, path in ((ref, args.true), (java[key], args.requests)):
            if not isinstance(value, str):
                raise UserError(f"expected a string, got {type(value).__name__}", path=path,
                                key=key)
    return {k: java[k] for k in true}, dict(true)


def _translations(args: argparse.Namespace, java: dict[str, str],
                  true: dict[str, str]) -> dict[str, str]:
    from fusionbrain.tasks.c2c import repair
    from fusionbrain.utils.io import read_json

    chosen = [o for o, v in (("--pred", args.pred), ("--gold", args.gold),
                             ("--rules", args.rules)) if v]
    if len(chosen) != 1:
        raise UserError("give exactly one of --pred, --gold, --rules"
                        + (f" (got {', '.join(chosen)})" if chosen else ""))
    if args.repair != "none" and not args.pred:
        raise UserError("--repair applies to --pred")
    if args.gold:
        return dict(true)
    if args.rules:
        return {k: repair.translate_java(java[k]) for k in true}
    pred = read_json(args.pred, expect=dict)
    out: dict[str, str] = {}
    for key in true:
        value = pred.get(key, "")
        if not isinstance(value, str):
            raise UserError(f"expected a string, got {type(value).__name__}", path=args.pred,
                            key=key)
        if args.repair != "none":
            value = repair.repair(value, java[key], rule_first=args.repair == "rule-first")
        out[key] = value
    return out


def _write_challenge(folder: str, java: dict[str, str], true: dict[str, str]) -> None:
    from fusionbrain.utils.io import write_json_atomic

    write_json_atomic(Path(folder) / "input" / "C2C" / "requests.json", java)
    write_json_atomic(Path(folder) / "true" / "true_C2C.json", true)


def run(args: argparse.Namespace) -> int:
    from fusionbrain.tasks.c2c import check
    from fusionbrain.tasks.c2c.code_tokens import detokenize

    for name in ("inputs", "jobs", "memory_mb"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if not args.time_limit > 0:
        raise UserError("--time-limit must be positive")
    java, true = _load_pairs(args)
    if args.write_challenge:
        if not args.avatar:
            raise UserError("--write-challenge needs --avatar")
        _write_challenge(args.write_challenge, java, true)
        print(f"wrote {len(true)} pairs to {args.write_challenge}/input/C2C/requests.json "
              f"and {args.write_challenge}/true/true_C2C.json")
        return 0
    hyp = _translations(args, java, true)
    if args.write_pred:
        from fusionbrain.utils.io import write_json_atomic

        write_json_atomic(args.write_pred, hyp)
    items = [(k, java[k], detokenize(true[k]), detokenize(hyp[k])) for k in true]

    def progress(n: int, total: int) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\r{n}/{total}", end="", file=sys.stderr, flush=True)

    results = check.check_all(items, jobs=args.jobs, n_inputs=args.inputs,
                              time_per_input=args.time_limit, memory_mb=args.memory_mb,
                              progress=progress)
    if not args.json and sys.stderr.isatty():
        print(file=sys.stderr)
    report = check.summary(results)
    if args.codebleu:
        from fusionbrain.tasks.c2c.metric import score

        report["codebleu"] = score(hyp, true)["score"]
    report["failures"] = {r.key: r.reason for r in results if not r.passed}
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False)
        print()
        return 0
    print(f"C2C differential check: {report['passed']} of {report['n']} functions compute the "
          f"reference's outputs")
    print(f"  computational_accuracy  {report['computational_accuracy']:.4f}")
    print(f"  parse                   {report['parse']:.4f}")
    print(f"  untestable              {report['untestable']} (the reference fails on every "
          f"input; counted as failures)")
    print(f"  accuracy_on_testable    {report['accuracy_on_testable']:.4f}")
    if "codebleu" in report:
        print(f"  codebleu                {report['codebleu']:.4f}")
    if args.failures:
        for key, reason in report["failures"].items():
            print(f"  FAIL {key}: {reason}")
    return 0
