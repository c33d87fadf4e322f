"""The Edge TPU twin's latency constants, their band, and how well the band holds up on points it never saw.

The twin's form: ``latency = overhead(link) + MACs x s + [streams] x stream_overhead(link)
+ (streamed + I/O bytes) / rate(link)``, with ``s`` the seconds per MAC of a cached dense layer
(``1 / (matvec_utilization x 4096 x clock)``) and ``stream_overhead`` the fixed cost an invoke pays once any
parameter is streamed (both public sources that stream show one).

**Public points** (``published_tpu_latency.json``): every source of rank 1-3 (libedgetpu, the production
runtime) is fitted on its own; each quantity's central value comes from its best-ranked source and its range
is the envelope of all sources' values. A quantity only one source determines gets the largest disagreement
seen between two sources on any quantity (``FALLBACK_SPREAD`` when none has two); one no source determines
comes from a documented relation (PCIe from USB 3 through Coral's benchmark table; USB 2 from USB 3 through
the signalling rates). Leave-one-source-out repeats all of it without each source and checks whether the
band covers that source's points.

**A user's own board** (``edgecheck calibrate --device tpu RESULTS.json``): one host, one link, so the
band comes from the fit's own held-out errors (jackknife over models, split conformal): each model is
predicted by the constants fitted without it, and the band's margin is the 80th percentile of those errors,
computed without the model it is scored on.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median

import numpy as np

from edgecheck.errors import EdgecheckError
from edgecheck.files import load_json
from edgecheck.twins.sections import TPU

PUBLISHED = Path(__file__).with_name("published_tpu_latency.json")
PUBLISHED_FOR = TPU  # the measured kind the published points describe (``edgecheck calibrate --published``)
LINKS = ("pcie", "usb3", "usb2")
REGIMES = ("cached", "streamed")
FALLBACK_SPREAD = 1.5  # assumption: a quantity no second source checks is known to a factor 1.5 either way
PRIOR_S_PER_MAC = 1 / (0.125 * 4096 * 500e6)  # the twin's old assumption (1/8 of the MAC array), used only when
#                                                no source determines the compute rate
USB2_OVER_USB3 = 480 / 5000  # signalling rates (USB 2.0 high speed, USB 3.0 SuperSpeed)
CONFORMAL_QUANTILE = 0.8
ENDS = ("low", "value", "high")


@dataclass(frozen=True)
class TpuPoint:
    """One measured latency: a model's work, its off-chip bytes and where it was measured."""

    src: str
    tier: int
    link: str
    macs: int
    streamed_bytes: int
    latency_s: float
    io_bytes: int = 0
    model: str = ""
    runs: int = 1  # runs behind the figure: a mean of 30 weighs more than a mean of 5

    @property
    def regime(self) -> str:
        return "streamed" if self.streamed_bytes > 0 else "cached"


@dataclass
class Estimate:
    """A quantity of the form with its range and where each end comes from."""

    low: float
    value: float
    high: float
    basis: str
    sources: dict = field(default_factory=dict)  # source -> its own value

    def end(self, which: str) -> float:
        return {"low": self.low, "value": self.value, "high": self.high}[which]


def published_data() -> dict:
    return load_json(PUBLISHED, "edgecheck.published-latency/2", "published latencies")


def published_points(data: dict | None = None, used_only: bool = True) -> list[TpuPoint]:
    data = data or published_data()
    out = []
    for r in data["rows"]:
        s = data["sources"][r["src"]]
        if used_only and s.get("used") is not True:
            continue
        out.append(TpuPoint(r["src"], int(s["tier"]), r["link"], int(r["macs"]), int(r["streamed_bytes"]),
                            float(r["latency_s"]), int(r.get("io_bytes", 0)), r.get("model", ""),
                            int(r.get("runs", 1))))
    return out


# ----------------------------------------------------------------------------
# Fitting one source
# ----------------------------------------------------------------------------


