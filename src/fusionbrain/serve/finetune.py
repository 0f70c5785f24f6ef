"""Learning from corrections: fine-tune the HTR head only, on the pilot's reviewed items.

Only ``heads.HTR.*`` parameters get gradients; the frozen body, its LoRA (shared by every
task), the vision encoder and the other heads are not touched, so their tensors stay
bit-identical. The whole model stays in eval mode (the HTR adapter's BatchNorm keeps the
statistics it was trained with: a few hundred words of one writer would drag them).

Held-out slice: an item is held out when the SHA-256 of its image hash falls in the lowest
``heldout_frac`` of the range — a property of the image, so the slice does not move as
items are added and an image held out once is never trained on later.

Report: exact accuracy and CER on the held-out corrections before -> after, and on the
embedded HTR test words (the synthetic test split, other writers) before -> after.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

from fusionbrain.errors import UserError

MIN_ITEMS = 5


def is_heldout(image_sha: str, frac: float = 0.2) -> bool:
    h = int(hashlib.sha256(image_sha.encode()).hexdigest()[:8], 16)
    return h < frac * 0x1_0000_0000


def split(items: list[dict], frac: float = 0.2) -> tuple[list[dict], list[dict]]:
    """(train, held-out) by image hash; at least one held-out item when there are several."""
    train = [it for it in items if not is_heldout(it["image_sha"], frac)]
    held = [it for it in items if is_heldout(it["image_sha"], frac)]
    if not held and len(train) >= 2:
        # too few items for the hash to pick one: hold out the one with the lowest hash
        pick = min(train, key=lambda it: hashlib.sha256(it["image_sha"].encode()).hexdigest())
        train.remove(pick)
        held = [pick]
    return train, held


def _samples(items: list[dict]) -> list:
    from fusionbrain.data.lang import detect_lang
    from fusionbrain.tasks.htr.data import HTRSample

    return [HTRSample(str(it["id"]), it["image_path"], it["text"],
                      detect_lang(it["text"]) or "en") for it in items]


def evaluate(model: Any, samples: list, batch_size: int = 32) -> dict[str, float]:
    """Exact accuracy and CER (edit distance / truth length) of the greedy readings."""
    from fusionbrain.tasks.htr.metric import edit_distance

    if not samples:
        return {"n": 0, "exact": None, "cer": None}  # JSON has no NaN
    preds = model.predict("HTR", samples, batch_size=batch_size)
    exact = sum(p == s.text for p, s in zip(preds, samples, strict=True))
    dist = sum(edit_distance(p, s.text) for p, s in zip(preds, samples, strict=True))
    chars = sum(len(s.text) for s in samples)
    return {"n": len(samples), "exact": exact / len(samples), "cer": dist / max(1, chars)}


def improved(before: dict, after: dict) -> bool:
    """Held-out figures improve: higher exact accuracy, or equal and lower CER."""
    if after["exact"] != before["exact"]:
        return after["exact"] > before["exact"]
    return after["cer"] < before["cer"]


def htr_test_samples(n: int, cache: Path) -> list:
    """The first ``n`` words of the embedded HTR test split (synthetic, seed 0), cached."""
    from fusionbrain.tasks.htr.synthetic import generate

    if n <= 0:
        return []
    return generate("test", n, 0, cache / f"htr_test_{n}")


def replay_samples(n: int, cache: Path) -> list:
    """``n`` words of the generator's training split (the hands the base model learned from),
    cached: rehearsed beside the corrections so the head does not forget the other writers."""
    from fusionbrain.tasks.htr.synthetic import generate

    if n <= 0:
        return []
    return generate("train", n, 1, cache / f"htr_replay_{n}")


def train_head(model: Any, samples: list, steps: int, batch_size: int = 16, lr: float = 5e-4,
               seed: int = 0, log: Any = None, replay: list | None = None,
               replay_share: float = 0.5) -> list[float]:
    """AdamW on ``heads.HTR`` only; returns the loss per step. With ``replay``, that share of
    every batch is drawn from it (rehearsal of the writers the model already reads)."""
    import numpy as np
    import torch

    # the flags also say what save_pretrained writes (trainable = saved): restored below
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    params = list(model.heads["HTR"].parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.eval()  # BatchNorm statistics and the body stay as they are
    head = model.heads["HTR"]
    if hasattr(head, "set_progress"):
        # the end of training: a fading flat-start alignment loss stays off. Switched back on,
        # it pulls CTC's learned (peaky) alignment to the flat one and the model forgets how
        # to read other writers (the shipped model: embedded test 0.63 -> 0.00 exact)
        head.set_progress(1.0)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    np.random.seed(seed)  # collate's stretch augmentation draws from numpy's global RNG
    losses = []
    order: list[int] = []
    for step in range(steps):
        if len(order) < batch_size:
            order.extend(rng.permutation(len(samples)).tolist())
        n_replay = round(batch_size * replay_share) if replay else 0
        idx, order = order[:batch_size - n_replay], order[batch_size - n_replay:]
        chosen = [samples[i] for i in idx]
        if n_replay:
            chosen += [replay[int(i)] for i in rng.integers(0, len(replay), n_replay)]
        batch = model.collate("HTR", chosen, train=True)
        # cosine decay to 10 %: short runs on few items overshoot with a flat rate
        for g in opt.param_groups:
            g["lr"] = lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / max(1, steps))))
        loss = model.forward("HTR", batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        if log is not None and (step % 20 == 0 or step == steps - 1):
            log(f"step {step + 1}/{steps} loss {losses[-1]:.3f}")
    for p, flag in flags:
        p.requires_grad_(flag)
    return losses


def finetune(model_dir: str | Path, items: list[dict], out_dir: str | Path, *, steps: int = 60,
             batch_size: int = 16, lr: float = 5e-4, seed: int = 0, heldout_frac: float = 0.2,
             htr_test_n: int = 100, cache: Path | None = None, log: Any = print,
             test_samples: list | None = None, replay_n: int = 512,
             replay_share: float = 0.5) -> dict:
    """Fine-tune ``model_dir``'s HTR head on reviewed ``items`` (id, image_sha, image_path,
    text); write the new version to ``out_dir`` with ``report.json`` and ``calibration.json``.

    ``test_samples`` replaces the embedded test words (``htr_test_n`` of them) in the report.
    """
    import torch

    from fusionbrain.model import FusionBrain
    from fusionbrain.serve.inference import CALIBRATION_NAME, calibrate
    from fusionbrain.utils.io import write_json_atomic

    t0 = time.time()
    out_dir = Path(out_dir)
    if len(items) < MIN_ITEMS:
        raise UserError(f"only {len(items)} reviewed items; fine-tuning needs at least "
                        f"{MIN_ITEMS}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UserError("output folder exists and is not empty", path=out_dir)
    train_items, held_items = split(items, heldout_frac)
    train_s, held_s = _samples(train_items), _samples(held_items)
    model = FusionBrain.from_pretrained(model_dir)
    if "HTR" not in model.task_names:
        raise UserError("the model has no HTR head", path=model_dir)
    cache = cache or out_dir.parent / ".cache"
    test_s = test_samples if test_samples is not None else htr_test_samples(htr_test_n, cache)
    before = {"heldout": evaluate(model, held_s), "htr_test": evaluate(model, test_s)}
    log(f"{len(train_s)} training items, {len(held_s)} held out; before: held-out exact "
        f"{before['heldout']['exact']:.3f} CER {before['heldout']['cer']:.3f}")
    with torch.random.fork_rng(devices=[]):
        losses = train_head(model, train_s, steps, batch_size, lr, seed, log,
                            replay=replay_samples(replay_n, cache), replay_share=replay_share)
    after = {"heldout": evaluate(model, held_s), "htr_test": evaluate(model, test_s)}
    log(f"after: held-out exact {after['heldout']['exact']:.3f} CER "
        f"{after['heldout']['cer']:.3f}")
    model.save_pretrained(out_dir)
    calib = None
    if held_s:
        calib = calibrate(model, held_s)
        calib["fitted_on"] = "held-out reviewed items"
        write_json_atomic(out_dir / CALIBRATION_NAME, calib, indent=1)
    report = {
        "base": str(Path(model_dir).resolve()), "out": str(out_dir.resolve()),
        "trained": "heads.HTR only", "steps": steps, "batch_size": batch_size, "lr": lr,
        "replay": {"words": replay_n, "share": replay_share},
        "seed": seed, "train_items": len(train_s), "heldout_items": len(held_s),
        "heldout_ids": [it["id"] for it in held_items],
        "before": before, "after": after,
        "improved": bool(held_s) and improved(before["heldout"], after["heldout"]),
        "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
        "calibration": calib, "seconds": round(time.time() - t0, 1),
    }
    write_json_atomic(out_dir / "report.json", report, indent=1)
    return report


def finetune_job(store: Any, params: dict, models_dir: str | Path) -> dict:
    """The service's background job: fine-tune the version it served, register the result,
    switch to it when the held-out figures improve (``activate``: if-better|always|never)."""
    base = store.model_version(int(params["base_version"]))
    models_dir = Path(models_dir)
    n = len(store.model_versions()) + 1
    out = models_dir / f"v{n}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    report = finetune(base["path"], store.reviewed(), out, steps=int(params.get("steps", 60)),
                      htr_test_n=int(params.get("htr_test_n", 100)), cache=models_dir / ".cache",
                      log=lambda m: None)
    vid = store.add_model_version(out, parent=base["id"], report=report,
                                  note="fine-tuned from corrections")
    act = params.get("activate", "if-better")
    if act == "always" or (act == "if-better" and report["improved"]):
        store.set_active_model_version(vid)
    return {"model_version": vid, "activated": store.active_model_version() == vid,
            "improved": report["improved"], "before": report["before"], "after": report["after"]}


def run_cli(db: Path, model_dir: Path | None, out: Path, steps: int, activate: str,
            htr_test_n: int) -> int:
    """``fusionbrain train --from-corrections DB --model DIR --out NEW``."""
    from fusionbrain.serve.store import Store

    if not db.is_file():
        raise UserError("pilot database not found", path=db)
    store = Store(db)
    try:
        if model_dir is None:
            active = store.active_model_version()
            if active is None:
                raise UserError("no --model given and the database has no active model", path=db)
            model_dir = Path(store.model_version(active)["path"])
        parent = store.add_model_version(model_dir)
        report = finetune(model_dir, store.reviewed(), out, steps=steps, htr_test_n=htr_test_n)
        vid = store.add_model_version(out, parent=parent, report=report,
                                      note="fine-tuned from corrections (CLI)")
        switch = activate == "always" or (activate == "if-better" and report["improved"])
        if switch:
            store.set_active_model_version(vid)
    finally:
        store.close()

    def fig(part: str) -> str:
        b, a = report["before"][part], report["after"][part]
        return (f"exact {b['exact']:.3f} -> {a['exact']:.3f}, CER {b['cer']:.3f} -> "
                f"{a['cer']:.3f} (n={a['n']})")

    print(f"held-out corrections: {fig('heldout')}")
    if report["after"]["htr_test"]["n"]:
        print(f"embedded HTR test:    {fig('htr_test')}")
    print(f"model version {vid}: {out} ({'now active' if switch else 'not activated'}"
          f"{'' if report['improved'] else '; held-out figures did not improve'})")
    print(json.dumps({"report": str(out / 'report.json')}))
    return 0
