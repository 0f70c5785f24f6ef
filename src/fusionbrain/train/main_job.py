"""``fusionbrain run``: the main job, end to end on a small CPU budget.

Builds the small embedded dataset (once), trains the Fusion model (``configs/cpu-main.json``:
the pretrained body cut to a few layers, about 10 minutes on 2 cores), predicts the test
input, scores it beside each task's trivial baseline, and prints S, kWh and CO2.
Re-running it resumes or reuses what is already done.
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
    from fusionbrain.train.config import load_config
    from fusionbrain.train.experiment import run_experiment
    from fusionbrain.train.experiment_cli import default_config_path

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise UserError("--out must be a folder, and this is a file", path=out)
    # the config is checked first: a bad key must not cost the data build
    config_path = args.config or default_config_path()
    cfg = load_config(config_path)
    data: Path = args.data or out / "data"
    if not data_ready(data):
        if args.data is not None:
            raise UserError("not a built dataset (train/, test/input/, test/true/ expected)",
                            path=data)
        build_data(data)
    print(f"training config: {config_path or 'built-in defaults'}", flush=True)
    results = run_experiment(data, out, cfg, budget=None, sampling=None,
                             progress=not args.no_progress, singles=False)
    print(summary_table(results))
    print(f"\nreport: {out / 'report.md'}")
    return 0


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
    return "\n".join(rows)
