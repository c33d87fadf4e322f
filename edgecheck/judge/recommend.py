"""``edgecheck recommend``: which platform for one .tflite, and at what cost.

Measured figures are used when a results file measured this very model (same
sha256) on both platforms; otherwise the twins predict, and the answer says so,
with the Edge TPU twin's band: when the A53's figure lies inside it the answer
is "too close to call" (an inconclusive outcome naming the interval). Any
feed-forward TFLite model works, not only ones edgecheck built; one the Edge TPU
compiler would refuse gets the A53 with the reason.
"""
from __future__ import annotations

from pathlib import Path

from edgecheck.errors import EdgecheckError
from edgecheck.files import sha256_file
from edgecheck.judge.roles import A53, LEGACY_ROLES, ROLES, TPU, TWIN_OF_ROLE
from edgecheck.outcome import TOO_CLOSE, Outcome


def recommend(model: str | Path, metric: str = "energy", results_path: str | None = None,
              tpu_link: str = "pcie") -> dict:
    from edgecheck.twins.model import load_constants, predict_a53, predict_tpu, workload

    model = Path(model)
    if not model.is_file():
        raise EdgecheckError(f"recommend: {model} not found")
    sha = sha256_file(model)
    if results_path:
        from edgecheck.results import load

        figures = {}
        for e in load(results_path).ok_entries():
            role = e.device.role or LEGACY_ROLES.get(e.device.name)
            if e.model.sha256 == sha and role in ROLES and e.kind == "measured" and e.latency:
                figures[role] = {"latency_s": e.latency.median,
                                          "energy_j": e.energy.total_j if e.energy else None,
                                          "provenance": e.provenance}
        key = "energy_j" if metric == "energy" else "latency_s"
        if set(figures) == set(ROLES) and all(f[key] is not None for f in figures.values()):
            best = min(figures, key=lambda d: figures[d][key])
            return {"model": str(model), "metric": metric, "platform": best, "source": "measured",
                    "figures": figures, "results": results_path}
    w = workload(model)  # names any operator the twins cannot cost
    c = load_constants()
    a = predict_a53(w, c)
    key = "energy_j" if metric == "energy" else "latency_s"
    tsim, asim = TWIN_OF_ROLE[TPU], TWIN_OF_ROLE[A53]
    figures = {asim: {"latency_s": a.latency_s, "energy_j": a.energy_j, "power_w": a.power_w,
                           "breakdown": a.breakdown}}
    out = {"model": str(model), "metric": metric, "params": w.params, "macs": w.macs,
           "source": f"simulated by the twins (constants sha256 {c.sha256[:12]}); not measured"}
    if w.tpu_refusal:  # what the Edge TPU compiler would refuse, the A53 still runs
        figures[tsim] = {"refused": w.tpu_refusal}
        return {**out, "platform": A53, "tpu_refused": w.tpu_refusal,
                "reason": f"the Edge TPU cannot run this model: {w.tpu_refusal}", "figures": figures}
    t = predict_tpu(w, c, tpu_link)
    figures[tsim] = {"latency_s": t.latency_s, "energy_j": t.energy_j, "power_w": t.power_w, "band": t.band,
                          "breakdown": t.breakdown, **({"near_limit": t.near_limit} if t.near_limit else {}),
                          **({"notes": t.notes} if t.notes else {})}
    lo, hi, mine = t.band[key]["low"], t.band[key]["high"], a.energy_j if metric == "energy" else a.latency_s
    if hi < mine or lo > mine:
        return {**out, "platform": TPU if hi < mine else A53, "figures": figures}
    # the A53's figure lies inside the Edge TPU twin's band: the pick changes inside it
    outcome = Outcome.inconclusive(TOO_CLOSE, f"{tsim} {metric} band", [lo, hi], mine,
                                   f"{asim}'s {metric} lies inside the Edge TPU twin's band")
    return {**out, "platform": "too close to call", "leaning": TPU if t.band[key]["central"] < mine else A53,
            "interval": {tsim: [lo, hi], asim: mine}, "outcome": outcome.to_json(),
            "reason": outcome.summary, "figures": figures}


def recommend_text(r: dict) -> list[str]:
    """``recommend``'s answer for people: the pick, where the figures came from, each platform's latency and
    energy in engineering units (with the Edge TPU twin's band), the reason and the notes; ``--json`` has all."""
    from edgecheck.textfmt import fmt_energy, fmt_interval, fmt_number, fmt_time

    what = "energy per inference" if r["metric"] == "energy" else "latency"
    pick = r["platform"]
    head = f"{r['model']}: lowest {what} on {pick}" if pick != "too close to call" else \
        f"{r['model']}: too close to call on {what} (leaning {r.get('leaning')})"
    lines = [head, f"  source: {r['source']}" + (f" ({r['results']})" if r.get("results") else "")]
    if r.get("params") is not None:
        lines.append(f"  model: {fmt_number(r['params'])} parameters, {fmt_number(r.get('macs'))} MACs per inference")
    for device, f in r["figures"].items():
        if "refused" in f:
            lines.append(f"  {device}: not runnable: {f['refused']}")
            continue
        band = f.get("band") or {}
        lat = fmt_time(f.get("latency_s"))
        if band.get("latency_s"):
            lat += " " + fmt_interval(band["latency_s"]["low"], band["latency_s"]["high"], fmt_time) + " twin band"
        energy = fmt_energy(f.get("energy_j"))
        if band.get("energy_j"):
            energy += " " + fmt_interval(band["energy_j"]["low"], band["energy_j"]["high"], fmt_energy) + " twin band"
        power = f" at {f['power_w']:.2f} W" if f.get("power_w") is not None else ""
        lines.append(f"  {device}: latency {lat}, energy {energy}{power}"
                     + (f" [{f['provenance']}]" if f.get("provenance") else ""))
        lines += [f"  note ({device}): {n}" for n in f.get("notes") or []]
    if r.get("reason") and not r.get("tpu_refused"):
        lines.append(f"  why: {r['reason']}")
    lines.append("  (--json prints every figure, the band and the breakdown)")
    return lines
