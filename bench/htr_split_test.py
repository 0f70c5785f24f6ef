"""HTR exact accuracy and CER of a model on a built dataset's test split, English and Russian
apart (the large build's test holds 2000 words by held-out hands: a tighter figure than the
small build's 200).

    python bench/htr_split_test.py --model models/fusionbrain-cpu-long --data data/large

Reads every image of ``DATA/test/input/HTR`` with ``model.read_text`` (batch 32, the model's
own decoding), scores it against ``DATA/test/true/true_HTR.json``. The language is the label's
script (Cyrillic letters: RU, anything else, digit-only labels included: EN). Prints a table;
``--out`` also writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch

from fusionbrain.model import FusionBrain
from fusionbrain.tasks.htr.metric import edit_distance

CYRILLIC = re.compile("[А-Яа-яЁё]")


def scores(model: FusionBrain, data: Path, batch_size: int = 32) -> dict[str, dict]:
    truth = json.loads((data / "test" / "true" / "true_HTR.json").read_text(encoding="utf-8"))
    names = sorted(truth)
    images = data / "test" / "input" / "HTR" / "images"
    got = model.read_text([str(images / n) for n in names], batch_size=batch_size)
    out: dict[str, dict] = {}
    for lang in ("en", "ru"):
        rows = [(g, truth[n]) for n, g in zip(names, got, strict=True)
                if (lang == "ru") == bool(CYRILLIC.search(truth[n]))]
        edits = sum(edit_distance(g, t) for g, t in rows)
        out[lang] = {"words": len(rows),
                     "exact": sum(g == t for g, t in rows) / max(1, len(rows)),
                     "cer": edits / max(1, sum(len(t) for _, t in rows))}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="fusionbrain-cpu-long")
    ap.add_argument("--data", required=True, type=Path, help="a built dataset")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, help="also write the scores here (JSON)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = scores(FusionBrain.from_pretrained(args.model), args.data)
    print("| lang | words | exact | CER |\n|---|---:|---:|---:|")
    for lang, s in result.items():
        print(f"| {lang} | {s['words']} | {s['exact']:.3f} | {s['cer']:.3f} |")
    if args.out:
        args.out.write_text(json.dumps({"model": args.model, "data": str(args.data),
                                        "scores": result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
