"""VQA head: the shared body reads ``[prompt] [image tokens] question`` and answers.

Image tokens come from the shared vision encoder. Two answer modes (``answer_mode``):

- ``generate``: the body's own (frozen, tied) LM head writes the answer, open vocabulary;
  the head itself is only a learned task prompt. Suits the full body.
- ``classify``: the body's state after the question (last + mean over the question)
  attends over the backbone's 7 x 7 cells and picks one of the training answers
  (``answers``, taken from the training data by :func:`fit_config`), the VQA v2
  practice. A cut body's hidden states are far from its LM head's space; a classifier
  learns in a few hundred steps what generation needs thousands for. With ``prior_weight``
  > 0 its logits are a residual over log p(answer | question opening) (``prior.py``).
  With ``body_warmup`` > 0 a small GRU also reads the question's token embeddings, and for
  that fraction of the run the classifier trains on it alone, without the body (the body is
  most of a step's cost); then the body's question state joins from zero, as HTR's does.

EN and RU share one model (and, when classifying, one answer list).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from fusionbrain.errors import UserError
from fusionbrain.model.adapters import TaskPrompt, embedding_scale, open_image
from fusionbrain.model.vision import image_key, preprocess
from fusionbrain.tasks.vqa.prior import FILE_NAME as PRIOR_FILE
from fusionbrain.tasks.vqa.prior import AnswerPrior

if TYPE_CHECKING:
    from fusionbrain.model.configuration import FusionBrainConfig
    from fusionbrain.model.protocol import HeadModel

NEEDS_VISION = True
SEPARATOR = " Answer:"
CALIBRATION_FACTORS = (1, 2, 4, 8, 16, 64)  # x prior_weight, tried by VQAHead.calibrate


def question_ids(tokenizer: Any, question: str, max_tokens: int) -> list[int]:
    q = tokenizer(" ".join(question.split()), add_special_tokens=False)["input_ids"][:max_tokens]
    return q + tokenizer(SEPARATOR, add_special_tokens=False)["input_ids"]


def answer_ids(tokenizer: Any, answer: str, max_tokens: int) -> list[int]:
    """Answer tokens (leading space, as after ``Answer:``) + EOS."""
    a = tokenizer(" " + " ".join(answer.split()), add_special_tokens=False)["input_ids"]
    return a[:max_tokens] + [tokenizer.eos_token_id]


def clean_answer(answer: str) -> str:
    return " ".join(answer.split())


def fit_config(config: FusionBrainConfig, samples: list) -> dict[str, Any]:
    """``classify`` mode: the answer list = the training answers, most frequent first.

    Every given answer counts (VQA v2 has ten per question); ties keep first-seen order,
    so the list depends only on the data.
    """
    if config.task("VQA").answer_mode != "classify":
        return {}
    counts = Counter(clean_answer(a) for s in samples for a in (s.answers or [])
                     if isinstance(a, str) and a.strip())
    return {"answers": [a for a, _ in counts.most_common(config.task("VQA").max_answers)]}


def answer_targets(answers: list[str], index: dict[str, int], n: int) -> list[float] | None:
    """Soft target over the answer list: each given answer's share (None: none is known)."""
    known = [index[a] for a in (clean_answer(x) for x in answers) if a in index]
    if not known:
        return None
    target = [0.0] * n
    for k in known:
        target[k] += 1.0 / len(known)
    return target


