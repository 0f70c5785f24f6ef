"""The zsOD task: everything about it lives in this folder (see fusionbrain.tasks)."""

from __future__ import annotations

import argparse
from typing import Any

from fusionbrain.tasks.base import Importer

HELP = "zero-shot object detection: image + phrases -> boxes (EN, RU)"


def _coco(paths: list[str], opts: argparse.Namespace, report: Any) -> list:
    from fusionbrain.tasks.zsod.data import read_coco

    langs = tuple((opts.lang or "en").split(","))
    return read_coco(paths[0], opts.images, langs=langs, report=report)


IMPORTERS = {
    "coco": Importer(_coco, "COCO detection JSON (images in ../images or --images; "
                     "--lang en,ru, default: en)"),
}
