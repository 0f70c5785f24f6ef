"""Fusion vs Single-task: train both ways on one budget, score on the test split, report.

Layout of the experiment folder (every part is skipped when already finished, and a
half-trained run is resumed, so a killed experiment picks up where it stopped)::

    OUT/baseline/predictions/prediction_<TASK>.json, scores.json
    OUT/fusion/            a train run (+ test/prediction_*.json, test_scores.json)
    OUT/single-<TASK>/     one train run per task
    OUT/report.md, scores.png, resources.png, results.json
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from fusionbrain.errors import UserError
from fusionbrain.scoring import pred_file_name, true_file_name
from fusionbrain.tasks import TASKS, task_module
from fusionbrain.train.config import TrainConfig
from fusionbrain.utils.io import atomic_open, read_json, write_json_atomic

TEST_SCORES = "test_scores.json"


def check_data(data: Path) -> list[str]:
    """Tasks that have training data and a test input + truth; errors name what is missing."""
    if not data.is_dir():
        raise UserError("data folder not found (build it with `fusionbrain data build`)",
                        path=data)
    for sub in ("train", "test/input", "test/true"):
        if not (data / sub).is_dir():
            raise UserError(f"missing {sub}/ (expected the layout of `fusionbrain data build`)",
                            path=data / sub)
    tasks = [t for t in TASKS if (data / "train" / t).is_dir()
             and (data / "test" / "input" / t).is_dir()
             and (data / "test" / "true" / true_file_name(t)).is_file()]
    if not tasks:
        raise UserError("no task has train/, test/input/ and test/true/ data", path=data)
    return tasks


def score_predictions(pred_dir: Path, data: Path, tasks: list[str],
                      profile: str = "aij2021") -> dict[str, Any]:
    """Score ``prediction_<TASK>.json`` files against ``DATA/test/true``."""
    from fusionbrain.scoring import integral_score, score_files

    res = {}
    for t in tasks:
        r = score_files(t, pred_dir / pred_file_name(t),
                        data / "test" / "true" / true_file_name(t), profile)
        res[t] = {k: v for k, v in r.items() if isinstance(v, (int, float, str))}
    return {"tasks": res, "S": integral_score({t: r["score"] for t, r in res.items()}),
            "profile": profile}


# -- baselines ------------------------------------------------------------------------------

def ensure_baselines(data: Path, out: Path, tasks: list[str]) -> dict[str, Any]:
    """Fit each task's trivial baseline on train, predict test input, score (cached)."""
    path = out / "baseline" / "scores.json"
    if path.exists():
        cached = read_json(path, expect=dict)
        if set(cached.get("tasks", {})) >= set(tasks):
            return cached
    pred_dir = out / "baseline" / "predictions"
    names = {}
    t0 = time.perf_counter()
    for t in tasks:
        base = task_module(t, "baseline")
        state = base.fit(task_module(t, "data").read_split(data / "train" / t))
        fmt = task_module(t, "formats")
        samples = fmt.read_input(data / "test" / "input" / t)
        write_json_atomic(pred_dir / pred_file_name(t),
                          fmt.prediction_json(samples, base.predict(state, samples)))
        names[t] = getattr(base, "NAME", "baseline")
    scores = score_predictions(pred_dir, data, tasks)
    scores["names"] = names
    scores["wall_s"] = time.perf_counter() - t0
    write_json_atomic(path, scores, indent=2)
    return scores


# -- training runs ----------------------------------------------------------------------------

def ensure_run(run: Path, *, mode: str, task: str | None, data: Path, cfg: TrainConfig,
               steps: int, progress: bool = True) -> dict[str, Any]:
    """Train ``run`` (or resume it, or skip it when complete); returns its summary."""
    from fusionbrain.train.engine import RUN_CONFIG, SUMMARY, RunSpec, train

    if (run / SUMMARY).exists():
        summary = read_json(run / SUMMARY, expect=dict)
        if summary.get("complete"):
            return summary
    resume = (run / RUN_CONFIG).exists() and (run / "last").exists()
    if (run / RUN_CONFIG).exists() and not resume:
        # killed before its first checkpoint: nothing worth keeping
        (run / RUN_CONFIG).unlink()
    spec = RunSpec(mode=mode, task=task, data=data, out=run, steps=steps, resume=resume,
                   progress=progress)
    return train(spec, cfg)


