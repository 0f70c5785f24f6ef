"""C2C data: the sample type (readers of real datasets are added below it)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from fusionbrain.data.jsonl import read_jsonl, read_samples, subsample, write_samples
from fusionbrain.data.report import SkipReport, finish, read_labelled_challenge, start_report
from fusionbrain.data.sizes import pick
from fusionbrain.errors import UserError
from fusionbrain.utils.io import read_bytes


@dataclass
class C2CSample:
    id: str
    java: str  # Java source, tokens separated by spaces (TransCoder style) or raw
    python: str  # TransCoder-style Python: tokens + NEW_LINE / INDENT / DEDENT; "" when unknown


# ---------------------------------------------------------------------------------------------
# Training format, readers of real datasets, and the embedded default (AVATAR).

AVATAR_DIR = Path(__file__).resolve().parents[2] / "assets" / "avatar-g4g"

# AVATAR g4g has 2388 / 341 / 682 pairs; None = all of them.
SIZES: dict[str, dict[str, int | None]] = {
    "tiny": {"train": 24, "valid": 8, "test": 8},
    "small": {"train": 400, "valid": 50, "test": 64},
    "medium": {"train": 1200, "valid": 150, "test": 200},
    "large": {"train": None, "valid": None, "test": None},
}

# TransCoder test files prefix each line with its function id: "ID | tokens".
_ID_PREFIX = re.compile(r"^(\S+) \| (.*)$")


def _problem(s: C2CSample, need_python: bool = True) -> str | None:
    if not isinstance(s.id, str) or not s.id:
        return "bad record: id is not a non-empty string"
    if not isinstance(s.java, str) or not s.java.strip():
        return "empty java source"
    if not isinstance(s.python, str):
        return "bad record: python is not a string"
    if need_python and not s.python.strip():
        return "empty python translation"
    return None


def read_split(folder: str | os.PathLike[str], report: SkipReport | None = None,
               verify_images: bool = False) -> list[C2CSample]:
    """Read ``folder/samples.jsonl`` (training format). ``verify_images``: the same
    signature as the image tasks' readers; code pairs have no image to check."""
    return read_samples(C2CSample, folder, _problem, report, verify_images)


def write_split(samples: list[C2CSample], folder: str | os.PathLike[str]) -> None:
    """Write ``folder/samples.jsonl`` (training format)."""
    write_samples(samples, folder)


def _first_str(value: object) -> str | None:
    # AVATAR keeps every solution as a list; TransCoder-style files use a plain string.
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return None


def read_avatar(path: str | os.PathLike[str], report: SkipReport | None = None) -> list[C2CSample]:
    """Read AVATAR / TransCoder JSONL: ``{"id", "java": [str] | str, "python": [str] | str}``.

    With several solutions per side, the first Java and the first Python form the pair.
    """
    report, own, before = start_report(report)
    out: list[C2CSample] = []
    seen: set[str] = set()
    for n, rec in read_jsonl(path, report):
        if not isinstance(rec, dict):
            report.add(path, f"line {n}", "bad record: not a JSON object")
            continue
        sid = str(rec.get("id", f"line{n}"))
        java, python = _first_str(rec.get("java")), _first_str(rec.get("python"))
        if java is None or python is None:
            report.add(path, sid, "bad record: java/python missing or not text")
            continue
        if sid in seen:
            report.add(path, sid, "duplicate id")
            continue
        s = C2CSample(sid, java.strip(), python.strip())
        reason = _problem(s)
        if reason:
            report.add(path, sid, reason)
            continue
        seen.add(sid)
        out.append(s)
    report.check_source(path, len(out), before)
    finish(report, own)
    return out


def split_lines(text: str) -> list[str]:
    """Lines ending in ``\\n`` or ``\\r\\n`` only — unlike ``str.splitlines``, which also
    breaks at U+2028, U+0085, form feed, ... that a line of code may hold, and would shift
    every following pair of a parallel corpus."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start a new one
    return [x[:-1] if x.endswith("\r") else x for x in lines]


def _read_lines(path: Path) -> list[str]:
    raw = read_bytes(path)
    try:
        return split_lines(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise UserError(f"not UTF-8 text (bad byte at offset {e.start})", path=path) from None


def read_parallel(java_path: str | os.PathLike[str], python_path: str | os.PathLike[str],
                  report: SkipReport | None = None) -> list[C2CSample]:
    """Read parallel line files (line i of the ``.java`` file ↔ line i of the ``.python`` one).

    Lines may start with ``ID | `` (TransCoder test files); the ids of both sides must agree.
    Files of different lengths cannot be paired safely: a clear error.
    """
    jp, pp = Path(java_path), Path(python_path)
    jl, pl = _read_lines(jp), _read_lines(pp)
    if len(jl) != len(pl):
        raise UserError(f"{len(jl)} lines but {pp} has {len(pl)}: cannot pair them", path=jp)
    report, own, before = start_report(report)
    out: list[C2CSample] = []
    for n, (j, p) in enumerate(zip(jl, pl, strict=True), 1):
        jm, pm = _ID_PREFIX.match(j), _ID_PREFIX.match(p)
        sid = jm.group(1) if jm else str(n - 1)
        if jm:
            j = jm.group(2)
        if pm:
            p = pm.group(2)
            if jm and pm.group(1) != sid:
                report.add(jp, f"line {n}", f"id mismatch: {sid} vs {pm.group(1)}")
                continue
        s = C2CSample(sid, j.strip(), p.strip())
        reason = _problem(s)
        if reason:
            report.add(jp, f"line {n}", reason)
            continue
        out.append(s)
    report.check_source(jp, len(out), before)
    finish(report, own)
    return out


def read_challenge(input_dir: str | os.PathLike[str], true_json: str | os.PathLike[str] | None = None,
                   report: SkipReport | None = None) -> list[C2CSample]:
    """Read a challenge ``input/C2C`` folder, labelled from ``true_C2C.json`` when given."""
    from fusionbrain.tasks.c2c.formats import read_input

    def label(s: C2CSample, t: object) -> str | None:
        if not isinstance(t, str) or not t.strip():
            return "empty python translation"
        s.python = t
        return None

    return read_labelled_challenge(read_input, input_dir, true_json, report, label)


def build_default(split: str, size: str, seed: int, out_dir: str | os.PathLike[str],
                  report: SkipReport | None = None) -> list[C2CSample]:
    """The C2C part of the embedded default: AVATAR's own split, subsampled by size.

    Only the training subset depends on ``seed``; valid and test subsets are fixed, so scores
    of models trained with different seeds stay comparable. ``out_dir`` is not needed.
    """
    n = pick(SIZES, size, split)
    samples = read_avatar(AVATAR_DIR / f"{split}.jsonl", report=report)
    return subsample(samples, n, seed if split == "train" else 0)
