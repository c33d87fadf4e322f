"""A/B statistics: paired processes, a fixed number of looks, the decision rule and the run-level test.

``edgecheck ab`` measures BASE (A) and HEAD (B) in fresh worker processes that alternate A, B, A, B: the
processes 2k and 2k+1 are one *slot*, measured next to each other in time. A slot's log ratio
``log(B median / A median)`` takes out what the two neighbouring processes share (page placement, the
machine's load, frequency), which moves every model together from one process to the next.

The rule (chosen by resampling real interleaved sessions, README "Regression detection"):

- per model, Wilcoxon's signed-rank test on the slots' log ratios (exact) gives the ratio's estimate (the
  Hodges-Lehmann median of the Walsh averages), its 95 % interval and the one-sided p of "HEAD is not slower"
  (ratio <= 1) and "not faster": rank-based because real slots are heavy-tailed (a busy machine hits a few
  processes hard; a paired t was as good on the null and no better on slowdowns, ``ci/soak.py ab-rules``);
- a model is a **regression** when Holm over the models still open at that look rejects "ratio <= 1" at the
  look's level *and* its estimate reaches the threshold (1 + latency threshold, default x1.05); an
  **improvement** symmetrically; **unchanged** when the look's one-sided bounds lie both within the
  thresholds; otherwise it is open and measured further, and still open at the cap it is "too close to call";
- a model whose process medians spread more than ``unstable_cv`` (robust CV, either side) is never called a
  regression or an improvement: "unstable" unless it is unchanged;
- **run level**: per slot, the mean log ratio over every model measured in it (slots where all models were
  measured), the same signed-rank test over those slots: the geometric mean of the per-model ratios with its
  interval, decided by the same rule with one hypothesis.

Error control over the sequence: at most ``LOOKS`` (2) looks, fixed in advance (8 processes a side, then the
cap); the family-wise alpha is split between the run-level test (``RUN_SHARE``, a fifth: it has power to spare)
and the models (the rest), and each share evenly across the looks (Bonferroni over looks, the conservative end of
Pocock's constant boundary): per look 0.05 x 0.2 / 2 = 0.005 for the run level and 0.05 x 0.8 / 2 = 0.02 for the
models, with Holm across the models open at that look. (Measured against 3 looks with alpha halved, on the same
resampled sessions: as many single-model slowdowns caught, fewer unchanged sessions red; README.) The union
bound over the looks holds the chance of any false red over the whole
session at ``alpha``, however the looks were stopped (a stop for being decided, or at the user's cap, only
removes chances to err).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from edgecheck.stats import hodges_lehmann, holm, p_greater, rankdata, robust_cv, t_quantile, t_sf

LOOKS = 2  # looks at most, fixed in advance (Bonferroni over them)
RUN_SHARE = 0.2  # the run-level test's share of alpha; the models' family gets the rest
FIRST = 8  # processes per side at the first look: the exact signed-rank test's smallest p there is 1/256
CAP = 20  # processes per side at the last look (default ``--processes`` of ``edgecheck ab``)
OPEN = "open"  # not decided at this look: measured further (at the last look: too close to call)
REGRESSION, IMPROVEMENT, UNCHANGED, UNSTABLE = "regression", "improvement", "unchanged", "unstable"
RULE = ("Holm over the open models rejects 'ratio <= 1' (exact Wilcoxon signed-rank on the slots' log ratios) at "
        "the look's level, and the Hodges-Lehmann estimate reaches the threshold")


def schedule(first: int, cap: int, looks: int = LOOKS) -> list[int]:
    """Processes per side at each look: ``first``, then evenly up to ``cap``, at most ``looks`` looks."""
    first = max(2, min(first, cap))
    if looks <= 1 or cap <= first:
        return [cap] if looks <= 1 else [first]
    steps = [round(first + (cap - first) * j / (looks - 1)) for j in range(looks)]
    return sorted(set(steps))


@dataclass
class Estimate:
    """A log ratio (HEAD / BASE) from ``n`` paired slots: mean, its 95 % interval, the one-sided p of "not
    slower" and "not faster", and the sd of the slots' log ratios."""

    est: float
    lo: float
    hi: float
    n: int
    sd: float
    p_slower: float  # p of H0 "ratio <= 1"
    p_faster: float  # p of H0 "ratio >= 1"
    walsh: np.ndarray | None = None  # signed-rank: the sorted Walsh averages (bounds from their order statistics)
    sides: tuple | None = None  # rank-sum (unpaired): the two sides' log medians (bounds from Hodges-Lehmann)

    def bounds(self, a: float) -> tuple[float, float]:
        """One-sided bounds at level ``a`` each (the interval a decision at level ``a`` uses)."""
        if self.n < 2:
            return -math.inf, math.inf
        if self.walsh is not None:
            return _walsh_bounds(self.walsh, _signed_rank_cdf(self.n), a)
        if self.sides is not None:
            _, lo, hi = hodges_lehmann(*self.sides, 1 - 2 * a)
            return lo, hi
        q = t_quantile(a, self.n - 1) * self.sd / math.sqrt(self.n)
        return self.est - q, self.est + q

    @property
    def ratio(self) -> float:
        return math.exp(self.est)

    @property
    def ci(self) -> tuple[float, float] | None:
        """The ratio's 95 % interval; None where too few slots bound it (the exact test has no finite bound)."""
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            return None
        return math.exp(self.lo), math.exp(self.hi)

    def ci_text(self) -> str:
        ci = self.ci
        return f"95 % CI {ci[0]:.3f}-{ci[1]:.3f}" if ci else f"no finite 95 % CI from {self.n} slots"


