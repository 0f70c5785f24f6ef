"""The training config: plain JSON data (``configs/*.json``), validated with clear errors."""

from __future__ import annotations

import dataclasses
import os
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
        def need(cond: bool, key: str, msg: str) -> None:
            if not cond:
                raise UserError(msg, path=source, key=key)

        need(isinstance(self.steps, int) and self.steps >= 1, "steps", "must be an integer >= 1")
        need(self.epochs is None or (isinstance(self.epochs, (int, float)) and self.epochs > 0),
             "epochs", "must be a number > 0")
        need(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size",
             "must be an integer >= 1")
        need(isinstance(self.grad_accum, int) and self.grad_accum >= 1, "grad_accum",
             "must be an integer >= 1")
        need(isinstance(self.lr, (int, float)) and self.lr > 0, "lr", "must be a number > 0")
        need(isinstance(self.lr_groups, dict), "lr_groups", "must be an object")
        need(isinstance(self.batch_size_per_task, dict), "batch_size_per_task",
             "must be an object")
        need(isinstance(self.energy, dict), "energy", "must be an object")
        need(self.device in ("auto", "cpu", "cuda"), "device", "must be auto, cpu or cuda")
        need(self.warmup >= 0, "warmup", "must be >= 0")
        from fusionbrain.train.sampler import RULES

        need(self.sampling in RULES, "sampling", f"must be one of {', '.join(RULES)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def batch_for(self, task: str) -> int:
        return int(self.batch_size_per_task.get(task, self.batch_size))


def load_config(path: str | os.PathLike[str] | None) -> TrainConfig:
    """A training config from a JSON file (None: the defaults)."""
    if path is None:
        return TrainConfig()
    data = read_json(path, expect=dict)
    return TrainConfig.from_dict(data, source=str(path))


def configs_dir() -> Path:
    """The repository's ``configs/`` folder (for the main job and the experiment)."""
    return Path(__file__).resolve().parents[3] / "configs"
