"""What the fp16 export costs: file size, and predictions of the fp16 model against the
fp32 model it was exported from, on the first N validation samples of each task.

    python bench/export_fp16.py --model RUN_OR_MODEL_DIR --data DATA_DIR [--n 100]
                                [--out bench/results/export_fp16.md]

Exports with ``fusionbrain export`` into a temporary folder; writes a Markdown report
(machine, command, figures). zsOD outputs are compared box by box (same count per phrase,
largest coordinate and score differences); the other tasks' predictions must be equal.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def _compare_zsod(pa: list, pb: list) -> str:
    phrases = count_diff = boxes = 0
    coord = score = 0.0
    for da, db in zip(pa, pb, strict=True):
        for ph, boxes_a in da.items():
            phrases += 1
            boxes_b = db.get(ph, [])
            if len(boxes_a) != len(boxes_b):
                count_diff += 1
                continue
            for x, y in zip(boxes_a, boxes_b, strict=True):
                boxes += 1
                score = max(score, abs(x[0] - y[0]))
                coord = max(coord, max(abs(u - v) for u, v in zip(x[1:], y[1:], strict=True)))
    return (f"{phrases - count_diff}/{phrases} phrases with the same box count; over {boxes} "
            f"boxes largest score difference {score:.2g}, largest coordinate difference "
            f"{coord:.2g} px")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="run folder or model folder")
    ap.add_argument("--data", required=True, type=Path, help="data folder with valid/<TASK>/")
    ap.add_argument("--n", type=int, default=100, help="validation samples per task")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="bench/results/export_fp16.md")
    args = ap.parse_args()

    import torch

    from fusionbrain.cli import main as cli
    from fusionbrain.model import FusionBrain
    from fusionbrain.train.engine import find_model_dir, load_split

    torch.set_num_threads(args.threads)
    src = find_model_dir(args.model)
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "exported"
        if cli(["export", "--model", str(args.model), "--out", str(out)]) != 0:
            return 1
        w32 = (src / "trainable.safetensors").stat().st_size
        w16 = (out / "trainable.safetensors").stat().st_size
        a = FusionBrain.from_pretrained(src).eval()
        b = FusionBrain.from_pretrained(out).eval()
        valid = load_split(args.data, "valid", a.task_names, report=False)
        for task, samples in valid.items():
            samples = samples[: args.n]
            t0 = time.perf_counter()
            pa, pb = a.predict(task, samples), b.predict(task, samples)
            wall = time.perf_counter() - t0
            if task == "zsOD":
                what = _compare_zsod(pa, pb)
            else:
                same = sum(x == y for x, y in zip(pa, pb, strict=True))
                what = f"{same}/{len(samples)} identical predictions"
            rows.append(f"| {task} | {what} | {wall:.0f} s |")
    load = os.getloadavg()
    text = "\n".join([
        "## fp16 export: size and agreement with the fp32 model (issue #10)", "",
        f"Command: `python {' '.join(sys.argv)}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch threads {args.threads}, load average {load[0]:.1f} at the end; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
        f"Weights: fp32 {w32:,} bytes ({w32 / 1e6:.2f} MB) -> fp16 {w16:,} bytes "
        f"({w16 / 1e6:.2f} MB), ratio {w16 / w32:.3f}.", "",
        f"| task | fp16 vs fp32 on the first {args.n} valid samples | both predicts |",
        "|---|---|---:|", *rows, ""])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
