"""Support for the training tests (no tests here): a toy model honouring the model contract.

It lets the engine, checkpoints and DDP be tested in seconds without the real body. The
engine's data readers and task metric lookups are swapped for toy ones by :func:`patch`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

TOY_TASKS = ["C2C", "HTR", "zsOD", "VQA"]


@dataclass
class ToySample:
    id: str
    x: list
    y: int


class ToyModel(nn.Module):
    """A shared linear body + one small head per task (with dropout, to test RNG handling)."""

    def __init__(self, config=None, tasks=None) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.config = config
        self.body = nn.Linear(4, 8)
        self.heads = nn.ModuleDict({t: nn.Sequential(nn.Dropout(0.2), nn.Linear(8, 3))
                                    for t in (tasks or TOY_TASKS)})
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)

    @property
    def task_names(self) -> list[str]:
        return list(self.heads)

    @property
    def device(self) -> torch.device:
        return self.body.weight.device

    def collate(self, task, samples, train=True):
        return {"x": torch.tensor([s.x for s in samples]),
                "y": torch.tensor([s.y for s in samples])}

    def forward(self, task, batch):
        logits = self.heads[task](torch.relu(self.body(batch["x"])))
        loss = nn.functional.cross_entropy(logits, batch["y"])
        # a second scalar, as real heads return their parts (HTR: ctc, aux_ctc, align_ce)
        return {"loss": loss, "mean_logit": logits.detach().mean()}

    @torch.no_grad()
    def predict(self, task, samples, batch_size=16):
        was = self.training
        self.eval()
        b = self.collate(task, samples)
        out = self.heads[task](torch.relu(self.body(b["x"].to(self.device)))).argmax(-1)
        self.train(was)
        return out.tolist()

    def trainable_parameters(self, task=None):
        ts = [task] if task else self.task_names
        return list(self.body.parameters()) + [p for t in ts for p in self.heads[t].parameters()]

    def parameter_counts(self):
        n = sum(p.numel() for p in self.parameters())
        return {"total_parameters": n, "shared_parameters": 40, "trainable_parameters": n}

    def save_pretrained(self, d):
        d = Path(d)
        d.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), d / "w.pt")
        (d / "config.json").write_text(json.dumps({"tasks": self.task_names}))

    @classmethod
    def from_pretrained(cls, d):
        d = Path(d)
        m = cls(None, json.loads((d / "config.json").read_text())["tasks"])
        m.load_state_dict(torch.load(d / "w.pt"))
        return m


def toy_samples(n: int, seed: int) -> list[ToySample]:
    r = random.Random(seed)
    out = []
    for i in range(n):
        x = [r.uniform(-1, 1) for _ in range(4)]
        out.append(ToySample(str(i), x, int(x[0] > 0) + int(x[1] > 0)))
    return out


def toy_load_split(data_dir, split, tasks, report=True):
    return {t: toy_samples(24 if split == "train" else 8, TOY_TASKS.index(t) + (split == "valid"))
            for t in tasks}


class NanToy(ToyModel):
    """The toy whose VQA loss is NaN (a diverged head)."""

    def forward(self, task, batch):
        out = super().forward(task, batch)
        if task == "VQA":
            out["loss"] = out["loss"] * float("nan")
        return out


class CalibratingToy(ToyModel):
    """The toy with a post-training ``calibrate`` hook (like VQA's prior weight): it records
    what the engine gave it and keeps a value that the saved model must carry."""

    def __init__(self, config=None, tasks=None) -> None:
        super().__init__(config, tasks)
        self.register_buffer("calibrated", torch.zeros(()))
        self.calls: list[dict] = []

    def calibrate(self, valid_sets):
        self.calls.append({t: len(v) for t, v in valid_sets.items()})
        self.calibrated.fill_(7.0)
        return {"VQA": {"chosen": 7.0, "n": len(valid_sets.get("VQA", []))}}


class FittingToy(ToyModel):
    """The toy with a ``fit_data`` hook (like HTR's n-gram): the class records each call."""

    calls: list[tuple[tuple[str, ...], bool]] = []

    def fit_data(self, train_sets, keep_fitted=False):
        FittingToy.calls.append((tuple(train_sets), keep_fitted))


class ToyBaseline:
    """A trivial baseline for the toy tasks: always class 0."""

    @staticmethod
    def fit(samples):
        return 0

    @staticmethod
    def predict(state, samples):
        return [state for _ in samples]


class ToyFormats:
    @staticmethod
    def prediction_json(samples, outputs):
        return {s.id: o for s, o in zip(samples, outputs, strict=True)}

    @staticmethod
    def truth_json(samples):
        return {s.id: s.y for s in samples}


class ToyMetric:
    @staticmethod
    def score(pred, true, profile="aij2021"):
        return {"score": sum(pred[k] == v for k, v in true.items()) / len(true)}


def patch(monkeypatch=None) -> None:
    """Point the engine at toy data and metrics (module attributes; call in each process,
    or from a fixture with pytest's ``monkeypatch`` so the test undoes it)."""
    import fusionbrain.train.engine as engine

    real = engine.task_module
    setattr_ = monkeypatch.setattr if monkeypatch is not None else setattr
    setattr_(engine, "load_split", toy_load_split)
    setattr_(engine, "task_module", lambda t, part: (
        ToyFormats if part == "formats" else ToyMetric if part == "metric"
        else ToyBaseline if part == "baseline" else real(t, part)))


TOY_CLASS = "test_train_support:ToyModel"
NAN_CLASS = "test_train_support:NanToy"
