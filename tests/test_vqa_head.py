"""VQA answer modes: "classify" (answers learnt from the training data) beside "generate"."""

from __future__ import annotations

import pytest
import torch
from PIL import Image, ImageDraw

from fusionbrain.errors import UserError
from fusionbrain.model import FusionBrain, preset
from fusionbrain.tasks.vqa.data import VQASample
from fusionbrain.tasks.vqa.head import answer_targets, fit_config


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("vqa")
    out = {}
    for colour in ("red", "blue"):
        im = Image.new("RGB", (64, 64), "white")
        ImageDraw.Draw(im).ellipse([10, 10, 50, 50], fill=colour)
        im.save(d / f"{colour}.png")
        out[colour] = str(d / f"{colour}.png")
    return out


def _samples(photos: dict[str, str]) -> list[VQASample]:
    return [VQASample("0", photos["red"], "What colour is the circle?", ["red"]),
            VQASample("1", photos["blue"], "What colour is the circle?", ["blue"]),
            VQASample("2", photos["red"], "Какого цвета круг?", ["красный"], "ru"),
            VQASample("3", photos["blue"], "Is there a circle?", ["yes", "yes", "no"])]


def test_fit_config_lists_training_answers_most_frequent_first(photos):
    cfg = preset("tiny").replace(vqa_answer_mode="classify", vqa_max_answers=3)
    got = fit_config(cfg, _samples(photos))["answers"]
    assert got == ["yes", "red", "blue"]  # yes x2; then first seen wins ties; capped at 3
    assert fit_config(preset("tiny"), _samples(photos)) == {}  # generate mode: nothing


def test_answer_targets_share_the_mass_and_skip_unknown():
    index = {"yes": 0, "no": 1}
    assert answer_targets(["yes", "yes", "no", "maybe"], index, 2) == pytest.approx([2 / 3, 1 / 3])
    assert answer_targets(["maybe"], index, 2) is None


def test_classify_mode_learns_saves_and_reloads(photos, tmp_path):
    samples = _samples(photos)
    cfg = FusionBrain.fit_config(preset("tiny").replace(vqa_answer_mode="classify"),
                                 {"VQA": samples})
    assert cfg.vqa_answers[:2] == ["yes", "red"]
    torch.manual_seed(0)
    model = FusionBrain(cfg, tasks=["VQA"])
    batch = model.collate("VQA", samples)
    opt = torch.optim.AdamW(model.trainable_parameters("VQA"), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = model("VQA", batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    pred = model.predict("VQA", samples)
    assert pred == ["red", "blue", "красный", "yes"]  # fits its four questions
    model.save_pretrained(tmp_path / "m")
    again = FusionBrain.from_pretrained(tmp_path / "m")
    assert again.config.vqa_answers == cfg.vqa_answers
    assert again.predict("VQA", samples) == pred


def test_classify_mode_goes_through_the_body(photos):
    samples = _samples(photos)
    cfg = FusionBrain.fit_config(preset("tiny").replace(vqa_answer_mode="classify"),
                                 {"VQA": samples})
    torch.manual_seed(0)
    model = FusionBrain(cfg, tasks=["VQA"])
    batch = model.collate("VQA", samples)
    with torch.no_grad():
        before = model.heads["VQA"]._answer_logits(model, batch)
        model.body.base_model.layers[0].mlp.down_proj.weight.mul_(3.0)
        after = model.heads["VQA"]._answer_logits(model, batch)
    assert not torch.allclose(before, after)


def test_classify_mode_without_answers_builds_but_will_not_answer(photos):
    model = FusionBrain(preset("tiny").replace(vqa_answer_mode="classify"), tasks=["VQA"])
    assert model.parameter_counts()["total_parameters"] > 0  # `fusionbrain info` works untrained
    with pytest.raises(UserError, match="VQA.answers"):
        model.predict("VQA", _samples(photos))
