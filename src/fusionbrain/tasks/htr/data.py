"""HTR data: the sample type (readers of real datasets are added below it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class HTRSample:
    id: str
    image_path: str  # a word or line image (any mode; heads convert to grayscale)
    text: str  # the transcription; "" when unknown (challenge input)
    lang: str  # "en" or "ru"
