"""The HTR head on the tiny random model: it learns (CTC loss falls, a few words are
overfitted to their exact transcriptions), really uses the shared body, predicts strings
that do not depend on batch mates, and survives save/from_pretrained unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from body_passes import count_body_passes
from ctc_frames import frame_log_probs
from PIL import Image, ImageDraw

from fusionbrain.model import FusionBrain
from fusionbrain.tasks.htr import charset
from fusionbrain.tasks.htr.data import HTRSample
from fusionbrain.tasks.htr.head import _frame_targets, greedy_decode

WORDS = ["cat", "dog", "sun"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: one thread is several times faster than two contending ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def words(tmp_path_factory) -> list[HTRSample]:
    d = tmp_path_factory.mktemp("htr")
    out = []
    for i, w in enumerate(WORDS):
        im = Image.new("L", (40, 16), 235)  # grey paper, like the real word images
        ImageDraw.Draw(im).text((2, 2), w, fill=20)
        im.save(d / f"{i}.png")
        out.append(HTRSample(str(i), str(d / f"{i}.png"), w, "en"))
    wide = Image.new("L", (120, 16), 235)
    ImageDraw.Draw(wide).text((2, 2), "a much wider one", fill=20)
    wide.save(d / "wide.png")
    out.append(HTRSample("wide", str(d / "wide.png"), "a much wider one", "en"))
    return out


@pytest.fixture(scope="module")
def trained(words) -> tuple[FusionBrain, list[float]]:
    """A tiny model trained on the three short words only (HTR parameters)."""
    torch.manual_seed(0)
    model = FusionBrain("tiny", tasks=["HTR"])
    model.train()
    opt = torch.optim.AdamW(model.trainable_parameters("HTR"), lr=3e-3)
    batch = model.collate("HTR", words[:3], train=False)  # fixed images: no augmentation
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = model("HTR", batch)["loss"]
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, losses


def test_frame_targets_put_each_character_in_its_share_of_the_ink():
    ink = np.zeros((10, 50), dtype=np.float32)
    ink[2:7, 8:32] = 1.0  # ink over pixels 8..31, group 4 -> frames 2..7
    ids = charset.encode("abc")
    want = [0, 0, 0, ids[0], 0, ids[1], 0, ids[2], 0, 0, 0, 0]
    # characters at the centres of 8 px shares: pixels 12, 20, 28 -> frames 3, 5, 7
    assert _frame_targets(ink, ids, 4, 12).tolist() == want
    assert _frame_targets(ink, [], 4, 12).tolist() == [0] * 12
    # a form line under the word and a box wall right of it are not the word's ink
    ink[8, :] = 1.0
    ink[:, 45] = 1.0
    assert _frame_targets(ink, ids, 4, 12).tolist() == want


def _logp(texts_per_frame: list[list[tuple[str, float]]]) -> torch.Tensor:
    return frame_log_probs(texts_per_frame, floor=1e-4)


def test_greedy_decode_keeps_one_script_per_image():
    # "ТОМ" in Cyrillic, but the middle column's best single guess is the Latin "O"
    logp = _logp([[("Т", 0.9)], [("", 0.9)], [("O", 0.5), ("О", 0.45)], [("", 0.9)],
                  [("М", 0.6), ("M", 0.3)]])
    lengths = torch.tensor([5])
    masks = torch.tensor(list(charset.script_masks().values()))
    assert greedy_decode(logp, lengths) == ["ТOМ"]  # mixed scripts per column
    assert greedy_decode(logp, lengths, masks) == ["ТОМ"]
    # digits and punctuation are read in either script; frames past the length are ignored
    digits = _logp([[("1", 0.9)], [("9", 0.9)], [("", 0.9)], [("A", 0.9)]])
    assert greedy_decode(digits, torch.tensor([2]), masks) == ["19"]


def test_alignment_loss_fades_with_the_run():
    head = FusionBrain("tiny", tasks=["HTR"]).heads["HTR"]
    assert head._align_weight() == head.align_weight > 0  # no fade by default
    head.align_until = 0.5
    head.set_progress(0.25)
    assert head._align_weight() == pytest.approx(0.5 * head.align_weight)
    head.set_progress(0.75)
    assert head._align_weight() == 0.0


def test_collate_shapes_and_targets(trained, words):
    model, _ = trained
    b = model.collate("HTR", words, train=False)
    n, _, h, w = b["images"].shape
    assert n == 4 and h == model.config.htr_height
    assert float(b["images"].min()) >= 0 and float(b["images"].max()) <= 1
    assert b["target_lengths"].tolist() == [len(s.text) for s in words]
    assert b["frame_targets"].shape == (4, w // model.config.htr_column_group)
    # padding frames are ignored by the alignment loss, real frames are not
    for i, length in enumerate(b["input_lengths"].tolist()):
        assert (b["frame_targets"][i, :length] >= 0).all()
        assert (b["frame_targets"][i, length:] == -100).all()


def test_training_lowers_the_loss_and_overfits_three_words(trained, words):
    model, losses = trained
    assert losses[-1] < 0.2 * losses[0], losses[::10]
    assert model.predict("HTR", words[:3]) == WORDS


def test_predictions_are_strings_independent_of_batch_mates(trained, words):
    model, _ = trained
    together = model.predict("HTR", words)
    assert all(isinstance(t, str) for t in together)
    alone = [model.predict("HTR", [s])[0] for s in words]
    assert together == alone


def test_the_body_shapes_the_htr_output(trained, words):
    model, _ = trained
    model.eval()
    batch = model.collate("HTR", words[:3], train=False)
    with torch.no_grad():
        before = model.heads["HTR"]._logits(model, batch)[0]
        w = model.blocks[-1].mlp.down_proj.weight
        saved = w.clone()
        w.add_(torch.randn_like(w) * w.std() * 2)
        try:
            after = model.heads["HTR"]._logits(model, batch)[0]
        finally:
            w.copy_(saved)
    assert (after - before).abs().max() > 1e-3


def test_save_and_load_give_identical_predictions(trained, words, tmp_path):
    model, _ = trained
    want = model.predict("HTR", words)
    model.save_pretrained(tmp_path / "m")
    again = FusionBrain.from_pretrained(tmp_path / "m")
    assert again.predict("HTR", words) == want
    batch = model.collate("HTR", words, train=False)
    model.eval()
    again.eval()
    with torch.no_grad():
        a = model.heads["HTR"]._logits(model, batch)[0]
        b = again.heads["HTR"]._logits(again, batch)[0]
    assert torch.equal(a, b)


def test_body_warmup_trains_the_adapter_alone_then_the_body_joins_from_zero(words):
    torch.manual_seed(0)
    model = FusionBrain(FusionBrain("tiny").config.replace(htr_body_warmup=0.5), tasks=["HTR"])
    head = model.heads["HTR"]
    assert torch.count_nonzero(head.from_body[1].weight) == 0  # the body's residual starts at 0
    calls = count_body_passes(model)
    batch = model.collate("HTR", words[:3], train=False)
    model.train()
    head.set_progress(0.25)
    opt = torch.optim.AdamW(model.trainable_parameters("HTR"), lr=3e-3)
    for _ in range(3):  # warm-up: no body pass, but the adapter and classifier learn
        opt.zero_grad()
        model("HTR", batch)["loss"].backward()
        opt.step()
    assert calls == []
    assert torch.count_nonzero(head.from_body[1].weight) == 0  # got no gradient: unused
    model.eval()  # prediction always reads through the body (its residual is 0 so far)
    model.predict("HTR", words[:1])
    assert len(calls) == 1
    model.train()
    head.set_progress(0.5)  # warm-up over: the body joins and its residual learns
    opt.zero_grad()
    model("HTR", batch)["loss"].backward()
    opt.step()
    assert len(calls) == 2 and torch.count_nonzero(head.from_body[1].weight) > 0
