"""The paper's claims C1-C6 as pure functions over one run's results.

Every claim has three outcomes (``edgecheck.outcome``):

- it holds: "reproduced" when every device it uses was measured, "holds in
  simulation" on a twin, "holds on synthetic data" for accuracy on data we
  generated (informational: never evidence for the paper's accuracy claim);
- it does not hold: the evidence contradicts it conclusively (intervals, not
  point estimates, decide what is conclusive);
- inconclusive: the grid cannot test it (not-testable: coverage depends only
  on the grid, and its limits sit in the claims file), or the uncertainty of
  the figures leaves the answer open (too-close-to-call).

Thresholds, coverage and what contradicts each claim come from one claims file
(``edgecheck/judge/claims.json``, shipped in the package; ``--claims PATH``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgecheck.config import EDGE_TPU_CACHE_BYTES
from edgecheck.errors import EdgecheckError
from edgecheck.files import load_json
from edgecheck.judge.roles import A53, TOO_CLOSE_TO_CALL, TPU, interval, ratio_interval, role_rows, winner
from edgecheck.outcome import CONTRADICTED, FAIL, INCONCLUSIVE, NOT_TESTABLE, PASS, TOO_CLOSE, UNSTABLE, Outcome
from edgecheck.results import Row, Run, rows
from edgecheck.stats import spearman
from edgecheck.textfmt import fmt_energy, fmt_interval, md_text, safe_text

DEFAULT_CLAIMS_FILE = Path(__file__).with_name("claims.json")
CLAIMS_SCHEMA = "edgecheck.claims/2"
REPRODUCED, SIMULATION, SYNTHETIC, FAILED = ("reproduced", "holds in simulation", "holds on synthetic data",
                                            "does not hold")
TITLES = {
    "C1": "Spectrogram + FFNN classifies well, and int8 quantization costs little",
    "C2": "There is an optimal operating point on the TPU",
    "C3": "The TPU's cost is set by on-chip memory",
    "C4": "The A53's cost grows with the work",
    "C5": "There is a crossover between the A53 and the TPU",
    "C6": "The decision chart agrees with the measurements",
}


@dataclass
class ClaimResult:
    """A claim's outcome, the words for it (``status``), its devices and its evidence."""

    id: str
    title: str
    status: str  # reproduced, holds in simulation, holds on synthetic data, does not hold, inconclusive
    outcome: Outcome
    devices: list[str] = field(default_factory=list)
    evidence: dict = field(default_factory=dict)
    message: str = ""

    @property
    def holds(self) -> bool | None:
        return {PASS: True, FAIL: False}.get(self.outcome.status)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["outcome"] = self.outcome.to_json()
        d["holds"] = self.holds
        return d


def _migrate_1_to_2(data: dict) -> dict:
    """A claims file of schema /1 (thresholds only): the packaged coverage and falsification rules added."""
    packaged = load_json(DEFAULT_CLAIMS_FILE, CLAIMS_SCHEMA, "packaged claims")
    out = {**packaged, **{k: v for k, v in data.items() if k != "schema"}, "schema": CLAIMS_SCHEMA}
    for cid in TITLES:
        out[cid] = {**packaged.get(cid, {}), **(data.get(cid) or {})}
    return out


def load_thresholds(path: str | Path | None = None) -> dict:
    """The claims' thresholds and coverage: the packaged file, or ``--claims PATH``."""
    data = load_json(Path(path) if path else DEFAULT_CLAIMS_FILE, CLAIMS_SCHEMA, "--claims",
                     {"edgecheck.claims/1": _migrate_1_to_2}, kind="claims")
    for cid in TITLES:
        if not isinstance(data.get(cid), dict):
            raise EdgecheckError(f"--claims: {path or DEFAULT_CLAIMS_FILE} has no settings for {cid}")
    if path:
        packaged = load_json(DEFAULT_CLAIMS_FILE, CLAIMS_SCHEMA, "packaged claims", kind="claims")
        for cid in TITLES:
            _check_shape(data[cid], packaged[cid], cid, path)
    for cid in TITLES:
        _check_bounds(data[cid], cid, path or DEFAULT_CLAIMS_FILE)
    return data


# Every number of a claims file, by its place (``*`` any key): (low, high, whole number). Scores, shares and
# confidences lie in [0, 1]; counts are whole numbers; the rest are bounded so that no setting makes a claim
# impossible to pass or to fail by a typo.
_UNIT = (0.0, 1.0, False)
CLAIM_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "C1.min_best_macro_f1.*": _UNIT, "C1.max_int8_drop": _UNIT, "C1.confidence": (0.5, 0.9999, False),
    "C2.within_macro_f1": _UNIT,
    "C3.k": (1.0, 1000.0, False), "C3.max_loglog_slope_below_cache": (0.0, 10.0, False),
    "C3.cache_bytes": (1.0, float(1 << 40), True),
    "C4.min_spearman": (-1.0, 1.0, False),
    "C5.smallest_fraction": (0.001, 1.0, False),
    "C6.min_agreement": _UNIT,
    "*.coverage.min_macs_ratio": (1.0, 1e12, False),
    "*.coverage.*": (0.0, 1e12, True),
}


