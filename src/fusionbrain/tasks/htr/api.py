"""HTR's plain-Python helper on the model: ``model.read_text(images)``."""

from __future__ import annotations

from typing import Any


def read_text(model: Any, images: list, batch_size: int = 16) -> list[str]:
    """HTR: transcriptions of word/line images (PIL images or paths)."""
    from fusionbrain.tasks.htr.data import HTRSample

    samples = [HTRSample(id=str(i), image_path=im, text="", lang="") for i, im in enumerate(images)]
    return model.predict("HTR", samples, batch_size=batch_size)


METHODS = {"read_text": read_text}
