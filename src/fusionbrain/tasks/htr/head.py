"""HTR head: conv adapter over the word image -> one token per column group -> body -> CTC.

Sequence fed to the shared body: ``[task prompt] [instruction text] [column tokens]``.
The body's outputs at the column positions go through a linear layer to the charset
(+ blank) and are trained with CTC; decoding is greedy CTC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from fusionbrain.model.adapters import TaskPrompt, embedding_scale, open_image
from fusionbrain.tasks.htr import charset

if TYPE_CHECKING:
    from fusionbrain.model.configuration import FusionBrainConfig

NEEDS_VISION = False
# A short text instruction: the task reads its own tokens through the body's embeddings.
INSTRUCTION = "Handwriting:"


def _load_line(source: Any, height: int, max_width: int, group: int) -> np.ndarray:
    """Grayscale, fixed height, aspect kept, ink = 1.0 and background = 0.0."""
    im = open_image(source, "L")
    w, h = im.size
    new_w = max(group, min(max_width, round(w * height / max(1, h))))
    im = im.resize((new_w, height), Image.BILINEAR)
    a = np.asarray(im, dtype=np.float32) / 255.0
    # dark ink on light paper is the norm; flip if the image is light-on-dark
    if a.mean() < 0.5:
        a = 1.0 - a
    return 1.0 - a


def collate(samples: list, *, tokenizer: Any, config: FusionBrainConfig,
            train: bool = True) -> dict:
    """Images padded (background) on the right to the batch's widest; CTC targets."""
    g = config.htr_column_group
    lines = [_load_line(s.image_path, config.htr_height, config.htr_max_width, g)
             for s in samples]
    width = max(a.shape[1] for a in lines)
    width = -(-width // g) * g
    images = np.zeros((len(lines), 1, config.htr_height, width), dtype=np.float32)
    for i, a in enumerate(lines):
        images[i, 0, :, : a.shape[1]] = a
    input_lengths = [-(-a.shape[1] // g) for a in lines]
    targets = [charset.encode(s.text or "") for s in samples]
    return {
        "task": "HTR",
        "ids": [s.id for s in samples],
        "images": torch.from_numpy(images),
        "input_lengths": torch.tensor(input_lengths, dtype=torch.long),
        "targets": torch.tensor([c for t in targets for c in t], dtype=torch.long),
        "target_lengths": torch.tensor([len(t) for t in targets], dtype=torch.long),
        "texts": [s.text for s in samples],
        "instruction": tokenizer(INSTRUCTION, add_special_tokens=False)["input_ids"],
    }


class ColumnAdapter(nn.Module):
    """(B, 1, H, W) -> (B, W / group, D): a light CNN, width reduced by ``group``."""

    def __init__(self, channels: int, hidden_size: int, group: int,
                 token_scale: float = 1.0) -> None:
        super().__init__()
        c = channels
        layers: list[nn.Module] = [nn.Conv2d(1, c // 2, 3, padding=1), nn.GELU()]
        # halve the width log2(group) times (group is a power of two), height each time too
        steps = max(0, int(round(np.log2(group))))
        cin = c // 2
        for _ in range(steps):
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.GroupNorm(4, c), nn.GELU(),
                       nn.MaxPool2d(2, 2)]
            cin = c
        layers += [nn.Conv2d(cin, c, 3, padding=1), nn.GELU()]
        self.cnn = nn.Sequential(*layers)
        self.squash = nn.AdaptiveAvgPool2d((4, None))  # any height -> 4 rows
        self.proj = nn.Linear(4 * c, hidden_size)
        # column tokens start at the size of the body's text token embeddings
        self.out_norm = nn.LayerNorm(hidden_size)
        with torch.no_grad():
            self.out_norm.weight.fill_(token_scale)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        f = self.squash(self.cnn(images))  # (B, C, 4, W/g)
        b, c, h, w = f.shape
        return self.out_norm(self.proj(f.permute(0, 3, 1, 2).reshape(b, w, c * h)))


class HTRHead(nn.Module):
    def __init__(self, config: FusionBrainConfig, model: Any) -> None:
        super().__init__()
        d = model.hidden_size
        scale = embedding_scale(model)
        self.prompt = TaskPrompt(config.prompt_tokens, d, scale)
        self.adapter = ColumnAdapter(config.htr_channels, d, config.htr_column_group, scale)
        self.out = nn.Linear(d, charset.NUM_CLASSES)
        self.ctc = nn.CTCLoss(blank=charset.BLANK, zero_infinity=True)

    def _logits(self, model: Any, batch: dict) -> torch.Tensor:
        cols = self.adapter(batch["images"].to(model.device))  # (B, T, D)
        b, t, _ = cols.shape
        prefix = torch.cat([self.prompt(), model.embed_ids(batch["instruction"])], 0)
        embeds = torch.cat([prefix.unsqueeze(0).expand(b, -1, -1), cols], 1)
        # every row has the same length (padding columns are blank paper): no mask needed
        hidden, _ = model.run_body(embeds)
        return self.out(hidden[:, -t:])  # (B, T, classes)

    def forward(self, model: Any, batch: dict) -> dict[str, torch.Tensor]:
        logits = self._logits(model, batch)
        logp = torch.log_softmax(logits.float(), -1).transpose(0, 1)  # (T, B, C) for CTC
        loss = self.ctc(logp, batch["targets"].to(logp.device), batch["input_lengths"],
                        batch["target_lengths"])
        return {"loss": loss}

    def predict(self, model: Any, batch: dict) -> list[str]:
        best = self._logits(model, batch).argmax(-1).cpu()
        return [charset.ctc_greedy(best[i, : int(n)].tolist())
                for i, n in enumerate(batch["input_lengths"])]


def build_head(config: FusionBrainConfig, model: Any) -> HTRHead:
    return HTRHead(config, model)
