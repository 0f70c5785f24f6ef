"""Learning from corrections: only the HTR head changes (every other tensor bit-identical),
held-out slice never trained on, report, CLI, the service's background job and switching."""

from __future__ import annotations

import io
import time

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from fusionbrain.cli import main as cli_main
from fusionbrain.model import FusionBrain
from fusionbrain.serve import finetune
from fusionbrain.serve.app import Settings, create_app
from fusionbrain.serve.inference import png_bytes, read_htr
from fusionbrain.serve.store import Store
from fusionbrain.tasks.htr.data import HTRSample

WORDS = ["cat", "dog", "sun", "mир", "дом", "red", "box", "кот", "tea", "pen", "sea", "лес"]


def word_image(text: str) -> Image.Image:
    im = Image.new("L", (80, 28), 255)
    ImageDraw.Draw(im).text((4, 8), text, fill=0)
    return im


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    torch.manual_seed(0)
    model = FusionBrain("tiny")
    d = tmp_path_factory.mktemp("base")
    model.save_pretrained(d)
    return d, model


def fill(store: Store, model, version: int) -> None:
    images = [word_image(w) for w in WORDS]
    for w, im, r in zip(WORDS, images, read_htr(model, images), strict=True):
        item = store.add_item(store.put_image(png_bytes(im)), f"{w}.png", "b", r.text,
                              r.confidence, r.char_conf, version)
        store.review(item, w, "tester", 1)


def test_split_is_stable_by_image():
    items = [{"id": i, "image_sha": f"{i:064x}"} for i in range(200)]
    train, held = finetune.split(items)
    assert 20 <= len(held) <= 60 and len(train) + len(held) == 200
    train2, held2 = finetune.split(items + [{"id": 999, "image_sha": "f" * 64}])
    assert {h["id"] for h in held} <= {h["id"] for h in held2}  # adding items moves nothing
    assert not {t["id"] for t in train} & {h["id"] for h in held}
    _, few = finetune.split(items[:3], frac=0.0)
    assert len(few) == 1


def test_only_the_htr_head_changes(base, tmp_path):
    d, model = base
    store = Store(tmp_path / "p.sqlite")
    fill(store, model, store.add_model_version(d))
    out = tmp_path / "v2"
    other = [HTRSample("t", str(tmp_path / "t.png"), "ink", "en")]
    word_image("ink").save(other[0].image_path)
    report = finetune.finetune(d, store.reviewed(), out, steps=3, batch_size=4, lr=1e-2,
                               log=lambda m: None, test_samples=other)
    held = set(report["heldout_ids"])
    assert report["heldout_items"] == len(held) >= 1
    assert report["train_items"] + report["heldout_items"] == len(WORDS)
    for part in ("heldout", "htr_test"):
        for when in ("before", "after"):
            assert set(report[when][part]) == {"n", "exact", "cer"}
    assert report["after"]["htr_test"]["n"] == 1
    assert (out / "report.json").is_file() and (out / "calibration.json").is_file()
    assert report["calibration"]["temperature"] > 0

    new = FusionBrain.from_pretrained(out)
    before, after = model.state_dict(), new.state_dict()
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "the HTR head did not move"
    assert all(k.startswith("heads.HTR.") for k in changed), changed[:3]
    # body (frozen and LoRA), vision, the other three heads: all compared above
    for prefix in ("body.", "vision.", "heads.VQA.", "heads.zsOD.", "heads.C2C."):
        assert any(k.startswith(prefix) for k in before), prefix
    assert any("lora_" in k for k in before)
    # BatchNorm statistics stay: the model trained in eval mode
    assert all("running_" not in k for k in changed)


