"""Safe file I/O: atomic writes and JSON reading that fails with one clear line."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
import sys
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
def atomic_open(path: str | os.PathLike[str], mode: str = "w", *, fsync: bool = True,
                **kwargs: Any) -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    A folder that cannot be made or written, and a full disk, are a :class:`UserError`
    naming the path; ``path`` is left as it was. ``fsync=False`` keeps the rename (never a
    half-written file) but skips the flush to disk, for many small files that a finished
    marker written later covers (generated images: ~4 ms a file saved).
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
                if fsync:
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


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, indent: int | None = None,
                      non_finite: str = "null") -> None:
    """Write standard JSON: NaN and infinity, which other readers (and ``score``) refuse,
    become ``null`` (``non_finite="error"``: a :class:`UserError` instead)."""
    try:
        text = json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False)
    except ValueError as e:
        if non_finite == "error":
            raise UserError(f"cannot write: {e}", path=path) from None
        text = json.dumps(_finite_or_null(obj), ensure_ascii=False, indent=indent,
                          allow_nan=False)
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_gzip_json(path: str | os.PathLike[str], obj: Any) -> None:
    """A model artefact as compact gzipped JSON (no timestamp: same data, same bytes),
    written atomically."""
    import gzip

    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with atomic_open(path, "wb") as f:
        f.write(gzip.compress(data, mtime=0))


def read_gzip_json(path: str | os.PathLike[str], *, what: str, fmt: str) -> dict[str, Any]:
    """A :func:`write_gzip_json` artefact: a JSON object whose ``"format"`` is ``fmt``;
    anything else is a one-line :class:`UserError` naming ``what`` was expected."""
    import gzip

    try:
        data = json.loads(gzip.decompress(Path(path).read_bytes()).decode("utf-8"))
    except (OSError, EOFError, ValueError) as e:
        raise UserError(f"not a gzipped {what} ({e})", path=path) from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise UserError(f"expected format {fmt!r}", path=path, key="format")
    return data


def _finite_or_null(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_null(v) for v in obj]
    return obj


# A pipe or FIFO that sends nothing for this long is given up on (a FIFO with no writer
# would otherwise hang the command). FUSIONBRAIN_PIPE_TIMEOUT_S overrides it.
PIPE_TIMEOUT_S = 30.0
# Bytes handed to a ``check_head`` callback before the rest is read.
HEAD_BYTES = 64 << 10
# Above this size a JSON file must not hold more than one array/object per
# _MIN_BYTES_PER_CONTAINER bytes: each costs ~60 bytes of memory once parsed, so a file of
# nothing but ``[[],[],...]`` would take ~30x its size (3 GB for 120 MB). Real files (boxes of
# four numbers, strings) stay far below this density.
_DENSITY_CHECK_BYTES = 1 << 20
_MIN_BYTES_PER_CONTAINER = 8
_STRING_RE = None


def path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be opened as a file to read (None: it can be tried)."""
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop"
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return "file not found"
        return f"cannot read: {e.strerror}"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory, expected a file"
    return None


def _pipe_timeout() -> float:
    raw = os.environ.get("FUSIONBRAIN_PIPE_TIMEOUT_S")
    try:
        value = float(raw) if raw else PIPE_TIMEOUT_S
    except ValueError:
        value = PIPE_TIMEOUT_S
    return value if math.isfinite(value) and value > 0 else PIPE_TIMEOUT_S


def read_bytes(path: str | os.PathLike[str], *, max_bytes: int = MAX_JSON_BYTES,
               too_large_note: str = "",
               check_head: Callable[[bytes, bool], None] | None = None) -> bytearray:
    """The bytes of a file, a pipe (``<(cmd)``, ``/dev/stdin``) or a FIFO, read once.

    ``check_head(head, whole)`` sees the first :data:`HEAD_BYTES` first (``whole``: that is
    all there is) and may reject the input before the rest is read. A FIFO with no writer,
    or a pipe silent for :data:`PIPE_TIMEOUT_S`, is a :class:`UserError`, not a hang.
    """
    path = Path(path)
    problem = path_problem(path)
    if problem:
        raise UserError(problem, path=path)
    try:
        # O_NONBLOCK: opening a FIFO that has no writer yet must not block
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise UserError(f"cannot read: {e.strerror}", path=path) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            if st.st_size > max_bytes:
                raise UserError(f"file too large{too_large_note} ({st.st_size} bytes > limit "
                                f"{max_bytes})", path=path)
            os.set_blocking(fd, True)
            chunks = _read_regular(fd, st.st_size, check_head)
        else:
            chunks = _read_fd(fd, max_bytes, check_head, _pipe_timeout())
    except OSError as e:
        raise UserError(f"cannot read: {e.strerror or e}", path=path) from None
    except _TooLarge as e:
        raise UserError(f"too large{too_large_note} (more than {e.args[0]} bytes > limit "
                        f"{max_bytes})", path=path) from None
    except _Silent as e:
        raise UserError(f"no data within {e.args[0]:g} s (a pipe or FIFO with no writer?); "
                        "set FUSIONBRAIN_PIPE_TIMEOUT_S to wait longer", path=path) from None
    except _HeadRejected as e:
        raise e.args[0] from None
    finally:
        os.close(fd)
    return chunks


class _TooLarge(Exception):
    pass


class _Silent(Exception):
    pass


class _HeadRejected(Exception):
    pass


