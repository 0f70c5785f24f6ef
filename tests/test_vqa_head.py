"""VQA answer modes: "classify" (answers learnt from the training data) beside "generate"."""

from __future__ import annotations

import pytest
import torch
from body_passes import count_body_passes
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


def _typed_samples(photos: dict[str, str]) -> list[VQASample]:
    """Question openings with clear favourites: 'is there' -> yes, 'what colour' -> red."""
    qa = [("Is there a circle?", "yes"), ("Is there a square?", "yes"), ("Is there a cat?", "no"),
          ("What colour is the circle?", "red"), ("What colour is the disc?", "red"),
          ("What colour is the sky?", "blue"), ("How many circles?", "2")]
    return [VQASample(str(i), photos["red"], q, [a]) for i, (q, a) in enumerate(qa)]


def _prior_model(samples: list[VQASample], prior_weight: float):
    """A tiny classify-mode VQA model (seed 0) with its answer prior fitted on ``samples``."""
    cfg = FusionBrain.fit_config(preset("tiny").replace(vqa_answer_mode="classify",
                                                        vqa_prior_weight=prior_weight),
                                 {"VQA": samples})
    torch.manual_seed(0)
    model = FusionBrain(cfg, tasks=["VQA"])
    model.fit_data({"VQA": samples})
    return cfg, model


def test_answer_prior_per_question_opening(photos, tmp_path):
    from fusionbrain.tasks.vqa.head import clean_answer
    from fusionbrain.tasks.vqa.prior import AnswerPrior

    answers = ["yes", "red", "no", "blue", "2"]
    prior = AnswerPrior.fit(((s.question, s.answers) for s in _typed_samples(photos)), answers,
                            clean_answer)
    lp = prior.log_probs(["Is there a dog?", "What colour is the car?", "Why?"])
    assert torch.exp(lp).sum(-1) == pytest.approx(torch.ones(3), abs=1e-5)
    assert torch.isfinite(lp).all()  # every answer keeps some mass
    assert lp[0].argmax() == 0 and lp[1].argmax() == 1  # yes; red
    assert lp[2].argmax() == 0  # unknown opening: the overall favourite
    assert lp[0, 0] > lp[2, 0]  # the opening sharpens it
    prior.save(tmp_path / "p.json.gz")
    again = AnswerPrior.load(tmp_path / "p.json.gz", len(answers))
    assert torch.equal(again.log_probs(["Is there a dog?"]), prior.log_probs(["Is there a dog?"]))
    with pytest.raises(UserError, match="over 5 answers"):
        AnswerPrior.load(tmp_path / "p.json.gz", 4)
    (tmp_path / "bad.json.gz").write_bytes(b"not gzip")
    with pytest.raises(UserError, match="gzipped VQA answer prior"):
        AnswerPrior.load(tmp_path / "bad.json.gz", 5)


def test_untrained_model_with_a_strong_prior_answers_like_the_baseline(photos, tmp_path):
    """The prior is a residual base: with a large weight the untrained classifier cannot
    move the answer off the per-opening favourite, which is the trivial baseline's answer."""
    from fusionbrain.tasks.vqa import baseline

    samples = _typed_samples(photos)
    cfg, model = _prior_model(samples, 100.0)
    test = [VQASample("a", photos["blue"], "Is there a dog?", []),
            VQASample("b", photos["blue"], "What colour is the car?", [])]
    expected = baseline.predict(baseline.fit(samples), test)
    assert expected == ["yes", "red"]
    assert model.predict("VQA", test) == expected
    model.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "vqa_prior.json.gz").is_file()
    back = FusionBrain.from_pretrained(tmp_path / "m")
    assert back.predict("VQA", test) == expected
    kept = back.heads["VQA"].prior
    back.fit_data({"VQA": samples[:1]}, keep_fitted=True)  # a second stage keeps it
    assert back.heads["VQA"].prior is kept
    # without the prior (weight 0: nothing fitted) the same model saves no prior file
    plain = FusionBrain(cfg.replace(vqa_prior_weight=0.0), tasks=["VQA"])
    plain.fit_data({"VQA": samples})
    plain.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m" / "vqa_prior.json.gz").exists()


