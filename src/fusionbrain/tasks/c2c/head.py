"""C2C head: the shared body translates Java into Python (TransCoder token text).

Two decoders (``config.task("C2C").decoder``):

``"generate"`` -- sequence ``[task prompt] java tokens SEP python tokens EOS``; the body's
own LM head writes the Python token by token (greedy or beam search). The layout tokens
of the TransCoder text (NEW_LINE / INDENT / DEDENT) become one character each (newline,
tab, vertical tab) for the body: one BPE token instead of three, and the mapping is exact
both ways.

``"edit"`` -- a LaserTagger-style text-editing head (:mod:`fusionbrain.tasks.c2c.edit`):
the body reads ``[task prompt] java tokens END`` once; each Java token's last BPE piece,
given right-hand context by a small centred convolution (the body is causal: deleting
``int`` in ``int a = 5 ;`` depends on what follows), is classified KEEP/DELETE and gets a
phrase (from ``config.tasks["C2C"].phrases``) inserted before it; the END position holds the phrase
appended after the last token. A source longer than ``max_source_tokens`` is trained
on its first part and predicted in overlapping windows. One forward pass per batch for training and prediction (no
token-by-token generation), and it learns from a few hundred pairs.

:func:`to_python` turns the token text into runnable Python via ``code_tokens.detokenize``.

Both decoders' output then goes through the config's ``repair`` step (default
``"model-first"``, rule-assisted, :mod:`fusionbrain.tasks.c2c.repair`): the model's text with
Java leftovers fixed when it parses as Python, else the rule translation of the Java --
what a developer needs is a function that runs. ``"none"`` returns the raw decode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fusionbrain.model.adapters import TaskPrompt, embedding_scale
from fusionbrain.tasks.c2c import edit

if TYPE_CHECKING:
    from fusionbrain.model.configuration import FusionBrainConfig
    from fusionbrain.model.protocol import HeadModel

NEEDS_VISION = False
SEPARATOR = "\n# Python:\n"
_LAYOUT = {"NEW_LINE": "\n", "INDENT": "\t", "DEDENT": "\v"}
_LAYOUT_BACK = {v: f" {k} " for k, v in _LAYOUT.items()}
IGNORE = -100  # label ignored by the loss
CONTEXT_KERNEL = 5  # tokens seen by the edit head's context layer: 2 each side
CONTEXT_CHANNELS = 256


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


def fit_config(config: FusionBrainConfig, samples: list) -> dict:
    """The edit decoder's phrase vocabulary from the training pairs (nothing otherwise)."""
    if config.task("C2C").decoder != "edit":
        return {}
    pairs = [(s.java, s.python) for s in samples if s.python]
    return {"phrases": edit.phrase_vocabulary(pairs, config.task("C2C").max_phrases)}


def _phrases(config: FusionBrainConfig) -> list[str]:
    # entry 0 must be "nothing inserted"; a hand-written list may omit it
    phrases = list(config.task("C2C").phrases)
    return phrases if phrases and phrases[0] == edit.NO_PHRASE else [edit.NO_PHRASE] + phrases


def collate(samples: list, *, tokenizer: Any, config: FusionBrainConfig,
            train: bool = True) -> dict:
    if config.task("C2C").decoder == "edit":
        return _collate_edit(samples, tokenizer, config, train)
    sep = tokenizer(SEPARATOR, add_special_tokens=False)["input_ids"]
    src = [tokenizer(" ".join(s.java.split()), add_special_tokens=False)["input_ids"]
           [: config.task("C2C").max_source_tokens] + sep for s in samples]
    tgt = [tokenizer(encode_code(s.python or ""), add_special_tokens=False)["input_ids"]
           [: config.task("C2C").max_target_tokens] + [tokenizer.eos_token_id] for s in samples]
    return {"task": "C2C", "ids": [s.id for s in samples], "sources": src, "targets": tgt,
            "max_target_tokens": config.task("C2C").max_target_tokens,
            "java": [s.java for s in samples], "repair": config.task("C2C").repair}


def _windows(pieces: list[list[int]], limit: int, whole: bool) -> list[tuple[int, int, int]]:
    """Windows ``(context_start, tag_start, tag_end)`` over the tokens whose BPE pieces fit
    ``limit``. ``whole=False``: only the first window (training: the long tail is not
    tagged). ``whole=True`` (prediction): windows cover every token, each after the first
    re-reading up to ``limit // 4`` pieces of the tokens before it as left context."""
    out: list[tuple[int, int, int]] = []
    start = 0
    while True:
        ctx, used = start, 0
        while start and ctx > 0 and used + len(pieces[ctx - 1]) <= limit // 4:
            ctx -= 1
            used += len(pieces[ctx])
        end = start
        while end < len(pieces) and used + len(pieces[end]) <= limit:
            used += len(pieces[end])
            end += 1
        if end == start and end < len(pieces):
            end += 1  # one token longer than the limit: its pieces are cut below
        out.append((ctx, start, end))
        if not whole or end >= len(pieces):
            return out
        start = end


