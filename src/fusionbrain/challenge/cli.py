"""``fusionbrain challenge``: run the challenge on an organiser's machine.

    fusionbrain challenge init DIR --data BUILT_DATA [--set time_limit_s=600 ...]
    fusionbrain challenge submit DIR SUBMISSION.zip --team NAME
    fusionbrain challenge run DIR [--unsafe-no-sandbox]
    fusionbrain challenge leaderboard DIR [--private] [--html OUT.html] [--json]
    fusionbrain challenge show DIR ID          # one submission: status, reason, scores, log tails
    fusionbrain challenge pack FOLDER --out SUBMISSION.zip
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fusionbrain.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="challenge_command", required=True, metavar="ACTION")
    i = sub.add_parser("init", help="make an organiser's folder: hidden test inputs and "
                       "truths, database, config, baseline rows")
    i.add_argument("dir", metavar="DIR")
    i.add_argument("--data", required=True, metavar="BUILT_DATA",
                   help="a built dataset (fusionbrain data build): its test/ split is the "
                   "hidden test set, its train/ split fits the baseline rows")
    i.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a config setting, e.g. time_limit_s=600 memory_limit_mb=4096 "
                   "submissions_per_day=3 public_fraction=0.5 split_seed=0 (repeatable)")
    i.add_argument("--no-baseline", action="store_true", help="no baseline rows")

    s = sub.add_parser("submit", help="check a submission zip, store it, queue it")
    s.add_argument("dir", metavar="DIR")
    s.add_argument("zip", metavar="SUBMISSION.zip")
    s.add_argument("--team", required=True)

    r = sub.add_parser("run", help="run queued submissions in the sandbox and score them")
    r.add_argument("dir", metavar="DIR")
    r.add_argument("--limit", type=int, default=None, metavar="N",
                   help="run at most N queued submissions")
    r.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run WITHOUT isolation (trusted local testing only; the submission "
                   "finds its folders in $FB_INPUT / $FB_OUTPUT)")

    lb = sub.add_parser("leaderboard", help="best submission per team: table, HTML or JSON")
    lb.add_argument("dir", metavar="DIR")
    lb.add_argument("--private", action="store_true",
                    help="rank on the private part (the final ranking)")
    lb.add_argument("--html", metavar="OUT.html", help="also write an HTML page")
    lb.add_argument("--json", action="store_true",
                    help="print every submission (team, status, reason, per-task scores, S) "
                    "as JSON")

    sh = sub.add_parser("show", help="one submission: status, reason, scores, log tails")
    sh.add_argument("dir", metavar="DIR")
    sh.add_argument("id", type=int, metavar="ID")

    p = sub.add_parser("pack", help="zip a submission folder (checked as `submit` would)")
    p.add_argument("folder", metavar="FOLDER", help="holds metadata.json and the code")
    p.add_argument("--out", required=True, metavar="SUBMISSION.zip")


def run(args: argparse.Namespace) -> int:
    return {"init": _init, "submit": _submit, "run": _run, "leaderboard": _leaderboard,
            "show": _show, "pack": _pack}[args.challenge_command](args)


def _init(args: argparse.Namespace) -> int:
    from fusionbrain.challenge.config import ChallengeConfig, parse_overrides
    from fusionbrain.challenge.runner import init

    cfg = ChallengeConfig(**parse_overrides(args.set)).check()
    init(args.dir, args.data, cfg, baseline=not args.no_baseline)
    return 0


def _submit(args: argparse.Namespace) -> int:
    from fusionbrain.challenge.runner import submit

    sub_id = submit(args.dir, args.zip, args.team)
    print(f"submission #{sub_id} of team {args.team!r} queued")
    return 0


def _run(args: argparse.Namespace) -> int:
    from fusionbrain.challenge.runner import run_queue

    done = run_queue(args.dir, unsafe_no_sandbox=args.unsafe_no_sandbox, limit=args.limit)
    if not done:
        print("nothing queued")
    return 0


def _load(dir_: str) -> list[dict]:
    from fusionbrain.challenge.config import Layout
    from fusionbrain.challenge.store import Store

    layout = Layout(dir_).check()
    with Store(layout.database) as store:
        return store.all()


def _leaderboard(args: argparse.Namespace) -> int:
    from fusionbrain.challenge import leaderboard as lb
    from fusionbrain.utils.io import atomic_open

    subs = _load(args.dir)
    ranked = lb.rows(subs, private=args.private)
    if args.html:
        with atomic_open(args.html, "w", encoding="utf-8") as f:
            f.write(lb.html_page(ranked, subs, private=args.private))
    if args.json:
        json.dump(lb.json_list(subs, private=args.private), sys.stdout, ensure_ascii=False,
                  indent=1)
        print()
    else:
        print(lb.text_table(ranked, private=args.private))
        if args.html:
            print(f"wrote {args.html}")
    return 0


def _show(args: argparse.Namespace) -> int:
    subs = {s["id"]: s for s in _load(args.dir)}
    s = subs.get(args.id)
    if s is None:
        raise UserError(f"no submission #{args.id}", path=args.dir)
    print(f"#{s['id']} team {s['team']!r}  {s['status']}  submitted {s['submitted_at']}")
    if s["reason"]:
        print(f"reason: {s['reason']}")
    if s["wall_s"] is not None:
        print(f"wall {s['wall_s']:.1f} s, exit code {s['exit_code']}, sandbox: {s['sandbox']}")
    pub = s["scores"].get("public")
    if pub:
        print("public: " + ", ".join(f"{t} {r['score']:.3f}" for t, r in pub["tasks"].items())
              + f"; S {pub['S']:.3f}")
    for name in ("stdout_tail", "stderr_tail"):
        if s[name]:
            print(f"--- last lines of {name[:6]} ---")
            print(s[name])
    return 0


def _pack(args: argparse.Namespace) -> int:
    from fusionbrain.challenge.submission import pack

    n = pack(Path(args.folder), Path(args.out))
    print(f"wrote {args.out} ({n} files)")
    return 0
