"""``fusionbrain predict``: run a model on a challenge ``input/`` folder.

Writes ``prediction_<TASK>.json`` for every task that has an input folder (others are
skipped), each atomically, with a progress bar; energy and CO2 of the run are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fusionbrain.errors import UserError
from fusionbrain.scoring import pred_file_name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fusionbrain.tasks import TASKS

    parser.add_argument("--model", type=Path,
                        help="a run folder (uses best/, else last/), a model folder or a "
                             "shipped model's name (default: $FUSIONBRAIN_MODEL, else the "
                             "shipped models/fusionbrain-cpu-long)")
    parser.add_argument("--input", required=True, type=Path,
                        help=f"challenge input folder ({', '.join(t + '/' for t in TASKS)} "
                             "inside)")
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
    from fusionbrain.tasks import task_module
    from fusionbrain.train.engine import predict_task
    from fusionbrain.utils.io import write_json_atomic

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    present = input_tasks(input_dir, tasks)
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
        outputs, bad = drop_non_finite(outputs)
        if bad:
            ids = ", ".join(str(getattr(samples[i], "id", i)) for i in bad[:5])
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            print(f"warning: {task}: {len(bad)} item(s) with non-finite model outputs "
                  f"(NaN/inf) are predicted as empty: {ids}{more}", file=sys.stderr)
        prediction = fmt.prediction_json(samples, outputs)
        write_json_atomic(output_dir / pred_file_name(task), prediction)
        done[task] = len(prediction)
    if failed:
        raise UserError(f"could not predict {', '.join(failed)} (see the errors above); "
                        f"the other tasks' predictions are written", path=input_dir)
    return done


LOCK_FILE = ".fusionbrain-predict.lock"


def input_tasks(input_dir: Path, tasks: list[str] | None = None) -> list[str]:
    """The tasks with a folder in ``input_dir`` (checked before the slow model load)."""
    from fusionbrain.tasks import TASKS

    if not input_dir.is_dir():
        raise UserError("input folder not found" if not input_dir.exists()
                        else "not a folder", path=input_dir)
    present = [t for t in TASKS if (input_dir / t).is_dir() and (tasks is None or t in tasks)]
    if not present:
        raise UserError(f"no task folder inside (expected any of {', '.join(TASKS)})",
                        path=input_dir)
    return present


@contextlib.contextmanager
def output_lock(output_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``output_dir`` while predicting into it.

    Two ``predict`` runs into one folder would otherwise leave a mix of two models' files.
    The lock is ``flock`` on a file in the folder, removed at the end; the kernel releases
    it when the process ends, even when killed, so a file left behind never blocks a run.
    """
    import fcntl

    from fusionbrain.utils.io import ensure_folder

    ensure_folder(output_dir)
    path = output_dir / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"cannot write: {e.strerror}", path=output_dir) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError("another `fusionbrain predict` is writing into this folder "
                            f"(it holds {LOCK_FILE}); wait for it to finish or choose "
                            "another --output", path=output_dir) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file as we opened it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still locked: a waiter then locks a fresh file
        os.close(fd)


def _finite(obj: Any) -> bool:
    """No NaN or infinity anywhere in a (nested) model output."""
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_finite(v) for v in obj)
    if hasattr(obj, "tolist") and not isinstance(obj, str):  # a tensor or numpy value
        return _finite(obj.tolist())
    return True


def drop_non_finite(outputs: list) -> tuple[list, list[int]]:
    """Outputs with non-finite numbers replaced by an empty output of the same kind (what an
    unreadable input gets), and their indices: a NaN must never reach the JSON file, which
    would then not be standard JSON and be refused by ``score``."""
    out, bad = [], []
    for i, o in enumerate(outputs):
        if _finite(o):
            out.append(o)
        else:
            bad.append(i)
            out.append({} if isinstance(o, dict) else [] if isinstance(o, (list, tuple))
                       else None)
    return out, bad


def run(args: argparse.Namespace) -> int:
    import torch

    from fusionbrain.model.pretrained import resolve_model
    from fusionbrain.train.energy import EnergyMeter, format_energy
    from fusionbrain.train.engine import load_model

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: CUDA is not available")
    device = "cuda" if args.device == "cuda" or (
        args.device == "auto" and torch.cuda.is_available()) else "cpu"
    # fail before the (slow) model load, not after it: no input, an output folder that
    # cannot be written, or another predict writing into it
    input_tasks(args.input)
    model_path = resolve_model(args.model)  # no --model: the default model, or why not
    if args.model is None:
        print(f"model: {model_path} (the default; choose another with --model)", file=sys.stderr)
    with output_lock(args.output):
        if not os.access(args.output, os.W_OK | os.X_OK):
            raise UserError("cannot write: permission denied", path=args.output)
        model = load_model(model_path).to(device)
        model.eval()
        meter = EnergyMeter(None, enabled=not args.no_energy)
        try:
            with meter.phase("predict"):
                done = predict_folder(model, args.input, args.output,
                                      batch_size=args.batch_size,
                                      progress=not args.no_progress)
        finally:
            meter.close()
    summary = meter.save(args.energy) if args.energy else meter.summary()
    for task, n in done.items():
        print(f"{task}: {n} predictions -> {args.output / pred_file_name(task)}")
    print(format_energy(summary))
    return 0
