"""The paper's claims C1-C5 as pure functions over one run's results.

Each check returns a ``ClaimResult``: whether it holds, its evidence (numbers,
architectures, devices) and its status. A claim is "reproduced" only when every
device it uses was measured; on a twin it "holds in simulation". A claim whose
device did not run is "skipped" with the reason. Thresholds come from one
claims file (``edgecheck/judge/claims.json``, shipped in the package).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgecheck.config import EDGE_TPU_CACHE_BYTES
from edgecheck.errors import EdgecheckError
from edgecheck.files import load_json
from edgecheck.judge.roles import A53_ROLE, TPU_ROLE, role_rows
from edgecheck.results import Row, Run, rows
from edgecheck.stats import spearman

DEFAULT_CLAIMS_FILE = Path(__file__).with_name("claims.json")
REPRODUCED, SIMULATION, FAILED, SKIPPED = "reproduced", "holds in simulation", "does not hold", "skipped"


@dataclass
class ClaimResult:
    id: str
    title: str
    status: str
    holds: bool | None
    devices: list[str] = field(default_factory=list)
    evidence: dict = field(default_factory=dict)
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def load_thresholds(path: str | Path | None = None) -> dict:
    """The claims' thresholds: the packaged file, or ``--claims PATH``."""
    return load_json(Path(path) if path else DEFAULT_CLAIMS_FILE, "edgecheck.claims/1", "--claims")


def cache_bytes(thresholds: dict) -> int:
    """The Edge TPU's on-chip cache the claims use: ``config.EDGE_TPU_CACHE_BYTES`` unless a claims file sets
    C3.cache_bytes."""
    return int((thresholds.get("C3") or {}).get("cache_bytes", EDGE_TPU_CACHE_BYTES))


def _status(holds: bool, rows: list[Row]) -> str:
    if not holds:
        return FAILED
    return REPRODUCED if all(r.kind == "measured" for r in rows) else SIMULATION


def _skip(cid: str, title: str, why: str) -> ClaimResult:
    return ClaimResult(cid, title, SKIPPED, None, message=why)


def _per_model(rows: list[Row]) -> dict[str, Row]:
    """One row per model for accuracy (accuracy comes from the build, identical across devices)."""
    out: dict[str, Row] = {}
    for r in rows:
        if r.f1_int8 is not None:
            out.setdefault(r.model, r)
    return out


def c1(rows: list[Row], th: dict, dataset: str) -> ClaimResult:
    title = "Spectrogram + FFNN classifies well, and int8 quantization costs little"
    models = _per_model(rows)
    if not models:
        return _skip("C1", title, "no result with accuracy metrics in this run (no device ran, or --model "
                                  "files, which come without test data)")
    cfg = th["C1"]
    need = cfg["min_best_macro_f1"].get(dataset, cfg["min_best_macro_f1"]["default"])
    best = max(models.values(), key=lambda r: r.f1_int8)
    drops = {}
    for r in models.values():
        # one test window's worth: one flipped window moves macro-F1 by about 1/n (a little more when the
        # classes it touches are small: 0.02506 for 40 windows in 4 classes), hence the 10 % slack
        allowance = max(cfg["max_int8_drop"], 1.1 / r.test_windows if r.test_windows else 0.0)
        drops[r.model] = {"float": r.f1_float, "int8": r.f1_int8, "drop": r.f1_float - r.f1_int8,
                          "allowed": allowance, "ok": r.f1_int8 >= r.f1_float - allowance}
    bad = [m for m, d in drops.items() if not d["ok"]]
    holds = best.f1_int8 >= need and not bad
    msg = (f"best int8 macro-F1 {best.f1_int8:.3f} ({best.model}) vs required {need:.3f} for dataset {dataset!r}; "
           f"int8 within the allowed drop of float on {len(drops) - len(bad)}/{len(drops)} architectures"
           + (f"; too large a drop on {', '.join(bad)}" if bad else ""))
    # accuracy is measured by the build on the host's TFLite interpreter: no simulated device is involved
    return ClaimResult("C1", title, REPRODUCED if holds else FAILED, holds, ["build (host TFLite interpreter)"],
                       {"best": {"model": best.model, "int8_macro_f1": best.f1_int8}, "required": need,
                        "per_architecture": drops}, msg)


