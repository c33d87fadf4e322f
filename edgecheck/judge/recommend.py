"""``edgecheck recommend``: which platform for one .tflite, and at what cost.

Measured figures are used when a results file measured this very model (same
sha256) on both platforms; otherwise the twins predict, and the answer says so.
Any feed-forward TFLite model works, not only ones edgecheck built.
"""
from __future__ import annotations

from pathlib import Path

from edgecheck.errors import EdgecheckError
from edgecheck.files import sha256_file


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
            if e.model.sha256 == sha and e.device.name in ("tpu", "a53") and e.kind == "measured" and e.latency:
                figures[e.device.name] = {"latency_s": e.latency.median,
                                          "energy_j": e.energy.total_j if e.energy else None,
                                          "provenance": e.provenance}
        key = "energy_j" if metric == "energy" else "latency_s"
        if set(figures) == {"tpu", "a53"} and all(f[key] is not None for f in figures.values()):
            best = min(figures, key=lambda d: figures[d][key])
            return {"model": str(model), "metric": metric, "platform": best, "source": "measured",
                    "figures": figures, "results": results_path}
    w = workload(model)  # names any operator the twins cannot cost
    c = load_constants()
    t, a = predict_tpu(w, c, tpu_link), predict_a53(w, c)
    figures = {"tpu-sim": {"latency_s": t.latency_s, "energy_j": t.energy_j, "power_w": t.power_w,
                           "breakdown": t.breakdown},
               "a53-sim": {"latency_s": a.latency_s, "energy_j": a.energy_j, "power_w": a.power_w,
                           "breakdown": a.breakdown}}
    key = "energy_j" if metric == "energy" else "latency_s"
    best = min(figures, key=lambda d: figures[d][key])
    return {"model": str(model), "metric": metric, "platform": best.replace("-sim", ""),
            "source": f"simulated by the twins (constants sha256 {c.sha256[:12]}); not measured",
            "params": w.params, "macs": w.macs,
            "figures": figures}
