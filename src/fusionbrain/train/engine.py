"""The training engine: one loop for Fusion and Single-task modes, DDP-ready.

Fusion: each optimizer step trains one task, drawn by :class:`TaskSampler` from a seed shared
by all ranks (so every rank runs the same head and DDP reduces the same gradients). Single: the
same loop with one task. Nothing here names a task: tasks come from the registry and the data.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fusionbrain.errors import UserError
from fusionbrain.tasks import TASKS, check_task, task_module
from fusionbrain.train import checkpoint as ckpt_lib
from fusionbrain.train.config import TrainConfig
from fusionbrain.train.energy import format_energy, meter_from_config
from fusionbrain.train.sampler import TaskSampler, mix_summary
from fusionbrain.utils.io import atomic_open, json_type, read_json, write_json_atomic

RUN_CONFIG = "run_config.json"
SUMMARY = "summary.json"
LOG = "log.jsonl"
ENERGY = "energy.json"


# -- processes and devices -----------------------------------------------------------------

@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def init_distributed(device_pref: str = "auto") -> DistInfo:
    """Join the torchrun process group when launched by torchrun (WORLD_SIZE > 1).

    gloo on CPU, nccl on CUDA; each rank uses the GPU of its LOCAL_RANK.
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device_pref == "auto" else device_pref == "cuda"
    if device_pref == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but CUDA is not available")
    if use_cuda:
        torch.cuda.set_device(local % torch.cuda.device_count())
        device = torch.device("cuda", local % torch.cuda.device_count())
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, world=world, local_rank=local, device=device)


def barrier(info: DistInfo) -> None:
    if info.distributed:
        import torch.distributed as dist

        dist.barrier()


def to_device(obj: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) batch to ``device``; other values stay as they are."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_device(v, device) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_device(v, device) for v in obj)
    return obj


def seed_step(seed: int, step: int, rank: int) -> None:
    """Seed every RNG from (seed, step, rank): a resumed run draws what a straight run drew."""
    s = (seed * 1_000_003 + step * 9_973 + rank * 101) % (2**31 - 1)
    random.seed(s)
    torch.manual_seed(s)
    try:
        import numpy as np

        np.random.seed(s)
    except ImportError:  # numpy is a dependency; guarded only for odd installs
        pass


# -- model ---------------------------------------------------------------------------------

def import_class(spec: str) -> type:
    """``"package.module:Class"`` -> the class, an ``nn.Module`` with ``from_pretrained``.

    A config file must not make the program run code of its choosing: only modules of
    this package are imported; a class of another module is found only if the program
    itself imported that module already (a user's script, a test) — never ``os:system``.
    """
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise UserError(f"model class must be 'package.module:Class', got {spec!r}")
    module_name, _, cls_name = spec.partition(":")
    if not all(part.isidentifier() for part in [*module_name.split("."), cls_name]):
        raise UserError(f"model class must be 'package.module:Class', got {spec!r}")
    ours = module_name == "fusionbrain" or module_name.startswith("fusionbrain.")
    if not ours and module_name not in sys.modules:
        raise UserError(f"model class {spec!r}: only classes of the fusionbrain package (or of "
                        "a module the program has imported itself) can be named in a config")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as e:
        raise UserError(f"cannot load model class {spec!r}: {e}") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)
            and callable(getattr(cls, "from_pretrained", None))):
        raise UserError(f"model class {spec!r} is not a model (an nn.Module with "
                        "from_pretrained)")
    return cls


def read_run_config(path: Path) -> dict[str, Any]:
    """A run's ``run_config.json``, checked before anything is loaded or imported."""
    saved = read_json(path, expect=dict)
    need = {"config": dict, "mode": str, "data": str, "steps": int, "tasks": list}
    for key, typ in need.items():
        if key not in saved:
            raise UserError("missing key (the run folder is damaged; start a new run)",
                            path=path, key=key)
        if not isinstance(saved[key], typ) or isinstance(saved[key], bool):
            raise UserError(f"expected a JSON {_json_name(typ)}, got {json_type(saved[key])}",
                            path=path, key=key)
    if saved["mode"] not in ("fusion", "single"):
        raise UserError("must be fusion or single", path=path, key="mode")
    if saved["steps"] < 1:
        raise UserError("must be an integer >= 1", path=path, key="steps")
    task = saved.get("task")
    if task is not None and (not isinstance(task, str) or task not in TASKS):
        raise UserError(f"must be one of {', '.join(TASKS)} or null", path=path, key="task")
    return saved


