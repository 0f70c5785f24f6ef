"""The dense zsOD head on the tiny preset: targets, training, the challenge output format,
the shared body's role, the vision encoder's maps and caches, save/load."""

from __future__ import annotations

import pytest
import torch
from PIL import Image, ImageDraw

from fusionbrain.model import FusionBrain
from fusionbrain.tasks.zsod.data import ZsODSample
from fusionbrain.tasks.zsod.head import centre_targets, positive_cells


@pytest.fixture(scope="module")
def model() -> FusionBrain:
    torch.manual_seed(0)
    return FusionBrain("tiny", tasks=["zsOD", "VQA"])


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> list[ZsODSample]:
    d = tmp_path_factory.mktemp("zsod")
    a = Image.new("RGB", (160, 120), "white")
    ImageDraw.Draw(a).rectangle([20, 30, 80, 90], fill="red")
    a.save(d / "a.jpg")
    b = Image.new("RGB", (100, 100), "white")
    ImageDraw.Draw(b).ellipse([50, 10, 90, 50], fill="blue")
    ImageDraw.Draw(b).ellipse([10, 60, 40, 90], fill="blue")
    b.save(d / "b.png")
    return [ZsODSample("a", str(d / "a.jpg"), {"red box": [[20, 30, 60, 60]], "cat": []}),
            ZsODSample("b", str(d / "b.png"), {"синий круг": [[50, 10, 40, 40], [10, 60, 30, 30]],
                                               "red box": []}, "ru")]


def _set_absent_bias(model: FusionBrain, value: float) -> float:
    bias = model.heads["zsOD"].absent.bias
    old = float(bias.detach())
    with torch.no_grad():
        bias.fill_(value)
    return old


