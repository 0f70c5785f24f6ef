"""FusionBrain: one model, four tasks, one shared frozen pretrained body.

    task input -> modality adapter (in the task head) -> [task prompt | ... ] embeddings
               -> shared body (frozen causal LM + LoRA, shared by every task)
               -> task head (CTC | boxes | the body's own LM head for generation)

The model never names a task: it builds one head per entry of the task registry
(``fusionbrain.tasks.TASKS``) from ``tasks/<task>/head.py``, whose module-level
contract is::

    NEEDS_VISION: bool                         # uses the shared image encoder
    build_head(config, model) -> nn.Module     # with .forward(model, batch) -> {"loss", ...}
                                               # and  .predict(model, batch) -> list[output]
    collate(samples, *, tokenizer, config, train=True) -> batch dict
    fit_config(config, samples) -> dict        # optional: fields of the task's sub-config
                                               # learnt from the training samples

Heads see the model as a :class:`fusionbrain.model.protocol.HeadModel`: the primitives
(``embed_ids``, ``assemble``, ``run_body``, ``lm_loss``, ``generate``, ``encode_images``,
``vision_feature_maps`` ...) live here so that all tasks go through the same body. Each
task's config is ``config.tasks[<task>]``; its helpers (``model.read_text`` ...) come from
its ``api.py``.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fusionbrain.errors import UserError
from fusionbrain.model import body as body_lib
from fusionbrain.model.adapters import embedding_scale
from fusionbrain.model.configuration import FusionBrainConfig, resolve_config
from fusionbrain.tasks import TASKS, api_methods, check_task, task_module

ARTEFACT_FORMAT = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "trainable.safetensors"


class FusionBrain(nn.Module):
    """The multitask model. ``FusionBrain(config)`` builds it (loading the frozen body)."""

    def __init__(self, config: FusionBrainConfig | str | dict | None = None,
                 tasks: Iterable[str] | None = None) -> None:
        super().__init__()
        self.config = config = resolve_config(config)
        self.tokenizer = body_lib.load_tokenizer(body_lib.default_tokenizer_source(config))
        self.body = body_lib.load_body(config, vocab_size=len(self.tokenizer))
        self.body.requires_grad_(False)
        self.body.eval()
        if config.lora:
            self._add_lora()
        self.hidden_size = int(self.body.config.hidden_size)
        names = [check_task(t) for t in (tasks if tasks is not None else TASKS)]
        self._head_modules = {t: task_module(t, "head") for t in names}
        self.vision = None
        if any(getattr(m, "NEEDS_VISION", False) for m in self._head_modules.values()):
            from fusionbrain.model.vision import VisionEncoder

            self.vision = VisionEncoder(config, self.hidden_size,
                                        token_scale=embedding_scale(self))
        # Head initialisation is seeded so two builds of one config are identical.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed + 2)
            self.heads = nn.ModuleDict(
                {t: m.build_head(config, self) for t, m in self._head_modules.items()})
        self.eos_id = int(self.tokenizer.eos_token_id)
        self.pad_id = int(self.tokenizer.pad_token_id)
        self._api = api_methods(names)

    @classmethod
    def fit_config(cls, config: FusionBrainConfig | str | dict | None,
                   train_sets: dict[str, list]) -> FusionBrainConfig:
        """The config with what the heads take from the training data (before building).

        Each task's ``head.fit_config(config, samples)`` (where defined) returns the config
        values it derives from its training samples, e.g. the VQA answer vocabulary; they
        are saved with the model, so a trained artefact needs no data to be rebuilt.
        """
        config = resolve_config(config)
        for task, samples in train_sets.items():
            task = check_task(task)
            fit = getattr(task_module(task, "head"), "fit_config", None)
            if fit is not None and samples:
                changes = fit(config, samples)  # fields of the task's own sub-config
                if changes:
                    config = config.with_task(task, **changes)
        return config

    def fit_data(self, train_sets: dict[str, list], keep_fitted: bool = False) -> None:
        """What the built heads keep from the training data besides weights (HTR's character
        n-gram, VQA's answer prior): each head's ``fit_data(samples, keep)``, where defined.
        Saved by :meth:`save_pretrained` through the head's ``save_artefacts``. With
        ``keep_fitted`` a head that already has its artefact keeps it (a second training
        stage fills in only what its init model lacks)."""
        for _, fit, samples in self._head_hooks("fit_data", train_sets):
            fit(samples, keep=keep_fitted)

    def calibrate(self, valid_sets: dict[str, list]) -> dict[str, dict]:
        """After training: each head's ``calibrate(model, samples)`` on its validation
        samples, where defined (VQA's prior weight at prediction); what each one chose."""
        out = {}
        for task, fit, samples in self._head_hooks("calibrate", valid_sets):
            chosen = fit(self, samples)
            if chosen:
                out[task] = chosen
        return out

    def _head_hooks(self, name: str, sets: dict[str, list]
                    ) -> list[tuple[str, Callable[..., Any], list]]:
        """(task, the head's method ``name``, samples) for each built head that has one and
        has samples."""
        hooks = []
        for task, samples in sets.items():
            hook = getattr(self.heads[task], name, None) if task in self.heads else None
            if hook is not None and samples:
                hooks.append((task, hook, samples))
        return hooks

    # -- construction helpers -----------------------------------------------------
    def _add_lora(self) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        cfg = self.config
        lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=list(cfg.lora_targets), bias="none")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed + 3)
            try:
                inject_adapter_in_model(lcfg, self.body)
            except ValueError as e:  # e.g. a GPT-style body names its layers differently
                raise UserError(f"model config key 'lora_targets': {str(e).splitlines()[0]}"
                                ) from None
        for name, p in self.body.named_parameters():
            p.requires_grad_("lora_" in name)

    def train(self, mode: bool = True) -> FusionBrain:
        super().train(mode)
        self.body.eval()  # no dropout in the frozen body: deterministic, and LoRA dropout is 0
        return self

    @property
    def task_names(self) -> list[str]:
        return list(self.heads.keys())

    @property
    def device(self) -> torch.device:
        return self.body.get_input_embeddings().weight.device

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- primitives for heads -----------------------------------------------------
    @property
    def embedding(self) -> nn.Embedding:
        return self.body.get_input_embeddings()

    @property
    def blocks(self) -> nn.ModuleList:
        """The body's transformer blocks (Llama-style ``layers`` or GPT-style ``h``)."""
        base = self.body.base_model
        return base.layers if hasattr(base, "layers") else base.h

    def embed_ids(self, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Token ids -> the body's (frozen) input embeddings, shape (L, D) or (B, L, D)."""
        if not isinstance(ids, torch.Tensor):
            ids = torch.tensor(list(ids), dtype=torch.long)
        return self.embedding(ids.to(self.device))

    def text_ids(self, text: str, max_tokens: int | None = None) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[:max_tokens] if max_tokens else ids

    @staticmethod
    def assemble(parts: list[list[torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample lists of (L_k, D) pieces -> left-padded embeds (B, L, D) and mask (B, L).

        Left padding puts every sample's last token at the same position, which makes
        generation and "read the last K outputs" (zsOD queries) simple.
        """
        seqs = [torch.cat(p, dim=0) for p in parts]
        length = max(s.shape[0] for s in seqs)
        d = seqs[0].shape[1]
        ref = seqs[0]
        embeds = ref.new_zeros(len(seqs), length, d)
        mask = torch.zeros(len(seqs), length, dtype=torch.long, device=ref.device)
        for i, s in enumerate(seqs):
            embeds[i, length - s.shape[0]:] = s
            mask[i, length - s.shape[0]:] = 1
        return embeds, mask

    def run_body(self, embeds: torch.Tensor, mask: torch.Tensor | None = None,
                 past: Any = None, position_ids: torch.Tensor | None = None,
                 use_cache: bool = False) -> tuple[torch.Tensor, Any]:
        """The shared body on input embeddings: last hidden states (after the final norm)."""
        if mask is None:
            mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        if position_ids is None:
            position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
            position_ids = position_ids[:, -embeds.shape[1]:]
        with self._autocast():
            out = self.body.base_model(inputs_embeds=embeds, attention_mask=mask,
                                       position_ids=position_ids, cache=past,
                                       use_cache=use_cache)
        return out.last_hidden_state.float(), (out.cache if use_cache else None)

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The body's own (frozen, tied) LM head."""
        with self._autocast():
            return self.body.get_output_embeddings()(hidden).float()

    def encode_images(self, pixels: torch.Tensor, keys: list[str | None] | None = None
                      ) -> torch.Tensor:
        """(B, 3, S, S) pixels -> (B, T, D) image tokens (shared vision encoder).

        ``keys`` (from ``vision.image_key``) let a frozen backbone reuse its features.
        """
        if self.vision is None:
            raise RuntimeError("this model has no vision encoder")
        with self._autocast():
            return self.vision(pixels.to(self.device), keys).float()

    def vision_channels(self) -> tuple[int, int]:
        """Channels of the (last, stride-16) maps of :meth:`vision_feature_maps`."""
        if self.vision is None:
            raise RuntimeError("this model has no vision encoder")
        return int(self.vision.channels), int(self.vision.mid_channels)

    def vision_feature_maps(self, pixels: torch.Tensor, keys: list[str | None] | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone's (stride-16, last) spatial maps (cached by key when frozen)."""
        if self.vision is None:
            raise RuntimeError("this model has no vision encoder")
        return self.vision.feature_maps(pixels.to(self.device), keys)

    def lm_loss(self, prefixes: list[list[torch.Tensor]], targets: list[list[int]]
                ) -> torch.Tensor:
        """Mean cross-entropy of the body generating each ``targets[i]`` after ``prefixes[i]``.

        Only the positions that predict a target token go through the LM head
        (vocab 49k: the head costs as much as several blocks per position).
        """
        parts = [p + [self.embed_ids(t[:-1])] if len(t) > 1 else list(p)
                 for p, t in zip(prefixes, targets, strict=True)]
        embeds, mask = self.assemble(parts)
        hidden, _ = self.run_body(embeds, mask)
        length = embeds.shape[1]
        rows, cols, labels = [], [], []
        for i, t in enumerate(targets):
            # the last len(t) positions predict the target tokens (left padding)
            for j, tok in enumerate(t):
                rows.append(i)
                cols.append(length - len(t) + j)
                labels.append(tok)
        sel = hidden[torch.tensor(rows, device=hidden.device), torch.tensor(cols, device=hidden.device)]
        logits = self.lm_logits(sel)
        return nn.functional.cross_entropy(logits, torch.tensor(labels, device=logits.device))

    @torch.no_grad()
    def generate(self, prefixes: list[list[torch.Tensor]], max_new_tokens: int,
                 num_beams: int = 1, length_penalty: float = 1.0) -> list[list[int]]:
        """Greedy (``num_beams=1``) or beam-search continuation of each prefix, until EOS."""
        embeds, mask = self.assemble(prefixes)
        if num_beams > 1:
            return self._beam_search(embeds, mask, max_new_tokens, num_beams, length_penalty)
        b = embeds.shape[0]
        hidden, past = self.run_body(embeds, mask, use_cache=True)
        pos = mask.sum(-1, keepdim=True) - 1
        out: list[list[int]] = [[] for _ in range(b)]
        done = torch.zeros(b, dtype=torch.bool, device=embeds.device)
        for _ in range(max_new_tokens):
            nxt = self.lm_logits(hidden[:, -1]).argmax(-1)
            for i in range(b):
                if not done[i]:
                    if int(nxt[i]) == self.eos_id:
                        done[i] = True
                    else:
                        out[i].append(int(nxt[i]))
            if bool(done.all()):
                break
            mask = torch.cat([mask, mask.new_ones(b, 1)], dim=1)
            pos = pos + 1
            hidden, past = self.run_body(self.embed_ids(nxt[:, None]), mask, past=past,
                                         position_ids=pos, use_cache=True)
        return out

    def _beam_search(self, embeds: torch.Tensor, mask: torch.Tensor, max_new_tokens: int,
                     k: int, length_penalty: float) -> list[list[int]]:
        b = embeds.shape[0]
        embeds = embeds.repeat_interleave(k, 0)
        mask = mask.repeat_interleave(k, 0)
        hidden, past = self.run_body(embeds, mask, use_cache=True)
        pos = mask.sum(-1, keepdim=True) - 1
        # only the first beam of each sample is live at the start
        scores = torch.full((b, k), -math.inf, device=embeds.device)
        scores[:, 0] = 0.0
        seqs: list[list[int]] = [[] for _ in range(b * k)]
        finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
        for step in range(max_new_tokens):
            logp = torch.log_softmax(self.lm_logits(hidden[:, -1]), -1)  # (b*k, V)
            vocab = logp.shape[-1]
            cand = (scores.reshape(-1, 1) + logp).reshape(b, k * vocab)
            top_s, top_i = cand.topk(2 * k, dim=-1)
            new_scores = torch.full((b, k), -math.inf, device=embeds.device)
            beam_src = torch.zeros(b, k, dtype=torch.long)
            beam_tok = torch.full((b, k), self.eos_id, dtype=torch.long)
            for i in range(b):
                filled = 0
                for s, idx in zip(top_s[i].tolist(), top_i[i].tolist(), strict=True):
                    if s == -math.inf or filled == k:
                        break
                    src, tok = divmod(idx, vocab)
                    if tok == self.eos_id:
                        seq = seqs[i * k + src]
                        finished[i].append((s / max(1, len(seq) + 1) ** length_penalty, seq))
                        continue
                    new_scores[i, filled] = s
                    beam_src[i, filled] = src
                    beam_tok[i, filled] = tok
                    filled += 1
            flat_src = (torch.arange(b)[:, None] * k + beam_src).reshape(-1)
            seqs = [seqs[j] + [int(t)] for j, t in zip(flat_src.tolist(),
                                                      beam_tok.reshape(-1).tolist(), strict=True)]
            scores = new_scores
            best_live = (scores / (step + 2) ** length_penalty).max(-1).values
            if all(len(finished[i]) >= k and max(f[0] for f in finished[i]) >= best_live[i]
                   for i in range(b)):
                break
            past.reorder_cache(flat_src.to(embeds.device))
            mask = torch.cat([mask, mask.new_ones(b * k, 1)], dim=1)
            pos = pos + 1
            hidden, past = self.run_body(self.embed_ids(beam_tok.reshape(-1, 1)), mask,
                                         past=past, position_ids=pos, use_cache=True)
        out = []
        for i in range(b):
            cands = list(finished[i])
            for j in range(k):  # unfinished beams compete too
                if scores[i, j] > -math.inf:
                    seq = seqs[i * k + j]
                    cands.append((float(scores[i, j]) / max(1, len(seq)) ** length_penalty, seq))
            out.append(max(cands, key=lambda c: c[0])[1] if cands else [])
        return out

    # -- the generic contract (trainer, predict) -----------------------------------
    def collate(self, task: str, samples: list, train: bool = True) -> dict:
        """Samples -> the batch dict the task's head consumes (CPU tensors + plain values)."""
        task = check_task(task)
        return self._head_modules[task].collate(samples, tokenizer=self.tokenizer,
                                                config=self.config, train=train)

    def forward(self, task: str, batch: dict) -> dict[str, torch.Tensor]:
        """One task's training forward: a dict with ``"loss"`` (and task-specific parts)."""
        return self.heads[check_task(task)](self, batch)

    @torch.inference_mode()
    def predict(self, task: str, samples: list, batch_size: int = 16, **kwargs: Any) -> list:
        """Predictions (the challenge values) for samples, batched, deterministic."""
        task = check_task(task)
        was_training = self.training
        self.eval()
        try:
            out: list = []
            for start in range(0, len(samples), batch_size):
                batch = self.collate(task, samples[start:start + batch_size], train=False)
                out.extend(self.heads[task].predict(self, batch, **kwargs))
            return out
        finally:
            self.train(was_training)

    # -- plain-Python inference API ------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # nn.Module keeps submodules/parameters out of __dict__; after those, the helpers the
        # model's tasks register (``tasks/<task>/api.py`` METHODS: ``model.read_text`` ...)
        try:
            return super().__getattr__(name)
        except AttributeError:
            api = self.__dict__.get("_api") or {}
            if name.startswith("_") or name not in api:
                raise
            return functools.partial(api[name][1], self)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.__dict__.get("_api") or {}))

    def run(self, task: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a task's registered helper by name: ``model.run("HTR", "read_text", images)``."""
        task = check_task(task)
        api = self.__dict__.get("_api") or {}
        if method not in api or api[method][0] != task:
            names = [m for m, (t, _) in api.items() if t == task]
            raise UserError(f"task {task} has no helper {method!r}; it has "
                            f"{', '.join(names) or 'none'}")
        return api[method][1](self, *args, **kwargs)

    # -- parameters and sharing ----------------------------------------------------
    def trainable_parameters(self, task: str | None = None) -> list[nn.Parameter]:
        """Trainable parameters used by ``task`` (all tasks when None)."""
        groups = self._groups()
        tasks = [check_task(task)] if task else self.task_names
        seen: dict[int, nn.Parameter] = {}
        for t in tasks:
            for g in self._task_groups(t):
                for p in groups[g]:
                    if p.requires_grad:
                        seen.setdefault(id(p), p)
        return list(seen.values())

    def _groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by group: body (incl. LoRA), vision, head:<task>."""
        g: dict[str, list[nn.Parameter]] = {"body": _unique(self.body.parameters())}
        if self.vision is not None:
            g["vision"] = _unique(self.vision.parameters())
        for t, h in self.heads.items():
            g[f"head:{t}"] = _unique(h.parameters())
        return g

    def _task_groups(self, task: str) -> list[str]:
        groups = ["body", f"head:{task}"]
        if getattr(self._head_modules[task], "NEEDS_VISION", False):
            groups.append("vision")
        return groups

    def parameter_counts(self) -> dict[str, Any]:
        """N (total), M (shared by all tasks), M/N, trainable per task, frozen, body source.

        A group counts as shared only if every task's forward uses it: the body (blocks,
        LoRA, token embeddings, final norm; every head feeds text tokens and reads the
        body's outputs). The vision encoder serves only the image tasks, so it is not shared.
        """
        groups = self._groups()
        all_params = _unique(self.parameters())
        n = sum(p.numel() for p in all_params)
        per_task = {t: set(self._task_groups(t)) for t in self.task_names}
        shared_groups = set.intersection(*per_task.values()) if per_task else set()
        shared = _unique(p for g in shared_groups for p in groups[g])
        m = sum(p.numel() for p in shared)
        frozen = sum(p.numel() for p in all_params if not p.requires_grad)
        lora = sum(p.numel() for n_, p in self.body.named_parameters() if "lora_" in n_)
        return {
            "body_source": self.config.body,
            "body_layers": len(self.blocks),
            "hidden_size": self.hidden_size,
            "preset": self.config.preset,
            "tasks": self.task_names,
            "total_parameters": n,
            "shared_parameters": m,
            "shared_fraction": m / n if n else 0.0,
            "shared_groups": sorted(shared_groups),
            "frozen_parameters": frozen,
            "trainable_parameters": n - frozen,
            "lora_parameters": lora,
            "body_parameters": sum(p.numel() for p in groups["body"]),
            "vision_parameters": sum(p.numel() for p in groups.get("vision", [])),
            "vision_tasks": [t for t in self.task_names if "vision" in per_task[t]],
            "trainable_per_task": {t: sum(p.numel() for p in self.trainable_parameters(t))
                                   for t in self.task_names},
            "head_parameters": {t: sum(p.numel() for p in groups[f"head:{t}"])
                                for t in self.task_names},
            "body_frozen": all(not p.requires_grad for n_, p in self.body.named_parameters()
                               if "lora_" not in n_),
        }

    # -- artefacts -----------------------------------------------------------------
    def _frozen_names(self) -> set[str]:
        return {n for n, p in self.named_parameters(remove_duplicate=False) if not p.requires_grad}

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        """Everything but the frozen weights (which are referenced by source + fingerprint)."""
        frozen = self._frozen_names()
        state = {}
        for name, t in self.state_dict().items():
            if name in frozen or (name.startswith("body.") and "lora_" not in name):
                continue  # frozen body buffers (rotary) are rebuilt from the source
            if name.startswith("vision.backbone.") and not self.config.vision_trainable:
                continue
            state[name] = t.detach().contiguous().cpu()
        return state

    def frozen_fingerprints(self) -> dict[str, str]:
        body = [(n, p) for n, p in self.body.named_parameters() if "lora_" not in n]
        out = {"body": body_lib.fingerprint(body)}
        if self.vision is not None and not self.config.vision_trainable:
            out["vision"] = body_lib.fingerprint(self.vision.backbone.state_dict().items())
        return out

    def save_pretrained(self, directory: str | Path,
                        dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` + ``trainable.safetensors`` (trainable weights only), atomically.

        ``dtype`` (e.g. ``torch.float16``: half the file, for shipping) stores the floating
        point tensors in that type; integer tensors (BatchNorm counters) are kept as they
        are, and so is any tensor whose values the type cannot hold (beyond fp16's 65504).
        :meth:`from_pretrained` casts them back to the model's own types.
        """
        from safetensors.torch import save

        from fusionbrain.utils.io import atomic_open, write_json_atomic

        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise UserError(f"save_pretrained: dtype must be a torch floating type, got {dtype!r}")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = self._trainable_state()
        if dtype is not None:
            state = {name: _cast_storable(t, dtype) for name, t in state.items()}
        with atomic_open(directory / WEIGHTS_NAME, "wb") as f:
            f.write(save(state, metadata={"format": str(ARTEFACT_FORMAT)}))
        for head in self.heads.values():  # e.g. HTR's character n-gram
            if hasattr(head, "save_artefacts"):
                head.save_artefacts(directory)
        stored = sorted({str(t.dtype).removeprefix("torch.") for t in state.values()
                         if t.is_floating_point()})
        meta = {"format": ARTEFACT_FORMAT, "model": self.config.to_dict(),
                "tasks": self.task_names, "frozen": self.frozen_fingerprints(),
                "weights": WEIGHTS_NAME, "trainable_keys": len(state),
                "weights_dtype": "+".join(stored) or None}
        write_json_atomic(directory / CONFIG_NAME, meta, indent=2)  # last: marks complete
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu") -> FusionBrain:
        """Rebuild from ``save_pretrained``'s folder; any wrong/missing file is a UserError.

        ``directory`` may also name a shipped model (``"fusionbrain-cpu-long"``, or
        ``"models/fusionbrain-cpu-long"`` from any folder) when it is not an existing path:
        see :mod:`fusionbrain.model.pretrained`.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load

        from fusionbrain.model.configuration import FusionBrainConfig
        from fusionbrain.model.pretrained import resolve_model
        from fusionbrain.utils.io import read_json

        directory = resolve_model(directory)
        if not directory.is_dir():
            raise UserError("model folder not found" if not directory.exists()
                            else "is a file, expected a model folder", path=directory)
        cfg_path = directory / CONFIG_NAME
        meta = read_json(cfg_path, expect=dict)
        for key in ("format", "model", "tasks", "frozen"):
            if key not in meta:
                raise UserError("missing key in model config", path=cfg_path, key=key)
        if meta["format"] != ARTEFACT_FORMAT:
            raise UserError(f"unsupported artefact format {meta['format']!r} "
                            f"(expected {ARTEFACT_FORMAT})", path=cfg_path, key="format")
        config = FusionBrainConfig.from_dict(meta["model"], source=str(cfg_path))
        if not isinstance(meta["tasks"], list) or not meta["tasks"]:
            raise UserError("expected a non-empty list of task names", path=cfg_path, key="tasks")
        for t in meta["tasks"]:
            if not isinstance(t, str) or t not in TASKS:
                raise UserError(f"unknown task {t!r}; expected some of {', '.join(TASKS)}",
                                path=cfg_path, key="tasks")
        if not isinstance(meta["frozen"], dict):
            raise UserError("expected an object of fingerprints", path=cfg_path, key="frozen")
        weights = meta.get("weights", WEIGHTS_NAME)
        if not isinstance(weights, str) or not weights or Path(weights).name != weights:
            raise UserError("expected the file name of the weights beside config.json",
                            path=cfg_path, key="weights")
        if "body" not in meta["frozen"]:  # checked before the (slow) body load
            raise UserError("the body's fingerprint is missing", path=cfg_path, key="frozen")
        model = cls(config, tasks=meta["tasks"])
        got = model.frozen_fingerprints()
        for part, want in meta["frozen"].items():
            if got.get(part) != want:
                raise UserError(f"the frozen {part} weights differ from the ones this model was "
                                f"trained on (fingerprint {got.get(part)} != {want})",
                                path=cfg_path, key=f"frozen.{part}")
        # every frozen part must be checked: "frozen": {} would skip the check and load
        # the trained weights onto a body they were not trained with
        if set(meta["frozen"]) != set(got):
            raise UserError(f"expected the fingerprints of {', '.join(sorted(got))}, got "
                            f"{', '.join(sorted(map(str, meta['frozen']))) or 'none'}",
                            path=cfg_path, key="frozen")
        w_path = directory / weights
        if not w_path.is_file():
            raise UserError("weights file missing", path=w_path)
        try:
            state = load(w_path.read_bytes())
        except (SafetensorError, ValueError, OSError) as e:
            raise UserError(f"not a valid safetensors file ({str(e).splitlines()[0]})",
                            path=w_path) from None
        expected = model._trainable_state()
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        if missing or extra:
            detail = f"missing {missing[:2]}" if missing else f"unexpected {extra[:2]}"
            raise UserError(f"weights do not match the config ({detail})", path=w_path)
        for name, t in state.items():
            want = expected[name]
            if tuple(t.shape) != tuple(want.shape):
                raise UserError(f"shape {tuple(t.shape)} != {tuple(want.shape)}",
                                path=w_path, key=name)
            if t.dtype != want.dtype:
                # fp16/bf16 files (save_pretrained(dtype=...)) load into the model's own
                # types; an integer tensor must not become a float or the reverse
                if not (t.is_floating_point() and want.is_floating_point()):
                    raise UserError(f"dtype {t.dtype} != {want.dtype}", path=w_path, key=name)
                state[name] = t.to(want.dtype)
        model.load_state_dict(state, strict=False)
        for head in model.heads.values():
            if hasattr(head, "load_artefacts"):
                head.load_artefacts(directory)
        return model.to(map_location)


def _cast_storable(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` in ``dtype`` for storage if it is floating point and every finite value fits
    (an fp16 overflow would load back as inf); else ``t`` unchanged."""
    if not t.is_floating_point() or t.dtype == dtype:
        return t
    finite = t[torch.isfinite(t)]
    if finite.numel() and float(finite.abs().max()) > torch.finfo(dtype).max:
        return t
    return t.to(dtype).contiguous()


def _unique(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    """Parameters without duplicates (tied embeddings count once)."""
    seen: dict[int, nn.Parameter] = {}
    for p in params:
        seen.setdefault(id(p), p)
    return list(seen.values())