def nnls(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Non-negative least squares for a handful of columns: the best feasible subset solution."""
    best, best_err = np.zeros(A.shape[1]), float(np.sum(b**2))
    for k in range(1, A.shape[1] + 1):
        for cols in itertools.combinations(range(A.shape[1]), k):
            x, *_ = np.linalg.lstsq(A[:, cols], b, rcond=None)
            if np.any(x < 0):
                continue
            err = float(np.sum((A[:, cols] @ x - b) ** 2))
            if err < best_err:
                best, best_err = np.zeros(A.shape[1]), err
                best[list(cols)] = x
    return best


def identifies_compute(points: list[TpuPoint]) -> bool:
    """Cached points spanning at least 4x in MACs pin down the compute rate."""
    macs = [p.macs for p in points if p.regime == "cached"]
    return len(macs) >= 2 and max(macs) >= 4 * max(1, min(macs))


def identifies_stream_overhead(points: list[TpuPoint], link: str) -> bool:
    """Streamed points of two or more sizes on a link separate its fixed streaming cost from its rate."""
    return len({p.streamed_bytes for p in points if p.link == link and p.streamed_bytes > 0}) >= 2


SHARED = ("s_per_mac", "stream_overhead_s")  # fixed from the best source when a source cannot determine them


def fit_source(points: list[TpuPoint], fixed: dict[tuple, float] | None = None) -> dict[tuple, float]:
    """The form's quantities one set of points determines, by least squares on relative error (weighted by the
    runs behind each figure). ``fixed`` supplies the shared quantities it cannot determine.

    Keys: ("overhead_s", link), ("s_per_mac", None), ("stream_overhead_s", link), ("rate_Bps", link); only
    the quantities fitted here are returned."""
    fixed = fixed or {}
    links = sorted({p.link for p in points})
    cols: list[tuple] = [("overhead_s", lk) for lk in links]
    if identifies_compute(points):
        cols.append(("s_per_mac", None))
    for lk in links:
        if identifies_stream_overhead(points, lk):
            cols.append(("stream_overhead_s", lk))
        if any(p.link == lk and p.streamed_bytes > 0 for p in points):
            cols.append(("inv_rate", lk))
    A = np.zeros((len(points), len(cols)))
    y = np.array([p.latency_s for p in points])
    known = np.zeros(len(points))
    for i, p in enumerate(points):
        if ("s_per_mac", None) not in cols:
            known[i] += p.macs * fixed.get(("s_per_mac", None), 0.0)
        if p.streamed_bytes > 0 and ("stream_overhead_s", p.link) not in cols:
            known[i] += fixed.get(("stream_overhead_s", p.link), 0.0)
        for j, (k, lk) in enumerate(cols):
            if k == "overhead_s" and p.link == lk:
                A[i, j] = 1.0
            elif k == "s_per_mac":
                A[i, j] = p.macs
            elif k == "stream_overhead_s" and p.link == lk and p.streamed_bytes > 0:
                A[i, j] = 1.0
            elif k == "inv_rate" and p.link == lk:
                A[i, j] = p.streamed_bytes + p.io_bytes
    w = np.sqrt([p.runs for p in points]) / y
    x = nnls(A * w[:, None], (y - known) * w)
    out = {}
    for (k, lk), v in zip(cols, x):
        if k == "inv_rate":
            if v > 0:
                out[("rate_Bps", lk)] = float(1.0 / v)
        else:
            out[(k, lk)] = float(v)
    return out


def source_estimates(points: list[TpuPoint], residuals: list | None = None
                     ) -> dict[tuple, list[tuple[int, str, float]]]:
    """Each quantity: (tier, source, value) of every source that determines it. ``residuals``, when given, receives
    (regime, relative residual) of every point against its own source's fit."""
    by_src: dict[str, list[TpuPoint]] = {}
    for p in points:
        by_src.setdefault(p.src, []).append(p)
    order = sorted(by_src, key=lambda s: (min(p.tier for p in by_src[s]), s))
    # shared quantities first, each from the best source that determines it; the others are fitted with them
    fixed: dict[tuple, float] = {("s_per_mac", None): PRIOR_S_PER_MAC}
    seen: set = set()
    for s in order:
        for q, v in fit_source(by_src[s], fixed).items():
            if q[0] in SHARED and q not in seen:
                fixed[q], _ = v, seen.add(q)
    for lk in LINKS:  # a link whose streaming cost no source separates borrows the best one's
        if ("stream_overhead_s", lk) not in seen:
            fixed[("stream_overhead_s", lk)] = next((fixed[q] for q in sorted(seen) if q[0] == "stream_overhead_s"),
                                                    0.0)
    out: dict[tuple, list] = {}
    for s in order:
        own = fit_source(by_src[s], fixed)
        for q, v in own.items():
            out.setdefault(q, []).append((min(p.tier for p in by_src[s]), s, v))
        if residuals is not None:
            q = {**fixed, **own}
            for p in by_src[s]:
                if p.regime == "cached" and sum(x.link == p.link and x.regime == "cached" for x in by_src[s]) < 2:
                    continue  # the only cached point of its link sets that link's overhead: no residual to learn from
                pred = q[("overhead_s", p.link)] + p.macs * q[("s_per_mac", None)]
                if p.streamed_bytes > 0:
                    pred += q[("stream_overhead_s", p.link)] + (p.streamed_bytes + p.io_bytes) / q[("rate_Bps", p.link)]
                residuals.append((p.regime, p.latency_s / pred - 1))
    return out


