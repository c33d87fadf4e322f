"""Energy per inference: the idle-then-windows protocol around a measured device, and filling energy
from an external meter's log after the run (the trace probe).

A lab supply or USB meter logs power with its own clock; the run recorded each
window's wall-clock start and end. ``fill_from_trace`` integrates the log over
those windows (with a clock offset), as DeepEdgeBench aligned its logs in
post-processing.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edgecheck.errors import EdgecheckError
from edgecheck.measure.probes import TraceProbe, check_reading, integrate, read_trace, require_samples
from edgecheck.results import Energy, Latency, Run

if TYPE_CHECKING:
    from edgecheck.measure.device import Device
    from edgecheck.measure.settings import EnergyOptions


def measure_energy(runner, device: Device, latency: Latency | None, opts: EnergyOptions, idle_cache: dict) -> Energy:
    """Energy per inference on a measured device: idle power first (once per device, kept in ``idle_cache``),
    then ``opts.windows`` windows of back-to-back invokes."""
    if opts.probe == "model":
        return model_energy(device, latency, opts.constants)
    if device.key not in idle_cache:
        idle_cache[device.key] = _idle(opts.probe, opts.idle_seconds)
    idle = idle_cache[device.key]
    per_check = max(1, int(round(0.005 / max(latency.median if latency else 1e-3, 1e-7))))
    windows = []
    for _ in range(opts.windows):
        opts.probe.start()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < opts.window_seconds:
            for _ in range(per_check):
                runner.invoke()
            n += per_check
        w = opts.probe.stop()
        if not w.pending:
            check_reading(w.energy_j, f"energy window of {desc_of(opts.probe)}")
            require_samples("energy", w.seconds, w.samples, "--energy-window")
        windows.append({"t0": w.t0, "t1": w.t1, "invokes": n, "energy_j": w.energy_j, "samples": w.samples,
                        "mean_power_w": w.mean_power_w, "pending": w.pending})
    desc = opts.probe.describe()
    out = Energy(total_j=None, provenance=f"measured: {desc['probe']} probe, {desc['sensor']}",
                 statistic="energy per inference, median over windows", windows=windows, idle=idle, probe=desc)
    if any(w["pending"] for w in windows) or idle.get("pending"):
        out.pending = True
        out.note = "integrate the meter's log with: edgecheck energy-from-trace RESULTS.json TRACE.csv"
    else:
        figs = energy_figures(windows, idle["power_w"])
        out.total_j, out.spread_j, out.dynamic_j = figs["total_j"], figs["spread_j"], figs["dynamic_j"]
    return out


def board_energy(windows: list[dict] | None, idle: dict | None, where: str, errors: list[str]) -> Energy:
    """Energy per inference from a board's own power sensor: the worker's idle window and the model's windows,
    each with its power samples [[unix time, watts], ...], integrated here as a local probe's are."""
    if not windows or not idle:
        why = "; ".join(e for e in errors if "energy" in e) or "the board's worker returned no energy windows"
        return Energy(total_j=None, dynamic_j=None, provenance=f"none: {why}")
    sensor = idle.get("sensor") or {}

    def integrated(w: dict) -> tuple[float, int]:
        t, p = np.array([s[0] for s in w["samples"]]), np.array([s[1] for s in w["samples"]])
        for watts in p:  # a board's sensor is trusted no more than a local one: NaN or negative fails the model
            check_reading(float(watts), f"the power sensor on the board at {where}")
        try:
            return integrate(t, p, w["t0"], w["t1"])
        except ValueError as e:
            raise EdgecheckError(f"the board's energy window at {where}: {e}") from None

    ie, n_idle = integrated(idle)
    idle_s, on_board = idle["t1"] - idle["t0"], f"on the board at {where}: "
    require_samples("idle", idle_s, n_idle, "--idle-seconds", on_board)
    idle_out = {"t0": idle["t0"], "t1": idle["t1"], "energy_j": ie, "samples": n_idle, "power_w": ie / idle_s,
                "pending": False}
    out_windows = []
    for w in windows:
        e, n = integrated(w)
        require_samples("energy", w["t1"] - w["t0"], n, "--energy-window", on_board)
        out_windows.append({"t0": w["t0"], "t1": w["t1"], "invokes": w["invokes"], "energy_j": e, "samples": n,
                            "mean_power_w": e / (w["t1"] - w["t0"]), "pending": False})
    figs = energy_figures(out_windows, idle_out["power_w"])
    return Energy(total_j=figs["total_j"], spread_j=figs["spread_j"], dynamic_j=figs["dynamic_j"],
                  provenance=f"measured: {sensor.get('probe', 'hwmon')} probe on the board at {where}, "
                             f"{sensor.get('sensor', 'unknown sensor')}",
                  statistic="energy per inference, median over windows (power sampled on the board)",
                  windows=out_windows, idle=idle_out, probe={**sensor, "on": where})


@dataclass
class EnergyMeter:
    """The configured ``--energy-probe`` for a user's own test: idle power, then energy windows around any
    inference loop, by the same protocol (and the same idle measurement, once a session) as the sweep."""

    options: EnergyOptions
    idle_cache: dict = field(default_factory=dict)
    key: str = "energy_probe"

    def describe(self) -> dict:
        return self.options.probe.describe()

    def idle(self) -> dict:
        """Idle power (``--idle-seconds``), measured once a session: ``power_w``, ``energy_j``, ``samples``."""
        if self.key not in self.idle_cache:
            self.idle_cache[self.key] = _idle(self.options.probe, self.options.idle_seconds)
        return self.idle_cache[self.key]

    def measure(self, invoke: Callable[[], object], latency_s: float | None = None) -> Energy:
        """Energy per inference of ``invoke`` (one inference per call): idle power first, then
        ``--energy-windows`` windows of ``--energy-window`` seconds of back-to-back calls. ``latency_s`` (a
        rough time per call) sets how often the window's clock is read; by default every 5 ms at 1 ms a call."""
        self.idle()
        latency = None if latency_s is None else Latency.from_samples([float(latency_s)])
        return measure_energy(_Calls(invoke), _Keyed(self.key), latency, self.options, self.idle_cache)


