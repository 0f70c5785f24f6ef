"""JSONL files and the training format shared by all tasks.

A split folder holds ``samples.jsonl`` (one dataclass as JSON per line, image paths relative
to the folder) and ``images/``. :func:`write_samples` and :func:`read_samples` implement it
once; each task's ``data.py`` wraps them with its sample type and checks.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from fusionbrain.data.images import copy_image, image_problem
from fusionbrain.data.report import SkipReport, finish, start_report
from fusionbrain.errors import UserError
from fusionbrain.utils.io import (
    atomic_open,
    ensure_folder,
    json_type,
    parse_json,
    path_problem,
    read_bytes,
)

SAMPLES_FILE = "samples.jsonl"
IMAGES_DIR = "images"
IMAGE_FIELD = "image_path"

S = TypeVar("S")


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Any]) -> None:
    """Write one compact JSON value per line, atomically (UTF-8, non-ASCII kept)."""
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def read_jsonl(path: str | os.PathLike[str],
               report: SkipReport | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)``; a malformed line is skipped and reported, not fatal."""
    path = Path(path)
    problem = path_problem(path)
    if problem:
        raise UserError(problem, path=path)
    try:
        if path.is_file():  # streamed: a training set may be large
            f: IO[str] = open(path, encoding="utf-8-sig", errors="strict")
        else:  # a pipe or FIFO: read once, with read_bytes' timeout when nothing comes
            raw = read_bytes(path)
            try:
                f = io.StringIO(raw.decode("utf-8-sig"))
            except UnicodeDecodeError as e:
                raise UserError(f"not UTF-8 text (bad byte at offset {e.start})",
                                path=path) from None
    except OSError as e:
        raise UserError(f"cannot read: {e.strerror}", path=path) from None
    with f:
        try:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    value = parse_json(line, path=path, where=f"line {n}")
                except UserError as e:
                    if report is None:
                        raise
                    # the message minus "PATH: line N: " (the report names both)
                    report.add(path, f"line {n}", str(e).split(f"line {n}: ", 1)[-1])
                    continue
                yield n, value
        except UnicodeDecodeError as e:
            raise UserError(f"not UTF-8 text (bad byte at offset {e.start})", path=path) from None


def sample_from_dict(cls: type[S], rec: Any) -> S:
    """Build dataclass ``cls`` from a JSON object; ValueError says what is wrong."""
    if not isinstance(rec, dict):
        raise ValueError(f"bad record: expected a JSON object, got {json_type(rec)}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    required = {f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing = sorted(required - rec.keys())
    if missing:
        raise ValueError(f"bad record: missing field(s) {', '.join(missing)}")
    try:
        return cls(**{k: v for k, v in rec.items() if k in names})
    except TypeError as e:
        raise ValueError(f"bad record: {e}") from None


def write_samples(samples: Iterable[Any], folder: str | os.PathLike[str]) -> None:
    """Write ``folder/samples.jsonl``; images outside ``folder/images`` are copied in.

    Copies keep the source file name; a clash with a different source gets a ``-N`` suffix,
    so the result depends only on the sample order (deterministic builds).
    """
    folder = Path(folder)
    images = folder / IMAGES_DIR
    ensure_folder(folder)
    img_root = images.resolve()
    placed: dict[Path, str] = {}  # resolved source -> relative path inside folder
    taken: set[str] = set()
    if images.is_dir():
        taken = {p.name for p in images.iterdir()}
    records = []
    for s in samples:
        rec = dataclasses.asdict(s)
        if IMAGE_FIELD in rec:
            src = Path(rec[IMAGE_FIELD]).resolve()
            rel = placed.get(src)
            if rel is None:
                if src.parent == img_root:
                    rel = f"{IMAGES_DIR}/{src.name}"
                else:
                    name = src.name
                    k = 1
                    while name in taken:
                        name = f"{src.stem}-{k}{src.suffix}"
                        k += 1
                    copy_image(src, images / name)
                    taken.add(name)
                    rel = f"{IMAGES_DIR}/{name}"
                placed[src] = rel
            rec[IMAGE_FIELD] = rel
        records.append(rec)
    write_jsonl(folder / SAMPLES_FILE, records)


def read_samples(cls: type[S], folder: str | os.PathLike[str],
                 check: Callable[[S], str | None] | None = None,
                 report: SkipReport | None = None, verify_images: bool = False) -> list[S]:
    """Read a split folder written by :func:`write_samples` as ``cls`` samples.

    Bad records (malformed line, missing field, failed ``check``, missing image — or a
    corrupt one with ``verify_images``) are skipped and reported; all bad is a UserError.
    """
    folder = Path(folder)
    path = folder / SAMPLES_FILE
    report, own, before = start_report(report)
    out: list[S] = []
    for n, rec in read_jsonl(path, report):
        try:
            s = sample_from_dict(cls, rec)
        except ValueError as e:
            report.add(path, f"line {n}", str(e))
            continue
        if hasattr(s, IMAGE_FIELD):
            img = getattr(s, IMAGE_FIELD)
            if not isinstance(img, str) or not img:
                report.add(path, f"line {n}", "bad record: image_path is not a path")
                continue
            full = (folder / img).resolve()
            setattr(s, IMAGE_FIELD, str(full))
            problem = image_problem(full) if verify_images else (
                None if full.is_file() else "missing file")
            if problem:
                report.add(path, f"line {n}", f"{problem}: {img}")
                continue
        reason = check(s) if check else None
        if reason:
            report.add(path, f"line {n}", reason)
            continue
        out.append(s)
    report.check_source(path, len(out), before)
    finish(report, own)
    return out


def stable_rank(key: str, seed: int) -> int:
    """A platform-independent pseudo-random rank of ``key`` for deterministic subsampling."""
    import hashlib

    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest(), "big")


def subsample(samples: list[S], n: int | None, seed: int) -> list[S]:
    """A deterministic subset of ``n`` samples (all when None), kept in their original order.

    Ranks by a hash of each sample's id, so a smaller size is a subset of a larger one.
    """
    if n is None or n >= len(samples):
        return list(samples)
    order = sorted(range(len(samples)), key=lambda i: stable_rank(str(samples[i].id), seed))
    chosen = set(order[:n])
    return [s for i, s in enumerate(samples) if i in chosen]
