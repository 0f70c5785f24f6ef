"""The head <-> model contract: the only model members a task head may use.

``tasks/<task>/head.py`` receives the model as a :class:`HeadModel`; FusionBrain implements
it (``isinstance(model, HeadModel)`` holds at run time). A head reaches the shared parts
only through these primitives, so the body, vision encoder and their internals can change
without touching a task folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn

    from fusionbrain.model.configuration import FusionBrainConfig


@runtime_checkable
class HeadModel(Protocol):
    """What a head may call on the model (FusionBrain's primitives)."""

    config: FusionBrainConfig
    tokenizer: Any  # the body's tokenizer (``tokenizer.decode`` for generated ids)
    hidden_size: int  # width D of the body's embeddings and outputs
    eos_id: int
    pad_id: int

    @property
    def device(self) -> torch.device: ...

    @property
    def embedding(self) -> nn.Embedding:
        """The body's frozen token embeddings (``adapters.embedding_scale`` reads their scale)."""
        ...

    # -- text and the shared body
    def embed_ids(self, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Token ids -> body input embeddings (L, D) or (B, L, D)."""
        ...

    def text_ids(self, text: str, max_tokens: int | None = None) -> list[int]: ...

    @staticmethod
    def assemble(parts: list[list[torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample lists of (L_k, D) pieces -> left-padded embeds (B, L, D), mask (B, L)."""
        ...

    def run_body(self, embeds: torch.Tensor, mask: torch.Tensor | None = None,
                 past: Any = None, position_ids: torch.Tensor | None = None,
                 use_cache: bool = False) -> tuple[torch.Tensor, Any]:
        """The shared body: last hidden states (B, L, D) (and the cache with use_cache)."""
        ...

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The body's own (frozen) LM head."""
        ...

    def lm_loss(self, prefixes: list[list[torch.Tensor]], targets: list[list[int]]
                ) -> torch.Tensor:
        """Mean cross-entropy of the body writing each target after its prefix."""
        ...

    def generate(self, prefixes: list[list[torch.Tensor]], max_new_tokens: int,
                 num_beams: int = 1, length_penalty: float = 1.0) -> list[list[int]]:
        """Greedy or beam-search continuation of each prefix, until EOS."""
        ...

    # -- the shared vision encoder (heads whose module sets NEEDS_VISION)
    def encode_images(self, pixels: torch.Tensor, keys: list[str | None] | None = None
                      ) -> torch.Tensor:
        """(B, 3, S, S) pixels -> (B, T, D) image tokens."""
        ...

    def vision_channels(self) -> tuple[int, int]:
        """Channels of the (last, stride-16) maps of :meth:`vision_feature_maps`."""
        ...

    def vision_feature_maps(self, pixels: torch.Tensor, keys: list[str | None] | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone's (stride-16, last) spatial maps: (B, C_mid, H, W), (B, C, h, w)."""
        ...
