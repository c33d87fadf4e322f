"""Comparing a run with a saved baseline: catch real slowdowns, almost never cry wolf.

A model's latency is compared on process-level figures: each run timed it in
several fresh processes, and a process's median is one observation, so the
variance between processes (page placement, allocation, frequency) is counted.
The effect is the ratio run / baseline: its Hodges-Lehmann estimate and its
Mann-Whitney confidence interval on the log process medians. Energy on a
measured device is compared the same way over its windows.

The promise is about the job's exit status. Every measured comparison of the
run is one hypothesis "slower by more than the threshold"; Holm's step-down
holds the chance that any of them is wrongly declared at ``alpha``. A
regression is declared when the Holm-adjusted one-sided interval of the ratio
lies entirely above 1 + threshold: a slowdown of exactly the threshold is
caught only half the time, so the threshold sits below the slowdowns that
matter (default 5 % for 10 %). A change whose interval straddles a threshold
is "too close to call"; a figure too noisy to decide on (robust CV across
processes over 10 %, throttling) is "unstable" in both directions alike. Both
are inconclusive: counted and printed, never a failure.

Measured models are matched by their sha256 (a changed file under the same
name is a different model, not a slower one); simulated entries by their layer
sizes and the twin constants' hash (training is not bit-identical across CPUs).
Twins are deterministic and compared exactly. A model or device missing from
the new run fails unless ``allow_missing``.

Every job that compares (``pytest --baseline``, ``edgecheck compare``, ``edgecheck
ab``, ``edgecheck report --baseline``, ``ci/soak.py``) goes through
``compare_runs``: it loads, takes the thresholds, compares and returns one
``RunComparison``, whose table, summary line, verdict and JSON
(``edgecheck.comparison/3``) are the same wherever they are printed or written.
``load_comparison`` reads that format and the older /1 and /2.
"""
from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgecheck.errors import EdgecheckError, one_line
from edgecheck.files import atomic_write_json, load_json, strict_json
from edgecheck.judge.roles import LEGACY_ROLES, TPU
from edgecheck.outcome import MISSING, NOT_TESTABLE, REGRESSION, TOO_CLOSE, UNSTABLE, Outcome
from edgecheck.results import Entry, Run
from edgecheck.stats import hodges_lehmann, holm, p_greater, t_sf
from edgecheck.textfmt import fmt_energy, fmt_time, pct_over, text_table

UNCHANGED, IMPROVEMENT = "unchanged", "improvement"
TOO_CLOSE_LABEL, UNSTABLE_LABEL, MISSING_LABEL, NEW, DIFFERENT = ("too close to call", "unstable", "missing", "new",
                                                                  "different model")
WITHIN_DRIFT, NOT_COUNTED = "within drift", "not counted"
RUN_ROW = "(whole run)"  # the model column of the run-level shift's row
# The drift allowance with a single baseline: the standard deviation of a whole default run's median shift
# between sessions, measured on this project's 2-core VM (20 quiet runs: -12.7 % to +11.4 %, sd about 7.5 %).
DEFAULT_DRIFT_SD = 0.075


