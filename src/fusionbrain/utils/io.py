"""Safe file I/O: atomic writes and JSON reading that fails with one clear line."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from fusionbrain.errors import UserError

# A challenge JSON file larger than this is refused rather than read into memory.
MAX_JSON_BYTES = 1 << 30


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once (setting it is process-wide): atomic writes get the permissions a plain open()
# would give, not mkstemp's private 0600.
_FILE_MODE = 0o666 & ~_read_umask()
# errors of a write that ran out of room
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    A folder that cannot be made or written, and a full disk, are a :class:`UserError`
    naming the path; ``path`` is left as it was.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError("is a folder, cannot write a file there", path=path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UserError(_folder_problem(path.parent, e), path=path) from None
    try:
        try:
            os.fchmod(fd, _FILE_MODE)
        except OSError:
            pass  # e.g. a file system without permissions: keep mkstemp's mode
        with os.fdopen(fd, mode, **kwargs) as f:
            try:
                yield f
            except OSError as e:
                if e.errno in _FULL:
                    raise UserError(f"cannot write: {e.strerror}", path=path) from None
                raise
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError as e:
                raise UserError(f"cannot write: {e.strerror or e}", path=path) from None
        try:
            os.replace(tmp, path)
        except OSError as e:
            raise UserError(f"cannot write: {e.strerror or e}", path=path) from None
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _folder_problem(folder: Path, e: OSError) -> str:
    """Why a file cannot be created in ``folder``: a part of it that is a file, or the OS's
    reason."""
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                return f"cannot write: {part} is a file, not a folder"
            break
    return f"cannot write: {e.strerror or e}"


def ensure_folder(folder: str | os.PathLike[str]) -> Path:
    """``mkdir -p folder``, or a :class:`UserError` naming it (a file in the way, no room,
    no permission)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(_folder_problem(folder, e), path=folder) from None
    return folder


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, indent: int | None = None) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)


def read_json(path: str | os.PathLike[str], *, max_bytes: int = MAX_JSON_BYTES,
              expect: type | tuple[type, ...] | None = None, too_large_note: str = "",
              before_read: Callable[[Path], None] | None = None) -> Any:
    """Read a JSON file, raising :class:`UserError` naming the file on any problem.

    ``too_large_note`` is appended to the size-limit message; ``before_read(path)`` may
    reject the file cheaply (e.g. from its first bytes) before it is read whole.
    """
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", path=path)
    if path.is_dir():
        raise UserError("is a directory, expected a JSON file", path=path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UserError(f"file too large{too_large_note} ({size} bytes > limit {max_bytes})",
                            path=path)
        if before_read is not None:
            before_read(path)
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
