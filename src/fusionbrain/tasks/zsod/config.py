"""zsOD's config: the dense box head and its losses (``FusionBrainConfig.tasks["zsOD"]``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from fusionbrain.tasks.base import TaskConfig


@dataclass
class ZsODConfig(TaskConfig):
    LEGACY_PREFIX: ClassVar[str] = "zsod_"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {"max_phrase_tokens": 8}}
    POSITIVE: ClassVar[tuple[str, ...]] = ("map_channels", "max_boxes", "max_phrase_tokens")
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("loss_l1", "loss_giou", "loss_score")
    FRACTION: ClassVar[tuple[str, ...]] = ("score_threshold", "peak_ratio")

    map_channels: int = 128  # width of the dense head's cell features
    peak_ratio: float = 0.3  # a further box needs this share of the best cell's score
    max_boxes: int = 2  # boxes per present phrase at most
    max_phrase_tokens: int = 24
    # P(present) from which a phrase gets boxes: low, because an FP costs less in F1 than
    # a missed box (valid F1 after 100 cpu-small steps: 0.17 at 0.2, 0.10 at 0.5)
    score_threshold: float = 0.2
    loss_l1: float = 5.0
    loss_giou: float = 2.0
    loss_score: float = 1.0


CONFIG = ZsODConfig
