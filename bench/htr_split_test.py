"""HTR exact accuracy and CER of a model on a built dataset's test split, English and Russian
apart (the large build's test holds 2000 words by held-out hands: a tighter figure than the
small build's 200).

    python bench/htr_split_test.py --model models/fusionbrain-cpu-long --data data/large

Reads every image of ``DATA/test/input/HTR`` with ``model.read_text`` (batch 32, the model's
own decoding), scores it against ``DATA/test/true/true_HTR.json``. The language is the label's
script (``detect_lang``: Cyrillic letters RU, Latin EN, digit-only labels EN), scored with
the challenge metric (``tasks/htr/metric.score``). Prints a table;
``--out`` also writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from fusionbrain.data.lang import detect_lang
from fusionbrain.model import FusionBrain
from fusionbrain.tasks.htr import metric


def scores(model: FusionBrain, data: Path, batch_size: int = 32) -> dict[str, dict]:
    truth = json.loads((data / "test" / "true" / "true_HTR.json").read_text(encoding="utf-8"))
    names = sorted(truth)
    images = data / "test" / "input" / "HTR" / "images"
    pred = dict(zip(names, model.read_text([str(images / n) for n in names],
                                           batch_size=batch_size), strict=True))
    out: dict[str, dict] = {}
    for lang in ("en", "ru"):
        true = {n: t for n, t in truth.items() if detect_lang(t) == lang}
        s = metric.score(pred, true)  # the challenge's own exact match and CER
        out[lang] = {"words": s["n"], "exact": s["string_accuracy"], "cer": s["cer"]}
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