@dataclass
class Thresholds:
    latency: float = 0.05  # relative: a regression is a ratio surely above 1.05
    energy: float = 0.05  # relative
    accuracy: float = 0.01  # absolute (1 point of macro-F1 or accuracy)
    alpha: float = 0.05  # family-wise: the chance that any measured comparison of a run is wrongly declared
    instructions: float = 0.005  # relative: instructions per invoke are deterministic (measured 0 % spread)
    drift_sd: float = DEFAULT_DRIFT_SD  # single baseline: the machine's run-to-run drift allowance (log sd)
    simulated_rel_tol: float = 1e-9
    unstable_cv: float = 0.10  # robust CV across processes above which a figure is too noisy to decide on
    per_model: dict = field(default_factory=dict)  # {"4x2048": {"latency": 0.2}}

    def __post_init__(self) -> None:
        for name in ("latency", "energy", "accuracy", "simulated_rel_tol", "unstable_cv", "instructions", "drift_sd"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                raise EdgecheckError(f"threshold {name}: must be a finite number >= 0, got {v!r}")
        if not (isinstance(self.alpha, (int, float)) and 0 < self.alpha < 1):
            raise EdgecheckError(f"threshold alpha: must be between 0 and 1, got {self.alpha!r}")
        for model, over in self.per_model.items():
            for metric, v in over.items():
                if metric not in ("latency", "energy", "accuracy", "instructions") or not isinstance(v, (int, float)) \
                        or not math.isfinite(v) or v < 0:
                    raise EdgecheckError(f"threshold {model}:{metric}: must be a finite number >= 0, got {v!r}")

    def for_model(self, model: str, metric: str) -> float:
        return float(self.per_model.get(model, {}).get(metric, getattr(self, metric)))

    @classmethod
    def from_baseline(cls, baseline: Run | dict, specs: list[tuple[str | None, str, float]] = ()) -> Thresholds:
        """The baseline's saved thresholds, then ``specs`` (``config.threshold_spec``: (architecture, metric,
        value)) on top: one syntax for ``--compare-threshold`` and ``edgecheck compare --threshold``."""
        header = baseline.header if isinstance(baseline, Run) else baseline
        saved = {k: v for k, v in (header.get("thresholds") or {}).items() if k in cls.__dataclass_fields__}
        per_model = dict(saved.pop("per_model", {}) or {})
        for model, metric, value in specs:
            if model:
                per_model.setdefault(model, {})[metric] = value
            else:
                saved[metric] = value
        return cls(**saved, per_model=per_model)


@dataclass
class Comparison:
    """One figure of one (model, device): baseline, now, their ratio with its interval, and the outcome."""

    model: str
    device: str
    metric: str
    baseline: float | None
    now: float | None
    ratio: float | None  # now / baseline (latency, energy, bytes); the difference for accuracy
    ci: tuple[float, float] | None  # 95 % interval of the ratio
    outcome: Outcome
    verdict: str  # regression, improvement, unchanged, too close to call, unstable, missing, new, different model
    detail: str = ""
    p_slower: float | None = None  # one-sided p of "slower than the threshold", before Holm
    p_faster: float | None = None

    @property
    def change(self) -> float | None:
        """Relative change (ratio - 1), or the absolute difference for accuracy: the older field name."""
        if self.ratio is None:
            return None
        return self.ratio if self.metric in ACCURACY_METRICS else self.ratio - 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["outcome"] = self.outcome.to_json()
        d["ci"] = list(self.ci) if self.ci is not None else None
        d["change"] = self.change
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Comparison:
        """A row as ``to_dict`` wrote it (``change`` is derived, so it is not read back)."""
        ci = d.get("ci")
        return cls(d["model"], d["device"], d["metric"], d.get("baseline"), d.get("now"), d.get("ratio"),
                   tuple(ci) if ci else None, Outcome.from_json(d["outcome"]), d["verdict"], d.get("detail", ""),
                   d.get("p_slower"), d.get("p_faster"))


ACCURACY_METRICS = ("int8_macro_f1", "on_device_macro_f1", "agreement_with_build")


def fingerprint_differences(baseline: Run, run: Run) -> list[str]:
    """What makes the two runs incomparable: dataset, features, device runtimes, twin constants."""
    diffs = []
    ba, ra = baseline.artifacts, run.artifacts
    for key, label in ((("dataset", "sha256"), "dataset"), (("features", "key"), "spectrogram/features config"),
                       (("grid", "architectures"), "grid")):
        bv = (ba.get(key[0]) or {}).get(key[1])
        rv = (ra.get(key[0]) or {}).get(key[1])
        if bv != rv:
            diffs.append(f"{label} differs: baseline {bv!r}, run {rv!r}")
    bdev = {d["name"]: d for d in baseline.devices}
    for d in run.devices:
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


def identity(e: Entry) -> tuple:
    """What an entry is matched on: measured by device and the model file's sha256; simulated by the twin's
    configuration (its key holds the constants' hash) and the layer sizes."""
    if e.kind == "simulated":
        return ("simulated", e.device.key, tuple(e.model.size.get("layer_sizes") or ()), e.model.name)
    return ("measured", e.device.name, e.model.sha256)


def _log_units(e: Entry, metric: str) -> tuple[np.ndarray, str]:
    """The log observations a figure is compared on: process medians (latency) or windows (energy)."""
    if metric == "latency":
        procs = [float(p.median) for p in (e.latency.processes or [])]
        if procs:
            return np.log(procs), "process medians"
        return np.log([float(e.latency.median)]), "one process (a baseline without process-level data)"
    windows = [w["energy_j"] / w["invokes"] for w in (e.energy.windows or []) if w.get("energy_j") and w.get("invokes")]
    if windows:
        return np.log(windows), "windows"
    return np.log([float(e.energy.total_j)]), "one figure"


def _valid(e: Entry, metric: str) -> str | None:
    """Why ``e`` has no usable figure for ``metric`` (a failure of that entry), or None."""
    if metric == "latency":
        if e.latency is None:
            return "no latency"
        bad = [s for s in e.latency.samples if not (isinstance(s, (int, float)) and math.isfinite(s) and s > 0)]
        if bad or not (math.isfinite(e.latency.median) and e.latency.median > 0):
            return f"{len(bad) or 1} NaN or non-positive samples"
        return None
    v = e.energy.total_j if e.energy else None
    if v is None:
        return "no energy figure"
    if not (math.isfinite(v) and v > 0):
        return f"energy per inference {v!r} is not a positive number"
    return None


def compare(baseline: Run | dict, run: Run | dict, th: Thresholds | None = None, force: bool = False,
            allow_missing: bool = False, by_name: bool = False, history: Iterable[Run] = (),
            drift_out: dict | None = None, across_sessions: bool = True) -> list[Comparison]:
    """Every figure of ``run`` against ``baseline``. ``by_name`` matches models by architecture name instead of
    identity: for A/B, where the two sides are different files by design. ``history``: earlier runs (the
    baseline among them) from which the machine's run-to-run drift is measured; without it the drift allowance
    is ``th.drift_sd``. ``drift_out`` receives the drift record (``Drift.to_json``). ``across_sessions`` False
    (A/B: both sides measured interleaved in one session) judges latency with no drift."""
    baseline, run = Run.coerce(baseline), Run.coerce(run)
    history = [Run.coerce(h) for h in history]
    th = th or Thresholds.from_baseline(baseline)
    diffs = fingerprint_differences(baseline, run)
    for i, h in enumerate(history):
        if h is not baseline:
            diffs += [f"history run {i + 1}: {d}" for d in fingerprint_differences(h, run)]
    if diffs and not force:
        raise EdgecheckError("baseline refused (use --force to compare anyway): " + "; ".join(diffs))
    key_of = (lambda e: (e.kind, e.device.name, e.model.name)) if by_name else identity
    b_idx = {key_of(e): e for e in baseline.ok_entries()}
    r_idx = {key_of(e): e for e in run.ok_entries()}
    r_by_name = {(e.device.name, e.model.name): e for e in run.ok_entries()}
    b_names = {(e.device.name, e.model.name) for e in baseline.ok_entries() if e.kind == "measured"}
    rows: list[Comparison] = []
    pending: list[tuple[Comparison, Entry, Entry, str, float]] = []  # measured rows decided together (Holm)
    for key in sorted(set(b_idx) | set(r_idx), key=str):
        b, r = b_idx.get(key), r_idx.get(key)
        if b is None:
            if r.kind == "measured" and (r.device.name, r.model.name) in b_names:
                continue  # the same name with another file: reported once, as a different model
            rows.append(Comparison(r.model.name, r.device.name, "presence", None, None, None, None,
                                   Outcome.passed("new in this run"), NEW))
            continue
        if r is None:
            rows.append(_missing(b, r_by_name, allow_missing))
            continue
        for metric in ("latency", "energy"):
            row = _figure(b, r, metric, th)
            if row is None:
                continue
            if isinstance(row, tuple):
                pending.append(row)
            else:
                rows.append(row)
        rows += _accuracy(b, r, th) + _compiler(b, r) + _instructions(b, r, th)
    drift = Drift.measure(history if len(history) >= 2 else [], th, by_name) if across_sessions else None
    rows += _decide(pending, th, drift, key_of)
    if drift_out is not None and drift is not None and drift.latency_rows:
        drift_out.update(drift.to_json())
    n_base = len(baseline.ok_entries())
    if n_base and not any(row.metric not in ("presence", "model") for row in rows):
        why = (f"none of the baseline's {n_base} entries has a counterpart in this run (different model files, "
               "or devices absent): nothing was compared, and a comparison that compared nothing is never green")
        rows.append(Comparison(RUN_ROW, "-", "presence", None, None, None, None, Outcome.failed(MISSING, why),
                               MISSING_LABEL, why))
    return rows


def _instructions(b: Entry, r: Entry, th: Thresholds) -> list[Comparison]:
    """Instructions per invoke: deterministic, so compared by a relative threshold, no statistics. A baseline
    with counts against a run without them is not-testable, with the run's reason."""
    bi, ri = b.instructions, r.instructions
    if bi is None or bi.per_invoke is None:
        return []
    name, device = r.model.name, r.device.name
    if ri is None or ri.per_invoke is None:
        why = ri.unavailable if ri is not None else "this run did not count instructions (--count-instructions)"
        return [Comparison(name, device, "instructions", bi.per_invoke, None, None, None,
                           Outcome.inconclusive(NOT_TESTABLE, "instructions per invoke counted in this run", 0, 1,
                                                why), NOT_COUNTED, why)]
    limit = th.for_model(name, "instructions")
    ratio = ri.per_invoke / bi.per_invoke
    how = (f"instructions per invoke x{ratio:.4f}, threshold {limit:.1%} (deterministic counts: "
           f"{ri.valgrind or 'valgrind'} {ri.tool or ''}".rstrip() + ")")
    spread = max(bi.block_spread, ri.block_spread)
    if spread > limit / 4:
        return [Comparison(name, device, "instructions", bi.per_invoke, ri.per_invoke, ratio, (ratio, ratio),
                           Outcome.inconclusive(UNSTABLE, "spread of the counted blocks", spread, limit / 4,
                                                "the blocks of one count disagree: the count is not deterministic "
                                                "here"), UNSTABLE_LABEL, how)]
    if ratio > 1 + limit:
        return [Comparison(name, device, "instructions", bi.per_invoke, ri.per_invoke, ratio, (ratio, ratio),
                           Outcome.failed(REGRESSION, how, "instructions ratio", ratio, 1 + limit), REGRESSION, how)]
    verdict = IMPROVEMENT if ratio < 1 / (1 + limit) else UNCHANGED
    return [Comparison(name, device, "instructions", bi.per_invoke, ri.per_invoke, ratio, (ratio, ratio),
                       Outcome.passed(how, "instructions ratio", ratio, 1 + limit), verdict, how)]


def _missing(b: Entry, r_by_name: dict, allow_missing: bool) -> Comparison:
    other = r_by_name.get((b.device.name, b.model.name))
    if other is not None and b.kind == "measured":  # the same name, another file
        return Comparison(b.model.name, b.device.name, "model", None, None, None, None,
                          Outcome.inconclusive(NOT_TESTABLE, "model sha256", other.model.sha256[:12],
                                               b.model.sha256[:12], "a different model under the same name: not "
                                                                    "compared; save a new baseline"), DIFFERENT)
    if allow_missing:
        return Comparison(b.model.name, b.device.name, "presence", None, None, None, None,
                          Outcome.inconclusive(NOT_TESTABLE, "entries in this run", 0, 1,
                                               "missing from this run (--allow-missing)"), MISSING_LABEL)
    return Comparison(b.model.name, b.device.name, "presence", None, None, None, None,
                      Outcome.failed(MISSING, f"in the baseline but not measured in this run ({b.device.key})"),
                      MISSING_LABEL)


def _figure(b: Entry, r: Entry, metric: str, th: Thresholds):
    """A simulated figure decided now (exactly), or a measured one to decide with the others (Holm)."""
    if (metric == "latency" and (b.latency is None or r.latency is None)) or \
            (metric == "energy" and (b.energy is None or r.energy is None or b.energy.total_j is None)):
        return None
    name, device = r.model.name, r.device.name
    why = _valid(r, metric)
    if why:
        return Comparison(name, device, metric, None, None, None, None,
                          Outcome.failed(MISSING, f"this run's {metric} is unusable: {why}"), MISSING_LABEL)
    bv = b.latency.median if metric == "latency" else b.energy.total_j
    rv = r.latency.median if metric == "latency" else r.energy.total_j
    if r.kind == "simulated" or b.kind == "simulated":
        ratio = rv / bv
        same = math.isclose(bv, rv, rel_tol=th.simulated_rel_tol, abs_tol=0.0)
        if same:
            return Comparison(name, device, metric, bv, rv, ratio, (ratio, ratio), Outcome.passed("simulated: exact"),
                              UNCHANGED, "simulated: exact comparison")
        if rv > bv:
            return Comparison(name, device, metric, bv, rv, ratio, (ratio, ratio),
                              Outcome.failed(REGRESSION, "simulated: exact comparison", "ratio", ratio, 1.0),
                              REGRESSION, "simulated: exact comparison")
        return Comparison(name, device, metric, bv, rv, ratio, (ratio, ratio), Outcome.passed("simulated: exact"),
                          IMPROVEMENT, "simulated: exact comparison")
    limit = th.for_model(name, metric)
    return (Comparison(name, device, metric, bv, rv, rv / bv, None, Outcome.passed(), UNCHANGED), b, r, metric, limit)


def _noise(e: Entry, metric: str, th: Thresholds) -> str | None:
    if metric != "latency":
        return None
    lat = e.latency
    if lat.unstable:
        return lat.unstable
    cv = lat.process_cv
    if cv is not None and cv > th.unstable_cv:
        return f"robust CV across processes {pct_over(cv, th.unstable_cv)}"
    return None


def _level(e: Entry) -> float:
    """A measured entry's latency level: the median of its process medians (or its median)."""
    return float(e.latency.process_median or e.latency.median)


def _pct(log_value: float) -> str:
    return f"{math.expm1(log_value):+.1%}"


@dataclass
class DeviceDrift:
    """The run-to-run drift of one device's wall clock: each earlier run's whole-run shift (log: the median over
    models of its log level minus the models' mean level), its standard deviation, and each model's own spread
    after the shift. Without a history: the default allowance ``Thresholds.drift_sd``."""

    device: str
    sd: float
    runs: int  # earlier runs the drift was measured over (0: the default allowance)
    shifts: list[float] = field(default_factory=list)
    per_model_sd: dict[str, float] = field(default_factory=dict)
    mean: dict = field(default_factory=dict)  # identity -> the models' mean log level over the history
    pooled: dict = field(default_factory=dict)  # identity -> shift-adjusted log process medians of every run
    run_shift: float | None = None
    se: float | None = None
    p_slower: float | None = None
    p_faster: float | None = None
    verdict: str | None = None

    @property
    def dof(self) -> float:
        return self.runs - 1 if self.runs >= 2 else math.inf

    def describe(self) -> str:
        if self.runs:
            return f"this machine's drift (sd {math.expm1(self.sd):.1%} over {self.runs} runs)"
        return (f"the default drift allowance (sd {self.sd:.1%}: a single baseline measures no drift; measured so "
                f"on edgecheck's 2-core CI machines)")

    def to_json(self) -> dict:
        return {"device": self.device, "sd": self.sd, "sd_pct": 100 * math.expm1(self.sd), "runs": self.runs,
                "source": f"measured over {self.runs} earlier runs" if self.runs else "default allowance",
                "shifts": self.shifts, "per_model_sd": self.per_model_sd, "run_shift": self.run_shift,
                "run_shift_pct": None if self.run_shift is None else 100 * math.expm1(self.run_shift),
                "se": self.se, "p_slower": self.p_slower, "p_faster": self.p_faster, "verdict": self.verdict}


@dataclass
class Drift:
    """Every measured device's drift (``DeviceDrift``), from a history of runs or the default allowance."""

    history: list[Run]
    default_sd: float
    key_of: object = identity
    devices: dict[str, DeviceDrift] = field(default_factory=dict)
    latency_rows: int = 0

    @classmethod
    def measure(cls, history: list[Run], th: Thresholds, by_name: bool = False) -> Drift:
        key_of = (lambda e: (e.kind, e.device.name, e.model.name)) if by_name else identity
        return cls(history, th.drift_sd, key_of)

    def of(self, device: str) -> DeviceDrift:
        if device in self.devices:
            return self.devices[device]
        if len(self.history) < 2:
            d = DeviceDrift(device, self.default_sd, 0)
        else:
            idx = [{self.key_of(e): e for e in h.ok_entries()
                    if e.kind == "measured" and e.device.name == device and e.latency is not None}
                   for h in self.history]
            common = sorted(set.intersection(*[set(i) for i in idx]), key=str)
            if not common:
                raise EdgecheckError(f"history: the {len(self.history)} earlier runs have no model measured on "
                                     f"{device} in common: its drift cannot be measured")
            x = {k: np.log([_level(i[k]) for i in idx]) for k in common}
            mean = {k: float(v.mean()) for k, v in x.items()}
            shifts = [float(np.median([x[k][j] - mean[k] for k in common])) for j in range(len(idx))]
            sd = max(float(np.std(shifts, ddof=1)), 1e-3)  # a floor: two identical runs are not a drift of 0
            per_model = {idx[-1][k].model.name: float(np.std([x[k][j] - mean[k] - shifts[j]
                                                                for j in range(len(idx))], ddof=1)) for k in common}
            pooled = {k: np.concatenate([_log_units(i[k], "latency")[0] - shifts[j] for j, i in enumerate(idx)])
                      for k in common}
            d = DeviceDrift(device, sd, len(idx), shifts, per_model, mean, pooled)
        self.devices[device] = d
        return d

    def to_json(self) -> dict:
        return {"devices": {k: v.to_json() for k, v in sorted(self.devices.items())},
                "history_runs": len(self.history) if len(self.history) >= 2 else 1}


def _run_shifts(stats: list, drift: Drift, th: Thresholds) -> None:
    """Each device's whole-run shift of latency against its drift: one hypothesis per device at alpha / 2
    (Bonferroni with the models' family, which gets the other half)."""
    by_dev: dict[str, list] = {}
    for st in stats:
        if st["metric"] == "latency":
            by_dev.setdefault(st["r"].device.name, []).append(st)
    lim = math.log1p(th.latency)
    for device, sts in by_dev.items():
        d = drift.of(device)
        if d.runs:
            logs = [math.log(_level(st["r"])) - d.mean[st["key"]] for st in sts if st["key"] in d.mean]
            d.se = d.sd * math.sqrt(1 + 1 / d.runs)
        else:
            logs = [st["est"] for st in sts]
            d.se = d.sd * math.sqrt(2)
        if not logs:
            continue
        d.run_shift = float(np.median(logs))
        # no drift at all (drift_sd=0, or a history of identical runs): any shift is the run's own
        z = d.run_shift / d.se if d.se > 0 else math.copysign(math.inf, d.run_shift) if d.run_shift else 0.0
        d.p_slower, d.p_faster = t_sf(z, d.dof), t_sf(-z, d.dof)
        a = th.alpha / 2 / len(by_dev)
        if d.p_slower < a and d.run_shift > lim:
            d.verdict = REGRESSION
        elif d.p_faster < a and d.run_shift < -lim:
            d.verdict = IMPROVEMENT
        else:
            d.verdict = WITHIN_DRIFT


def _run_row(d: DeviceDrift, th: Thresholds, n_models: int) -> Comparison:
    ratio = math.exp(d.run_shift)
    q = 1.96
    ci = (math.exp(d.run_shift - q * d.se), math.exp(d.run_shift + q * d.se))
    how = (f"whole run {_pct(d.run_shift)} (median over {n_models} models), against {d.describe()}: one-sided "
           f"p = {d.p_slower if d.run_shift >= 0 else d.p_faster:.3g} at alpha {th.alpha / 2:g} (half the run's "
           f"family-wise {th.alpha:g}), threshold {th.latency:.0%}")
    if d.verdict == REGRESSION:
        o = Outcome.failed(REGRESSION, f"the whole run is slower by {_pct(d.run_shift)}, beyond {d.describe()}; "
                                       + how, "whole-run shift", ratio, 1 + th.latency)
    elif d.verdict == IMPROVEMENT:
        o = Outcome.passed(how, "whole-run shift", ratio, 1 / (1 + th.latency))
    else:
        o = Outcome.inconclusive(TOO_CLOSE, "whole-run shift", ratio, 1 + th.latency,
                                 f"within {d.describe()}: {how}")
    return Comparison(RUN_ROW, d.device, "latency shift", None, None, ratio, ci, o, d.verdict, how)


def _decide(pending: list, th: Thresholds, drift: Drift | None = None, key_of=identity) -> list[Comparison]:
    """Decide every measured comparison of the run together: Holm over the run's regressions (and, as a
    separate family, its improvements), each tested against its threshold on log process-level figures.

    Latency across sessions carries the machine's drift: each device's whole-run shift is tested against it
    first (``_run_shifts``, at alpha / 2). A shift beyond the drift is a regression of the whole run, and the
    models are then judged as measured; a shift within it is taken out of every model's figures before they are
    judged (at the other alpha / 2), so a model fails only for a change beyond the run's shift, and a change the
    drift explains is "within drift" (inconclusive), never red."""
    if not pending:
        return []
    stats = []
    for row, b, r, metric, limit in pending:
        key = key_of(b)
        b_log, b_unit = _log_units(b, metric)
        r_log, r_unit = _log_units(r, metric)
        hist = drift.of(r.device.name) if metric == "latency" and drift is not None else None
        if hist is not None and hist.runs and key in hist.pooled:
            b_log, b_unit = hist.pooled[key], f"process medians of {hist.runs} runs vs {r_unit}"
            row.baseline = math.exp(hist.mean[key])
        est, lo, hi = hodges_lehmann(b_log, r_log, 0.95)
        stats.append({"row": row, "b": b, "r": r, "metric": metric, "limit": limit, "key": key, "b_log": b_log,
                      "r_log": r_log, "est": est, "lo": lo, "hi": hi, "unit": r_unit, "b_unit": b_unit})
    if drift is not None:
        _run_shifts(stats, drift, th)
        drift.latency_rows = sum(st["metric"] == "latency" for st in stats)
    alpha = th.alpha / 2 if drift is not None and drift.latency_rows else th.alpha
    for st in stats:
        d = drift.devices.get(st["r"].device.name) if st["metric"] == "latency" and drift is not None else None
        st["adjust"] = d.run_shift if d is not None and d.verdict == WITHIN_DRIFT and d.run_shift else 0.0
        shift = math.log1p(st["limit"])
        r_adj = st["r_log"] - st["adjust"]
        st["p_slow"], st["p_fast"] = p_greater(st["b_log"], r_adj, shift), p_greater(r_adj, st["b_log"], shift)
    slower = holm([st["p_slow"] for st in stats], alpha)
    faster = holm([st["p_fast"] for st in stats], alpha)
    out = []
    devices_done = set()
    for st, is_slow, is_fast in zip(stats, slower, faster):
        row, b, r, metric, limit = st["row"], st["b"], st["r"], st["metric"], st["limit"]
        d = drift.devices.get(r.device.name) if metric == "latency" and drift is not None else None
        if d is not None and d.run_shift is not None and r.device.name not in devices_done and (
                d.verdict == REGRESSION or (d.verdict == WITHIN_DRIFT and abs(d.run_shift) > math.log1p(th.latency))):
            # a row for the whole run when it fails, or when its shift passes the threshold and only the drift
            # explains it
            devices_done.add(r.device.name)
            out.append(_run_row(d, th, sum(1 for x in stats if x["metric"] == "latency"
                                           and x["r"].device.name == r.device.name)))
        row.ratio, row.ci = math.exp(st["est"]), (math.exp(st["lo"]), math.exp(st["hi"]))
        row.p_slower, row.p_faster = st["p_slow"], st["p_fast"]
        n_b, n_r = st["b_log"].size, st["r_log"].size
        weak = "" if n_b > 1 else "; weaker test: the baseline has one process, so its between-process " \
                                  "variance is not known and only this run's is counted"
        adj = (f"; judged after taking out the whole run's shift {_pct(st['adjust'])} (within {d.describe()})"
               if st["adjust"] else "")
        noisy = _noise(b, metric, th) or _noise(r, metric, th)
        how = (f"ratio {row.ratio:.3f} (95 % CI {row.ci[0]:.3f}-{row.ci[1]:.3f}) from {n_b} vs {n_r} {st['unit']}; "
               f"threshold {limit:.0%}; Holm over the run's measured comparisons at alpha {alpha:g}{weak}{adj}")
        row.detail = how
        inside = 1 / (1 + limit) <= row.ci[0] and row.ci[1] <= 1 + limit
        if noisy and (is_slow or is_fast or not inside):
            row.verdict = UNSTABLE_LABEL
            row.outcome = Outcome.inconclusive(
                UNSTABLE, f"{metric} ratio 95 % CI", list(row.ci), 1 + limit,
                f"{noisy}: with figures this spread across processes the interval x{row.ci[0]:.3f}-x{row.ci[1]:.3f} "
                "is not trusted to decide (a noisy figure is never called a regression or an improvement); a quieter "
                "machine or more processes (--processes) decide it")
        elif is_slow:
            row.verdict = REGRESSION
            row.outcome = Outcome.failed(REGRESSION, how, f"{metric} ratio 95 % CI", list(row.ci), 1 + limit)
        elif is_fast:
            row.verdict = IMPROVEMENT
            row.outcome = Outcome.passed(how, f"{metric} ratio 95 % CI", list(row.ci), 1 / (1 + limit))
        elif inside:
            row.verdict = UNCHANGED
            row.outcome = Outcome.passed(how, f"{metric} ratio 95 % CI", list(row.ci), 1 + limit)
        elif st["adjust"]:
            row.verdict = WITHIN_DRIFT
            row.outcome = Outcome.inconclusive(TOO_CLOSE, f"{metric} ratio 95 % CI", list(row.ci), 1 + limit,
                                               f"within {d.describe()}: the change is no larger than the whole "
                                               "run's shift, which the machine's drift explains")
        else:
            row.verdict = TOO_CLOSE_LABEL
            row.outcome = _too_close(metric, row.ci, limit)
        out.append(row)
    return out


def _too_close(metric: str, ci: tuple[float, float], limit: float) -> Outcome:
    """Neither unchanged nor surely changed, said on the side the interval reaches past: below the improvement
    threshold 1/(1+limit) (a faster figure, not surely faster by the threshold), above the regression threshold
    1+limit, or both; the limit shown is the one it reaches past."""
    lo, hi = ci
    faster, slower = lo < 1 / (1 + limit), hi > 1 + limit
    iv = f"x{lo:.3f}-x{hi:.3f}"
    if faster and not slower:
        where = "below 1 (faster)" if hi < 1 else "mostly below 1"
        return Outcome.inconclusive(TOO_CLOSE, f"{metric} ratio 95 % CI", list(ci), 1 / (1 + limit),
                                    f"the interval {iv} lies {where} and reaches past the improvement threshold "
                                    f"x{1 / (1 + limit):.3f} without lying wholly past it: not a slowdown, and not "
                                    "surely an improvement; more processes (--processes) narrow it")
    if slower and not faster:
        return Outcome.inconclusive(TOO_CLOSE, f"{metric} ratio 95 % CI", list(ci), 1 + limit,
                                    f"the interval {iv} reaches past the regression threshold x{1 + limit:.3f} "
                                    "without lying wholly past it; more processes (--processes) narrow it")
    return Outcome.inconclusive(TOO_CLOSE, f"{metric} ratio 95 % CI", list(ci), 1 + limit,
                                f"the interval {iv} reaches past both thresholds (x{1 / (1 + limit):.3f} and "
                                f"x{1 + limit:.3f}); more processes (--processes) narrow it")


def _accuracy(b: Entry, r: Entry, th: Thresholds) -> list[Comparison]:
    rows = []
    limit = th.for_model(r.model.name, "accuracy")
    bo, ro = b.on_device, r.on_device
    pairs = [("int8_macro_f1", b.model.metric("int8", "macro_f1"), r.model.metric("int8", "macro_f1")),
             ("on_device_macro_f1", bo.macro_f1 if bo else None, ro.macro_f1 if ro else None),
             ("agreement_with_build", bo.agreement_with_build if bo else None,
              ro.agreement_with_build if ro else None)]
    for metric, bv, rv in pairs:
        if bv is None or rv is None:
            continue
        d = rv - bv
        detail = f"absolute threshold {limit:.3f}"
        if d < -limit:
            o, verdict = Outcome.failed(REGRESSION, detail, metric + " change", d, -limit), REGRESSION
        else:
            o, verdict = Outcome.passed(detail), IMPROVEMENT if d > limit else UNCHANGED
        rows.append(Comparison(r.model.name, r.device.name, metric, bv, rv, d, (d, d), o, verdict, detail))
    return rows


def _compiler(b: Entry, r: Entry) -> list[Comparison]:
    bc = ((b.model.compiler or {}).get("models") or [None])[0]
    rc = ((r.model.compiler or {}).get("models") or [None])[0]
    if not bc or not rc or (r.device.role or LEGACY_ROLES.get(r.device.name)) != TPU:
        return []
    name, device = r.model.name, r.device.name
    rows = []
    new_off = sorted(set(rc.get("unmapped_operators") or []) - set(bc.get("unmapped_operators") or []))
    nb, nr = len(bc.get("unmapped_operators") or []), len(rc.get("unmapped_operators") or [])
    detail = f"new on the CPU: {', '.join(new_off)}" if new_off else ""
    rows.append(Comparison(name, device, "operators_off_tpu", nb, nr, None, None,
                           Outcome.failed(REGRESSION, detail) if new_off else Outcome.passed(),
                           REGRESSION if new_off else UNCHANGED, detail))
    for metric in ("subgraphs", "off_chip_streamed_bytes"):
        bv, rv = bc.get(metric), rc.get(metric)
        if bv is None or rv is None:
            continue
        ratio = rv / bv if bv else None
        if rv > bv:
            o, verdict = Outcome.failed(REGRESSION, f"{metric} rose from {bv} to {rv}"), REGRESSION
        else:
            o, verdict = Outcome.passed(), IMPROVEMENT if rv < bv else UNCHANGED
        rows.append(Comparison(name, device, metric, bv, rv, ratio, None, o, verdict))
    return rows


def has_regression(rows: list[Comparison]) -> bool:
    """True when the comparison fails the job: a regression or something missing."""
    return any(r.outcome.status == "fail" for r in rows)


def _fmt(metric: str, v: float | None) -> str:
    if v is None:
        return "-"
    if metric == "latency":
        return fmt_time(v)
    if metric == "energy":
        return fmt_energy(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _ratio_text(r: Comparison) -> str:
    if r.ratio is None:
        return "-"
    if r.metric in ACCURACY_METRICS:
        return f"{r.ratio:+.4f}"
    if r.ci and r.ci[0] != r.ci[1]:
        return f"x{r.ratio:.3f} [{r.ci[0]:.3f}, {r.ci[1]:.3f}]"
    return f"x{r.ratio:.3f}"


def table(rows: list[Comparison], only_changes: bool = False) -> list[str]:
    head = ("architecture", "device", "metric", "baseline", "now", "ratio [95 % CI]", "verdict")
    body = []
    for r in rows:
        if only_changes and r.verdict == UNCHANGED:
            continue
        why = r.outcome.summary if r.outcome.status == "inconclusive" else r.detail
        body.append((r.model, r.device, r.metric, _fmt(r.metric, r.baseline), _fmt(r.metric, r.now), _ratio_text(r),
                     r.verdict + (f" ({why})" if r.verdict != UNCHANGED and why else "")))
    if not body:
        return ["(no differences)" if only_changes else "(nothing to compare)"]
    notes = []
    if any(r.ci and r.ci[0] != r.ci[1] and r.metric not in ACCURACY_METRICS for r in rows):
        notes.append("note: baseline, now: medians over every round; ratio: the Hodges-Lehmann estimate of "
                     "now/baseline over the processes' medians (one figure per process), with its 95 % CI, so a "
                     "ratio may lean the other way than the medians when the change is inside the noise")
    return text_table(head, body, pad_last=False) + notes


def summary(rows: list[Comparison]) -> dict:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    return counts


def summary_line(counts: dict[str, int]) -> str:
    """``summary: 2 regression, 22 unchanged``: the line every comparison ends with."""
    return "summary: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


# ----------------------------------------------------------------------------
# One comparison, as every job runs, prints and writes it
# ----------------------------------------------------------------------------

COMPARISON_SCHEMA = "edgecheck.comparison/3"
COMPARISON_SCHEMA_FILE = Path(__file__).parent.parent / "comparison.schema.json"
BASELINE, AB = "baseline", "ab"


@dataclass
class Side:
    """One side of a comparison: how people named it, and the results file it was read from (None when it was
    compared as it was measured: a session's own run, ``edgecheck ab``'s two sets)."""

    label: str
    source: str | None = None


@dataclass
class RunComparison:
    """A run against its baseline: the rows, what was compared, and how. Plain data: the terminal, the results
    file, ``compare --json``, ``ab -o`` and the HTML report all read this one record."""

    rows: list[Comparison]
    baseline: Side
    run: Side
    kind: str = BASELINE  # "baseline" (a saved baseline) or "ab" (BASE and HEAD measured interleaved)
    thresholds: Thresholds | None = None  # None: not known (a migrated /1 or /2 file)
    options: dict = field(default_factory=dict)  # force, allow_missing, by_name
    created_utc: str = ""
    drift: dict | None = None  # the drift the latency rows were judged against (``Drift.to_json``)
    ab: dict | None = None  # a sequential A/B's looks, levels, rule and run-level test (``ab_stats.ab_record``)

    @property
    def counts(self) -> dict[str, int]:
        return summary(self.rows)

    @property
    def has_regression(self) -> bool:
        """The job fails: a regression or something missing."""
        return has_regression(self.rows)

    def table(self, only_changes: bool = False) -> list[str]:
        return table(self.rows, only_changes)

    def summary_line(self) -> str:
        return summary_line(self.counts)

    def to_json(self) -> dict:
        return {"schema": COMPARISON_SCHEMA, "created_utc": self.created_utc, "kind": self.kind,
                "baseline": asdict(self.baseline), "run": asdict(self.run),
                "thresholds": asdict(self.thresholds) if self.thresholds is not None else None,
                "options": dict(self.options), "summary": self.counts, "failed": self.has_regression,
                "drift": self.drift, **({"ab": self.ab} if self.ab is not None else {}),
                "rows": [r.to_dict() for r in self.rows]}

    @classmethod
    def from_json(cls, data: dict, where: str = "comparison") -> RunComparison:
        """Check ``data`` against comparison.schema.json and type it; ``summary`` and ``failed`` are derived
        from the rows again, never trusted."""
        validate_comparison(data, where)
        try:
            rows = [Comparison.from_dict(r) for r in data["rows"]]
        except (TypeError, ValueError) as e:  # an outcome whose status and reason do not go together
            raise EdgecheckError(f"{where}: not a valid comparison: {e}") from None
        th = data.get("thresholds")
        try:
            thresholds = Thresholds(**th) if th is not None else None
        except EdgecheckError as e:
            raise EdgecheckError(f"{where}: {e}") from None
        sides = [Side(data[k]["label"], data[k].get("source")) for k in ("baseline", "run")]
        return cls(rows, *sides, data["kind"], thresholds,
                   dict(data.get("options") or {}), data.get("created_utc", ""), data.get("drift"), data.get("ab"))

    def save(self, path: str | Path) -> None:
        """Write atomically, after checking against the schema (a file we cannot read back is never written)."""
        data = json.loads(strict_json(self.to_json()))  # as a reader will see it: tuples are lists
        validate_comparison(data, f"{path} (not written)")
        atomic_write_json(path, data)


def _side(value, label: str | None, default: str, source: str | None = None) -> tuple[list[Run], Side]:
    """A side given as a results file's path (loaded, and named by it), a folder of earlier runs' results
    (``results.load_history``: the newest is the baseline, all of them measure the drift), a list of runs,
    or one run as data (``source``: the file it was loaded from earlier, e.g. at configure time)."""
    if isinstance(value, (str, Path)):
        from edgecheck.results import load_history

        return load_history(value), Side(label or str(value), str(value))
    if isinstance(value, (list, tuple)):
        return [Run.coerce(v) for v in value], Side(label or source or default, source)
    return [Run.coerce(value)], Side(label or source or default, source)


def compare_runs(baseline: Run | dict | str | Path | list, run: Run | dict | str | Path,
                 threshold_specs: Iterable[tuple[str | None, str, float]] = (), *, force: bool = False,
                 allow_missing: bool = False, by_name: bool = False, kind: str = BASELINE,
                 baseline_label: str | None = None, run_label: str | None = None,
                 baseline_source: str | None = None) -> RunComparison:
    """The one way a job compares: load either side given as a path, take the baseline's saved thresholds with
    ``threshold_specs`` (``config.threshold_spec``) on top, compare (``compare``'s rules), and keep what was
    compared with how. ``baseline`` may be several earlier runs (a folder of results files, or a list, oldest
    first): the newest is the baseline, and all of them measure the machine's drift. ``by_name`` is for A/B
    (``kind="ab"``), where both sides are different files by design."""
    if kind not in (BASELINE, AB):
        raise ValueError(f"comparison kind must be {BASELINE!r} or {AB!r}, got {kind!r}")
    history, base_side = _side(baseline, baseline_label, "baseline", baseline_source)
    runs, run_side = _side(run, run_label, "run")
    if len(runs) != 1:
        raise EdgecheckError(f"{run_side.label}: the run compared is one results file, not a folder of {len(runs)}")
    base, now = history[-1], runs[0]
    check_threshold_models(threshold_specs, {e.model.name for r in (*history, now) for e in r.entries}, "either file")
    th = Thresholds.from_baseline(base, list(threshold_specs))
    drift: dict = {}
    rows = compare(base, now, th, force=force, allow_missing=allow_missing, by_name=by_name,
                   history=history if len(history) >= 2 else (), drift_out=drift, across_sessions=kind != AB)
    return RunComparison(rows, base_side, run_side, kind, th,
                         {"force": force, "allow_missing": allow_missing, "by_name": by_name,
                          "history_runs": len(history)},
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), drift or None)


def check_threshold_models(specs: Iterable[tuple[str | None, str, float]], known: set[str], where: str) -> None:
    """A per-architecture threshold must name an architecture that is compared: one that names none (a typo)
    would be ignored without a word. A usage error, with the close matches."""
    import difflib

    for model, metric, value in specs:
        if model is not None and model not in known:
            close = difflib.get_close_matches(model, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else \
                f" ({len(known)} architectures: {', '.join(sorted(known)[:8])}{', ...' if len(known) > 8 else ''})"
            raise EdgecheckError(f"threshold {one_line(model)[:60]}:{metric}={value:g}: no architecture "
                                 f"{one_line(model)[:60]!r} in {where}{hint}")


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(COMPARISON_SCHEMA_FILE.read_text()))


def validate_comparison(data: dict, where: str) -> None:
    """Check ``data`` against comparison.schema.json; the error names the file and the field."""
    import jsonschema

    err = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    if err is not None:
        at = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise EdgecheckError(f"{where}: not a valid comparison file at {at}: {err.message}")


def _failed(rows) -> bool:
    return isinstance(rows, list) and any(isinstance(r, dict) and isinstance(r.get("outcome"), dict)
                                          and r["outcome"].get("status") == "fail" for r in rows)


def _old_row(row) -> dict:
    """A row of the first /1 files (before outcomes: model, device, metric, baseline, now, change, verdict,
    detail) in today's layout: the outcome follows from the verdict, the ratio from the change."""
    if not isinstance(row, dict) or "outcome" in row or not isinstance(row.get("verdict"), str):
        return row  # today's layout, or something the schema will name
    verdict, change, metric = row["verdict"], row.get("change"), row.get("metric")
    statistic = "verdict in an edgecheck.comparison/1 file"
    if verdict == "not significant":  # its name then for a change past the threshold the test could not confirm
        verdict, outcome = TOO_CLOSE_LABEL, {"status": "inconclusive", "reason": TOO_CLOSE, "statistic": statistic,
                                             "value": "not significant"}
    elif verdict == UNSTABLE_LABEL:
        outcome = {"status": "inconclusive", "reason": UNSTABLE, "statistic": statistic, "value": verdict}
    elif verdict in (REGRESSION, MISSING_LABEL):
        outcome = {"status": "fail", "reason": REGRESSION if verdict == REGRESSION else MISSING}
    else:
        outcome = {"status": "pass"}
    ratio = None if not isinstance(change, (int, float)) else change if metric in ACCURACY_METRICS else 1 + change
    return {**row, "verdict": verdict, "outcome": {**outcome, "detail": row.get("detail") or ""}, "ratio": ratio,
            "ci": None}


def _migrate_1(data: dict) -> dict:
    """edgecheck.comparison/1 (``compare --json``: baseline and run were the two results files) -> /3."""
    rows = data.get("rows", [])
    rows = [_old_row(r) for r in rows] if isinstance(rows, list) else rows
    return {"schema": COMPARISON_SCHEMA, "kind": BASELINE,
            "baseline": {"label": data.get("baseline"), "source": data.get("baseline")},
            "run": {"label": data.get("run"), "source": data.get("run")}, "thresholds": None, "options": {},
            "summary": data.get("summary", {}), "failed": _failed(rows), "rows": rows}


def _migrate_2(data: dict) -> dict:
    """edgecheck.comparison/2 (``ab -o``: base and head were the BASE and HEAD arguments, artifact folders or
    .tflite files measured in that session, not results files) -> /3."""
    rows = data.get("rows", [])
    return {"schema": COMPARISON_SCHEMA, "kind": AB, "baseline": {"label": data.get("base"), "source": None},
            "run": {"label": data.get("head"), "source": None}, "thresholds": None,
            "options": {"by_name": True}, "summary": data.get("summary", {}), "failed": _failed(rows),
            "rows": rows}


COMPARISON_MIGRATIONS = {"edgecheck.comparison/1": _migrate_1, "edgecheck.comparison/2": _migrate_2}


def load_comparison(path: str | Path) -> RunComparison:
    """Read a comparison file (/3, or the older /1 and /2, migrated), checked against the schema."""
    data = load_json(path, COMPARISON_SCHEMA, "comparison file", COMPARISON_MIGRATIONS, kind="comparison")
    return RunComparison.from_json(data, str(path))
