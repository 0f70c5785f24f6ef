"""Energy/CO2 per phase: CodeCarbon offline, quiet, nothing in the cwd, and a labelled fallback."""

from __future__ import annotations

import json

import pytest

from fusionbrain.train.energy import EnergyMeter, format_energy


def _busy() -> int:
    return sum(i * i for i in range(200_000))


def test_codecarbon_phases_and_no_csv_in_cwd(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    meter = EnergyMeter(run, country_iso_code="FRA")
    with meter.phase("train"):
        _busy()
        with meter.phase("eval"):
            _busy()
        _busy()
    meter.close()
    s = meter.save(run / "energy.json")
    assert set(s["phases"]) == {"train", "eval"}
    for p in s["phases"].values():
        assert p["kwh"] > 0 and p["kg_co2eq"] > 0 and p["duration_s"] > 0
    assert s["method"].startswith("CodeCarbon offline: ")
    assert "CPU:" in s["method"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no emissions.csv here
    assert "codecarbon" not in capfd.readouterr().err.lower()  # kept quiet
    assert "power measured by" in format_energy(s)


def test_fallback_when_codecarbon_fails_and_resumed_runs_add_up(tmp_path, monkeypatch):
    import codecarbon

    class Broken:
        def __init__(self, *a, **k):
            raise RuntimeError("no hardware info")

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", Broken)
    meter = EnergyMeter(tmp_path, fallback_power_w=100.0, carbon_intensity_g_per_kwh=500.0)
    with meter.phase("predict"):
        _busy()
    meter.close()
    first = meter.save(tmp_path / "energy.json")
    assert first["method"].startswith("fallback estimate: duration × 100 W")
    assert "no hardware info" in first["method"]
    p = first["phases"]["predict"]
    assert p["kwh"] == pytest.approx(100.0 * p["duration_s"] / 3.6e6)
    assert p["kg_co2eq"] == pytest.approx(p["kwh"] * 0.5)
    again = EnergyMeter(tmp_path, fallback_power_w=100.0, enabled=False)
    with again.phase("predict"):
        _busy()
    again.close()
    total = again.save(tmp_path / "energy.json")
    assert total["phases"]["predict"]["duration_s"] > p["duration_s"]
    saved = json.loads((tmp_path / "energy.json").read_text())
    assert saved["total"]["kwh"] == pytest.approx(total["phases"]["predict"]["kwh"])
