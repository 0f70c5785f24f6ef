"""VQA challenge files: ``input/VQA/images/`` + ``questions.json``
``{"0": {"file_name", "question"}}``; truth ``{"0": {"answer", "question_id", "lang"}}``;
prediction ``{"0": "answer"}`` (torch-free).

``questions.json`` carries no language: :func:`read_input` detects it (Cyrillic → "ru").
"""

from __future__ import annotations

import os
from pathlib import Path

from fusionbrain.data.images import copy_image, image_problem
from fusionbrain.data.inputs import (
    InputSamples,
    ascii_digits,
    merge_defaults,
    natural_key,
    warn_skipped,
)
from fusionbrain.data.lang import detect_lang
from fusionbrain.data.report import SkipReport, start_report
from fusionbrain.errors import UserError
from fusionbrain.tasks.vqa.data import VQASample
from fusionbrain.utils.io import read_json, write_json_atomic

IMAGES = "images"
QUESTIONS = "questions.json"


def read_input(task_input_dir: str | os.PathLike[str],
               report: SkipReport | None = None) -> list[VQASample]:
    """Read ``questions.json`` + ``images/`` as unlabelled samples (answers []), keys in numeric
    order; the language is detected from the question ("" when it cannot be told).

    A missing or corrupt image, or an empty question, is skipped and reported; it keeps its
    key with an empty prediction (see :mod:`fusionbrain.data.inputs`).
    """
    root = Path(task_input_dir)
    path = root / QUESTIONS
    qs = read_json(path, expect=dict)
    report, own, before = start_report(report)
    out = InputSamples()
    for k in sorted(qs, key=natural_key):
        q = qs[k]
        if not isinstance(q, dict) or not isinstance(q.get("file_name"), str) \
                or not isinstance(q.get("question"), str):
            raise UserError("expected {\"file_name\": str, \"question\": str}", path=path, key=k)
        if not q["question"].strip():
            report.add(path, k, "empty question")
            out.defaults[k] = ""
            continue
        image = root / IMAGES / q["file_name"]
        problem = image_problem(image)
        if problem:
            report.add(path, k, f"{problem}: {image}")
            out.defaults[k] = ""
            continue
        lang = detect_lang(q["question"]) or ""
        out.append(VQASample(k, str(image.resolve()), q["question"], [], lang, ""))
    if own:
        warn_skipped(report, before, "VQA")
    return out


def write_input(samples: list[VQASample], task_input_dir: str | os.PathLike[str]) -> list[VQASample]:
    """Write ``questions.json`` keyed by sample id and copy each distinct image once to
    ``images/<n>.<ext>`` (numbered by first use); returns the samples as written."""
    root = Path(task_input_dir)
    (root / IMAGES).mkdir(parents=True, exist_ok=True)
    img_root = (root / IMAGES).resolve()
    # Images already in the folder keep their names (rewriting a folder in place must not
    # overwrite an image another question still needs); the others are numbered.
    names: dict[Path, str] = {}
    for s in samples:
        src = Path(s.image_path).resolve()
        if src.parent == img_root:
            names[src] = src.name
    taken = set(names.values())
    counter = 0
    qs: dict[str, dict[str, str]] = {}
    out = []
    for s in samples:
        if s.id in qs:
            raise ValueError(f"duplicate VQA sample id {s.id!r}")
        src = Path(s.image_path).resolve()
        name = names.get(src)
        if name is None:
            while (name := f"{counter}{src.suffix.lower() or '.jpg'}") in taken:
                counter += 1
            names[src] = name
            taken.add(name)
            copy_image(src, root / IMAGES / name)
        qs[s.id] = {"file_name": name, "question": s.question}
        out.append(VQASample(s.id, str((root / IMAGES / name).resolve()), s.question,
                             list(s.answers), s.lang, s.question_type))
    write_json_atomic(root / QUESTIONS, qs)
    return out


def _question_id(s: VQASample, index: int) -> int:
    return int(s.id) if ascii_digits(str(s.id)) else index


def truth_json(samples: list[VQASample]) -> dict:
    """``true_VQA.json``: ``{id: {"answer", "question_id", "lang"}}``; ``answer`` is the string
    when a sample has one answer, else the list (VQA v2's ten)."""
    out = {}
    for i, s in enumerate(samples):
        answer: str | list[str] = s.answers[0] if len(s.answers) == 1 else list(s.answers)
        out[s.id] = {"answer": answer, "question_id": _question_id(s, i), "lang": s.lang}
    return out


def prediction_json(samples: list[VQASample], outputs: list[str]) -> dict:
    """``prediction_VQA.json``: ``{id: "answer"}``; questions that could not be read get
    ``""``."""
    if len(outputs) != len(samples):
        raise ValueError(f"{len(outputs)} outputs for {len(samples)} VQA samples")
    pred = {s.id: str(o) for s, o in zip(samples, outputs, strict=True)}
    return merge_defaults(pred, samples, natural_key)
