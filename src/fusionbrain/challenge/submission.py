"""Checking and unpacking a participant's submission zip.

A submission is a zip with ``metadata.json`` at its root —
``{"entrypoint": "python run.py", "team": "...", "method": "..."}`` and optionally
``"parameters": {"total": N, "shared": M}`` for the multitask bar — plus code and weights.

Refused with one line naming the entry: an absolute path, a ``..`` component, a backslash or
NUL in a name, a symlink, device, FIFO or socket entry, an encrypted entry, a duplicate name,
more entries or more (declared or actual) unpacked bytes than the limits — the last one also
catches zip bombs whose headers lie, since every entry is decompressed and CRC-checked with a
byte budget before the zip is accepted.
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from fusionbrain.errors import UserError

METADATA = "metadata.json"
MAX_METADATA_BYTES = 64 << 10
_CHUNK = 1 << 20


@dataclass
class Limits:
    max_zip_bytes: int
    max_unpacked_bytes: int
    max_files: int


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if not name:
        return "an entry with an empty name"
    if "\x00" in name:
        return "a NUL byte in the name"
    if "\\" in name:
        return "a backslash in the name (zip names use '/')"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    parts = PurePosixPath(name).parts
    if any(p == ".." for p in parts):
        return "a '..' component (zip-slip)"
    if info.flag_bits & 0x1:
        return "an encrypted entry"
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if info.create_system == 3 and kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        what = {stat.S_IFLNK: "a symlink", stat.S_IFCHR: "a character device",
                stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO",
                stat.S_IFSOCK: "a socket"}.get(kind, f"file type {oct(kind)}")
        return f"{what} (only regular files and folders are allowed)"
    return None


def _members(zf: zipfile.ZipFile, limits: Limits, where: Path) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > limits.max_files:
        raise UserError(f"{len(infos)} entries, more than the limit of {limits.max_files}",
                        path=where)
    seen: set[str] = set()
    declared = 0
    for info in infos:
        problem = _entry_problem(info)
        if problem:
            raise UserError(f"rejected: entry {info.filename!r} has {problem}", path=where)
        norm = str(PurePosixPath(info.filename))
        if norm in seen:
            raise UserError(f"rejected: entry {info.filename!r} appears twice", path=where)
        seen.add(norm)
        declared += info.file_size
        if declared > limits.max_unpacked_bytes:
            raise UserError(f"rejected: unpacks to more than {limits.max_unpacked_bytes} bytes "
                            "(declared sizes; zip bomb?)", path=where)
    # a file entry may not also be a folder of another entry ("a" and "a/b")
    files = {str(PurePosixPath(i.filename)) for i in infos if not i.is_dir()}
    for name in seen:
        for parent in PurePosixPath(name).parents:
            if str(parent) in files:
                raise UserError(f"rejected: {str(parent)!r} is both a file and a folder",
                                path=where)
    return infos


def _copy_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Any, budget: int,
                where: Path) -> int:
    """Decompress one entry into ``out`` (a file or None), at most ``budget`` bytes; returns
    the bytes written. zipfile checks the CRC and stops at the declared size."""
    n = 0
    try:
        with zf.open(info) as src:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                n += len(chunk)
                if n > budget or n > info.file_size:
                    raise UserError(f"rejected: entry {info.filename!r} unpacks to more than "
                                    "its declared size or the limit (zip bomb?)", path=where)
                if out is not None:
                    out.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError) as e:
        if isinstance(e, OSError) and getattr(e, "filename", None):
            raise
        raise UserError(f"rejected: entry {info.filename!r} is corrupt ({e})",
                        path=where) from None
    return n


def _open_zip(path: Path, limits: Limits) -> zipfile.ZipFile:
    if not path.exists():
        raise UserError("file not found", path=path)
    if not path.is_file():
        raise UserError("not a file", path=path)
    size = path.stat().st_size
    if size > limits.max_zip_bytes:
        raise UserError(f"rejected: {size} bytes, more than the limit of "
                        f"{limits.max_zip_bytes}", path=path)
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise UserError(f"not a valid zip file ({e})", path=path) from None


def check_metadata(obj: Any, where: Path | str) -> dict[str, Any]:
    """Validate the metadata object; returns it."""
    if not isinstance(obj, dict):
        raise UserError("metadata.json must hold a JSON object", path=where)
    ep = obj.get("entrypoint")
    if not isinstance(ep, str) or not ep.strip():
        raise UserError('metadata.json needs "entrypoint": a command such as "python run.py"',
                        path=where)
    for key in ("team", "method"):
        if key in obj and not isinstance(obj[key], str):
            raise UserError(f"metadata.json: {key!r} must be a string", path=where)
    params = obj.get("parameters")
    if params is not None:
        ok = isinstance(params, dict) and all(
            isinstance(params.get(k), int) and not isinstance(params.get(k), bool)
            and params[k] >= 0 for k in ("total", "shared"))
        if not ok or params["shared"] > params["total"] or params["total"] == 0:
            raise UserError('metadata.json: "parameters" must be {"total": N, "shared": M} '
                            "with integers 0 <= M <= N, N > 0", path=where)
    return obj


def check_zip(path: str | os.PathLike[str], limits: Limits) -> dict[str, Any]:
    """Check a submission zip completely (names, types, sizes, every entry's data and CRC);
    returns its metadata. Raises :class:`UserError` with a one-line reason."""
    path = Path(path)
    with _open_zip(path, limits) as zf:
        infos = _members(zf, limits, path)
        total = 0
        meta_raw: bytes | None = None
        for info in infos:
            if info.is_dir():
                continue
            if str(PurePosixPath(info.filename)) == METADATA:
                if info.file_size > MAX_METADATA_BYTES:
                    raise UserError(f"metadata.json is larger than {MAX_METADATA_BYTES} bytes",
                                    path=path)
                meta_raw = zf.read(info)
                total += len(meta_raw)
                continue
            total += _copy_entry(zf, info, None, limits.max_unpacked_bytes - total, path)
    if meta_raw is None:
        raise UserError("no metadata.json at the root of the zip", path=path)
    try:
        meta = json.loads(meta_raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"metadata.json is not valid UTF-8 JSON ({e})", path=path) from None
    return check_metadata(meta, path)


def extract_zip(path: str | os.PathLike[str], dest: str | os.PathLike[str],
                limits: Limits) -> None:
    """Unpack a checked zip into the empty folder ``dest``: regular files and folders only,
    never following a link, never writing outside ``dest``, within the byte budget."""
    path, dest = Path(path), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with _open_zip(path, limits) as zf:
            total = 0
            for info in _members(zf, limits, path):
                parts = [p for p in PurePosixPath(info.filename).parts if p not in ("", ".")]
                if not parts:
                    continue
                folders = parts if info.is_dir() else parts[:-1]
                fd = _open_folders(dest_fd, folders)
                try:
                    if info.is_dir():
                        continue
                    executable = bool((info.external_attr >> 16) & 0o100)
                    ffd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                  0o755 if executable else 0o644, dir_fd=fd)
                    with os.fdopen(ffd, "wb") as out:
                        total += _copy_entry(zf, info, out, limits.max_unpacked_bytes - total, path)
                finally:
                    if fd != dest_fd:
                        os.close(fd)
    finally:
        os.close(dest_fd)


def _open_folders(root_fd: int, parts: list[str]) -> int:
    """Open (making as needed) ``root/parts...`` without following symlinks; returns its fd."""
    fd = root_fd
    for p in parts:
        try:
            os.mkdir(p, 0o755, dir_fd=fd)
        except FileExistsError:
            pass
        nfd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        if fd != root_fd:
            os.close(fd)
        fd = nfd
    return fd


def pack(folder: Path, out: Path, limits: Limits | None = None) -> int:
    """Zip ``folder`` as a submission (sorted entries, fixed timestamps; ``__pycache__``
    skipped; a symlink or special file is an error), then check it as ``submit`` would.
    Returns the number of files."""
    from fusionbrain.challenge.config import ChallengeConfig
    from fusionbrain.utils.io import atomic_open

    if not (folder / METADATA).is_file():
        raise UserError("no metadata.json in the folder", path=folder)
    if limits is None:
        cfg = ChallengeConfig()
        limits = Limits(cfg.mb("max_zip_mb"), cfg.mb("max_unpacked_mb"), cfg.max_files)
    entries: list[tuple[str, Path]] = []
    out_abs = out.resolve()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for d in dirnames:
            if (Path(dirpath) / d).is_symlink():
                raise UserError("symlinks are not allowed in a submission",
                                path=Path(dirpath) / d)
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.resolve() == out_abs:
                continue
            if p.is_symlink() or not p.is_file():
                raise UserError("only regular files are allowed in a submission", path=p)
            entries.append((p.relative_to(folder).as_posix(), p))
    with atomic_open(out, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as zf:
        for arc, p in entries:
            info = zipfile.ZipInfo(arc, date_time=(2021, 11, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100755 if os.access(p, os.X_OK) else 0o100644) << 16
            with open(p, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
    check_zip(out, limits)
    return len(entries)
