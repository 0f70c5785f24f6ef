"""C2C data: the sample type (readers of real datasets are added below it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class C2CSample:
    id: str
    java: str  # Java source, tokens separated by spaces (TransCoder style) or raw
    python: str  # TransCoder-style Python: tokens + NEW_LINE / INDENT / DEDENT; "" when unknown
