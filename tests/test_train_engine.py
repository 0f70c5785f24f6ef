"""The training loop on a toy model: exact resume, checkpoints, logs, config errors.

(DDP across 2 CPU ranks is tested with the real tiny model in test_train_real.py.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import test_train_support as toy
import torch

from fusionbrain.errors import UserError
from fusionbrain.train import checkpoint as ckpt_lib
from fusionbrain.train.config import TrainConfig, load_config
from fusionbrain.train.engine import RunSpec, lr_factor, train


def cfg(**kw) -> TrainConfig:
    base = dict(model=None, model_class=toy.TOY_CLASS, steps=16, batch_size=4, eval_every=5,
                lr=0.05, sampling="proportional", energy={"enabled": False})
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(autouse=True)
def _toy(monkeypatch):
    toy.patch(monkeypatch)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last" / "model" / "w.pt")


def test_stop_and_resume_equals_straight_run(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train(RunSpec(mode="fusion", data=tmp_path, out=a, progress=False), cfg())
    part = train(RunSpec(mode="fusion", data=tmp_path, out=b, stop_at=7, progress=False), cfg())
    assert part == {"complete": False, "step": 7, "steps": 16}
    assert json.loads((b / "last" / "info.json").read_text())["step"] == 7
    train(RunSpec(mode="fusion", data=None, out=b, resume=True, progress=False), cfg(lr=9.0))
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    init = toy.ToyModel().state_dict()
    assert not torch.equal(wa["body.weight"], init["body.weight"])  # it did train
    sa = (a / "log.jsonl").read_text().splitlines()
    sb = (b / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["task"] for x in sa if '"step"' in x and '"event": "step"' in x] == \
        [json.loads(x)["task"] for x in sb if '"event": "step"' in x]
    summary = json.loads((b / "summary.json").read_text())
    assert summary["complete"] and summary["steps"] == 16 and sum(summary["mix"].values()) == 16
    assert (b / "best" / "model" / "w.pt").exists()


def test_single_mode_trains_one_head_only(tmp_path):
    train(RunSpec(mode="single", task="htr", data=tmp_path, out=tmp_path / "s", steps=6,
                  progress=False), cfg())
    w = weights(tmp_path / "s")
    assert list(json.loads((tmp_path / "s" / "last" / "model" / "config.json").read_text())
                ["tasks"]) == ["HTR"]
    assert not torch.equal(w["heads.HTR.1.weight"], toy.ToyModel().state_dict()["heads.HTR.1.weight"])
    with pytest.raises(UserError, match="--task"):
        train(RunSpec(mode="single", data=tmp_path, out=tmp_path / "t", progress=False), cfg())


def test_existing_run_needs_resume_and_resume_needs_a_run(tmp_path):
    train(RunSpec(mode="fusion", data=tmp_path, out=tmp_path / "r", steps=2, progress=False),
          cfg(eval_every=0))
    with pytest.raises(UserError, match="--resume"):
        train(RunSpec(mode="fusion", data=tmp_path, out=tmp_path / "r", progress=False), cfg())
    with pytest.raises(UserError, match="nothing to resume"):
        train(RunSpec(mode="fusion", data=None, out=tmp_path / "none", resume=True,
                      progress=False), cfg())


def test_checkpoint_survives_a_torn_rename(tmp_path):
    model = toy.ToyModel()
    ckpt_lib.save_checkpoint(tmp_path, "last", model, info={"step": 1})
    # a crash between the two renames leaves only .last.old
    os.replace(tmp_path / "last", tmp_path / ".last.old")
    (tmp_path / ".last.x.tmp").mkdir()
    assert ckpt_lib.checkpoint_dir(tmp_path, "last") == tmp_path / ".last.old"
    ckpt_lib.save_checkpoint(tmp_path, "last", model, info={"step": 2})
    assert ckpt_lib.load_info(ckpt_lib.checkpoint_dir(tmp_path, "last"))["step"] == 2
    ckpt_lib.clean_stale_temps(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_schedule_and_config_errors(tmp_path):
    assert lr_factor(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert lr_factor(100, 100, 10, 0.1) == pytest.approx(0.1)
    bad = tmp_path / "c.json"
    bad.write_text('{"stepz": 3}')
    with pytest.raises(UserError, match="stepz"):
        load_config(bad)
    bad.write_text('{"steps": 0}')
    with pytest.raises(UserError, match="steps"):
        load_config(bad)


def test_init_continues_a_model_and_freeze_keeps_the_shared_weights(tmp_path):
    """A second stage: from a trained model, one task, the shared body frozen."""
    first = tmp_path / "first"
    train(RunSpec(mode="fusion", data=tmp_path, out=first, steps=6, progress=False),
          cfg(eval_every=0))
    w1 = weights(first)
    second = tmp_path / "second"
    train(RunSpec(mode="fusion", data=tmp_path, out=second, steps=5, progress=False),
          cfg(eval_every=0, init=str(first), tasks=["HTR"], freeze=["body."]))
    w2 = weights(second)
    assert w2.keys() == w1.keys()  # every head travels on, not only the trained one
    assert torch.equal(w2["body.weight"], w1["body.weight"])  # frozen: bit for bit
    assert torch.equal(w2["heads.VQA.1.weight"], w1["heads.VQA.1.weight"])  # not trained
    assert not torch.equal(w2["heads.HTR.1.weight"], w1["heads.HTR.1.weight"])  # trained on
    fresh = toy.ToyModel().state_dict()
    assert not torch.equal(w2["body.weight"], fresh["body.weight"])  # from first, not fresh
    saved = json.loads((second / "run_config.json").read_text())["config"]
    assert saved["init"] == str(first) and saved["freeze"] == ["body."]
    with pytest.raises(UserError, match="not found"):
        train(RunSpec(mode="fusion", data=tmp_path, out=tmp_path / "x", progress=False),
              cfg(init=str(tmp_path / "nowhere")))


def test_init_fills_in_only_what_the_init_model_lacks(tmp_path):
    """A fresh run fits the data artefacts (n-gram, prior); a run from --init asks the model
    to keep what its init model already has (a model saved without one gets it then)."""
    toy.FittingToy.calls.clear()
    fitting = "test_train_support:FittingToy"
    train(RunSpec(mode="fusion", data=tmp_path, out=tmp_path / "a", steps=2, progress=False),
          cfg(eval_every=0, model_class=fitting))
    train(RunSpec(mode="fusion", data=tmp_path, out=tmp_path / "b", steps=2, progress=False),
          cfg(eval_every=0, model_class=fitting, init=str(tmp_path / "a")))
    assert [keep for _, keep in toy.FittingToy.calls] == [False, True]
    assert all(set(tasks) == set(toy.TOY_TASKS) for tasks, _ in toy.FittingToy.calls)


@pytest.mark.parametrize(("key", "value", "msg"), [
    ("init", "", "model / run folder"), ("init", 3, "model / run folder"),
    ("freeze", "lora_", "substrings"), ("freeze", [""], "substrings")])
def test_init_and_freeze_config_errors(key, value, msg):
    with pytest.raises(UserError, match=msg):
        TrainConfig.from_dict({key: value})


def test_calibrate_runs_once_after_the_last_step_and_is_saved(tmp_path):
    """The model's post-training hook sees the validation split after the last step (not
    at a pause), its choice is logged and the "last" model carries it."""
    run = tmp_path / "run"
    spec = dict(mode="fusion", data=tmp_path, out=run, progress=False)
    conf = cfg(model_class="test_train_support:CalibratingToy", eval_every=0)
    part = train(RunSpec(**spec, stop_at=7), conf)
    assert part["complete"] is False
    assert "calibrate" not in (run / "log.jsonl").read_text()  # not at a pause
    assert float(weights(run)["calibrated"]) == 0.0
    train(RunSpec(**{**spec, "data": None}, resume=True), conf)
    events = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    cal = [e for e in events if e.get("event") == "calibrate"]
    assert len(cal) == 1 and cal[0]["step"] == 16 and cal[0]["VQA"] == {"chosen": 7.0, "n": 8}
    assert float(weights(run)["calibrated"]) == 7.0
