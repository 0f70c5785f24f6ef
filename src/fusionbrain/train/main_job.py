"""``fusionbrain run``: the main job, end to end on a small CPU budget.

Builds the small embedded dataset (once), trains the Fusion model (``configs/cpu-main.json``,
shipped in the package: the pretrained body cut to a few layers, the task mix set by the
automatic balancer, about 10 minutes on 2 cores), predicts the test input, scores it beside
each task's trivial baseline, and prints S, kWh and CO2. ``--seeds N`` repeats it with N
seeds and prints mean ± sd. Re-running it resumes or reuses what is already done.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fusionbrain.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/main"),
                        help="output folder (default runs/main)")
    parser.add_argument("--data", type=Path,
                        help="dataset folder (default OUT/data, built when missing)")
    parser.add_argument("--config", type=Path,
                        help="training config JSON (default configs/cpu-main.json)")
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="train N times (the config's seed, +1, ...) into OUT/seed-<S> and "
                             "report mean ± sd over them (default 1: OUT itself)")
    parser.add_argument("--no-progress", action="store_true")


def data_ready(data: Path) -> bool:
    """A complete dataset: `data build` writes manifest.json last."""
    return (data / "manifest.json").is_file() and (data / "train").is_dir() \
        and (data / "test" / "true").is_dir() and (data / "test" / "input").is_dir()


def build_data(data: Path) -> None:
    """``fusionbrain data build --out DATA --size small`` (through the CLI: its own contract)."""
    from fusionbrain.cli import main as cli_main

    print(f"building the small dataset in {data} ...", flush=True)
    rc = cli_main(["data", "build", "--out", str(data), "--size", "small"])
    if rc != 0 or not data_ready(data):
        raise UserError(f"building the dataset failed (exit status {rc})", path=data)


def run(args: argparse.Namespace) -> int:
    from fusionbrain.train.config import default_config_path, load_config
    from fusionbrain.train.experiment import aggregate, run_seeds, write_seeds_report

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise UserError("--out must be a folder, and this is a file", path=out)
    seeds = getattr(args, "seeds", 1)
    if not 1 <= seeds <= 100:
        raise UserError(f"--seeds must be in [1, 100], got {seeds}")
    # the config is checked first: a bad key must not cost the data build
    config_path = args.config or default_config_path()
    cfg = load_config(config_path)
    data: Path = args.data or out / "data"
    if not data_ready(data):
        if args.data is not None:
            raise UserError("not a built dataset (train/, test/input/, test/true/ expected)",
                            path=data)
        build_data(data)
    print(f"training config: {config_path}", flush=True)
    per_seed = run_seeds(data, out, cfg, seeds, budget=None, sampling=None,
                         progress=not args.no_progress, singles=False)
    for results in per_seed:
        print(summary_table(results))
    if seeds > 1:
        agg = aggregate(per_seed, [cfg.seed + k for k in range(seeds)])
        write_seeds_report(out, agg)
        print("\n" + seeds_table(agg))
    print(f"\nreport: {out / 'report.md'}")
    return 0


def seeds_table(agg: dict) -> str:
    """The main job's table over several seeds: mean ± sd, worst seed, above on every seed."""
    from fusionbrain.train.experiment import mean_sd

    f = agg["fusion"]
    rows = [f"over {len(agg['seeds'])} seeds {agg['seeds']}:",
            f"{'task':6s} {'fusion mean ± sd':>18s} {'min':>7s} {'baseline':>9s}  "
            "above baseline on every seed"]
    for t in agg["tasks"]:
        m, sd = mean_sd(f["scores"][t])
        rows.append(f"{t:6s} {m:9.3f} ± {sd:6.3f} {min(f['scores'][t]):7.3f} "
                    f"{agg['baseline'][t]:9.3f}  {'yes' if f['above_every_seed'][t] else 'NO'}")
    m, sd = mean_sd(f["S"])
    rows.append(f"{'S':6s} {m:9.3f} ± {sd:6.3f} {min(f['S']):7.3f} {agg['baseline_S']:9.3f}")
    rows.append("every task above its baseline on every seed: "
                + ("yes" if all(f["above_every_seed"].values()) else "NO"))
    return "\n".join(rows)


def summary_table(results: dict) -> str:
    """The per-task table printed at the end of the main job."""
    tasks = results["tasks"]
    fusion = results["fusion"]
    base = results["baseline"]
    rows = [f"{'task':6s} {'fusion':>8s} {'baseline':>9s}  above baseline"]
    above = []
    for t in tasks:
        f = fusion["test"]["tasks"][t]["score"]
        b = base["tasks"][t]["score"]
        above.append(f > b)
        rows.append(f"{t:6s} {f:8.3f} {b:9.3f}  {'yes' if f > b else 'NO'}")
    rows.append(f"{'S':6s} {fusion['test']['S']:8.3f} {base['S']:9.3f}")
    e = fusion["energy"].get("total", {})
    rows += ["",
             f"energy: {e.get('kwh', float('nan')):.5f} kWh, "
             f"{e.get('kg_co2eq', float('nan')):.6f} kg CO2eq "
             f"(train + eval + predict; {fusion['energy'].get('method', '?')})",
             f"train wall time: {fusion.get('train_wall_s') or 0:.0f} s, "
             f"steps: {fusion.get('steps')}, mix: {fusion.get('mix')}",
             f"every task above its baseline: {'yes' if all(above) else 'NO'}"]
    if fusion.get("balance_history"):
        last = fusion["balance_history"][-1]
        rows.insert(-1, "balancer weights at step {}: {}".format(last["step"], " ".join(
            f"{t} {w:.2f}" for t, w in last["weights"].items())))
    return "\n".join(rows)
