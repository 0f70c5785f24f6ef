"""The training loop's newer parts on the toy model: the automatic balancer (and its exact
resume), DataLoader workers, per-head scalars in the log, the non-finite loss stop,
TrainState, and the configs shipped inside the package."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import test_train_support as toy
import tomllib
import torch

from fusionbrain.errors import UserError
from fusionbrain.train.balancer import GapBalancer
from fusionbrain.train.config import TrainConfig, configs_dir, default_config_path, load_config
from fusionbrain.train.engine import NonFiniteLoss, RunSpec, train
from fusionbrain.train.state import TrainState

REPO = Path(__file__).resolve().parents[1]


def cfg(**kw) -> TrainConfig:
    base = dict(model=None, model_class=toy.TOY_CLASS, steps=16, batch_size=4, eval_every=0,
                lr=0.05, sampling="proportional", energy={"enabled": False})
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(autouse=True)
def _toy(monkeypatch):
    toy.patch(monkeypatch)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last" / "model" / "w.pt")


def log(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]


def test_gap_weights_favour_tasks_under_their_baseline():
    b = GapBalancer(["A", "B", "C"], every=10, tau=0.05, floor=0.05)
    b.baseline = {"A": 0.4, "B": 0.0, "C": 0.3}
    w = b.weights_from({"A": 0.6, "B": 0.0, "C": 0.31})
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["B"] > w["C"] > w["A"]  # under/at baseline > just above > far above
    raw_a = 0.05 + 0.95 * math.exp(-0.2 / 0.05)
    assert w["A"] / w["B"] == pytest.approx(raw_a)
    assert b.weights_from({"A": 0.0, "B": 0.0, "C": 0.0}) == pytest.approx(
        {"A": 1 / 3, "B": 1 / 3, "C": 1 / 3})  # everyone under: uniform
    assert b.due(10, 100) and not b.due(11, 100) and not b.due(100, 100)


def test_gap_balancer_runs_and_resumes_exactly(tmp_path):
    c = dict(balancer="gap", balance_every=4, balance_samples=8, steps=14, save_every=0)
    a, b = tmp_path / "a", tmp_path / "b"
    train(RunSpec(mode="fusion", data=tmp_path, out=a, progress=False), cfg(**c))
    # stopped between two balancer updates, then on one: both resume exactly
    train(RunSpec(mode="fusion", data=tmp_path, out=b, stop_at=6, progress=False), cfg(**c))
    train(RunSpec(mode="fusion", data=None, out=b, resume=True, stop_at=8, progress=False),
          cfg(**c))
    train(RunSpec(mode="fusion", data=None, out=b, resume=True, progress=False), cfg(**c))
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    la, lb = log(a), log(b)
    assert [r["task"] for r in la if r["event"] == "step"] == \
        [r["task"] for r in lb if r["event"] == "step"]
    bal = [r for r in la if r["event"] == "balance"]
    assert [r["step"] for r in bal] == [4, 8, 12]
    assert bal == [r for r in lb if r["event"] == "balance"]
    for r in bal:  # the weights follow the rule from the measured scores
        assert set(r["weights"]) == {"C2C", "HTR", "zsOD", "VQA"}
        assert sum(r["weights"].values()) == pytest.approx(1.0)
        above = [t for t in r["scores"] if r["scores"][t] > r["baseline"][t]]
        under = [t for t in r["scores"] if r["scores"][t] <= r["baseline"][t]]
        for t in above:
            for u in under:
                assert r["weights"][t] < r["weights"][u]
    summary = json.loads((a / "summary.json").read_text())
    assert summary["balancer"] == "gap" and len(summary["balance_history"]) == 3


def test_loader_workers_give_the_same_batches(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train(RunSpec(mode="fusion", data=tmp_path, out=a, steps=6, progress=False),
          cfg(loader_workers=0, grad_accum=2))
    train(RunSpec(mode="fusion", data=tmp_path, out=b, steps=6, progress=False),
          cfg(loader_workers=2, grad_accum=2))
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_every_head_scalar_is_logged(tmp_path):
    train(RunSpec(mode="fusion", data=tmp_path, out=tmp_path / "r", steps=3, progress=False),
          cfg())
    steps = [r for r in log(tmp_path / "r") if r["event"] == "step"]
    assert len(steps) == 3
    assert all(math.isfinite(r["parts"]["mean_logit"]) for r in steps)


def test_non_finite_loss_stops_with_one_line(tmp_path):
    run = tmp_path / "r"
    c = cfg(model_class=toy.NAN_CLASS, sampling="round_robin", save_every=2)
    with pytest.raises(NonFiniteLoss, match=r"step 4 \(VQA\): the loss is not finite") as e:
        train(RunSpec(mode="fusion", data=tmp_path, out=run, steps=8, progress=False), c)
    assert "\n" not in str(e.value) and "last good checkpoint" in str(e.value)
    assert isinstance(e.value, UserError)  # the CLI prints it as one line, exit status 2
    assert json.loads((run / "last" / "info.json").read_text())["step"] == 2  # untouched


def test_train_state_round_trip_and_old_checkpoints():
    s = TrainState.start(["A", "B"])
    s.advance("A", 8)
    s.advance("B", 4)
    assert s.improved(0.5, 2) and not s.improved(0.4, 3)
    t = TrainState.start(["A", "B"])
    t.load_state_dict(s.state_dict())
    assert t == s
    # a checkpoint written before TrainState: the same flat keys, some missing
    old = TrainState.start(["A", "B"])
    old.load_state_dict({"step": 5, "mix": {"A": 5}})
    assert old.step == 5 and old.mix == {"A": 5, "B": 0} and old.best_S == -math.inf


def test_configs_ship_inside_the_package(monkeypatch, tmp_path):
    import fusionbrain

    pkg = Path(fusionbrain.__file__).resolve().parent
    assert configs_dir() == pkg / "configs"
    assert default_config_path() == pkg / "configs" / "cpu-main.json"
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "configs/*.json" in meta["tool"]["setuptools"]["package-data"]["fusionbrain"]
    for p in configs_dir().glob("*.json"):
        load_config(p)  # every shipped config is valid
    main = load_config(default_config_path())
    assert main.balancer == "gap" and not main.task_weights  # no hand-set mix
    # the repository's configs/ is the package's (a link), so old paths keep working
    assert (REPO / "configs" / "tiny.json").resolve() == (pkg / "configs" / "tiny.json")
    # a broken install fails loudly instead of training a random tiny model
    import fusionbrain.train.config as config_mod

    monkeypatch.setattr(config_mod, "configs_dir", lambda: tmp_path / "nowhere")
    with pytest.raises(UserError, match="configs are missing"):
        config_mod.default_config_path()


def test_balancer_config_errors():
    for key, value in (("balancer", "magic"), ("balance_every", 0), ("balance_tau", 0),
                       ("balance_floor", 1.0), ("loader_workers", -1)):
        with pytest.raises(UserError, match=key):
            TrainConfig.from_dict({key: value})


def _results(seed: int, fusion: dict[str, float], single: dict[str, float] | None) -> dict:
    """A results.json as run_experiment writes it (the parts aggregate reads)."""
    energy = {"total": {"kwh": 0.001 * (seed + 1), "kg_co2eq": 0.0001}}

    def arm(scores: dict[str, float]) -> dict:
        return {"test": {"tasks": {t: {"score": v} for t, v in scores.items()}},
                "train_wall_s": 100.0 + seed, "energy": energy,
                "parameters": {"total": 1000, "shared": 800, "trainable": 50},
                "predict_per_task": {t: {"samples_per_s": 10.0 + seed} for t in scores}}

    res = {"tasks": list(fusion), "baseline": {"tasks": {"C2C": {"score": 0.3},
                                                         "HTR": {"score": 0.0}}},
           "fusion": arm(fusion)}
    if single:
        res["single"] = {t: arm({t: v}) for t, v in single.items()}
    return res


def test_seeds_aggregate_mean_sd_and_every_seed(tmp_path):
    from fusionbrain.train.experiment import aggregate, mean_sd, write_seeds_report
    from fusionbrain.train.main_job import seeds_table

    per_seed = [_results(0, {"C2C": 0.5, "HTR": 0.1}, {"C2C": 0.6, "HTR": 0.2}),
                _results(1, {"C2C": 0.7, "HTR": 0.0}, {"C2C": 0.6, "HTR": 0.1})]
    agg = aggregate(per_seed, [0, 1])
    assert agg["fusion"]["scores"]["C2C"] == [0.5, 0.7]
    assert mean_sd(agg["fusion"]["scores"]["C2C"]) == pytest.approx((0.6, math.sqrt(0.02)))
    assert agg["fusion"]["above_every_seed"] == {"C2C": True, "HTR": False}  # B: 0.0 on seed 1
    assert agg["single"]["above_every_seed"] == {"C2C": True, "HTR": True}
    assert agg["single"]["train_wall_s"] == [200.0, 202.0]  # the two runs summed
    assert agg["single"]["parameters"]["shared"] == 0
    assert agg["fusion"]["S"] == pytest.approx([0.6, 0.7])
    report = write_seeds_report(tmp_path, agg).read_text()
    assert "over 2 seeds" in report and "0.600 ± 0.141" in report and "| NO |" in report
    assert "predict C2C samples/s" in report
    assert json.loads((tmp_path / "seeds.json").read_text())["seeds"] == [0, 1]
    table = seeds_table(aggregate([r | {"single": None} for r in per_seed], [0, 1]))
    assert "every task above its baseline on every seed: NO" in table