def _bound(at: str) -> tuple[float, float, bool] | None:
    import fnmatch

    return next((b for pattern, b in CLAIM_BOUNDS.items() if fnmatch.fnmatchcase(at, pattern)), None)


def _check_bounds(node, at: str, path) -> None:
    """Each number of a claims file within its bounds (``CLAIM_BOUNDS``), checked when the file is loaded: a
    negative or huge threshold is one line naming the setting, never a claim judged with it."""
    if isinstance(node, dict):
        for key, value in node.items():
            _check_bounds(value, f"{at}.{key}", path)
        return
    if _kind(node) != "number":
        return
    bound = _bound(at)
    if not math.isfinite(node):
        raise EdgecheckError(f"--claims: {path}: {at} is {node!r:.40}, expected a finite number")
    if bound is None:
        return
    lo, hi, whole = bound
    if not lo <= node <= hi or whole and node != int(node):
        kind = "a whole number" if whole else "a number"
        raise EdgecheckError(f"--claims: {path}: {at} is {node!r:.40}, expected {kind} from {lo:g} to {hi:g}")


def _kind(value) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)
    return "number" if isinstance(value, (int, float)) else "object" if isinstance(value, dict) else \
        "text" if isinstance(value, str) else f"a {type(value).__name__}"


def _check_shape(given: dict, packaged: dict, where: str, path) -> None:
    """A claims file's settings have the packaged file's shape: each number a number, each object an object, none
    missing (a per-dataset table needs only its ``default``), so a wrong file is one line when it is loaded, not a
    traceback when the claims are judged after the sweep."""
    for key, want in packaged.items():
        at = f"{where}.{key}"
        if key not in given:
            if isinstance(want, str) or where.endswith(".min_best_macro_f1") and key != "default":
                continue  # text (notes) is optional, as is a dataset's own threshold
            raise EdgecheckError(f"--claims: {path}: {at} is missing (the packaged claims.json shows every setting)")
        if _kind(given[key]) != _kind(want):
            raise EdgecheckError(f"--claims: {path}: {at} is {given[key]!r:.40}, expected {_kind(want)}")
        if isinstance(want, dict):
            _check_shape(given[key], want, at, path)
    extra = given if where.endswith(".min_best_macro_f1") else {k: given[k] for k in ("cache_bytes",) if k in given}
    for key, value in extra.items():  # settings the packaged file leaves out: numbers too
        if _kind(value) != "number":
            raise EdgecheckError(f"--claims: {path}: {where}.{key} is {value!r:.40}, expected number")


def cache_bytes(thresholds: dict) -> int:
    """The Edge TPU's on-chip cache the claims use: ``config.EDGE_TPU_CACHE_BYTES`` unless a claims file sets
    C3.cache_bytes."""
    return int((thresholds.get("C3") or {}).get("cache_bytes", EDGE_TPU_CACHE_BYTES))


# ----------------------------------------------------------------------------
# Building results
# ----------------------------------------------------------------------------


def _holds(cid: str, rs: list[Row], evidence: dict, message: str, devices: list[str],
           outcome: Outcome | None = None) -> ClaimResult:
    status = REPRODUCED if all(r.kind == "measured" for r in rs) else SIMULATION
    return ClaimResult(cid, TITLES[cid], status, outcome or Outcome.passed(), devices, evidence, message)


def _fails(cid: str, detail: str, evidence: dict, message: str, devices: list[str], statistic: str | None = None,
           value=None, limit=None) -> ClaimResult:
    return ClaimResult(cid, TITLES[cid], FAILED, Outcome.failed(CONTRADICTED, detail, statistic, value, limit),
                       devices, evidence, message)


def _inconclusive(cid: str, reason: str, statistic: str, value, limit, detail: str, evidence: dict | None = None,
                  devices: list[str] | None = None, message: str = "") -> ClaimResult:
    o = Outcome.inconclusive(reason, statistic, value, limit, detail)
    return ClaimResult(cid, TITLES[cid], INCONCLUSIVE, o, devices or [], evidence or {}, message or o.summary)


def _not_testable(cid: str, statistic: str, value, limit, detail: str) -> ClaimResult:
    return _inconclusive(cid, NOT_TESTABLE, statistic, value, limit, detail)


def _noisy(rs: list[Row]) -> list[Row]:
    return [r for r in rs if r.unstable]


# ----------------------------------------------------------------------------
# C1: accuracy
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Accuracy:
    """One architecture's build accuracy on the test windows, with its bootstrap intervals."""

    model: str
    f1_int8: float
    f1_float: float
    test_windows: int | None
    f1_int8_ci: tuple[float, float] | None = None


