"""Dataset sizes of the embedded default (``fusionbrain data build --size``)."""

from __future__ import annotations

from typing import TypeVar

from fusionbrain.errors import UserError

# "tiny" is for tests (hidden in --help); the others are for users.
SIZES: tuple[str, ...] = ("tiny", "small", "medium", "large")
PUBLIC_SIZES: tuple[str, ...] = ("small", "medium", "large")
SPLITS: tuple[str, ...] = ("train", "valid", "test")

T = TypeVar("T")


def check_size(size: str) -> str:
    if size not in SIZES:
        raise UserError(f"unknown size {size!r}; expected one of {', '.join(PUBLIC_SIZES)}")
    return size


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return split


def pick(table: dict[str, dict[str, T]], size: str, split: str) -> T:
    """``table[size][split]`` after checking both names."""
    return table[check_size(size)][check_split(split)]