def ensure_test_scores(run: Path, data: Path, tasks: list[str], *, batch_size: int = 16,
                       progress: bool = True, threads: int | None = None,
                       energy: dict[str, Any] | None = None) -> dict[str, Any]:
    """Predict the test input with the run's best model and score it (cached in the run)."""
    from fusionbrain.train.energy import meter_from_config
    from fusionbrain.train.engine import ENERGY, load_model
    from fusionbrain.train.predict import quiet_threads
    from fusionbrain.train.predict_cli import predict_folder

    path = run / TEST_SCORES
    if path.exists():
        return read_json(path, expect=dict)
    per_task: dict[str, dict[str, float]] = {}
    with quiet_threads(threads):
        model = load_model(run)
        model.eval()
        meter = meter_from_config(energy, run)
        t0 = time.perf_counter()
        try:
            with meter.phase("predict"):
                # one task at a time: inference speed per task (the cost of serving it)
                for t in [t for t in tasks if t in model.task_names]:
                    t1 = time.perf_counter()
                    n = predict_folder(model, data / "test" / "input", run / "test",
                                       batch_size=batch_size, progress=progress,
                                       tasks=[t]).get(t, 0)
                    w = time.perf_counter() - t1
                    per_task[t] = {"samples": n, "wall_s": w,
                                   "samples_per_s": n / w if w > 0 else None}
        finally:
            meter.close()
    wall = time.perf_counter() - t0
    meter.save(run / ENERGY)
    scores = score_predictions(run / "test", data, [t for t in tasks if t in model.task_names])
    scores["predict_wall_s"] = wall
    scores["predict_per_task"] = per_task
    write_json_atomic(path, scores, indent=2)
    return scores


# -- the experiment --------------------------------------------------------------------------

def run_experiment(data: Path, out: Path, cfg: TrainConfig, *, budget: int | None = None,
                   sampling: str | None = "round_robin", progress: bool = True,
                   singles: bool = True) -> dict[str, Any]:
    """Baselines, Fusion, each Single; returns the results (also OUT/results.json)."""
    tasks = [t for t in check_data(data) if cfg.tasks is None or t in cfg.tasks]
    if not tasks:
        raise UserError("the config's 'tasks' leave no task with data")
    cfg.tasks = tasks
    if sampling:
        cfg.sampling = sampling
    per_task = int(budget) if budget else max(1, cfg.steps // len(tasks))
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "experiment.json", {"data": str(data.resolve()), "tasks": tasks,
                                                "steps_per_task": per_task,
                                                "config": cfg.to_dict()}, indent=2)
    results: dict[str, Any] = {"tasks": tasks, "steps_per_task": per_task,
                               "baseline": ensure_baselines(data, out, tasks)}
    fusion = ensure_run(out / "fusion", mode="fusion", task=None, data=data, cfg=cfg,
                        steps=per_task * len(tasks), progress=progress)
    results["fusion"] = _collect(out / "fusion", fusion, data, tasks, cfg, progress)
    if singles:
        results["single"] = {}
        for t in tasks:
            run = out / f"single-{t}"
            s = ensure_run(run, mode="single", task=t, data=data, cfg=cfg, steps=per_task,
                           progress=progress)
            results["single"][t] = _collect(run, s, data, [t], cfg, progress)
    write_json_atomic(out / "results.json", results, indent=2)
    write_report(out, results)
    return results