@dataclass(frozen=True)
class _Calls:
    invoke: Callable[[], object]


@dataclass(frozen=True)
class _Keyed:
    key: str
def desc_of(probe) -> str:
    d = probe.describe()
    return f"the {d.get('probe')} probe ({d.get('sensor')})"


def _idle(probe, seconds: float) -> dict:
    probe.start()
    time.sleep(seconds)
    w = probe.stop()
    if not w.pending:
        check_reading(w.energy_j, f"idle power of {desc_of(probe)}")
        require_samples("idle", w.seconds, w.samples, "--idle-seconds")
    return {"t0": w.t0, "t1": w.t1, "energy_j": w.energy_j, "samples": w.samples,
            "power_w": None if w.energy_j is None else w.energy_j / w.seconds, "pending": w.pending}


def energy_figures(windows: list[dict], idle_power_w: float | None) -> dict:
    """Per-inference energy from windows: total and dynamic (minus idle power x time), median and spread."""
    totals = [w["energy_j"] / w["invokes"] for w in windows]
    out = {"total_j": float(np.median(totals)), "spread_j": [float(min(totals)), float(max(totals))],
           "dynamic_j": None}
    if idle_power_w is not None:
        dyn = [(w["energy_j"] - idle_power_w * (w["t1"] - w["t0"])) / w["invokes"] for w in windows]
        out["dynamic_j"] = float(np.median(dyn))
    return out


def model_energy(device: Device, latency: Latency | None, constants=None) -> Energy:
    """The twins' power model (from the session's constants, ``--twin-constants``) x measured latency: an
    estimate, labelled so."""
    from edgecheck.twins.model import load_constants

    c = constants if constants is not None else load_constants()
    power = device.power_model(c) if latency else None
    if power is None:
        return Energy(total_j=None, dynamic_j=None,
                      provenance=f"none: the model probe has no power model for {device.name} (host CPUs are out of "
                                 "scope)")
    idle, active = power
    t = latency.median
    return Energy(total_j=(idle + active) * t, dynamic_j=active * t, power_w=idle + active,
                  model_idle_w=idle,
                  provenance=f"estimated: twin power model ({c.path}, sha256 {c.sha256[:12]}) x measured latency")


def fill_from_trace(run: Run, probe: TraceProbe, strict: bool = True) -> int:
    """Integrate the trace over every pending window of ``run`` (in place); returns the entries filled.

    ``strict`` (``edgecheck energy-from-trace``): the first entry the trace cannot fill raises an
    EdgecheckError naming the trace, and nothing is changed. Otherwise (the end of a run) an entry the
    trace cannot fill keeps its windows pending with the reason in ``energy.error`` (its energy failed;
    ``energy-from-trace`` can still fill it from a corrected log), and the others are filled. A trace
    that cannot be read at all raises in both cases."""
    t, p = read_trace(probe.path)  # a log that cannot be read is an error even when nothing is pending
    pending = [e for e in run.entries if e.energy is not None and e.energy.pending]
    filled = 0
    for e in pending:
        try:
            figures = _trace_figures(e.energy, probe, t, p)
        except EdgecheckError as err:
            if strict:
                raise
            e.energy.error = str(err)
            continue
        en = e.energy
        en.idle.update(figures["idle"])
        for w, upd in zip(en.windows, figures["windows"]):
            w.update(upd)
        en.total_j, en.spread_j, en.dynamic_j = figures["total_j"], figures["spread_j"], figures["dynamic_j"]
        en.pending, en.note, en.error = None, None, None
        en.probe = probe.describe()
        en.provenance = f"measured: trace probe, meter log {probe.path} (clock offset {probe.offset_s:+g} s)"
        filled += 1
    return filled


def _trace_figures(en, probe: TraceProbe, t: np.ndarray, p: np.ndarray) -> dict:
    """What the trace says about one entry's idle and windows, computed without changing the entry."""
    idle = en.idle or {}
    try:
        ie, n_idle = probe.integrate(t, p, float(idle["t0"]), float(idle["t1"]))
        in_trace = f"trace {probe.path}: "
        require_samples("idle", float(idle["t1"]) - float(idle["t0"]), n_idle, "--idle-seconds or log faster",
                        in_trace)
        windows = []
        for w in en.windows or []:
            we, n = probe.integrate(t, p, float(w["t0"]), float(w["t1"]))
            require_samples("energy", w["t1"] - w["t0"], n, "--energy-window or log faster", in_trace)
            windows.append({"energy_j": we, "samples": n, "mean_power_w": we / (w["t1"] - w["t0"]), "pending": False})
        if not windows:
            raise EdgecheckError(f"trace {probe.path}: the entry has no energy windows to fill")
        idle_fig = {"energy_j": ie, "samples": n_idle, "power_w": ie / (idle["t1"] - idle["t0"]), "pending": False}
        figs = energy_figures([{**w, **u} for w, u in zip(en.windows, windows)], idle_fig["power_w"])
    except (KeyError, TypeError, ZeroDivisionError) as e:
        raise EdgecheckError(f"trace {probe.path}: the entry's recorded windows are malformed ({e})") from None
    return {"idle": idle_fig, "windows": windows, **figs}
