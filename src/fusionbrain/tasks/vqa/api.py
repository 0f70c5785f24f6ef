"""VQA's plain-Python helper on the model: ``model.answer(images, questions)``."""

from __future__ import annotations

from typing import Any


def answer(model: Any, images: list, questions: list[str], batch_size: int = 16) -> list[str]:
    """VQA: one answer per (image, question), EN or RU."""
    from fusionbrain.tasks.vqa.data import VQASample

    if len(images) != len(questions):
        raise ValueError("answer(): images and questions differ in length")
    samples = [VQASample(id=str(i), image_path=im, question=q)
               for i, (im, q) in enumerate(zip(images, questions, strict=True))]
    return model.predict("VQA", samples, batch_size=batch_size)


METHODS = {"answer": answer}