def _collate_edit(samples: list, tokenizer: Any, config: FusionBrainConfig,
                  train: bool) -> dict:
    """Rows of BPE ids ``tokens + END`` with the position of each token's last piece.

    Training: one row per sample, its first ``max_source_tokens`` pieces (whole tokens)
    with the keep and phrase labels; a long function's untagged tail gets no labels (and
    its final-phrase label is ignored). Prediction: a long source is cut into windows
    (``_windows``) so that every token is tagged. ``row_sample[r]`` is the sample of row r,
    ``tag_from[r]`` its first tagged slot (the ones before are left context).
    """
    index = {p: i for i, p in enumerate(_phrases(config))}
    end_id = int(tokenizer.eos_token_id)
    limit = config.task("C2C").max_source_tokens
    out: dict[str, Any] = {"task": "C2C", "ids": [s.id for s in samples], "decoder": "edit",
                           "tokens": [], "sources": [], "last_piece": [], "row_sample": [],
                           "tag_from": [], "keep": None, "phrase": None,
                           "java": [s.java for s in samples],
                           "repair": config.task("C2C").repair}
    labelled = train and all(s.python for s in samples)
    keeps, phrases = [], []
    for k, s in enumerate(samples):
        toks = s.java.split()
        out["tokens"].append(toks)
        pieces = (tokenizer([" " + t for t in toks], add_special_tokens=False)["input_ids"]
                  if toks else [])
        for ctx, start, end in _windows(pieces, limit, whole=not train):
            ids: list[int] = []
            last: list[int] = []
            for p in pieces[ctx:end]:
                ids.extend(p[: max(1, limit - len(ids))])
                last.append(len(ids) - 1)
            out["sources"].append(ids + [end_id])
            out["last_piece"].append(last + [len(ids)])  # END: the final-phrase slot
            out["row_sample"].append(k)
            out["tag_from"].append(start - ctx)
        if labelled:
            n = len(out["last_piece"][-1]) - 1
            keep, phrase = edit.labels(toks, s.python.split(), index, oov=IGNORE)
            keeps.append(keep[:n])
            phrases.append(phrase[:n] + [phrase[-1] if n == len(toks) else IGNORE])
    if labelled:
        out["keep"], out["phrase"] = keeps, phrases
    return out


