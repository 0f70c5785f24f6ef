"""Prediction helpers shared by validation, the balancer, ``predict`` and the experiment."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn


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
