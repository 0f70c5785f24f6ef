"""``fusionbrain data build``: assemble the embedded bilingual default dataset.

Layout of ``DIR`` (the contract in docs/ARCHITECTURE.md)::

    train/<TASK>/samples.jsonl + images/     valid/<TASK>/...      (training format)
    test/input/<TASK>/...                    test/true/true_<TASK>.json   (challenge format)
    skipped.tsv                              (only when some item was skipped)
    manifest.json                            (written last: its presence means "complete")

Each (task, split) is one job: ``task_module(task, "data").build_default(split, size, seed,
out_dir)``; jobs run in worker processes. The builder never names a task. Everything is made
in ``DIR/.building`` and moved into place at the end, so a killed build leaves no manifest
and is cleaned up by the next run; an old dataset survives until the new one is complete.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import shutil
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TextIO

from fusionbrain.data.report import Skip, SkipReport
from fusionbrain.data.sizes import SPLITS, check_size
from fusionbrain.errors import UserError
from fusionbrain.scoring import true_file_name
from fusionbrain.utils.io import ensure_folder, read_json, write_json_atomic

MANIFEST = "manifest.json"
SKIPPED = "skipped.tsv"
STAGING = ".building"
TEST_SOURCES = "test-sources"  # inside STAGING: the test split before it becomes input/ + true/
FORMAT = "fusionbrain-dataset/1"
OWN_ENTRIES = frozenset({*SPLITS, MANIFEST, SKIPPED, STAGING})


def task_names() -> list[str]:
    """The tasks with an embedded default dataset (``data.build_default``); a task added
    with real data only (``data import``) has none and is left out of ``data build``."""
    from fusionbrain.tasks import TASKS, task_module

    return [t for t in TASKS if hasattr(task_module(t, "data"), "build_default")]


def expected_paths(tasks: list[str]) -> list[str]:
    """Paths (relative to DIR) that a complete dataset has."""
    out = []
    for t in tasks:
        out += [f"train/{t}/samples.jsonl", f"valid/{t}/samples.jsonl", f"test/input/{t}",
                f"test/true/{true_file_name(t)}"]
    return out


def build_job(task: str, split: str, size: str, seed: int, staging: str) -> dict[str, Any]:
    """Make one task's split inside ``staging``; returns counts and skipped items."""
    from fusionbrain.tasks import task_module

    t0 = time.perf_counter()
    root = Path(staging)
    data = task_module(task, "data")
    report = SkipReport()
    kwargs = {"report": report} if "report" in inspect.signature(data.build_default).parameters \
        else {}
    if split != "test":
        folder = root / split / task
        samples = data.build_default(split, size, seed, folder, **kwargs)
        data.write_split(samples, folder)
    else:
        src = root / TEST_SOURCES / task
        samples = data.build_default(split, size, seed, src, **kwargs)
        formats = task_module(task, "formats")
        # Challenge keys are "0", "1", ... (images "0.png" / "0.jpg"): renumber before writing.
        samples = [dataclasses.replace(s, id=str(i)) for i, s in enumerate(samples)]
        written = formats.write_input(samples, root / "test" / "input" / task)
        write_json_atomic(root / "test" / "true" / true_file_name(task),
                          formats.truth_json(written if written is not None else samples))
        shutil.rmtree(src, ignore_errors=True)
    langs = Counter(str(getattr(s, "lang", "") or "-") for s in samples)
    return {"task": task, "split": split, "total": len(samples), "langs": dict(langs),
            "skipped": [dataclasses.asdict(e) for e in report.entries],
            "seconds": time.perf_counter() - t0}


