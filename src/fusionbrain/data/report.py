"""The skip report: bad items are skipped, counted and listed once at the end, never fatal.

Readers add ``(source, item, reason)`` for each skipped item. At the end the caller prints one
summary line plus the first few entries, and writes the full list to a file. A source whose
items are ALL bad is a :class:`UserError` (see :meth:`SkipReport.check_source`).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from fusionbrain.errors import UserError
from fusionbrain.utils.io import atomic_open, read_json

SHOWN = 5  # entries printed after the summary line


@dataclass
class Skip:
    source: str  # the file or folder being read
    item: str  # the key / file name / line of the bad item
    reason: str


@dataclass
class SkipReport:
    entries: list[Skip] = field(default_factory=list)

    def add(self, source: object, item: object, reason: str) -> None:
        self.entries.append(Skip(str(source), str(item), reason))

    def __len__(self) -> int:
        return len(self.entries)

    def extend(self, other: SkipReport) -> None:
        self.entries.extend(other.entries)

    def reasons(self) -> Counter[str]:
        """Count of skips per reason kind (the text before the first colon)."""
        return Counter(e.reason.split(":")[0] for e in self.entries)

    def summary(self) -> str:
        if not self.entries:
            return "skipped 0 items"
        kinds = ", ".join(f"{n} {k}" for k, n in self.reasons().most_common())
        return f"skipped {len(self.entries)} bad items ({kinds})"

    def lines(self) -> list[str]:
        return [f"{e.source}\t{e.item}\t{e.reason}" for e in self.entries]

    def print(self, file: TextIO | None = None, full_list: str | os.PathLike[str] | None = None,
              shown: int = SHOWN) -> None:
        """Print the summary and the first few entries (nothing when no item was skipped)."""
        if not self.entries:
            return
        out = file or sys.stderr
        print(f"warning: {self.summary()}", file=out)
        for line in self.lines()[:shown]:
            print(f"  {line}", file=out)
        rest = len(self.entries) - shown
        if full_list is not None:
            print(f"  ... full list ({len(self.entries)}) in {full_list}", file=out)
        elif rest > 0:
            print(f"  ... and {rest} more", file=out)

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the full list, one tab-separated ``source item reason`` per line."""
        with atomic_open(path, "w", encoding="utf-8") as f:
            f.write("source\titem\treason\n")
            for line in self.lines():
                f.write(line + "\n")

    def check_source(self, source: object, n_good: int, n_before: int) -> None:
        """Raise a clear error when a source yielded no good item although it had bad ones.

        ``n_before`` is ``len(report)`` before the source was read.
        """
        bad = self.entries[n_before:]
        if n_good == 0 and bad:
            first = bad[0]
            raise UserError(f"all {len(bad)} items are unusable (first: {first.item}: "
                            f"{first.reason})", path=str(source))


def start_report(report: SkipReport | None) -> tuple[SkipReport, bool, int]:
    """Every reader's prologue: the report to add to (the caller's, else a new one), whether
    the reader owns it (then :func:`finish` prints it) and its size before this read."""
    own = report is None
    report = report if report is not None else SkipReport()
    return report, own, len(report)


def finish(report: SkipReport, own: bool) -> None:
    """Print a report the reader created itself (a caller-supplied one is the caller's job)."""
    if own:
        report.print()


def read_labelled_challenge(read_input: Callable[..., list[Any]],
                            input_dir: str | os.PathLike[str],
                            true_json: str | os.PathLike[str] | None,
                            report: SkipReport | None,
                            label: Callable[[Any, Any], str | None]) -> list[Any]:
    """Read a challenge input folder and, with ``true_json``, label each sample from it.

    ``label(sample, truth_value)`` fills the sample's labels and returns None, or returns
    the problem; such samples (and those without truth) are skipped and reported.
    """
    report, own, _ = start_report(report)
    samples = read_input(input_dir, report=report)
    if true_json is None:
        finish(report, own)
        return samples
    truth = read_json(true_json, expect=dict)
    before = len(report)
    out = []
    for sample in samples:
        value = truth.get(sample.id)
        reason = "missing truth" if value is None else label(sample, value)
        if reason:
            report.add(true_json, sample.id, reason)
            continue
        out.append(sample)
    report.check_source(true_json, len(out), before)
    finish(report, own)
    return out
