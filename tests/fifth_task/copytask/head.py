"""COPY head: the body writes the text back after a task prompt (the body's LM head)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fusionbrain.model.adapters import TaskPrompt, embedding_scale

if TYPE_CHECKING:
    from fusionbrain.model.configuration import FusionBrainConfig
    from fusionbrain.model.protocol import HeadModel

NEEDS_VISION = False


def collate(samples: list, *, tokenizer: Any, config: FusionBrainConfig,
            train: bool = True) -> dict:
    n = config.task("COPY").max_tokens
    src = [tokenizer(s.text, add_special_tokens=False)["input_ids"][:n] for s in samples]
    tgt = [ids + [tokenizer.eos_token_id] for ids in src]
    return {"task": "COPY", "ids": [s.id for s in samples], "sources": src, "targets": tgt,
            "max_tokens": n}


class CopyHead(nn.Module):
    def __init__(self, config: FusionBrainConfig, model: HeadModel) -> None:
        super().__init__()
        self.prompt = TaskPrompt(config.prompt_tokens, model.hidden_size, embedding_scale(model))

    def _prefixes(self, model: HeadModel, batch: dict) -> list[list[torch.Tensor]]:
        p = self.prompt()
        return [[p, model.embed_ids(s)] for s in batch["sources"]]

    def forward(self, model: HeadModel, batch: dict) -> dict[str, torch.Tensor]:
        return {"loss": model.lm_loss(self._prefixes(model, batch), batch["targets"])}

    def predict(self, model: HeadModel, batch: dict) -> list[str]:
        out = model.generate(self._prefixes(model, batch), batch["max_tokens"] + 1)
        return [model.tokenizer.decode(ids, skip_special_tokens=True) for ids in out]


def build_head(config: FusionBrainConfig, model: HeadModel) -> CopyHead:
    return CopyHead(config, model)
