"""Processes, devices and seeds: what the training loop needs to run the same on 1 or N ranks.

Under torchrun every rank runs the same loop; the task of a step and the seeds depend only
on (seed, step, rank), so ranks agree without talking, except where a value is measured on
rank 0 (the automatic balancer's scores), which :func:`broadcast` sends to the others.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

import torch

from fusionbrain.errors import UserError


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


def broadcast(info: DistInfo, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (a picklable value; identity on one process)."""
    if not info.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_true(info: DistInfo, flag: bool) -> bool:
    """True when ``flag`` holds on every rank (one tiny all-reduce under DDP)."""
    if not info.distributed:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1 if flag else 0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


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


def seed_step(seed: int, step: int, rank: int, stream: int = 0) -> None:
    """Seed every RNG from (seed, step, rank): a resumed run draws what a straight run drew.

    ``stream`` separates uses within a step (0: the forward pass; 1 + k: the collation of
    micro-step k, which may run in a DataLoader worker).
    """
    s = (seed * 1_000_003 + step * 9_973 + rank * 101 + stream * 7_654_321) % (2**31 - 1)
    random.seed(s)
    torch.manual_seed(s)
    try:
        import numpy as np

        np.random.seed(s)
    except ImportError:  # numpy is a dependency; guarded only for odd installs
        pass
