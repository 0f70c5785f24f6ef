"""VQA head: the shared body generates the answer after ``[prompt] [image tokens] question``.

Image tokens come from the shared vision encoder; the answer is produced by the body's
own (frozen, tied) LM head, so the head itself is only a learned task prompt. EN and RU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fusionbrain.model.adapters import TaskPrompt, embedding_scale, open_image
from fusionbrain.model.vision import image_key, preprocess

if TYPE_CHECKING:
    from fusionbrain.model.configuration import FusionBrainConfig

NEEDS_VISION = True
SEPARATOR = " Answer:"


def question_ids(tokenizer: Any, question: str, max_tokens: int) -> list[int]:
    q = tokenizer(" ".join(question.split()), add_special_tokens=False)["input_ids"][:max_tokens]
    return q + tokenizer(SEPARATOR, add_special_tokens=False)["input_ids"]


def answer_ids(tokenizer: Any, answer: str, max_tokens: int) -> list[int]:
    """Answer tokens (leading space, as after ``Answer:``) + EOS."""
    a = tokenizer(" " + " ".join(answer.split()), add_special_tokens=False)["input_ids"]
    return a[:max_tokens] + [tokenizer.eos_token_id]


def collate(samples: list, *, tokenizer: Any, config: FusionBrainConfig,
            train: bool = True) -> dict:
    images = [open_image(s.image_path) for s in samples]
    return {
        "task": "VQA",
        "ids": [s.id for s in samples],
        "pixels": preprocess(images, config.image_size),
            "image_keys": [image_key(s.image_path) for s in samples],
        "questions": [question_ids(tokenizer, s.question, config.vqa_max_question_tokens)
                      for s in samples],
        "answers": [answer_ids(tokenizer, s.answers[0] if s.answers else "",
                               config.vqa_max_answer_tokens) for s in samples],
        "max_answer_tokens": config.vqa_max_answer_tokens,
    }


class VQAHead(nn.Module):
    def __init__(self, config: FusionBrainConfig, model: Any) -> None:
        super().__init__()
        self.prompt = TaskPrompt(config.prompt_tokens, model.hidden_size, embedding_scale(model))

    def _prefixes(self, model: Any, batch: dict) -> list[list[torch.Tensor]]:
        img = model.encode_images(batch["pixels"], batch.get("image_keys"))
        p = self.prompt()
        return [[p, img[i], model.embed_ids(q)] for i, q in enumerate(batch["questions"])]

    def forward(self, model: Any, batch: dict) -> dict[str, torch.Tensor]:
        return {"loss": model.lm_loss(self._prefixes(model, batch), batch["answers"])}

    def predict(self, model: Any, batch: dict, num_beams: int = 1) -> list[str]:
        out = model.generate(self._prefixes(model, batch), batch["max_answer_tokens"] + 1,
                             num_beams=num_beams)
        return [" ".join(model.tokenizer.decode(ids, skip_special_tokens=True,
                                             clean_up_tokenization_spaces=False).split())
                for ids in out]


def build_head(config: FusionBrainConfig, model: Any) -> VQAHead:
    return VQAHead(config, model)
