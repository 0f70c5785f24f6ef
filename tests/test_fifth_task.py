"""A fifth task without touching shared code (issue 13).

The toy task COPY ("write the input string back") lives in tests/fifth_task/copytask,
outside the package. Registered at run time, it is imported, trained, predicted, scored
and inspected through the ordinary ``fusionbrain`` commands, and its config, importer,
help text and model helper come from its own folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fusionbrain.cli import main
from fusionbrain.tasks import TASKS, register_task

HERE = Path(__file__).resolve().parent
TOY_ROOT = HERE / "fifth_task"
TEXTS = ["abc", "hello", "copy me", "x y z", "fusion", "brain", "one two", "42"]


@pytest.fixture()
def copy_task():
    """COPY registered for the test only (the registry and sys.path are restored after)."""
    sys.path.insert(0, str(TOY_ROOT))
    before = dict(TASKS)
    try:
        yield register_task("COPY", "copytask")
    finally:
        TASKS.clear()
        TASKS.update(before)
        sys.path.remove(str(TOY_ROOT))
        for name in [m for m in sys.modules if m == "copytask" or m.startswith("copytask.")]:
            del sys.modules[name]


def test_the_toy_task_lives_outside_the_package():
    import fusionbrain

    package = Path(fusionbrain.__file__).resolve().parent
    assert not TOY_ROOT.resolve().is_relative_to(package)
    assert "COPY" not in TASKS  # nothing registers it but the fixture


def test_register_task_refuses_bad_names(copy_task):
    from fusionbrain.errors import UserError

    with pytest.raises(UserError, match="already registered"):
        register_task("copy", "copytask")
    with pytest.raises(UserError, match="expected a letter"):
        register_task("../x", "copytask")
    with pytest.raises(UserError, match="cannot import"):
        register_task("Other", "no_such_package_for_fusionbrain")
    assert register_task("COPY", "copytask") == "COPY"  # the same again: a no-op


def test_fifth_task_through_the_ordinary_commands(copy_task, tmp_path, capsys):
    from copytask import formats
    from copytask.data import CopySample

    data = tmp_path / "data"
    # training data through the task's own importer (``data import copy-lines``)
    for split, texts in (("train", TEXTS), ("valid", TEXTS[:4])):
        lines = tmp_path / f"{split}.txt"
        lines.write_text("\n".join(texts) + "\n", "utf-8")
        assert main(["data", "import", "copy-lines", str(lines), "--out",
                     str(data / split / "COPY")]) == 0
    # the test split as a challenge folder; the generic ``challenge`` kind reads it back
    test = [CopySample(str(i), t, t) for i, t in enumerate(TEXTS[:5])]
    formats.write_input(test, data / "test" / "input" / "COPY")
    true = data / "test" / "true" / "true_COPY.json"
    true.parent.mkdir(parents=True)
    true.write_text(json.dumps(formats.truth_json(test)), "utf-8")
    assert main(["data", "import", "challenge", str(data / "test" / "input" / "COPY"),
                 "--truth", str(true), "--out", str(tmp_path / "roundtrip")]) == 0
    out = capsys.readouterr().out
    assert "COPY: wrote 5 samples" in out

    cfg = tmp_path / "train.json"
    cfg.write_text(json.dumps({
        "model": {"preset": "tiny", "tasks": {"COPY": {"max_tokens": 6}}},
        "steps": 3, "batch_size": 4, "lr": 0.001, "warmup": 1, "eval_every": 0,
        "eval_max_samples": 4, "predict_batch_size": 4, "energy": {"enabled": False}}), "utf-8")
    run = tmp_path / "run"
    assert main(["train", "--mode", "single", "--task", "COPY", "--data", str(data), "--out",
                 str(run), "--config", str(cfg), "--no-progress"]) == 0
    pred = tmp_path / "pred"
    assert main(["predict", "--model", str(run), "--input", str(data / "test" / "input"),
                 "--output", str(pred), "--no-energy", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["score", "--pred-dir", str(pred), "--true-dir", str(true.parent),
                 "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    predicted = json.loads((pred / "prediction_COPY.json").read_text("utf-8"))
    assert sorted(predicted) == [s.id for s in test]
    hits = sum(predicted[s.id] == s.text for s in test)
    assert scored["tasks"]["COPY"]["score"] == pytest.approx(hits / len(test))

    # the saved model: the task's sub-config, its helper, the typed head <-> model contract
    from fusionbrain.data.build import task_names
    from fusionbrain.model.modeling_fusionbrain import FusionBrain
    from fusionbrain.model.protocol import HeadModel
    from fusionbrain.train.engine import find_model_dir

    assert task_names() == ["C2C", "HTR", "zsOD", "VQA"]  # COPY has no embedded default
    model = FusionBrain.from_pretrained(find_model_dir(run))
    assert model.task_names == ["COPY"]
    assert model.config.tasks["COPY"].max_tokens == 6
    assert isinstance(model, HeadModel)
    assert model.copy_text([s.text for s in test]) == [predicted[s.id] for s in test]
    assert model.run("COPY", "copy_text", [test[0].text]) == [predicted[test[0].id]]
    assert "copy_text" in dir(model)

    capsys.readouterr()
    assert main(["info", "--model", str(find_model_dir(run))]) == 0
    assert "COPY" in capsys.readouterr().out


def test_fifth_task_from_the_environment(copy_task, tmp_path):
    """``FUSIONBRAIN_TASKS`` registers it in a fresh process: help and scoring see it."""
    from copytask import formats
    from copytask.data import CopySample

    samples = [CopySample("0", "ab", "ab"), CopySample("1", "cd", "cd")]
    (tmp_path / "true").mkdir()
    (tmp_path / "pred").mkdir()
    (tmp_path / "true" / "true_COPY.json").write_text(
        json.dumps(formats.truth_json(samples)), "utf-8")
    (tmp_path / "pred" / "prediction_COPY.json").write_text(
        json.dumps(formats.prediction_json(samples, ["ab", "zz"])), "utf-8")
    env = {**os.environ, "FUSIONBRAIN_TASKS": "COPY=copytask",
           "PYTHONPATH": os.pathsep.join([str(TOY_ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "fusionbrain.cli"]
    got = subprocess.run(cmd + ["score", "--pred-dir", str(tmp_path / "pred"), "--true-dir",
                                str(tmp_path / "true"), "--json"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["tasks"]["COPY"]["score"] == 0.5
    helped = subprocess.run(cmd + ["data", "import", "--help"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert "copy-lines" in helped.stdout and "[COPY]" in helped.stdout
    bad = subprocess.run(cmd + ["score", "--help"], capture_output=True, text=True, timeout=120,
                         env={**env, "FUSIONBRAIN_TASKS": "COPY"})
    assert bad.returncode == 2 and "NAME=package" in bad.stderr
    assert "Traceback" not in bad.stderr