def paired_t(d) -> Estimate:
    """The paired t on slot log ratios ``d``."""
    d = np.asarray(d, float)
    n = int(d.size)
    est = float(d.mean()) if n else 0.0
    if n < 2:
        return Estimate(est, -math.inf, math.inf, n, math.inf, 1.0, 1.0)
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    if se == 0:  # identical slots: the sign of the mean decides
        return Estimate(est, est, est, n, 0.0, 0.0 if est > 0 else 1.0, 0.0 if est < 0 else 1.0)
    q = t_quantile(0.025, n - 1) * se
    return Estimate(est, est - q, est + q, n, sd, t_sf(est / se, n - 1), t_sf(-est / se, n - 1))


@functools.lru_cache(maxsize=256)
def _signed_rank_cdf(n: int) -> tuple[float, ...]:
    """P(T+ <= t), t = 0..n(n+1)/2, of Wilcoxon's signed-rank statistic under H0 (exact: counting subsets)."""
    counts = [1] + [0] * (n * (n + 1) // 2)
    for r in range(1, n + 1):
        for t in range(len(counts) - 1, r - 1, -1):
            counts[t] += counts[t - r]
    total, acc, out = 2**n, 0, []
    for c in counts:
        acc += c
        out.append(acc / total)
    return tuple(out)


def signed_rank(d) -> Estimate:
    """Wilcoxon's signed-rank test on slot log ratios ``d`` and its Hodges-Lehmann estimate (the median of the
    Walsh averages) with the exact distribution-free interval: robust to the few processes a busy machine hits
    hard (real slots here: the 1 % and 99 % log ratios were -0.73 and +0.99 for a robust sd of 0.13)."""
    d = np.asarray(d, float)
    n = int(d.size)
    if n < 2:
        return Estimate(float(d.mean()) if n else 0.0, -math.inf, math.inf, n, math.inf, 1.0, 1.0)
    i, j = np.triu_indices(n)
    walsh = np.sort((d[i] + d[j]) / 2)
    est = float(np.median(walsh))
    cdf = _signed_rank_cdf(n)
    nz = d[d != 0]
    ranks = rankdata(np.abs(nz)) if nz.size else np.array([])
    t_plus = float(ranks[nz > 0].sum()) if nz.size else 0.0
    n_eff = nz.size
    cdf_eff = _signed_rank_cdf(n_eff) if n_eff else (1.0,)

    def upper_tail(t):  # P(T+ >= t), ties' average ranks rounded down (conservative)
        k = math.ceil(t) - 1
        return 1.0 if k < 0 else max(0.0, 1.0 - cdf_eff[min(k, len(cdf_eff) - 1)])

    p_slower = upper_tail(t_plus)
    p_faster = upper_tail(n_eff * (n_eff + 1) / 2 - t_plus)
    lo, hi = _walsh_bounds(walsh, cdf, 0.025)
    spread = 1.4826 * float(np.median(np.abs(d - np.median(d))))
    return Estimate(est, lo, hi, n, spread, p_slower, p_faster, walsh)


def _walsh_bounds(walsh: np.ndarray, cdf: tuple[float, ...], a: float) -> tuple[float, float]:
    """One-sided bounds at level ``a`` each: the (c+1)-th smallest and largest Walsh averages, c the largest
    with P(T+ <= c) <= a (none: unbounded)."""
    c = sum(1 for x in cdf if x <= a)  # cdf is increasing: F(0..c-1) <= a
    if c == 0:
        return -math.inf, math.inf
    c -= 1
    return float(walsh[c]), float(walsh[len(walsh) - 1 - c])


def rank_sum(a_log, b_log) -> Estimate:
    """Unpaired and rank-based (Mann-Whitney, Hodges-Lehmann on the two sides' log medians): the comparison
    before pairing, kept to measure pairing against (``ci/soak.py ab-rules``)."""
    a, b = np.asarray(a_log, float), np.asarray(b_log, float)
    est, lo, hi = hodges_lehmann(a, b, 0.95)
    return Estimate(est, lo, hi, int(min(a.size, b.size)), math.nan, p_greater(a, b), p_greater(b, a), None, (a, b))


def welch(a_log, b_log) -> Estimate:
    """Unpaired (Welch's t on the log process medians): what pairing is measured against."""
    a, b = np.asarray(a_log, float), np.asarray(b_log, float)
    est = float(b.mean() - a.mean())
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if se > 0 else math.inf
    if se == 0:
        return Estimate(est, est, est, min(a.size, b.size), 0.0, 0.0 if est > 0 else 1.0, 0.0 if est < 0 else 1.0)
    q = t_quantile(0.025, dof) * se
    return Estimate(est, est - q, est + q, min(a.size, b.size), se * math.sqrt(min(a.size, b.size)),
                    t_sf(est / se, dof), t_sf(-est / se, dof))


@dataclass
class ModelSlots:
    """One model's paired process medians (seconds): ``a[k]`` and ``b[k]`` measured in slot ``slots[k]``."""

    slots: list[int]
    a: list[float]
    b: list[float]
    unstable: list[str] = field(default_factory=list)  # a process hot or throttled again when measured once more

    def log_ratios(self, scale: float = 1.0) -> np.ndarray:
        """Per slot log(B / A); ``scale`` multiplies B as the statistics see it (the soak's slowdowns)."""
        return np.log(np.asarray(self.b, float) * scale) - np.log(np.asarray(self.a, float))

    def cv(self) -> float:
        """The larger robust CV across processes of the two sides (the noise the rule refuses to decide on)."""
        return max(robust_cv(self.a), robust_cv(self.b)) if len(self.a) >= 2 else 0.0


def decide(est: Estimate, limit: float, a: float, significant_slower: bool, significant_faster: bool,
           noisy: bool) -> str:
    """The rule for one hypothesis whose Holm step was already taken (``significant_*``)."""
    lim = math.log1p(limit)
    lo, hi = est.bounds(a)
    if -lim < lo and hi < lim:
        return UNCHANGED
    if noisy:
        return OPEN
    if significant_slower and est.est >= lim:
        return REGRESSION
    if significant_faster and est.est <= -lim:
        return IMPROVEMENT
    return OPEN


def shifted(e: Estimate, shift: float) -> tuple[float, float]:
    """The one-sided p of "ratio <= exp(shift)" and of "ratio >= exp(-shift)" (the interval rule's hypotheses)."""
    if e.walsh is not None:  # signed rank on d - shift: the share of Walsh averages above the shift
        return (_walsh_p(e, shift), _walsh_p(e, shift, faster=True))
    if e.sides is not None:
        a, b = e.sides
        return p_greater(a, b, shift), p_greater(b, a, shift)
    se = e.sd / math.sqrt(e.n) if e.n >= 2 else math.inf
    if not se or not math.isfinite(se):
        return (0.0 if e.est > shift else 1.0), (0.0 if e.est < -shift else 1.0)
    return t_sf((e.est - shift) / se, e.n - 1), t_sf((-e.est - shift) / se, e.n - 1)


def _walsh_p(e: Estimate, shift: float, faster: bool = False) -> float:
    """One-sided signed-rank p of "ratio <= exp(shift)" (or ">= exp(-shift)") from the Walsh averages: T+ of
    d - shift is the number of Walsh averages above the shift."""
    w = e.walsh
    t = float(np.sum(w < -shift)) if faster else float(np.sum(w > shift))
    cdf = _signed_rank_cdf(e.n)
    k = math.ceil(t) - 1
    return 1.0 if k < 0 else max(0.0, 1.0 - cdf[min(k, len(cdf) - 1)])


def judge_models(ests: dict[str, Estimate], limits: dict[str, float], noisy: dict[str, bool],
                 a: float, rule: str = "estimate") -> dict[str, str]:
    """One look at the open models: Holm over them at level ``a`` (the look's share), then ``decide``.
    ``rule`` "estimate" (shipped) tests "ratio <= 1" and asks the estimate to reach the threshold; "interval"
    (the rule before, kept for the soak's comparison) tests "ratio <= 1 + threshold"."""
    names = sorted(ests)
    if rule == "interval":
        ps = {n: shifted(ests[n], math.log1p(limits[n])) for n in names}
        slow = holm([ps[n][0] for n in names], a)
        fast = holm([ps[n][1] for n in names], a)
    else:
        slow = holm([ests[n].p_slower for n in names], a)
        fast = holm([ests[n].p_faster for n in names], a)
    return {n: decide(ests[n], limits[n], a, s, f, noisy[n]) for n, s, f in zip(names, slow, fast)}


def run_level(models: dict[str, ModelSlots], scale: dict[str, float] | None = None,
              test=None) -> Estimate | None:
    """The geometric mean of the per-model ratios with its interval from the paired slots: per slot the mean log
    ratio over the models (slots where every model was measured), then a t over the slots."""
    scale = scale or {}
    by_slot: dict[int, list[float]] = {}
    for name, m in models.items():
        for s, d in zip(m.slots, m.log_ratios(scale.get(name, 1.0))):
            by_slot.setdefault(s, []).append(float(d))
    full = [float(np.mean(v)) for s, v in sorted(by_slot.items()) if len(v) == len(models)]
    if len(full) < 2:
        return None
    return (test or signed_rank)(full)


def judge_run(est: Estimate | None, limit: float, a: float) -> str:
    """The run-level hypothesis at one look (no Holm: one hypothesis per look)."""
    if est is None:
        return OPEN
    return decide(est, limit, a, est.p_slower <= a, est.p_faster <= a, False)


TOO_CLOSE = "too close to call"


class Sequence:
    """One A/B session's looks: which models (and the run level) are decided, and which are measured further.
    ``scale``: B's process medians multiplied per model as the statistics see them (the soak's slowdowns; the
    real session passes none)."""

    def __init__(self, names: list[str], limits: dict[str, float], alpha: float, looks: int = LOOKS,
                 unstable_cv: float = 0.10, run_limit: float = 0.05, scale: dict[str, float] | None = None,
                 rule: str = "estimate", paired: bool = True, test: str = "rank", run_share: float = RUN_SHARE):
        self.verdict = dict.fromkeys(names, OPEN)
        self.est: dict[str, Estimate] = {}
        self.noisy: dict[str, float] = {}
        self.guard: dict[str, str] = {}  # model -> why a process of it was hot or throttled twice (never decided)
        self.decided_at: dict[str, int] = {}  # model -> processes per side when it was decided
        self.limits, self.alpha, self.looks, self.unstable_cv = limits, alpha, looks, unstable_cv
        self.run_limit, self.scale, self.rule, self.paired, self.test = run_limit, scale or {}, rule, paired, test
        self.run, self.run_est, self.run_at = OPEN, None, None
        self.taken: list[int] = []  # processes per side at each look taken
        self.run_share = run_share  # the run-level test's share of alpha (the models get the rest)

    @property
    def level(self) -> float:
        """The models' level at one look (Holm across the open models within it)."""
        return self.alpha * (1 - self.run_share) / self.looks

    @property
    def run_alpha(self) -> float:
        """The run-level test's level at one look."""
        return self.alpha * self.run_share / self.looks

    def look(self, data: dict[str, ModelSlots], n: int, last: bool) -> None:
        """Judge the open models (and the run level) on every slot measured so far."""
        self.taken.append(n)
        a = self.level
        todo = [m for m, v in self.verdict.items() if v == OPEN and m in data and len(data[m].slots) >= 2]
        ests = {m: self._estimate(data[m], self.scale.get(m, 1.0)) for m in todo}
        self.noisy.update({m: data[m].cv() for m in todo})
        got = judge_models(ests, self.limits, {m: self.noisy[m] > self.unstable_cv for m in todo}, a, self.rule)
        self.guard.update({m: "; ".join(data[m].unstable) for m in todo if data[m].unstable})
        for m in todo:
            self.est[m] = ests[m]
            if got[m] != OPEN and m not in self.guard:
                self.verdict[m], self.decided_at[m] = got[m], n
        if self.run == OPEN:
            self.run_est = run_level({m: data[m] for m in self.verdict if m in data}, self.scale,
                                     signed_rank if self.test == "rank" else paired_t)
            self.run = judge_run(self.run_est, self.run_limit, self.run_alpha)
            if self.run != OPEN:
                self.run_at = n
        if last or self.done:
            self.finish()

    def _estimate(self, m: ModelSlots, scale: float) -> Estimate:
        if self.paired:
            return (signed_rank if self.test == "rank" else paired_t)(m.log_ratios(scale))
        return (rank_sum if self.test == "rank" else welch)(np.log(m.a), np.log(np.asarray(m.b, float) * scale))

    def finish(self) -> None:
        """The last look: what is still open is too close to call, or unstable when it is noisy."""
        for m, v in self.verdict.items():
            if v == OPEN:
                self.verdict[m] = UNSTABLE if (self.noisy.get(m, 0.0) > self.unstable_cv or m in self.guard) \
                    else TOO_CLOSE
        if self.run == OPEN:
            self.run = TOO_CLOSE

    def to_measure(self) -> list[str]:
        """The models the next look needs: every model while the run level is open (its slots must hold every
        model), else the open ones (after a run-level regression too: which models moved is what a reader asks)."""
        if self.run == OPEN:
            return list(self.verdict)
        return [m for m, v in self.verdict.items() if v == OPEN]

    @property
    def done(self) -> bool:
        return not self.to_measure()

    @property
    def red(self) -> bool:
        return self.run == REGRESSION or REGRESSION in self.verdict.values()


RUN_METRIC = "latency (geometric mean)"


def _outcome(verdict: str, how: str, e: Estimate | None, limit: float, noisy: str = ""):
    from edgecheck.outcome import REGRESSION as FAIL_REGRESSION
    from edgecheck.outcome import TOO_CLOSE as R_TOO_CLOSE
    from edgecheck.outcome import UNSTABLE as R_UNSTABLE
    from edgecheck.outcome import Outcome

    ci = list(e.ci) if e is not None and e.ci else None
    stat = "latency ratio 95 % CI (signed rank on paired slot log ratios)"
    if verdict == REGRESSION:
        return Outcome.failed(FAIL_REGRESSION, how, stat, ci, 1 + limit)
    if verdict in (IMPROVEMENT, UNCHANGED):
        return Outcome.passed(how, stat, ci, 1 + limit)
    if verdict == UNSTABLE:
        return Outcome.inconclusive(R_UNSTABLE, stat, ci, 1 + limit,
                                    f"{noisy}: a model measured so is never called a regression or an improvement; "
                                    f"{how}")
    return Outcome.inconclusive(R_TOO_CLOSE, stat, ci, 1 + limit,
                                f"open at the last look (the cap): {how}; a higher --processes or --max-seconds "
                                "measures it further")


def _how(e: Estimate, at: int | None, a: float, limit: float, rule: str = "Holm over the open models") -> str:
    return (f"ratio {e.ratio:.3f} ({e.ci_text()}) from {e.n} paired slots"
            f"{f', decided at {at} processes a side' if at else ''}; p(ratio <= 1) = {e.p_slower:.2g}, "
            f"p(ratio >= 1) = {e.p_faster:.2g}; {rule} at the look's alpha {a:.3g}, estimate against x{1 + limit:.3f}")


def ab_record(seq: Sequence, looks: list, stopped: str) -> dict:
    """The comparison file's ``ab`` record: looks, levels, rule, and the run-level test."""
    e = seq.run_est
    run = None if e is None else {"verdict": seq.run, "ratio": e.ratio, "ci": list(e.ci) if e.ci else None,
                                  "slots": e.n,
                                  "p_slower": e.p_slower, "p_faster": e.p_faster, "decided_at": seq.run_at}
    return {"looks": [{"processes": lk.processes, "models": len(lk.models), "seconds": lk.seconds} for lk in looks],
            "planned_looks": seq.looks, "alpha": seq.alpha, "alpha_per_look": seq.level,
            "run_alpha_per_look": seq.run_alpha, "rule": RULE,
            "pairing": "slots of two processes (A,B / B,A), exact signed-rank on log(B/A)", "stopped": stopped,
            "run_level": run}


def ab_comparison(base, head, specs, seq: Sequence, looks: list, stopped: str = "", *, base_label: str,
                  head_label: str):
    """``compare_runs`` of the two sides (accuracy, presence, ... as for any A/B), its latency rows replaced by
    the sequential paired decisions, and the run-level test as its own first row and in the ``ab`` record."""
    from edgecheck.judge.compare import AB, RUN_ROW, Comparison, compare_runs

    result = compare_runs(base, head, specs, by_name=True, kind=AB, baseline_label=base_label, run_label=head_label)
    a = seq.level
    rows = []
    for row in result.rows:
        e = seq.est.get(row.model)
        if row.metric == "latency" and e is not None:
            v, limit = seq.verdict[row.model], seq.limits[row.model]
            noisy = ("" if v != UNSTABLE else f"hot or throttled: {seq.guard[row.model]}" if row.model in seq.guard
                     else f"robust CV across processes {seq.noisy.get(row.model, 0):.1%} over {seq.unstable_cv:.0%}")
            how = _how(e, seq.decided_at.get(row.model), a, limit)
            row.ratio, row.ci, row.p_slower, row.p_faster = e.ratio, e.ci, e.p_slower, e.p_faster
            row.verdict, row.detail, row.outcome = v, how, _outcome(v, how, e, limit, noisy)
        rows.append(row)
    e = seq.run_est
    device = next((r.device for r in rows if r.metric == "latency"), "-")
    if e is not None:
        how = _how(e, seq.run_at, seq.run_alpha, seq.run_limit,
                   f"one hypothesis (the run level's {seq.run_share:.0%} of alpha)")
        how = f"geometric mean over {len(seq.verdict)} models: " + how
        rows.insert(0, Comparison(RUN_ROW, device, RUN_METRIC, None, None, e.ratio, e.ci,
                                  _outcome(seq.run, how, e, seq.run_limit), seq.run, how, e.p_slower, e.p_faster))
    result.rows = rows
    result.ab = ab_record(seq, looks, stopped)
    return result


def run_line(record: dict | None, seq: Sequence) -> str:
    """The run-level test's own line: ``run level: regression: x1.102 [1.071, 1.134] ...``."""
    run = (record or {}).get("run_level")
    looks = (record or {}).get("looks") or []
    taken = ", ".join(str(lk["processes"]) for lk in looks)
    if not run:
        return f"run level: {seq.run}: fewer than 2 slots held every model (looks at {taken} processes a side)"
    ci = f"95 % CI {run['ci'][0]:.3f}, {run['ci'][1]:.3f}" if run["ci"] else "no finite 95 % CI"
    return (f"run level: {run['verdict']}: geometric mean of the {len(seq.verdict)} models' ratios "
            f"x{run['ratio']:.3f} [{ci}] from {run['slots']} paired slots; "
            f"threshold x{1 + seq.run_limit:.3f}; looks at {taken} processes a side, "
            f"alpha {seq.run_alpha:.3g} per look")
