"""The training engine: one loop for Fusion and Single-task modes, DDP-ready.

Fusion: each optimizer step trains one task, drawn by :class:`TaskSampler` from a seed shared
by all ranks (so every rank runs the same head and DDP reduces the same gradients), with the
mix set by the config's balancer (:mod:`fusionbrain.train.balancer`). Single: the same loop
with one task. Nothing here names a task: tasks come from the registry and the data.
Processes and seeds live in :mod:`~fusionbrain.train.distributed`, batches in
:mod:`~fusionbrain.train.loader`, the loop's counters in :mod:`~fusionbrain.train.state`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fusionbrain.errors import UserError
from fusionbrain.tasks import TASKS, check_task, task_module
from fusionbrain.train import checkpoint as ckpt_lib
from fusionbrain.train.balancer import GapBalancer
from fusionbrain.train.config import TrainConfig
from fusionbrain.train.distributed import (
    all_true,
    barrier,
    broadcast,
    init_distributed,
    seed_step,
    to_device,
)
from fusionbrain.train.energy import format_energy, meter_from_config
from fusionbrain.train.loader import StepBatches
from fusionbrain.train.predict import predict_task
from fusionbrain.train.sampler import TaskSampler, mix_summary
from fusionbrain.train.state import TrainState
from fusionbrain.utils.io import atomic_open, json_type, read_json, write_json_atomic

RUN_CONFIG = "run_config.json"
SUMMARY = "summary.json"
LOG = "log.jsonl"
ENERGY = "energy.json"


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
    model = cls(model_cfg, tasks=tasks)
    if train_sets and hasattr(model, "fit_data"):
        model.fit_data(train_sets)  # e.g. HTR's character n-gram (saved with the weights)
    return model


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


# -- optimizer and schedule -------------------------------------------------------------

def make_optimizer(model: nn.Module, tasks: list[str], cfg: TrainConfig
                   ) -> tuple[torch.optim.Optimizer, int]:
    """AdamW over the trainable parameters of ``tasks`` only (less ``cfg.freeze``), grouped
    by learning rate.

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
        if any(key in name for key in cfg.freeze):
            # left out of the optimizer only: requires_grad stays (it marks what a saved
            # model carries), so the weights are saved unchanged
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




def baseline_scores(train_sets: dict[str, list], valid: dict[str, list], *,
                    profile: str = "aij2021") -> dict[str, float]:
    """Each task's trivial baseline (fitted on train) scored on the ``valid`` samples."""
    out = {}
    for task, samples in valid.items():
        base = task_module(task, "baseline")
        outputs = base.predict(base.fit(train_sets[task]), samples)
        fmt = task_module(task, "formats")
        res = task_module(task, "metric").score(fmt.prediction_json(samples, outputs),
                                                fmt.truth_json(samples), profile=profile)
        out[task] = float(res["score"])
    return out


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


class NonFiniteLoss(UserError):
    """The loss became NaN or infinite: training stops before the update is applied."""


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


