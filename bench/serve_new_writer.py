"""A "new writer" through the pilot's loop: 200 words in a font the model never saw, read by
the model, corrected (here: by the known truth, as a clerk would), then
``fine-tune from corrections`` (HTR head only) and held-out exact accuracy before -> after.

    python bench/serve_new_writer.py --out /tmp/nw [--model DIR | --config configs/cpu-main.json
        --pretrain-steps 150] [--steps 150] [--lr 2e-3] [--words 200] [--threads 2]

The new writer is the URW font C059 Italic (fonts-urw-base35; not among the synthetic
generator's handwriting fonts, see fusionbrain.data.fonts), drawn by the generator's
``render_word`` (paper, ruling, noise as for the training words). The words are drawn from
the generator's EN/RU vocabularies. Without ``--model`` a base model is made from the
config's model (HTR head only); with ``--pretrain-steps N`` the HTR head (of that model or
of ``--model``) is first trained N steps on the generator's own training words (the "other
writers").
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

NEW_WRITER_FONT = "/usr/share/fonts/opentype/urw-base35/C059-Italic.otf"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", type=Path, help="a model folder to start from (with "
                    "--pretrain-steps 0: used as it is)")
    ap.add_argument("--config", type=Path, default=Path("configs/cpu-main.json"))
    ap.add_argument("--pretrain-steps", type=int, default=150)
    ap.add_argument("--pretrain-words", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--words", type=int, default=200)
    ap.add_argument("--test-words", type=int, default=100)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--seed", type=int, default=0, help="fine-tuning seed (batch order, init)")
    args = ap.parse_args()

    import numpy as np
    import torch

    from fusionbrain.model import FusionBrain
    from fusionbrain.serve import finetune
    from fusionbrain.serve.inference import png_bytes, read_htr
    from fusionbrain.serve.store import Store
    from fusionbrain.tasks.htr import synthetic
    from fusionbrain.train.config import load_config

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    log = lambda m: print(f"[{time.time() - t0:6.0f} s] {m}", flush=True)  # noqa: E731
    base = args.model
    if args.pretrain_steps > 0:  # from --model when given, else a fresh model
        torch.manual_seed(0)
        if args.model is not None:
            model = FusionBrain.from_pretrained(args.model)
        else:
            cfg = load_config(args.config)
            model = FusionBrain(cfg["model"] if isinstance(cfg, dict) else cfg.model,
                                tasks=["HTR"])
        base = args.out / "base"
        words = synthetic.generate("train", args.pretrain_words, 0, args.out / "train_words")
        log(f"pre-training the HTR head {args.pretrain_steps} steps on {len(words)} words")
        finetune.train_head(model, words, args.pretrain_steps, args.batch, args.lr, log=log)
        model.save_pretrained(base)
    model = FusionBrain.from_pretrained(base)

    # the new writer's words, read by the model, corrected by the clerk
    rng = np.random.default_rng(11)
    vocab = {lang: synthetic.vocabulary(lang) for lang in ("en", "ru")}
    texts = [str(rng.choice(vocab["en" if i % 2 == 0 else "ru"])) for i in range(args.words)]
    images = [synthetic.render_word(t, NEW_WRITER_FONT, seed=1000 + i) for i, t in enumerate(texts)]
    images[0].save(args.out / "new_writer_example.png")
    store = Store(args.out / "pilot.sqlite")
    vid = store.add_model_version(base)
    readings = []
    for i in range(0, len(images), 32):
        readings += read_htr(model, images[i:i + 32])
    for k, (t, im, r) in enumerate(zip(texts, images, readings, strict=True)):
        item = store.add_item(store.put_image(png_bytes(im)), f"{k}.png", "new-writer", r.text,
                              r.confidence, r.char_conf, vid)
        store.review(item, t, "bench", 1)
    log(f"{len(texts)} new-writer words reviewed ({store.counts()})")
    report = finetune.finetune(base, store.reviewed(), args.out / "v2", steps=args.steps,
                               batch_size=args.batch, lr=args.lr, htr_test_n=args.test_words,
                               cache=args.out, log=log, seed=args.seed)
    report["machine"] = f"{platform.machine()}, torch {torch.__version__}, " \
                        f"threads {torch.get_num_threads()}"
    report["new_writer_font"] = NEW_WRITER_FONT
    report["pretrain_steps"] = args.pretrain_steps
    report["pretrained_from"] = str(args.model) if args.model else "fresh"
    report["wall_s"] = round(time.time() - t0, 1)
    (args.out / "new_writer.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    b, a = report["before"], report["after"]
    print(f"held-out new-writer words (n={a['heldout']['n']}): exact {b['heldout']['exact']:.3f}"
          f" -> {a['heldout']['exact']:.3f}, CER {b['heldout']['cer']:.3f} -> "
          f"{a['heldout']['cer']:.3f}")
    print(f"embedded HTR test (n={a['htr_test']['n']}): exact {b['htr_test']['exact']:.3f} -> "
          f"{a['htr_test']['exact']:.3f}, CER {b['htr_test']['cer']:.3f} -> "
          f"{a['htr_test']['cer']:.3f}")


if __name__ == "__main__":
    main()