# ----------------------------------------------------------------------------
# Central values and ranges from several sources
# ----------------------------------------------------------------------------


def _spread(est: dict[tuple, list]) -> tuple[float, str]:
    ratios = {q: max(v for *_, v in vs) / min(v for *_, v in vs) for q, vs in est.items()
              if len(vs) >= 2 and min(v for *_, v in vs) > 0}
    if not ratios:
        return FALLBACK_SPREAD, f"no quantity has two sources: factor {FALLBACK_SPREAD:g} (assumption)"
    typical = float(median(ratios.values()))
    listed = ", ".join(f"{_name(q)} x{r:.2f}" for q, r in sorted(ratios.items(), key=lambda kv: _name(kv[0])))
    return typical, f"the typical disagreement between two sources: x{typical:.2f}, the median of {listed}"


def _name(q: tuple) -> str:
    return q[0] if q[1] is None else f"{q[1]}.{q[0]}"


def constants_table(points: list[TpuPoint], coral: dict | None = None) -> dict[tuple, Estimate]:
    """Every quantity of the form with (low, value, high), from the points' sources (plus derivations)."""
    residuals: list = []
    est = source_estimates(points, residuals)
    spread, spread_basis = _spread(est)
    table: dict[tuple, Estimate] = {}
    for regime in REGIMES:  # how far each source's points sit from its own fit: the band's outer margin
        res = [abs(r) for g, r in residuals if g == regime] or [abs(r) for _, r in residuals]
        m = float(median(res)) if res else 0.0
        table[("band_margin", regime)] = Estimate(m, m, m, f"median distance of {len(res)} points from their own "
                                                         f"source's fit ({regime} points; all when none)")
    for q, vs in est.items():
        best_tier = min(t for t, _, _ in vs)
        best = [v for t, _, v in vs if t == best_tier]
        central = float(np.exp(np.mean(np.log(best))))
        srcs = {s: v for _, s, v in vs}
        if len(vs) >= 2:
            table[q] = Estimate(min(v for *_, v in vs), central, max(v for *_, v in vs),
                                f"best-ranked source; range: the {len(vs)} sources' values", srcs)
        else:
            table[q] = Estimate(central / spread, central, central * spread,
                                f"one source; range: {spread_basis}", srcs)

    def derived(q: tuple, value: float, basis: str) -> None:
        if q not in table:
            table[q] = Estimate(value / spread, value, value * spread, f"{basis}; range: {spread_basis}")

    if ("s_per_mac", None) not in table:
        derived(("s_per_mac", None), PRIOR_S_PER_MAC, "no source: 1/8 of the 64x64 MAC array (assumption)")
    for lk in LINKS:
        src = next((q for q in (("stream_overhead_s", "usb3"), ("stream_overhead_s", "usb2"),
                                ("stream_overhead_s", "pcie")) if q in table), None)
        if src is not None:
            derived(("stream_overhead_s", lk), table[src].value, f"the {src[1]} streaming overhead")
    if ("overhead_s", "usb3") not in table and ("overhead_s", "usb2") in table:
        derived(("overhead_s", "usb3"), table[("overhead_s", "usb2")].value, "the USB 2 overhead")
    if ("rate_Bps", "usb3") not in table and ("rate_Bps", "usb2") in table:
        derived(("rate_Bps", "usb3"), table[("rate_Bps", "usb2")].value / USB2_OVER_USB3,
                "the USB 2 rate x 5000/480 (signalling rates)")
    if ("overhead_s", "usb3") in table:
        derived(("overhead_s", "usb2"), table[("overhead_s", "usb3")].value, "the USB 3 overhead")
    if ("rate_Bps", "usb3") in table:
        derived(("rate_Bps", "usb2"), table[("rate_Bps", "usb3")].value * USB2_OVER_USB3,
                "the USB 3 rate x 480/5000 (signalling rates)")
    coral = coral if coral is not None else published_data().get("coral_table")
    if coral and ("overhead_s", "usb3") in table:
        derived(("overhead_s", "pcie"), table[("overhead_s", "usb3")].value,
                "the USB 3 overhead: Coral's benchmark table times compute-bound models equally on the Dev Board "
                "(PCIe) and the USB Accelerator on a desktop (" + _pairs(coral, "compute_bound") + ")")
    if coral and ("rate_Bps", "usb3") in table:
        ratio = coral_slowdown(coral)
        derived(("rate_Bps", "pcie"), table[("rate_Bps", "usb3")].value / ratio,
                f"the USB 3 rate / {ratio:.3f}: the Dev Board's slowdown on the streaming-heavy models of Coral's "
                f"benchmark table ({_pairs(coral, 'streaming_heavy')})")
    return table


