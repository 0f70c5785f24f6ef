"""The shipped model (models/fusionbrain-cpu-long) as a user of a fresh clone gets it: it loads
by name with the frozen body from its package, is the model `predict` takes when no --model is
given, and reads handwriting it never saw.

Reading is checked on new test words (the embedded test's generator, held-out hands and
test-only words), with a floor far under the model card's measured figure, so the check holds
on any CPU's floats but fails for a model that does not read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fusionbrain.model import FusionBrain
from fusionbrain.model.pretrained import DEFAULT_MODEL, named_model_dir

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / DEFAULT_MODEL
N_WORDS = 40


@pytest.fixture(scope="module")
def shipped() -> FusionBrain:
    torch.set_num_threads(2)
    return FusionBrain.from_pretrained(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def test_words(tmp_path_factory):
    from fusionbrain.tasks.htr.synthetic import generate

    return generate("test", N_WORDS, 0, tmp_path_factory.mktemp("words"))


def test_the_shipped_model_is_small_fp16_and_documented():
    assert named_model_dir(DEFAULT_MODEL) == SHIPPED
    weights = SHIPPED / "trainable.safetensors"
    assert weights.stat().st_size <= 40 * 2**20
    config = json.loads((SHIPPED / "config.json").read_text())
    assert config["weights_dtype"] == "float16"
    card = (SHIPPED / "README.md").read_text()
    assert "TODO" not in card and "fusionbrain train" in card


def test_the_shipped_model_reads_new_hands(shipped, test_words):
    from fusionbrain.tasks.htr.metric import edit_distance

    got = shipped.predict("HTR", test_words, batch_size=32)
    exact = sum(g == w.text for g, w in zip(got, test_words, strict=True)) / len(test_words)
    cer = sum(edit_distance(g, w.text) for g, w in zip(got, test_words, strict=True)) / sum(
        len(w.text) for w in test_words)
    assert exact >= 0.4 and cer <= 0.3, (exact, cer, got[:10])


def test_predict_without_model_uses_the_shipped_model(test_words, tmp_path):
    inp = tmp_path / "input" / "HTR" / "images"
    inp.mkdir(parents=True)
    for w in test_words[:4]:
        (inp / Path(w.image_path).name).write_bytes(Path(w.image_path).read_bytes())
    res = subprocess.run([sys.executable, "-m", "fusionbrain", "predict", "--input",
                          str(tmp_path / "input"), "--output", str(tmp_path / "out"),
                          "--no-energy", "--no-progress"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env={**{k: v for k, v in os.environ.items() if k != "FUSIONBRAIN_MODEL"},
                              "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    assert DEFAULT_MODEL in res.stdout + res.stderr
    pred = json.loads((tmp_path / "out" / "prediction_HTR.json").read_text())
    assert sorted(pred) == sorted(Path(w.image_path).name for w in test_words[:4])