def c2(rows: list[Row], th: dict) -> ClaimResult:
    title = "There is an optimal operating point on the TPU"
    dev, tpu = role_rows(rows, TPU_ROLE)
    if dev is None:
        return _skip("C2", title, "no tpu or tpu-sim results in this run")
    tpu = [r for r in tpu if r.f1_int8 is not None]
    if not tpu or any(r.energy_j is None for r in tpu):
        return _skip("C2", title, f"{dev} has no energy per inference (measure with --energy-probe)")
    best_f1 = max(r.f1_int8 for r in tpu)
    within = [r for r in tpu if r.f1_int8 >= best_f1 - th["C2"]["within_macro_f1"]]
    op = min(within, key=lambda r: r.energy_j)
    top = max(tpu, key=lambda r: (r.f1_int8, -r.energy_j))
    saving = 1 - op.energy_j / top.energy_j if top.energy_j else 0.0
    msg = (f"operating point on {dev}: {op.model} (macro-F1 {op.f1_int8:.3f}, {op.energy_j * 1e6:.1f} uJ/inference) "
           f"among {len(within)} architectures within {th['C2']['within_macro_f1']:.2f} of the best F1 {best_f1:.3f}; "
           f"it saves {saving:.0%} energy against the most accurate ({top.model}, {top.energy_j * 1e6:.1f} uJ)")
    return ClaimResult("C2", title, _status(True, tpu), True, [dev],
                       {"operating_point": op.model, "macro_f1": op.f1_int8, "energy_j": op.energy_j,
                        "most_accurate": top.model, "most_accurate_energy_j": top.energy_j, "energy_saving": saving,
                        "candidates": [r.model for r in within]}, msg)


def c3(rows: list[Row], th: dict) -> ClaimResult:
    title = "The TPU's cost is set by on-chip memory"
    dev, tpu = role_rows(rows, TPU_ROLE)
    if dev is None:
        return _skip("C3", title, "no tpu or tpu-sim results in this run")
    cfg = th["C3"]
    limit = cache_bytes(th)
    over = [r for r in tpu if (r.streamed_bytes or 0) > 0 or r.param_bytes > limit]
    fits = [r for r in tpu if r not in over]
    if not over or not fits:
        return _skip("C3", title, f"the sweep needs models both above and below the {limit} B cache "
                                  f"({len(fits)} fit, {len(over)} exceed)")
    largest = max(fits, key=lambda r: r.param_bytes)
    metric = "energy_j" if all(r.energy_j is not None for r in tpu) else "latency_s"
    base = getattr(largest, metric)
    ratios = {r.model: getattr(r, metric) / base for r in over}
    cliff = min(ratios.values()) >= cfg["k"]
    x = np.log([r.macs for r in fits])
    y = np.log([r.latency_s for r in fits])
    slope = float(np.polyfit(x, y, 1)[0]) if len(fits) >= 3 and np.ptp(x) > 0 else float("nan")
    flat = slope <= cfg["max_loglog_slope_below_cache"]
    holds = bool(cliff and flat)
    msg = (f"on {dev}, models beyond the cache cost {min(ratios.values()):.1f}x-{max(ratios.values()):.1f}x the "
           f"{metric.split('_')[0]} of the largest that fits ({largest.model}); required >= {cfg['k']:g}x. Below the "
           f"cache latency grows as MACs^{slope:.2f} (required <= {cfg['max_loglog_slope_below_cache']:g})")
    return ClaimResult("C3", title, _status(holds, tpu), holds, [dev],
                       {"largest_fitting": largest.model, "metric": metric, "ratios": ratios,
                        "loglog_slope_below_cache": slope, "exceeding": [r.model for r in over]}, msg)


def c4(rows: list[Row], th: dict) -> ClaimResult:
    title = "The A53's cost grows with the work"
    dev, a53 = role_rows(rows, A53_ROLE)
    if dev is None:
        return _skip("C4", title, "no a53 or a53-sim results in this run")
    need = th["C4"]["min_spearman"]
    rho_lat = spearman([r.macs for r in a53], [r.latency_s for r in a53])
    rho_e = spearman([r.macs for r in a53], [r.energy_j for r in a53]) if all(r.energy_j is not None for r in a53) \
        else None
    holds = rho_lat >= need and (rho_e is None or rho_e >= need)
    msg = (f"on {dev}: rank correlation of latency with MACs {rho_lat:.3f}"
           + (f", of energy {rho_e:.3f}" if rho_e is not None else " (no energy figures)") + f"; required >= {need}")
    return ClaimResult("C4", title, _status(holds, a53), bool(holds), [dev],
                       {"spearman_latency_macs": rho_lat, "spearman_energy_macs": rho_e, "models": len(a53)}, msg)


