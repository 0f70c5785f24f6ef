"""C2C's config: source/target lengths and the decoder (``FusionBrainConfig.tasks["C2C"]``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from fusionbrain.tasks.base import TaskConfig


@dataclass
class C2CConfig(TaskConfig):
    LEGACY_PREFIX: ClassVar[str] = "c2c_"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # a cut body's outputs are far from its LM head's space: edit the Java tokens
        "cpu-small": {"max_source_tokens": 128, "max_target_tokens": 128, "decoder": "edit"},
        "tiny": {"max_source_tokens": 32, "max_target_tokens": 24},
    }
    POSITIVE: ClassVar[tuple[str, ...]] = ("max_source_tokens", "max_target_tokens",
                                           "max_phrases")
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "decoder": ("generate", "edit"), "repair": ("none", "model-first", "rule-first")}
    STRING_LISTS: ClassVar[tuple[str, ...]] = ("phrases",)

    max_source_tokens: int = 160
    max_target_tokens: int = 160
    # "generate": the body writes the Python token by token; "edit": every Java token is
    # kept or deleted and gets an inserted phrase from ``phrases`` (filled in from the
    # training pairs by ``fit_config``), a text-editing head that learns from few examples
    decoder: str = "generate"
    phrases: list[str] = field(default_factory=list)
    max_phrases: int = 500
    # what a prediction goes through before it is returned (``tasks/c2c/repair.py``,
    # rule-assisted): "model-first" keeps the model's text (with Java leftovers fixed line
    # by line) when it parses as Python and falls back to the rule translation of the Java
    # otherwise; "rule-first" prefers the rule translation; "none" returns the raw decode
    repair: str = "model-first"


CONFIG = C2CConfig
