"""The C2C task: everything about it lives in this folder (see fusionbrain.tasks)."""

from __future__ import annotations

import argparse
from typing import Any

from fusionbrain.tasks.base import Importer

HELP = "code-to-code translation: Java -> Python"


def _avatar(paths: list[str], opts: argparse.Namespace, report: Any) -> list:
    from fusionbrain.tasks.c2c.data import read_avatar

    return read_avatar(paths[0], report=report)


def _parallel(paths: list[str], opts: argparse.Namespace, report: Any) -> list:
    from fusionbrain.tasks.c2c.data import read_parallel

    return read_parallel(paths[0], paths[1], report=report)


IMPORTERS = {
    "avatar": Importer(_avatar, "AVATAR / TransCoder JSONL"),
    "parallel": Importer(_parallel, "parallel FILE.java FILE.python line files", paths=(2,)),
}
