"""C2C challenge files: ``input/C2C/requests.json`` ``{"0": java}``, truth and prediction
``{"0": python}`` (torch-free)."""

from __future__ import annotations

import os
from pathlib import Path

from fusionbrain.data.inputs import InputSamples, merge_defaults, natural_key, warn_skipped
from fusionbrain.data.report import SkipReport, start_report
from fusionbrain.errors import UserError
from fusionbrain.tasks.c2c.data import C2CSample
from fusionbrain.utils.io import json_type, read_json, write_json_atomic

REQUESTS = "requests.json"


def read_input(task_input_dir: str | os.PathLike[str],
               report: SkipReport | None = None) -> list[C2CSample]:
    """Read ``requests.json`` as unlabelled samples (``python == ""``), keys in numeric order.

    An empty request is skipped and reported (it keeps its key with an empty prediction, see
    :mod:`fusionbrain.data.inputs`); a non-text request is an error in the file.
    """
    path = Path(task_input_dir) / REQUESTS
    req = read_json(path, expect=dict)
    report, own, before = start_report(report)
    out = InputSamples()
    for key in sorted(req, key=natural_key):
        java = req[key]
        if not isinstance(java, str):
            raise UserError(f"expected Java source text, got {json_type(java)}",
                            path=path, key=key)
        if not java.strip():
            report.add(path, key, "empty java source")
            out.defaults[key] = ""
            continue
        out.append(C2CSample(key, java, ""))
    if own:
        warn_skipped(report, before, "C2C")
    return out


def write_input(samples: list[C2CSample], task_input_dir: str | os.PathLike[str]) -> list[C2CSample]:
    """Write ``requests.json`` keyed by sample id; returns the samples as written."""
    req: dict[str, str] = {}
    for s in samples:
        if s.id in req:
            raise ValueError(f"duplicate C2C sample id {s.id!r}")
        req[s.id] = s.java
    write_json_atomic(Path(task_input_dir) / REQUESTS, req)
    return list(samples)


def truth_json(samples: list[C2CSample]) -> dict:
    """``true_C2C.json``: ``{id: python}``."""
    return {s.id: s.python for s in samples}


def prediction_json(samples: list[C2CSample], outputs: list[str]) -> dict:
    """``prediction_C2C.json``: ``{id: predicted python}``; empty requests get ``""``."""
    if len(outputs) != len(samples):
        raise ValueError(f"{len(outputs)} outputs for {len(samples)} C2C samples")
    pred = {s.id: str(o) for s, o in zip(samples, outputs, strict=True)}
    return merge_defaults(pred, samples, natural_key)