def test_body_warmup_trains_the_question_reader_alone_then_the_body_joins_from_zero(photos):
    samples = _samples(photos)
    cfg = FusionBrain.fit_config(
        preset("tiny").replace(vqa_answer_mode="classify", vqa_body_warmup=0.5), {"VQA": samples})
    torch.manual_seed(0)
    model = FusionBrain(cfg, tasks=["VQA"])
    head = model.heads["VQA"]
    body_in = head.classifier.question[1]
    assert torch.count_nonzero(body_in.weight) == 0  # the body's question state starts at 0
    assert torch.count_nonzero(body_in.bias) == 0
    calls = count_body_passes(model)
    batch = model.collate("VQA", samples)
    model.train()
    head.set_progress(0.25)
    reader_before = [p.detach().clone() for p in head.reader.parameters()]
    opt = torch.optim.AdamW(model.trainable_parameters("VQA"), lr=3e-3)
    losses = []
    for _ in range(30):  # warm-up: no body pass, but the reader and classifier learn
        loss = model("VQA", batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert calls == []
    assert losses[-1] < 0.5 * losses[0]
    moved = zip(reader_before, head.reader.parameters(), strict=True)
    assert any(not torch.equal(a, b) for a, b in moved)
    assert torch.count_nonzero(body_in.weight) == 0  # got no gradient: unused so far
    with torch.no_grad():
        warm = head._answer_logits(model, batch)  # the reader alone
    model.eval()  # prediction always reads through the body (its share is 0 so far)
    model.predict("VQA", samples[:1])
    assert len(calls) == 1
    model.train()
    head.set_progress(0.5)  # warm-up over: the body joins and its projection learns
    with torch.no_grad():
        joined = head._answer_logits(model, batch)
    assert len(calls) == 2
    assert torch.allclose(joined, warm, atol=1e-5)  # joining from zero: no jump
    opt.zero_grad()
    model("VQA", batch)["loss"].backward()
    opt.step()
    assert len(calls) == 3 and torch.count_nonzero(body_in.weight) > 0
    with torch.no_grad():
        assert not torch.allclose(head._answer_logits(model, batch), warm, atol=1e-3)


def test_body_warmup_model_saves_and_reloads_its_reader(photos, tmp_path):
    samples = _samples(photos)
    cfg = FusionBrain.fit_config(
        preset("tiny").replace(vqa_answer_mode="classify", vqa_body_warmup=0.5), {"VQA": samples})
    torch.manual_seed(0)
    model = FusionBrain(cfg, tasks=["VQA"]).eval()
    with torch.no_grad():  # a trained-looking reader: not its initial values
        for p in model.heads["VQA"].reader.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "m")
    again = FusionBrain.from_pretrained(tmp_path / "m").eval()
    assert again.config.task("VQA").body_warmup == 0.5
    for (name, a), b in zip(model.heads["VQA"].reader.state_dict().items(),
                            again.heads["VQA"].reader.state_dict().values(), strict=True):
        assert torch.allclose(a, b.to(a.dtype), atol=1e-3), name  # fp16 storage
    assert again.predict("VQA", samples) == model.predict("VQA", samples)


@pytest.mark.parametrize("key", ["vqa_body_warmup", "htr_body_warmup"])
def test_body_warmup_must_be_a_fraction(key):
    from fusionbrain.model.configuration import FusionBrainConfig

    with pytest.raises(UserError, match=rf"{key}.*expected a number in \[0, 1\], got 1.5"):
        FusionBrainConfig.from_dict({"preset": "tiny", key: 1.5}, source="m.json")
    assert FusionBrainConfig.from_dict({"preset": "tiny", key: 1.0}).task(
        key.split("_")[0].upper()).body_warmup == 1.0


def test_no_warmup_no_reader(photos):
    cfg = FusionBrain.fit_config(preset("tiny").replace(vqa_answer_mode="classify"),
                                 {"VQA": _samples(photos)})
    head = FusionBrain(cfg, tasks=["VQA"]).heads["VQA"]
    assert head.reader is None  # models saved before the option load as they were
    assert torch.count_nonzero(head.classifier.question[1].weight) > 0


def test_calibration_picks_the_prior_weight_on_valid_and_keeps_it(photos, tmp_path):
    """A classifier that says "no" to everything: on valid the prior's answers win, so
    calibration raises the prior's weight at prediction; training keeps prior_weight; the
    choice is saved with the prior. A classifier with nothing to say keeps weight x 1."""
    samples = _typed_samples(photos)
    cfg, model = _prior_model(samples, 1.0)
    head = model.heads["VQA"]
    out = head.classifier.out[-1]
    with torch.no_grad():
        out.weight.zero_()
        out.bias.zero_()
        out.bias[head.answers.index("no")] = 20.0
    assert set(model.predict("VQA", samples)) == {"no"}
    chosen = model.calibrate({"VQA": samples})["VQA"]
    assert chosen["prior_weight_at_prediction"] > 1.0
    assert chosen["valid_right"]["1"] < chosen["valid_right"]["64"]
    assert head.prior.weight_at_prediction == chosen["prior_weight_at_prediction"]
    pred = model.predict("VQA", samples)
    assert pred[:2] == ["yes", "yes"] and pred[3] == "red"  # the prior's favourites
    batch = model.collate("VQA", samples)
    model.train()
    with torch.no_grad():  # training adds prior_weight x log p, not the calibrated weight
        trained = head._answer_logits(model, batch)
    model.eval()
    assert set(head.answers[k] for k in trained.argmax(-1).tolist()) == {"no"}
    model.save_pretrained(tmp_path / "m")
    again = FusionBrain.from_pretrained(tmp_path / "m")
    assert again.heads["VQA"].prior.weight_at_prediction == chosen["prior_weight_at_prediction"]
    assert again.predict("VQA", samples) == pred
    with torch.no_grad():
        out.bias.zero_()  # nothing to say: every weight ties, the smallest is kept
    assert model.calibrate({"VQA": samples})["VQA"]["prior_weight_at_prediction"] == 1.0
    plain = FusionBrain(cfg.replace(vqa_prior_weight=0.0), tasks=["VQA"])
    assert plain.calibrate({"VQA": samples}) == {}  # no prior: nothing to choose
