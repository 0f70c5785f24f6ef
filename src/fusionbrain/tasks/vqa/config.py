"""VQA's config: question/answer lengths and the answer mode (``FusionBrainConfig.tasks["VQA"]``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from fusionbrain.tasks.base import TaskConfig


@dataclass
class VQAConfig(TaskConfig):
    LEGACY_PREFIX: ClassVar[str] = "vqa_"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # a cut body's outputs are far from its LM head's space: pick a training answer
        "cpu-small": {"answer_mode": "classify"},
        "tiny": {"max_question_tokens": 16, "max_answer_tokens": 4},
    }
    POSITIVE: ClassVar[tuple[str, ...]] = ("max_question_tokens", "max_answer_tokens",
                                           "max_answers")
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("prior_weight",)
    FRACTION: ClassVar[tuple[str, ...]] = ("body_warmup",)
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"answer_mode": ("generate", "classify")}
    STRING_LISTS: ClassVar[tuple[str, ...]] = ("answers",)

    max_question_tokens: int = 40  # Russian takes ~3x the tokens of English
    max_answer_tokens: int = 12  # "прямоугольник" is 11 tokens
    # "generate": the body's LM head writes the answer (open vocabulary);
    # "classify": one of ``answers`` (the training answers, filled in from the data by
    # ``fit_config`` before the model is built), the VQA v2 practice
    answer_mode: str = "generate"
    answers: list[str] = field(default_factory=list)
    max_answers: int = 1000
    # classify mode: add prior_weight x log p(answer | question opening), fitted on the
    # training answers (tasks/vqa/prior.py), to the classifier's logits; 0: no prior
    prior_weight: float = 0.0
    # classify mode: train without the body for this fraction of the run (the question read
    # by a small GRU over its token embeddings, a step then costs a fraction), then the body's
    # question state joins, starting from zero; 0: the body from the first step, no GRU.
    # Ignored in generate mode
    body_warmup: float = 0.0


CONFIG = VQAConfig
