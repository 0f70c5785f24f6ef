"""What a task folder declares, as data (torch-free): its config and its importers.

A task's ``config.py`` holds one :class:`TaskConfig` subclass named ``CONFIG``: its
fields with defaults, their checks (declared here as class-level lists, plus an optional
``check`` method) and its values per model preset. ``FusionBrainConfig.tasks`` holds one
instance per registered task. A task's ``__init__.py`` declares its ``HELP`` line and its
``IMPORTERS`` (``fusionbrain data import KIND``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from fusionbrain.errors import UserError

# ``bad(field, want)``: the UserError for a field's value, naming the key as the user wrote it
BadValue = Callable[[str, str], UserError]


@dataclass
class TaskConfig:
    """Base of a task's config: no fields; subclasses add theirs (plain JSON-able values)."""

    # Configs saved before per-task configs spelt the fields flat, with this prefix
    # (``htr_height`` is ``tasks.HTR.height``); they are converted on read.
    LEGACY_PREFIX: ClassVar[str] = ""
    # values per model preset name ("cpu-small", "tiny"); missing: the defaults
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    # checks, as data: whole numbers >= 1, numbers >= 0, numbers in [0, 1], one of a
    # list, a list of strings
    POSITIVE: ClassVar[tuple[str, ...]] = ()
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ()
    FRACTION: ClassVar[tuple[str, ...]] = ()
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {}
    STRING_LISTS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_values(cls, values: dict[str, Any], bad: BadValue) -> None:
        """Refuse values no head can be built with (types are checked before)."""
        for key in cls.POSITIVE:
            if key in values and values[key] < 1:
                raise bad(key, "a whole number >= 1")
        for key in cls.NON_NEGATIVE:
            if key in values and values[key] < 0:
                raise bad(key, "a number >= 0")
        for key in cls.FRACTION:
            if key in values and not 0 <= values[key] <= 1:
                raise bad(key, "a number in [0, 1]")
        for key, allowed in cls.CHOICES.items():
            if key in values and values[key] not in allowed:
                raise bad(key, " or ".join(repr(a) for a in allowed))
        for key in cls.STRING_LISTS:
            if not all(isinstance(v, str) for v in values.get(key) or []):
                raise bad(key, "a list of strings")


# An importer reads real dataset files into the task's samples:
# ``run(paths, options, report) -> list[Sample]``, where ``options`` holds the
# ``data import`` flags (images, truth, lang, pattern).
ImportFn = Callable[[list[str], argparse.Namespace, Any], list]


@dataclass(frozen=True)
class Importer:
    """One ``fusionbrain data import KIND``: what its paths are and how to read them."""

    run: ImportFn
    help: str  # what the positional paths are (shown in ``data import --help``)
    paths: tuple[int, ...] = (1,)  # accepted numbers of positional paths