def test_cli_and_service_job_switch_and_rollback(base, tmp_path, capsys):
    d, model = base
    db = tmp_path / "pilot.sqlite"
    store = Store(db)
    fill(store, model, store.add_model_version(d))
    store.set_active_model_version(1)
    store.close()
    # the CLI
    rc = cli_main(["train", "--from-corrections", str(db), "--model", str(d), "--out",
                   str(tmp_path / "cli_v2"), "--steps", "2", "--htr-test-words", "0"])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    assert "held-out corrections: exact" in out and "model version 2" in out
    assert cli_main(["train", "--from-corrections", str(tmp_path / "none.sqlite"), "--out",
                     str(tmp_path / "x")]) == 2
    assert "pilot database not found" in capsys.readouterr().err
    assert cli_main(["train", "--from-corrections", str(db), "--model", str(d), "--out",
                     str(tmp_path / "cli_v2")]) == 2  # not empty: refused, one line
    assert "not empty" in capsys.readouterr().err

    # the service: a queued job, then switch and roll back
    settings = Settings(model_dir=d, db=db, api_key="k" * 10, watch_interval_s=0.05)
    auth = {"Authorization": "Bearer " + "k" * 10}
    with TestClient(create_app(settings, model=model)) as c:
        store = c.app.state.store
        store.set_active_model_version(1)
        for _ in range(400):
            if c.get("/readyz").json().get("model_version") == 1:
                break
            time.sleep(0.05)
        r = c.post("/api/jobs/finetune", headers=auth,
                   json={"steps": 2, "activate": "always", "htr_test_n": 0})
        assert r.status_code == 202, r.text
        assert c.post("/api/jobs/finetune", headers=auth, json={}).status_code == 409
        for _ in range(1200):
            job = c.get("/api/jobs", headers=auth).json()["jobs"][0]
            if job["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert job["status"] == "done", job
        new_version = job["result"]["model_version"]
        for _ in range(400):
            if c.get("/readyz").json()["model_version"] == new_version:
                break
            time.sleep(0.05)
        assert c.get("/readyz").json()["model_version"] == new_version
        versions = c.get("/api/models", headers=auth).json()["versions"]
        assert versions[-1]["report"]["trained"] == "heads.HTR only"
        # roll back
        r = c.post("/api/models/1/activate", headers=auth)
        assert r.status_code == 200 and r.json()["serving"] == 1
        buf = io.BytesIO()
        word_image("cat").save(buf, "PNG")
        r = c.post("/v1/htr", files=[("files", ("a.png", buf.getvalue(), "image/png"))],
                   headers=auth)
        assert r.json()["model_version"] == 1


def test_service_readings_equal_predict_and_keep_one_script(base, tmp_path, monkeypatch):
    """The service's readings are predict's (one script per image), with confidences."""
    from fusionbrain.tasks.htr import charset
    from fusionbrain.tasks.htr.data import HTRSample

    _, model = base
    images = [word_image(w) for w in WORDS + ["ТОМ", "Том 12"]]
    paths = []
    for i, im in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        im.save(paths[-1])
    want = model.predict("HTR", [HTRSample(str(i), str(p), "", "") for i, p in enumerate(paths)])
    got = read_htr(model, images)
    assert [r.text for r in got] == want
    for r in got:
        assert 0.0 <= r.confidence <= 1.0 and len(r.char_conf) == len(r.text)

    # columns whose single best guesses mix scripts: Т, then Latin O over Cyrillic О, then М
    head = model.heads["HTR"]
    frames = [("Т", "Т"), ("O", "О"), ("М", "M")]

    def mixed(_model, batch):
        t = batch["frame_targets"].shape[1]
        logits = torch.full((len(batch["ids"]), t, charset.NUM_CLASSES), -5.0)
        logits[:, :, charset.BLANK] = 2.0
        for k, (first, second) in enumerate(frames):
            logits[:, 2 * k + 1, charset.encode(first)[0]] = 4.0
            logits[:, 2 * k + 1, charset.encode(second)[0]] = 3.5
        return logits, None

    monkeypatch.setattr(head, "_logits", mixed)
    assert [r.text for r in read_htr(model, images[:1])] == ["ТОМ"]
    monkeypatch.setattr(head, "one_script", False)
    assert [r.text for r in read_htr(model, images[:1])] == ["ТOМ"]


def test_fine_tuning_keeps_a_faded_alignment_loss_off(tmp_path):
    """A model trained with a fading alignment loss (cpu-long) fine-tunes with it off: on, it
    drags CTC's learned alignment back to the flat start and the model forgets how to read."""
    from fusionbrain.tasks.htr.data import HTRSample

    torch.manual_seed(0)
    model = FusionBrain("tiny", tasks=["HTR"])
    head = model.heads["HTR"]
    head.align_until = 0.3
    samples = []
    for i, w in enumerate(WORDS):
        word_image(w).save(tmp_path / f"{i}.png")
        samples.append(HTRSample(str(i), str(tmp_path / f"{i}.png"), w, "en"))
    assert head._align_weight() > 0
    seen = []
    forward = head.forward

    def spy(m, batch):
        seen.append(head._align_weight())
        out = forward(m, batch)
        assert "align_ce" not in out
        return out

    head.forward = spy
    finetune.train_head(model, samples, steps=2, batch_size=2)
    assert seen == [0.0, 0.0]


def test_fine_tuning_rehearses_the_writers_the_model_already_reads(tmp_path, monkeypatch):
    from fusionbrain.tasks.htr.data import HTRSample

    torch.manual_seed(0)
    model = FusionBrain("tiny", tasks=["HTR"])
    words = []
    for i, w in enumerate(WORDS + ["own", "old"]):
        word_image(w).save(tmp_path / f"{i}.png")
        words.append(HTRSample(f"{'r' if i >= 3 else 'c'}{i}", str(tmp_path / f"{i}.png"), w, "en"))
    corrections, replay = words[:3], words[3:]
    batches = []
    collate = model.collate

    def spy(task, samples, train=True):
        batches.append([s.id[0] for s in samples])
        return collate(task, samples, train=train)

    monkeypatch.setattr(model, "collate", spy)
    finetune.train_head(model, corrections, steps=3, batch_size=4, replay=replay,
                        replay_share=0.5)
    assert batches == [["c", "c", "r", "r"]] * 3
