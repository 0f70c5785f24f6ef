"""FusionBrain on the tiny random configuration: every task's forward, backward, predict,
sharing through the body, parameter counts, save/load."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image, ImageDraw

from fusionbrain.errors import UserError
from fusionbrain.model import FusionBrain, FusionBrainConfig, preset, resolve_config
from fusionbrain.tasks import TASKS
from fusionbrain.tasks.c2c.data import C2CSample
from fusionbrain.tasks.c2c.head import decode_code, encode_code
from fusionbrain.tasks.htr import charset
from fusionbrain.tasks.htr.data import HTRSample
from fusionbrain.tasks.vqa.data import VQASample
from fusionbrain.tasks.zsod.data import ZsODSample
from fusionbrain.tasks.zsod.head import cxcywh_to_xyxy, pairwise_giou


@pytest.fixture(scope="module")
def model() -> FusionBrain:
    torch.manual_seed(0)
    return FusionBrain("tiny")


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, list]:
    d = tmp_path_factory.mktemp("imgs")
    word = Image.new("L", (96, 30), 255)
    ImageDraw.Draw(word).text((4, 8), "hello", fill=0)
    word.save(d / "word.png")
    photo = Image.new("RGB", (160, 120), "white")
    ImageDraw.Draw(photo).rectangle([20, 30, 80, 90], fill="red")
    photo.save(d / "photo.jpg")
    return {
        "HTR": [HTRSample("0", str(d / "word.png"), "hello", "en"),
                HTRSample("1", str(d / "word.png"), "ёжик щ", "ru")],
        "VQA": [VQASample("0", str(d / "photo.jpg"), "What colour is the box?", ["red"]),
                VQASample("1", str(d / "photo.jpg"), "Какого цвета коробка?", ["красный"], "ru")],
        "zsOD": [ZsODSample("0", str(d / "photo.jpg"), {"red box": [[20, 30, 60, 60]], "cat": []}),
                 ZsODSample("1", str(d / "photo.jpg"), {"красная коробка": [[20, 30, 60, 60]]},
                            "ru")],
        "C2C": [C2CSample("0", "int f ( int x ) { return x + 1 ; }",
                          "def f ( x ) : NEW_LINE INDENT return x + 1 NEW_LINE DEDENT"),
                C2CSample("1", "int g ( ) { return 2 ; }",
                          "def g ( ) : NEW_LINE INDENT return 2 NEW_LINE DEDENT")],
    }


# -- configuration ---------------------------------------------------------------------
def test_config_json_roundtrip_and_errors(tmp_path):
    cfg = preset("tiny").replace(lora_r=3)
    again = FusionBrainConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    path = tmp_path / "c.json"
    path.write_text(cfg.to_json())
    assert resolve_config(str(path)) == cfg
    assert resolve_config('{"preset": "cpu-small"}').body_layers == 6
    with pytest.raises(UserError, match="unknown model config key"):
        FusionBrainConfig.from_dict({"preset": "tiny", "nope": 1})
    with pytest.raises(UserError, match="lora_r"):
        FusionBrainConfig.from_dict({"lora_r": "eight"})
    with pytest.raises(UserError, match="preset"):
        resolve_config("no-such-preset")


def test_charset_and_code_text():
    for ch in "ёЁйЙщЩъЪ09 ,.?!-azAZ":
        assert ch in charset.CHARSET
    assert charset.decode(charset.encode("Съешь ещё 5 булок!")) == "Съешь ещё 5 булок!"
    a, b = charset.encode("ab")
    assert charset.ctc_greedy([0, a, a, 0, a, b, b, 0]) == "aab"
    text = "def f ( x ) : NEW_LINE INDENT if x : NEW_LINE INDENT return 1 NEW_LINE DEDENT DEDENT"
    assert decode_code(encode_code(text)) == text
    assert "NEW_LINE" not in encode_code(text)


def test_giou_known_values():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [4.0, 0.0, 6.0, 2.0]])
    iou, giou = pairwise_giou(a, b)
    assert iou[0].tolist() == pytest.approx([1 / 7, 1.0, 0.0])
    assert giou[0, 0].item() == pytest.approx(1 / 7 - (9 - 7) / 9)
    assert giou[0, 2].item() == pytest.approx(0 - (12 - 8) / 12)
    assert cxcywh_to_xyxy(torch.tensor([0.5, 0.5, 0.2, 0.4])).tolist() == pytest.approx(
        [0.4, 0.3, 0.6, 0.7])


# -- every task: forward, backward, predict ----------------------------------------------
def test_task_registry_drives_heads(model):
    assert model.task_names == list(TASKS)


@pytest.mark.parametrize("task", list(TASKS))
def test_forward_backward(model, samples, task):
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(task, model.collate(task, samples[task]))
    loss = out["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    trainable = model.trainable_parameters(task)
    assert trainable and all(p.requires_grad for p in trainable)
    with_grad = [p for p in trainable if p.grad is not None and p.grad.abs().sum() > 0]
    assert len(with_grad) >= len(trainable) // 2
    # LoRA in the shared body learns from every task; the frozen body gets no gradient
    assert any(p.grad is not None for n, p in model.body.named_parameters() if "lora_" in n)
    assert all(p.grad is None for n, p in model.body.named_parameters() if "lora_" not in n)
    # head parameters of other tasks are untouched
    for other in model.task_names:
        if other != task:
            assert all(p.grad is None for p in model.heads[other].parameters())
    model.zero_grad(set_to_none=True)


def test_predict_output_types_and_determinism(model, samples):
    htr = model.predict("HTR", samples["HTR"])
    assert len(htr) == 2 and all(isinstance(t, str) for t in htr)
    vqa = model.predict("VQA", samples["VQA"])
    assert len(vqa) == 2 and all(isinstance(t, str) for t in vqa)
    c2c = model.predict("C2C", samples["C2C"])
    assert len(c2c) == 2 and all(isinstance(t, str) for t in c2c)
    det = model.predict("zsOD", samples["zsOD"])
    assert [set(d) for d in det] == [{"red box", "cat"}, {"красная коробка"}]
    for boxes in det[0].values():
        for box in boxes:
            assert len(box) == 5 and 0 <= box[0] <= 1
            assert box[1] >= 0 and box[2] >= 0 and box[1] + box[3] <= 160.5
    assert model.predict("HTR", samples["HTR"]) == htr
    assert model.predict("C2C", samples["C2C"]) == c2c
    assert model.detect([samples["zsOD"][0].image_path], [["red box", "cat"]]) == det[:1]


def test_plain_inference_api(model, samples):
    img = Image.open(samples["HTR"][0].image_path)
    assert model.read_text([img]) == model.predict("HTR", samples["HTR"][:1])
    photo = Image.open(samples["VQA"][0].image_path)
    assert len(model.answer([photo, photo], ["what?", "что?"])) == 2
    beams = model.translate(["int f ( ) { return 1 ; }"], num_beams=3)
    assert len(beams) == 1 and isinstance(beams[0], str)


def test_greedy_generation_matches_uncached_recompute(model):
    """The KV-cached, left-padded generation loop equals a plain full recompute."""
    prefixes = [[model.embed_ids(model.text_ids("def f ( x ) :"))],
                [model.embed_ids(model.text_ids("a longer prompt with more tokens in it"))]]
    with torch.inference_mode():
        fast = model.generate(prefixes, 6)
        for prefix, got in zip(prefixes, fast, strict=True):
            seq = torch.cat(prefix)
            ref: list[int] = []
            for _ in range(6):
                h, _ = model.run_body(seq[None])
                tok = int(model.lm_logits(h[0, -1]).argmax())
                if tok == model.eos_id:
                    break
                ref.append(tok)
                seq = torch.cat([seq, model.embed_ids([tok])])
            assert got == ref


# -- sharing -------------------------------------------------------------------------------
def test_every_task_runs_through_the_shared_body(model, samples):
    fired: list[str] = []
    hooks = [blk.register_forward_hook(lambda *a: fired.append("block")) for blk in model.blocks]
    hooks.append(model.embedding.register_forward_hook(lambda *a: fired.append("embed")))
    try:
        for task in model.task_names:
            fired.clear()
            model.predict(task, samples[task])
            assert fired.count("block") >= len(model.blocks), task
            assert "embed" in fired, task  # the token embeddings are used by every task too
    finally:
        for h in hooks:
            h.remove()


def test_perturbing_a_body_weight_changes_every_task(model, samples):
    model.eval()
    batches = {t: model.collate(t, samples[t]) for t in model.task_names}
    with torch.no_grad():
        before = {t: model(t, b)["loss"].item() for t, b in batches.items()}
        w = model.blocks[0].mlp.down_proj.weight
        saved = w.clone()
        w.add_(torch.randn_like(w) * w.std() * 2)
        try:
            after = {t: model(t, b)["loss"].item() for t, b in batches.items()}
        finally:
            w.copy_(saved)
        restored = {t: model(t, b)["loss"].item() for t, b in batches.items()}
    for t in model.task_names:
        assert after[t] != pytest.approx(before[t], rel=1e-6, abs=1e-7), t
        assert restored[t] == pytest.approx(before[t], rel=1e-5)


def test_parameter_counts(model):
    info = model.parameter_counts()
    n = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    assert info["total_parameters"] == n
    body = sum(p.numel() for p in {id(p): p for p in model.body.parameters()}.values())
    assert info["shared_parameters"] == body and info["shared_groups"] == ["body"]
    assert info["shared_fraction"] == pytest.approx(body / n)
    assert info["body_frozen"] and info["lora_parameters"] > 0
    assert info["frozen_parameters"] + info["trainable_parameters"] == n
    for task in model.task_names:
        assert info["trainable_per_task"][task] == sum(
            p.numel() for p in model.trainable_parameters(task))
        assert info["trainable_per_task"][task] > info["lora_parameters"]


def test_info_cli_json(capsys):
    from fusionbrain.cli import main

    assert main(["info", "--config", "tiny", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["preset"] == "tiny" and 0.3 <= info["shared_fraction"] <= 1
    assert main(["info", "--config", '{"preset": "tiny", "what": 1}']) == 2
    assert "what" in capsys.readouterr().err


# -- training actually learns ----------------------------------------------------------
def test_a_few_steps_reduce_every_loss(samples):
    model = FusionBrain("tiny")
    model.train()
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=3e-3)
    batches = {t: model.collate(t, samples[t]) for t in model.task_names}
    first = {t: model(t, b)["loss"].item() for t, b in batches.items()}
    for _ in range(12):
        for t, b in batches.items():
            opt.zero_grad()
            model(t, b)["loss"].backward()
            opt.step()
    last = {t: model(t, b)["loss"].item() for t, b in batches.items()}
    for t in model.task_names:
        assert last[t] < first[t], (t, first[t], last[t])


# -- artefacts -------------------------------------------------------------------------
def test_save_and_load_roundtrip(model, samples, tmp_path):
    with torch.no_grad():  # make the trainable weights differ from a fresh build
        for p in model.trainable_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    want = {t: model.predict(t, samples[t]) for t in model.task_names}
    model.save_pretrained(tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["config.json", "trainable.safetensors"]
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "m" / "trainable.safetensors")
    assert not any(k.startswith("body.") and "lora_" not in k for k in saved)
    # trainable weights + the heads' saved buffers (HTR's BatchNorm running statistics; not
    # its script masks, which are rebuilt from the charset)
    kept = model.state_dict()
    buffers = sum(b.numel() for n, b in model.named_buffers() if n.startswith("heads.") and n in kept)
    assert sum(t.numel() for t in saved.values()) == model.parameter_counts()[
        "trainable_parameters"] + buffers
    again = FusionBrain.from_pretrained(tmp_path / "m")
    assert {t: again.predict(t, samples[t]) for t in again.task_names} == want


def test_load_errors_are_one_line(model, tmp_path):
    d = tmp_path / "m"
    model.save_pretrained(d)
    meta = json.loads((d / "config.json").read_text())

    with pytest.raises(UserError, match="model folder not found"):
        FusionBrain.from_pretrained(tmp_path / "missing")
    (d / "trainable.safetensors").rename(d / "x")
    with pytest.raises(UserError, match="weights file missing"):
        FusionBrain.from_pretrained(d)
    (d / "x").write_bytes(b"garbage")
    (d / "x").rename(d / "trainable.safetensors")
    with pytest.raises(UserError, match="not a valid safetensors") as e:
        FusionBrain.from_pretrained(d)
    assert "\n" not in str(e.value)

    model.save_pretrained(d)
    bad = dict(meta, frozen={"body": "0" * 32})
    (d / "config.json").write_text(json.dumps(bad))
    with pytest.raises(UserError, match="frozen body"):
        FusionBrain.from_pretrained(d)
    bad = dict(meta, model=dict(meta["model"], prompt_tokens=3))  # shape mismatch
    (d / "config.json").write_text(json.dumps(bad))
    with pytest.raises(UserError, match="shape"):
        FusionBrain.from_pretrained(d)
    (d / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="malformed JSON"):
        FusionBrain.from_pretrained(d)
    (d / "config.json").unlink()
    with pytest.raises(UserError, match="file not found"):
        FusionBrain.from_pretrained(d)


def test_frozen_vision_features_are_cached_exactly(model, samples):
    batch = model.collate("VQA", samples["VQA"])
    vision = model.vision
    vision.__dict__.pop("_feature_cache", None)
    with torch.no_grad():
        plain = model.encode_images(batch["pixels"])
        first = model.encode_images(batch["pixels"], batch["image_keys"])
        cached = vision.__dict__["_feature_cache"]
        assert len(cached) == 1  # both samples show the same file
        # a cached feature is served even if the pixels were different
        again = model.encode_images(torch.zeros_like(batch["pixels"]), batch["image_keys"])
    assert torch.allclose(plain, first, atol=1e-5)
    assert torch.allclose(first, again, atol=1e-2)  # fp16 storage


def test_body_from_a_local_folder(model, samples, tmp_path):
    """Any causal-LM folder can be the body (here: the tiny random body saved to disk)."""
    folder = tmp_path / "body"
    from fusionbrain.model.body import load_body

    raw = load_body(model.config, vocab_size=len(model.tokenizer))
    raw.save_pretrained(folder)
    model.tokenizer.save_pretrained(folder)
    cfg = model.config.replace(body=str(folder), tokenizer=None, body_layers=1)
    other = FusionBrain(cfg, tasks=["C2C"])
    assert len(other.blocks) == 1
    assert torch.equal(other.blocks[0].mlp.up_proj.weight, raw.model.layers[0].mlp.up_proj.weight)
    out = other("C2C", other.collate("C2C", samples["C2C"]))
    assert torch.isfinite(out["loss"])
    with pytest.raises(UserError, match="cannot load (body|tokenizer)"):
        FusionBrain(cfg.replace(body=str(tmp_path / "nowhere")), tasks=["C2C"])


def test_info_cli_reads_a_saved_model(model, tmp_path, capsys):
    from fusionbrain.cli import main

    model.save_pretrained(tmp_path / "m")
    assert main(["info", "--model", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "M/N:" in out and "meets" in out
    assert main(["info", "--model", str(tmp_path / "none")]) == 2


def test_c2c_output_detokenizes_to_python():
    code_tokens = pytest.importorskip("fusionbrain.tasks.c2c.code_tokens")
    from fusionbrain.tasks.c2c.head import to_python

    src = to_python("def f ( x ) : NEW_LINE INDENT return x + 1 NEW_LINE DEDENT")
    assert src == code_tokens.detokenize("def f ( x ) : NEW_LINE INDENT return x + 1 NEW_LINE DEDENT")
    scope: dict = {}
    exec(compile(src, "<c2c>", "exec"), scope)
    assert scope["f"](2) == 3


def test_beam_search_one_step_is_the_argmax(model):
    prefixes = [[model.embed_ids(model.text_ids("int f ( ) {"))],
                [model.embed_ids(model.text_ids("return"))]]
    with torch.inference_mode():
        greedy = model.generate(prefixes, 1)
        beams = model.generate(prefixes, 1, num_beams=3)
        longer = model.generate(prefixes, 5, num_beams=3)
    assert beams == greedy
    assert all(0 < len(s) <= 5 or s == [] for s in longer)
    assert all(model.eos_id not in s for s in longer)


def test_zsod_without_phrases(model, samples):
    empty = [ZsODSample("e", samples["zsOD"][0].image_path, {})]
    assert model.predict("zsOD", empty) == [{}]
    mixed = empty + samples["zsOD"][:1]
    assert model.predict("zsOD", mixed)[0] == {}
    out = model("zsOD", model.collate("zsOD", empty))
    assert out["loss"].item() == 0.0


def test_translations_go_through_the_configured_repair(model):
    """Predictions are the raw decode passed through the config's ``repair`` step."""
    from fusionbrain.tasks.c2c.repair import parses, repair, translate_java

    java = ["int f ( int a , int b ) { return Math . max ( a , b ) ; }"]
    c2c = model.config.tasks["C2C"]
    assert c2c.repair == "model-first"
    out = {}
    try:
        for mode in ("none", "model-first", "rule-first"):
            c2c.repair = mode
            out[mode] = model.translate(java)[0]
    finally:
        c2c.repair = "model-first"
    assert out["model-first"] == repair(out["none"], java[0])
    assert parses(out["model-first"])
    rules = translate_java(java[0])
    assert parses(rules) and out["rule-first"] == rules != out["none"]
