"""The pilot's storage: SQLite (WAL) for items, versions, reviewers, jobs, model versions;
images content-addressed in a folder beside the database.

Durability: every write is one ``BEGIN IMMEDIATE`` transaction committed with
``synchronous=FULL`` before the HTTP answer goes out, and an image file is written (fsync,
atomic rename) before the row that names it; so a ``kill -9`` at any moment loses no
confirmed correction and leaves no row without its image.

History: ``items`` holds each item's current head (for fast listing), ``versions`` is
append-only: a model reading, a reviewer's confirmation or correction and an undo each add
a version with who (reviewer) or which model version made it, and when. A save names the
version it was based on; when another save came first it is refused (:class:`Conflict`),
so a later save never silently erases an earlier one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fusionbrain.errors import UserError
from fusionbrain.utils.io import atomic_open, ensure_folder

STATUSES = ("new", "confirmed", "corrected")
REVIEWED = ("confirmed", "corrected")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reviewers (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS model_versions (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    parent INTEGER REFERENCES model_versions(id),
    created REAL NOT NULL,
    report TEXT,
    note TEXT
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    image_sha TEXT NOT NULL,
    name TEXT NOT NULL,
    batch TEXT NOT NULL,
    source TEXT,
    created REAL NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    text TEXT NOT NULL,
    confidence REAL
);
CREATE INDEX IF NOT EXISTS items_confidence ON items(status, confidence);
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(id),
    n INTEGER NOT NULL,
    text TEXT NOT NULL,
    status TEXT NOT NULL,
    reviewer TEXT REFERENCES reviewers(name),
    model_version INTEGER REFERENCES model_versions(id),
    created REAL NOT NULL,
    confidence REAL,
    char_conf TEXT,
    note TEXT,
    UNIQUE (item_id, n)
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    params TEXT,
    result TEXT,
    error TEXT
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class Conflict(Exception):
    """A save based on a version that is no longer the item's current one."""

    def __init__(self, item: dict[str, Any]) -> None:
        who = item.get("last_reviewer") or "the model"
        super().__init__(f"item {item['id']} changed since you loaded it (now version "
                         f"{item['version']}, {item['status']}, by {who}): reload it")
        self.item = item


class NotFound(Exception):
    pass


def _now() -> float:
    return time.time()


