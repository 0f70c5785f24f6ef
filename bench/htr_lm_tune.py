"""Choose HTR's beam settings (``lm_weight``, ``lm_length_bonus``) on validation words the
character n-gram has never seen.

    python bench/htr_lm_tune.py --model models/fusionbrain-cpu-long --data data/large --n 400

The valid split's words come from the training side of the vocabulary, so an n-gram fitted
on every training text would have seen them (and look better than it is on the test split,
whose words are never in training). Here the n-gram is fitted on the training texts minus
every text that shares a word with the first ``--n`` valid words: those words are then as
new to it as the test's are. Greedy decoding is the first row. Writes
``bench/results/htr_lm_tune.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch

from fusionbrain.model import FusionBrain
from fusionbrain.tasks.htr.data import read_split
from fusionbrain.tasks.htr.head import greedy_decode
from fusionbrain.tasks.htr.lm import CharNgramLM, beam_decode
from fusionbrain.tasks.htr.synthetic import text_key

RESULTS = Path(__file__).parent / "results"


def is_cyrillic(text: str) -> bool:
    return any("\u0400" <= c <= "\u04ff" for c in text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/fusionbrain-cpu-long")
    ap.add_argument("--data", required=True, type=Path, help="a built dataset (train/, valid/)")
    ap.add_argument("--n", type=int, default=400, help="valid words to score")
    ap.add_argument("--order", type=int, default=5)
    ap.add_argument("--weights", default="0.1,0.2,0.3,0.4")
    ap.add_argument("--bonuses", default="0,0.5,1.0")
    args = ap.parse_args()
    torch.set_num_threads(2)

    valid = read_split(args.data / "valid" / "HTR")[: args.n]
    unseen = {text_key(w) for s in valid for w in s.text.split()}
    train = [json.loads(line)["text"] for line in
             (args.data / "train" / "HTR" / "samples.jsonl").read_text().splitlines()]
    kept = [t for t in train if not any(text_key(w) in unseen for w in t.split())]
    lm = CharNgramLM.fit(kept, args.order)

    model = FusionBrain.from_pretrained(args.model).eval()
    head = model.heads["HTR"]
    masks = head.decode_masks()
    logps, lengths = [], []
    with torch.inference_mode():
        for i in range(0, len(valid), 32):
            batch = model.collate("HTR", valid[i:i + 32], train=False)
            logps += list(torch.log_softmax(head._logits(model, batch)[0].float(), -1))
            lengths += batch["input_lengths"].tolist()

    def score(read) -> dict[str, float]:
        right = {"EN": [0, 0], "RU": [0, 0]}
        t0 = time.perf_counter()
        for s, lp, n in zip(valid, logps, lengths, strict=True):
            got = read(lp[None], torch.tensor([n]))[0]
            r = right["RU" if is_cyrillic(s.text) else "EN"]
            r[0] += got == s.text
            r[1] += 1
        ms = (time.perf_counter() - t0) / len(valid) * 1000
        return {k: v[0] / max(1, v[1]) for k, v in right.items()} | {"ms": ms}

    rows = [("greedy", "–", "–", score(lambda lp, n: greedy_decode(lp, n, masks)))]
    for w, b in itertools.product(map(float, args.weights.split(",")),
                                  map(float, args.bonuses.split(","))):
        rows.append(("beam 8", w, b, score(lambda lp, n, w=w, b=b: beam_decode(
            lp, n, lm, masks, lm_weight=w, length_bonus=b, width=8))))
        print(rows[-1], flush=True)
    n_en = sum(not is_cyrillic(s.text) for s in valid)
    lines = [f"# HTR beam settings on {len(valid)} valid words unseen by the n-gram", "",
             f"`python bench/htr_lm_tune.py --model {args.model} --data {args.data} --n "
             f"{args.n}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; n-gram order "
             f"{args.order} on {len(kept)} of {len(train)} training texts (those sharing a "
             f"word with these valid words left out); EN {n_en}, RU {len(valid) - n_en} words.",
             "", "| decoding | lm_weight | length bonus | EN exact | RU exact | mean | ms/word |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, w, b, r in rows:
        lines.append(f"| {name} | {w} | {b} | {r['EN']:.3f} | {r['RU']:.3f} | "
                     f"{(r['EN'] + r['RU']) / 2:.3f} | {r['ms']:.1f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "htr_lm_tune.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