def coral_slowdown(coral: dict) -> float:
    rows = {r["model"]: r for r in coral["rows"]}
    return float(np.mean([rows[m]["dev_board_ms"] / rows[m]["usb3_desktop_ms"] for m in coral["streaming_heavy"]]))


def _pairs(coral: dict, kind: str) -> str:
    rows = {r["model"]: r for r in coral["rows"]}
    return ", ".join(f"{m} {rows[m]['dev_board_ms']:g}/{rows[m]['usb3_desktop_ms']:g} ms" for m in coral[kind])


def predict_point(table: dict[tuple, Estimate], p: TpuPoint, end: str = "value") -> float:
    """The form at one point; "low"/"high" take every quantity at the end that makes latency low/high."""
    slow = {"low": "low", "value": "value", "high": "high"}[end]
    fast = {"low": "high", "value": "value", "high": "low"}[end]
    stream = table[("stream_overhead_s", p.link)].end(slow) if p.streamed_bytes > 0 else 0.0
    t = (table[("overhead_s", p.link)].end(slow) + p.macs * table[("s_per_mac", None)].end(slow) + stream
         + (p.streamed_bytes + p.io_bytes) / table[("rate_Bps", p.link)].end(fast))
    m = table[("band_margin", p.regime)].value if ("band_margin", p.regime) in table else 0.0
    return t * {"low": 1 - m, "value": 1.0, "high": 1 + m}[end]


# ----------------------------------------------------------------------------
# How good is the band?
# ----------------------------------------------------------------------------


def _regime_stats(rows: list[dict]) -> dict:
    out = {}
    for regime in REGIMES:
        sel = [r for r in rows if r["regime"] == regime]
        if not sel:
            continue
        held = [r for r in sel if r.get("held_out_inside") is not None]
        errs = [abs(r["held_out_central_s"] / r["measured_s"] - 1) for r in held]
        out[regime] = {
            "points": len(sel),
            "inside_band_share": sum(r["inside"] for r in sel) / len(sel),
            "median_half_width_pct": median(r["half_width_pct"] for r in sel),
            "held_out_coverage": (sum(r["held_out_inside"] for r in held) / len(held)) if held else None,
            "held_out_median_abs_error_pct": median(errs) * 100 if errs else None,
            "held_out_within_10pct_share": (sum(e <= 0.10 for e in errs) / len(errs)) if errs else None,
        }
    return out


