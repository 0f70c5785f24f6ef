"""A character n-gram language model and CTC prefix beam search over it.

Greedy CTC takes each column's best class on its own; one smudged letter makes the word
wrong. The beam keeps the few best prefixes and weighs each by the character n-gram's
probability of its spelling, so ``Jockson`` loses to ``Jackson`` when the pixels hesitate.
The model is fitted on the training transcriptions only (the test split's words never
occur there): it knows how English and Russian words, names, dates and amounts are spelt,
not which words the test holds.

Smoothing is interpolated Witten-Bell: no discount to tune, and every character of the
charset keeps a non-zero probability, so the beam can still spell what it never saw.
The counts are saved beside the model's weights (``htr_lm.json.gz``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

import torch

from fusionbrain.errors import UserError
from fusionbrain.tasks.htr import charset
from fusionbrain.utils.io import read_gzip_json, write_gzip_json

FILE_NAME = "htr_lm.json.gz"
BOS, EOS = "\x02", "\x03"
FORMAT = "fusionbrain-char-ngram/1"


class CharNgramLM:
    """P(next character | up to ``order - 1`` previous ones), Witten-Bell interpolated."""

    def __init__(self, order: int = 5, counts: dict[str, dict[str, int]] | None = None) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        self.order = order
        self.counts: dict[str, dict[str, int]] = counts or {}
        self._index()

    def _index(self) -> None:
        self._total = {h: sum(c.values()) for h, c in self.counts.items()}
        self._types = {h: len(c) for h, c in self.counts.items()}
        self._cache: dict[tuple[str, str], float] = {}
        self._vocab = len(charset.CHARSET) + 1  # + end of text

    @classmethod
    def fit(cls, texts: Iterable[str], order: int = 5) -> CharNgramLM:
        counts: defaultdict[str, Counter] = defaultdict(Counter)
        for text in texts:
            s = BOS * (order - 1) + "".join(c for c in text if c in charset.CHARSET) + EOS
            for i in range(order - 1, len(s)):
                for k in range(order):  # histories of 0 .. order-1 characters
                    counts[s[i - k:i]][s[i]] += 1
        return cls(order, {h: dict(c) for h, c in counts.items()})

    def prob(self, history: str, char: str) -> float:
        """P(char | history); ``char`` may be :data:`EOS`."""
        padded = BOS * (self.order - 1) + history
        history = padded[len(padded) - (self.order - 1):]
        key = (history, char)
        p = self._cache.get(key)
        if p is not None:
            return p
        p = 1.0 / self._vocab
        for k in range(self.order):
            h = history[len(history) - k:] if k else ""
            seen = self.counts.get(h)
            if not seen:
                break
            types = self._types[h]
            p = (seen.get(char, 0) + types * p) / (self._total[h] + types)
        self._cache[key] = p
        return p

    def log_prob(self, history: str, char: str) -> float:
        return math.log(self.prob(history, char))

    def save(self, path: Path) -> None:
        write_gzip_json(path, {"format": FORMAT, "order": self.order, "counts": self.counts})

    @classmethod
    def load(cls, path: Path) -> CharNgramLM:
        data = read_gzip_json(path, what="character n-gram file", fmt=FORMAT)
        order, counts = data.get("order"), data.get("counts")
        if not isinstance(order, int) or order < 1 or not isinstance(counts, dict):
            raise UserError("expected 'order' (integer >= 1) and 'counts' (object)", path=path)
        for history, after in counts.items():
            if len(history) >= order or not isinstance(after, dict) or not all(
                    isinstance(c, str) and len(c) == 1 and isinstance(n, int) and n > 0
                    for c, n in after.items()):
                raise UserError(f"counts after {history!r}: expected an object of single "
                                f"characters to positive integers, histories under {order} "
                                "characters", path=path, key="counts")
        return cls(order, counts)


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def prefix_beam_search(logp: torch.Tensor, lm: CharNgramLM | None, **kw: float
                       ) -> tuple[list[int], float]:
    """The best label (class ids) of one image's (T, C) CTC log-probabilities and its score
    (:func:`beam_hypotheses`' first)."""
    return beam_hypotheses(logp, lm, **kw)[0]


def beam_hypotheses(logp: torch.Tensor, lm: CharNgramLM | None, *, lm_weight: float = 0.3,
                    length_bonus: float = 1.0, width: int = 8, prune: float = 8.0,
                    max_candidates: int = 8) -> list[tuple[list[int], float]]:
    """The beam's final labels (class ids) of one image's (T, C) CTC log-probabilities with
    their scores, best first.

    score = log P_ctc(label) + lm_weight * log P_lm(label + end) + length_bonus * len(label).
    Per column only classes within ``prune`` nats of the best (at most ``max_candidates``)
    extend a prefix; columns where only the blank survives just carry the beams on.
    Classes at -inf (another script) are never taken.
    """
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}  # (blank, char)
    lm_cache: dict[tuple[int, ...], float] = {(): 0.0}

    def lm_score(prefix: tuple[int, ...]) -> float:
        got = lm_cache.get(prefix)
        if got is None:
            assert lm is not None
            got = lm_score(prefix[:-1]) + lm.log_prob(charset.decode(list(prefix[:-1])),
                                                      charset.decode([prefix[-1]]))
            lm_cache[prefix] = got
        return got

    def rank(prefix: tuple[int, ...], pb: float, pc: float) -> float:
        s = _logaddexp(pb, pc) + length_bonus * len(prefix)
        return s + lm_weight * lm_score(prefix) if lm is not None and lm_weight else s

    values, indices = logp.float().topk(min(max_candidates, logp.shape[-1]), -1)
    values, indices = values.tolist(), indices.tolist()
    for vals, ids in zip(values, indices, strict=True):
        cands = [(c, v) for c, v in zip(ids, vals, strict=True)
                 if v > vals[0] - prune and v > -math.inf]
        if len(cands) == 1 and cands[0][0] == charset.BLANK:
            blank = cands[0][1]
            beams = {p: (_logaddexp(pb, pc) + blank, -math.inf) for p, (pb, pc) in beams.items()}
            continue
        nxt: dict[tuple[int, ...], list[float]] = {}
        for prefix, (pb, pc) in beams.items():
            total = _logaddexp(pb, pc)
            last = prefix[-1] if prefix else None
            for c, v in cands:
                if c == charset.BLANK:
                    e = nxt.setdefault(prefix, [-math.inf, -math.inf])
                    e[0] = _logaddexp(e[0], total + v)
                elif c == last:
                    e = nxt.setdefault(prefix, [-math.inf, -math.inf])  # the run goes on
                    e[1] = _logaddexp(e[1], pc + v)
                    e = nxt.setdefault(prefix + (c,), [-math.inf, -math.inf])  # after a blank
                    e[1] = _logaddexp(e[1], pb + v)
                else:
                    e = nxt.setdefault(prefix + (c,), [-math.inf, -math.inf])
                    e[1] = _logaddexp(e[1], total + v)
        ranked = sorted(nxt.items(), key=lambda kv: rank(kv[0], *kv[1]), reverse=True)[:width]
        beams = {p: (e[0], e[1]) for p, e in ranked}

    def final(prefix: tuple[int, ...], pb: float, pc: float) -> float:
        s = rank(prefix, pb, pc)
        if lm is not None and lm_weight:
            s += lm_weight * lm.log_prob(charset.decode(list(prefix)), EOS)
        return s

    return sorted(((list(p), final(p, *e)) for p, e in beams.items()), key=lambda h: -h[1])


