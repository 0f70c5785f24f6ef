"""The training config: plain JSON data (``configs/*.json``), validated with clear errors."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fusionbrain.errors import UserError
from fusionbrain.utils.io import read_json

DEFAULT_MODEL_CLASS = "fusionbrain.model.modeling_fusionbrain:FusionBrain"


@dataclass
class TrainConfig:
    """Every training knob. ``--steps`` / ``--epochs`` on the command line override these."""

    # model: a preset name ("tiny", "cpu-small", "default") or a dict of FusionBrainConfig
    # keys (with "preset" as the base); ignored on --resume (the checkpoint's config is used)
    model: Any = "tiny"
    model_class: str = DEFAULT_MODEL_CLASS  # "module:Class" honouring the model contract
    # start from this model's weights (a model folder, a run folder or a shipped model's
    # name) instead of a fresh model: a second training stage. The model's
    # own config wins over "model"; its fitted artefacts (HTR n-gram) come with it.
    init: str | None = None
    # parameter-name substrings kept frozen in this run (e.g. "lora_": a stage that must not
    # move what the other tasks share)
    freeze: list[str] = field(default_factory=list)
    tasks: list[str] | None = None  # Fusion: train these (default: all with data)
    steps: int = 200  # optimizer steps in total (all tasks together)
    epochs: float | None = None  # if set: steps = epochs × train samples / global batch
    batch_size: int = 8  # per rank, per micro-step
    batch_size_per_task: dict[str, int] = field(default_factory=dict)
    grad_accum: int = 1
    lr: float = 1e-3
    # learning rate by parameter name: the first key that occurs in the name wins
    lr_groups: dict[str, float] = field(default_factory=dict)
    # per-task multiplier on the loss (e.g. to balance a loss on a larger scale)
    loss_weights: dict[str, float] = field(default_factory=dict)
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup: float = 0.05  # warm-up steps (>= 1) or a fraction of all steps (< 1)
    min_lr_ratio: float = 0.1  # cosine decays to lr × this
    max_grad_norm: float = 1.0  # 0 disables clipping
    # proportional | temperature | uniform | round_robin | weighted (by task_weights)
    sampling: str = "temperature"
    temperature: float = 2.0
    task_weights: dict[str, float] = field(default_factory=dict)
    # how much of each task to train: "fixed" (the sampling rule above) or "gap" (automatic,
    # from each task's margin over its trivial baseline on a validation slice; see
    # fusionbrain.train.balancer)
    balancer: str = "fixed"
    balance_every: int = 100  # gap: steps between updates
    balance_samples: int = 40  # gap: first N validation samples per task
    balance_tau: float = 0.05  # gap: a margin of tau over the baseline divides the weight by e
    balance_floor: float = 0.05  # gap: the least weight of a task (before normalising)
    loader_workers: int = 0  # DataLoader workers collating batches (0: the training thread)
    seed: int = 0
    eval_every: int = 0  # steps between validations (0: only at the end)
    eval_max_samples: int = 64  # per task, the first N of the valid split
    eval_at_end: bool = True
    save_every: int = 0  # steps between "last" checkpoints (0: at evaluations and the end)
    predict_batch_size: int = 16
    bf16: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # torch intra-op threads per process (None: torch's choice)
    profile: str = "aij2021"  # metric profile for validation
    energy: dict[str, Any] = field(default_factory=lambda: {
        "enabled": True, "country_iso_code": "FRA", "carbon_intensity_g_per_kwh": None,
        "csv": False})
    ddp_find_unused_parameters: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | None = None) -> TrainConfig:
        if not isinstance(data, dict):
            raise UserError("expected a JSON object of training config keys", path=source)
        fields = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key.startswith("_"):
                continue  # "_comment" keys document a config file
            if key not in fields:
                raise UserError("unknown training config key", path=source, key=key)
        cfg = cls(**{k: v for k, v in data.items() if not k.startswith("_")})
        cfg.validate(source)
        return cfg

    def validate(self, source: str | None = None) -> None:
        """Check every key before any work starts (a bad value found after the data load
        would cost minutes and leave a half-made run folder)."""
        from fusionbrain.scoring.common import PROFILES
        from fusionbrain.tasks import TASKS
        from fusionbrain.train.sampler import RULES
        from fusionbrain.utils.io import json_type

        def need(cond: bool, key: str, msg: str) -> None:
            if not cond:
                raise UserError(msg, path=source, key=key)

        def whole(v: Any, low: int) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= low

        def number(v: Any, low: float, *, above: bool = False) -> bool:
            return (isinstance(v, (int, float)) and not isinstance(v, bool)
                    and _finite(v) and (v > low if above else v >= low))

        def task_map(key: str, check: Callable[[Any], bool], what: str) -> None:
            value = getattr(self, key)
            need(isinstance(value, dict), key, f"must be an object {{TASK: {what}}}, got "
                 f"{json_type(value)}")
            for t, v in value.items():
                need(t in TASKS, f"{key}.{t}", f"unknown task; expected one of {', '.join(TASKS)}")
                need(check(v), f"{key}.{t}", f"must be {what}, got {_show(v)}")

        ours = self.model_class == DEFAULT_MODEL_CLASS  # another class reads "model" itself
        need(not ours or isinstance(self.model, (str, dict)), "model",
             "must be a preset name or an object of model config keys")
        if ours and isinstance(self.model, str):
            from fusionbrain.model.configuration import PRESETS

            need(self.model in PRESETS, "model", f"unknown preset {self.model!r}; expected one "
                 f"of {', '.join(PRESETS)}")
        elif ours:
            from fusionbrain.model.configuration import FusionBrainConfig

            FusionBrainConfig.from_dict(self.model, source=f"{source}: key 'model'" if source
                                        else "key 'model'")
        need(isinstance(self.model_class, str) and self.model_class.count(":") == 1
             and all(p.isidentifier() for p in self.model_class.replace(":", ".").split(".")),
             "model_class", "must be 'package.module:Class'")
        need(self.tasks is None or (isinstance(self.tasks, list) and len(self.tasks) > 0
                                    and all(isinstance(t, str) and t in TASKS for t in self.tasks)
                                    and len(set(self.tasks)) == len(self.tasks)),
             "tasks", f"must be null or a list of distinct tasks of {', '.join(TASKS)}")
        need(self.init is None or (isinstance(self.init, str) and self.init.strip() != ""),
             "init", "must be null or a model / run folder path")
        need(isinstance(self.freeze, list) and all(isinstance(k, str) and k for k in self.freeze),
             "freeze", "must be a list of parameter-name substrings")
        need(whole(self.steps, 1) and self.steps <= 10**9, "steps", "must be an integer >= 1")
        need(self.epochs is None or (number(self.epochs, 0, above=True) and self.epochs <= 1e6),
             "epochs", "must be a number > 0")
        need(whole(self.batch_size, 1) and self.batch_size <= 1 << 20, "batch_size",
             "must be an integer >= 1")
        task_map("batch_size_per_task", lambda v: whole(v, 1) and v <= 1 << 20,
                 "an integer >= 1")
        need(whole(self.grad_accum, 1) and self.grad_accum <= 1 << 20, "grad_accum",
             "must be an integer >= 1")
        need(number(self.lr, 0, above=True), "lr", "must be a number > 0")
        need(isinstance(self.lr_groups, dict), "lr_groups", "must be an object")
        for k, v in self.lr_groups.items():
            need(number(v, 0), f"lr_groups.{k}", f"must be a number >= 0, got {_show(v)}")
        task_map("loss_weights", lambda v: number(v, 0), "a number >= 0")
        task_map("task_weights", lambda v: number(v, 0), "a number >= 0")
        need(number(self.weight_decay, 0), "weight_decay", "must be a number >= 0")
        need(isinstance(self.betas, list) and len(self.betas) == 2
             and all(number(b, 0) and b < 1 for b in self.betas), "betas",
             "must be two numbers in [0, 1), e.g. [0.9, 0.999]")
        need(number(self.warmup, 0), "warmup", "must be a number >= 0")
        need(number(self.min_lr_ratio, 0) and self.min_lr_ratio <= 1, "min_lr_ratio",
             "must be a number in [0, 1]")
        need(number(self.max_grad_norm, 0), "max_grad_norm", "must be a number >= 0 (0: off)")
        need(isinstance(self.sampling, str) and self.sampling in RULES, "sampling",
             f"must be one of {', '.join(RULES)}")
        need(number(self.temperature, 0, above=True), "temperature", "must be a number > 0")
        from fusionbrain.train.balancer import BALANCERS

        need(isinstance(self.balancer, str) and self.balancer in BALANCERS, "balancer",
             f"must be one of {', '.join(BALANCERS)}")
        need(whole(self.balance_every, 1), "balance_every", "must be an integer >= 1")
        need(whole(self.balance_samples, 1), "balance_samples", "must be an integer >= 1")
        need(number(self.balance_tau, 0, above=True), "balance_tau", "must be a number > 0")
        need(number(self.balance_floor, 0) and self.balance_floor < 1, "balance_floor",
             "must be a number in [0, 1)")
        need(whole(self.loader_workers, 0) and self.loader_workers <= 64, "loader_workers",
             "must be an integer in [0, 64]")
        need(whole(self.seed, 0) and self.seed < 2**31, "seed",
             "must be an integer in [0, 2**31)")
        need(whole(self.eval_every, 0), "eval_every", "must be an integer >= 0")
        need(whole(self.eval_max_samples, 0), "eval_max_samples",
             "must be an integer >= 0 (0: all)")
        need(whole(self.save_every, 0), "save_every", "must be an integer >= 0")
        need(whole(self.predict_batch_size, 1), "predict_batch_size", "must be an integer >= 1")
        for key in ("eval_at_end", "bf16", "ddp_find_unused_parameters"):
            need(isinstance(getattr(self, key), bool), key, "must be true or false")
        need(isinstance(self.device, str) and self.device in ("auto", "cpu", "cuda"), "device",
             "must be auto, cpu or cuda")
        need(self.threads is None or (whole(self.threads, 1) and self.threads <= 4096), "threads",
             "must be null or an integer >= 1")
        need(isinstance(self.profile, str) and self.profile in PROFILES, "profile",
             f"must be one of {', '.join(PROFILES)}")
        need(isinstance(self.energy, dict), "energy", "must be an object")
        known = {"enabled": bool, "country_iso_code": str, "carbon_intensity_g_per_kwh": float,
                 "csv": bool, "fallback_power_w": float, "tracking_mode": str}
        for k, v in self.energy.items():
            need(k in known, f"energy.{k}", f"unknown key; expected some of {', '.join(known)}")
            typ = known[k]
            ok = (isinstance(v, bool) if typ is bool else isinstance(v, str) if typ is str
                  else v is None or number(v, 0))
            need(ok, f"energy.{k}", f"wrong value {_show(v)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def batch_for(self, task: str) -> int:
        return int(self.batch_size_per_task.get(task, self.batch_size))


def _finite(v: float) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer too large for a float
        return False


def _show(v: Any) -> str:
    """A value for a message: JSON-like and short ("null", not "None")."""
    import json

    try:
        text = json.dumps(v, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def load_config(path: str | os.PathLike[str] | None) -> TrainConfig:
    """A training config from a JSON file (None: the defaults)."""
    if path is None:
        return TrainConfig()
    data = read_json(path, expect=dict)
    return TrainConfig.from_dict(data, source=str(path))


def configs_dir() -> Path:
    """The configs shipped in the package (``fusionbrain/configs/``, package data; the
    repository's ``configs/`` is a link to it)."""
    return Path(__file__).resolve().parents[1] / "configs"


DEFAULT_CONFIG = "cpu-main.json"


def default_config_path() -> Path:
    """The main job's config. Missing means a broken install: say so rather than fall back
    to a random tiny model that trains "fine" and learns nothing."""
    p = configs_dir() / DEFAULT_CONFIG
    if not p.is_file():
        raise UserError("the package's training configs are missing (a broken install: "
                        "reinstall fusionbrain, or pass --config FILE)", path=p)
    return p
