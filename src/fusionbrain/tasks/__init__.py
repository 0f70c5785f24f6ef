"""The task registry.

Each task is one package holding everything about it, in modules with fixed names
(import only the part you need: ``config``, ``metric`` and ``formats`` never import torch):

- ``__init__``— the declaration: ``HELP`` (one line) and ``IMPORTERS``
                (``fusionbrain data import KIND``, see :class:`fusionbrain.tasks.base.Importer`)
- ``config``  — ``CONFIG``: the task's config dataclass (fields, defaults, checks, presets);
                ``FusionBrainConfig.tasks[<task>]`` holds one (optional: no fields)
- ``metric``  — challenge metric(s), aij2021 and strict profiles (torch-free)
- ``formats`` — reading the challenge ``input/`` folder, writing ``prediction_<TASK>.json``
- ``data``    — the task's sample type, synthetic generator, readers of real datasets,
                and the project's training format (write/read a split)
- ``head``    — the task head (``nn.Module``), its collate, loss and decoding
- ``api``     — optional: ``METHODS``, the plain-Python helpers it adds to the model
                (``model.read_text(images)``)
- ``baseline``— the trivial baseline the experiment report compares against

The model, trainer, ``predict``, ``score`` and ``data import`` iterate over :data:`TASKS`
and never name a task. A new task is a new folder plus one line here, or, for a task that
lives outside this package, :func:`register_task` at run time (or the environment variable
``FUSIONBRAIN_TASKS="NAME=package[,NAME=package]"``, read on import, so every command and
worker process sees it).
"""

from __future__ import annotations

import importlib
import os
import re
from types import ModuleType
from typing import TYPE_CHECKING, Any

from fusionbrain.errors import UserError

if TYPE_CHECKING:
    from fusionbrain.tasks.base import Importer, TaskConfig

# Challenge name -> package. Order is the challenge's order in reports.
TASKS: dict[str, str] = {
    "C2C": "fusionbrain.tasks.c2c",
    "HTR": "fusionbrain.tasks.htr",
    "zsOD": "fusionbrain.tasks.zsod",
    "VQA": "fusionbrain.tasks.vqa",
}

ENV_VAR = "FUSIONBRAIN_TASKS"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*\Z")  # it becomes file names: prediction_<TASK>.json


def register_task(name: str, package: str) -> str:
    """Add a task that lives in ``package`` (importable) to the registry; returns its name.

    The package follows the same contract as the built-in task folders. Registering the
    same name for the same package again is a no-op.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError(f"task name {name!r}: expected a letter then letters or digits")
    for known, pkg in TASKS.items():
        if known.lower() == name.lower():
            if known == name and pkg == package:
                return name
            raise UserError(f"task {name!r} is already registered (as {known} from {pkg})")
    try:
        importlib.import_module(package)
    except ImportError as e:
        raise UserError(f"task {name}: cannot import package {package!r} ({e})") from None
    TASKS[name] = package  # in place: modules that imported TASKS see the new task
    return name


def _register_from_env() -> None:
    spec = os.environ.get(ENV_VAR, "").strip()
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        name, sep, package = entry.partition("=")
        if not sep or not package.strip():
            raise UserError(f"{ENV_VAR}: expected NAME=package entries, got {entry!r}")
        register_task(name.strip(), package.strip())


def check_task(name: str) -> str:
    """Return the canonical task name, or raise a clear error for an unknown one."""
    for known in TASKS:
        if known.lower() == str(name).lower():
            return known
    raise UserError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")


def task_list(last: str = "or") -> str:
    """The task names for help texts: "C2C, HTR, zsOD or VQA"."""
    names = list(TASKS)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def task_package(name: str) -> ModuleType:
    """The task's package (its declaration: ``HELP``, ``IMPORTERS``)."""
    return importlib.import_module(TASKS[check_task(name)])


def task_module(name: str, part: str) -> ModuleType:
    """Import ``<task package>.<part>`` (e.g. ``task_module("HTR", "metric")``)."""
    return importlib.import_module(f"{TASKS[check_task(name)]}.{part}")


def optional_module(name: str, part: str) -> ModuleType | None:
    """``task_module``, or None when the task has no such module (its own import errors
    still raise)."""
    module = f"{TASKS[check_task(name)]}.{part}"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            return None
        raise


def task_help(name: str) -> str:
    """The task's one-line description (its package's ``HELP``)."""
    return str(getattr(task_package(name), "HELP", "") or check_task(name))


def task_config_class(name: str) -> type[TaskConfig]:
    """The task's config dataclass (``config.CONFIG``; a task without one has no fields)."""
    from fusionbrain.tasks.base import TaskConfig

    module = optional_module(name, "config")
    cls = getattr(module, "CONFIG", TaskConfig) if module is not None else TaskConfig
    if not (isinstance(cls, type) and issubclass(cls, TaskConfig)):
        raise TypeError(f"{module.__name__}.CONFIG must be a TaskConfig subclass")  # type: ignore[union-attr]
    return cls


def importers() -> dict[str, tuple[str, Importer]]:
    """``data import`` kinds of every task: kind -> (task, importer)."""
    out: dict[str, tuple[str, Importer]] = {}
    for task in TASKS:
        for kind, imp in getattr(task_package(task), "IMPORTERS", {}).items():
            if kind in out:
                raise TypeError(f"import kind {kind!r} declared by {out[kind][0]} and {task}")
            out[kind] = (task, imp)
    return out


def api_methods(tasks: list[str] | None = None) -> dict[str, tuple[str, Any]]:
    """Model helpers the tasks add (``api.METHODS``): name -> (task, function(model, ...))."""
    out: dict[str, tuple[str, Any]] = {}
    for task in tasks if tasks is not None else list(TASKS):
        module = optional_module(task, "api")
        for name, fn in (getattr(module, "METHODS", {}) if module is not None else {}).items():
            out[name] = (check_task(task), fn)
    return out


_register_from_env()
