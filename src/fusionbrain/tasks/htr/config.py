"""HTR's config: the word-image adapter and its losses (``FusionBrainConfig.tasks["HTR"]``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from fusionbrain.tasks.base import TaskConfig


@dataclass
class HTRConfig(TaskConfig):
    LEGACY_PREFIX: ClassVar[str] = "htr_"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"height": 16, "max_width": 128, "channels": 16},
    }
    POSITIVE: ClassVar[tuple[str, ...]] = ("height", "column_group", "max_width", "channels",
                                           "body_pool", "rnn_hidden", "depth", "beam_width",
                                           "lm_order")
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("aux_ctc", "align_ce", "align_ce_until", "augment",
                                               "lm_weight", "lm_length_bonus")
    FRACTION: ClassVar[tuple[str, ...]] = ("body_warmup",)
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"decode": ("beam", "greedy")}

    height: int = 32
    column_group: int = 4  # pixels of width per image token
    max_width: int = 384
    channels: int = 64
    body_pool: int = 2  # adjacent CTC columns per body token (halves HTR's body cost)
    rnn_hidden: int = 128  # BiLSTM units per direction in the HTR adapter
    aux_ctc: float = 0.5  # weight of the CTC loss on the adapter features alone
    align_ce: float = 1.0  # weight of the flat-start alignment cross-entropy
    align_ce_until: float = 0.0  # fade align_ce linearly to 0 by this fraction of the run (0: never)
    depth: int = 1  # convolutions per downsampling stage of the adapter's CNN
    # train without the body for this fraction of the run: the adapter and classifier alone
    # (a step costs ~1/4: the body is most of it), then the body's residual joins, starting
    # from zero (its output layer is zero-initialised). 0: the body from the first step
    body_warmup: float = 0.0
    one_script: bool = True  # decode each image in Latin or in Cyrillic, not a mix
    augment: float = 0.1  # +- random horizontal stretch of HTR training images
    # decoding: "beam" = CTC prefix beam search weighed by a character n-gram of the training
    # transcriptions (tasks/htr/lm.py; greedy when the model has none), "greedy" = per column.
    # lm_weight and lm_length_bonus were chosen on the large build's valid split with the
    # valid words taken out of the n-gram (bench/htr_lm_tune.py)
    decode: str = "beam"
    beam_width: int = 8
    lm_order: int = 5
    lm_weight: float = 0.3
    lm_length_bonus: float = 1.0


CONFIG = HTRConfig
