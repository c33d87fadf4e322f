"""Energy per inference: the idle-then-windows protocol around a measured device, and filling energy
from an external meter's log after the run (the trace probe).

A lab supply or USB meter logs power with its own clock; the run recorded each
window's wall-clock start and end. ``fill_from_trace`` integrates the log over
those windows (with a clock offset), as DeepEdgeBench aligned its logs in
post-processing.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from edgecheck.errors import EdgecheckError
from edgecheck.measure.devices import Device
from edgecheck.measure.probes import MIN_SAMPLES, TraceProbe
from edgecheck.results import Energy, Latency, Run

if TYPE_CHECKING:
    from edgecheck.measure.recorder import EnergyOptions


def measure_energy(runner, device: Device, latency: Latency | None, opts: EnergyOptions, idle_cache: dict) -> Energy:
    """Energy per inference on a measured device: idle power first (once per device, kept in ``idle_cache``),
    then ``opts.windows`` windows of back-to-back invokes."""
    if opts.probe == "model":
        return model_energy(device, latency)
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
        if not w.pending and w.samples is not None and w.samples < MIN_SAMPLES:
            raise EdgecheckError(f"energy window of {w.seconds:.2f} s got {w.samples} power samples "
                                 f"(< {MIN_SAMPLES}): lengthen it with --energy-window")
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


def _idle(probe, seconds: float) -> dict:
    probe.start()
    time.sleep(seconds)
    w = probe.stop()
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


def model_energy(device: Device, latency: Latency | None) -> Energy:
    """The twins' power model x measured latency: an estimate, labelled so."""
    from edgecheck.twins.model import load_constants, power_model

    if device.name not in ("tpu", "a53") or not latency:
        return Energy(total_j=None, dynamic_j=None,
                      provenance=f"none: the model probe has no power model for {device.name} (host CPUs are out of "
                                 "scope)")
    c = load_constants()
    idle, active = power_model(c, device.name, device.threads)
    t = latency.median
    return Energy(total_j=(idle + active) * t, dynamic_j=active * t, power_w=idle + active,
                  provenance=f"estimated: twin power model ({c.path}, sha256 {c.sha256[:12]}) x measured latency")


def fill_from_trace(run: Run, probe: TraceProbe) -> int:
    """Integrate the trace over every pending window of ``run`` (in place); returns entries filled.
    Raises EdgecheckError naming the trace when it does not cover a window."""
    filled = 0
    for e in run.entries:
        en = e.energy
        if en is None or not en.pending:
            continue
        idle = en.idle
        ie, n_idle = probe.energy(idle["t0"], idle["t1"])
        idle.update(energy_j=ie, samples=n_idle, power_w=ie / (idle["t1"] - idle["t0"]), pending=False)
        for w in en.windows:
            we, n = probe.energy(w["t0"], w["t1"])
            if n < MIN_SAMPLES:
                raise EdgecheckError(f"trace {probe.path}: a window of {w['t1'] - w['t0']:.2f} s holds {n} samples "
                                     f"(< {MIN_SAMPLES}); lengthen it with --energy-window or log faster")
            w.update(energy_j=we, samples=n, mean_power_w=we / (w["t1"] - w["t0"]), pending=False)
        figs = energy_figures(en.windows, idle["power_w"])
        en.total_j, en.spread_j, en.dynamic_j = figs["total_j"], figs["spread_j"], figs["dynamic_j"]
        en.pending, en.note = None, None
        en.probe = probe.describe()
        en.provenance = f"measured: trace probe, meter log {probe.path} (clock offset {probe.offset_s:+g} s)"
        filled += 1
    return filled