def _accuracies(rs: list[Row]) -> list[Accuracy]:
    """One per model (accuracy comes from the build, identical across devices)."""
    out: dict[str, Accuracy] = {}
    for r in rs:
        if r.f1_int8 is not None and r.model not in out:
            out[r.model] = Accuracy(r.model, r.f1_int8, r.f1_float if r.f1_float is not None else r.f1_int8,
                                    r.test_windows, r.f1_int8_ci)
    return list(out.values())


def _real_data_accuracies(real: dict) -> list[Accuracy]:
    out = []
    for name, m in sorted((real.get("architectures") or {}).items()):
        int8, flt = m.get("int8") or {}, m.get("float") or {}
        if int8.get("macro_f1") is None:
            continue
        ci = int8.get("macro_f1_ci95")
        out.append(Accuracy(name, int8["macro_f1"], flt.get("macro_f1", int8["macro_f1"]), m.get("test_windows"),
                            tuple(ci) if ci else None))
    return out


def c1(run: Run, th: dict) -> ClaimResult:
    cfg = th["C1"]
    rs = rows(run)
    real = run.header.get("real_data") or {}
    if run.synthetic and real.get("architectures"):
        accs, dataset, synthetic = _real_data_accuracies(real), real.get("dataset", "real"), False
        source = f"build on real sensor data ({dataset}; the sweep's own dataset is synthetic)"
    else:
        accs, dataset, synthetic = _accuracies(rs), run.dataset.get("name", "default"), run.synthetic
        source = "build (host TFLite interpreter)"
    need = cfg["min_best_macro_f1"].get(dataset, cfg["min_best_macro_f1"]["default"])
    why_need = "" if dataset in cfg["min_best_macro_f1"] else (
        " (the claims file's default for a dataset it does not name; a claims file passed with --claims sets "
        "min_best_macro_f1 per dataset)")
    if len(accs) < cfg["coverage"]["min_architectures"]:
        return _not_testable("C1", "architectures with accuracy", len(accs), cfg["coverage"]["min_architectures"],
                             "no result carries build accuracy (no device ran, or --model files, which come "
                             "without test data)")
    best = max(accs, key=lambda a: a.f1_int8)
    drops = {}
    for a in accs:
        # one test window's worth: one flipped window moves macro-F1 by about 1/n (a little more when the
        # classes it touches are small: 0.02506 for 40 windows in 4 classes), hence the 10 % slack
        allowance = max(cfg["max_int8_drop"], 1.1 / a.test_windows if a.test_windows else 0.0)
        drop = a.f1_float - a.f1_int8
        drops[a.model] = {"float": a.f1_float, "int8": a.f1_int8, "drop": drop, "allowed": allowance,
                          "ok": drop <= allowance}
    bad = [m for m, d in drops.items() if not d["ok"]]
    lo, hi = best.f1_int8_ci or (best.f1_int8, best.f1_int8)
    evidence = {"dataset": dataset, "synthetic": synthetic, "best": {"model": best.model,
                                                                       "int8_macro_f1": best.f1_int8,
                                                                       "int8_macro_f1_ci95": [lo, hi]},
                "required": need, "per_architecture": drops, "evaluated_by": source}
    msg = (f"best int8 macro-F1 {best.f1_int8:.3f} (95 % CI {lo:.3f}-{hi:.3f}, {best.model}) vs required {need:.3f} "
           f"for dataset {dataset!r}{why_need}; int8 within the allowed drop of float on "
           f"{len(drops) - len(bad)}/{len(drops)} "
           "architectures" + (f"; too large a drop on {', '.join(bad)}" if bad else ""))
    devices = [source]
    if synthetic:  # our own generator: informational, never evidence for the paper's accuracy claim
        meets = lo >= need and not bad
        return ClaimResult("C1", TITLES["C1"], SYNTHETIC,
                           Outcome.passed("informational: the dataset is synthetic", "best int8 macro-F1 95 % CI",
                                          [lo, hi], need),
                           devices, evidence, msg + f" (synthetic data: informational; would {'' if meets else 'not '}"
                                                    "meet the threshold on real data)")
    if bad:
        return _fails("C1", f"int8 costs more than the allowed drop on {', '.join(bad)}", evidence, msg, devices,
                      "largest int8 drop", max(drops[m]["drop"] for m in bad), max(drops[m]["allowed"] for m in bad))
    if hi < need:
        return _fails("C1", "even the interval's upper bound is below the threshold", evidence, msg, devices,
                      "best int8 macro-F1 95 % CI", [lo, hi], need)
    if lo < need:
        return _inconclusive("C1", TOO_CLOSE, "best int8 macro-F1 95 % CI", [lo, hi], need,
                             "the interval straddles the threshold", evidence, devices, msg)
    return ClaimResult("C1", TITLES["C1"], REPRODUCED,
                       Outcome.passed(statistic="best int8 macro-F1 95 % CI", value=[lo, hi], limit=need),
                       devices, evidence, msg)