def beam_decode(logp: torch.Tensor, lengths: torch.Tensor, lm: CharNgramLM | None,
                script_masks: torch.Tensor | None = None, **kw: float) -> list[str]:
    """:func:`prefix_beam_search` over a (B, T, C) batch, each row up to its own length.

    With ``script_masks`` (S, C) each image is searched once per script and read in the
    script whose best label scores higher: the language model helps pick it too.
    """
    out = []
    for i, n in enumerate(lengths.tolist()):
        row = logp[i, : int(n)]
        if script_masks is None:
            ids, _ = prefix_beam_search(row, lm, **kw)
        else:
            ids, _ = max((prefix_beam_search(row.masked_fill(~m, float("-inf")), lm, **kw)
                          for m in script_masks), key=lambda r: r[1])
        out.append(charset.decode(ids))
    return out


def text_posterior(logp: torch.Tensor, text: str, lm: CharNgramLM | None,
                   script_masks: torch.Tensor | None = None, **kw: float) -> float:
    """How much of the beam's final mass (softmax of the final scores, over the scripts) goes
    to ``text``: the reading's confidence as the beam sees it, pixels and spelling together
    (0 when ``text`` is not among the final hypotheses)."""
    rows = [logp] if script_masks is None else [logp.masked_fill(~m, float("-inf"))
                                                 for m in script_masks]
    scores: dict[str, float] = {}
    for row in rows:
        for ids, score in beam_hypotheses(row, lm, **kw):
            t = charset.decode(ids)
            scores[t] = _logaddexp(scores.get(t, -math.inf), score)
    if text not in scores:
        return 0.0
    top = max(scores.values())
    total = sum(math.exp(v - top) for v in scores.values())
    return math.exp(scores[text] - top) / total