def c5(rows: list[Row], th: dict) -> ClaimResult:
    title = "There is a crossover between the A53 and the TPU"
    tdev, tpu = role_rows(rows, TPU_ROLE)
    adev, a53 = role_rows(rows, A53_ROLE)
    if tdev is None or adev is None:
        return _skip("C5", title, f"needs both roles: tpu ({tdev or 'missing'}) and a53 ({adev or 'missing'})")
    t = {r.model: r for r in tpu}
    a = {r.model: r for r in a53}
    common = sorted(set(t) & set(a), key=lambda m: (t[m].macs, m))
    if any(t[m].energy_j is None or a[m].energy_j is None for m in common):
        return _skip("C5", title, "needs energy per inference on both devices (--energy-probe, or the twins)")
    if len(common) < 2:
        return _skip("C5", title, "needs at least two architectures measured on both devices")
    winner = {m: ("a53" if a[m].energy_j < t[m].energy_j else "tpu") for m in common}
    smallest = common[: max(1, int(len(common) * th["C5"]["smallest_fraction"]))]
    small_on_a53 = all(winner[m] == "a53" for m in smallest)
    tpu_somewhere = any(w == "tpu" for w in winner.values())
    first_tpu = next((i for i, m in enumerate(common) if winner[m] == "tpu"), None)
    bracket = None
    if first_tpu:
        lo, hi = common[first_tpu - 1], common[first_tpu]
        bracket = {"a53_wins": {"model": lo, "params": t[lo].params, "macs": t[lo].macs},
                   "tpu_wins": {"model": hi, "params": t[hi].params, "macs": t[hi].macs}}
    holds = small_on_a53 and tpu_somewhere
    msg = (f"energy per inference, {adev} vs {tdev}: the smallest {len(smallest)} architectures "
           f"{'all' if small_on_a53 else 'not all'} cost less on {adev}; "
           + (f"crossover between {bracket['a53_wins']['model']} ({bracket['a53_wins']['macs']} MACs) and "
              f"{bracket['tpu_wins']['model']} ({bracket['tpu_wins']['macs']} MACs)" if bracket else
              "no architecture costs less on the TPU"))
    return ClaimResult("C5", title, _status(holds, tpu + a53), bool(holds), [adev, tdev],
                       {"winner_by_model": winner, "crossover": bracket, "smallest_checked": smallest}, msg)


def evaluate(results: Run | dict, thresholds: dict, with_chart: bool = True) -> list[ClaimResult]:
    """C1-C5, and C6 (the decision chart, which needs scikit-learn) unless ``with_chart`` is False."""
    run = Run.coerce(results)
    rs = rows(run)
    dataset = run.dataset.get("name", "default")
    out = [c1(rs, thresholds, dataset), c2(rs, thresholds), c3(rs, thresholds), c4(rs, thresholds),
           c5(rs, thresholds)]
    if with_chart:
        out.append(c6(run, thresholds))
    return out


def c6(results: Run | dict, thresholds: dict) -> ClaimResult:
    title = "The decision chart agrees with the measurements"
    from edgecheck.judge.chart import build_chart

    try:
        chart = build_chart(results, "energy", cache_bytes=cache_bytes(thresholds))
    except EdgecheckError as e:
        return _skip("C6", title, str(e))
    except ImportError:
        return _skip("C6", title, "the decision chart's rules need scikit-learn (pip install 'edgecheck[report]')")
    if chart.loo_agreement is None:
        return _skip("C6", title, "fewer than 3 architectures measured on both platforms")
    need = thresholds["C6"]["min_agreement"]
    holds = chart.loo_agreement >= need
    status = FAILED if not holds else REPRODUCED if chart.provenance == "measured" else SIMULATION
    msg = (f"rules (depth <= 3) pick the {chart.metric} winner for {chart.loo_agreement:.0%} of "
           f"{len(chart.winners)} architectures, each judged by rules fitted without it (required >= {need:.0%})"
           + (f"; missed {', '.join(chart.loo_misses)}" if chart.loo_misses else ""))
    return ClaimResult("C6", title, status, holds, chart.devices,
                       {"agreement": chart.loo_agreement, "misses": chart.loo_misses, "rules": chart.rules}, msg)


def table(claims: list[ClaimResult]) -> list[str]:
    lines = []
    for c in claims:
        lines.append(f"{c.id}  {c.status:<20} {c.title}")
        if c.message:
            lines.append(f"    {c.message}")
    return lines


def markdown(claims: list[ClaimResult]) -> str:
    out = ["| claim | status | devices | evidence |", "|---|---|---|---|"]
    for c in claims:
        out.append(f"| {c.id} {c.title} | {c.status} | {', '.join(c.devices) or '-'} | {c.message} |")
    return "\n".join(out) + "\n"
