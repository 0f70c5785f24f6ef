"""Which held-out hands does a model misread? Exact accuracy per hand, style and kind of text
on the embedded test's renderings.

    python bench/htr_by_hand.py --model models/fusionbrain-cpu-long [--n 200] [--seeds 0,1,2]

Draws the test split's first ``--n`` images for each data seed (as ``htr_real_style.py
--embedded`` does), reads them with the model (batch 32, its own decoding) and counts exact
readings by (language, hand), (language, style) and (language, kind), the hand and kind taken
from the generator's plan of each image. Prints one line per group.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import torch

from fusionbrain.model import FusionBrain
from fusionbrain.tasks.htr.synthetic import HERSHEY, generate, plan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="fusionbrain-cpu-long")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = FusionBrain.from_pretrained(args.model)
    total, right = Counter(), Counter()
    for seed in (int(s) for s in args.seeds.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            samples = generate("test", args.n, seed, Path(tmp))
            got = model.read_text([s.image_path for s in samples], batch_size=32)
        for sample, spec, reading in zip(samples, plan("test", args.n, seed), got, strict=True):
            hand = spec.font_path if spec.font_path.startswith(HERSHEY) else Path(spec.font_path).name
            for group in (("hand", hand), ("style", spec.style), ("kind", spec.kind)):
                key = (sample.lang, *group)
                total[key] += 1
                right[key] += reading == sample.text
    print("| lang | by | group | images | read | exact |\n|---|---|---|---:|---:|---:|")
    for key in sorted(total):
        print(f"| {' | '.join(key)} | {total[key]} | {right[key]} | {right[key] / total[key]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
