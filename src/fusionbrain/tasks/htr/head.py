"""HTR head: CRNN adapter over the word image -> column tokens -> body -> CTC.

Sequence fed to the shared body: ``[task prompt] [instruction text] [column tokens]``.

The adapter is CRNN practice: a small CNN (receptive field ~ one character)
that leaves one feature vector per ``column_group`` pixels of width, then a BiLSTM
over the columns, so every column already sees the whole word (the body is causal: a
column token there only sees its left). The CTC classifier reads both the adapter's
bidirectional features and the body's output at the same column (a residual path):
from scratch CTC sits in the "all blank" phase for hundreds of steps. Two extra losses
aim at a faster start: an auxiliary CTC on the adapter features alone, and a
cross-entropy on a flat-start alignment (each character at the centre of its equal
share of the ink, blank elsewhere).

To keep the body cheap, ``body_pool`` adjacent columns (concatenated, projected)
make one body token; the body's outputs are repeated back to the CTC column rate.

A short run can warm the adapter up without the body (``body_warmup``, a fraction of the
run): the body is most of a step's cost, so the adapter gets ~4x the steps in that time;
then the body's residual joins from zero.

Options (``tasks/htr/config.py``, ``config.tasks["HTR"]``): ``body_pool``, ``rnn_hidden``
(per direction), ``aux_ctc``, ``align_ce``, ``augment`` (random horizontal stretch of
training images), ``body_warmup``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from fusionbrain.model.adapters import TaskPrompt, embedding_scale, open_image
from fusionbrain.tasks.htr import charset
from fusionbrain.tasks.htr.lm import FILE_NAME as LM_FILE
from fusionbrain.tasks.htr.lm import CharNgramLM, beam_decode

if TYPE_CHECKING:
    from fusionbrain.model.configuration import FusionBrainConfig
    from fusionbrain.model.protocol import HeadModel

NEEDS_VISION = False
# A short text instruction: the task reads its own tokens through the body's embeddings.
INSTRUCTION = "Handwriting:"


def _ink(a: np.ndarray) -> np.ndarray:
    """Grayscale in [0, 1] -> ink map: paper (and faint ruling) ~0, strokes ~1.

    The word images have grey paper, ruled lines and varying pen darkness: a per-image
    contrast stretch between the paper level and the darkest strokes puts every image
    on the same scale (the CNN's per-pixel norms cannot).
    """
    if a.mean() < 0.5:  # light ink on dark paper: flip to the usual dark-on-light
        a = 1.0 - a
    paper = float(np.percentile(a, 60))
    dark = float(np.percentile(a, 1))
    span = max(paper - dark, 0.1)
    return np.clip((paper - a) / span, 0.0, 1.0)


def _load_line(source: Any, height: int, max_width: int, group: int,
               stretch: float = 1.0) -> np.ndarray:
    """Fixed height, aspect kept (times ``stretch``), ink = 1.0 and background = 0.0."""
    im = open_image(source, "L")
    w, h = im.size
    new_w = max(group, min(max_width, round(w * stretch * height / max(1, h))))
    im = im.resize((new_w, height), Image.BILINEAR)
    return _ink(np.asarray(im, dtype=np.float32) / 255.0)


def _frame_targets(ink: np.ndarray, ids: list[int], group: int, frames: int) -> np.ndarray:
    """A flat-start alignment: each character at the centre of its equal share of the ink.

    Frame labels (blank elsewhere) for a cross-entropy loss that teaches the columns
    *which* character they show from the first step; CTC alone must first discover the
    alignment and sits in the all-blank phase for longer than the training budget.
    """
    out = np.zeros(frames, dtype=np.int64)  # blank
    if not ids:
        return out
    strokes = ink > 0.5
    # form lines are not letters: rows inked over most of the width (ruling, a box's
    # edges) and columns inked over most of the height (box walls) do not count as ink
    strokes[strokes.mean(1) > 0.6, :] = False
    strokes[:, strokes.mean(0) > 0.8] = False
    cols = np.flatnonzero(strokes.any(0))
    first, last = (int(cols[0]), int(cols[-1]) + 1) if len(cols) else (0, ink.shape[1])
    span = (last - first) / len(ids)
    for k, c in enumerate(ids):
        out[min(frames - 1, int((first + (k + 0.5) * span) // group))] = c
    return out


def _unit(config: Any) -> int:
    """Image width per body token (pixels): the batch width is a multiple of it."""
    return config.task("HTR").column_group * config.task("HTR").body_pool


def collate(samples: list, *, tokenizer: Any, config: FusionBrainConfig,
            train: bool = True) -> dict:
    """Images padded (background) on the right to the batch's widest; CTC targets.

    Training images get a light random horizontal stretch (handwriting width varies).
    """
    g = config.task("HTR").column_group
    aug = float(config.task("HTR").augment) if train else 0.0
    # drawn from numpy's global RNG, which the trainer seeds per step: exact resume
    rng = np.random.default_rng(np.random.randint(2**31)) if aug > 0 else None
    lines = [_load_line(s.image_path, config.task("HTR").height, config.task("HTR").max_width, g,
                        float(rng.uniform(1 - aug, 1 + aug)) if rng is not None else 1.0)
             for s in samples]
    unit = _unit(config)
    width = max(a.shape[1] for a in lines)
    width = -(-width // unit) * unit
    images = np.zeros((len(lines), 1, config.task("HTR").height, width), dtype=np.float32)
    for i, a in enumerate(lines):
        images[i, 0, :, : a.shape[1]] = a
    input_lengths = [-(-a.shape[1] // g) for a in lines]
    targets = [charset.encode(s.text or "") for s in samples]
    frames = width // g
    align = np.full((len(lines), frames), -100, dtype=np.int64)  # -100: padding, ignored
    for i, (a, t, n) in enumerate(zip(lines, targets, input_lengths, strict=True)):
        align[i, :n] = _frame_targets(a, t, g, n)
    return {
        "task": "HTR",
        "ids": [s.id for s in samples],
        "images": torch.from_numpy(images),
        "widths": torch.tensor([a.shape[1] for a in lines], dtype=torch.long),
        "input_lengths": torch.tensor(input_lengths, dtype=torch.long),
        "targets": torch.tensor([c for t in targets for c in t], dtype=torch.long),
        "target_lengths": torch.tensor([len(t) for t in targets], dtype=torch.long),
        "frame_targets": torch.from_numpy(align),
        "texts": [s.text for s in samples],
        "instruction": tokenizer(INSTRUCTION, add_special_tokens=False)["input_ids"],
    }


def _conv(cin: int, cout: int) -> list[nn.Module]:
    # BatchNorm: by far the fastest start of the norms tried (a per-pixel channel norm
    # or none barely moved in 40 steps); in eval mode it is a fixed per-channel affine,
    # so a prediction still does not depend on its batch mates
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class ColumnAdapter(nn.Module):
    """(B, 1, H, W) -> (B, W / group, F): CNN (width / group) + BiLSTM over the columns.

    Activations right of each image's own width are zeroed after every conv block, as the
    convolution's zero padding does at the image edge: a word's features are the same
    alone or next to wider batch mates.
    """

    def __init__(self, channels: int, group: int, rnn_hidden: int, depth: int = 1) -> None:
        super().__init__()
        c = channels
        # stages of (pool before, conv x depth): halve width and height log2(group) times
        # (group is a power of two); the channels stay at ``channels``: the adapter costs
        # little next to the body
        steps = max(0, int(round(np.log2(group))))
        stages: list[nn.Module] = [nn.Sequential(*_conv(1, c // 2))]
        cin = c // 2
        for _ in range(steps):
            layers = [nn.MaxPool2d(2, 2), *_conv(cin, c)]
            for _ in range(depth - 1):
                layers += _conv(c, c)
            stages.append(nn.Sequential(*layers))
            cin = c
        # one more conv (receptive field ~ a character) and height-only pooling
        stages.append(nn.Sequential(*_conv(cin, cin), nn.MaxPool2d((2, 1), (2, 1))))
        self.stages = nn.ModuleList(stages)
        self.squash = nn.AdaptiveAvgPool2d((2, None))  # any height -> 2 rows
        self.proj = nn.Linear(2 * cin, 2 * rnn_hidden)
        self.rnn = nn.LSTM(2 * rnn_hidden, rnn_hidden, batch_first=True, bidirectional=True)
        self.out_size = 2 * rnn_hidden

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        x = images
        widths = widths.to(images.device).view(-1, 1)
        for stage in self.stages:
            x = stage(x)
            scale = images.shape[-1] / x.shape[-1]
            cols = torch.arange(x.shape[-1], device=x.device).view(1, -1)
            keep = (cols * scale < widths).to(x.dtype)  # (B, W'): column starts inside
            x = x * keep[:, None, None, :]
        f = self.squash(x)  # (B, C, 2, W/g)
        b, c, h, w = f.shape
        x = torch.relu(self.proj(f.permute(0, 3, 1, 2).reshape(b, w, c * h)))
        # packed: the backward direction starts at each word's own end, not the padding
        lengths = torch.ceil(widths.view(-1).float() * w / images.shape[-1]).long()
        packed = pack_padded_sequence(x, lengths.clamp(1, w).cpu(), batch_first=True,
                                      enforce_sorted=False)
        y, _ = self.rnn(packed)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=w)
        return x + y  # residual: the CNN features reach the classifier directly too


class HTRHead(nn.Module):
    def __init__(self, config: FusionBrainConfig, model: HeadModel) -> None:
        super().__init__()
        d = model.hidden_size
        scale = embedding_scale(model)
        self.pool = config.task("HTR").body_pool
        self.aux_weight = config.task("HTR").aux_ctc
        self.align_weight = config.task("HTR").align_ce
        self.align_until = config.task("HTR").align_ce_until
        self.one_script = config.task("HTR").one_script
        self.progress = 0.0
        cfg = config.task("HTR")
        self.body_warmup = cfg.body_warmup
        self.decoding = {"lm_weight": cfg.lm_weight, "length_bonus": cfg.lm_length_bonus,
                         "width": cfg.beam_width}
        self.beam, self.lm_order = cfg.decode == "beam", cfg.lm_order
        self.lm: CharNgramLM | None = None  # fitted on the training texts: :meth:`fit_data`
        hidden = config.task("HTR").rnn_hidden
        self.prompt = TaskPrompt(config.prompt_tokens, d, scale)
        self.adapter = ColumnAdapter(config.task("HTR").channels, config.task("HTR").column_group,
                                     hidden, depth=config.task("HTR").depth)
        self.register_buffer("script_masks", torch.tensor(list(charset.script_masks().values())),
                             persistent=False)
        f = self.adapter.out_size
        # column features -> body tokens at the size of the body's text token embeddings
        self.to_body = nn.Linear(f * self.pool, d)
        self.to_body_norm = nn.LayerNorm(d)
        with torch.no_grad():
            self.to_body_norm.weight.fill_(scale)
        self.from_body = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, f))
        if self.body_warmup > 0:  # the body joins a trained adapter: its residual starts at 0
            nn.init.zeros_(self.from_body[1].weight)
            nn.init.zeros_(self.from_body[1].bias)
        self.out = nn.Linear(f, charset.NUM_CLASSES)
        self.aux_out = nn.Linear(f, charset.NUM_CLASSES)
        self.ctc = nn.CTCLoss(blank=charset.BLANK, zero_infinity=True)

    def _logits(self, model: HeadModel, batch: dict, aux: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        feats = self.adapter(batch["images"].to(model.device), batch["widths"])
        if self.training and self.progress < self.body_warmup:  # the adapter's warm-up
            return self.out(feats), (self.aux_out(feats) if aux else None)
        b, t, f = feats.shape  # t is a multiple of the pool (collate pads to it)
        cols = self.to_body_norm(self.to_body(feats.reshape(b, t // self.pool, self.pool * f)))
        prefix = torch.cat([self.prompt(), model.embed_ids(batch["instruction"])], 0)
        embeds = torch.cat([prefix.unsqueeze(0).expand(b, -1, -1), cols.to(prefix.dtype)], 1)
        # every row has the same length (padding columns are blank paper): no mask needed
        hidden, _ = model.run_body(embeds)
        body = self.from_body(hidden[:, -cols.shape[1]:])
        body = body.repeat_interleave(self.pool, dim=1)  # back to the CTC column rate
        logits = self.out(feats + body)
        return logits, (self.aux_out(feats) if aux else None)

    def _ctc(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        logp = torch.log_softmax(logits.float(), -1).transpose(0, 1)  # (T, B, C) for CTC
        return self.ctc(logp, batch["targets"].to(logp.device), batch["input_lengths"],
                        batch["target_lengths"])

    def set_progress(self, fraction: float) -> None:
        """The trainer's progress through the run (0..1): the alignment loss fades with it."""
        self.progress = float(fraction)

    def _align_weight(self) -> float:
        # The flat-start alignment is only right on average (a printed label beside the word
        # shifts it): it starts CTC off, then fades out by ``align_ce_until`` of the run so
        # that CTC's own alignment takes over (0: constant weight).
        if self.align_until <= 0:
            return self.align_weight
        return self.align_weight * max(0.0, 1.0 - self.progress / self.align_until)

    def forward(self, model: HeadModel, batch: dict) -> dict[str, torch.Tensor]:
        logits, aux = self._logits(model, batch, aux=self.aux_weight > 0)
        main = self._ctc(logits, batch)
        loss = main
        out = {"ctc": main.detach()}
        if aux is not None:
            aux_ctc = self._ctc(aux, batch)
            loss = loss + self.aux_weight * aux_ctc
            out["aux_ctc"] = aux_ctc.detach()
        align_weight = self._align_weight()
        if align_weight > 0 and "frame_targets" in batch:
            align = nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]),
                batch["frame_targets"].to(logits.device).reshape(-1), ignore_index=-100)
            loss = loss + align_weight * align
            out["align_ce"] = align.detach()
        out["loss"] = loss
        return out

    def predict(self, model: HeadModel, batch: dict) -> list[str]:
        logp = torch.log_softmax(self._logits(model, batch)[0].float(), -1).cpu()
        return self.read(logp, batch["input_lengths"])

    def read(self, logp: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """The texts of (B, T, C) log-probabilities: beam search with the character n-gram
        where the config asks for it and the model has one, else greedy; one script each."""
        if self.beam and self.lm is not None:
            return beam_decode(logp, lengths, self.lm, self.decode_masks(), **self.decoding)
        return greedy_decode(logp, lengths, self.decode_masks())

    # -- the character n-gram: fitted on the training texts, saved beside the weights ------

    def fit_data(self, samples: list, keep: bool = False) -> None:
        """Fit the n-gram on the training transcriptions (the model's ``fit_data`` hook);
        ``keep``: not where one is already fitted."""
        if self.beam and not (keep and self.lm is not None):
            self.lm = CharNgramLM.fit((s.text for s in samples if s.text), self.lm_order)

    def save_artefacts(self, directory: Path) -> None:
        if self.lm is not None:
            self.lm.save(directory / LM_FILE)
        else:  # saving over a folder: an older model's n-gram must not come back with this one
            (directory / LM_FILE).unlink(missing_ok=True)

    def load_artefacts(self, directory: Path) -> None:
        if (directory / LM_FILE).is_file():
            self.lm = CharNgramLM.load(directory / LM_FILE)

    def decode_masks(self) -> torch.Tensor | None:
        """The script masks greedy decoding keeps to (None: any class per column)."""
        return self.script_masks.cpu() if self.one_script else None


def script_choice(logp: torch.Tensor, lengths: torch.Tensor,
                  script_masks: torch.Tensor) -> torch.Tensor:
    """(B,) the script (row of ``script_masks`` (S, C)) each image is read in: the one whose
    best path over the image's own columns scores higher.

    A label is written in one script, but Latin and Cyrillic capitals look alike (А/A, Р/P,
    С/C...), so free per-column picks mix them.
    """
    inside = (torch.arange(logp.shape[1]).view(1, -1) < lengths.view(-1, 1)).to(logp.dtype)
    masked = logp.unsqueeze(1).masked_fill(
        ~script_masks.view(1, script_masks.shape[0], 1, -1), float("-inf"))  # (B, S, T, C)
    return (masked.max(-1).values * inside.unsqueeze(1)).sum(-1).argmax(1)


def keep_script(logp: torch.Tensor, lengths: torch.Tensor,
                script_masks: torch.Tensor | None) -> torch.Tensor:
    """``logp`` with the classes outside each image's script at -inf (unchanged without
    masks); digits, punctuation and the blank are in both scripts."""
    if script_masks is None:
        return logp
    pick = script_choice(logp, lengths, script_masks)
    return logp.masked_fill(~script_masks[pick].unsqueeze(1), float("-inf"))


def greedy_decode(logp: torch.Tensor, lengths: torch.Tensor,
                  script_masks: torch.Tensor | None = None) -> list[str]:
    """Greedy CTC over (B, T, C) log-probabilities, each row up to its own length
    (one script per image with ``script_masks``: :func:`keep_script`)."""
    best = keep_script(logp, lengths, script_masks).argmax(-1)
    return [charset.ctc_greedy(best[i, : int(k)].tolist()) for i, k in enumerate(lengths)]


def build_head(config: FusionBrainConfig, model: HeadModel) -> HTRHead:
    return HTRHead(config, model)
