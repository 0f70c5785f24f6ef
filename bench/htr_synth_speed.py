"""CPU cost of the synthetic handwriting generator, per image, against an older revision.

    python bench/htr_synth_speed.py --n 300 --against 4147df9

Plans and draws the first ``--n`` training images of seed 0 (PNG encoding included, no disk
writes) with the current ``fusionbrain.tasks.htr.synthetic`` and, with ``--against REV``, with
that revision's ``synthetic.py`` + ``data/fonts.py`` (read with ``git show``, imported from a
temporary folder), alternating twice so both see the same machine load. CPU time of this
process (``time.process_time``), not wall time: the development machine is shared.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _old_module(rev: str, tmp: Path):
    """``synthetic`` of revision ``rev``, using that revision's font list."""
    def show(path: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True,
                              capture_output=True, text=True).stdout

    (tmp / "old_fonts.py").write_text(show("src/fusionbrain/data/fonts.py"), "utf-8")
    src = show("src/fusionbrain/tasks/htr/synthetic.py").replace(
        "from fusionbrain.data import fonts as fontlib", "import old_fonts as fontlib")
    (tmp / "old_synthetic.py").write_text(src, "utf-8")
    sys.path.insert(0, str(tmp))
    return importlib.import_module("old_synthetic")


def _cost(mod, n: int) -> tuple[float, float]:
    """(plan CPU s, draw CPU ms per image) for the first n training images."""
    t = time.process_time()
    specs = mod.plan("train", n, 0)
    plan_s = time.process_time() - t
    for s in specs[:10]:  # warm the font caches
        mod._render_spec(s)
    t = time.process_time()
    for s in specs:
        mod._render_spec(s)
    return plan_s, 1000 * (time.process_time() - t) / max(1, n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--against", help="a git revision to compare with")
    args = ap.parse_args()
    from fusionbrain.tasks.htr import synthetic as new

    mods = [("current", new)]
    if args.against:
        mods.append((f"at {args.against}", _old_module(args.against, Path(tempfile.mkdtemp()))))
    results: dict[str, list[float]] = {name: [] for name, _ in mods}
    for _ in range(2):
        for name, mod in mods:
            results[name].append(_cost(mod, args.n)[1])
    specs = new.plan("train", args.n, 0)
    mix = Counter((("stroke" if s.font_path.startswith(new.HERSHEY) else "font"), s.style)
                  for s in specs)
    print(f"load average {os.getloadavg()[0]:.1f}; current mix: {dict(mix)}")
    for name, ms in results.items():
        print(f"{name}: {min(ms):.1f} ms CPU per image (best of {len(ms)}: "
              f"{', '.join(f'{m:.1f}' for m in ms)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
