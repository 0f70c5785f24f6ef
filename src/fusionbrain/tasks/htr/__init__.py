"""The HTR task: everything about it lives in this folder (see fusionbrain.tasks)."""

from __future__ import annotations

import argparse
from typing import Any

from fusionbrain.tasks.base import Importer

HELP = "handwritten text recognition: word images -> text (EN, RU)"


def _copybook(paths: list[str], opts: argparse.Namespace, report: Any) -> list:
    from fusionbrain.tasks.htr.data import read_copybook

    return read_copybook(paths[0], opts.images, lang=opts.lang, report=report)


IMPORTERS = {
    "copybook": Importer(_copybook, "labels JSON {\"image.png\": \"text\"} (images beside it "
                         "or --images; --lang en|ru, default: detect)"),
}
