"""FusionBrain speed on CPU: per task, training-step and inference throughput, and model
FLOP utilisation (MFU) against a matmul peak measured in the same process.

    python bench/model_speed.py                      # cpu-small (6 blocks) and default (30)
    python bench/model_speed.py --presets cpu-small --batch 8 --steps 3

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one real training
step (forward + backward; the frozen body still back-propagates to its inputs, so the
backward costs about one forward, not two). MFU = counted FLOPs / step time / peak, where
the peak is the best fp32 throughput of a large square matmul in this process.
Results go to ``bench/results/model_speed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "src" / "fusionbrain" / "assets"


def matmul_peak(n: int = 2048, seconds: float = 3.0) -> float:
    """Best fp32 GFLOP/s of an n x n matmul over a few seconds (after warm-up)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t) / 1e9)
    return best


def make_samples(batch: int, workdir: Path) -> dict[str, list]:
    """Realistic-size samples: rendered words, COCO128 photos, AVATAR Java/Python pairs."""
    from PIL import Image, ImageDraw

    from fusionbrain.tasks.c2c.data import C2CSample
    from fusionbrain.tasks.htr.data import HTRSample
    from fusionbrain.tasks.vqa.data import VQASample
    from fusionbrain.tasks.zsod.data import ZsODSample

    words = ["handwriting", "recognition", "Привет", "молоко", "fusion", "щётка",
             "brain", "question"]
    htr = []
    for i in range(batch):
        w = words[i % len(words)]
        im = Image.new("L", (22 * len(w), 64), 255)
        ImageDraw.Draw(im).text((6, 20), w, fill=0)
        path = workdir / f"w{i}.png"
        im.save(path)
        htr.append(HTRSample(str(i), str(path), w, "en"))
    photos = sorted((ASSETS / "coco128" / "images").glob("*.jpg"))[:batch]
    vqa = [VQASample(str(i), str(p), "How many animals are there in the picture?", ["two"])
           for i, p in enumerate(photos)]
    zsod = [ZsODSample(str(i), str(p), {"a person on the left": [[10, 20, 100, 150]],
                                        "red car": []}) for i, p in enumerate(photos)]
    c2c = []
    with open(ASSETS / "avatar-g4g" / "train.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            c2c.append(C2CSample(row["id"], row["java"][0], row["python"][0]))
            if len(c2c) == batch:
                break
    return {"HTR": htr, "VQA": vqa, "zsOD": zsod, "C2C": c2c}


def bench_preset(name: str, samples: dict[str, list], steps: int, peak: float,
                 tasks: list[str]) -> list[dict]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fusionbrain.model import FusionBrain

    t = time.perf_counter()
    model = FusionBrain(name)
    load_s = time.perf_counter() - t
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    rows = []
    for task in tasks:
        batch = model.collate(task, samples[task])
        model.train()

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            model(task, batch)["loss"].backward()  # noqa: B023 (the current task)
            opt.step()

        step()  # warm-up
        cold_s = None
        if model.vision is not None and "image_keys" in batch:
            # first epoch: frozen image features not yet cached
            model.vision.__dict__.pop("_feature_cache", None)
            t = time.perf_counter()
            step()
            cold_s = time.perf_counter() - t
        with FlopCounterMode(display=False) as counter:
            opt.zero_grad(set_to_none=True)
            model(task, batch)["loss"].backward()
        flops = counter.get_total_flops()
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        # best-of-N: on a shared machine the fastest step is the code's speed, the rest is
        # other tenants (the median is reported beside it)
        step_s = min(times)
        median_s = statistics.median(times)
        opt.zero_grad(set_to_none=True)
        model.predict(task, samples[task][:2])  # warm-up
        infer_times = []
        for _ in range(2):
            t = time.perf_counter()
            model.predict(task, samples[task], batch_size=len(samples[task]))
            infer_times.append(time.perf_counter() - t)
        infer_s = min(infer_times)
        n = len(samples[task])
        rows.append({"preset": name, "blocks": len(model.blocks), "task": task, "batch": n,
                     "train_step_s": step_s, "median_step_s": median_s, "cold_step_s": cold_s, "train_samples_s": n / step_s,
                     "gflop_step": flops / 1e9, "gflops": flops / step_s / 1e9,
                     "mfu": flops / step_s / 1e9 / peak, "infer_s": infer_s,
                     "infer_samples_s": n / infer_s, "load_s": load_s})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        model = info.get("Model name", "?").strip()
        cpus = info.get("CPU(s)", "?").strip()
        return f"{model}, {cpus} CPUs"
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"


def write_markdown(rows: list[dict], peaks: dict[int, float], args: argparse.Namespace,
                   path: Path) -> None:
    import torch

    from fusionbrain.utils.io import atomic_open

    lines = [
        "# FusionBrain model speed (CPU)",
        "",
        f"Command: `python bench/model_speed.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"Machine: {machine()}; torch {torch.__version__}",
        f"Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "Matmul peak (fp32 2048x2048, best in process): "
        + ", ".join(f"{p:.1f} GFLOP/s with {t} thread(s)" for t, p in peaks.items()),
        "",
        "Training step = forward + backward + AdamW on the trainable weights (frozen body "
        "back-propagates to its inputs only). FLOPs counted by torch's FlopCounterMode. "
        "VQA/zsOD: the frozen EfficientNet's pooled features are cached per image file, so "
        "the steady-state step (and its FLOPs) excludes the CNN; the first-epoch column times "
        "one step with an empty cache. Inference = `model.predict` on the same batch "
        "(greedy decoding; untrained heads rarely stop early, so C2C/VQA generate up to "
        "their token limits).",
        "",
        f"Steps: best of {args.steps} timed training steps (median beside it), best of 2 "
        "inference passes; the machine is shared, so medians can be several times slower.",
        "",
        "| threads | preset | blocks | task | batch | train step best / median (s) "
        "| train samples/s | GFLOP/step | GFLOP/s | MFU | first-epoch step (s) "
        "| inference samples/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['threads']} | {r['preset']} | {r['blocks']} | {r['task']} | {r['batch']} "
                     f"| {r['train_step_s']:.3f} / {r['median_step_s']:.3f} "
                     f"| {r['train_samples_s']:.1f} "
                     f"| {r['gflop_step']:.1f} | {r['gflops']:.1f} | {r['mfu']:.0%} "
                     f"| {'-' if r['cold_step_s'] is None else format(r['cold_step_s'], '.3f')} "
                     f"| {r['infer_samples_s']:.2f} |")
    lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["cpu-small", "default"])
    parser.add_argument("--tasks", nargs="+", default=["HTR", "VQA", "zsOD", "C2C"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", nargs="+", type=int, default=[0],
                        help="torch threads to run with, one table row set each (0: torch's "
                             "default). On a shared machine 1 thread can beat 2 by far.")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "model_speed.md"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.manual_seed(0)
    default_threads = torch.get_num_threads()
    rows: list[dict] = []
    peaks: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        samples = make_samples(args.batch, Path(tmp))
        for threads in args.threads:
            threads = threads or default_threads
            torch.set_num_threads(threads)
            # shared machines are noisy: the peak is re-measured after each preset, best kept
            peaks[threads] = matmul_peak()
            print(f"{threads} threads: matmul peak {peaks[threads]:.1f} GFLOP/s", flush=True)
            for name in args.presets:
                new = bench_preset(name, samples, args.steps, peaks[threads], args.tasks)
                for r in new:
                    r["threads"] = threads
                peaks[threads] = max(peaks[threads], matmul_peak())
                rows += new
                for r in rows:
                    r["mfu"] = r["gflops"] / peaks[r["threads"]]
                write_markdown(rows, peaks, args, Path(args.out))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