@dataclass
class Resume:
    """Where a run continues: its saved run config and its last checkpoint's state."""

    saved: dict[str, Any]  # run_config.json
    ckpt: Path | None = None  # RUN/last (None until checked)
    state: dict[str, Any] | None = None

    @classmethod
    def read(cls, spec: RunSpec, cfg: TrainConfig) -> tuple[Resume | None, TrainConfig]:
        """On --resume, the run's own config, mode, task and data win over the command
        line's (``spec`` is updated); a new run must not overwrite an old one."""
        out = spec.out
        if not spec.resume:
            if (out / RUN_CONFIG).exists():
                raise UserError("a run already exists here; pass --resume to continue it, "
                                "or choose another --out", path=out)
            return None, cfg
        if not (out / RUN_CONFIG).exists():
            raise UserError("nothing to resume (no run_config.json)", path=out)
        saved = read_run_config(out / RUN_CONFIG)
        cfg = TrainConfig.from_dict(saved["config"], source=str(out / RUN_CONFIG))
        spec.mode, spec.task = saved["mode"], saved.get("task")
        if spec.data is None:
            spec.data = Path(saved["data"])
        return cls(saved), cfg

    def finished(self, spec: RunSpec) -> dict[str, Any] | None:
        """The run's summary when it is complete (and not asked for another length)."""
        path = spec.out / SUMMARY
        if path.exists() and read_json(path, expect=dict).get("complete") \
                and (spec.steps is None or spec.steps == self.saved["steps"]):
            return read_json(path, expect=dict)
        return None

    def load_checkpoint(self, out: Path) -> None:
        self.ckpt = ckpt_lib.checkpoint_dir(out, "last")
        if self.ckpt is None:
            raise UserError("nothing to resume: the run stopped before its first checkpoint "
                            "(delete the folder and start again)", path=out)
        self.state = ckpt_lib.load_state(self.ckpt)


