"""Energy (kWh) and CO2 (kg CO2eq) per phase of a run, via CodeCarbon's offline tracker.

One tracker per process, one CodeCarbon "task" per phase interval (train, eval, predict);
intervals of the same phase are summed, and :meth:`EnergyMeter.save` adds them to what a
previous (resumed) run already wrote to ``RUN/energy.json``. When CodeCarbon is missing or
fails, each phase is estimated as duration × a constant power and labelled as such.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fusionbrain.utils.io import read_json, write_json_atomic

# Used only when CodeCarbon cannot run: a laptop-to-small-server figure, stated in the output.
FALLBACK_POWER_W = 60.0
# World-average grid intensity (Ember 2023, g CO2eq / kWh) for the fallback estimate.
FALLBACK_G_CO2_PER_KWH = 480.0

_CPU_MODES = {
    "intel_rapl": "RAPL (measured)",
    "intel_power_gadget": "Intel Power Gadget (measured)",
    "windows_emi": "Windows EMI (measured)",
    "apple_powermetrics": "powermetrics (measured)",
    "cpu_load": "TDP × CPU load (estimate; RAPL not readable)",
    "constant": "constant TDP share (estimate; RAPL not readable)",
}


def describe_hardware(tracker: Any) -> str:
    """How the tracker measures power, read from its hardware list (private, so defensive)."""
    parts = []
    for hw in getattr(tracker, "_hardware", []) or []:
        name = type(hw).__name__
        if name == "CPU":
            mode = getattr(hw, "_mode", "?")
            text = _CPU_MODES.get(mode, str(mode))
            tdp = getattr(hw, "_tdp", None)
            if mode in ("cpu_load", "constant") and tdp:
                generic = " generic" if getattr(hw, "_is_generic_tdp", False) else ""
                text += f", TDP {tdp:g} W{generic}"
            parts.append(f"CPU: {text}")
        elif name == "RAM":
            parts.append("RAM: estimate from its size")
        elif name == "GPU":
            parts.append("GPU: NVML (measured)")
        else:
            parts.append(f"{name}: {hw}")
    return "; ".join(parts) or "unknown"


class EnergyMeter:
    """Tracks energy and emissions per phase; use ``with meter.phase("train"): ...``.

    ``country_iso_code`` (ISO 3166 alpha-3, e.g. "FRA") picks CodeCarbon's offline grid mix;
    ``carbon_intensity_g_per_kwh`` overrides it. ``csv=True`` lets CodeCarbon write its
    emissions.csv into ``out_dir`` (never the working directory).
    """

    def __init__(self, out_dir: str | os.PathLike[str] | None, *, country_iso_code: str = "FRA",
                 carbon_intensity_g_per_kwh: float | None = None, enabled: bool = True,
                 csv: bool = False, measure_power_secs: float = 15.0,
                 fallback_power_w: float = FALLBACK_POWER_W,
                 tracking_mode: str = "machine") -> None:
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.country_iso_code = country_iso_code
        self.carbon_intensity = carbon_intensity_g_per_kwh
        self.fallback_power_w = fallback_power_w
        self.phases: dict[str, dict[str, float]] = {}
        self.method = ""
        self._tracker: Any = None
        self._active: str | None = None
        self._t0 = 0.0
        if enabled:
            self._start_tracker(csv, measure_power_secs, tracking_mode)
        if self._tracker is None and not self.method:
            self.method = self._fallback_label("disabled")

    def _fallback_label(self, why: str) -> str:
        g = self.carbon_intensity if self.carbon_intensity is not None else FALLBACK_G_CO2_PER_KWH
        return (f"fallback estimate: duration × {self.fallback_power_w:g} W constant, "
                f"{g:g} g CO2eq/kWh (CodeCarbon {why})")

    def _start_tracker(self, csv: bool, measure_power_secs: float, tracking_mode: str) -> None:
        try:
            from codecarbon import OfflineEmissionsTracker
            from codecarbon.output_methods.base_output import OutputMethod

            # CodeCarbon logs INFO/WARNING lines on init (its import resets the level to
            # INFO); only errors are of interest here.
            logging.getLogger("codecarbon").setLevel(logging.ERROR)

            kwargs: dict[str, Any] = dict(
                country_iso_code=self.country_iso_code, log_level="error",
                output_methods=[OutputMethod.CSV] if csv and self.out_dir else [],
                measure_power_secs=measure_power_secs,
                allow_multiple_runs=True, tracking_mode=tracking_mode,
                project_name="fusionbrain")
            if csv and self.out_dir:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                kwargs["output_dir"] = str(self.out_dir)
            else:
                # Nothing is saved, but CodeCarbon checks that its output folder exists; never
                # point it at the working directory (no stray emissions.csv there).
                kwargs["output_dir"] = tempfile.gettempdir()
            if self.carbon_intensity is not None:
                kwargs["force_carbon_intensity_g_co2e_kwh"] = float(self.carbon_intensity)
            tracker = OfflineEmissionsTracker(**kwargs)
            tracker.start()
            self.method = "CodeCarbon offline: " + describe_hardware(tracker)
            self._tracker = tracker
        except Exception as e:  # any failure: estimate instead of crashing the run
            self._tracker = None
            self.method = self._fallback_label(f"failed: {type(e).__name__}: {e}"[:200])

    # -- phases -----------------------------------------------------------------------------

    def _begin(self, name: str) -> None:
        self._active = name
        self._t0 = time.perf_counter()
        if self._tracker is not None:
            try:
                self._tracker.start_task(name)
            except Exception as e:
                self._tracker = None
                self.method = self._fallback_label(f"failed: {type(e).__name__}: {e}"[:200])

    def _end(self) -> None:
        name, self._active = self._active, None
        if name is None:
            return
        duration = time.perf_counter() - self._t0
        kwh = kg = None
        if self._tracker is not None:
            try:
                data = self._tracker.stop_task()
                kwh, kg = float(data.energy_consumed), float(data.emissions)
            except Exception as e:
                self._tracker = None
                self.method = self._fallback_label(f"failed: {type(e).__name__}: {e}"[:200])
        if kwh is None:
            kwh = self.fallback_power_w * duration / 3.6e6
            g = self.carbon_intensity if self.carbon_intensity is not None \
                else FALLBACK_G_CO2_PER_KWH
            kg = kwh * g / 1000.0
        acc = self.phases.setdefault(name, {"kwh": 0.0, "kg_co2eq": 0.0, "duration_s": 0.0})
        acc["kwh"] += kwh
        acc["kg_co2eq"] += kg
        acc["duration_s"] += duration

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Account the enclosed code to ``name``; the enclosing phase resumes afterwards."""
        outer = self._active
        if outer is not None:
            self._end()
        self._begin(name)
        try:
            yield
        finally:
            self._end()
            if outer is not None:
                self._begin(outer)

    def close(self) -> None:
        """End any open phase and stop the tracker (idempotent)."""
        if self._active is not None:
            self._end()
        if self._tracker is not None:
            try:
                self._tracker.stop()
            except Exception:
                pass
            self._tracker = None

    # -- results ----------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        total = {k: sum(p[k] for p in self.phases.values())
                 for k in ("kwh", "kg_co2eq", "duration_s")}
        return {"method": self.method, "country_iso_code": self.country_iso_code,
                "carbon_intensity_g_per_kwh": self.carbon_intensity,
                "phases": {k: dict(v) for k, v in self.phases.items()}, "total": total}

    def save(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Add the phases measured since the last save to ``path`` and write it.

        ``path`` keeps what earlier saves and earlier (killed, resumed) runs measured; an open
        phase is split at this point so that its time so far is included.
        """
        path = Path(path)
        if self._active is not None:
            name = self._active
            self._end()
            self._begin(name)
        merged = self.summary()
        self.phases = {}
        if path.exists():
            old = read_json(path, expect=dict)
            for name, vals in (old.get("phases") or {}).items():
                acc = merged["phases"].setdefault(name, {"kwh": 0.0, "kg_co2eq": 0.0,
                                                         "duration_s": 0.0})
                for k in acc:
                    acc[k] += float(vals.get(k, 0.0))
            methods = {m for m in (old.get("method"), merged["method"]) if m}
            merged["method"] = " | ".join(sorted(methods))
            merged["total"] = {k: sum(p[k] for p in merged["phases"].values())
                               for k in ("kwh", "kg_co2eq", "duration_s")}
        write_json_atomic(path, merged, indent=2)
        return merged


def format_energy(summary: dict[str, Any]) -> str:
    """One line per phase: 'train 0.0012 kWh 0.00006 kg CO2eq 301 s'."""
    lines = []
    for name, p in summary.get("phases", {}).items():
        lines.append(f"{name:8s} {p['kwh']:.6f} kWh  {p['kg_co2eq']:.6f} kg CO2eq  "
                     f"{p['duration_s']:.0f} s")
    t = summary.get("total")
    if t:
        lines.append(f"{'total':8s} {t['kwh']:.6f} kWh  {t['kg_co2eq']:.6f} kg CO2eq  "
                     f"{t['duration_s']:.0f} s")
    lines.append(f"power measured by: {summary.get('method', '?')}")
    return "\n".join(lines)


def meter_from_config(energy: dict[str, Any] | None, out_dir: str | os.PathLike[str] | None,
                      *, enabled: bool = True) -> EnergyMeter:
    """An :class:`EnergyMeter` from a training config's ``energy`` object."""
    e = energy or {}
    return EnergyMeter(out_dir, enabled=bool(e.get("enabled", True)) and enabled,
                       country_iso_code=str(e.get("country_iso_code", "FRA")),
                       carbon_intensity_g_per_kwh=e.get("carbon_intensity_g_per_kwh"),
                       csv=bool(e.get("csv", False)),
                       fallback_power_w=float(e.get("fallback_power_w", FALLBACK_POWER_W)),
                       tracking_mode=str(e.get("tracking_mode", "machine")))
