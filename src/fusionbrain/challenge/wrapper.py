"""Runs inside the sandbox: starts the submission's entry point, then streams its prediction
files out to the organiser's side.

Standard library only (started with ``python -I -S``). Usage::

    wrapper.py FD MAX_FILE_BYTES ENTRYPOINT OUTPUT_DIR [WATCHED_DIR ...]

After the entry point exits, every regular file ``OUTPUT_DIR/prediction_*.json`` (never a
link) is written to file descriptor FD as a JSON header line ``{"name", "size"}`` followed
by its bytes, then a trailer line ``{"end": true, "exit": CODE, "signal": N|null, "full":
[dirs at their size cap]}``. The runner treats the stream as untrusted input.
"""

import json
import os
import stat
import subprocess
import sys

_CHUNK = 1 << 20
# a tmpfs with less than this free is reported as full (its size cap was hit)
_FULL_BYTES = 256 << 10


def _full(path: str) -> bool:
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_blocks > 0 and st.f_bavail * st.f_frsize < _FULL_BYTES


def _send(out, output: str, max_bytes: int) -> None:
    try:
        names = sorted(os.listdir(output))
    except OSError:
        return
    for name in names:
        if not (name.startswith("prediction_") and name.endswith(".json")):
            continue
        try:
            fd = os.open(os.path.join(output, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                continue
            size = min(st.st_size, max_bytes)
            out.write(json.dumps({"name": name, "size": size}).encode() + b"\n")
            left = size
            while left:
                chunk = f.read(min(_CHUNK, left))
                if not chunk:  # shrank while being read: pad so the framing stays right
                    out.write(b" " * left)
                    break
                out.write(chunk)
                left -= len(chunk)


def main() -> int:
    fd, max_bytes, entrypoint, output, *watched = sys.argv[1:]
    out = os.fdopen(int(fd), "wb", buffering=_CHUNK)
    os.set_inheritable(out.fileno(), False)
    try:
        proc = subprocess.Popen(["/bin/sh", "-c", entrypoint], stdin=subprocess.DEVNULL)
    except OSError as e:
        print(f"sandbox: cannot start the entry point: {e}", file=sys.stderr)
        code, sig = 127, None
    else:
        while True:
            try:
                code = proc.wait()
                break
            except InterruptedError:
                continue
        sig = -code if code < 0 else None
        if sig is not None:
            code = 128 + sig
    full = [d for d in [output, *watched] if _full(d)]
    try:
        _send(out, output, int(max_bytes))
        out.write(json.dumps({"end": True, "exit": code, "signal": sig, "full": full}).encode()
                  + b"\n")
        out.flush()
    except BrokenPipeError:
        pass
    return code


if __name__ == "__main__":
    sys.exit(main())
