"""The FusionBrain model: config (torch-free), body, vision encoder, the model itself.

``from fusionbrain.model import FusionBrain`` imports torch lazily (only on first use).
"""

from __future__ import annotations

from typing import Any

from fusionbrain.model.configuration import PRESETS, FusionBrainConfig, preset, resolve_config

__all__ = ["PRESETS", "FusionBrain", "FusionBrainConfig", "preset", "resolve_config"]


def __getattr__(name: str) -> Any:
    if name == "FusionBrain":
        from fusionbrain.model.modeling_fusionbrain import FusionBrain

        return FusionBrain
    raise AttributeError(name)