# ----------------------------------------------------------------------------
# C2: the operating point
# ----------------------------------------------------------------------------


def c2(rs: list[Row], th: dict) -> ClaimResult:
    cfg = th["C2"]
    dev, tpu = role_rows(rs, TPU)
    if dev is None:
        return _not_testable("C2", "tpu or tpu-sim results", 0, 1, "this run has no Edge TPU device")
    tpu = [r for r in tpu if r.f1_int8 is not None]
    if len(tpu) < cfg["coverage"]["min_architectures"]:
        return _not_testable("C2", "architectures with accuracy on the TPU", len(tpu),
                             cfg["coverage"]["min_architectures"], "needs a sweep of built models")
    if any(r.energy_j is None for r in tpu):
        return _not_testable("C2", "architectures with energy per inference", sum(r.energy_j is not None for r in tpu),
                             len(tpu), f"{dev} has no energy per inference (measure with --energy-probe)")
    best_f1 = max(r.f1_int8 for r in tpu)
    within = th["C2"]["within_macro_f1"]
    # within 1 point of the best, by the bootstrap interval: a model whose upper bound reaches best - 1 point
    # cannot be shown to be worse by more than that
    cands = [r for r in tpu if (r.f1_int8_ci[1] if r.f1_int8_ci else r.f1_int8) >= best_f1 - within]
    op = min(cands, key=lambda r: r.energy_j)
    top = max(tpu, key=lambda r: (r.f1_int8, -r.energy_j))
    saving = 1 - op.energy_j / top.energy_j if top.energy_j else 0.0
    # the saving's interval: the op's highest against the top's lowest, and the other way round (one twin's
    # band: its ends paired, since the two models share the twin's constants)
    r_lo, r_hi = ratio_interval(op, top, "energy_j")
    saving_lo, saving_hi = 1 - r_hi, 1 - r_lo
    evidence = {"operating_point": op.model, "macro_f1": op.f1_int8, "energy_j": op.energy_j,
                "most_accurate": top.model, "most_accurate_energy_j": top.energy_j, "energy_saving": saving,
                "energy_saving_interval": [saving_lo, saving_hi], "candidates": [r.model for r in cands]}
    msg = (f"operating point on {dev}: {op.model} (macro-F1 {op.f1_int8:.3f}, {op.energy_j * 1e6:.1f} uJ/inference) "
           f"among {len(cands)} architectures whose macro-F1 95 % CI reaches within {within:.2f} of the best F1 "
           f"{best_f1:.3f} (upper bound >= {best_f1 - within:.3f}); it saves {percent(saving)} energy (interval "
           f"{percent(saving_lo)} to {percent(saving_hi)}"
           + (", small but above 0 at both ends" if saving_lo > 0 and saving_hi < 0.01 else "")
           + f") against the most accurate ({top.model}, {top.energy_j * 1e6:.1f} uJ)")
    if op.model == top.model or saving_hi <= 0:
        return _fails("C2", "the most accurate architecture is also the cheapest near it: no operating point saves "
                            "energy", evidence, msg, [dev], "energy saving", saving, 0.0)
    if _noisy([op, top]):
        return _inconclusive("C2", UNSTABLE, "energy saving interval", [saving_lo, saving_hi], 0.0,
                             f"too noisy: {', '.join(f'{r.model}: {r.unstable}' for r in _noisy([op, top]))}",
                             evidence, [dev], msg)
    if saving_lo <= 0:
        return _inconclusive("C2", TOO_CLOSE, "energy saving interval", [saving_lo, saving_hi], 0.0,
                             "the saving is inside the energy figures' uncertainty", evidence, [dev], msg)
    return _holds("C2", [op, top], evidence, msg, [dev],
                  Outcome.passed(statistic="energy saving interval", value=[saving_lo, saving_hi], limit=0.0))


# ----------------------------------------------------------------------------
# C3: the on-chip cache
# ----------------------------------------------------------------------------


def _loglog_slope(points: list[tuple[float, float]]) -> float:
    x = np.log([p[0] for p in points])
    y = np.log([p[1] for p in points])
    return float(np.polyfit(x, y, 1)[0]) if len(points) >= 2 and np.ptp(x) > 0 else float("nan")


def _slopeinterval(rs: list[Row], resamples: int = 500, seed: int = 0) -> tuple[float, float, float]:
    """The log-log slope of latency on MACs, with a bootstrap interval over each model's process medians
    where the latency was measured (twins: exact)."""
    est = _loglog_slope([(r.macs, r.latency_s) for r in rs])
    if not any(len(r.latency_processes) > 1 for r in rs):
        return est, est, est
    rng = np.random.default_rng(seed)
    sl = []
    for _ in range(resamples):
        pts = [(r.macs, float(np.median(rng.choice(r.latency_processes, len(r.latency_processes))))
                if len(r.latency_processes) > 1 else r.latency_s) for r in rs]
        sl.append(_loglog_slope(pts))
    lo, hi = np.percentile(sl, [2.5, 97.5])
    return est, float(lo), float(hi)


