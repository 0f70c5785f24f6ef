"""``fusionbrain experiment fusion-vs-single``: see :mod:`fusionbrain.train.experiment`."""

from __future__ import annotations

import argparse
from pathlib import Path

from fusionbrain.errors import UserError

EXPERIMENTS = ("fusion-vs-single",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", choices=EXPERIMENTS,
                        help="fusion-vs-single: Fusion once and each task alone, same budget")
    parser.add_argument("--data", required=True, type=Path,
                        help="dataset folder from `fusionbrain data build` (train/, valid/, test/)")
    parser.add_argument("--out", required=True, type=Path, help="experiment folder (resumable)")
    parser.add_argument("--config", type=Path,
                        help="training config JSON (default: the package's configs/cpu-main.json)")
    parser.add_argument("--budget", type=int, metavar="STEPS",
                        help="optimizer steps per task (default: config steps / tasks)")
    parser.add_argument("--sampling", default="round_robin",
                        help="Fusion's task rule (default round_robin: exactly the same steps "
                             "per task as each Single run)")
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="repeat with N seeds into OUT/seed-<S>; report mean ± sd")
    parser.add_argument("--no-progress", action="store_true")


def default_config_path() -> Path:
    """Kept for callers of the old place; the function lives in :mod:`~.config`."""
    from fusionbrain.train.config import default_config_path as default

    return default()


def run(args: argparse.Namespace) -> int:
    from fusionbrain.train.config import default_config_path, load_config
    from fusionbrain.train.experiment import aggregate, run_seeds, write_seeds_report
    from fusionbrain.train.sampler import RULES

    if args.budget is not None and args.budget < 1:
        raise UserError("--budget must be >= 1")
    if args.sampling not in RULES:
        raise UserError(f"--sampling must be one of {', '.join(RULES)}")
    if not 1 <= args.seeds <= 100:
        raise UserError(f"--seeds must be in [1, 100], got {args.seeds}")
    cfg = load_config(args.config or default_config_path())
    # equal per-task budgets: Fusion's mix is the sampling rule, not the automatic balancer
    cfg.balancer = "fixed"
    per_seed = run_seeds(args.data, args.out, cfg, args.seeds, budget=args.budget,
                         sampling=args.sampling, progress=not args.no_progress)
    print(f"steps per task: {per_seed[0]['steps_per_task']}")
    if args.seeds > 1:
        write_seeds_report(args.out, aggregate(per_seed, [cfg.seed + k
                                                          for k in range(args.seeds)]))
        print((args.out / "report.md").read_text(encoding="utf-8").strip())
    else:
        print((args.out / "report.md").read_text(encoding="utf-8").split("## Cost")[0].strip())
    print(f"\nreport: {args.out / 'report.md'}")
    return 0
