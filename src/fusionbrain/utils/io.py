"""Safe file I/O: atomic writes and JSON reading that fails with one clear line."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from fusionbrain.errors import UserError

# A challenge JSON file larger than this is refused rather than read into memory.
MAX_JSON_BYTES = 1 << 30


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, indent: int | None = None) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)


def read_json(path: str | os.PathLike[str], *, max_bytes: int = MAX_JSON_BYTES,
              expect: type | tuple[type, ...] | None = None) -> Any:
    """Read a JSON file, raising :class:`UserError` naming the file on any problem."""
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", path=path)
    if path.is_dir():
        raise UserError("is a directory, expected a JSON file", path=path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UserError(f"file too large ({size} bytes > limit {max_bytes})", path=path)
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read: {e.strerror}", path=path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"not UTF-8 text (bad byte at offset {e.start})", path=path) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}",
                        path=path) from None
    except RecursionError:
        raise UserError("malformed JSON: nested too deeply", path=path) from None
    if expect is not None and not isinstance(obj, expect):
        names = expect.__name__ if isinstance(expect, type) else " or ".join(t.__name__ for t in expect)
        raise UserError(f"expected a JSON {_json_type(names)} at top level, got {_json_type(type(obj).__name__)}",
                        path=path)
    return obj


def _json_type(pyname: str) -> str:
    return {"dict": "object", "list": "array", "str": "string", "int": "number",
            "float": "number", "NoneType": "null", "bool": "boolean"}.get(pyname, pyname)
