"""The challenge database (SQLite) and the content-addressed zip store.

One row per submission. Status lifecycle: ``submitted`` (queued) -> ``running`` ->
``scored`` | ``failed``; ``reason`` says why a run failed (or which task files were
rejected in a scored run). Scores are kept as JSON per part: ``{"public"|"private"|"all":
{"tasks": {TASK: {"score", "error"?}}, "S"}}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STATUSES = ("submitted", "running", "scored", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    team TEXT NOT NULL,
    method TEXT NOT NULL DEFAULT '',
    sha256 TEXT NOT NULL,
    zip_bytes INTEGER NOT NULL DEFAULT 0,
    submitted_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('submitted', 'running', 'scored', 'failed')),
    reason TEXT NOT NULL DEFAULT '',
    started_at TEXT,
    finished_at TEXT,
    wall_s REAL,
    exit_code INTEGER,
    sandbox TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    scores TEXT NOT NULL DEFAULT '{}',
    stdout_tail TEXT NOT NULL DEFAULT '',
    stderr_tail TEXT NOT NULL DEFAULT '',
    is_baseline INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS submissions_team ON submissions (team, submitted_at);
"""

_JSON_COLUMNS = ("metadata", "scores")


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    """The SQLite database of one challenge folder."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        # isolation_level=None: autocommit; `transaction()` groups writes explicitly
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @staticmethod
    def _row(row: sqlite3.Row) -> dict[str, Any]:
        d = dict(row)
        for k in _JSON_COLUMNS:
            d[k] = json.loads(d[k] or "{}")
        d["is_baseline"] = bool(d["is_baseline"])
        return d

    def add(self, *, team: str, method: str, sha256: str, zip_bytes: int,
            metadata: dict[str, Any], status: str = "submitted", is_baseline: bool = False,
            submitted_at: str | None = None, max_per_day: int | None = None) -> int:
        """Insert a submission; with ``max_per_day``, refuse (return -1) when the team already
        has that many submissions on the same UTC day (checked in the same transaction)."""
        when = submitted_at or now_utc()
        with self.transaction() as db:
            if max_per_day is not None and self.count_on_day(team, when[:10]) >= max_per_day:
                return -1
            cur = db.execute(
                "INSERT INTO submissions (team, method, sha256, zip_bytes, submitted_at, status, "
                "metadata, is_baseline) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (team, method, sha256, zip_bytes, when, status,
                 json.dumps(metadata, ensure_ascii=False), int(is_baseline)))
            return int(cur.lastrowid)

    def count_on_day(self, team: str, day: str) -> int:
        """Submissions of ``team`` whose UTC submission date is ``day`` (YYYY-MM-DD)."""
        row = self.db.execute("SELECT COUNT(*) FROM submissions WHERE team = ? AND "
                              "substr(submitted_at, 1, 10) = ? AND is_baseline = 0",
                              (team, day)).fetchone()
        return int(row[0])

    def find_sha(self, team: str, sha256: str) -> int | None:
        row = self.db.execute("SELECT id FROM submissions WHERE team = ? AND sha256 = ? "
                              "ORDER BY id LIMIT 1", (team, sha256)).fetchone()
        return None if row is None else int(row[0])

    def update(self, sub_id: int, **fields: Any) -> None:
        for k in _JSON_COLUMNS:
            if k in fields:
                fields[k] = json.dumps(fields[k], ensure_ascii=False)
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"unknown status {fields['status']!r}")
        cols = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE submissions SET {cols} WHERE id = ?", (*fields.values(), sub_id))

    def get(self, sub_id: int) -> dict[str, Any]:
        row = self.db.execute("SELECT * FROM submissions WHERE id = ?", (sub_id,)).fetchone()
        if row is None:
            raise KeyError(sub_id)
        return self._row(row)

    def all(self) -> list[dict[str, Any]]:
        return [self._row(r) for r in self.db.execute("SELECT * FROM submissions ORDER BY id")]

    def queued(self) -> list[int]:
        return [int(r[0]) for r in self.db.execute(
            "SELECT id FROM submissions WHERE status = 'submitted' ORDER BY id")]

    def requeue_stale(self) -> list[int]:
        """Put runs left ``running`` by a killed ``challenge run`` back in the queue."""
        ids = [int(r[0]) for r in self.db.execute(
            "SELECT id FROM submissions WHERE status = 'running' ORDER BY id")]
        for i in ids:
            self.update(i, status="submitted", started_at=None)
        return ids


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def store_zip(zips: Path, src: Path, sha256: str) -> Path:
    """Copy ``src`` to ``zips/<sha256>.zip`` (atomically; kept as it is when already there)."""
    zips.mkdir(parents=True, exist_ok=True)
    dest = zips / f"{sha256}.zip"
    if dest.exists():
        return dest
    fd, tmp = tempfile.mkstemp(prefix=".zip.", dir=zips)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o444)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
