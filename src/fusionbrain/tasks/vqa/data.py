"""VQA data: the sample type (readers of real datasets are added below it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class VQASample:
    id: str
    image_path: str
    question: str
    answers: list[str] = field(default_factory=list)  # first = canonical; ten for VQA v2
    lang: str = "en"  # "en" or "ru"
    question_type: str = ""  # e.g. count, colour, shape, exist, spatial ("" when unknown)