def _json_name(typ: type) -> str:
    return {dict: "object", str: "string", int: "integer", list: "array"}.get(typ, typ.__name__)


def build_model(cfg: TrainConfig, tasks: list[str] | None,
                train_sets: dict[str, list] | None = None) -> nn.Module:
    """A fresh model from the config's model spec, with heads for ``tasks`` (None: all).

    With ``train_sets``, the heads first take what they need from the training data
    (vocabularies) through the model class's ``fit_config``, where it has one.
    """
    cls = import_class(cfg.model_class)
    model_cfg = cfg.model
    if train_sets and hasattr(cls, "fit_config"):
        model_cfg = cls.fit_config(model_cfg, train_sets)
    return cls(model_cfg, tasks=tasks)


def find_model_dir(path: str | os.PathLike[str]) -> Path:
    """A model folder from a run folder (its best, else last checkpoint) or a model folder."""
    p = Path(path)
    if not p.exists():
        raise UserError("model or run folder not found", path=p)
    if (p / "config.json").exists() and not (p / RUN_CONFIG).exists():
        return p
    for name in ("best", "last"):
        d = ckpt_lib.checkpoint_dir(p, name)
        if d is not None:
            return d / ckpt_lib.MODEL_DIR
    if (p / ckpt_lib.MODEL_DIR / "config.json").exists():
        return p / ckpt_lib.MODEL_DIR
    raise UserError("no model here (expected a model folder with config.json, or a run "
                    "folder with best/ or last/)", path=p)


def load_model(path: str | os.PathLike[str], model_class: str | None = None) -> nn.Module:
    model_dir = find_model_dir(path)
    spec = model_class
    if spec is None:
        run = model_dir.parent.parent
        if (run / RUN_CONFIG).exists():
            spec = read_run_config(run / RUN_CONFIG)["config"].get("model_class")
    from fusionbrain.train.config import DEFAULT_MODEL_CLASS

    return import_class(spec or DEFAULT_MODEL_CLASS).from_pretrained(model_dir)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


# -- optimizer and schedule -------------------------------------------------------------

def make_optimizer(model: nn.Module, tasks: list[str], cfg: TrainConfig
                   ) -> tuple[torch.optim.Optimizer, int]:
    """AdamW over the trainable parameters of ``tasks`` only, grouped by learning rate.

    ``cfg.lr_groups`` maps a substring of the parameter name to its learning rate (first
    match wins); 1-D parameters (biases, norms, scales) get no weight decay.
    """
    wanted: dict[int, nn.Parameter] = {}
    for t in tasks:
        for p in model.trainable_parameters(t):
            wanted.setdefault(id(p), p)
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if id(p) not in wanted:
            continue
        lr = float(cfg.lr)
        for key, group_lr in cfg.lr_groups.items():
            if key in name:
                lr = float(group_lr)
                break
        wd = 0.0 if p.ndim < 2 else float(cfg.weight_decay)
        groups.setdefault((lr, wd), []).append(p)
    if not groups:
        raise UserError(f"no trainable parameters for tasks {', '.join(tasks)}")
    param_groups = [{"params": ps, "lr": lr, "weight_decay": wd}
                    for (lr, wd), ps in sorted(groups.items(), key=lambda kv: kv[0])]
    n = sum(p.numel() for ps in groups.values() for p in ps)
    opt = torch.optim.AdamW(param_groups, betas=tuple(cfg.betas))
    return opt, n


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_ratio`` at ``total`` steps."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