def c3(rs: list[Row], th: dict) -> ClaimResult:
    cfg = th["C3"]
    dev, tpu = role_rows(rs, TPU)
    if dev is None:
        return _not_testable("C3", "tpu or tpu-sim results", 0, 1, "this run has no Edge TPU device")
    limit = cache_bytes(th)
    over = [r for r in tpu if (r.streamed_bytes or 0) > 0 or r.param_bytes > limit]
    fits = [r for r in tpu if r not in over]
    cov = cfg["coverage"]
    if len(fits) < cov["min_below_cache"]:
        return _not_testable("C3", "architectures that fit the on-chip cache", len(fits), cov["min_below_cache"],
                             f"needs models on both sides of the {limit} B cache")
    if len(over) < cov["min_beyond_cache"]:
        largest = max(r.param_bytes for r in tpu)
        return _not_testable("C3", "largest parameter bytes", largest, limit,
                             f"needs a model with more than {limit} B of parameters; the largest here has {largest}")
    largest = max(fits, key=lambda r: r.param_bytes)
    metric = "energy_j" if all(r.energy_j is not None for r in tpu) else "latency_s"
    ratios, lo_r, hi_r = {}, {}, {}
    for r in over:
        ratios[r.model] = getattr(r, metric) / getattr(largest, metric)
        lo_r[r.model], hi_r[r.model] = ratio_interval(r, largest, metric)
    weakest = min(ratios, key=ratios.get)
    slope, slope_lo, slope_hi = _slopeinterval(fits)
    k, max_slope = cfg["k"], cfg["max_loglog_slope_below_cache"]
    evidence = {"largest_fitting": largest.model, "metric": metric, "ratios": ratios,
                "weakest_ratio_interval": [lo_r[weakest], hi_r[weakest]], "loglog_slope_below_cache": slope,
                "slope_interval": [slope_lo, slope_hi], "exceeding": [r.model for r in over]}
    strongest = max(ratios, key=ratios.get)
    spread = "" if strongest == weakest else f" to {ratios[strongest]:.1f}x ({strongest})"
    msg = (f"on {dev}, models beyond the cache cost {ratios[weakest]:.1f}x ({weakest}, interval "
           f"{lo_r[weakest]:.1f}x-{hi_r[weakest]:.1f}x){spread} the "
           f"{metric.split('_')[0]} of the largest that fits ({largest.model}); required >= {k:g}x. Below the "
           f"cache latency grows as MACs^{slope:.2f} (interval {slope_lo:.2f}-{slope_hi:.2f}; required <= "
           f"{max_slope:g})")
    if min(hi_r.values()) < k:
        return _fails("C3", f"{min(hi_r, key=hi_r.get)} beyond the cache costs less than {k:g}x the largest that "
                            "fits", evidence, msg, [dev], "smallest cost ratio beyond the cache (upper bound)",
                      min(hi_r.values()), k)
    if slope_lo > max_slope:
        return _fails("C3", "latency below the cache grows faster than allowed", evidence, msg, [dev],
                      "log-log slope below the cache (lower bound)", slope_lo, max_slope)
    if _noisy([largest] + over):
        return _inconclusive("C3", UNSTABLE, "cost ratio interval", [lo_r[weakest], hi_r[weakest]], k,
                             "too noisy: " + ", ".join(f"{r.model}: {r.unstable}" for r in _noisy([largest] + over)),
                             evidence, [dev], msg)
    if lo_r[weakest] < k:
        return _inconclusive("C3", TOO_CLOSE, f"cost ratio of {weakest}", [lo_r[weakest], hi_r[weakest]], k,
                             "the interval straddles k", evidence, [dev], msg)
    if slope_hi > max_slope:
        return _inconclusive("C3", TOO_CLOSE, "log-log slope below the cache", [slope_lo, slope_hi], max_slope,
                             "the interval straddles the limit", evidence, [dev], msg)
    return _holds("C3", tpu, evidence, msg, [dev],
                  Outcome.passed(statistic=f"cost ratio of {weakest}", value=[lo_r[weakest], hi_r[weakest]], limit=k))


# ----------------------------------------------------------------------------
# C4: the A53's cost grows with the work
# ----------------------------------------------------------------------------


def _spearmaninterval(rs: list[Row], attr: str, resamples: int = 500, seed: int = 0) -> tuple[float, float, float]:
    est = spearman([r.macs for r in rs], [getattr(r, attr) for r in rs])
    if attr != "latency_s" or not any(len(r.latency_processes) > 1 for r in rs):
        return est, est, est
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(resamples):
        ys = [float(np.median(rng.choice(r.latency_processes, len(r.latency_processes))))
              if len(r.latency_processes) > 1 else r.latency_s for r in rs]
        vals.append(spearman([r.macs for r in rs], ys))
    lo, hi = np.nanpercentile(vals, [2.5, 97.5])
    return est, float(lo), float(hi)