def _collect(run: Path, summary: dict[str, Any], data: Path, tasks: list[str],
             cfg: TrainConfig, progress: bool) -> dict[str, Any]:
    test = ensure_test_scores(run, data, tasks, batch_size=cfg.predict_batch_size,
                              progress=progress, threads=cfg.threads, energy=cfg.energy)
    energy = read_json(run / "energy.json", expect=dict) if (run / "energy.json").exists() \
        else summary.get("energy", {})
    params = summary.get("parameters", {})
    return {"test": test, "train_wall_s": summary.get("train_wall_s"),
            "predict_per_task": test.get("predict_per_task"),
            "balance_history": summary.get("balance_history"),
            "predict_wall_s": test.get("predict_wall_s"), "steps": summary.get("steps"),
            "mix": summary.get("mix"), "energy": energy, "parameters": {
                "total": params.get("total_parameters"),
                "shared": params.get("shared_parameters"),
                "trainable": params.get("trainable_parameters"),
                "trainable_per_task": params.get("trainable_per_task")}}


# -- report ---------------------------------------------------------------------------------

def _fmt(v: Any, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _count(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "–"
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{int(n):,}"


def _single_totals(results: dict[str, Any]) -> dict[str, Any] | None:
    singles = results.get("single")
    if not singles:
        return None

    def total(key: str, sub: str | None = None) -> float | None:
        vals = []
        for r in singles.values():
            v = r.get(key) if sub is None else (r.get(key) or {}).get(sub)
            if v is None:
                return None
            vals.append(v)
        return sum(vals)

    scores = {t: r["test"]["tasks"][t]["score"] for t, r in singles.items()}
    from fusionbrain.scoring import integral_score

    return {
        "scores": scores, "S": integral_score(scores),
        "train_wall_s": total("train_wall_s"), "predict_wall_s": total("predict_wall_s"),
        "kwh": sum(r["energy"].get("total", {}).get("kwh", 0.0) for r in singles.values()),
        "kg_co2eq": sum(r["energy"].get("total", {}).get("kg_co2eq", 0.0)
                        for r in singles.values()),
        # separate models: nothing is one shared set of weights (each holds its own body copy)
        "params_total": total("parameters", "total"), "params_shared": 0,
        "params_trainable": total("parameters", "trainable"),
    }


def write_report(out: Path, results: dict[str, Any]) -> Path:
    """``report.md`` plus ``scores.png`` and ``resources.png`` (matplotlib, Agg)."""
    tasks = results["tasks"]
    base = results["baseline"]
    fusion = results.get("fusion")
    single = _single_totals(results)
    cols = ["baseline"] + (["single"] if single else []) + (["fusion"] if fusion else [])
    score = {"baseline": {t: base["tasks"][t]["score"] for t in tasks}}
    if single:
        score["single"] = single["scores"]
    if fusion:
        score["fusion"] = {t: fusion["test"]["tasks"].get(t, {}).get("score") for t in tasks}
    from fusionbrain.scoring import integral_score

    s_val = {c: integral_score({t: v for t, v in score[c].items() if v is not None})
             for c in cols}
    if single:
        title = "# Fusion vs Single-task"
        budget = (f"Budget: {results['steps_per_task']} optimizer steps per task (Fusion: "
                  f"{results['steps_per_task'] * len(tasks)} steps over {len(tasks)} tasks"
                  + (f", mix {fusion.get('mix')}" if fusion else "") + "). ")
    else:
        title = "# Fusion model vs trivial baselines"
        budget = (f"Fusion: {fusion.get('steps')} optimizer steps, mix {fusion.get('mix')}. "
                  if fusion else "")
    lines = [title, "", budget +
             "Scores on the test split (`test/input` → `test/true`), challenge metrics, "
             f"profile {base.get('profile', 'aij2021')}.", "",
             "## Scores", "",
             "| task | " + " | ".join(cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for t in tasks:
        cells = []
        for c in cols:
            v = score[c][t]
            mark = " ✓" if c != "baseline" and v is not None and v > score["baseline"][t] else ""
            cells.append(_fmt(v) + mark)
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines.append("| **S** | " + " | ".join(f"**{_fmt(s_val[c])}**" for c in cols) + " |")
    lines += ["", "✓ = above the task's trivial baseline. Baselines: " + "; ".join(
        f"{t}: {base.get('names', {}).get(t, '?')}" for t in tasks) + ".", ""]

    def res_row(name: str, wall: Any, pred: Any, kwh: Any, kg: Any, tot: Any, sh: Any,
                tr: Any) -> str:
        return (f"| {name} | {_fmt(wall, 0)} | {_fmt(pred, 0)} | {_fmt(kwh, 5)} | "
                f"{_fmt(kg, 6)} | {_count(tr)} | {_count(sh)} | {_count(tot)} |")

    lines += ["## Cost", "",
              "| | train wall s | predict wall s | kWh | kg CO2eq | trainable params | "
              "shared params | total params |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    if single:
        lines.append(res_row("single (all tasks)", single["train_wall_s"],
                             single["predict_wall_s"], single["kwh"], single["kg_co2eq"],
                             single["params_total"], single["params_shared"],
                             single["params_trainable"]))
    if fusion:
        e = fusion["energy"].get("total", {})
        p = fusion["parameters"]
        lines.append(res_row("fusion", fusion["train_wall_s"], fusion["predict_wall_s"],
                             e.get("kwh"), e.get("kg_co2eq"), p.get("total"), p.get("shared"),
                             p.get("trainable")))
        if p.get("total") and p.get("shared") is not None:
            lines += ["", f"Fusion shares {p['shared'] / p['total']:.1%} of its parameters "
                      "across all tasks (the challenge's multitask bar is 30 %)."]
    if single:
        lines += ["", "Single-task totals add up the separate models (each holds its own copy "
                  "of the frozen body, so none of their parameters count as shared)."]
    if fusion:
        lines += ["", "Energy measured by: " + str(fusion["energy"].get("method", "?"))]
    lines += ["", "![scores](scores.png)", "", "![resources](resources.png)", ""]
    if single:
        lines += ["## Single-task runs", "", "| task | steps | train wall s | kWh | score |",
                  "|---|---:|---:|---:|---:|"]
        for t, r in results["single"].items():
            lines.append(f"| {t} | {r.get('steps')} | {_fmt(r.get('train_wall_s'), 0)} | "
                         f"{_fmt(r['energy'].get('total', {}).get('kwh'), 5)} | "
                         f"{_fmt(r['test']['tasks'][t]['score'])} |")
        lines.append("")
    _charts(out, tasks, cols, score, s_val, fusion, single)
    path = out / "report.md"
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


def _charts(out: Path, tasks: list[str], cols: list[str], score: dict, s_val: dict,
            fusion: dict | None, single: dict | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"baseline": "#bbbbbb", "single": "#4c72b0", "fusion": "#dd8452"}
    fig, (ax, ax_s) = plt.subplots(1, 2, figsize=(10, 4),
                                   gridspec_kw={"width_ratios": [len(tasks), 1.3]})
    width = 0.8 / len(cols)
    for i, c in enumerate(cols):
        xs = [j + (i - (len(cols) - 1) / 2) * width for j in range(len(tasks))]
        ax.bar(xs, [score[c][t] or 0 for t in tasks], width, label=c, color=colors[c])
        ax_s.bar([i], [s_val[c]], 0.7, color=colors[c])
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test score")
    ax.set_title("per task")
    ax.legend()
    ax_s.set_xticks(range(len(cols)), cols, rotation=30)
    ax_s.set_title("integral S")
    fig.tight_layout()
    _save_fig(fig, out / "scores.png")
    plt.close(fig)

    runs = []
    if single:
        runs.append(("single", single["train_wall_s"], single["kwh"], single["kg_co2eq"],
                     single["params_trainable"], single["params_total"]))
    if fusion:
        e = fusion["energy"].get("total", {})
        runs.append(("fusion", fusion["train_wall_s"], e.get("kwh"), e.get("kg_co2eq"),
                     fusion["parameters"].get("trainable"), fusion["parameters"].get("total")))
    if not runs:
        return
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
    names = [r[0] for r in runs]
    for ax, k, title in zip(axes[:3], (1, 2, 3),
                            ("train wall time (s)", "energy (kWh)", "CO2 (kg CO2eq)"),
                            strict=True):
        ax.bar(names, [r[k] or 0 for r in runs], color=[colors[n] for n in names])
        ax.set_title(title)
    ax = axes[3]
    xs = range(len(runs))
    ax.bar([x - 0.2 for x in xs], [r[4] or 0 for r in runs], 0.4, label="trainable",
           color="#55a868")
    ax.bar([x + 0.2 for x in xs], [r[5] or 0 for r in runs], 0.4, label="total",
           color="#8172b3")
    ax.set_xticks(list(xs), names)
    ax.set_yscale("log")
    ax.set_title("parameters")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save_fig(fig, out / "resources.png")
    plt.close(fig)


def _save_fig(fig: Any, path: Path) -> None:
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)


# -- several seeds ----------------------------------------------------------------------------

def seed_folders(out: Path, cfg: TrainConfig, seeds: int) -> list[tuple[int, Path]]:
    """``(seed, folder)`` per run: one seed keeps OUT itself; N seeds use OUT/seed-<S>."""
    if seeds == 1:
        return [(cfg.seed, out)]
    return [(cfg.seed + k, out / f"seed-{cfg.seed + k}") for k in range(seeds)]


def run_seeds(data: Path, out: Path, cfg: TrainConfig, seeds: int, **kw: Any
              ) -> list[dict[str, Any]]:
    """:func:`run_experiment` once per seed (``cfg.seed``, ``cfg.seed + 1``, ...)."""
    import dataclasses

    if seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {seeds}")
    results = []
    for seed, folder in seed_folders(out, cfg, seeds):
        print(f"== seed {seed}: {folder}", flush=True)
        results.append(run_experiment(data, folder, dataclasses.replace(cfg, seed=seed), **kw))
    return results


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def _pm(values: list[float], nd: int = 3) -> str:
    m, sd = mean_sd(values)
    return f"{m:.{nd}f} ± {sd:.{nd}f}"


def aggregate(per_seed: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Mean ± sd over seeds of every score and cost, and whether each task stayed above its
    baseline on every seed (Fusion; and each Single run when there are any)."""
    from fusionbrain.scoring import integral_score

    tasks = per_seed[0]["tasks"]
    base = per_seed[0]["baseline"]
    agg: dict[str, Any] = {"seeds": seeds, "tasks": tasks,
                           "baseline": {t: base["tasks"][t]["score"] for t in tasks}}
    agg["baseline_S"] = integral_score(agg["baseline"])
    arms = {"fusion": [r["fusion"] for r in per_seed]}
    if all(r.get("single") for r in per_seed):
        arms["single"] = [r["single"] for r in per_seed]
    for arm, runs in arms.items():
        if arm == "fusion":
            scores = [{t: r["test"]["tasks"][t]["score"] for t in tasks} for r in runs]
            wall = [r.get("train_wall_s") or 0.0 for r in runs]
            kwh = [r["energy"].get("total", {}).get("kwh", 0.0) for r in runs]
            kg = [r["energy"].get("total", {}).get("kg_co2eq", 0.0) for r in runs]
            params = runs[0]["parameters"]
            speed = [{t: (r.get("predict_per_task") or {}).get(t, {}).get("samples_per_s")
                      for t in tasks} for r in runs]
        else:
            scores = [{t: r[t]["test"]["tasks"][t]["score"] for t in tasks} for r in runs]
            wall = [sum(r[t].get("train_wall_s") or 0.0 for t in tasks) for r in runs]
            kwh = [sum(r[t]["energy"].get("total", {}).get("kwh", 0.0) for t in tasks)
                   for r in runs]
            kg = [sum(r[t]["energy"].get("total", {}).get("kg_co2eq", 0.0) for t in tasks)
                  for r in runs]
            params = {"total": sum(runs[0][t]["parameters"].get("total") or 0 for t in tasks),
                      "shared": 0,
                      "trainable": sum(runs[0][t]["parameters"].get("trainable") or 0
                                       for t in tasks)}
            speed = [{t: (r[t].get("predict_per_task") or {}).get(t, {}).get("samples_per_s")
                      for t in tasks} for r in runs]
        agg[arm] = {
            "scores": {t: [s[t] for s in scores] for t in tasks},
            "S": [integral_score(s) for s in scores],
            "above_every_seed": {t: all(s[t] > agg["baseline"][t] for s in scores)
                                 for t in tasks},
            "train_wall_s": wall, "kwh": kwh, "kg_co2eq": kg, "parameters": params,
            "samples_per_s": {t: [v[t] for v in speed if v[t] is not None] for t in tasks},
        }
    return agg


def write_seeds_report(out: Path, agg: dict[str, Any]) -> Path:
    """OUT/report.md (and seeds.json) for a run over several seeds: mean ± sd."""
    tasks, arms = agg["tasks"], [a for a in ("single", "fusion") if a in agg]
    n = len(agg["seeds"])
    lines = [f"# {'Fusion vs Single-task' if 'single' in agg else 'Fusion model'} over {n} "
             f"seeds ({', '.join(map(str, agg['seeds']))})", "",
             "Test split, challenge metrics (aij2021). mean ± sample standard deviation over "
             "seeds; 'every seed' = above the trivial baseline on each seed.", "",
             "| task | baseline | " + " | ".join(f"{a} | {a}: every seed" for a in arms)
             + (" | fusion − single |" if len(arms) == 2 else " |"),
             "|---|---:|" + "---:|:---:|" * len(arms) + ("---:|" if len(arms) == 2 else "")]
    for t in tasks:
        row = f"| {t} | {agg['baseline'][t]:.3f} | "
        row += " | ".join(f"{_pm(agg[a]['scores'][t])} | "
                          f"{'yes' if agg[a]['above_every_seed'][t] else 'NO'}" for a in arms)
        if len(arms) == 2:
            d = [f - s for f, s in zip(agg["fusion"]["scores"][t], agg["single"]["scores"][t],
                                       strict=True)]
            row += f" | {_pm(d)}"
        lines.append(row + " |")
    lines.append(f"| **S** | {agg['baseline_S']:.3f} | " + " | ".join(
        f"**{_pm(agg[a]['S'])}** | " for a in arms) + (" |" if len(arms) == 2 else "|"))
    lines += ["", "| cost | " + " | ".join(arms) + " |", "|---|" + "---:|" * len(arms)]
    for key, name, nd in (("train_wall_s", "train wall s", 0), ("kwh", "kWh", 5),
                          ("kg_co2eq", "kg CO2eq", 6)):
        lines.append(f"| {name} | " + " | ".join(_pm(agg[a][key], nd) for a in arms) + " |")
    for key in ("trainable", "shared", "total"):
        lines.append(f"| {key} params | " + " | ".join(
            _count(agg[a]["parameters"].get(key)) for a in arms) + " |")
    for t in tasks:
        lines.append(f"| predict {t} samples/s | " + " | ".join(
            _pm(agg[a]["samples_per_s"][t], 1) if agg[a]["samples_per_s"][t] else "–"
            for a in arms) + " |")
    if "single" in agg:
        lines += ["", "Single = the sum of the four single-task runs (separate models, each "
                  "with its own copy of the frozen body: no parameter is shared)."]
    lines.append("")
    write_json_atomic(out / "seeds.json", agg, indent=2)
    path = out / "report.md"
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path