# -- data ------------------------------------------------------------------------------------

def load_split(data_dir: Path, split: str, tasks: list[str], report: bool = True
               ) -> dict[str, list]:
    """Samples of each task that has ``DIR/<split>/<TASK>/``; tasks without it are left out.

    Images are opened and checked here, once: a corrupt image is skipped and reported
    instead of stopping the run hours later when its batch comes up.
    """
    from fusionbrain.data.report import SkipReport

    out: dict[str, list] = {}
    for t in tasks:
        folder = data_dir / split / t
        if folder.is_dir():
            skipped = SkipReport()
            samples = task_module(t, "data").read_split(folder, report=skipped,
                                                        verify_images=True)
            if report:
                skipped.print()
            if samples:
                out[t] = samples
    return out


# -- prediction and validation ----------------------------------------------------------

def predict_task(model: nn.Module, task: str, samples: list, batch_size: int,
                 progress: Callable[[int], None] | None = None) -> list:
    """``model.predict`` in chunks (for the progress bar), under bf16 autocast on CUDA."""
    out: list = []
    dev = getattr(model, "device", torch.device("cpu"))
    ctx = (torch.autocast("cuda", dtype=torch.bfloat16) if getattr(dev, "type", "") == "cuda"
           else contextlib.nullcontext())
    with ctx:
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            out.extend(model.predict(task, chunk, batch_size=batch_size))
            if progress:
                progress(len(chunk))
    return out


def evaluate(model: nn.Module, valid: dict[str, list], *, profile: str = "aij2021",
             batch_size: int = 16, max_samples: int | None = None) -> dict[str, Any]:
    """Challenge metrics on validation samples: predict → prediction/truth dicts → score."""
    from fusionbrain.scoring import integral_score

    scores: dict[str, dict] = {}
    for task, samples in valid.items():
        samples = samples[:max_samples] if max_samples else samples
        outputs = predict_task(model, task, samples, batch_size)
        fmt = task_module(task, "formats")
        pred = fmt.prediction_json(samples, outputs)
        true = fmt.truth_json(samples)
        res = task_module(task, "metric").score(pred, true, profile=profile)
        scores[task] = {k: v for k, v in res.items() if isinstance(v, (int, float, str))}
    return {"tasks": scores, "S": integral_score({t: r["score"] for t, r in scores.items()})}


# -- the loop -------------------------------------------------------------------------------

@dataclass
class RunSpec:
    """What to train: from the command line (the config holds the how)."""

    mode: str  # "fusion" | "single"
    data: Path | None  # None on --resume: the run's own data folder
    out: Path
    task: str | None = None
    steps: int | None = None
    epochs: float | None = None
    resume: bool = False
    stop_at: int | None = None  # stop after this step as if killed (checkpoint written)
    progress: bool = True
    # called on every rank with the trained model at the end (tests compare ranks with it)
    on_finish: Callable[[nn.Module, DistInfo], None] | None = None


