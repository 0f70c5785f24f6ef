"""Can VQA's classifier learn to look, given the small build? A probe on cached features.

    python bench/vqa_probe.py --data DATA [--steps 900] [--lr 1e-3] [--seeds 0,1] [--rgb]
                              [--train N] [--valid N]

The main job's VQA scores at its answer prior's rate. This isolates the image side from the
body and the task mix: the frozen EfficientNet maps of every training and validation image are
computed once, then a fresh ``GlimpseClassifier`` + ``QuestionReader`` (the body-free question
path of ``vqa_body_warmup``) trains on them alone, batch 16, AdamW at ``--lr``, no prior, and
is scored on the valid split every 150 steps, per question type (exact answers, whitespace
normalised: close to the challenge metric, not it), beside the answer prior
(``tasks/vqa/prior.py``, fitted on the training answers) and the baseline. ``--rgb`` adds the
image's own pixels (mean RGB per cell) to the cells, so that colour needs no learnt feature.
Results: ``bench/results/vqa_probe.md`` (+ ``.json``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from fusionbrain.model import FusionBrain
from fusionbrain.tasks.vqa import baseline
from fusionbrain.tasks.vqa.data import read_challenge, read_split
from fusionbrain.tasks.vqa.head import GlimpseClassifier, QuestionReader, clean_answer
from fusionbrain.tasks.vqa.prior import AnswerPrior

ROOT = Path(__file__).resolve().parents[1]
MODEL = {"preset": "cpu-small"}  # classify mode; the probe builds its own classifier


def features(model: FusionBrain, samples: list, rgb: bool) -> dict:
    mids, lasts, questions, targets, known = [], [], [], [], []
    with torch.no_grad():
        for i in range(0, len(samples), 32):
            b = model.collate("VQA", samples[i:i + 32], train=False)
            mid, last = model.vision_feature_maps(b["pixels"], b["image_keys"])
            if rgb:  # the normalised pixels' mean per stride-16 cell, beside the learnt maps
                pix = nn.functional.adaptive_avg_pool2d(b["pixels"], mid.shape[-1])
                mid = torch.cat([mid, 5 * pix], 1)
            mids.append(mid)
            lasts.append(last)
            questions += b["questions"]
            targets.append(b["answer_targets"])
            known.append(b["answer_known"])
    return {"mid": torch.cat(mids), "last": torch.cat(lasts), "questions": questions,
            "targets": torch.cat(targets), "known": torch.cat(known)}


def accuracy(answers: list[str], samples: list) -> tuple[float, dict[str, str]]:
    right, total = Counter(), Counter()
    for a, s in zip(answers, samples, strict=True):
        total[s.question_type] += 1
        right[s.question_type] += a in [clean_answer(x) for x in s.answers]
    return sum(right.values()) / len(samples), {k: f"{right[k]}/{total[k]}" for k in sorted(total)}


def train_probe(model: FusionBrain, tr: dict, va: dict, valid: list, answers: list[str],
                seed: int, steps: int, lr: float) -> list[dict]:
    torch.manual_seed(seed)
    d = model.hidden_size
    clf = GlimpseClassifier(model.vision_channels()[0], tr["mid"].shape[1], d, len(answers),
                            body_from_zero=True)
    reader = QuestionReader(d, clf.pos.shape[1])
    opt = torch.optim.AdamW([*clf.parameters(), *reader.parameters()], lr=lr, weight_decay=0.0)
    curve, n, start = [], len(tr["questions"]), time.perf_counter()
    for step in range(1, steps + 1):
        j = torch.randint(0, n, (16,)).tolist()
        logits = clf(None, tr["mid"][j], tr["last"][j], reader(model, [tr["questions"][k] for k in j]))
        known = tr["known"][j]
        loss = (-(tr["targets"][j] * logits.log_softmax(-1)).sum(-1) * known).sum() \
            / known.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 150 == 0:
            clf.eval()
            reader.eval()
            with torch.no_grad():
                best = clf(None, va["mid"], va["last"], reader(model, va["questions"])).argmax(-1)
            clf.train()
            reader.train()
            acc, by_type = accuracy([answers[k] for k in best.tolist()], valid)
            curve.append({"step": step, "loss": round(loss.item(), 3), "valid": round(acc, 3),
                          "by_type": by_type, "s": round(time.perf_counter() - start, 1)})
            print(seed, curve[-1], flush=True)
    return curve


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a built dataset (fusionbrain data build)")
    ap.add_argument("--steps", type=int, default=900)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--rgb", action="store_true")
    ap.add_argument("--train", type=int, default=None,
                    help="use only the first N training questions (e.g. of a larger build)")
    ap.add_argument("--valid", type=int, default=None, help="the first N valid questions")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "vqa_probe"))
    args = ap.parse_args(argv)
    train = read_split(Path(args.data) / "train" / "VQA")[:args.train]
    valid = read_split(Path(args.data) / "valid" / "VQA")[:args.valid]
    cfg = FusionBrain.fit_config(MODEL, {"VQA": train})
    model = FusionBrain(cfg, tasks=["VQA"]).eval()
    answers = model.heads["VQA"].answers
    start = time.perf_counter()
    tr, va = features(model, train, args.rgb), features(model, valid, args.rgb)
    feature_s = time.perf_counter() - start
    prior = AnswerPrior.fit(((s.question, s.answers) for s in train), answers, clean_answer)
    prior_acc = accuracy([answers[k] for k in prior.log_probs([s.question for s in valid])
                          .argmax(-1).tolist()], valid)
    base_acc = accuracy([clean_answer(a) for a in baseline.predict(baseline.fit(train), valid)], valid)
    test_dir = Path(args.data) / "test"
    on_test = {}
    if (test_dir / "true" / "true_VQA.json").is_file():  # the no-image answers on the test too
        test = read_challenge(test_dir / "input" / "VQA", test_dir / "true" / "true_VQA.json")
        on_test = {"n": len(test), "baseline": accuracy(
            [clean_answer(a) for a in baseline.predict(baseline.fit(train), test)], test)[0],
            "prior": accuracy([answers[k] for k in prior.log_probs([s.question for s in test])
                               .argmax(-1).tolist()], test)[0]}
    runs = {seed: train_probe(model, tr, va, valid, answers, seed, args.steps, args.lr)
            for seed in (int(s) for s in args.seeds.split(","))}
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    result = {"when": when, "machine": f"{platform.machine()}, torch {torch.__version__}",
              "args": vars(args), "train": len(train), "valid": len(valid),
              "feature_s": round(feature_s, 1), "baseline": base_acc, "prior": prior_acc,
              "test": on_test, "runs": runs}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    types = sorted(prior_acc[1])
    lines = [f"# VQA probe ({when}; {result['machine']})", "",
             f"`python bench/vqa_probe.py --data DATA --steps {args.steps} --lr {args.lr} "
             f"--seeds {args.seeds}{' --rgb' if args.rgb else ''}"
             + (f" --train {args.train}" if args.train else "")
             + (f" --valid {args.valid}" if args.valid else "") + f"`; {len(train)} training "
             f"questions, {len(valid)} valid.", "",
             "| | step | valid | " + " | ".join(types) + " |",
             "|---|---:|---:|" + "---:|" * len(types),
             f"| baseline | | {base_acc[0]:.3f} | " + " | ".join(base_acc[1][t] for t in types) + " |",
             f"| prior | | {prior_acc[0]:.3f} | " + " | ".join(prior_acc[1][t] for t in types) + " |"]
    for seed, curve in runs.items():
        for c in curve:
            lines.append(f"| seed {seed} | {c['step']} | {c['valid']:.3f} | "
                         + " | ".join(c["by_type"].get(t, "") for t in types) + " |")
    if on_test:
        lines += ["", f"Test split ({on_test['n']} questions), no image: baseline "
                  f"{on_test['baseline']:.3f}, prior {on_test['prior']:.3f}."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
