"""zsOD data: the sample type (readers of real datasets are added below it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ZsODSample:
    id: str
    image_path: str
    # phrase -> true boxes [x, y, w, h] in pixels; [] = the phrase is absent from the image
    phrases: dict[str, list[list[float]]] = field(default_factory=dict)
    lang: str = "en"  # "en" or "ru"
