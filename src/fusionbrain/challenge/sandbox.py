"""Running one submission in a bubblewrap sandbox, with time, memory and output limits.

The sandbox (``bwrap``): new user, mount, PID, network, IPC, UTS and cgroup namespaces; uid
65534 with no capabilities and no nested user namespaces; a read-only root holding only
``/usr`` (+ the ``/bin``, ``/lib*`` links), a few ``/etc`` loader files, the Python
environment (venv, its base interpreter, the ``fusionbrain`` package) read-only at their
own paths, the unpacked submission read-only at ``/submission`` (the working folder), the
test inputs read-only at ``/input``, and size-capped tmpfs at ``/output``, ``/tmp`` and
``/dev/shm``. The truths are never mounted; no network (only a loopback of its own).

Limits:

- wall clock: the whole process tree is killed (SIGKILL to bwrap's session; the PID
  namespace dies with its init, ``--die-with-parent`` covers the runner dying);
- memory: a cgroup (v2, else v1 ``memory``) holding the whole tree when one can be made,
  else ``RLIMIT_AS`` per process (``challenge run`` prints which);
- output: the tmpfs sizes, plus ``RLIMIT_FSIZE`` on any single file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusionbrain.errors import UserError

SANDBOX_UID = 65534
_WRAPPER = Path(__file__).with_name("wrapper.py")
_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
        "/etc/alternatives")
_TOP_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# bytes of each of stdout / stderr kept (the last ones)
TAIL_BYTES = 64 << 10
# after the entry point's process ends, how long stray pipe holders may keep a pipe open
_GRACE_S = 5.0
_RESULT_OVERHEAD = 1 << 20


@dataclass
class SandboxSpec:
    """What one run needs: the submission, the inputs, the limits."""

    submission: Path
    input: Path
    entrypoint: str
    time_limit_s: float
    memory_bytes: int
    output_bytes: int
    tmp_bytes: int
    forbidden: list[Path] = field(default_factory=list)  # never visible (the truths)
    unsafe_output: Path | None = None   # --unsafe-no-sandbox: host folder for /output


@dataclass
class Outcome:
    """How a run ended, before scoring."""

    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    memory_exceeded: bool = False
    full: list[str] = field(default_factory=list)
    stream_error: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    wall_s: float = 0.0
    peak_bytes: int | None = None
    memory_mechanism: str = ""


# -- bubblewrap ------------------------------------------------------------------------------

def find_bwrap() -> str | None:
    for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin", "/bin"]:
        p = os.path.join(d, "bwrap")
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


_HELP: dict[str, str] = {}


def _supports(bwrap: str, option: str) -> bool:
    """Whether this bwrap knows ``option`` (--disable-userns is new in 0.8)."""
    if bwrap not in _HELP:
        try:
            _HELP[bwrap] = subprocess.run([bwrap, "--help"], capture_output=True, text=True,
                                          timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            _HELP[bwrap] = ""
    return option in _HELP[bwrap]


def _namespace_flags(bwrap: str) -> list[str]:
    extra = ["--disable-userns"] if _supports(bwrap, "--disable-userns") else []
    return ["--unshare-all", "--unshare-user", *extra,
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox"]


def check_bwrap() -> str:
    """The path of a bwrap that can create every namespace we use, or a UserError saying
    why not (one line)."""
    bwrap = find_bwrap()
    refuse = ("`challenge run` does not run submissions unsandboxed (--unsafe-no-sandbox is "
              "for trusted local testing only)")
    if bwrap is None:
        raise UserError(f"bubblewrap (bwrap) is not installed (Debian: apt-get install "
                        f"bubblewrap); {refuse}")
    argv = [bwrap, *_namespace_flags(bwrap), *_root_mounts(), "--proc", "/proc", "--",
            "/bin/true"]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"bwrap cannot start ({e}); {refuse}") from None
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
        raise UserError(f"bwrap cannot create its namespaces here ({why}); {refuse}")
    return bwrap


def _root_mounts() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _TOP_LINKS:
        p = Path("/") / name
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            args += ["--ro-bind", str(p), str(p)]
    for etc in _ETC:
        args += ["--ro-bind-try", etc, etc]
    return args


def python_paths() -> list[Path]:
    """The folders a submission's Python needs: the environment, its base interpreter and
    the fusionbrain package (an editable install lives outside the venv)."""
    import fusionbrain

    cands = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
             os.path.dirname(os.path.abspath(fusionbrain.__file__))]
    out: list[Path] = []
    for c in sorted({os.path.realpath(c) for c in cands}, key=len):
        p = Path(c)
        if p == Path("/usr") or Path("/usr") in p.parents:
            continue
        if any(q == p or q in p.parents for q in out):
            continue
        out.append(p)
    # the venv path as written (symlinked prefixes) must resolve too
    for c in (sys.prefix, sys.base_prefix):
        if Path(c) != Path(os.path.realpath(c)) and Path(c) not in out:
            out.append(Path(c))
    return out


def _inside(path: Path, folder: Path) -> bool:
    path, folder = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return path == folder or folder in path.parents


def bwrap_argv(bwrap: str, spec: SandboxSpec, result_fd: int) -> list[str]:
    """The full bwrap command line of one run (pure; tested for what it mounts)."""
    env_paths = python_paths()
    visible = [*env_paths, spec.submission, spec.input]
    for secret in spec.forbidden:
        for v in visible:
            if _inside(secret, v) or _inside(v, secret):
                raise UserError(f"{secret} would be visible in the sandbox (it is inside or "
                                f"contains {v}); keep the challenge folder apart")
    venv_bin = os.path.join(sys.prefix, "bin")
    # the tmpfs first: a later mount over /tmp would hide an environment that lives there
    args = [bwrap, *_namespace_flags(bwrap), *_root_mounts(),
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(spec.tmp_bytes), "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
            "--size", str(spec.output_bytes), "--tmpfs", "/output",
            "--size", str(spec.tmp_bytes), "--tmpfs", "/tmp"]
    for p in env_paths:
        args += ["--ro-bind", str(p), str(p)]
    args += ["--ro-bind", str(spec.submission), "/submission",
             "--ro-bind", str(spec.input), "/input",
             "--remount-ro", "/",
             "--clearenv",
             "--setenv", "PATH", f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
             "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp",
             "--setenv", "USER", "nobody", "--setenv", "LOGNAME", "nobody",
             "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
             "--setenv", "VIRTUAL_ENV", sys.prefix,
             "--setenv", "FB_INPUT", "/input", "--setenv", "FB_OUTPUT", "/output",
             "--chdir", "/submission",
             "--", os.path.join(venv_bin, "python"), "-I", "-S", str(_WRAPPER),
             str(result_fd), str(spec.output_bytes), spec.entrypoint, "/output", "/tmp",
             "/dev/shm"]
    return args


def unsafe_argv(spec: SandboxSpec, result_fd: int) -> list[str]:
    assert spec.unsafe_output is not None
    tmp = spec.unsafe_output.parent / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-I", "-S", str(_WRAPPER), str(result_fd), str(spec.output_bytes),
            spec.entrypoint, str(spec.unsafe_output)]


def _unsafe_env(spec: SandboxSpec) -> dict[str, str]:
    assert spec.unsafe_output is not None
    tmp = spec.unsafe_output.parent / "tmp"
    return {"PATH": f"{os.path.join(sys.prefix, 'bin')}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(tmp), "TMPDIR": str(tmp), "LANG": "C.UTF-8",
            "FB_INPUT": str(spec.input), "FB_OUTPUT": str(spec.unsafe_output),
            "PYTHONDONTWRITEBYTECODE": "1"}


# -- memory limit ----------------------------------------------------------------------------

class MemoryLimit:
    """A cgroup for the run's process tree (v2, else v1), or RLIMIT_AS per process."""

    def __init__(self, limit_bytes: int, pids_max: int = 1024) -> None:
        self.limit = limit_bytes
        self.pids_max = pids_max
        self.dirs: list[Path] = []      # cgroups the child joins
        self.memory_dir: Path | None = None
        self.version = 0
        self._oom_before = 0
        if (self._try_v2() or self._try_v1()) and not self._can_join():
            self.close()
            self.dirs, self.memory_dir, self.version = [], None, 0
        self.mechanism = (f"cgroup v{self.version}" if self.version
                          else "RLIMIT_AS (per process; no writable cgroup)")

    # v2: one folder with memory.max (+ pids.max)
    def _try_v2(self) -> bool:
        path = _own_cgroup("0", "")
        for mount in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
            if path is None or not (mount / "cgroup.controllers").exists():
                continue
            base = mount / path.lstrip("/")
            if not base.is_dir():
                base = mount
            child = self._mkdir(base)
            if child is None:
                continue
            if not (child / "memory.max").exists():
                with contextlib.suppress(OSError):
                    (base / "cgroup.subtree_control").write_text("+memory +pids")
            try:
                (child / "memory.max").write_text(str(self.limit))
                with contextlib.suppress(OSError):
                    (child / "memory.swap.max").write_text("0")
                with contextlib.suppress(OSError):
                    (child / "pids.max").write_text(str(self.pids_max))
            except OSError:
                _rmdir(child)
                continue
            self.dirs, self.memory_dir, self.version = [child], child, 2
            return True
        return False

    def _try_v1(self) -> bool:
        mem = _own_cgroup(None, "memory")
        mount = Path("/sys/fs/cgroup/memory")
        if mem is None or not (mount / "memory.limit_in_bytes").exists():
            return False
        base = mount / mem.lstrip("/")
        child = self._mkdir(base if base.is_dir() else mount)
        if child is None:
            return False
        try:
            (child / "memory.limit_in_bytes").write_text(str(self.limit))
            with contextlib.suppress(OSError):
                (child / "memory.memsw.limit_in_bytes").write_text(str(self.limit))
        except OSError:
            _rmdir(child)
            return False
        self.dirs, self.memory_dir, self.version = [child], child, 1
        pids = _own_cgroup(None, "pids")
        pmount = Path("/sys/fs/cgroup/pids")
        if pids is not None and (pmount / "cgroup.procs").exists():
            pbase = pmount / pids.lstrip("/")
            pchild = self._mkdir(pbase if pbase.is_dir() else pmount)
            if pchild is not None:
                try:
                    (pchild / "pids.max").write_text(str(self.pids_max))
                    self.dirs.append(pchild)
                except OSError:
                    _rmdir(pchild)
        self._oom_before = self._oom_count()
        return True

    def _can_join(self) -> bool:
        """Whether a process can be moved into the cgroups (cgroup v2 forbids it in some
        delegations): tried with a throwaway child."""
        def join() -> None:
            for d in self.dirs:
                with open(d / "cgroup.procs", "w") as f:
                    f.write(str(os.getpid()))

        try:
            subprocess.run(["/bin/true"], preexec_fn=join, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return False
        return True

    @staticmethod
    def _mkdir(base: Path) -> Path | None:
        child = base / f"fusionbrain-challenge-{os.getpid()}-{time.monotonic_ns()}"
        try:
            child.mkdir()
        except OSError:
            return None
        return child

    def preexec(self) -> None:
        """In the child before exec: join the cgroups, or set RLIMIT_AS."""
        pid = str(os.getpid())
        try:
            for d in self.dirs:
                with open(d / "cgroup.procs", "w") as f:
                    f.write(pid)
        except OSError:
            self.version = 0  # (in this child only) never run without a memory limit
        if not self.version:
            resource.setrlimit(resource.RLIMIT_AS, (self.limit, self.limit))

    def _oom_count(self) -> int:
        if self.memory_dir is None:
            return 0
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            text = (self.memory_dir / name).read_text()
        except OSError:
            return 0
        m = re.search(r"^oom_kill (\d+)", text, re.M)
        return int(m.group(1)) if m else 0

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the cgroup for lack of memory."""
        return bool(self.version) and self._oom_count() > self._oom_before

    def peak(self) -> int | None:
        if self.memory_dir is None:
            return None
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int((self.memory_dir / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill_all(self) -> None:
        for d in self.dirs:
            if (d / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    (d / "cgroup.kill").write_text("1")
            for _ in range(50):
                try:
                    pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
                except (OSError, ValueError):
                    break
                if not pids:
                    break
                for p in pids:
                    with contextlib.suppress(OSError):
                        os.kill(p, signal.SIGKILL)
                time.sleep(0.02)

    def close(self) -> None:
        self.kill_all()
        for d in self.dirs:
            for _ in range(50):
                if _rmdir(d):
                    break
                time.sleep(0.02)


_OOM_TEXT = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory",
                       re.I)


def _own_cgroup(hier_id: str | None, controller: str) -> str | None:
    """This process's cgroup path: v2 line ``0::/path`` (hier_id "0"), or the v1 line whose
    controllers include ``controller``."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if hier_id is not None and parts[0] == hier_id and parts[1] == "":
            return parts[2]
        if hier_id is None and controller in parts[1].split(","):
            return parts[2]
    return None


def _rmdir(d: Path) -> bool:
    try:
        d.rmdir()
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


# -- running ---------------------------------------------------------------------------------

class _Tail:
    """The last bytes of a stream, and how many there were."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.total = 0

    def add(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        self.total += len(data)
        while self.size - len(self.chunks[0]) >= self.keep:
            self.size -= len(self.chunks.popleft())

    def text(self) -> str:
        data = b"".join(self.chunks)[-self.keep:]
        return data.decode("utf-8", "replace")


class _Capped:
    """Up to ``cap`` bytes of a stream; more is counted and dropped."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.buf = bytearray()
        self.overflow = False

    def add(self, data: bytes) -> None:
        room = self.cap - len(self.buf)
        if len(data) > room:
            self.overflow = True
            data = data[:max(room, 0)]
        self.buf += data


_NAME = re.compile(r"prediction_[A-Za-z0-9]{1,16}\.json")


def parse_result_stream(raw: bytes, max_file_bytes: int) -> tuple[dict[str, bytes], dict, str]:
    """(files, trailer, error) from the wrapper's stream; never trusts it."""
    files: dict[str, bytes] = {}
    pos = 0
    while pos < len(raw):
        nl = raw.find(b"\n", pos, pos + 4096)
        if nl < 0:
            return files, {}, "the result stream is malformed (no header line)"
        try:
            head = json.loads(raw[pos:nl].decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return files, {}, "the result stream is malformed (bad header)"
        pos = nl + 1
        if not isinstance(head, dict):
            return files, {}, "the result stream is malformed (bad header)"
        if head.get("end") is True:
            return files, head, ""
        name, size = head.get("name"), head.get("size")
        if not isinstance(name, str) or not _NAME.fullmatch(name) or not isinstance(size, int) \
                or isinstance(size, bool) or not 0 <= size <= max_file_bytes \
                or pos + size > len(raw):
            return files, {}, "the result stream is malformed (bad file header)"
        files[name] = bytes(raw[pos:pos + size])
        pos += size
    return files, {}, "the result stream ended early"


def run(spec: SandboxSpec, bwrap: str | None) -> Outcome:
    """Run the submission under the limits; ``bwrap`` None means --unsafe-no-sandbox."""
    limit = MemoryLimit(spec.memory_bytes)
    out = Outcome(memory_mechanism=limit.mechanism)
    r_fd, w_fd = os.pipe()
    argv = bwrap_argv(bwrap, spec, w_fd) if bwrap else unsafe_argv(spec, w_fd)
    fsize = max(spec.output_bytes, spec.tmp_bytes) + (1 << 20)

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        limit.preexec()

    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(w_fd,), start_new_session=True, preexec_fn=preexec,
            cwd=None if bwrap else spec.submission, env=None if bwrap else _unsafe_env(spec))
    except BaseException:
        os.close(r_fd)
        os.close(w_fd)
        limit.close()
        raise
    os.close(w_fd)
    stdout, stderr = _Tail(TAIL_BYTES), _Tail(TAIL_BYTES)
    result = _Capped(spec.output_bytes + _RESULT_OVERHEAD)
    sinks: dict[int, Any] = {proc.stdout.fileno(): stdout, proc.stderr.fileno(): stderr,
                             r_fd: result}
    sel = selectors.DefaultSelector()
    for fd in sinks:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    deadline = t0 + spec.time_limit_s
    ended_at: float | None = None
    try:
        while sel.get_map():
            now = time.monotonic()
            if not out.timed_out and now >= deadline:
                out.timed_out = True
                _kill(proc, limit)
            if ended_at is None and proc.poll() is not None:
                ended_at = now
            if ended_at is not None and now - ended_at > _GRACE_S:
                break  # a stray process holds a pipe (unsafe mode): stop listening
            wait = max(0.0, min(deadline - now, 0.5)) if not out.timed_out else 0.5
            for key, _ in sel.select(timeout=wait):
                try:
                    data = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if data:
                    sinks[key.fd].add(data)
                else:
                    sel.unregister(key.fd)
    finally:
        _kill(proc, limit)
        proc.wait()
        out.wall_s = time.monotonic() - t0
        sel.close()
        proc.stdout.close()
        proc.stderr.close()
        os.close(r_fd)
        out.peak_bytes = limit.peak()
        out.stdout, out.stderr = stdout.text(), stderr.text()
        out.memory_exceeded = limit.oom_killed()
        limit.close()
    if out.timed_out:
        return out
    files, trailer, err = parse_result_stream(bytes(result.buf), spec.output_bytes)
    if result.overflow:
        err = err or "the result stream is larger than the output limit"
    out.files, out.stream_error = files, err
    if trailer:
        code = trailer.get("exit")
        out.exit_code = code if isinstance(code, int) and not isinstance(code, bool) else None
        sig = trailer.get("signal")
        out.signal = sig if isinstance(sig, int) and not isinstance(sig, bool) else None
        full = trailer.get("full")
        out.full = [str(d) for d in full][:4] if isinstance(full, list) else []
    else:
        out.exit_code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        if out.exit_code == 128 + signal.SIGXFSZ:
            out.full = ["a file reached the size limit"]
    if out.exit_code == 128 + signal.SIGXFSZ and not out.full:
        out.full = ["a file reached the size limit"]
    if not out.memory_exceeded and out.exit_code not in (0, None) and limit.version == 0:
        # RLIMIT_AS: the allocation fails inside the program, which then dies of it
        out.memory_exceeded = bool(_OOM_TEXT.search(out.stderr[-4096:]))
    return out


def _kill(proc: subprocess.Popen, limit: MemoryLimit) -> None:
    """SIGKILL bwrap's whole session (its PID namespace then dies with its init) and
    whatever is left in the cgroup."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    limit.kill_all()