class JsonLog:
    """Append-only JSON-lines log (one line per write, flushed), rank 0 only."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        """Drop lines of steps after ``step`` (a resumed run rewrites them)."""
        if not (self.enabled and self.path.exists()):
            return
        keep = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill
            if int(rec.get("step", 0)) <= step:
                keep.append(line)
        with atomic_open(self.path, "w", encoding="utf-8") as f:
            f.write("".join(x + "\n" for x in keep))

    def write(self, rec: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def _check_writable(out: Path) -> None:
    """The run folder can be made and written (found now, not after the data load)."""
    from fusionbrain.utils.io import ensure_folder

    ensure_folder(out)
    if not os.access(out, os.W_OK | os.X_OK):
        raise UserError("cannot write: permission denied", path=out)


def _resolve_tasks(spec: RunSpec, cfg: TrainConfig) -> list[str]:
    if spec.mode == "single":
        if not spec.task:
            raise UserError("--mode single needs --task (one of " + ", ".join(TASKS) + ")")
        return [check_task(spec.task)]
    if spec.mode != "fusion":
        raise UserError(f"unknown mode {spec.mode!r}; expected fusion or single")
    if spec.task:
        raise UserError("--task is for --mode single; Fusion trains all tasks "
                        "(restrict them with the config key 'tasks')")
    return [check_task(t) for t in (cfg.tasks or list(TASKS))]


def total_steps(cfg: TrainConfig, spec: RunSpec, sizes: dict[str, int], world: int) -> int:
    epochs = spec.epochs if spec.epochs is not None else (None if spec.steps else cfg.epochs)
    if spec.steps:
        return int(spec.steps)
    if epochs is not None:
        n = sum(sizes.values())
        per_step = (sum(cfg.batch_for(t) * sizes[t] for t in sizes) / max(1, n)) \
            * world * cfg.grad_accum
        return max(1, math.ceil(epochs * n / per_step))
    return int(cfg.steps)


def train(spec: RunSpec, cfg: TrainConfig) -> dict[str, Any]:
    """Train (or resume) a run; returns its summary (also written to ``RUN/summary.json``)."""
    out = spec.out
    data = spec.data
    saved = None
    if spec.resume:
        if not (out / RUN_CONFIG).exists():
            raise UserError("nothing to resume (no run_config.json)", path=out)
        saved = read_run_config(out / RUN_CONFIG)
        cfg = TrainConfig.from_dict(saved["config"], source=str(out / RUN_CONFIG))
        spec.mode, spec.task = saved["mode"], saved.get("task")
        data = Path(saved["data"]) if spec.data is None else spec.data
    # Only now, with the run's own config on --resume: a resumed run must use the thread
    # count (and device) of the run it continues, or CPU reductions split differently and
    # the weights drift from a straight run's by an ulp per step.
    info = init_distributed(cfg.device)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    if saved is not None:
        if (out / SUMMARY).exists() and read_json(out / SUMMARY, expect=dict).get("complete") \
                and (spec.steps is None or spec.steps == saved["steps"]):
            if info.is_main:
                print(f"run already complete: {out / SUMMARY}")
            return read_json(out / SUMMARY, expect=dict)
    elif (out / RUN_CONFIG).exists():
        raise UserError("a run already exists here; pass --resume to continue it, "
                        "or choose another --out", path=out)
    # Everything that can be checked cheaply is checked before the data and model load.
    model_cls = import_class(cfg.model_class)
    if info.is_main:
        _check_writable(out)
    ckpt = ckpt_lib.checkpoint_dir(out, "last") if spec.resume else None
    if spec.resume and ckpt is None:
        raise UserError("nothing to resume: the run stopped before its first checkpoint "
                        "(delete the folder and start again)", path=out)
    state = ckpt_lib.load_state(ckpt) if ckpt is not None else None
    if data is None or not Path(data).is_dir():
        raise UserError("data folder not found (build it with `fusionbrain data build`)",
                        path=data)
    data = Path(data)
    tasks = _resolve_tasks(spec, cfg)
    train_sets = load_split(data, "train", tasks, report=info.is_main)
    if not train_sets:
        raise UserError(f"no training samples for {', '.join(tasks)} "
                        f"(expected {data}/train/<TASK>/samples.jsonl)", path=data)
    missing = [t for t in tasks if t not in train_sets]
    if spec.mode == "single" and missing:
        raise UserError(f"no training samples for task {tasks[0]}", path=data / "train" / tasks[0])
    tasks = [t for t in tasks if t in train_sets]
    valid_sets = load_split(data, "valid", tasks, report=info.is_main)
    sizes = {t: len(v) for t, v in train_sets.items()}
    steps = saved["steps"] if saved and spec.steps is None else \
        total_steps(cfg, spec, sizes, info.world)
    warmup = int(cfg.warmup if cfg.warmup >= 1 else round(cfg.warmup * steps))

    # model
    if ckpt is not None:
        model = model_cls.from_pretrained(ckpt / ckpt_lib.MODEL_DIR)
    else:
        # Seeded: a model's random initial weights depend only on the config's seed.
        seed_step(cfg.seed, -1, 0)
        model = build_model(cfg, tasks if spec.mode == "single" else None, train_sets)
    model.to(info.device)
    model.train()
    opt, n_trainable = make_optimizer(model, tasks, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, steps, warmup, cfg.min_lr_ratio))
    sampler = TaskSampler(sizes, rule=cfg.sampling, temperature=cfg.temperature, seed=cfg.seed,
                          weights=cfg.task_weights)
    start, best_s, best_step, mix, elapsed0 = 0, -math.inf, None, {t: 0 for t in tasks}, 0.0
    samples_done = 0
    if ckpt is not None and state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        ckpt_lib.set_rng_state(state["rng"])
        start = int(state["step"])
        best_s = float(state.get("best_S", -math.inf))
        best_step = state.get("best_step")
        mix = {t: int(state.get("mix", {}).get(t, 0)) for t in tasks}
        elapsed0 = float(state.get("elapsed_s", 0.0))
        samples_done = int(state.get("samples", 0))
        if steps != state.get("steps_total", steps):
            # a longer (or shorter) run: keep the optimizer, stretch the schedule
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda s: lr_factor(s, steps, warmup, cfg.min_lr_ratio),
                last_epoch=start - 1)

    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        ckpt_lib.clean_stale_temps(out)
        write_json_atomic(out / RUN_CONFIG, {
            "mode": spec.mode, "task": spec.task, "tasks": tasks, "data": str(data.resolve()),
            "steps": steps, "warmup": warmup, "world": info.world, "sizes": sizes,
            "config": cfg.to_dict()}, indent=2)
    log = JsonLog(out / LOG, info.is_main)
    log.truncate_after(start)

    net: nn.Module = model
    if info.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # Each step runs one head: the other heads' parameters get no gradient.
        net = DDP(model, device_ids=[info.device.index] if info.device.type == "cuda" else None,
                  find_unused_parameters=cfg.ddp_find_unused_parameters)
    use_bf16 = bool(cfg.bf16) and info.device.type == "cuda"
    # Only rank 0 tracks: CodeCarbon's machine mode already covers every local process.
    meter = meter_from_config(cfg.energy, out, enabled=info.is_main)
    trainable = [p for g in opt.param_groups for p in g["params"]]
    ema: dict[str, float] = {}
    bar = None
    if info.is_main and spec.progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, initial=start, desc=f"{spec.mode}", unit="step",
                   dynamic_ncols=True, mininterval=1.0)
    last_eval: dict[str, Any] | None = None
    t_run = time.perf_counter()
    stop = min(steps, spec.stop_at) if spec.stop_at else steps

    def do_eval(step: int) -> dict[str, Any] | None:
        nonlocal best_s, best_step
        result = None
        if info.is_main and valid_sets:
            with meter.phase("eval"):
                result = evaluate(model, valid_sets, profile=cfg.profile,
                                  batch_size=cfg.predict_batch_size,
                                  max_samples=cfg.eval_max_samples)
            model.train()
            log.write({"event": "eval", "step": step, **result})
            if bar is not None:
                bar.write(f"step {step}: valid S {result['S']:.3f}  " + "  ".join(
                    f"{t} {r['score']:.3f}" for t, r in result["tasks"].items()))
            if result["S"] > best_s:
                best_s, best_step = float(result["S"]), step
                ckpt_lib.save_checkpoint(out, "best", model, info={
                    "step": step, "valid": result, "mode": spec.mode, "tasks": tasks})
        barrier(info)
        return result

    def save_last(step: int) -> None:
        if info.is_main:
            state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "sampler": sampler.state_dict(), "rng": ckpt_lib.rng_state(),
                     "step": step, "steps_total": steps, "best_S": best_s,
                     "best_step": best_step, "mix": mix, "samples": samples_done,
                     "elapsed_s": elapsed0 + time.perf_counter() - t_run}
            ckpt_lib.save_checkpoint(out, "last", model, state=state, info={
                "step": step, "steps_total": steps, "mode": spec.mode, "tasks": tasks})
            meter.save(out / ENERGY)  # a killed run keeps the energy measured so far
        barrier(info)

    try:
        with meter.phase("train"):
            t_last, n_last = time.perf_counter(), 0
            for step in range(start, stop):
                task = sampler.task_for_step(step)
                seed_step(cfg.seed, step, info.rank)
                bs = cfg.batch_for(task)
                weight = float(cfg.loss_weights.get(task, 1.0))
                loss_sum = 0.0
                for micro in range(cfg.grad_accum):
                    idx = sampler.next_indices(task, bs, rank=info.rank, world=info.world)
                    batch = model.collate(task, [train_sets[task][i] for i in idx])
                    batch = to_device(batch, info.device)
                    sync = (micro == cfg.grad_accum - 1) or not info.distributed
                    ctx = contextlib.nullcontext() if sync else net.no_sync()
                    with ctx, torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
                        res = net(task, batch)
                        loss = res["loss"].float() * weight / cfg.grad_accum
                    loss.backward()
                    loss_sum += float(loss.detach())
                if cfg.max_grad_norm and cfg.max_grad_norm > 0:
                    gnorm = float(torch.nn.utils.clip_grad_norm_(
                        [p for p in trainable if p.grad is not None], cfg.max_grad_norm))
                else:
                    gnorm = float("nan")
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                mix[task] += 1
                n = bs * info.world * cfg.grad_accum
                samples_done += n
                n_last += n
                ema[task] = loss_sum if task not in ema else 0.9 * ema[task] + 0.1 * loss_sum
                done = step + 1
                log.write({"event": "step", "step": done, "task": task, "loss": loss_sum,
                           "grad_norm": gnorm, "lr": sched.get_last_lr()[0], "samples": n})
                if bar is not None:
                    now = time.perf_counter()
                    rate = n_last / max(1e-9, now - t_last)
                    if now - t_last > 5:
                        t_last, n_last = now, 0
                    bar.set_postfix_str(
                        f"{task} | mix {mix_summary(mix, tasks)} | loss " + " ".join(
                            f"{t}:{v:.3f}" for t, v in ema.items()) + f" | {rate:.1f} samples/s",
                        refresh=False)
                    bar.update(1)
                is_eval = cfg.eval_every and done % cfg.eval_every == 0 and done < steps
                if is_eval:
                    last_eval = do_eval(done)
                if done == stop and stop < steps:
                    save_last(done)  # "killed" here: the resumed run continues from this step
                elif (is_eval or (cfg.save_every and done % cfg.save_every == 0)) and done < steps:
                    save_last(done)
        if stop < steps:
            if bar is not None:
                bar.close()
            meter.close()
            if info.is_main:
                meter.save(out / ENERGY)
            return {"complete": False, "step": stop, "steps": steps}
        if cfg.eval_at_end:
            last_eval = do_eval(steps)
        save_last(steps)
    finally:
        if bar is not None:
            bar.close()
        meter.close()

    if spec.on_finish is not None:
        spec.on_finish(model, info)
    summary: dict[str, Any] = {}
    if info.is_main:
        energy = meter.save(out / ENERGY)
        counts = model.parameter_counts() if hasattr(model, "parameter_counts") else {}
        summary = {
            "complete": True, "mode": spec.mode, "task": spec.task, "tasks": tasks,
            "steps": steps, "samples": samples_done, "mix": mix, "world": info.world,
            "device": str(info.device), "train_wall_s": elapsed0 + time.perf_counter() - t_run,
            "valid": last_eval, "best_step": best_step,
            "best_S": best_s if best_s > -math.inf else None,
            "trainable_parameters_optimized": n_trainable, "parameters": counts,
            "energy": energy}
        write_json_atomic(out / SUMMARY, summary, indent=2)
        print(format_energy(energy))
    barrier(info)
    return summary


@contextlib.contextmanager
def quiet_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (predict on a shared machine)."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
