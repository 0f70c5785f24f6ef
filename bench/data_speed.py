"""Data-layer speed: `data build` wall time per size, reading the training splits back, and
the image check every reader runs (full decode; JPEG at 1/8 scale).

    python bench/data_speed.py [--size small] [--workers 2] [--out bench/results/data_speed.md]

Writes a Markdown table (machine, command, figures). Builds into a temporary folder.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/results/data_speed.md")
    args = ap.parse_args()

    from fusionbrain.data import images as images_mod
    from fusionbrain.data.build import build
    from fusionbrain.tasks import TASKS, task_module
    from fusionbrain.tasks.zsod.coco import COCO128_DIR

    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ds"
        t0 = time.perf_counter()
        with redirect_stdout(io.StringIO()) as log:
            manifest = build(out, args.size, args.seed, workers=args.workers)
        build_s = time.perf_counter() - t0
        total = sum(c["total"] for t in manifest["counts"].values() for c in t.values())
        rows.append((f"`data build --size {args.size} --workers {args.workers}`",
                     f"{build_s:.1f} s for {total} samples"))
        size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        rows.append(("dataset on disk", f"{size_mb:.0f} MiB"))

        for verify in (False, True):
            images_mod._decode_problem.cache_clear()
            t0 = time.perf_counter()
            n = 0
            for task in TASKS:
                data = task_module(task, "data")
                for split in ("train", "valid"):
                    kw = {"verify_images": True} if verify and task != "C2C" else {}
                    n += len(data.read_split(out / split / task, **kw))
            dt = time.perf_counter() - t0
            label = "read_split, all tasks, train+valid" + (" + full image check" if verify
                                                            else " (existence check only)")
            rows.append((label, f"{dt:.2f} s for {n} samples ({n / dt:,.0f}/s)"))
        print(log.getvalue().splitlines()[-1], file=sys.stderr)

    photos = sorted((COCO128_DIR / "images").glob("*.jpg"))
    images_mod._decode_problem.cache_clear()
    t0 = time.perf_counter()
    bad = sum(images_mod.image_problem(p) is not None for p in photos)
    dt = time.perf_counter() - t0
    rows.append(("image check, COCO128 photos (640 px JPEG)",
                 f"{1000 * dt / len(photos):.1f} ms/image ({bad} bad)"))

    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    text = ["# Data layer speed", "",
            f"Machine: {machine}. Command: `python bench/data_speed.py --size {args.size} "
            f"--workers {args.workers}`.", "",
            "| measure | result |", "|---|---|", *[f"| {a} | {b} |" for a, b in rows], ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(text), encoding="utf-8")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
