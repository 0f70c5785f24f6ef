"""The organiser's challenge configuration (``DIR/config.json``) and folder layout."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionbrain.errors import UserError
from fusionbrain.scoring.common import PROFILES
from fusionbrain.utils.io import read_json, write_json_atomic

CONFIG = "config.json"
SPLIT = "split.json"
DATABASE = "challenge.sqlite"
HIDDEN = "hidden"
ZIPS = "zips"
RUNS = "runs"
WORK = "work"


@dataclass
class ChallengeConfig:
    """Limits and rules of one challenge; every size is in MB (2**20 bytes)."""

    time_limit_s: float = 1800.0          # wall clock of one submission's run
    memory_limit_mb: int = 8192           # RAM of the whole process tree (cgroup) or per process
    output_limit_mb: int = 256            # /output tmpfs (the predictions)
    tmp_limit_mb: int = 512               # /tmp tmpfs (scratch, HOME)
    max_prediction_mb: int = 64           # a larger prediction file is rejected (task scores 0)
    max_zip_mb: int = 2048                # the submitted zip
    max_unpacked_mb: int = 4096           # the zip's declared and actual unpacked size
    max_files: int = 10000                # entries in the zip
    submissions_per_day: int = 5          # per team, by UTC day
    public_fraction: float = 0.5          # share of each task's test items on the public board
    split_seed: int = 0                   # seeds the public/private split
    profile: str = "aij2021"              # scoring profile
    log_tail_lines: int = 50              # stdout/stderr lines kept for the team

    def check(self, path: Path | None = None) -> ChallengeConfig:
        where = path if path is not None else "config"
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "profile":
                if v not in PROFILES:
                    raise UserError(f"profile must be one of {', '.join(PROFILES)}, got {v!r}",
                                    path=where)
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise UserError(f"{f.name} must be a number, got {v!r}", path=where)
            if f.name == "public_fraction":
                if not 0 < v <= 1:
                    raise UserError(f"public_fraction must be in (0, 1], got {v}", path=where)
            elif f.name == "split_seed":
                if v != int(v):
                    raise UserError(f"split_seed must be an integer, got {v}", path=where)
            elif v <= 0:
                raise UserError(f"{f.name} must be positive, got {v}", path=where)
        return self

    def mb(self, name: str) -> int:
        """A ``*_mb`` field in bytes."""
        return int(getattr(self, name) * (1 << 20))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any], path: Path | None = None) -> ChallengeConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise UserError(f"unknown setting(s) {', '.join(unknown)}; known: "
                            f"{', '.join(sorted(known))}", path=path)
        return cls(**obj).check(path)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["time_limit_s=5", "profile=strict"]`` -> a dict of typed values for ChallengeConfig."""
    out: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(ChallengeConfig)}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or name not in fields:
            raise UserError(f"--set {pair!r}: expected NAME=VALUE with NAME one of "
                            f"{', '.join(fields)}")
        default = fields[name].default
        try:
            out[name] = raw if isinstance(default, str) else type(default)(raw)
        except ValueError:
            raise UserError(f"--set {pair!r}: {raw!r} is not a valid "
                            f"{type(default).__name__}") from None
    return out


class Layout:
    """Paths inside an organiser's challenge folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.config = self.root / CONFIG
        self.split = self.root / SPLIT
        self.database = self.root / DATABASE
        self.hidden = self.root / HIDDEN
        self.input = self.hidden / "input"
        self.true = self.hidden / "true"
        self.zips = self.root / ZIPS
        self.runs = self.root / RUNS
        self.work = self.root / WORK

    def check(self) -> Layout:
        if not self.config.is_file() or not self.database.is_file():
            raise UserError("not a challenge folder (no config.json / challenge.sqlite); "
                            "make one with `fusionbrain challenge init`", path=self.root)
        return self

    def load_config(self) -> ChallengeConfig:
        return ChallengeConfig.from_json(read_json(self.config, expect=dict), self.config)

    def save_config(self, cfg: ChallengeConfig) -> None:
        write_json_atomic(self.config, cfg.to_json(), indent=2)