class Store:
    """One SQLite database (WAL) + its content-addressed image folder ``<db>.images/``."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.path = Path(db_path)
        if self.path.is_dir():
            raise UserError("is a folder, expected a SQLite file", path=self.path)
        ensure_folder(self.path.parent)
        self.images = self.path.with_name(self.path.name + ".images")
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                         timeout=30.0)
            self._conn.row_factory = sqlite3.Row
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise UserError(f"not a usable SQLite database ({e})", path=self.path) from None
        if str(mode).lower() != "wal":
            raise UserError(f"cannot switch the database to WAL mode (got {mode})", path=self.path)
        # one connection, serialised: the pilot's write rate is a few per second
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- images ------------------------------------------------------------------------
    def image_path(self, sha: str) -> Path:
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise NotFound(f"no image {sha!r}")
        return self.images / sha[:2] / f"{sha}.png"

    def put_image(self, png: bytes) -> str:
        """Store PNG bytes under their SHA-256 (once); returns the hash."""
        sha = hashlib.sha256(png).hexdigest()
        path = self.image_path(sha)
        if not path.exists():
            with atomic_open(path, "wb") as f:
                f.write(png)
        return sha

    # -- reviewers, settings -----------------------------------------------------------
    def _reviewer(self, conn: sqlite3.Connection, name: str) -> str:
        name = name.strip()
        if not name or len(name) > 80:
            raise ValueError("reviewer name must be 1-80 characters")
        conn.execute("INSERT OR IGNORE INTO reviewers(name, created) VALUES (?, ?)", (name, _now()))
        return name

    def reviewers(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._query("SELECT * FROM reviewers ORDER BY name")]

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return rows[0]["value"] if rows else default

    def set_setting(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                      "SET value = excluded.value", (key, value))

    # -- model versions ------------------------------------------------------------------
    def add_model_version(self, path: str | os.PathLike[str], parent: int | None = None,
                          report: dict | None = None, note: str = "") -> int:
        """Register a model folder (once per path); returns its id."""
        p = str(Path(path).resolve())
        with self._tx() as c:
            row = c.execute("SELECT id FROM model_versions WHERE path = ?", (p,)).fetchone()
            if row:
                if report is not None:
                    c.execute("UPDATE model_versions SET report = ? WHERE id = ?",
                              (json.dumps(report), row["id"]))
                return int(row["id"])
            cur = c.execute("INSERT INTO model_versions(path, parent, created, report, note) "
                            "VALUES (?, ?, ?, ?, ?)",
                            (p, parent, _now(), json.dumps(report) if report else None, note))
            return int(cur.lastrowid)

    def model_versions(self) -> list[dict[str, Any]]:
        active = self.active_model_version()
        out = []
        for r in self._query("SELECT * FROM model_versions ORDER BY id"):
            d = dict(r)
            d["report"] = json.loads(d["report"]) if d["report"] else None
            d["active"] = d["id"] == active
            out.append(d)
        return out

    def model_version(self, version_id: int) -> dict[str, Any]:
        for v in self.model_versions():
            if v["id"] == version_id:
                return v
        raise NotFound(f"no model version {version_id}")

    def active_model_version(self) -> int | None:
        v = self.get_setting("active_model")
        return int(v) if v else None

    def set_active_model_version(self, version_id: int) -> None:
        self.model_version(version_id)  # NotFound if absent
        self.set_setting("active_model", str(version_id))

    # -- items and versions --------------------------------------------------------------
    def add_item(self, image_sha: str, name: str, batch: str, text: str, confidence: float | None,
                 char_conf: list[float] | None, model_version: int | None,
                 source: str | None = None) -> int:
        """A new item with the model's reading as version 1 (status ``new``)."""
        now = _now()
        with self._tx() as c:
            cur = c.execute("INSERT INTO items(image_sha, name, batch, source, created, status, "
                            "version, text, confidence) VALUES (?, ?, ?, ?, ?, 'new', 1, ?, ?)",
                            (image_sha, name, batch, source, now, text, confidence))
            item_id = int(cur.lastrowid)
            c.execute("INSERT INTO versions(item_id, n, text, status, model_version, created, "
                      "confidence, char_conf) VALUES (?, 1, ?, 'new', ?, ?, ?, ?)",
                      (item_id, text, model_version, now, confidence,
                       json.dumps(char_conf) if char_conf is not None else None))
        return item_id

    def _item_row(self, conn: sqlite3.Connection, item_id: int) -> dict[str, Any]:
        row = conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise NotFound(f"no item {item_id}")
        d = dict(row)
        last = conn.execute("SELECT reviewer FROM versions WHERE item_id = ? AND n = ?",
                            (item_id, d["version"])).fetchone()
        d["last_reviewer"] = last["reviewer"] if last else None
        return d

    def item(self, item_id: int) -> dict[str, Any]:
        """The item's head, its model reading (with per-character confidences) and history."""
        with self._lock:
            d = self._item_row(self._conn, item_id)
            vs = [dict(v) for v in self._conn.execute(
                "SELECT n, text, status, reviewer, model_version, created, confidence, char_conf, "
                "note FROM versions WHERE item_id = ? ORDER BY n", (item_id,))]
        for v in vs:
            v["char_conf"] = json.loads(v["char_conf"]) if v["char_conf"] else None
        model_reads = [v for v in vs if v["model_version"] is not None]
        d["model_text"] = model_reads[-1]["text"] if model_reads else None
        d["char_conf"] = model_reads[-1]["char_conf"] if model_reads else None
        d["versions"] = vs
        return d

    def list_items(self, order: str = "created", status: str | None = None,
                   batch: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """Item heads; ``order="confidence"``: lowest-confidence first (the review queue)."""
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if batch:
            where.append("batch = ?")
            args.append(batch)
        sql = "SELECT * FROM items" + (" WHERE " + " AND ".join(where) if where else "")
        if order == "confidence":
            sql += " ORDER BY CASE status WHEN 'new' THEN 0 ELSE 1 END, confidence IS NULL, confidence, id"
        else:
            sql += " ORDER BY id"
        sql += " LIMIT ?"
        args.append(int(limit))
        return [dict(r) for r in self._query(sql, tuple(args))]

    def review(self, item_id: int, text: str, reviewer: str, base_version: int) -> dict[str, Any]:
        """Confirm (text = the model's reading) or correct an item; history kept.

        Raises :class:`Conflict` when ``base_version`` is not the current version.
        """
        if not isinstance(text, str) or len(text) > 1000:
            raise ValueError("text must be a string of at most 1000 characters")
        with self._tx() as c:
            head = self._item_row(c, item_id)
            if head["version"] != base_version:
                raise Conflict(head)
            reviewer = self._reviewer(c, reviewer)
            model_text = c.execute(
                "SELECT text FROM versions WHERE item_id = ? AND model_version IS NOT NULL "
                "ORDER BY n DESC LIMIT 1", (item_id,)).fetchone()
            status = "confirmed" if model_text and model_text["text"] == text else "corrected"
            n = head["version"] + 1
            c.execute("INSERT INTO versions(item_id, n, text, status, reviewer, created) "
                      "VALUES (?, ?, ?, ?, ?, ?)", (item_id, n, text, status, reviewer, _now()))
            c.execute("UPDATE items SET status = ?, version = ?, text = ? WHERE id = ?",
                      (status, n, text, item_id))
        return self.item(item_id)

    def undo(self, item_id: int, reviewer: str, base_version: int) -> dict[str, Any]:
        """Undo the last save: a new version that restores the one before it (history kept)."""
        with self._tx() as c:
            head = self._item_row(c, item_id)
            if head["version"] != base_version:
                raise Conflict(head)
            if head["version"] < 2:
                raise ValueError(f"item {item_id} has nothing to undo")
            prev = c.execute("SELECT text, status FROM versions WHERE item_id = ? AND n = ?",
                             (item_id, head["version"] - 1)).fetchone()
            reviewer = self._reviewer(c, reviewer)
            n = head["version"] + 1
            c.execute("INSERT INTO versions(item_id, n, text, status, reviewer, created, note) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (item_id, n, prev["text"], prev["status"], reviewer, _now(),
                       f"undo of version {head['version']}"))
            c.execute("UPDATE items SET status = ?, version = ?, text = ? WHERE id = ?",
                      (prev["status"], n, prev["text"], item_id))
        return self.item(item_id)

    def reviewed(self) -> list[dict[str, Any]]:
        """Confirmed and corrected items (id, image path, text), oldest first."""
        rows = self._query("SELECT id, image_sha, name, text, status FROM items "
                           "WHERE status IN ('confirmed', 'corrected') ORDER BY id")
        out = []
        for r in rows:
            d = dict(r)
            d["image_path"] = str(self.image_path(d["image_sha"]))
            out.append(d)
        return out

    def counts(self) -> dict[str, int]:
        rows = self._query("SELECT status, COUNT(*) AS n FROM items GROUP BY status")
        out = dict.fromkeys(STATUSES, 0)
        out.update({r["status"]: int(r["n"]) for r in rows})
        return out

    # -- export --------------------------------------------------------------------------
    def export_csv(self) -> str:
        """Reviewed pairs as CSV: id, name, image_sha, status, text, model_text, reviewer, time."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["id", "name", "image_sha", "status", "text", "model_text", "reviewer",
                    "reviewed_at"])
        for r in self.reviewed():
            d = self.item(r["id"])
            last = d["versions"][-1]
            w.writerow([d["id"], d["name"], d["image_sha"], d["status"], d["text"],
                        d["model_text"], last["reviewer"] or "",
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last["created"]))])
        return buf.getvalue()

    def export_challenge(self, out: str | os.PathLike[str]) -> int:
        """Reviewed pairs as a challenge folder ``out/input/HTR/images/`` + ``out/true_HTR.json``."""
        from fusionbrain.data.lang import detect_lang
        from fusionbrain.tasks.htr.data import HTRSample
        from fusionbrain.tasks.htr.formats import truth_json, write_input
        from fusionbrain.utils.io import write_json_atomic

        out = Path(out)
        rows = self.reviewed()
        samples = [HTRSample(str(i), r["image_path"], r["text"], detect_lang(r["text"]) or "en")
                   for i, r in enumerate(rows)]
        written = write_input(samples, out / "input" / "HTR")
        write_json_atomic(out / "true_HTR.json", truth_json(written), indent=1)
        return len(written)

    # -- jobs ----------------------------------------------------------------------------
    def add_job(self, kind: str, params: dict) -> int:
        with self._tx() as c:
            cur = c.execute("INSERT INTO jobs(kind, status, created, params) VALUES (?, 'queued', "
                            "?, ?)", (kind, _now(), json.dumps(params)))
            return int(cur.lastrowid)

    def update_job(self, job_id: int, status: str, result: dict | None = None,
                   error: str | None = None) -> None:
        now = _now()
        with self._tx() as c:
            if status == "running":
                c.execute("UPDATE jobs SET status = ?, started = ? WHERE id = ?",
                          (status, now, job_id))
            else:
                c.execute("UPDATE jobs SET status = ?, finished = ?, result = ?, error = ? "
                          "WHERE id = ?", (status, now, json.dumps(result) if result else None,
                                           error, job_id))

    def jobs(self) -> list[dict[str, Any]]:
        out = []
        for r in self._query("SELECT * FROM jobs ORDER BY id DESC"):
            d = dict(r)
            for k in ("params", "result"):
                d[k] = json.loads(d[k]) if d[k] else None
            out.append(d)
        return out

    def fail_interrupted_jobs(self) -> None:
        """Jobs left queued/running by a killed process: marked failed at start-up."""
        with self._tx() as c:
            c.execute("UPDATE jobs SET status = 'failed', error = 'interrupted (server stopped)', "
                      "finished = ? WHERE status IN ('queued', 'running')", (_now(),))
