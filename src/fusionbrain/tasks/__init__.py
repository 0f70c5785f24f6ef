"""The task registry.

Each task is one package ``fusionbrain.tasks.<name>`` holding everything about
it, in modules with fixed names (import only the part you need: ``metric`` and
``formats`` never import torch):

- ``metric``  — challenge metric(s), aij2021 and strict profiles (torch-free)
- ``formats`` — reading the challenge ``input/`` folder, writing ``prediction_<TASK>.json``
- ``data``    — the task's sample type, synthetic generator, readers of real datasets,
                and the project's training format (write/read a split)
- ``head``    — the task head (``nn.Module``), its collate, loss and decoding
- ``baseline``— the trivial baseline the experiment report compares against

The model, trainer, ``predict`` and ``score`` iterate over :data:`TASKS` and
never name a task. A new task is a new folder plus one line here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from fusionbrain.errors import UserError

# Challenge name -> package. Order is the challenge's order in reports.
TASKS: dict[str, str] = {
    "C2C": "fusionbrain.tasks.c2c",
    "HTR": "fusionbrain.tasks.htr",
    "zsOD": "fusionbrain.tasks.zsod",
    "VQA": "fusionbrain.tasks.vqa",
}


def check_task(name: str) -> str:
    """Return the canonical task name, or raise a clear error for an unknown one."""
    for known in TASKS:
        if known.lower() == str(name).lower():
            return known
    raise UserError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")


def task_module(name: str, part: str) -> ModuleType:
    """Import ``fusionbrain.tasks.<task>.<part>`` (e.g. ``task_module("HTR", "metric")``)."""
    return importlib.import_module(f"{TASKS[check_task(name)]}.{part}")
