"""Hand-made CTC log-probabilities for decoder tests (imported by test modules)."""

from __future__ import annotations

import torch

from fusionbrain.tasks.htr import charset


def frame_log_probs(frames: list[list[tuple[str, float]]], floor: float) -> torch.Tensor:
    """(1, T, C) log-probabilities: each frame's listed characters get the listed
    probability ("" is the blank), every other class ``floor``, then each frame is
    normalised."""
    rows = []
    for frame in frames:
        p = torch.full((charset.NUM_CLASSES,), floor)
        for ch, prob in frame:
            p[charset.BLANK if ch == "" else charset.encode(ch)[0]] = prob
        rows.append((p / p.sum()).log())
    return torch.stack(rows).unsqueeze(0)