def _read_fd(fd: int, max_bytes: int, check_head: Callable[[bytes, bool], None] | None,
             timeout: float | None) -> bytearray:
    """Read ``fd`` to its end (at most ``max_bytes``), waiting up to ``timeout`` per chunk."""
    import select

    poller = None
    if timeout is not None:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    buf = bytearray()
    head_done = check_head is None
    while True:
        if poller is not None and not poller.poll(int(timeout * 1000)):  # type: ignore[operator]
            raise _Silent(timeout)
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            continue
        if not chunk:
            break
        buf += chunk
        if len(buf) > max_bytes:
            raise _TooLarge(len(buf) - 1)
        if not head_done and len(buf) >= HEAD_BYTES:
            head_done = True
            _run_head(check_head, bytes(buf[:HEAD_BYTES]), False)
    if not head_done:
        _run_head(check_head, bytes(buf), True)
    return buf  # not bytes(buf): a copy would double the peak memory of a large file


def _read_regular(fd: int, size: int,
                  check_head: Callable[[bytes, bool], None] | None) -> bytearray:
    """Read a regular file of ``size`` bytes into one buffer allocated once (the peak
    memory of a refused large file is then about its size), its head checked first."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0

    def fill(stop: int) -> None:
        nonlocal got
        while got < stop:
            n = os.readv(fd, [view[got:stop]])
            if n == 0:
                return  # the file shrank while being read
            got += n

    try:
        if check_head is not None:
            head_end = min(HEAD_BYTES, size)
            fill(head_end)
            _run_head(check_head, bytes(view[:got]), got >= size or got < head_end)
        fill(size)
    finally:
        view.release()
    del buf[got:]
    return buf


def _run_head(check: Callable[[bytes, bool], None] | None, head: bytes, whole: bool) -> None:
    try:
        check(head, whole)  # type: ignore[misc]
    except UserError as e:
        raise _HeadRejected(e) from None


def parse_json(text: str, *, path: str | os.PathLike[str] | None = None,
               where: str = "") -> Any:
    """``json.loads`` with every failure a one-line :class:`UserError`.

    Covers malformed text, nesting too deep for the parser, integers longer than Python
    converts (4,300 digits) and NaN/Infinity (not JSON). ``where`` (e.g. "line 3") is put
    before the message.
    """
    at = f"{where}: " if where else ""
    try:
        obj = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        loc = "" if where else f" at line {e.lineno} column {e.colno}"
        raise UserError(f"{at}malformed JSON{loc}: {e.msg}", path=path) from None
    except RecursionError:
        raise UserError(f"{at}malformed JSON: nested too deeply", path=path) from None
    except ValueError as e:
        if "digits" in str(e):
            raise UserError(f"{at}a number has too many digits (over "
                            f"{sys.get_int_max_str_digits()})", path=path) from None
        raise UserError(f"{at}malformed JSON: {str(e).splitlines()[0]}", path=path) from None
    # "\ud800" escapes parse into lone surrogates: not text, and a traceback later when
    # written or printed; looked for only when the text has such an escape
    if _SURROGATE_ESCAPE.search(text) and _has_surrogate(obj):
        raise UserError(f"{at}a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), "
                        "not valid Unicode", path=path)
    return obj


_SURROGATE_ESCAPE = re.compile(r"\\[uU][dD][89a-fA-F]")


def _has_surrogate(obj: Any) -> bool:
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def check_density(raw: bytes | bytearray, *, path: str | os.PathLike[str] | None = None) -> None:
    """Refuse a large JSON text with more arrays/objects than its size can hold in real data.

    Counting brackets is a bound (brackets inside strings count too); only when it is
    exceeded are those inside strings counted and taken off. Linear in the size.
    """
    global _STRING_RE
    if len(raw) < _DENSITY_CHECK_BYTES:
        return
    limit = len(raw) // _MIN_BYTES_PER_CONTAINER
    total = raw.count(b"[") + raw.count(b"{")
    if total <= limit:
        return
    if _STRING_RE is None:
        _STRING_RE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
    # brackets inside strings, one string at a time (no copy of the whole text)
    quoted = 0
    for m in _STRING_RE.finditer(raw):
        if m.end() - m.start() > 2:
            piece = m.group()
            quoted += piece.count(b"[") + piece.count(b"{")
    n = total - quoted
    if n > limit:
        raise UserError(f"{n} arrays/objects in {len(raw)} bytes: more than one per "
                        f"{_MIN_BYTES_PER_CONTAINER} bytes, not a plausible data file "
                        "(refused before parsing, to bound memory)", path=path)


def read_json(path: str | os.PathLike[str], *, max_bytes: int = MAX_JSON_BYTES,
              expect: type | tuple[type, ...] | None = None, too_large_note: str = "",
              check_head: Callable[[bytes, bool], None] | None = None) -> Any:
    """Read a JSON file (or pipe), raising :class:`UserError` naming the file on any problem.

    ``too_large_note`` is appended to the size-limit message; ``check_head(head, whole)``
    may reject the input cheaply from its first bytes before the rest is read.
    """
    path = Path(path)
    raw = read_bytes(path, max_bytes=max_bytes, too_large_note=too_large_note,
                     check_head=check_head)
    check_density(raw, path=path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"not UTF-8 text (bad byte at offset {e.start})", path=path) from None
    del raw
    obj = parse_json(text, path=path)
    del text
    if expect is not None and not isinstance(obj, expect):
        names = expect.__name__ if isinstance(expect, type) else " or ".join(t.__name__ for t in expect)
        raise UserError(f"expected a JSON {_json_type(names)} at top level, got "
                        f"{_json_type(type(obj).__name__)}", path=path)
    return obj


def json_type(obj: Any) -> str:
    """The JSON name of a parsed value's type, for messages ("null", not "NoneType")."""
    return _json_type(type(obj).__name__)


def _json_type(pyname: str) -> str:
    return {"dict": "object", "list": "array", "str": "string", "int": "number",
            "float": "number", "NoneType": "null", "bool": "boolean"}.get(pyname, pyname)