def band_report(points: list[TpuPoint] | None = None, coral: dict | None = None) -> dict:
    """Per regime: the share of points inside the band fitted on all of them, the band's median half-width,
    and leave-one-source-out coverage (everything refitted without each source)."""
    points = points if points is not None else published_points()
    table = constants_table(points, coral)
    rows = []
    for src in sorted({p.src for p in points}):
        rest = [p for p in points if p.src != src]
        held = constants_table(rest, coral) if rest else None
        for p in (q for q in points if q.src == src):
            lo, c, hi = (predict_point(table, p, e) for e in ENDS)
            row = {"src": src, "model": p.model, "link": p.link, "regime": p.regime, "measured_s": p.latency_s,
                   "low_s": lo, "central_s": c, "high_s": hi, "inside": lo <= p.latency_s <= hi,
                   "half_width_pct": (hi - lo) / 2 / c * 100}
            if held is not None and ("overhead_s", p.link) in held and ("rate_Bps", p.link) in held:
                hlo, hc, hhi = (predict_point(held, p, e) for e in ENDS)
                row.update(held_out_low_s=hlo, held_out_central_s=hc, held_out_high_s=hhi,
                           held_out_inside=hlo <= p.latency_s <= hhi)
            rows.append(row)
    return {"method": "leave one source out", "sources": sorted({p.src for p in points}),
            "regimes": _regime_stats(rows), "points": rows,
            "constants": {_name(q): asdict(e) for q, e in sorted(table.items(), key=lambda kv: _name(kv[0]))}}


# ----------------------------------------------------------------------------
# A user's own board: one source, jackknife over models
# ----------------------------------------------------------------------------


def _fit_single(points: list[TpuPoint], s_prior: float) -> dict[tuple, float]:
    fit = fit_source(points, None if identifies_compute(points) else s_prior)
    fit.setdefault(("s_per_mac", None), s_prior)
    return fit


def _predict_fit(fit: dict[tuple, float], p: TpuPoint, rate_prior: float | None) -> float:
    rate = fit.get(("rate_Bps", p.link), rate_prior)
    return fit[("overhead_s", p.link)] + p.macs * fit[("s_per_mac", None)] + \
        ((p.streamed_bytes + p.io_bytes) / rate if rate else 0.0)


def conformal_fit(points: list[TpuPoint], s_prior: float, rate_prior: float | None) -> tuple[dict, float, dict]:
    """(central quantities, margin, report) for one board: the margin is the 80th percentile of the
    leave-one-model-out relative errors; coverage is scored with margins computed without the scored model."""
    if len(points) < 4:
        raise EdgecheckError(f"calibrate --device tpu: needs at least 4 measured models, got {len(points)}")
    central = _fit_single(points, s_prior)
    errs = []
    for i, p in enumerate(points):
        fit = _fit_single(points[:i] + points[i + 1:], s_prior)
        errs.append(abs(_predict_fit(fit, p, rate_prior) / p.latency_s - 1))
    margin = float(np.quantile(errs, CONFORMAL_QUANTILE))
    rows = []
    for i, p in enumerate(points):
        others = errs[:i] + errs[i + 1:]
        m_i = float(np.quantile(others, CONFORMAL_QUANTILE))
        fit = _fit_single(points[:i] + points[i + 1:], s_prior)
        c_i = _predict_fit(fit, p, rate_prior)
        c = _predict_fit(central, p, rate_prior)
        rows.append({"model": p.model, "link": p.link, "regime": p.regime, "measured_s": p.latency_s,
                     "low_s": c * (1 - margin), "central_s": c, "high_s": c * (1 + margin),
                     "inside": c * (1 - margin) <= p.latency_s <= c * (1 + margin), "half_width_pct": margin * 100,
                     "held_out_central_s": c_i, "held_out_low_s": c_i * (1 - m_i), "held_out_high_s": c_i * (1 + m_i),
                     "held_out_inside": c_i * (1 - m_i) <= p.latency_s <= c_i * (1 + m_i)})
    return central, margin, {"method": "leave one model out (jackknife, split conformal at the 80th percentile)",
                             "margin_pct": margin * 100, "regimes": _regime_stats(rows), "points": rows}
