"""Shipping a model: fp16 weights (save_pretrained(dtype=...)), ``fusionbrain export`` of a
real tiny run folder with its model card, named models and the default model of
``predict``/``serve``. Nothing here needs the shipped models/fusionbrain-cpu-long."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file, save_file

from fusionbrain.cli import main as cli
from fusionbrain.errors import UserError
from fusionbrain.model import FusionBrain, pretrained
from fusionbrain.tasks.c2c.data import C2CSample
from fusionbrain.tasks.htr.data import HTRSample

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = "trainable.safetensors"


# -- fp16 storage ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def model() -> FusionBrain:
    torch.manual_seed(0)
    m = FusionBrain("tiny", tasks=["HTR", "C2C"])
    with torch.no_grad():  # trained-looking weights: LoRA's B starts at zero
        for p in m.trainable_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m.eval()


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, list]:
    d = tmp_path_factory.mktemp("imgs")
    word = Image.new("L", (96, 30), 255)
    ImageDraw.Draw(word).text((4, 8), "hello", fill=0)
    word.save(d / "word.png")
    return {"HTR": [HTRSample("0", str(d / "word.png"), "hello", "en"),
                    HTRSample("1", str(d / "word.png"), "ёжик", "ru")],
            "C2C": [C2CSample("0", "int f ( int x ) { return x + 1 ; }",
                              "def f ( x ) : NEW_LINE INDENT return x + 1 NEW_LINE DEDENT")]}


def _losses(m: FusionBrain, samples: dict[str, list]) -> dict[str, float]:
    with torch.no_grad():
        return {t: float(m(t, m.collate(t, s, train=False))["loss"]) for t, s in samples.items()}


def test_fp16_round_trip_is_half_the_size_and_predicts_alike(model, samples, tmp_path):
    model.save_pretrained(tmp_path / "fp32")
    model.save_pretrained(tmp_path / "fp16", dtype=torch.float16)
    ratio = (tmp_path / "fp16" / WEIGHTS).stat().st_size / (tmp_path / "fp32" / WEIGHTS).stat().st_size
    assert 0.45 < ratio < 0.55, ratio
    meta = json.loads((tmp_path / "fp16" / "config.json").read_text())
    assert meta["weights_dtype"] == "float16"
    stored = load_file(tmp_path / "fp16" / WEIGHTS)
    ints = [k for k, t in stored.items() if not t.is_floating_point()]
    assert ints and all(stored[k].dtype == torch.int64 for k in ints)  # BatchNorm counters
    assert {t.dtype for t in stored.values() if t.is_floating_point()} == {torch.float16}

    again = FusionBrain.from_pretrained(tmp_path / "fp16").eval()
    want, got = model._trainable_state(), again._trainable_state()
    for k, t in want.items():
        assert got[k].dtype == t.dtype, k  # cast back to the model's own types
        if t.is_floating_point():
            assert torch.allclose(got[k], t, rtol=1e-3, atol=1e-4), k
        else:
            assert torch.equal(got[k], t), k
    a, b = _losses(model, samples), _losses(again, samples)
    assert all(abs(a[t] - b[t]) <= 1e-2 * abs(a[t]) for t in a), (a, b)
    assert again.predict("HTR", samples["HTR"]) == model.predict("HTR", samples["HTR"])
    with torch.no_grad():
        batch = model.collate("HTR", samples["HTR"], train=False)
        la = model.heads["HTR"]._logits(model, batch)[0]
        lb = again.heads["HTR"]._logits(again, batch)[0]
    assert (la - lb).abs().max() <= 2e-2 * la.abs().max()


def test_fp16_keeps_what_it_cannot_hold_and_refuses_int_float_swaps(model, tmp_path):
    name, p = next((n, p) for n, p in model.named_parameters()
                   if p.requires_grad and n.startswith("heads.HTR."))
    saved = p.detach().clone()
    try:
        with torch.no_grad():
            p.view(-1)[0] = 1e6  # beyond fp16's 65504: would load back as inf
        model.save_pretrained(tmp_path / "m", dtype=torch.float16)
    finally:
        with torch.no_grad():
            p.copy_(saved)
    stored = load_file(tmp_path / "m" / WEIGHTS)
    assert stored[name].dtype == torch.float32 and float(stored[name].view(-1)[0]) == 1e6
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["weights_dtype"] == "float16+float32"
    with pytest.raises(UserError, match="dtype"):
        model.save_pretrained(tmp_path / "x", dtype=torch.int8)
    # an integer tensor stored as a float (or the reverse) is a damaged file, not a cast
    key = next(k for k, t in stored.items() if not t.is_floating_point())
    stored[key] = stored[key].float()
    save_file(stored, str(tmp_path / "m" / WEIGHTS), metadata={"format": "1"})
    with pytest.raises(UserError, match=f"{key}.*dtype torch.float32 != torch.int64"):
        FusionBrain.from_pretrained(tmp_path / "m")


# -- export of a real tiny run ---------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory, data) -> Path:
    """A finished single-task HTR run (3 steps, energy measured) with its test scores."""
    from fusionbrain.train.experiment import ensure_test_scores

    root = tmp_path_factory.mktemp("run")
    c = json.loads((REPO / "configs" / "tiny.json").read_text())
    c.update(steps=3, eval_every=0, eval_max_samples=4, threads=1)
    (root / "cfg.json").write_text(json.dumps(c))
    out = root / "run"
    assert cli(["train", "--mode", "single", "--task", "HTR", "--data", str(data), "--config",
                str(root / "cfg.json"), "--out", str(out), "--no-progress"]) == 0
    ensure_test_scores(out, data, ["HTR"], batch_size=8, progress=False, threads=1)
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory, run) -> Path:
    out = tmp_path_factory.mktemp("models") / "tiny-shipped"
    assert cli(["export", "--model", str(run), "--out", str(out)]) == 0
    return out


def test_export_writes_fp16_weights_and_a_card_from_the_run(run, exported):
    # the HTR head's character n-gram, fitted on the run's training words, travels along
    assert sorted(p.name for p in exported.iterdir()) == ["README.md", "config.json",
                                                         "htr_lm.json.gz", WEIGHTS]
    src = run / "best" / "model" / WEIGHTS
    ratio = (exported / WEIGHTS).stat().st_size / src.stat().st_size
    assert 0.45 < ratio < 0.55, ratio
    card = (exported / "README.md").read_text()
    energy = json.loads((run / "energy.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    test = json.loads((run / "test_scores.json").read_text())
    assert "steps: 3 " in card and "checkpoint `best` (step 3 of 3)" in card
    assert f"{energy['total']['kwh']:.4g} kWh" in card
    assert f"{energy['total']['kg_co2eq']:.4g} kg CO2eq" in card
    assert f"{summary['train_wall_s']:.0f} s" in card
    assert f"| HTR | {test['tasks']['HTR']['score']:.3f} |" in card
    assert f"cer {test['tasks']['HTR']['cer']:.3f}" in card
    assert "## Scores" in card and "TODO" in card
    assert f"{(exported / WEIGHTS).stat().st_size:,}" in card
    # the weights load (cast back to fp32) and read like the run's own model
    again = FusionBrain.from_pretrained(exported)
    assert {t.dtype for t in again._trainable_state().values() if t.is_floating_point()} == {
        torch.float32}
    assert again.heads["HTR"].lm is not None


def test_export_refits_the_ngram_on_other_data(run, data, tmp_path, capsys):
    out = tmp_path / "m"
    (tmp_path / "d" / "train" / "HTR").mkdir(parents=True)
    words = ["zzyzx", "qwop"] * 3
    (tmp_path / "d" / "train" / "HTR" / "samples.jsonl").write_text("".join(
        json.dumps({"id": str(i), "image_path": "../../../w.png", "text": w, "lang": "en"}) + "\n"
        for i, w in enumerate(words)))
    Image.new("L", (40, 16), 235).save(tmp_path / "w.png")
    assert cli(["export", "--model", str(run), "--out", str(out), "--fit-data",
                str(tmp_path / "d")]) == 0
    assert "HTR 6 samples" in capsys.readouterr().out
    lm = FusionBrain.from_pretrained(out).heads["HTR"].lm
    assert lm.prob("zzy", "z") > 0.5
    assert cli(["export", "--model", str(run), "--out", str(tmp_path / "m2"), "--fit-data",
                str(tmp_path / "nothing")]) == 2
    assert "no training split" in capsys.readouterr().err


def test_export_keeps_a_filled_card_and_fp32_on_request(run, exported, tmp_path, capsys):
    out = tmp_path / "m"
    shutil.copytree(exported, out)
    (out / "README.md").write_text("# filled by hand\n")
    assert cli(["export", "--model", str(run / "best" / "model"), "--out", str(out),
                "--fp32"]) == 0
    assert (out / "README.md").read_text() == "# filled by hand\n"
    assert "kept the existing model card" in capsys.readouterr().out
    assert {t.dtype for t in load_file(out / WEIGHTS).values() if t.is_floating_point()} == {
        torch.float32}


def test_export_calibrates_htr_confidences_on_valid_words(run, data, tmp_path, capsys):
    from fusionbrain.serve.inference import load_temperature

    out = tmp_path / "m"
    assert cli(["export", "--model", str(run), "--out", str(out), "--calibrate", str(data),
                "--calibrate-n", "5"]) == 0
    calib = json.loads((out / "calibration.json").read_text())
    assert calib["n"] == 5 and calib["bce"] <= calib["bce_t1"]
    assert load_temperature(out) == calib["temperature"]
    assert "valid" in calib["fitted_on"] and "HTR confidence temperature" in capsys.readouterr().out
    assert cli(["export", "--model", str(run), "--out", str(tmp_path / "n"), "--calibrate",
                str(tmp_path)]) == 2


@pytest.mark.parametrize("case", ["missing-model", "out-is-file", "out-not-a-model"])
def test_export_errors_are_one_line(run, tmp_path, capsys, case):
    model, out = str(run), tmp_path / "out"
    if case == "missing-model":
        model = str(tmp_path / "nope")
    elif case == "out-is-file":
        out.write_text("x")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert cli(["export", "--model", model, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert {"missing-model": "not found", "out-is-file": "not a folder",
            "out-not-a-model": "not a model folder"}[case] in err
    if case == "out-not-a-model":
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


# -- named models and the default model ------------------------------------------------
@pytest.fixture
def fake_repo(tmp_path, monkeypatch) -> Path:
    """A repository root with an empty models/ (the real one's is not looked at)."""
    root = tmp_path / "repo"
    (root / "models").mkdir(parents=True)
    monkeypatch.setattr(pretrained, "repo_root", lambda: root)
    monkeypatch.delenv(pretrained.MODEL_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    return root


def test_predict_without_model_uses_env_then_the_shipped_default(fake_repo, exported, data,
                                                                  tmp_path, monkeypatch, capsys):
    args = ["predict", "--input", str(data / "test" / "input"), "--no-progress",
            "--no-energy", "--threads", "1"]
    monkeypatch.setenv(pretrained.MODEL_ENV, str(exported))
    assert cli(args + ["--output", str(tmp_path / "p1")]) == 0
    assert (tmp_path / "p1" / "prediction_HTR.json").is_file()
    assert f"model: {exported} (the default" in capsys.readouterr().err
    # unset: the shipped default in the repository's models/
    monkeypatch.delenv(pretrained.MODEL_ENV)
    shutil.copytree(exported, fake_repo / "models" / pretrained.DEFAULT_MODEL)
    assert cli(args + ["--output", str(tmp_path / "p2")]) == 0
    assert (tmp_path / "p2" / "prediction_HTR.json").read_text() == \
        (tmp_path / "p1" / "prediction_HTR.json").read_text()
    assert f"model: {fake_repo / 'models' / pretrained.DEFAULT_MODEL}" in capsys.readouterr().err


def test_missing_default_model_is_one_line_exit_2(fake_repo, data, tmp_path, capsys,
                                                   monkeypatch):
    out = tmp_path / "pred"
    assert cli(["predict", "--input", str(data / "test" / "input"), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "no --model given" in err and "--model" in err
    assert str(fake_repo / "models") in err and str(tmp_path / "models") in err
    assert not out.exists()  # failed before the output folder was made
    monkeypatch.setenv(pretrained.MODEL_ENV, str(tmp_path / "gone"))
    assert cli(["predict", "--input", str(data / "test" / "input"), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "FUSIONBRAIN_MODEL" in err and "gone" in err
    monkeypatch.delenv(pretrained.MODEL_ENV)
    assert cli(["serve", "--db", str(tmp_path / "db.sqlite")]) == 2
    assert "no --model given" in capsys.readouterr().err


def test_bare_names_resolve_to_shipped_models(fake_repo, exported, tmp_path, monkeypatch):
    name = "tiny-shipped"
    shutil.copytree(exported, fake_repo / "models" / name)
    assert pretrained.resolve_model(name) == fake_repo / "models" / name
    # "models/<name>" from any folder, and an existing path always wins over a name
    assert pretrained.resolve_model(f"models/{name}") == fake_repo / "models" / name
    (tmp_path / name).mkdir()
    assert pretrained.resolve_model(name) == Path(name)
    shutil.rmtree(tmp_path / name)
    # ./models/<name> of the current folder is searched too
    (tmp_path / "models" / "local").mkdir(parents=True)
    (tmp_path / "models" / "local" / "config.json").write_text("{}")
    assert pretrained.resolve_model("local") == tmp_path / "models" / "local"
    monkeypatch.setenv(pretrained.MODEL_ENV, name)  # the variable may hold a name too
    assert pretrained.default_model() == fake_repo / "models" / name
    with pytest.raises(UserError, match="nor a shipped model of that name"):
        pretrained.resolve_model("no-such-model")
    # a path that is not a name keeps the loader's own message
    assert pretrained.resolve_model(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    model = FusionBrain.from_pretrained(name)
    assert model.task_names == ["HTR"]
