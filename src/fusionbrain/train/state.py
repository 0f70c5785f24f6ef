"""The loop's own progress: what a checkpoint must hold besides the model and optimizer."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainState:
    """Step reached, best validation, task mix, samples seen and training time so far.

    ``state_dict`` keeps the flat key names of earlier checkpoints (``best_S``,
    ``elapsed_s``...), so a run saved before this class existed still resumes.
    """

    step: int = 0
    best_S: float = -math.inf  # noqa: N815 - the challenge's name for the integral score
    best_step: int | None = None
    mix: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    elapsed_s: float = 0.0

    @classmethod
    def start(cls, tasks: list[str]) -> TrainState:
        return cls(mix={t: 0 for t in tasks})

    def advance(self, task: str, samples: int) -> None:
        """One optimizer step of ``task`` on ``samples`` samples (all ranks together)."""
        self.step += 1
        self.mix[task] = self.mix.get(task, 0) + 1
        self.samples += samples

    def improved(self, score: float, step: int) -> bool:
        """Record a validation score; True when it is the best so far."""
        if score > self.best_S:
            self.best_S, self.best_step = float(score), step
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "best_S": self.best_S, "best_step": self.best_step,
                "mix": dict(self.mix), "samples": self.samples, "elapsed_s": self.elapsed_s}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.best_S = float(state.get("best_S", -math.inf))
        self.best_step = state.get("best_step")
        saved = state.get("mix", {})
        self.mix = {t: int(saved.get(t, 0)) for t in self.mix}
        self.samples = int(state.get("samples", 0))
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
