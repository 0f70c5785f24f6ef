"""COPY challenge files: ``input/COPY/requests.json`` ``{"0": text}``; truth and prediction
``{"0": text}``."""

from __future__ import annotations

import os
from pathlib import Path

from copytask.data import CopySample
from fusionbrain.utils.io import read_json, write_json_atomic

REQUESTS = "requests.json"


def read_input(task_input_dir: str | os.PathLike[str], report: object = None) -> list[CopySample]:
    req = read_json(Path(task_input_dir) / REQUESTS, expect=dict)
    return [CopySample(k, str(v)) for k, v in sorted(req.items(), key=lambda kv: int(kv[0]))]


def write_input(samples: list[CopySample], task_input_dir: str | os.PathLike[str]) -> list:
    write_json_atomic(Path(task_input_dir) / REQUESTS, {s.id: s.text for s in samples})
    return list(samples)


def truth_json(samples: list[CopySample]) -> dict:
    return {s.id: s.target for s in samples}


def prediction_json(samples: list[CopySample], outputs: list[str]) -> dict:
    return {s.id: str(o) for s, o in zip(samples, outputs, strict=True)}
