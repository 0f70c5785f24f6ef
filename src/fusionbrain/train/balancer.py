"""Automatic task balancing: how many steps each task gets, decided while training.

``balancer: "fixed"`` keeps the config's ``sampling`` rule (and ``task_weights``).
``balancer: "gap"`` needs no per-task number from the user: every ``balance_every`` steps
rank 0 scores each task on a small slice of its validation split (the first
``balance_samples`` samples) and compares it with the task's trivial baseline on the same
slice (fitted on the training split, scored once). A task at or under its baseline gets
full weight; a task above it gets ``exp(-margin / balance_tau)`` (never under
``balance_floor``, so no task is forgotten while the shared weights move). Weights are
normalised into the sampler's probabilities; ranks receive rank 0's weights.

Why this rule: what a step is worth differs by task and by phase (C2C's edit head passes
its baseline in tens of steps; HTR's CTC sits in its all-blank phase for hundreds), and the
training loss does not show it (a loss plateau is HTR's blank phase, not convergence). The
challenge score against the baseline does, in the unit the main job is judged by. The
measurements are deterministic functions of the weights, so exact resume holds.
"""

from __future__ import annotations

import math
from typing import Any

BALANCERS = ("fixed", "gap")


class GapBalancer:
    """Sampling weights from each task's margin over its trivial baseline (see module doc)."""

    def __init__(self, tasks: list[str], *, every: int, tau: float, floor: float) -> None:
        self.tasks = list(tasks)
        self.every = int(every)
        self.tau = float(tau)
        self.floor = float(floor)
        self.baseline: dict[str, float] = {}  # task -> baseline score on the slice (rank 0)
        self.history: list[dict[str, Any]] = []  # one record per update

    def due(self, done: int, total: int) -> bool:
        """An update after step ``done`` (never after the last one: it would change nothing)."""
        return self.every > 0 and done % self.every == 0 and done < total

    def initial_weights(self) -> dict[str, float]:
        return {t: 1.0 / len(self.tasks) for t in self.tasks}

    def weights_from(self, scores: dict[str, float]) -> dict[str, float]:
        """Normalised weights from validation scores (a task without a score: full weight)."""
        raw = {}
        for t in self.tasks:
            if t in scores and t in self.baseline:
                margin = max(0.0, float(scores[t]) - self.baseline[t])
                raw[t] = self.floor + (1.0 - self.floor) * math.exp(-margin / self.tau)
            else:
                raw[t] = 1.0
        total = sum(raw.values())
        return {t: w / total for t, w in raw.items()}

    def record(self, step: int, scores: dict[str, float], weights: dict[str, float]
               ) -> dict[str, Any]:
        rec = {"step": step, "scores": dict(scores), "baseline": dict(self.baseline),
               "weights": dict(weights)}
        self.history.append(rec)
        return rec

    def state_dict(self) -> dict[str, Any]:
        return {"baseline": dict(self.baseline), "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.baseline = {t: float(v) for t, v in state.get("baseline", {}).items()}
        self.history = list(state.get("history", []))