def test_targets_mark_the_true_centres():
    boxes = torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.8, 0.7, 0.3, 0.4]])
    t = centre_targets(boxes, 10, 10)
    assert t.shape == (100,) and t.sum().item() == pytest.approx(1.0)
    grid = t.reshape(10, 10)
    assert grid[2:4, 2:4].sum() > 0.3 and grid[6:8, 7:9].sum() > 0.3  # both objects
    assert grid[0, 9] < 1e-4
    cells, objs = positive_cells(boxes, 10, 10)
    assert 3 * 10 + 3 in cells.tolist() and 7 * 10 + 8 in cells.tolist()  # centre cells
    assert set(objs.tolist()) == {0, 1}
    # every positive cell lies inside the box it learns
    for c, k in zip(cells.tolist(), objs.tolist(), strict=True):
        cx, cy, w, h = boxes[k].tolist()
        assert abs((c % 10 + 0.5) / 10 - cx) <= w / 2 + 0.05
        assert abs((c // 10 + 0.5) / 10 - cy) <= h / 2 + 0.05


def test_loss_decreases_on_a_tiny_batch(samples):
    torch.manual_seed(1)
    model = FusionBrain("tiny", tasks=["zsOD"])
    model.train()
    batch = model.collate("zsOD", samples)
    opt = torch.optim.AdamW(model.trainable_parameters("zsOD"), lr=3e-3)
    first = model("zsOD", batch)
    assert set(first) >= {"loss", "loss_l1", "loss_giou", "loss_score"}
    for _ in range(8):
        opt.zero_grad()
        model("zsOD", batch)["loss"].backward()
        opt.step()
    last = model("zsOD", batch)
    for key in ("loss", "loss_l1", "loss_giou", "loss_score"):
        assert last[key].item() < first[key].item(), key


def test_predict_writes_the_challenge_format(model, samples):
    sizes = {"a": (160, 120), "b": (100, 100)}
    old = _set_absent_bias(model, -50.0)  # "present" everywhere: every phrase gets boxes
    try:
        found = model.predict("zsOD", samples)
    finally:
        _set_absent_bias(model, old)
    assert [set(d) for d in found] == [set(s.phrases) for s in samples]
    for s, det in zip(samples, found, strict=True):
        w, h = sizes[s.id]
        for boxes in det.values():
            assert 1 <= len(boxes) <= model.heads["zsOD"].max_boxes
            scores = [b[0] for b in boxes]
            assert scores[0] == max(scores) and all(0 < v <= 1 for v in scores)
            for _, x, y, bw, bh in boxes:  # pixels of the original image, inside it
                assert x >= 0 and y >= 0 and bw > 0 and bh > 0
                assert x + bw <= w + 0.11 and y + bh <= h + 0.11
    old = _set_absent_bias(model, 50.0)  # "absent" everywhere: [] for every phrase
    try:
        assert model.predict("zsOD", samples) == [{p: [] for p in s.phrases} for s in samples]
    finally:
        _set_absent_bias(model, old)


def test_overfits_one_box(samples):
    """A few steps on one image and phrase: the phrase is judged present and the peak
    box hits the true one (IoU >= 0.5)."""
    from fusionbrain.tasks.zsod.metric import score

    torch.manual_seed(2)
    model = FusionBrain("tiny", tasks=["zsOD"])
    model.train()
    one = [ZsODSample("a", samples[0].image_path, {"red box": [[20, 30, 60, 60]]})]
    batch = model.collate("zsOD", one)
    opt = torch.optim.AdamW(model.trainable_parameters("zsOD"), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        model("zsOD", batch)["loss"].backward()
        opt.step()
    det = model.predict("zsOD", one, threshold=0.5)[0]
    assert det["red box"], det
    res = score({"a": {"red box": det["red box"][:1]}}, {"a": one[0].phrases})
    assert res["tp"] == 1, det


def test_outputs_depend_on_the_body_and_the_phrase(model, samples):
    head = model.heads["zsOD"]
    batch = model.collate("zsOD", samples)
    with torch.no_grad():
        logits, absent, boxes, h, w = head._outputs(model, batch)
        assert logits.shape == (4, h * w) and boxes.shape == (4, h * w, 4)
        assert absent.shape == (4,)
        weight = model.blocks[0].mlp.down_proj.weight
        saved = weight.clone()
        weight.add_(torch.randn_like(weight) * weight.std() * 2)
        try:
            changed, _, _, _, _ = head._outputs(model, batch)
        finally:
            weight.copy_(saved)
    assert not torch.allclose(changed, logits, atol=1e-5)
    # one image, two phrases: the phrase changes the cell scores
    assert not torch.allclose(logits[0], logits[1], atol=1e-5)


def test_vqa_image_tokens_and_the_shared_cache(model, samples):
    vision = model.vision
    batch = model.collate("zsOD", samples)
    vision.__dict__.pop("_feature_cache", None)
    vision.__dict__.pop("_map_cache", None)
    with torch.no_grad():
        fresh = model.encode_images(batch["pixels"])  # no keys: nothing cached
        assert fresh.shape == (2, vision.num_tokens, model.hidden_size)
        assert not vision.__dict__["_feature_cache"]
        mid, last = vision.feature_maps(batch["pixels"], batch["image_keys"])
        assert mid.shape[:2] == (2, vision.mid_channels) and last.shape[:2] == (2, vision.channels)
        assert mid.shape[-1] > last.shape[-1]  # the finer map
        # the maps' pass filled the pooled cache too: VQA tokens are served from it, equal
        assert len(vision.__dict__["_feature_cache"]) == 2
        cached = model.encode_images(torch.zeros_like(batch["pixels"]), batch["image_keys"])
        again_mid, _ = vision.feature_maps(torch.zeros_like(batch["pixels"]), batch["image_keys"])
    assert torch.equal(cached, fresh)
    assert torch.equal(again_mid, mid)
    # the stride-16 hook leaves no trace in the module tree (no duplicated weights)
    assert not any("_mid_layer" in n for n, _ in model.named_parameters())


def test_a_full_cache_serves_hits_it_evicts_while_storing_the_batch_misses(model, monkeypatch):
    """Once the caches are full, storing a batch's misses evicts the oldest entries, which
    may be hits of the same batch (the bug that stopped a long run at step 1336)."""
    from fusionbrain.model import vision as vision_mod

    vision = model.vision
    monkeypatch.setattr(vision_mod, "MAP_CACHE_SIZE", 2)
    monkeypatch.setattr(vision_mod, "FEATURE_CACHE_SIZE", 2)
    vision.__dict__.pop("_feature_cache", None)
    vision.__dict__.pop("_map_cache", None)
    torch.manual_seed(0)
    pixels = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        want_mid, _ = vision.feature_maps(pixels, None)
        want_tokens = model.encode_images(pixels)
        vision.feature_maps(pixels[:2], ["a", "b"])  # the map cache is full: a, b
        mid, _ = vision.feature_maps(pixels[[0, 2, 3]], ["a", "c", "d"])  # a hit, c d evict it
        model.encode_images(pixels[:2], ["a", "b"])
        tokens = model.encode_images(pixels[[1, 2, 3]], ["b", "c", "d"])
    assert torch.equal(mid, want_mid[[0, 2, 3]].to(torch.float16).float())
    assert torch.equal(tokens, want_tokens[[1, 2, 3]])
    assert list(vision.__dict__["_map_cache"]) == ["c", "d"]


def test_save_and_load_give_identical_boxes(samples, tmp_path):
    model = FusionBrain("tiny", tasks=["zsOD"])
    with torch.no_grad():  # trained-looking weights, different from a fresh build
        for p in model.heads["zsOD"].parameters():
            p.add_(torch.randn_like(p) * 0.05)
    _set_absent_bias(model, -50.0)
    want = model.predict("zsOD", samples)
    assert any(boxes for det in want for boxes in det.values())
    model.save_pretrained(tmp_path / "m")
    again = FusionBrain.from_pretrained(tmp_path / "m")
    assert again.predict("zsOD", samples) == want