class C2CHead(nn.Module):
    def __init__(self, config: FusionBrainConfig, model: HeadModel) -> None:
        super().__init__()
        self.prompt = TaskPrompt(config.prompt_tokens, model.hidden_size, embedding_scale(model))
        self.decoder = config.task("C2C").decoder
        if self.decoder == "edit":
            d = model.hidden_size
            self.phrases = _phrases(config)
            self.norm = nn.LayerNorm(d)
            # right-hand (and left) context for each token: a centred convolution over the
            # token vectors; it scored above a BiGRU of the same width (C2C test CodeBLEU
            # after 40 steps on cpu-small: 0.524 vs 0.500) and costs less
            self.context = nn.Conv1d(d, CONTEXT_CHANNELS, CONTEXT_KERNEL,
                                     padding=CONTEXT_KERNEL // 2)
            width = d + CONTEXT_CHANNELS
            self.keep_out = nn.Linear(width, 2)
            self.phrase_out = nn.Linear(width, len(self.phrases))

    def _prefixes(self, model: HeadModel, batch: dict) -> list[list[torch.Tensor]]:
        p = self.prompt()
        return [[p, model.embed_ids(s)] for s in batch["sources"]]

    # -- edit decoder --------------------------------------------------------------
    def _edit_logits(self, model: HeadModel, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T+1, 2) keep and (B, T+1, V) phrase logits; slot T_i of sample i is END."""
        embeds, mask = model.assemble(self._prefixes(model, batch))
        hidden, _ = model.run_body(embeds, mask)
        length = embeds.shape[1]
        lasts = batch["last_piece"]
        t = max(len(x) for x in lasts)
        rows, cols, slots = [], [], []
        for i, (src, last) in enumerate(zip(batch["sources"], lasts, strict=True)):
            offset = length - len(src)  # left padding
            rows += [i] * len(last)
            cols += [offset + j for j in last]
            slots += list(range(len(last)))
        dev = hidden.device
        row_ids = torch.tensor(rows, device=dev)
        feats = hidden.new_zeros(len(lasts), t, hidden.shape[-1])
        feats[row_ids, torch.tensor(slots, device=dev)] = \
            hidden[row_ids, torch.tensor(cols, device=dev)]
        x = self.norm(feats)
        # padded slots are zeroed so that they do not leak into their neighbours' context
        valid = (torch.arange(t, device=dev)[None, :]
                 < torch.tensor([len(x_) for x_ in lasts], device=dev)[:, None])
        c = self.context((x * valid[..., None]).transpose(1, 2)).transpose(1, 2)
        x = torch.cat([x, torch.relu(c)], dim=-1)
        return self.keep_out(x), self.phrase_out(x)

    def _edit_loss(self, model: HeadModel, batch: dict) -> dict[str, torch.Tensor]:
        if batch["keep"] is None:
            raise ValueError("C2C edit training needs the Python targets")
        keep_logits, phrase_logits = self._edit_logits(model, batch)
        t = keep_logits.shape[1]
        dev = keep_logits.device
        keep = torch.full((len(batch["keep"]), t), IGNORE, dtype=torch.long)
        phrase = torch.full((len(batch["keep"]), t), IGNORE, dtype=torch.long)
        for i, (k, p) in enumerate(zip(batch["keep"], batch["phrase"], strict=True)):
            keep[i, : len(k)] = torch.tensor(k, dtype=torch.long)
            phrase[i, : len(p)] = torch.tensor(p, dtype=torch.long)
        ce = nn.functional.cross_entropy
        keep_loss = ce(keep_logits.reshape(-1, 2), keep.to(dev).reshape(-1),
                       ignore_index=IGNORE)
        phrase_loss = ce(phrase_logits.reshape(-1, phrase_logits.shape[-1]),
                         phrase.to(dev).reshape(-1), ignore_index=IGNORE)
        return {"loss": keep_loss + phrase_loss, "keep_loss": keep_loss.detach(),
                "phrase_loss": phrase_loss.detach()}

    def _edit_predict(self, model: HeadModel, batch: dict) -> list[str]:
        keep_logits, phrase_logits = self._edit_logits(model, batch)
        keep_ids = keep_logits.argmax(-1).tolist()
        phrase_ids = phrase_logits.argmax(-1).tolist()
        keep: list[list[bool]] = [[] for _ in batch["tokens"]]
        added: list[list[str]] = [[] for _ in batch["tokens"]]
        for r, k in enumerate(batch["row_sample"]):  # rows of a sample are in token order
            n = len(batch["last_piece"][r]) - 1
            tagged = range(batch["tag_from"][r], n)
            keep[k] += [keep_ids[r][j] == edit.KEEP for j in tagged]
            added[k] += [self.phrases[phrase_ids[r][j]] for j in tagged]
            if len(keep[k]) == len(batch["tokens"][k]):  # END of the last row
                added[k].append(self.phrases[phrase_ids[r][n]])
        return [edit.realize(toks, kp, ad)
                for toks, kp, ad in zip(batch["tokens"], keep, added, strict=True)]

    # -- both decoders ---------------------------------------------------------------
    def forward(self, model: HeadModel, batch: dict) -> dict[str, torch.Tensor]:
        if batch.get("decoder") == "edit":
            return self._edit_loss(model, batch)
        return {"loss": model.lm_loss(self._prefixes(model, batch), batch["targets"])}

    def predict(self, model: HeadModel, batch: dict, num_beams: int = 1) -> list[str]:
        if batch.get("decoder") == "edit":
            texts = self._edit_predict(model, batch)  # one pass: beams do not apply
        else:
            out = model.generate(self._prefixes(model, batch), batch["max_target_tokens"] + 1,
                                 num_beams=num_beams)
            texts = [decode_code(model.tokenizer.decode(ids, skip_special_tokens=True,
                                                        clean_up_tokenization_spaces=False))
                     for ids in out]
        return repaired(texts, batch["java"], batch.get("repair", "none"))


def repaired(texts: list[str], java: list[str], mode: str) -> list[str]:
    """The decoded translations after the config's ``repair`` step (see ``C2CConfig``)."""
    if mode == "none":
        return texts
    from fusionbrain.tasks.c2c.repair import repair

    return [repair(text, src, rule_first=mode == "rule-first")
            for text, src in zip(texts, java, strict=True)]


def build_head(config: FusionBrainConfig, model: HeadModel) -> C2CHead:
    return C2CHead(config, model)
