"""C2C's plain-Python helper on the model: ``model.translate(java)``."""

from __future__ import annotations

from typing import Any


def translate(model: Any, java: list[str], num_beams: int = 1, batch_size: int = 8) -> list[str]:
    """C2C: TransCoder-style Python token text for each Java source."""
    from fusionbrain.tasks.c2c.data import C2CSample

    samples = [C2CSample(id=str(i), java=j, python="") for i, j in enumerate(java)]
    return model.predict("C2C", samples, batch_size=batch_size, num_beams=num_beams)


METHODS = {"translate": translate}
