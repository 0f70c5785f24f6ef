"""``fusionbrain predict``: run a model on a challenge ``input/`` folder.

Writes ``prediction_<TASK>.json`` for every task that has an input folder (others are
skipped), each atomically, with a progress bar; energy and CO2 of the run are printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from fusionbrain.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path,
                        help="a run folder (uses best/, else last/) or a model folder")
    parser.add_argument("--input", required=True, type=Path,
                        help="challenge input folder (C2C/, HTR/, zsOD/, VQA/ inside)")
    parser.add_argument("--output", required=True, type=Path,
                        help="folder for prediction_<TASK>.json")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--energy", type=Path, metavar="FILE",
                        help="also write the energy/CO2 summary to this JSON file")
    parser.add_argument("--no-energy", action="store_true", help="skip CodeCarbon tracking")
    parser.add_argument("--no-progress", action="store_true")


def predict_folder(model: Any, input_dir: str | os.PathLike[str],
                   output_dir: str | os.PathLike[str], *, batch_size: int = 16,
                   progress: bool = True, tasks: list[str] | None = None) -> dict[str, int]:
    """Predict every task with an input folder (of ``tasks``, default all the model has).

    Returns {task: number of predictions}.
    """
    from fusionbrain.tasks import TASKS, task_module
    from fusionbrain.train.engine import predict_task
    from fusionbrain.utils.io import write_json_atomic

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise UserError("input folder not found", path=input_dir)
    present = [t for t in TASKS if (input_dir / t).is_dir() and (tasks is None or t in tasks)]
    if not present:
        raise UserError(f"no task folder inside (expected any of {', '.join(TASKS)})",
                        path=input_dir)
    done: dict[str, int] = {}
    failed: list[str] = []
    for task in present:
        if task not in model.task_names:
            print(f"skipping {task}: the model has no {task} head", file=sys.stderr)
            continue
        fmt = task_module(task, "formats")
        try:
            samples = fmt.read_input(input_dir / task)
        except UserError as e:
            # One bad task folder must not cost the other tasks their predictions.
            print(f"error: {e}; {task} not predicted", file=sys.stderr)
            failed.append(task)
            continue
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(samples), desc=f"predict {task}", unit="sample",
                       dynamic_ncols=True, mininterval=1.0)
        try:
            outputs = predict_task(model, task, samples, batch_size,
                                   progress=bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
        prediction = fmt.prediction_json(samples, outputs)
        write_json_atomic(output_dir / f"prediction_{task}.json", prediction)
        done[task] = len(prediction)
    if failed:
        raise UserError(f"could not predict {', '.join(failed)} (see the errors above); "
                        f"the other tasks' predictions are written", path=input_dir)
    return done


def run(args: argparse.Namespace) -> int:
    import torch

    from fusionbrain.train.energy import EnergyMeter, format_energy
    from fusionbrain.train.engine import load_model

    if args.batch_size < 1:
        raise UserError("--batch-size must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: CUDA is not available")
    device = "cuda" if args.device == "cuda" or (
        args.device == "auto" and torch.cuda.is_available()) else "cpu"
    from fusionbrain.utils.io import ensure_folder

    ensure_folder(args.output)  # fail before the (slow) model load, not after predicting
    model = load_model(args.model).to(device)
    model.eval()
    meter = EnergyMeter(None, enabled=not args.no_energy)
    try:
        with meter.phase("predict"):
            done = predict_folder(model, args.input, args.output, batch_size=args.batch_size,
                                  progress=not args.no_progress)
    finally:
        meter.close()
    summary = meter.save(args.energy) if args.energy else meter.summary()
    for task, n in done.items():
        print(f"{task}: {n} predictions -> {args.output / f'prediction_{task}.json'}")
    print(format_energy(summary))
    return 0
