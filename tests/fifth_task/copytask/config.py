"""COPY's config (``FusionBrainConfig.tasks["COPY"]``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from fusionbrain.tasks.base import TaskConfig


@dataclass
class CopyConfig(TaskConfig):
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {"max_tokens": 8}}
    POSITIVE: ClassVar[tuple[str, ...]] = ("max_tokens",)

    max_tokens: int = 16


CONFIG = CopyConfig
