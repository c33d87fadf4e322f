"""The battery view's data: per architecture and device, idle power, dynamic energy per inference and latency.

The report's page computes battery life from them for the capacity and the rates the reader sets (average
power = idle power + dynamic energy per inference x rate; life = capacity / average power); ``life_hours``
is the same arithmetic in Python, which the tests hold the page to.
"""
from __future__ import annotations

from edgecheck.judge.roles import A53, LEGACY_ROLES, TPU, role_device
from edgecheck.results import Run, by_size, rows

DEFAULT_CAPACITY_WH = 10.0  # a small battery pack; the reader changes it on the page
DEFAULT_RATES_HZ = (1.0, 10.0, 100.0)


def idle_power(run: Run) -> dict[str, tuple[float, str]]:
    """Idle watts per device and where they came from: measured before the device by its energy probe, or the
    power model a simulated or estimated figure came from (the run's own twin constants, as recorded with each
    entry; an older file without them: the packaged table's, said so)."""
    out: dict[str, tuple[float, str]] = {}
    for e in run.entries:
        p = ((e.energy.idle if e.energy else None) or {}).get("power_w")
        if p is not None and e.device.label not in out:
            out[e.device.label] = (float(p), "measured")
    for e in run.entries:
        p = e.energy.model_idle_w if e.energy else None
        if p is not None and e.device.label not in out:
            out[e.device.label] = (float(p), "simulated" if e.kind == "simulated" else "estimated")
    packaged = None
    for e in run.entries:  # a twin's entry of an older file: the packaged constants' power model
        role = e.device.role or LEGACY_ROLES.get(e.device.name)
        if e.kind == "simulated" and role and e.device.label not in out:
            from edgecheck.twins.model import load_constants, power_model

            packaged = packaged or load_constants()
            out[e.device.label] = (power_model(packaged, role)[0], "simulated (packaged constants: the run did not "
                                                                   "record its power model)")
    return out


def battery_data(results: Run | dict, rates: tuple[float, ...] = DEFAULT_RATES_HZ, detail_rate: float = 10.0,
                 capacity_wh: float = DEFAULT_CAPACITY_WH) -> dict:
    """Plain JSON data for the page: the devices (with their idle power and its source), which device plays
    the TPU and the A53, and per architecture each device's figures. A device without an energy figure or an
    idle power is left out, and named in ``left_out``."""
    run = Run.coerce(results)
    idle = idle_power(run)
    devices, left_out, models = [], {}, {}
    for r in by_size(rows(run)):
        if r.energy_j is None or r.latency_s is None or r.device_label not in idle:
            left_out[r.device_label] = ("no energy per inference" if r.energy_j is None else
                                  "no idle power (measure with an energy probe)")
            continue
        p_idle, idle_src = idle[r.device_label]
        if r.device_label not in [d["name"] for d in devices]:
            devices.append({"name": r.device_label, "kind": r.kind, "idle_w": p_idle, "idle_source": idle_src,
                            "energy_source": r.energy_provenance or r.kind})
        iv = r.energy_interval
        lo, hi = (iv.low, iv.high) if iv else (r.energy_j, r.energy_j)
        m = models.setdefault(r.model, {"model": r.model, "macs": r.macs or 0, "params": r.params or 0,
                                        "figures": {}})
        m["figures"][r.device_label] = {
            "latency_s": r.latency_s, "energy_j": r.energy_j,
            "dynamic_j": dynamic(r.energy_j, p_idle, r.latency_s),
            "dynamic_low_j": dynamic(min(lo, r.energy_j), p_idle, r.latency_s),
            "dynamic_high_j": dynamic(max(hi, r.energy_j), p_idle, r.latency_s)}
    names = [d["name"] for d in devices]
    shown = [r for r in rows(run) if r.device_label in names]
    roles = {}
    for role in (TPU, A53):  # the device (as the page labels it) that plays each platform
        name = role_device(shown, role)
        roles[role] = next((r.device_label for r in shown if r.device == name), None)
    devices.sort(key=lambda d: (d["name"] not in roles.values(), d["name"]))
    return {"capacity_wh": capacity_wh, "rates": sorted(set(rates) | {detail_rate}), "detail_rate": detail_rate,
            "devices": devices, "roles": roles,
            "models": sorted(models.values(), key=lambda m: (m["macs"], m["model"])),
            "left_out": {k: v for k, v in left_out.items() if k not in names}}


def dynamic(energy_j: float, idle_w: float, latency_s: float) -> float:
    """Energy per inference above idle: what the rate multiplies (never below zero)."""
    return max(energy_j - idle_w * latency_s, 0.0)


def average_power(idle_w: float, dynamic_j: float, rate_hz: float) -> float:
    return idle_w + dynamic_j * rate_hz


def life_hours(capacity_wh: float, rate_hz: float, idle_w: float, dynamic_j: float, latency_s: float
               ) -> float | None:
    """Hours a battery of ``capacity_wh`` lasts at ``rate_hz`` inferences per second; None when the device
    cannot sustain the rate (busier than 100 %)."""
    if rate_hz * latency_s > 1:
        return None
    return capacity_wh / average_power(idle_w, dynamic_j, rate_hz)
