"""The CPU effect of collating batches in DataLoader workers (``loader_workers``).

    python bench/loader_workers.py --data DIR [--config configs/cpu-main.json] [--task HTR]
        [--steps 8] [--threads 1] [--workers 0 1]

Trains the same Single-task run (the task with the heaviest image decoding by default: HTR,
batch 32 in the main config) once per worker count and prints seconds per step (the loop's
own ``train_wall_s`` over its steps, model build excluded) and the share of a step that
collation (image decoding and resizing) takes on the training thread. The trained weights
are the same for every worker count (tests/test_train_loop.py checks it), so only time moves.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--config", type=Path, default=Path("configs/cpu-main.json"))
    ap.add_argument("--task", default="HTR")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args()

    from fusionbrain.train.config import load_config
    from fusionbrain.train.engine import RunSpec, Trainer, load_split

    base = load_config(args.config)
    base = dataclasses.replace(base, threads=args.threads, eval_at_end=False, eval_every=0,
                               balancer="fixed", energy={"enabled": False})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.workers:
            cfg = dataclasses.replace(base, loader_workers=w)
            trainer = Trainer(RunSpec(mode="single", task=args.task, data=args.data,
                                      out=Path(tmp) / f"w{w}", steps=args.steps,
                                      progress=False), cfg)
            summary = trainer.fit()
            rows.append((w, summary["train_wall_s"] / args.steps))
        # collation alone, on this thread, for the same batch size
        samples = load_split(args.data, "train", [args.task], report=False)[args.task]
        bs = base.batch_for(args.task)
        t0 = time.perf_counter()
        for k in range(args.steps):
            trainer.model.collate(args.task, samples[k * bs:(k + 1) * bs])
        collate_s = (time.perf_counter() - t0) / args.steps
    print(json.dumps({"machine": platform.processor() or platform.machine(),
                      "task": args.task, "batch": bs, "threads": args.threads,
                      "steps": args.steps,
                      "s_per_step": {w: round(s, 3) for w, s in rows},
                      "collate_s_per_batch": round(collate_s, 3)}))
    print(f"{args.task} batch {bs}, {args.steps} steps, torch threads {args.threads}:")
    for w, s in rows:
        print(f"  loader_workers {w}: {s:.2f} s/step")
    print(f"  collation alone on the training thread: {collate_s:.2f} s/batch "
          f"({collate_s / rows[0][1]:.0%} of a step with 0 workers)")


if __name__ == "__main__":
    main()
