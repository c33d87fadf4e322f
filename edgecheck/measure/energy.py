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
from edgecheck.measure.probes import MIN_SAMPLES, TraceProbe, check_reading, read_trace
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
        if not w.pending:
            check_reading(w.energy_j, f"energy window of {desc_of(opts.probe)}")
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


def desc_of(probe) -> str:
    d = probe.describe()
    return f"the {d.get('probe')} probe ({d.get('sensor')})"


def _idle(probe, seconds: float) -> dict:
    probe.start()
    time.sleep(seconds)
    w = probe.stop()
    if not w.pending:
        check_reading(w.energy_j, f"idle power of {desc_of(probe)}")
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
        windows = []
        for w in en.windows or []:
            we, n = probe.integrate(t, p, float(w["t0"]), float(w["t1"]))
            if n < MIN_SAMPLES:
                raise EdgecheckError(f"trace {probe.path}: a window of {w['t1'] - w['t0']:.2f} s holds {n} samples "
                                     f"(< {MIN_SAMPLES}); lengthen it with --energy-window or log faster")
            windows.append({"energy_j": we, "samples": n, "mean_power_w": we / (w["t1"] - w["t0"]), "pending": False})
        if not windows:
            raise EdgecheckError(f"trace {probe.path}: the entry has no energy windows to fill")
        idle_fig = {"energy_j": ie, "samples": n_idle, "power_w": ie / (idle["t1"] - idle["t0"]), "pending": False}
        figs = energy_figures([{**w, **u} for w, u in zip(en.windows, windows)], idle_fig["power_w"])
    except (KeyError, TypeError, ZeroDivisionError) as e:
        raise EdgecheckError(f"trace {probe.path}: the entry's recorded windows are malformed ({e})") from None
    return {"idle": idle_fig, "windows": windows, **figs}
