"""The batches of the coming steps, collated (images decoded, resized) by DataLoader workers.

The loop asks for a stretch of steps whose tasks are already known (up to the next balancer
update or checkpoint); the sample indices are drawn here, in order, on the training thread,
and only the collation (the slow part: image decoding and resizing) runs in the workers,
``loader_workers`` of them (0: on the training thread). Each batch is collated under its own
seed and leaves the caller's random state untouched, so 0 or N workers give the same batches
and a resumed run the same as a straight one.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from fusionbrain.train.distributed import DistInfo, seed_step
from fusionbrain.train.sampler import TaskSampler

Job = tuple[int, int, str, list[int]]  # (step, micro-step, task, sample indices)


class _Jobs(Dataset):
    def __init__(self, jobs: list[Job], model: Any, train_sets: dict[str, list], seed: int,
                 rank: int) -> None:
        self.jobs, self.model, self.train_sets = jobs, model, train_sets
        self.seed, self.rank = seed, rank

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int) -> dict:
        step, micro, task, idx = self.jobs[i]
        saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:
            seed_step(self.seed, step, self.rank, stream=1 + micro)
            return self.model.collate(task, [self.train_sets[task][j] for j in idx])
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])


def _identity(batch: dict) -> dict:
    return batch


class StepBatches:
    """``between(start, end)`` yields ``(step, task, [one batch per micro-step])``."""

    def __init__(self, model: Any, train_sets: dict[str, list], sampler: TaskSampler, *,
                 batch_for: Any, grad_accum: int, seed: int, info: DistInfo,
                 workers: int = 0) -> None:
        self.model, self.train_sets, self.sampler = model, train_sets, sampler
        self.batch_for, self.grad_accum, self.seed = batch_for, grad_accum, seed
        self.info, self.workers = info, workers

    def between(self, start: int, end: int) -> Iterator[tuple[int, str, list[dict]]]:
        jobs: list[Job] = []
        for step in range(start, end):
            task = self.sampler.task_for_step(step)
            for micro in range(self.grad_accum):
                idx = self.sampler.next_indices(task, self.batch_for(task),
                                                rank=self.info.rank, world=self.info.world)
                jobs.append((step, micro, task, idx))
        if not jobs:
            return
        workers = min(self.workers, len(jobs))
        loader = DataLoader(_Jobs(jobs, self.model, self.train_sets, self.seed,
                                  self.info.rank),
                            batch_size=None, shuffle=False, num_workers=workers,
                            collate_fn=_identity, pin_memory=self.info.device.type == "cuda",
                            prefetch_factor=2 if workers else None)
        batches: list[dict] = []
        for (step, micro, task, _), batch in zip(jobs, loader, strict=True):
            batches.append(batch)
            if micro == self.grad_accum - 1:
                yield step, task, batches
                batches = []
