"""zsOD's plain-Python helper on the model: ``model.detect(images, phrases)``."""

from __future__ import annotations

from typing import Any


def detect(model: Any, images: list, phrases: list[list[str]], batch_size: int = 8
           ) -> list[dict[str, list[list[float]]]]:
    """zsOD: per image, {phrase: [[score, x, y, w, h], ...]} in pixels ([] = absent)."""
    from fusionbrain.tasks.zsod.data import ZsODSample

    if len(images) != len(phrases):
        raise ValueError("detect(): images and phrases differ in length")
    samples = [ZsODSample(id=str(i), image_path=im, phrases={p: [] for p in ps})
               for i, (im, ps) in enumerate(zip(images, phrases, strict=True))]
    return model.predict("zsOD", samples, batch_size=batch_size)


METHODS = {"detect": detect}
