"""C2C head: the shared body generates Python (TransCoder token text) after the Java source.

Sequence: ``[task prompt] java tokens SEP python tokens EOS``. The layout tokens of the
TransCoder text (NEW_LINE / INDENT / DEDENT) become one character each (newline, tab,
vertical tab) for the body: one BPE token instead of three, and the mapping is exact
both ways. Greedy and beam-search decoding; :func:`to_python` turns the token text into
runnable Python via ``code_tokens.detokenize``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fusionbrain.model.adapters import TaskPrompt, embedding_scale

if TYPE_CHECKING:
    from fusionbrain.model.configuration import FusionBrainConfig

NEEDS_VISION = False
SEPARATOR = "\n# Python:\n"
_LAYOUT = {"NEW_LINE": "\n", "INDENT": "\t", "DEDENT": "\v"}
_LAYOUT_BACK = {v: f" {k} " for k, v in _LAYOUT.items()}


def encode_code(token_text: str) -> str:
    """TransCoder token text -> the compact text the body reads and writes."""
    out: list[str] = []
    for tok in token_text.split():
        if tok in _LAYOUT:
            out.append(_LAYOUT[tok])
        elif out and out[-1] not in _LAYOUT_BACK:
            out.append(" " + tok)
        else:
            out.append(tok)
    return "".join(out)


def decode_code(text: str) -> str:
    """Inverse of :func:`encode_code`: compact text -> TransCoder token text."""
    for ch, word in _LAYOUT_BACK.items():
        text = text.replace(ch, word)
    return " ".join(text.split())


def to_python(token_text: str) -> str:
    """TransCoder token text -> runnable Python source (needs ``code_tokens.detokenize``)."""
    from fusionbrain.tasks.c2c.code_tokens import detokenize

    return detokenize(token_text)


def collate(samples: list, *, tokenizer: Any, config: FusionBrainConfig,
            train: bool = True) -> dict:
    sep = tokenizer(SEPARATOR, add_special_tokens=False)["input_ids"]
    src = [tokenizer(" ".join(s.java.split()), add_special_tokens=False)["input_ids"]
           [: config.c2c_max_source_tokens] + sep for s in samples]
    tgt = [tokenizer(encode_code(s.python or ""), add_special_tokens=False)["input_ids"]
           [: config.c2c_max_target_tokens] + [tokenizer.eos_token_id] for s in samples]
    return {"task": "C2C", "ids": [s.id for s in samples], "sources": src, "targets": tgt,
            "max_target_tokens": config.c2c_max_target_tokens}


class C2CHead(nn.Module):
    def __init__(self, config: FusionBrainConfig, model: Any) -> None:
        super().__init__()
        self.prompt = TaskPrompt(config.prompt_tokens, model.hidden_size, embedding_scale(model))

    def _prefixes(self, model: Any, batch: dict) -> list[list[torch.Tensor]]:
        p = self.prompt()
        return [[p, model.embed_ids(s)] for s in batch["sources"]]

    def forward(self, model: Any, batch: dict) -> dict[str, torch.Tensor]:
        return {"loss": model.lm_loss(self._prefixes(model, batch), batch["targets"])}

    def predict(self, model: Any, batch: dict, num_beams: int = 1) -> list[str]:
        out = model.generate(self._prefixes(model, batch), batch["max_target_tokens"] + 1,
                             num_beams=num_beams)
        return [decode_code(model.tokenizer.decode(ids, skip_special_tokens=True,
                                             clean_up_tokenization_spaces=False))
                for ids in out]


def build_head(config: FusionBrainConfig, model: Any) -> C2CHead:
    return C2CHead(config, model)
