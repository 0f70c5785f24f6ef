"""``fusionbrain train`` and ``torchrun --nproc-per-node N -m fusionbrain.train``: one entry.

Under torchrun every rank runs :func:`main`; the engine joins the process group from the
environment torchrun sets (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR/PORT).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fusionbrain.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fusionbrain.tasks import TASKS

    parser.add_argument("--mode", choices=["fusion", "single"], default="fusion",
                        help="fusion: all tasks in one model (default); single: one task")
    parser.add_argument("--task", help=f"the task of --mode single ({', '.join(TASKS)})")
    parser.add_argument("--data", type=Path,
                        help="dataset folder (DIR/train/<TASK>/, DIR/valid/<TASK>/); "
                             "optional with --resume")
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, logs)")
    parser.add_argument("--config", type=Path,
                        help="training config JSON (default: configs/cpu-main.json)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="optimizer steps in total (overrides config)")
    length.add_argument("--epochs", type=float, help="passes over the training data")
    parser.add_argument("--init", metavar="MODEL",
                        help="start from this model (model or run folder) instead of a fresh "
                             "one: a second training stage (overrides the config's 'init')")
    parser.add_argument("--resume", action="store_true",
                        help="continue RUN from its last checkpoint, exactly")
    parser.add_argument("--stop-at", type=int, metavar="STEP",
                        help="stop after STEP as if killed (checkpoint written; then --resume)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--from-corrections", type=Path, metavar="PILOT.sqlite",
                        help="fine-tune only the HTR head on a pilot database's reviewed items "
                             "(fusionbrain serve); with --model and --out")
    parser.add_argument("--model", type=Path,
                        help="with --from-corrections: the model folder to start from "
                             "(default: the database's active version)")
    parser.add_argument("--htr-test-words", type=int, default=100, metavar="N",
                        help="with --from-corrections: embedded HTR test words in the report")


def run(args: argparse.Namespace) -> int:
    from fusionbrain.train.config import load_config
    from fusionbrain.train.engine import RunSpec, train

    if args.steps is not None and args.steps < 1:
        raise UserError("--steps must be >= 1")
    if getattr(args, "from_corrections", None) is not None:
        from fusionbrain.serve.finetune import run_cli

        return run_cli(args.from_corrections, args.model, args.out, args.steps or 60,
                       "if-better", htr_test_n=args.htr_test_words)
    if args.epochs is not None and not (0 < args.epochs <= 1e6):  # also NaN and inf
        raise UserError(f"--epochs must be a number in (0, 1e6], got {args.epochs}")
    if args.stop_at is not None and args.stop_at < 1:
        raise UserError(f"--stop-at must be >= 1, got {args.stop_at}")
    if args.steps is not None and args.steps > 10**9:
        raise UserError(f"--steps must be <= 1e9, got {args.steps}")
    if not args.resume and args.data is None:
        raise UserError("--data is required (except with --resume)")
    if args.config is None and not args.resume:
        from fusionbrain.train.experiment_cli import default_config_path

        args.config = default_config_path()
    cfg = load_config(args.config)
    if getattr(args, "init", None) is not None:
        if args.resume:
            raise UserError("--init starts a new run; --resume continues one (its own init)")
        cfg.init = str(args.init)
        cfg.validate(str(args.config))
    spec = RunSpec(mode=args.mode, task=args.task, data=args.data, out=args.out,
                   steps=args.steps, epochs=args.epochs, resume=args.resume,
                   stop_at=args.stop_at, progress=not args.no_progress)
    summary = train(spec, cfg)
    if summary.get("complete") and summary.get("valid"):
        v = summary["valid"]
        print(f"valid S {v['S']:.3f}: " + ", ".join(
            f"{t} {r['score']:.3f}" for t, r in v["tasks"].items()))
    if summary:
        print(f"run folder: {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fusionbrain.train",
                                     description="train in Fusion or Single-task mode")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UserError as e:
        print(f"fusionbrain train: error: {e}", file=sys.stderr)
        return e.exit_code
    finally:
        _shutdown()


def _shutdown() -> None:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception:
        pass