def c4(rs: list[Row], th: dict) -> ClaimResult:
    cfg = th["C4"]
    dev, a53 = role_rows(rs, A53)
    if dev is None:
        return _not_testable("C4", "a53 or a53-sim results", 0, 1, "this run has no Cortex-A53 device")
    cov = cfg["coverage"]
    if len(a53) < cov["min_architectures"]:
        return _not_testable("C4", "architectures on the A53", len(a53), cov["min_architectures"],
                             "a rank correlation needs a sweep")
    span = max(r.macs for r in a53) / max(1, min(r.macs for r in a53))
    if span < cov["min_macs_ratio"]:
        return _not_testable("C4", "largest / smallest MACs", span, cov["min_macs_ratio"],
                             "the sweep's work must span an order of magnitude")
    need = cfg["min_spearman"]
    rho, rho_lo, rho_hi = _spearmaninterval(a53, "latency_s")
    with_energy = all(r.energy_j is not None for r in a53)
    rho_e = spearman([r.macs for r in a53], [r.energy_j for r in a53]) if with_energy else None
    evidence = {"spearman_latency_macs": rho, "spearman_latency_interval": [rho_lo, rho_hi],
                "spearman_energy_macs": rho_e, "models": len(a53)}
    msg = (f"on {dev}: rank correlation of latency with MACs {rho:.3f} (interval {rho_lo:.3f}-{rho_hi:.3f})"
           + (f", of energy {rho_e:.3f}" if rho_e is not None else " (no energy figures)") + f"; required >= {need}")
    energy_exact = rho_e is not None and not any(r.energy_ci for r in a53)
    if rho_hi < need or (energy_exact and rho_e < need):
        return _fails("C4", "cost does not track the work", evidence, msg, [dev],
                      "rank correlation with MACs (upper bound)", min(rho_hi, rho_e if energy_exact else 1.0), need)
    if rho_lo < need or (rho_e is not None and rho_e < need):
        return _inconclusive("C4", TOO_CLOSE, "rank correlation interval", [rho_lo, rho_hi], need,
                             "the interval straddles the limit", evidence, [dev], msg)
    return _holds("C4", a53, evidence, msg, [dev],
                  Outcome.passed(statistic="rank correlation interval", value=[rho_lo, rho_hi], limit=need))


# ----------------------------------------------------------------------------
# C5: the crossover
# ----------------------------------------------------------------------------


