"""Peak memory of reading a scoring JSON file, per MB of file (issue 16, point 8).

Each case is read by ``read_score_json`` in a fresh process; the peak RSS above that of a
process that only imported the module (and read a tiny file), divided by the file size, is
the cost per MB. Shapes: the hostile ``{"a": [[],[],...]}`` (refused before parsing), the
densest shape still accepted (a two-number list per 9 bytes), and real prediction shapes.

    .venv/bin/python bench/json_memory.py [--mb 120] [--out bench/results/json_memory.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import resource, sys, time
from fusionbrain.errors import UserError
from fusionbrain.scoring import read_score_json
t = time.perf_counter()
try:
    read_score_json(sys.argv[1])
    verdict = "read"
except UserError as e:
    verdict = "refused: " + str(e).split(": ", 1)[1][:60]
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t, verdict)
"""


def _write_repeated(path: Path, head: str, unit: str, tail: str, size: int) -> None:
    n = max(1, (size - len(head) - len(tail)) // len(unit))
    with open(path, "w", encoding="utf-8") as f:
        f.write(head)
        block = unit * 10_000
        for _ in range(n // 10_000):
            f.write(block)
        f.write(unit * (n % 10_000))
        f.write(tail)


def cases(folder: Path, size: int) -> dict[str, Path]:
    out = {}
    p = folder / "empty_lists.json"  # the file: refused by structure
    _write_repeated(p, '{"a": [', "[],", "[]]}", size)
    out["{\"a\": [[],[],...]} (hostile)"] = p
    p = folder / "pairs.json"  # densest accepted: one container per 9 bytes (the limit is 8)
    _write_repeated(p, '{"a": [', "[1.5,22],", "[1]]}", size)
    out["{\"a\": [[1.5,22],...]} (densest accepted)"] = p
    p = folder / "zsod.json"  # a real zsOD prediction shape
    with open(p, "w", encoding="utf-8") as f:
        f.write("{")
        i, written = 0, 1
        while written < size:
            item = json.dumps({"a red circle": [[0.91, 12.5, 40.25, 31.0, 22.75]] * 2,
                               "синий квадрат": []}, ensure_ascii=False)
            s = ("," if i else "") + f'"{i}.jpg": ' + item
            f.write(s)
            written += len(s.encode())
            i += 1
        f.write("}")
    out["zsOD prediction (boxes)"] = p
    p = folder / "htr.json"  # a real HTR prediction shape
    with open(p, "w", encoding="utf-8") as f:
        f.write("{")
        i, written = 0, 1
        while written < size:
            s = ("," if i else "") + f'"{i}.png": "рукописное слово"'
            f.write(s)
            written += len(s.encode())
            i += 1
        f.write("}")
    out["HTR prediction (strings)"] = p
    return out


def peak(path: Path) -> tuple[int, float, str]:
    r = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True,
                       env={**os.environ, "FUSIONBRAIN_SCORE_MAX_MB": "1000"}, check=True)
    kb, secs, verdict = r.stdout.split(" ", 2)
    return int(kb), float(secs), verdict.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=120.0)
    ap.add_argument("--out", type=Path, default=Path("bench/results/json_memory.md"))
    args = ap.parse_args()
    size = int(args.mb * (1 << 20))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tiny = tmp / "tiny.json"
        tiny.write_text('{"0.png": "a"}')
        base_kb, _, _ = peak(tiny)
        rows = []
        for name, path in cases(tmp, size).items():
            mb = path.stat().st_size / (1 << 20)
            kb, secs, verdict = peak(path)
            extra = (kb - base_kb) / 1024
            rows.append(f"| {name} | {mb:.0f} | {verdict} | {secs:.1f} | {extra:.0f} | "
                        f"{extra / mb:.1f} |")
            path.unlink()
    load = os.getloadavg()[0]
    text = "\n".join([
        f"`{' '.join(['.venv/bin/python', *sys.argv])}` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.machine()} {os.cpu_count()} cores, load average {load:.1f} (times are "
        "noisy on a loaded machine; the memory figures are not)",
        "",
        "| file | MB | result | s | peak MB above baseline | peak MB per MB |",
        "|---|---:|---|---:|---:|---:|",
        *rows, ""])
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