def _check_existing(out: Path, size: str, seed: int, tasks: list[str], force: bool,
                    log: TextIO) -> dict | None:
    """The manifest of a complete matching dataset in ``out`` (nothing to do), else None after
    making sure ``out`` may be (re)built."""
    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a folder", path=out)
    manifest_path = out / MANIFEST
    if manifest_path.exists():
        try:
            m = read_json(manifest_path, expect=dict)
        except UserError:
            if not force:
                raise UserError("unreadable manifest; use --force to rebuild",
                                path=manifest_path) from None
            return None
        same = (m.get("size"), m.get("seed"), m.get("tasks")) == (size, seed, tasks)
        missing = [p for p in expected_paths(tasks) if not (out / p).exists()]
        if same and not missing:
            if force:
                return None
            return m
        if not force:
            why = (f"the dataset there was built with size={m.get('size')} seed={m.get('seed')} "
                   f"tasks={m.get('tasks')}" if not same else f"{missing[0]} is missing")
            raise UserError(f"{why}; use --force to rebuild it", path=out)
        return None
    foreign = sorted(p.name for p in out.iterdir() if p.name not in OWN_ENTRIES) \
        if out.is_dir() else []
    if foreign and not force:
        raise UserError(f"folder is not empty and holds no dataset (found {foreign[0]!r}); "
                        "choose an empty folder or use --force", path=out)
    leftovers = [p for p in sorted(OWN_ENTRIES) if (out / p).exists()]
    if leftovers:
        print(f"removing an incomplete build in {out} ({', '.join(leftovers)})", file=log)
    return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def counts_table(counts: dict[str, dict[str, dict[str, int]]]) -> str:
    """The per task / split / language table printed after a build."""
    langs = sorted({lg for t in counts.values() for c in t.values() for lg in c
                    if lg not in ("total", "-")}, key=lambda x: (x not in ("en", "ru"), x))
    header = ["task", "split", *langs, "total"]
    rows = [header]
    for task, splits in counts.items():
        for split, c in splits.items():
            rows.append([task, split, *(str(c[lg]) if lg in c else "-" for lg in langs),
                         str(c["total"])])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def build(out: str | os.PathLike[str], size: str = "small", seed: int = 0, force: bool = False,
          workers: int | None = None, log: TextIO | None = None) -> dict:
    """Build the default dataset into ``out``; returns the manifest.

    A complete dataset with the same size, seed and tasks is left as it is (no-op); any
    other existing dataset needs ``force``.
    """
    log = log or sys.stdout
    check_size(size)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"the seed must be a whole number >= 0, got {seed!r}")
    out = Path(out)
    tasks = task_names()
    existing = _check_existing(out, size, seed, tasks, force, log)
    if existing is not None:
        print(f"{out} is already built (size={size}, seed={seed}); nothing to do "
              "(--force rebuilds it)", file=log)
        print(counts_table(existing["counts"]), file=log)
        return existing
    staging = out / STAGING
    ensure_folder(out)  # names --out itself when a file is in the way
    _remove(staging)
    ensure_folder(staging)
    t0 = time.perf_counter()
    jobs = [(t, s) for s in SPLITS for t in tasks]  # train first: the longest jobs start first
    results: dict[tuple[str, str], dict] = {}
    n_workers = max(1, min(workers or min(4, os.cpu_count() or 1), len(jobs)))
    if n_workers == 1:
        for t, s in jobs:
            results[t, s] = r = build_job(t, s, size, seed, str(staging))
            _progress(r, log)
    else:
        # spawn: no inherited locks or threads; each worker imports only what its jobs need.
        with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn")) as pool:
            futs = {pool.submit(build_job, t, s, size, seed, str(staging)): (t, s)
                    for t, s in jobs}
            try:
                for f in as_completed(futs):
                    results[futs[f]] = r = f.result()
                    _progress(r, log)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # one failure stops the rest
                raise
    _remove(staging / TEST_SOURCES)

    counts: dict[str, dict[str, dict[str, int]]] = {}
    report = SkipReport()
    for t in tasks:
        counts[t] = {}
        for s in SPLITS:
            r = results[t, s]
            counts[t][s] = {**dict(sorted(r["langs"].items())), "total": r["total"]}
            report.entries += [Skip(**e) for e in r["skipped"]]

    # Swap in the new dataset: the manifest goes first and comes back last.
    _remove(out / MANIFEST)
    for name in (*SPLITS, SKIPPED):
        _remove(out / name)
    for name in SPLITS:
        os.replace(staging / name, out / name)
    _remove(staging)
    if report.entries:
        report.write(out / SKIPPED)
    from fusionbrain import __version__

    manifest = {"format": FORMAT, "fusionbrain": __version__, "size": size, "seed": seed,
                "tasks": tasks, "counts": counts, "skipped": len(report.entries)}
    write_json_atomic(out / MANIFEST, manifest, indent=2)
    print(counts_table(counts), file=log)
    report.print(file=log, full_list=out / SKIPPED)
    print(f"built {out} (size={size}, seed={seed}) in {time.perf_counter() - t0:.1f} s", file=log)
    return manifest


def _progress(r: dict, log: TextIO) -> None:
    print(f"  {r['task']:<5} {r['split']:<5} {r['total']:>6} samples  {r['seconds']:6.1f} s",
          file=log, flush=True)