def c5(rs: list[Row], th: dict) -> ClaimResult:
    cfg = th["C5"]
    tdev, tpu = role_rows(rs, TPU)
    adev, a53 = role_rows(rs, A53)
    if tdev is None or adev is None:
        return _not_testable("C5", "platforms in the run", int(tdev is not None) + int(adev is not None), 2,
                             f"needs both roles: tpu ({tdev or 'missing'}) and a53 ({adev or 'missing'})")
    t = {r.model: r for r in tpu}
    a = {r.model: r for r in a53}
    common = sorted(set(t) & set(a), key=lambda m: (t[m].macs, m))
    cov = cfg["coverage"]
    if len(common) < cov["min_architectures"]:
        return _not_testable("C5", "architectures on both platforms", len(common), cov["min_architectures"],
                             "a crossover needs a sweep")
    smallest_macs, largest_macs = t[common[0]].macs, t[common[-1]].macs
    if smallest_macs > cov["max_smallest_macs"]:
        return _not_testable("C5", "smallest MACs", smallest_macs, cov["max_smallest_macs"],
                             f"needs a model with at most {cov['max_smallest_macs']} MACs; the smallest here has "
                             f"{smallest_macs}")
    if largest_macs < cov["min_largest_macs"]:
        return _not_testable("C5", "largest MACs", largest_macs, cov["min_largest_macs"],
                             f"needs a model with at least {cov['min_largest_macs']} MACs; the largest here has "
                             f"{largest_macs}")
    if any(t[m].energy_j is None or a[m].energy_j is None for m in common):
        return _not_testable("C5", "architectures with energy on both platforms",
                             sum(t[m].energy_j is not None and a[m].energy_j is not None for m in common), len(common),
                             "needs energy per inference on both devices (--energy-probe, or the twins)")
    names = {adev: A53, tdev: TPU, TOO_CLOSE_TO_CALL: TOO_CLOSE_TO_CALL}
    wins = {m: names[winner({adev: a[m], tdev: t[m]}, "energy_j")] for m in common}
    smallest = common[: max(1, int(len(common) * cfg["smallest_fraction"]))]
    first_tpu = next((i for i, m in enumerate(common) if wins[m] == TPU), None)
    # The first crossover lies after the last architecture the A53 wins before anything else (a TPU win or one
    # too close to call) and at or before the TPU's first win; architectures too close to call in between could
    # each be the first one cheaper on the TPU, so they widen the bracket.
    first_other = next((i for i, m in enumerate(common) if wins[m] != A53), None)
    bracket, between = None, []
    if first_tpu and first_other:
        lo, hi = common[first_other - 1], common[first_tpu]
        between = [m for m in common[first_other:first_tpu] if wins[m] == TOO_CLOSE_TO_CALL]
        bracket = {"a53_wins": {"model": lo, "params": t[lo].params, "macs": t[lo].macs, "decided": wins[lo]},
                   "tpu_wins": {"model": hi, "params": t[hi].params, "macs": t[hi].macs},
                   "too_close_between": between,
                   "interval": {d: {m: list(_energy_interval(r)) for m, r in ((lo, x[lo]), (hi, x[hi]))}
                                for d, x in ((adev, a), (tdev, t))}}
    evidence = {"winner_by_model": wins, "crossover": bracket, "smallest_checked": smallest,
                "too_close": [m for m in common if wins[m] == TOO_CLOSE_TO_CALL]}
    if bracket:
        where = (f"crossover between {bracket['a53_wins']['model']} ({bracket['a53_wins']['macs']} MACs) and "
                 f"{bracket['tpu_wins']['model']} ({bracket['tpu_wins']['macs']} MACs)")
    elif first_tpu is not None:
        where = f"{common[first_tpu]} costs less on {tdev}"
    else:
        where = "no architecture costs conclusively less on the TPU"
    msg = (f"energy per inference, {adev} vs {tdev}: the smallest {len(smallest)} architectures "
           f"{'all' if all(wins[m] == A53 for m in smallest) else 'not all'} cost less on {adev}; " + where
           + ("; too close to call: " + ", ".join(f"{m} ({_energy_text(a[m], t[m], adev, tdev)})"
                                                   for m in evidence["too_close"]) if evidence["too_close"] else ""))
    devices = [adev, tdev]
    if any(wins[m] == TPU for m in smallest):
        return _fails("C5", "a smallest architecture costs less on the TPU", evidence, msg, devices,
                      "smallest architectures cheaper on the TPU", sum(wins[m] == TPU for m in smallest), 0)
    if all(w == A53 for w in wins.values()):
        return _fails("C5", "no architecture costs less on the TPU", evidence, msg, devices,
                      "architectures cheaper on the TPU", 0, 1)
    undecided_small = [m for m in smallest if wins[m] != A53]
    if undecided_small or first_tpu is None:
        what = undecided_small or evidence["too_close"]
        return _inconclusive("C5", TOO_CLOSE, "architectures too close to call", len(what), 0,
                             f"energy intervals overlap for {', '.join(what)}"
                             + ("" if undecided_small else "; none costs conclusively less on the TPU"),
                             evidence, devices, msg)
    # The claim's answer (a crossover exists) holds at every point of the figures' intervals once the smallest
    # architectures are conclusively cheaper on the A53 and one larger architecture conclusively cheaper on the
    # TPU. Only its place can move inside the intervals: that part is too close to call and names its interval.
    if between:
        bracket["outcome"] = Outcome.inconclusive(
            TOO_CLOSE, "architectures too close to call inside the crossover's bracket", len(between), 0,
            f"the first crossover lies between {bracket['a53_wins']['model']} ({bracket['a53_wins']['macs']} MACs) "
            f"and {bracket['tpu_wins']['model']} ({bracket['tpu_wins']['macs']} MACs): {', '.join(between)} "
            "could go either way").to_json()
    return _holds("C5", tpu + a53, evidence, msg, devices,
                  Outcome.passed(detail="a crossover exists at every point of the intervals; its place is "
                                        "bracketed" + (" (too close to call in between)" if between else ""),
                                 statistic="crossover MACs", value=[bracket["a53_wins"]["macs"],
                                                                    bracket["tpu_wins"]["macs"]],
                                 limit=[cov["max_smallest_macs"], cov["min_largest_macs"]]))


def _energy_interval(r: Row) -> tuple[float, float]:
    return interval(r, "energy_j")


def _energy_text(ra: Row, rt: Row, adev: str, tdev: str) -> str:
    def one(r: Row) -> str:
        lo, hi = _energy_interval(r)
        return fmt_energy(r.energy_j) + (" " + fmt_interval(lo, hi, fmt_energy) if hi > lo else "")

    return f"{adev} {one(ra)}, {tdev} {one(rt)}"


# ----------------------------------------------------------------------------
# C6: the decision chart
# ----------------------------------------------------------------------------


