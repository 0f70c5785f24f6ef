"""Small pieces shared by the task heads: learned task prompts and image loading."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch
from PIL import Image
from torch import nn

from fusionbrain.errors import UserError

if TYPE_CHECKING:
    from fusionbrain.model.protocol import HeadModel


class TaskPrompt(nn.Module):
    """``n`` learned prompt embeddings that tell the shared body which task it is doing."""

    def __init__(self, n: int, hidden_size: int, scale: float = 0.02) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n, hidden_size) * scale)

    def forward(self) -> torch.Tensor:
        return self.weight


def embedding_scale(model: HeadModel) -> float:
    """Typical size of one coordinate of the body's token embeddings (init scale for prompts)."""
    return float(model.embedding.weight.detach().float().std())


def open_image(source, mode: str = "RGB") -> Image.Image:
    """A PIL image from a path or a PIL image; a missing/unreadable file is a UserError."""
    if isinstance(source, Image.Image):
        return source.convert(mode)
    try:
        with Image.open(os.fspath(source)) as im:
            return im.convert(mode)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read image: {e}", path=source) from None
