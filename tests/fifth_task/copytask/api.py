"""COPY's helper on the model: ``model.copy_text(texts)``."""

from __future__ import annotations

from typing import Any


def copy_text(model: Any, texts: list[str], batch_size: int = 16) -> list[str]:
    from copytask.data import CopySample

    samples = [CopySample(str(i), t) for i, t in enumerate(texts)]
    return model.predict("COPY", samples, batch_size=batch_size)


METHODS = {"copy_text": copy_text}