class Trainer:
    """One training run: build (or restore) everything, then :meth:`fit`.

    The loop reads: draw the next stretch of batches; for each step, forward/backward the
    step's task, check the loss, update, log; between stretches, rebalance the task mix,
    validate, checkpoint. Everything a resumed run needs is in :meth:`_checkpoint_state`
    and comes back in :meth:`_restore`.
    """

    def __init__(self, spec: RunSpec, cfg: TrainConfig) -> None:
        resume, cfg = Resume.read(spec, cfg)
        self.spec, self.cfg = spec, cfg
        # Only now, with the run's own config on --resume: a resumed run must use the thread
        # count (and device) of the run it continues, or CPU reductions split differently
        # and the weights drift from a straight run's by an ulp per step.
        self.info = info = init_distributed(cfg.device)
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        self.finished = resume.finished(spec) if resume is not None else None
        if self.finished is not None:
            return
        # Everything that can be checked cheaply is checked before the data and model load.
        model_cls = import_class(cfg.model_class)
        if info.is_main:
            _check_writable(spec.out)
        init_dir: Path | None = None
        if resume is not None:
            resume.load_checkpoint(spec.out)
        elif cfg.init is not None:
            from fusionbrain.model.pretrained import resolve_model

            init_dir = find_model_dir(resolve_model(cfg.init))  # a missing model: say so now
        if spec.data is None or not Path(spec.data).is_dir():
            raise UserError("data folder not found (build it with `fusionbrain data build`)",
                            path=spec.data)
        self.data = data = Path(spec.data)
        self.tasks, self.train_sets, self.valid_sets = self._load_data(data)
        sizes = {t: len(v) for t, v in self.train_sets.items()}
        self.steps = resume.saved["steps"] if resume and spec.steps is None else \
            total_steps(cfg, spec, sizes, info.world)
        self.warmup = int(cfg.warmup if cfg.warmup >= 1 else round(cfg.warmup * self.steps))

        if resume is not None:
            self.model = model_cls.from_pretrained(resume.ckpt / ckpt_lib.MODEL_DIR)
        else:
            # Seeded: a model's random initial weights depend only on the config's seed.
            seed_step(cfg.seed, -1, 0)
            if init_dir is not None:  # cfg.init: a path, or a shipped model's name
                self.model = load_model(init_dir, cfg.model_class)
                missing = [t for t in self.tasks if t not in getattr(self.model, "heads", {})]
                if missing:
                    raise UserError(f"the init model has no head for {', '.join(missing)}",
                                    path=cfg.init)
                if hasattr(self.model, "fit_data"):  # what the init model was saved without
                    self.model.fit_data(self.train_sets, keep_fitted=True)
            else:
                self.model = build_model(cfg, self.tasks if spec.mode == "single" else None,
                                         self.train_sets)
        self.model.to(info.device)
        self.model.train()
        self.opt, self.n_trainable = make_optimizer(self.model, self.tasks, cfg)
        self.sched = self._scheduler()
        self.balancer = self._balancer()
        self.sampler = TaskSampler(
            sizes, rule="weighted" if self.balancer else cfg.sampling,
            temperature=cfg.temperature, seed=cfg.seed,
            weights=self.balancer.initial_weights() if self.balancer else cfg.task_weights)
        self.state = TrainState.start(self.tasks)
        if resume is not None:
            self._restore(resume.state)
        elif self.balancer is not None and info.is_main:
            self.balancer.baseline = baseline_scores(self.train_sets, self.balance_slices,
                                                     profile=cfg.profile)

        if info.is_main:
            spec.out.mkdir(parents=True, exist_ok=True)
            ckpt_lib.clean_stale_temps(spec.out)
            write_json_atomic(spec.out / RUN_CONFIG, {
                "mode": spec.mode, "task": spec.task, "tasks": self.tasks,
                "data": str(data.resolve()), "steps": self.steps, "warmup": self.warmup,
                "world": info.world, "sizes": sizes, "config": cfg.to_dict()}, indent=2)
        self.log = JsonLog(spec.out / LOG, info.is_main)
        self.log.truncate_after(self.state.step)
        self.net: nn.Module = self.model
        if info.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            # Each step runs one head: the other heads' parameters get no gradient.
            self.net = DDP(self.model, device_ids=[info.device.index]
                           if info.device.type == "cuda" else None,
                           find_unused_parameters=cfg.ddp_find_unused_parameters)
        self.batches = StepBatches(self.model, self.train_sets, self.sampler,
                                   batch_for=cfg.batch_for, grad_accum=cfg.grad_accum,
                                   seed=cfg.seed, info=info, workers=cfg.loader_workers)
        self.trainable = [p for g in self.opt.param_groups for p in g["params"]]
        # Only rank 0 tracks: CodeCarbon's machine mode already covers every local process.
        self.meter = meter_from_config(cfg.energy, spec.out, enabled=info.is_main)
        self.last_eval: dict[str, Any] | None = None
        self.t_run = time.perf_counter()

    # -- set-up ----------------------------------------------------------------------------

    def _load_data(self, data: Path) -> tuple[list[str], dict[str, list], dict[str, list]]:
        tasks = _resolve_tasks(self.spec, self.cfg)
        report = self.info.is_main
        train_sets = load_split(data, "train", tasks, report=report)
        if not train_sets:
            raise UserError(f"no training samples for {', '.join(tasks)} "
                            f"(expected {data}/train/<TASK>/samples.jsonl)", path=data)
        if self.spec.mode == "single" and tasks[0] not in train_sets:
            raise UserError(f"no training samples for task {tasks[0]}",
                            path=data / "train" / tasks[0])
        tasks = [t for t in tasks if t in train_sets]
        return tasks, train_sets, load_split(data, "valid", tasks, report=report)

    def _scheduler(self) -> torch.optim.lr_scheduler.LambdaLR:
        steps, warmup, ratio = self.steps, self.warmup, self.cfg.min_lr_ratio
        return torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_factor(s, steps, warmup, ratio))

    def _balancer(self) -> GapBalancer | None:
        cfg = self.cfg
        if cfg.balancer != "gap" or len(self.tasks) < 2:
            return None
        self.balance_slices = {t: v[:cfg.balance_samples] for t, v in self.valid_sets.items()}
        return GapBalancer(self.tasks, every=cfg.balance_every, tau=cfg.balance_tau,
                           floor=cfg.balance_floor)

    def _checkpoint_state(self) -> dict[str, Any]:
        return {"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "sampler": self.sampler.state_dict(), "rng": ckpt_lib.rng_state(),
                "steps_total": self.steps, **self.state.state_dict(),
                "elapsed_s": self.state.elapsed_s + time.perf_counter() - self.t_run,
                "balancer": self.balancer.state_dict() if self.balancer else None}

    def _restore(self, state: dict[str, Any]) -> None:
        """Resume: every piece of :meth:`_checkpoint_state` back in place."""
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        ckpt_lib.set_rng_state(state["rng"])
        self.state.load_state_dict(state)
        if self.balancer is not None and state.get("balancer"):
            self.balancer.load_state_dict(state["balancer"])
        if self.steps != state.get("steps_total", self.steps):
            # a longer (or shorter) run: keep the optimizer, stretch the schedule
            steps, warmup, ratio = self.steps, self.warmup, self.cfg.min_lr_ratio
            self.sched = torch.optim.lr_scheduler.LambdaLR(
                self.opt, lambda s: lr_factor(s, steps, warmup, ratio),
                last_epoch=self.state.step - 1)

    # -- the loop --------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        """Train to the end (or to ``--stop-at``); returns the summary."""
        if self.finished is not None:
            if self.info.is_main:
                print(f"run already complete: {self.spec.out / SUMMARY}")
            return self.finished
        steps = self.steps
        stop = min(steps, self.spec.stop_at) if self.spec.stop_at else steps
        bar = self._progress_bar()
        try:
            with self.meter.phase("train"):
                while self.state.step < stop:
                    for step, task, batches in self.batches.between(self.state.step,
                                                                    self._pause_after(stop)):
                        self._train_step(step, task, batches, bar)
                    self._between_steps(self.state.step, stop)
            if stop < steps:
                return {"complete": False, "step": stop, "steps": steps}
            self._calibrate(steps)
            if self.cfg.eval_at_end:
                self._validate(steps)
            self._save_last(steps)
        finally:
            if bar is not None:
                bar.close()
            self.meter.close()
            if self.info.is_main and stop < steps:
                self.meter.save(self.spec.out / ENERGY)
        return self._summary()

    def _pause_after(self, stop: int) -> int:
        """The next step after which the loop must stop drawing batches: a balancer update
        (the mix changes), a validation or a checkpoint (the sampler state is saved)."""
        cfg = self.cfg
        for done in range(self.state.step + 1, stop):
            if (self.balancer and self.balancer.due(done, self.steps)) or self._is_eval(done) \
                    or (cfg.save_every and done % cfg.save_every == 0):
                return done
        return stop

    def _is_eval(self, done: int) -> bool:
        return bool(self.cfg.eval_every) and done % self.cfg.eval_every == 0 and done < self.steps

    def _train_step(self, step: int, task: str, batches: list[dict], bar: Any) -> None:
        cfg, info = self.cfg, self.info
        seed_step(cfg.seed, step, info.rank)
        weight = float(cfg.loss_weights.get(task, 1.0))
        use_bf16 = bool(cfg.bf16) and info.device.type == "cuda"
        loss_sum = 0.0
        parts: dict[str, float] = {}
        head = self.model.heads[task]
        if hasattr(head, "set_progress"):  # heads with a curriculum (alignment loss, warm-ups)
            # a run from an init model is a later stage: the first stage's curricula are over
            head.set_progress(1.0 if cfg.init else step / max(1, self.steps))
        for micro, batch in enumerate(batches):
            sync = micro == len(batches) - 1 or not info.distributed
            ctx = contextlib.nullcontext() if sync else self.net.no_sync()
            with ctx, torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
                res = self.net(task, to_device(batch, info.device))
                loss = res["loss"].float() * weight / len(batches)
            loss.backward()
            loss_sum += float(loss.detach())
            for k, v in res.items():
                if k != "loss" and (isinstance(v, (int, float)) or
                                    (isinstance(v, torch.Tensor) and v.numel() == 1)):
                    parts[k] = parts.get(k, 0.0) + float(v) / len(batches)
        if not all_true(info, math.isfinite(loss_sum)):
            self.opt.zero_grad(set_to_none=True)
            last = ckpt_lib.checkpoint_dir(self.spec.out, "last")
            raise NonFiniteLoss(
                f"step {step + 1} ({task}): the loss is not finite (loss {loss_sum}"
                + "".join(f", {k} {v}" for k, v in parts.items())
                + "); stopped before applying it. Lower lr (or lr_groups) or raise "
                "max_grad_norm's clipping; "
                + (f"the last good checkpoint is {last}" if last else "no checkpoint yet"),
                path=self.spec.out)
        if cfg.max_grad_norm and cfg.max_grad_norm > 0:
            gnorm = float(torch.nn.utils.clip_grad_norm_(
                [p for p in self.trainable if p.grad is not None], cfg.max_grad_norm))
        else:
            gnorm = float("nan")
        self.opt.step()
        self.sched.step()
        # the model's, not only the optimizer's: frozen (cfg.freeze) weights get gradients too
        self.model.zero_grad(set_to_none=True)
        n = cfg.batch_for(task) * info.world * len(batches)
        self.state.advance(task, n)
        rec = {"event": "step", "step": step + 1, "task": task, "loss": loss_sum,
               "grad_norm": gnorm, "lr": self.sched.get_last_lr()[0], "samples": n}
        if parts:
            rec["parts"] = parts
        self.log.write(rec)
        if bar is not None:
            bar.step(task, loss_sum, n, self.state.mix)

    def _between_steps(self, done: int, stop: int) -> None:
        """After step ``done``: rebalance, validate, checkpoint (whichever is due)."""
        cfg = self.cfg
        if done >= self.steps:
            return  # the end of the run is handled by fit
        if self.balancer is not None and self.balancer.due(done, self.steps):
            self._rebalance(done)
        is_eval = self._is_eval(done)
        if is_eval:
            self._validate(done)
        if done == stop or is_eval or (cfg.save_every and done % cfg.save_every == 0):
            self._save_last(done)  # at `stop` "killed": the resumed run continues from here

    def _rebalance(self, done: int) -> None:
        """Rank 0 scores the validation slices; every rank takes its new weights."""
        rec = None
        if self.info.is_main:
            with self.meter.phase("eval"):
                res = evaluate(self.model, self.balance_slices, profile=self.cfg.profile,
                               batch_size=self.cfg.predict_batch_size)
            self.model.train()
            scores = {t: float(r["score"]) for t, r in res["tasks"].items()}
            rec = self.balancer.record(done, scores, self.balancer.weights_from(scores))
        rec = broadcast(self.info, rec)
        if not self.info.is_main:
            self.balancer.history.append(rec)
        self.sampler.set_weights(rec["weights"])
        self.log.write({"event": "balance", **rec})
        if self.bar_writer is not None:
            self.bar_writer(f"step {done}: mix weights " + "  ".join(
                f"{t} {w:.2f} ({rec['scores'].get(t, float('nan')):.3f} vs "
                f"{rec['baseline'].get(t, float('nan')):.3f})"
                for t, w in rec["weights"].items()))

    def _calibrate(self, step: int) -> None:
        """After the last step: the heads' post-training choices on the validation split
        (VQA's prior weight at prediction). Rank 0's, like the model it saves."""
        calibrate = getattr(self.model, "calibrate", None)  # a model class may have none
        if self.info.is_main and self.valid_sets and calibrate is not None:
            with self.meter.phase("eval"):
                chosen = calibrate(self.valid_sets)
            self.model.train()
            if chosen:
                self.log.write({"event": "calibrate", "step": step, **chosen})
                if self.bar_writer is not None:
                    self.bar_writer("calibrated on valid: " + json.dumps(chosen))

    def _validate(self, step: int) -> None:
        info = self.info
        if info.is_main and self.valid_sets:
            cfg = self.cfg
            with self.meter.phase("eval"):
                result = evaluate(self.model, self.valid_sets, profile=cfg.profile,
                                  batch_size=cfg.predict_batch_size,
                                  max_samples=cfg.eval_max_samples)
            self.model.train()
            self.log.write({"event": "eval", "step": step, **result})
            if self.bar_writer is not None:
                self.bar_writer(f"step {step}: valid S {result['S']:.3f}  " + "  ".join(
                    f"{t} {r['score']:.3f}" for t, r in result["tasks"].items()))
            if self.state.improved(result["S"], step):
                ckpt_lib.save_checkpoint(self.spec.out, "best", self.model, info={
                    "step": step, "valid": result, "mode": self.spec.mode,
                    "tasks": self.tasks})
            self.last_eval = result
        barrier(info)

    def _save_last(self, step: int) -> None:
        if self.info.is_main:
            ckpt_lib.save_checkpoint(self.spec.out, "last", self.model,
                                     state=self._checkpoint_state(), info={
                                         "step": step, "steps_total": self.steps,
                                         "mode": self.spec.mode, "tasks": self.tasks})
            self.meter.save(self.spec.out / ENERGY)  # a killed run keeps the energy so far
        barrier(self.info)

    def _progress_bar(self) -> _Bar | None:
        self.bar_writer: Callable[[str], None] | None = None
        if not (self.info.is_main and self.spec.progress):
            return None
        bar = _Bar(self.steps, self.state.step, self.spec.mode, self.tasks)
        self.bar_writer = bar.write
        return bar

    def _summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {}
        if self.info.is_main:
            energy = self.meter.save(self.spec.out / ENERGY)
            model, st = self.model, self.state
            counts = model.parameter_counts() if hasattr(model, "parameter_counts") else {}
            summary = {
                "complete": True, "mode": self.spec.mode, "task": self.spec.task,
                "tasks": self.tasks, "steps": self.steps, "samples": st.samples,
                "mix": st.mix, "world": self.info.world, "device": str(self.info.device),
                "train_wall_s": st.elapsed_s + time.perf_counter() - self.t_run,
                "valid": self.last_eval, "best_step": st.best_step,
                "best_S": st.best_S if st.best_S > -math.inf else None,
                "balancer": self.cfg.balancer,
                "balance_history": self.balancer.history if self.balancer else None,
                "trainable_parameters_optimized": self.n_trainable, "parameters": counts,
                "energy": energy}
            write_json_atomic(self.spec.out / SUMMARY, summary, indent=2)
            print(format_energy(energy))
        barrier(self.info)
        return summary