def collate(samples: list, *, tokenizer: Any, config: FusionBrainConfig,
            train: bool = True) -> dict:
    images = [open_image(s.image_path) for s in samples]
    batch = {
        "task": "VQA",
        "ids": [s.id for s in samples],
        "pixels": preprocess(images, config.image_size),
        "image_keys": [image_key(s.image_path) for s in samples],
        "questions": [question_ids(tokenizer, s.question, config.task("VQA").max_question_tokens)
                      for s in samples],
        "question_texts": [s.question for s in samples],
        "answers": [answer_ids(tokenizer, s.answers[0] if s.answers else "",
                               config.task("VQA").max_answer_tokens) for s in samples],
        "max_answer_tokens": config.task("VQA").max_answer_tokens,
    }
    if config.task("VQA").answer_mode == "classify":
        index = {a: i for i, a in enumerate(config.task("VQA").answers)}
        targets = [answer_targets(s.answers or [], index, len(index)) for s in samples]
        batch["answer_targets"] = torch.tensor(
            [t if t is not None else [0.0] * len(index) for t in targets], dtype=torch.float32
        ).reshape(len(samples), len(index))
        batch["answer_known"] = torch.tensor([t is not None for t in targets])
    return batch


class GlimpseClassifier(nn.Module):
    """Question-guided attention over the image's cells, then a classifier over answers.

    The body's 16 image tokens are pooled coarsely (4 x 4); questions about one object
    among several need the backbone's full 7 x 7 map. The question state (the body's
    output, plus the question reader's vector when there is one) attends over the cells (a
    few heads = "glimpses"), and answer logits come from
    [question, glimpse, question * glimpse] — the bottom-up/top-down VQA recipe.
    """

    def __init__(self, channels: int, mid_channels: int, hidden_size: int, n_answers: int,
                 width: int = 512, glimpses: int = 2, grid: int = 7,
                 body_from_zero: bool = False) -> None:
        super().__init__()
        self.grid, self.glimpses = grid, glimpses
        self.cells = nn.Sequential(nn.LayerNorm(channels + mid_channels),
                                   nn.Linear(channels + mid_channels, width))
        self.pos = nn.Parameter(torch.zeros(grid * grid, width))
        self.question = nn.Sequential(nn.LayerNorm(2 * hidden_size),
                                      nn.Linear(2 * hidden_size, width))
        if body_from_zero:  # the body joins a classifier trained on the question reader
            nn.init.zeros_(self.question[1].weight)
            nn.init.zeros_(self.question[1].bias)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.out = nn.Sequential(nn.Linear(3 * width, width), nn.GELU(),
                                 nn.Linear(width, n_answers))

    def forward(self, state: torch.Tensor | None, mid: torch.Tensor, last: torch.Tensor,
                words: torch.Tensor | None = None) -> torch.Tensor:
        """``state``: the body's (B, 2D) question state; ``words``: the question reader's
        (B, W) vector; either may be None (not both)."""
        pool = nn.functional.adaptive_avg_pool2d
        maps = torch.cat([pool(last, self.grid), pool(mid, self.grid)], 1)  # (B, C, g, g)
        cells = self.cells(maps.flatten(2).transpose(1, 2)) + self.pos  # (B, g*g, W)
        if state is None:
            q = words  # (B, W)
        else:
            q = self.question(state) if words is None else self.question(state) + words
        b, n, w = cells.shape
        h = self.glimpses
        keys = self.key(cells).view(b, n, h, w // h)
        att = torch.einsum("bnhk,bhk->bnh", keys, q.view(b, h, w // h)) / (w // h) ** 0.5
        att = att.softmax(1)
        glimpse = torch.einsum("bnh,bnhk->bhk", att, self.value(cells).view(b, n, h, w // h))
        v = glimpse.reshape(b, w)
        return self.out(torch.cat([q, v, q * v], -1))


class QuestionReader(nn.Module):
    """A bidirectional GRU over the question's (frozen) token embeddings -> (B, width).

    The body-free question path: cheap enough that VQA can train many steps without the
    body, and order-aware ("the cross above the circle")."""

    def __init__(self, hidden_size: int, width: int, units: int = 256) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size)
        self.rnn = nn.GRU(hidden_size, units, batch_first=True, bidirectional=True)
        self.out = nn.Sequential(nn.LayerNorm(2 * units), nn.Linear(2 * units, width))

    def forward(self, model: HeadModel, questions: list[list[int]]) -> torch.Tensor:
        lens = torch.tensor([len(q) for q in questions])
        ids = torch.zeros(len(questions), int(lens.max()), dtype=torch.long)
        for i, q in enumerate(questions):
            ids[i, :len(q)] = torch.tensor(q, dtype=torch.long)
        x = self.norm(model.embed_ids(ids).float())
        _, h = self.rnn(pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False))
        return self.out(torch.cat([h[0], h[1]], -1))


class VQAHead(nn.Module):
    def __init__(self, config: FusionBrainConfig, model: HeadModel) -> None:
        super().__init__()
        d = model.hidden_size
        self.prompt = TaskPrompt(config.prompt_tokens, d, embedding_scale(model))
        self.answers = list(config.task("VQA").answers)
        self.prior_weight = float(config.task("VQA").prior_weight)
        self.prior: AnswerPrior | None = None  # fitted on the training answers: fit_data
        self.body_warmup = float(config.task("VQA").body_warmup)
        self.progress = 0.0
        self.classifier: GlimpseClassifier | None = None
        self.reader: QuestionReader | None = None
        if config.task("VQA").answer_mode == "classify":
            # an untrained model may have no answer list yet (e.g. `fusionbrain info`)
            self.classifier = GlimpseClassifier(*model.vision_channels(),
                                                d, max(1, len(self.answers)),
                                                body_from_zero=self.body_warmup > 0)
            if self.body_warmup > 0:
                self.reader = QuestionReader(d, self.classifier.pos.shape[1])

    def set_progress(self, fraction: float) -> None:
        """The trainer's progress through the run (0..1): the body joins after the warm-up."""
        self.progress = float(fraction)

    def _prefixes(self, model: HeadModel, batch: dict) -> list[list[torch.Tensor]]:
        img = model.encode_images(batch["pixels"], batch.get("image_keys"))
        p = self.prompt()
        return [[p, img[i], model.embed_ids(q)] for i, q in enumerate(batch["questions"])]

    def _answer_logits(self, model: HeadModel, batch: dict) -> torch.Tensor:
        """Classify mode: (B, answers) logits, the prior's bias included."""
        logits = self._classifier_logits(model, batch)
        if self.prior is not None and self.prior_weight > 0:
            bias = self.prior.log_probs(batch["question_texts"]).to(logits.device, logits.dtype)
            weight = self.prior_weight
            if not self.training and self.prior.weight_at_prediction is not None:
                weight = self.prior.weight_at_prediction  # chosen on valid: :meth:`calibrate`
            logits = logits + weight * bias
        return logits

    def _classifier_logits(self, model: HeadModel, batch: dict) -> torch.Tensor:
        """The classifier's own (B, answers) logits: the question (body state and/or the
        reader's vector) looking at the image's cells, without the prior."""
        assert self.classifier is not None
        if not self.answers:
            raise UserError("model config key 'tasks.VQA.answers' is empty in classify mode: train "
                            "the model (training fills it in from the data) or list the answers")
        # maps first: their backbone pass also caches the pooled features the image tokens
        # need, so an image's first visit runs the backbone once, not twice
        mid, last = model.vision_feature_maps(batch["pixels"], batch.get("image_keys"))
        words = self.reader(model, batch["questions"]) if self.reader is not None else None
        state = None
        if not (self.training and self.progress < self.body_warmup):  # else: the warm-up
            embeds, mask = model.assemble(self._prefixes(model, batch))
            hidden, _ = model.run_body(embeds, mask)
            # left padding: each question fills the last len(q) positions; its mean state
            # keeps the words (object, colour) that the last state of a cut body blurs
            length = hidden.shape[1]
            lens = torch.tensor([len(q) for q in batch["questions"]], device=hidden.device)
            in_question = (torch.arange(length, device=hidden.device)[None]
                           >= (length - lens)[:, None])
            mean = (hidden * in_question[..., None]).sum(1) / lens[:, None]
            state = torch.cat([hidden[:, -1], mean], -1)
        return self.classifier(state, mid, last, words)

    def forward(self, model: HeadModel, batch: dict) -> dict[str, torch.Tensor]:
        if self.classifier is None:
            return {"loss": model.lm_loss(self._prefixes(model, batch), batch["answers"])}
        logits = self._answer_logits(model, batch)
        known = batch["answer_known"].to(logits.device)
        target = batch["answer_targets"].to(logits.device)
        per_sample = -(target * torch.log_softmax(logits, -1)).sum(-1)
        # answers outside the list teach nothing (their loss would be 0 anyway); keep the graph
        loss = (per_sample * known).sum() / known.sum().clamp(min=1)
        return {"loss": loss}

    def predict(self, model: HeadModel, batch: dict, num_beams: int = 1) -> list[str]:
        if self.classifier is not None:
            best = self._answer_logits(model, batch).argmax(-1).tolist()
            return [self.answers[k] for k in best]
        out = model.generate(self._prefixes(model, batch), batch["max_answer_tokens"] + 1,
                             num_beams=num_beams)
        return [" ".join(model.tokenizer.decode(ids, skip_special_tokens=True,
                                             clean_up_tokenization_spaces=False).split())
                for ids in out]

    # -- the answer prior: fitted on the training answers, saved beside the weights ---------

    def fit_data(self, samples: list, keep: bool = False) -> None:
        """Fit the answer prior per question opening (the model's ``fit_data`` hook);
        ``keep``: not where one is already fitted."""
        if keep and self.prior is not None:
            return
        if self.classifier is not None and self.prior_weight > 0 and self.answers:
            self.prior = AnswerPrior.fit(((s.question, s.answers or []) for s in samples),
                                         self.answers, clean_answer)

    def calibrate(self, model: HeadModel, samples: list, batch_size: int = 32
                  ) -> dict[str, Any]:
        """After training: the prior's weight at prediction, chosen on ``samples`` (valid).

        On a small dataset the classifier's residual can be noise that flips answers the
        prior had right (BENCHMARKS.md): of ``prior_weight`` × 1, 2, 4, ..., 64 the one with
        the most right answers (exact, whitespace-normalised) on the validation questions is
        kept, the smallest on a tie; saved with the prior. Training keeps ``prior_weight``.
        """
        if self.classifier is None or self.prior is None or self.prior_weight <= 0 \
                or not samples:
            return {}
        was_training = self.training
        self.eval()
        logits, bias = [], []
        with torch.no_grad():
            for i in range(0, len(samples), batch_size):
                batch = collate(samples[i:i + batch_size], tokenizer=model.tokenizer,
                                config=model.config, train=False)
                logits.append(self._classifier_logits(model, batch).float().cpu())
                bias.append(self.prior.log_probs(batch["question_texts"]))
        self.train(was_training)
        logits_all, bias_all = torch.cat(logits), torch.cat(bias)
        given = [{clean_answer(a) for a in (s.answers or [])} for s in samples]
        right = {}
        for factor in CALIBRATION_FACTORS:
            best = (logits_all + factor * self.prior_weight * bias_all).argmax(-1).tolist()
            right[factor] = sum(self.answers[k] in g for k, g in zip(best, given, strict=True))
        factor = min(right, key=lambda f: (-right[f], f))
        self.prior.weight_at_prediction = factor * self.prior_weight
        return {"prior_weight_at_prediction": self.prior.weight_at_prediction,
                "valid_right": {str(f): r for f, r in right.items()}, "n": len(samples)}

    def save_artefacts(self, directory: Path) -> None:
        if self.prior is not None:
            self.prior.save(directory / PRIOR_FILE)
        else:  # saving over a folder: an older model's prior must not come back with this one
            (directory / PRIOR_FILE).unlink(missing_ok=True)

    def load_artefacts(self, directory: Path) -> None:
        if (directory / PRIOR_FILE).is_file() and self.classifier is not None:
            self.prior = AnswerPrior.load(directory / PRIOR_FILE, len(self.answers))


def build_head(config: FusionBrainConfig, model: HeadModel) -> VQAHead:
    return VQAHead(config, model)
