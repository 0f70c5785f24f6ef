"""Which task each step trains on, and which samples go into its batch.

Everything is a pure function of (seed, counters), so the state to checkpoint is a
handful of integers, every DDP rank draws the same task at the same step without any
communication, and a resumed run continues with exactly the same draws.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from fusionbrain.errors import UserError

RULES = ("proportional", "temperature", "uniform", "round_robin", "weighted")


def task_weights(sizes: dict[str, int], rule: str, temperature: float = 2.0,
                 weights: dict[str, float] | None = None) -> dict[str, float]:
    """Probability of each task per step.

    proportional: p ∝ n; temperature: p ∝ n^(1/T) (T=1 proportional, T→∞ uniform);
    uniform: equal; round_robin: equal, but drawn in a fixed cycle (see :class:`TaskSampler`);
    weighted: p ∝ the given ``weights`` (e.g. to give cheap tasks more steps).
    """
    if rule not in RULES:
        raise UserError(f"unknown sampling rule {rule!r}; expected one of {', '.join(RULES)}")
    if not sizes:
        raise UserError("no task to train on (no training samples found)")
    if rule == "weighted":
        weights = weights or {}
        missing = [t for t in sizes if t not in weights]
        if missing:
            raise UserError(f"sampling 'weighted' needs task_weights for {', '.join(missing)}")
        if any(float(weights[t]) < 0 for t in sizes) or not sum(float(weights[t])
                                                                  for t in sizes):
            raise UserError("task_weights must be >= 0 and not all 0")
        raw = {t: float(weights[t]) for t in sizes}
    elif rule in ("uniform", "round_robin"):
        raw = {t: 1.0 for t in sizes}
    elif rule == "proportional":
        raw = {t: float(n) for t, n in sizes.items()}
    else:
        if temperature <= 0:
            raise UserError(f"sampling temperature must be > 0, got {temperature}")
        raw = {t: float(n) ** (1.0 / temperature) for t, n in sizes.items()}
    total = sum(raw.values())
    return {t: w / total for t, w in raw.items()}


class TaskSampler:
    """Draws the task of each step and the sample indices of its batch.

    Task of step s: a draw from ``random.Random((seed, "task", s))`` with the rule's weights
    (round_robin: the task order cycled). Samples: each task walks through its own
    permutation, reshuffled each epoch with ``Random((seed, task, epoch))``; a DDP rank takes
    every ``world``-th index of the global batch, so ranks see disjoint samples.
    """

    def __init__(self, sizes: dict[str, int], *, rule: str = "proportional",
                 temperature: float = 2.0, seed: int = 0,
                 weights: dict[str, float] | None = None) -> None:
        self.sizes = {t: int(n) for t, n in sizes.items() if int(n) > 0}
        self.rule = rule
        self.temperature = temperature
        self.seed = int(seed)
        self.weights = task_weights(self.sizes, rule, temperature, weights)
        self.tasks = list(self.sizes)
        # per task: (epoch, position in that epoch's permutation)
        self.cursor: dict[str, list[int]] = {t: [0, 0] for t in self.tasks}
        self._perm_cache: dict[str, tuple[int, list[int]]] = {}

    def task_for_step(self, step: int) -> str:
        """The task trained at global step ``step`` (0-based); same on every rank."""
        if len(self.tasks) == 1:
            return self.tasks[0]
        if self.rule == "round_robin":
            return self.tasks[step % len(self.tasks)]
        rng = random.Random(f"{self.seed}/task/{step}")
        return rng.choices(self.tasks, weights=[self.weights[t] for t in self.tasks])[0]

    def set_weights(self, weights: dict[str, float]) -> None:
        """New task probabilities from now on (the automatic balancer's); normalised here."""
        if set(weights) != set(self.tasks) or any(w < 0 for w in weights.values()) \
                or not sum(weights.values()):
            raise ValueError(f"weights must cover {self.tasks} and not all be 0: {weights}")
        total = float(sum(weights.values()))
        self.weights = {t: float(weights[t]) / total for t in self.tasks}

    def _perm(self, task: str, epoch: int) -> list[int]:
        cached = self._perm_cache.get(task)
        if cached and cached[0] == epoch:
            return cached[1]
        perm = list(range(self.sizes[task]))
        random.Random(f"{self.seed}/{task}/{epoch}").shuffle(perm)
        self._perm_cache[task] = (epoch, perm)
        return perm

    def next_indices(self, task: str, batch_size: int, *, rank: int = 0,
                     world: int = 1) -> list[int]:
        """Indices of this rank's share of the next global batch of ``task``.

        The global batch has ``batch_size * world`` samples; it wraps into the next epoch
        (a fresh permutation) when the current one runs out.
        """
        need = batch_size * world
        out: list[int] = []
        epoch, pos = self.cursor[task]
        while len(out) < need:
            perm = self._perm(task, epoch)
            take = perm[pos:pos + need - len(out)]
            out.extend(take)
            pos += len(take)
            if pos >= len(perm):
                epoch, pos = epoch + 1, 0
        self.cursor[task] = [epoch, pos]
        return out[rank::world]

    def state_dict(self) -> dict[str, Any]:
        return {"sizes": dict(self.sizes), "rule": self.rule, "temperature": self.temperature,
                "seed": self.seed, "cursor": {t: list(c) for t, c in self.cursor.items()},
                "weights": dict(self.weights)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the cursors; refuse a state from a different dataset or rule."""
        if state.get("sizes") != self.sizes or state.get("rule") != self.rule \
                or state.get("seed") != self.seed:
            raise UserError("checkpoint was made with other data or sampling settings "
                            f"(saved sizes {state.get('sizes')}, rule {state.get('rule')!r}, "
                            f"seed {state.get('seed')}; now {self.sizes}, {self.rule!r}, "
                            f"{self.seed}); start a new run instead of --resume")
        self.cursor = {t: list(state["cursor"][t]) for t in self.tasks}
        if "weights" in state:  # the balancer's latest (older checkpoints: the rule's)
            self.set_weights(state["weights"])


def mix_summary(counts: dict[str, int], tasks: Sequence[str]) -> str:
    """'C2C 25% HTR 25% …' for the progress bar."""
    total = sum(counts.values()) or 1
    return " ".join(f"{t} {100 * counts.get(t, 0) / total:.0f}%" for t in tasks)