class _Bar:
    """tqdm with the task mix, each task's smoothed loss and the sample rate."""

    def __init__(self, total: int, initial: int, desc: str, tasks: list[str]) -> None:
        from tqdm import tqdm

        self.tqdm = tqdm(total=total, initial=initial, desc=desc, unit="step",
                         dynamic_ncols=True, mininterval=1.0)
        self.tasks = tasks
        self.ema: dict[str, float] = {}
        self.t_last, self.n_last = time.perf_counter(), 0

    def step(self, task: str, loss: float, samples: int, mix: dict[str, int]) -> None:
        self.ema[task] = loss if task not in self.ema else 0.9 * self.ema[task] + 0.1 * loss
        now = time.perf_counter()
        self.n_last += samples
        rate = self.n_last / max(1e-9, now - self.t_last)
        if now - self.t_last > 5:
            self.t_last, self.n_last = now, 0
        self.tqdm.set_postfix_str(
            f"{task} | mix {mix_summary(mix, self.tasks)} | loss " + " ".join(
                f"{t}:{v:.3f}" for t, v in self.ema.items()) + f" | {rate:.1f} samples/s",
            refresh=False)
        self.tqdm.update(1)

    def write(self, text: str) -> None:
        self.tqdm.write(text)

    def close(self) -> None:
        self.tqdm.close()


def train(spec: RunSpec, cfg: TrainConfig) -> dict[str, Any]:
    """Train (or resume) a run; returns its summary (also written to ``RUN/summary.json``)."""
    return Trainer(spec, cfg).fit()
