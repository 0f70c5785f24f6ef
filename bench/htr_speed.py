"""HTR reading speed: words per second of a model's HTR head by batch size, beside Tesseract 5
on the same word images in the same run (the tool a user would otherwise pick).

    python bench/htr_speed.py --model models/fusionbrain-cpu-long --data data/small [--n 256]

Reads the first ``--n`` images of ``DATA/test/input/HTR`` (the embedded test: word images as
``fusionbrain predict`` gets them, decoded from disk every time), with ``--threads`` torch
threads, at batch sizes 1, 8, 32 and 64; each is timed twice, the faster kept (the first pass
also warms the allocator). Tesseract (``--psm 7``, one thread per call, ``--threads`` calls in
parallel) reads the same images once. Results: ``bench/results/htr_speed.md`` (+ ``.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from htr_real_style import tesseract_read  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="fusionbrain-cpu-long")
    ap.add_argument("--data", required=True, help="a built dataset (fusionbrain data build)")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,8,32,64")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "htr_speed"))
    args = ap.parse_args(argv)

    import torch

    from fusionbrain.model import FusionBrain
    from fusionbrain.tasks.htr.data import read_challenge

    torch.set_num_threads(args.threads)
    true = Path(args.data) / "test" / "true" / "true_HTR.json"  # labels pick Tesseract's language
    samples = read_challenge(Path(args.data) / "test" / "input" / "HTR",
                             true if true.is_file() else None)[: args.n]
    t0 = time.perf_counter()
    model = FusionBrain.from_pretrained(args.model)
    load_s = time.perf_counter() - t0
    rows = []
    for bs in (int(b) for b in args.batches.split(",")):
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            model.predict("HTR", samples, batch_size=bs)
            best = min(best, time.perf_counter() - t)
        rows.append({"reader": "model", "batch": bs, "words_per_s": len(samples) / best})
        print(f"model batch {bs}: {len(samples) / best:.1f} words/s", flush=True)
    langs = [s.lang for s in samples]
    t = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(tesseract_read, [s.image_path for s in samples], langs))
    tess = len(samples) / (time.perf_counter() - t)
    rows.append({"reader": "tesseract", "batch": None, "words_per_s": tess})
    print(f"tesseract ({args.threads} parallel calls): {tess:.1f} words/s", flush=True)

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, " \
              f"{args.threads} threads"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = "python bench/htr_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out.with_suffix(".json").write_text(json.dumps(
        {"command": cmd, "when": when, "machine": machine, "load_1min": load, "words": len(samples),
         "model": str(args.model), "model_load_s": load_s, "rows": rows}, indent=1))
    lines = [f"# HTR reading speed: {args.model}", "",
             f"`{cmd}` — {when}, {machine}, load {load:.1f}; {len(samples)} embedded-test word "
             f"images decoded from disk each pass; model load {load_s:.1f} s.", "",
             "| reader | batch | words / s | × Tesseract |", "|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['reader']} | {r['batch'] or '-'} | {r['words_per_s']:.1f} | "
                     f"{r['words_per_s'] / tess:.1f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