def c6(results: Run | dict, thresholds: dict) -> ClaimResult:
    from edgecheck.judge.chart import build_chart

    cfg = thresholds["C6"]
    try:
        chart = build_chart(results, "energy", cache_bytes=cache_bytes(thresholds))
    except EdgecheckError as e:
        return _not_testable("C6", "platforms with energy figures", 0, 2, str(e))
    except ImportError:
        return _not_testable("C6", "scikit-learn installed", False, True,
                             "the decision chart's rules need scikit-learn (pip install 'edgecheck[report]')")
    n = len(chart.winners)
    if n < cfg["coverage"]["min_architectures"] or chart.loo_agreement is None:
        return _not_testable("C6", "architectures on both platforms", n, cfg["coverage"]["min_architectures"],
                             "leave-one-out rules need a sweep")
    need = cfg["min_agreement"]
    agree = chart.loo_agreement
    too_close = [w.model for w in chart.winners if w.winner == TOO_CLOSE_TO_CALL]
    # a cell too close to call counts as a disagreement; were every such cell agreed with, the agreement would be
    agree_if_decided = agree + len(too_close) / n
    evidence = {"agreement": agree, "misses": chart.loo_misses, "rules": chart.rules, "too_close": too_close,
                "agreement_if_too_close_agreed": agree_if_decided}
    msg = (f"rules (depth <= 3) pick the {chart.metric} winner for {agree:.0%} of {n} architectures, each judged "
           f"by rules fitted without it (required >= {need:.0%})"
           + (f"; missed {', '.join(chart.loo_misses)}" if chart.loo_misses else "")
           + (f" ({len(too_close)} of them too close to call, counted as disagreements)" if too_close else ""))
    # with cells too close to call the rules were fitted without them: once decided they would teach the rules too,
    # so even a decided cell's miss is not conclusive (the wider the bands, the fewer cells the rules learn from)
    if agree < need and agree_if_decided < need and not too_close:
        return _fails("C6", "the rules disagree with too many winners", evidence, msg, chart.devices,
                      "leave-one-out agreement", agree, need)
    if agree < need:
        return _inconclusive("C6", TOO_CLOSE, "leave-one-out agreement interval", [agree, agree_if_decided], need,
                             f"{len(too_close)} cells too close to call ({', '.join(too_close)}): the agreement "
                             "depends on how they fall", evidence, chart.devices, msg)
    status = REPRODUCED if chart.provenance == "measured" else SIMULATION
    return ClaimResult("C6", TITLES["C6"], status, Outcome.passed(statistic="leave-one-out agreement", value=agree,
                                                                   limit=need), chart.devices, evidence, msg)


# ----------------------------------------------------------------------------
# All of them
# ----------------------------------------------------------------------------


def evaluate(results: Run | dict, thresholds: dict, with_chart: bool = True, on_model_list: bool = False
             ) -> list[ClaimResult]:
    """C1-C6 over one run. The paper's claims are judged on the paper's kind of sweep (a grid); on a --model
    list they are not-testable unless ``on_model_list`` (``--claims``) asks for them."""
    run = Run.coerce(results)
    if run.sweep == "models" and not on_model_list:
        return [_not_testable(cid, "sweep", "model list", "grid",
                              "the paper's claims are about a sweep of network sizes, which --model files are "
                              "not; to judge them on your files anyway, pass a claims file (--claims "
                              "edgecheck/judge/claims.json, or your own thresholds)") for cid in TITLES]
    rs = rows(run)
    out = [c1(run, thresholds), c2(rs, thresholds), c3(rs, thresholds), c4(rs, thresholds), c5(rs, thresholds)]
    if with_chart:
        out.append(c6(run, thresholds))
    return out


def percent(v: float) -> str:
    """A fraction as a percentage with the digits it needs: 5 %, 0.3 %, never a 0 % that is not 0."""
    pct = v * 100
    if pct == 0 or abs(pct) >= 9.5:
        return f"{pct:.0f} %"
    return f"{pct:.2g} %" if abs(pct) >= 0.01 else f"{pct:.1e} %"


def table(claims: list[ClaimResult]) -> list[str]:
    """Each claim's status line, its evidence, and an inconclusive outcome's reason when the evidence does not
    already say it (a --model run's not-testable claims say one thing, once)."""
    lines = []
    for c in claims:
        lines.append(f"{c.id}  {c.status:<23} {safe_text(c.title)}")
        if c.message:  # messages quote names from the results file: shown escaped, never interpreted
            lines.append(f"    {safe_text(c.message)}")
        if c.outcome.status == INCONCLUSIVE and c.outcome.summary != c.message:
            lines.append(f"    {safe_text(c.outcome.summary)}")
    return lines


def _md(text: str) -> str:
    """Text from results (dataset names, messages) made inert in Markdown (``textfmt.md_text``)."""
    return md_text(text)


def markdown(claims: list[ClaimResult]) -> str:
    out = ["| claim | status | devices | evidence |", "|---|---|---|---|"]
    for c in claims:
        evidence = c.message + (f" ({c.outcome.summary})" if c.outcome.status == INCONCLUSIVE else "")
        out.append(f"| {c.id} {_md(c.title)} | {_md(c.status)} | {_md(', '.join(c.devices) or '-')} | "
                   f"{_md(evidence)} |")
    return "\n".join(out) + "\n"


