"""COPY samples, the training format and a plain-text importer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionbrain.data.jsonl import read_samples, write_samples


@dataclass
class CopySample:
    id: str
    text: str
    target: str = ""  # the expected output: the text itself ("" when unknown)


def _problem(s: CopySample, need_target: bool = True) -> str | None:
    if not isinstance(s.text, str) or not s.text:
        return "empty text"
    return None


def read_split(folder: str | os.PathLike[str], report: Any = None,
               verify_images: bool = False) -> list[CopySample]:
    return read_samples(CopySample, folder, _problem, report, verify_images)


def write_split(samples: list[CopySample], folder: str | os.PathLike[str]) -> None:
    write_samples(samples, folder)


def read_lines(path: str | os.PathLike[str], report: Any = None) -> list[CopySample]:
    lines = Path(path).read_text("utf-8").splitlines()
    return [CopySample(str(i), t, t) for i, t in enumerate(lines) if t.strip()]


def read_challenge(input_dir: str | os.PathLike[str], true_json: Any = None,
                   report: Any = None) -> list[CopySample]:
    from copytask.formats import read_input
    from fusionbrain.utils.io import read_json

    samples = read_input(input_dir)
    truth = read_json(true_json, expect=dict) if true_json else {}
    return [CopySample(s.id, s.text, str(truth.get(s.id, ""))) for s in samples]
