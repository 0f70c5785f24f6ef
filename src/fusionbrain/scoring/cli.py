"""``fusionbrain score``: score one task's files, or a whole prediction folder.

    fusionbrain score --task HTR --pred prediction_HTR.json --true true_HTR.json [--json]
    fusionbrain score --pred-dir output/ --true-dir true/ [--profile strict] [--json]

Torch-free; exit status 0 when scored (whether or not S reaches the bar), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fusionbrain.errors import UserError
from fusionbrain.scoring.common import PROFILES

# Parts printed first, in this order; anything else the metric returns follows.
_MAIN_PARTS = ("score", "string_accuracy", "cer", "wer", "accuracy", "by_lang", "f1",
               "precision", "recall", "tp", "fp", "fn", "codebleu")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fusionbrain.tasks import task_list

    parser.add_argument("--task", help=f"task of --pred/--true: {task_list()} "
                        "(case-insensitive)")
    parser.add_argument("--pred", metavar="FILE", help="prediction_<TASK>.json")
    parser.add_argument("--true", metavar="FILE", help="true_<TASK>.json")
    parser.add_argument("--pred-dir", metavar="DIR", help="folder with prediction_<TASK>.json files")
    parser.add_argument("--true-dir", metavar="DIR", help="folder with true_<TASK>.json files; "
                        "every task whose truth file is there is scored")
    parser.add_argument("--profile", choices=PROFILES, default="aij2021",
                        help="aij2021: the official scripts' rules (default); strict: fixed rules")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)


def _ordered(result: dict) -> list[tuple[str, Any]]:
    skip = {"task", "profile"}
    first = [(k, result[k]) for k in _MAIN_PARTS if k in result]
    rest = [(k, v) for k, v in result.items() if k not in _MAIN_PARTS and k not in skip]
    return first + rest


def _print_one(result: dict) -> None:
    print(f"{result['task']} ({result['profile']} profile)")
    width = max(len(k) for k, _ in _ordered(result))
    for key, value in _ordered(result):
        print(f"  {key:<{width}}  {_fmt(value)}")


def _print_dir(report: dict) -> None:
    from fusionbrain.scoring import PASS_MARK
    from fusionbrain.tasks import TASKS

    print(f"profile: {report['profile']}")
    print(f"{'task':<6}  {'score':>8}  {'rounded':>7}  parts")
    for task in TASKS:
        r = report["tasks"].get(task)
        if r is None:
            print(f"{task:<6}  {'-':>8}  {0:>7.3f}  (no truth file: counts 0)")
            continue
        parts = [f"{k} {_fmt(v)}" for k, v in _ordered(r)
                 if k != "score" and not isinstance(v, dict)][:4]
        print(f"{task:<6}  {r['score']:>8.6f}  {round(r['score'], 3):>7.3f}  {'; '.join(parts)}")
    verdict = "passed" if report["passed"] else "not passed"
    print(f"S = {report['S']:.3f}  ({verdict}: S >= {PASS_MARK} is the challenge's bar)")


def run(args: argparse.Namespace) -> int:
    from fusionbrain.scoring import score_dir, score_files

    single = [o for o, v in (("--task", args.task), ("--pred", args.pred), ("--true", args.true))
              if v is not None]
    folder = [o for o, v in (("--pred-dir", args.pred_dir), ("--true-dir", args.true_dir))
              if v is not None]
    if single and folder:
        raise UserError(f"use either --task/--pred/--true or --pred-dir/--true-dir, not both "
                        f"(got {', '.join(single + folder)})")
    if folder:
        if len(folder) != 2:
            raise UserError("--pred-dir and --true-dir go together")
        report = score_dir(args.pred_dir, args.true_dir, args.profile)
        if args.json:
            json.dump(report, sys.stdout, ensure_ascii=False)
            print()
        else:
            _print_dir(report)
        return 0
    if len(single) != 3:
        raise UserError("give --task, --pred and --true (or --pred-dir and --true-dir)")
    result = score_files(args.task, args.pred, args.true, args.profile)
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False)
        print()
    else:
        _print_one(result)
    return 0
