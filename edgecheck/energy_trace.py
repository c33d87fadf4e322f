"""Filling energy from an external meter's log after the run (the trace probe).

A lab supply or USB meter logs power with its own clock; the run recorded each
window's wall-clock start and end. This integrates the log over those windows
(with a clock offset), as DeepEdgeBench aligned its logs in post-processing.
"""
from __future__ import annotations

from .measure import energy_figures
from .probes import MIN_SAMPLES, TraceProbe


def fill_from_trace(data: dict, probe: TraceProbe) -> int:
    """Integrate the trace over every pending window of ``data`` (in place); returns entries filled.
    Raises EdgecheckError naming the trace when it does not cover a window."""
    from .errors import EdgecheckError

    filled = 0
    for e in data.get("entries", []):
        en = e.get("energy") or {}
        if not en.get("pending"):
            continue
        idle = en["idle"]
        ie, n_idle = probe.energy(idle["t0"], idle["t1"])
        idle.update(energy_j=ie, samples=n_idle, power_w=ie / (idle["t1"] - idle["t0"]), pending=False)
        for w in en["windows"]:
            we, n = probe.energy(w["t0"], w["t1"])
            if n < MIN_SAMPLES:
                raise EdgecheckError(f"trace {probe.path}: a window of {w['t1'] - w['t0']:.2f} s holds {n} samples "
                                     f"(< {MIN_SAMPLES}); lengthen it with --energy-window or log faster")
            w.update(energy_j=we, samples=n, mean_power_w=we / (w["t1"] - w["t0"]), pending=False)
        en.update(energy_figures(en["windows"], idle["power_w"]))
        en.pop("pending", None)
        en.pop("note", None)
        en["probe"] = probe.describe()
        en["provenance"] = f"measured: trace probe, meter log {probe.path} (clock offset {probe.offset_s:+g} s)"
        filled += 1
    return filled
