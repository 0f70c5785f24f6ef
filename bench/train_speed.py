"""Training and prediction speed per task for a model config (CPU or GPU).

    python bench/train_speed.py --data DIR [--model cpu-small] [--steps 5] [--batch 8]
        [--threads 2] [--out bench/results/train_speed.md]

For each task: seconds per optimizer step (forward + backward + AdamW on the trainable
parameters, batch --batch) after one warm-up step, and predictions per second.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", default="cpu-small", help="preset name or model config JSON")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--predict", type=int, default=16, help="samples to predict per task")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import torch

    from fusionbrain.model.modeling_fusionbrain import FusionBrain
    from fusionbrain.train.engine import load_split, to_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    from fusionbrain.tasks import TASKS

    train = load_split(args.data, "train", list(TASKS))
    valid = load_split(args.data, "valid", list(TASKS))
    t0 = time.perf_counter()
    # the heads' vocabularies (VQA answers, C2C phrases) come from the training data
    model = FusionBrain(FusionBrain.fit_config(args.model, train)).to(device)
    load_s = time.perf_counter() - t0
    rows = []
    for task, samples in train.items():
        params = model.trainable_parameters(task)
        opt = torch.optim.AdamW(params, lr=1e-4)
        times = []
        for i in range(args.steps + 1):
            batch = samples[(i * args.batch) % len(samples):][:args.batch]
            t = time.perf_counter()
            b = to_device(model.collate(task, batch), device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = model(task, b)["loss"]
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first step warms up allocators and caches
                times.append(time.perf_counter() - t)
        pv = valid.get(task, samples)[:args.predict]
        t = time.perf_counter()
        model.predict(task, pv, batch_size=args.batch)
        pred_rate = len(pv) / (time.perf_counter() - t)
        step_s = sum(times) / len(times)
        rows.append((task, step_s, args.batch / step_s, pred_rate,
                     sum(p.numel() for p in params)))
        print(f"{task}: {step_s:.3f} s/step, {args.batch / step_s:.1f} train samples/s, "
              f"{pred_rate:.1f} predictions/s", flush=True)
    lines = [f"# Training speed: model `{args.model}`, batch {args.batch}, device {device}, "
             f"threads {torch.get_num_threads()}", "",
             f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}. "
             f"Model load: {load_s:.1f} s. Command: `python bench/train_speed.py --data DIR "
             f"--model {args.model} --steps {args.steps} --batch {args.batch}"
             + (f" --threads {args.threads}" if args.threads else "") + "`", "",
             "| task | s / step | train samples / s | predictions / s | trainable params |",
             "|---|---:|---:|---:|---:|"]
    for task, step_s, rate, pred_rate, n in rows:
        lines.append(f"| {task} | {step_s:.3f} | {rate:.1f} | {pred_rate:.1f} | {n:,} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
