"""Comparing a run with a saved baseline, soundly.

Latency on a measured device is a regression only when the change is both
significant (Mann-Whitney U on the raw per-round samples, p < 0.002, as asv
does; where that p is unreachable with so few samples, non-overlapping 99 %
confidence intervals of the median) and larger than a threshold (default 10 %).
Unstable measurements (pyperf-like: CV above 10 % or a max 50 % off the median)
are flagged, not called regressions. Twins give one deterministic value per
model: those are compared exactly. Improvements are reported, never failed.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist

import numpy as np

from edgecheck.errors import EdgecheckError
from edgecheck.results import Run
from edgecheck.stats import median_ci
from edgecheck.textfmt import text_table

REGRESSION, IMPROVEMENT, UNCHANGED, UNSTABLE, NOT_SIGNIFICANT = (
    "regression", "improvement", "unchanged", "unstable", "not significant")


@dataclass
class Thresholds:
    latency: float = 0.10  # relative
    energy: float = 0.10  # relative
    accuracy: float = 0.01  # absolute (1 point of macro-F1 or accuracy)
    alpha: float = 0.002  # Mann-Whitney U significance, as asv
    simulated_rel_tol: float = 1e-9
    unstable_cv: float = 0.10
    unstable_spread: float = 0.50
    per_model: dict = field(default_factory=dict)  # {"4x2048": {"latency": 0.2}}

    def for_model(self, model: str, metric: str) -> float:
        return float(self.per_model.get(model, {}).get(metric, getattr(self, metric)))

    @classmethod
    def from_baseline(cls, baseline: Run | dict, specs: list[tuple[str | None, str, float]] = ()) -> Thresholds:
        """The baseline's saved thresholds, then ``specs`` (``config.threshold_spec``: (architecture, metric,
        value)) on top: one syntax for ``--compare-threshold`` and ``edgecheck compare --threshold``."""
        header = baseline.header if isinstance(baseline, Run) else baseline
        t = cls(**{k: v for k, v in (header.get("thresholds") or {}).items() if k in cls.__dataclass_fields__})
        for model, metric, value in specs:
            if model:
                t.per_model.setdefault(model, {})[metric] = value
            else:
                setattr(t, metric, value)
        return t


def mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided p of the Mann-Whitney U test (normal approximation with tie and continuity correction)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n1, n2 = a.size, b.size
    if n1 == 0 or n2 == 0:
        return 1.0
    allv = np.concatenate([a, b])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(allv.size)
    ranks[order] = np.arange(1, allv.size + 1, dtype=float)
    uniq, inv, counts = np.unique(allv, return_inverse=True, return_counts=True)
    for i, c in enumerate(counts):
        if c > 1:
            ranks[inv == i] = ranks[inv == i].mean()
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    mu = n1 * n2 / 2
    n = n1 + n2
    tie = np.sum(counts**3 - counts)
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie / (n * (n - 1)))) if n > 1 else 0.0
    if sigma == 0:
        return 1.0
    z = (abs(u1 - mu) - 0.5) / sigma
    return float(min(1.0, 2 * (1 - NormalDist().cdf(max(z, 0.0)))))


def min_p_reachable(n1: int, n2: int) -> float:
    """The smallest two-sided p any U test can give with these sample counts (complete separation)."""
    return 2.0 / math.comb(n1 + n2, n1) if n1 and n2 else 1.0


def significant(a: list[float], b: list[float], alpha: float) -> tuple[bool, str]:
    if min_p_reachable(len(a), len(b)) < alpha:
        p = mann_whitney_p(a, b)
        return p < alpha, f"Mann-Whitney U p={p:.2g}"
    lo_a, hi_a = median_ci(a, 0.99)
    lo_b, hi_b = median_ci(b, 0.99)
    apart = hi_a < lo_b or hi_b < lo_a
    return apart, f"99% CIs {'do not overlap' if apart else 'overlap'} (too few samples for p<{alpha})"


def unstable(stats: dict, th: Thresholds) -> str | None:
    """pyperf-like stability check, made robust: a few outliers are the rank test's business,
    a wide bulk of the distribution is not. Robust CV = IQR / (1.349 x median)."""
    med = stats.get("median") or 0
    robust_cv = stats.get("iqr", 0) / (1.349 * med) if med > 0 else 0.0
    if robust_cv > th.unstable_cv:
        return f"robust CV {robust_cv:.0%} > {th.unstable_cv:.0%}"
    if stats.get("spread_min", 0) > th.unstable_spread:
        return f"min {stats['spread_min']:.0%} below the median"
    return None


@dataclass
class Row:
    model: str
    device: str
    metric: str
    baseline: float | None
    now: float | None
    change: float | None  # relative for latency/energy/bytes, absolute for accuracy
    verdict: str
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def fingerprint_differences(baseline: dict, run: dict) -> list[str]:
    """What makes the two runs incomparable: dataset, features, device runtimes, twin constants."""
    diffs = []
    ba, ra = baseline.get("artifacts") or {}, run.get("artifacts") or {}
    for key, label in ((("dataset", "sha256"), "dataset"), (("features", "key"), "spectrogram/features config"),
                       (("grid", "architectures"), "grid")):
        bv = (ba.get(key[0]) or {}).get(key[1])
        rv = (ra.get(key[0]) or {}).get(key[1])
        if bv != rv:
            diffs.append(f"{label} differs: baseline {bv!r}, run {rv!r}")
    bdev = {d["name"]: d for d in (baseline.get("run") or {}).get("devices", [])}
    for d in (run.get("run") or {}).get("devices", []):
        b = bdev.get(d["name"])
        if b is None:
            continue
        if b.get("key") != d.get("key"):
            diffs.append(f"device {d['name']} configuration differs: baseline {b.get('key')}, run {d.get('key')}")
        bm, rm = b.get("metadata") or {}, d.get("metadata") or {}
        for k in ("cpu_model", "interpreter", "runtime", "connection"):  # stable fields; frequency is volatile
            if k in bm and k in rm and bm[k] != rm[k]:
                diffs.append(f"device {d['name']} {k} differs: baseline {bm[k]!r}, run {rm[k]!r}")
    return diffs


def _index(data: dict) -> dict[tuple[str, str], dict]:
    return {(e["model"]["name"], e["device"]["name"]): e for e in data.get("entries", []) if e.get("status") == "ok"}


def _rel(now: float, base: float) -> float:
    return now / base - 1 if base else math.inf


def compare(baseline: Run | dict, run: Run | dict, th: Thresholds | None = None, force: bool = False) -> list[Row]:
    th = th or Thresholds.from_baseline(baseline)
    baseline, run = Run.coerce(baseline).to_json(), Run.coerce(run).to_json()
    diffs = fingerprint_differences(baseline, run)
    if diffs and not force:
        raise EdgecheckError("baseline refused (use --force to compare anyway): " + "; ".join(diffs))
    b_idx, r_idx = _index(baseline), _index(run)
    rows: list[Row] = []
    for key in sorted(set(b_idx) | set(r_idx)):
        model, device = key
        b, r = b_idx.get(key), r_idx.get(key)
        if b is None or r is None:
            rows.append(Row(model, device, "presence", None, None, None, "new" if b is None else "missing"))
            continue
        rows += _latency(model, device, b, r, th)
        rows += _energy(model, device, b, r, th)
        rows += _accuracy(model, device, b, r, th)
        rows += _compiler(model, device, b, r)
    return rows


def _latency(model: str, device: str, b: dict, r: dict, th: Thresholds) -> list[Row]:
    bl, rl = b.get("latency"), r.get("latency")
    if not bl or not rl:
        return []
    bm, rm = bl["stats"]["median"], rl["stats"]["median"]
    if bl.get("simulated") or rl.get("simulated"):
        same = math.isclose(bm, rm, rel_tol=th.simulated_rel_tol, abs_tol=0.0)
        verdict = UNCHANGED if same else (REGRESSION if rm > bm else IMPROVEMENT)
        return [Row(model, device, "latency", bm, rm, _rel(rm, bm), verdict, "simulated: exact comparison")]
    limit = th.for_model(model, "latency")
    change = _rel(rm, bm)
    sig, how = significant(bl["samples"], rl["samples"], th.alpha)
    noisy = unstable(bl["stats"], th) or unstable(rl["stats"], th)
    if sig and change > limit:
        verdict = UNSTABLE if noisy else REGRESSION
    elif sig and change < -limit:
        verdict = IMPROVEMENT
    elif abs(change) > limit:
        verdict = NOT_SIGNIFICANT
    else:
        verdict = UNSTABLE if noisy and abs(change) > limit else UNCHANGED
    detail = f"{how}; threshold {limit:.0%}" + (f"; unstable: {noisy}" if noisy else "")
    return [Row(model, device, "latency", bm, rm, change, verdict, detail)]


def _energy(model: str, device: str, b: dict, r: dict, th: Thresholds) -> list[Row]:
    be, re_ = b.get("energy"), r.get("energy")
    if not be or not re_ or be.get("total_j") is None or re_.get("total_j") is None:
        return []
    bv, rv = be["total_j"], re_["total_j"]
    if be["provenance"].startswith("simulated") or re_["provenance"].startswith("simulated"):
        same = math.isclose(bv, rv, rel_tol=th.simulated_rel_tol)
        return [Row(model, device, "energy", bv, rv, _rel(rv, bv),
                    UNCHANGED if same else (REGRESSION if rv > bv else IMPROVEMENT), "simulated: exact comparison")]
    limit = th.for_model(model, "energy")
    change = _rel(rv, bv)
    def fmt(e: dict) -> str:
        lo_hi = e.get("spread_j")
        return f"{lo_hi[0] * 1e6:.3g}-{lo_hi[1] * 1e6:.3g} uJ" if lo_hi else "?"

    spread = f"spread of windows: baseline {fmt(be)}, run {fmt(re_)}"
    verdict = REGRESSION if change > limit else IMPROVEMENT if change < -limit else UNCHANGED
    return [Row(model, device, "energy", bv, rv, change, verdict, f"medians of windows; threshold {limit:.0%}; {spread}")]


def _accuracy(model: str, device: str, b: dict, r: dict, th: Thresholds) -> list[Row]:
    rows = []
    limit = th.for_model(model, "accuracy")
    pairs = [("int8_macro_f1", (b["model"].get("metrics") or {}).get("int8", {}).get("macro_f1"),
              (r["model"].get("metrics") or {}).get("int8", {}).get("macro_f1")),
             ("on_device_macro_f1", (b.get("on_device") or {}).get("macro_f1"), (r.get("on_device") or {}).get("macro_f1")),
             ("agreement_with_build", (b.get("on_device") or {}).get("agreement_with_build"),
              (r.get("on_device") or {}).get("agreement_with_build"))]
    for metric, bv, rv in pairs:
        if bv is None or rv is None:
            continue
        d = rv - bv
        verdict = REGRESSION if d < -limit else IMPROVEMENT if d > limit else UNCHANGED
        rows.append(Row(model, device, metric, bv, rv, d, verdict, f"absolute threshold {limit:.3f}"))
    return rows


def _compiler(model: str, device: str, b: dict, r: dict) -> list[Row]:
    bc = ((b["model"].get("compiler") or {}).get("models") or [None])[0]
    rc = ((r["model"].get("compiler") or {}).get("models") or [None])[0]
    if not bc or not rc or device not in ("tpu", "tpu-sim"):
        return []
    rows = []
    new_off = sorted(set(rc.get("unmapped_operators") or []) - set(bc.get("unmapped_operators") or []))
    rows.append(Row(model, device, "operators_off_tpu", len(bc.get("unmapped_operators") or []),
                    len(rc.get("unmapped_operators") or []), None, REGRESSION if new_off else UNCHANGED,
                    f"new on the CPU: {', '.join(new_off)}" if new_off else ""))
    for metric in ("subgraphs", "off_chip_streamed_bytes"):
        bv, rv = bc.get(metric), rc.get(metric)
        if bv is None or rv is None:
            continue
        verdict = REGRESSION if rv > bv else IMPROVEMENT if rv < bv else UNCHANGED
        rows.append(Row(model, device, metric, bv, rv, _rel(rv, bv) if bv else None, verdict))
    return rows


def has_regression(rows: list[Row]) -> bool:
    return any(r.verdict == REGRESSION for r in rows)


def _fmt(metric: str, v: float | None) -> str:
    if v is None:
        return "-"
    if metric == "latency":
        return f"{v * 1e6:.2f} us"
    if metric == "energy":
        return f"{v * 1e6:.2f} uJ"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def table(rows: list[Row], only_changes: bool = False) -> list[str]:
    head = ("architecture", "device", "metric", "baseline", "now", "change", "verdict")
    body = []
    for r in rows:
        if only_changes and r.verdict == UNCHANGED:
            continue
        ch = "-" if r.change is None else (f"{r.change:+.1%}" if r.metric in ("latency", "energy", "off_chip_streamed_bytes", "subgraphs")
                                           else f"{r.change:+.4f}")
        body.append((r.model, r.device, r.metric, _fmt(r.metric, r.baseline), _fmt(r.metric, r.now), ch,
                     r.verdict + (f" ({r.detail})" if r.verdict != UNCHANGED and r.detail else "")))
    if not body:
        return ["(no differences)" if only_changes else "(nothing to compare)"]
    return text_table(head, body, pad_last=False)


def summary(rows: list[Row]) -> dict:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    return counts
