"""The VQA task: everything about it lives in this folder (see fusionbrain.tasks)."""

from __future__ import annotations

import argparse
from typing import Any

from fusionbrain.errors import UserError
from fusionbrain.tasks.base import Importer

HELP = "visual question answering: image + question -> answer (EN, RU)"


def _vqa2(paths: list[str], opts: argparse.Namespace, report: Any) -> list:
    from fusionbrain.tasks.vqa.data import read_vqa_v2

    if not opts.images:
        raise UserError("import vqa2: --images DIR is required")
    return read_vqa_v2(paths[0], paths[1] if len(paths) > 1 else None, opts.images,
                       pattern=opts.pattern, lang=opts.lang or "en", report=report)


IMPORTERS = {
    "vqa2": Importer(_vqa2, "VQA v2 questions JSON [annotations JSON] (--images required; "
                     "--lang en|ru, default: en; --pattern, default "
                     "COCO_{subtype}_{image_id:012d}.jpg)", paths=(1, 2)),
}
