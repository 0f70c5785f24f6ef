"""A toy fifth task, COPY ("write the input string back"), kept outside the package.

It follows the task-folder contract of ``fusionbrain.tasks`` and is registered at run
time (``register_task("COPY", "copytask")`` or ``FUSIONBRAIN_TASKS=COPY=copytask``):
tests/test_fifth_task.py trains, predicts and scores it with the ordinary commands, which
proves that a task needs no edit to a shared file.
"""

from __future__ import annotations

import argparse
from typing import Any

from fusionbrain.tasks.base import Importer

HELP = "copy the input string (a toy task)"


def _lines(paths: list[str], opts: argparse.Namespace, report: Any) -> list:
    from copytask.data import read_lines

    return read_lines(paths[0], report=report)


IMPORTERS = {"copy-lines": Importer(_lines, "a text file, one string per line")}
