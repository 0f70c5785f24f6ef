"""The answer prior per question type: a fixed logit bias under the VQA classifier.

The trivial baseline answers the most frequent training answer for the question's opening
words (``baseline.py``). The classifier starts from random weights, so for its first few
hundred steps it answers worse than that table, and how much worse varies from seed to
seed. With ``prior_weight`` > 0 the classifier's logits are added to ``prior_weight ×
log p(answer | question opening)`` fitted on the training answers: the untrained model
answers like the baseline, and training learns what the image adds on top (a residual over
the prior). The table is data, like HTR's n-gram: fitted by the model's ``fit_data`` hook
and saved beside the weights (``vqa_prior.json.gz``).

p(answer | opening) is the answer counts of the longest opening (1-3 words) seen in
training, smoothed towards the overall answer distribution (``BACKOFF`` pseudo-counts),
which itself has add-half smoothing: every answer keeps a finite log-probability.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from fusionbrain.errors import UserError
from fusionbrain.tasks.vqa.baseline import openings
from fusionbrain.utils.io import read_gzip_json, write_gzip_json

FILE_NAME = "vqa_prior.json.gz"
FORMAT = "fusionbrain-vqa-prior/1"
BACKOFF = 2.0  # pseudo-counts of the overall distribution in each opening's


class AnswerPrior:
    def __init__(self, n_answers: int, overall: dict[int, float],
                 by_opening: dict[str, dict[int, float]]) -> None:
        self.n_answers = n_answers
        self.overall = overall
        self.by_opening = by_opening
        # the prior's weight when predicting, chosen on valid after training (None: the
        # training weight, ``prior_weight``): VQAHead.calibrate
        self.weight_at_prediction: float | None = None
        # the back-off of every question, once (log_probs runs on every VQA batch)
        counts = torch.full((n_answers,), 0.5, dtype=torch.float64)
        for k, c in overall.items():
            counts[k] += c
        self._backoff = counts / counts.sum() * BACKOFF

    @classmethod
    def fit(cls, pairs: Iterable[tuple[str, list[str]]], answers: list[str],
            clean: Callable[[str], str]) -> AnswerPrior:
        """From (question, given answers) pairs; ``answers`` is the classifier's answer list
        and ``clean`` the answer normaliser it was built with (answers off the list count
        for nothing, as in training)."""
        index = {a: i for i, a in enumerate(answers)}
        overall: Counter = Counter()
        by_opening: dict[str, Counter] = defaultdict(Counter)
        for question, given in pairs:
            known = [index[a] for a in (clean(x) for x in given if isinstance(x, str)) if a in index]
            for k in known:
                share = 1.0 / len(known)
                overall[k] += share
                for p in openings(question):
                    by_opening[p][k] += share
        return cls(len(answers), dict(overall), {p: dict(c) for p, c in by_opening.items()})

    def log_probs(self, questions: list[str]) -> torch.Tensor:
        """(B, answers) log p(answer | the question's longest known opening)."""
        rows = []
        for q in questions:
            counts = next((self.by_opening[p] for p in openings(q) if p in self.by_opening), {})
            row = self._backoff.clone()
            for k, c in counts.items():
                row[k] += c
            rows.append(torch.log(row / row.sum()))
        if not rows:
            return torch.zeros(0, self.n_answers)
        return torch.stack(rows).float()

    # -- file ----------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        data = {"format": FORMAT, "n_answers": self.n_answers,
                "overall": {str(k): v for k, v in self.overall.items()},
                "by_opening": {p: {str(k): v for k, v in c.items()}
                               for p, c in self.by_opening.items()}}
        if self.weight_at_prediction is not None:
            data["weight_at_prediction"] = self.weight_at_prediction
        write_gzip_json(path, data)

    @classmethod
    def load(cls, path: Path, n_answers: int) -> AnswerPrior:
        data = read_gzip_json(path, what="VQA answer prior", fmt=FORMAT)
        if data.get("n_answers") != n_answers:
            raise UserError(f"the prior is over {data.get('n_answers')} answers, the model has "
                            f"{n_answers}", path=path, key="n_answers")

        def table(obj: object, key: str) -> dict[int, float]:
            ok = isinstance(obj, dict) and all(
                k.isdigit() and int(k) < n_answers and isinstance(v, (int, float)) and v >= 0
                for k, v in obj.items())
            if not ok:
                raise UserError("expected {answer index: count >= 0}", path=path, key=key)
            return {int(k): float(v) for k, v in obj.items()}

        by = data.get("by_opening")
        if not isinstance(by, dict):
            raise UserError("expected an object", path=path, key="by_opening")
        weight = data.get("weight_at_prediction")
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float))
                                   or weight < 0):
            raise UserError("expected a number >= 0", path=path, key="weight_at_prediction")
        prior = cls(n_answers, table(data.get("overall"), "overall"),
                    {p: table(c, f"by_opening.{p}") for p, c in by.items()})
        prior.weight_at_prediction = None if weight is None else float(weight)
        return prior
