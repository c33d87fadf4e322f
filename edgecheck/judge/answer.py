"""The answer a reader takes away, as plain data for the top of the report: which platform wins on energy and
on latency for this run's models, where the crossover falls, and which claims hold. Every finding is labelled
measured or simulated and carries the intervals (95 % CI, twin band) its figures have."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from edgecheck.judge.claims import FAILED, REPRODUCED, SIMULATION, SYNTHETIC, ClaimResult
from edgecheck.judge.roles import TOO_CLOSE_TO_CALL
from edgecheck.outcome import INCONCLUSIVE
from edgecheck.results import Row
from edgecheck.textfmt import fmt_bytes, fmt_energy, fmt_number, fmt_time

MEASURED, SIMULATED, BOTH, NOT_TESTED = "measured", "simulated", "measured and simulated", "not tested"
MICRO = "µ"
WHAT = {"energy": "the least energy per inference", "latency": "the lowest latency"}


@dataclass(frozen=True)
class Finding:
    """One thing to take away: a headline, the figures behind it, and where they came from."""

    topic: str
    headline: str
    label: str  # measured, simulated, measured and simulated, not tested
    details: list[str] = field(default_factory=list)
    status: str | None = None  # a claim's outcome: pass, fail or inconclusive
    reason: str | None = None  # a claim's reason (contradicted, too-close-to-call, ...)
    crossovers: list[str] = field(default_factory=list)  # where the winner changes along MACs
    figures: list[str] = field(default_factory=list)  # both devices' figures either side of each crossover


@dataclass(frozen=True)
class Segment:
    """Consecutive architectures (by MACs) with the same winner."""

    winner: str
    models: list
    macs: tuple[int, int]


def label_of(kinds: set[str]) -> str:
    kinds = {k for k in kinds if k in (MEASURED, SIMULATED)}
    if not kinds:
        return NOT_TESTED
    return next(iter(kinds)) if len(kinds) == 1 else BOTH


def fmt_figure(metric: str, v: float | None) -> str:
    return fmt_energy(v, MICRO) if metric == "energy" else fmt_time(v, MICRO)


def fmt_with_interval(metric: str, r: Row | None) -> str:
    """``178.5 µJ (twin band 170.0–190.0 µJ)``: the figure and its interval where it has one."""
    if r is None:
        return "-"
    v = r.energy_j if metric == "energy" else r.latency_s
    iv = r.energy_interval if metric == "energy" else r.latency_interval
    text = fmt_figure(metric, v)
    if iv:
        lo, hi = fmt_figure(metric, iv.low), fmt_figure(metric, iv.high)
        if lo != hi:
            if lo.split()[1:] == hi.split()[1:]:
                lo = lo.split()[0]
            text += f" ({iv.label} {lo}–{hi})"
    if metric == "latency" and r.unstable:
        text += " (unstable)"
    return text


def segments(winners: list) -> list[Segment]:
    """The winners by MACs, run together where consecutive architectures have the same winner."""
    out: list[Segment] = []
    for w in sorted(winners, key=lambda w: (w.macs, w.model)):
        if out and out[-1].winner == w.winner:
            last = out[-1]
            out[-1] = Segment(last.winner, last.models + [w], (last.macs[0], w.macs))
        else:
            out.append(Segment(w.winner, [w], (w.macs, w.macs)))
    return out


def _span(s: Segment) -> str:
    first, last = s.models[0].model, s.models[-1].model
    macs = fmt_number(s.macs[0]) if s.macs[0] == s.macs[1] else f"{fmt_number(s.macs[0])}–{fmt_number(s.macs[1])}"
    names = first if first == last else f"{first} … {last}"
    n = len(s.models)
    return f"{n} architecture{'s' if n != 1 else ''} ({names}, {macs} MACs)"


def _who(winner: str) -> str:
    return "too close to call" if winner == TOO_CLOSE_TO_CALL else winner


def platform_finding(metric: str, chart, index: dict, cache_bytes: int) -> Finding:
    """Which device wins ``metric`` on how many architectures, where the winner changes along MACs, and both
    devices' figures (with their intervals) on either side of each change."""
    ws = chart.winners
    counts: dict[str, int] = {}
    for w in ws:
        counts[w.winner] = counts.get(w.winner, 0) + 1
    # the headline names a device that wins; "too close to call" is a count of its own, never a winner
    ranked = sorted((d for d in counts if d != TOO_CLOSE_TO_CALL), key=lambda d: (-counts[d], d))
    close_n = counts.get(TOO_CLOSE_TO_CALL, 0)
    if ranked:
        head = f"{ranked[0]} has {WHAT[metric]} on {counts[ranked[0]]} of {len(ws)} architectures"
        head += "".join(f"; {d} on {counts[d]}" for d in ranked[1:])
        head += f"; too close to call on {close_n}" if close_n else ""
    else:
        head = f"too close to call on every one of the {len(ws)} architectures"
    segs = segments(ws)
    kinds = {index[(w.model, d)].kind for w in ws for d in chart.devices if (w.model, d) in index}
    switches, figures = [], []
    for a, b in zip(segs, segs[1:]):
        lo, hi = a.models[-1], b.models[0]
        where = (f"{_who(a.winner)} → {_who(b.winner)} between {lo.model} ({fmt_number(lo.macs)} MACs) and "
                 f"{hi.model} ({fmt_number(hi.macs)} MACs)")
        if lo.param_bytes <= cache_bytes < hi.param_bytes:
            where += f", where the weights outgrow the Edge TPU's on-chip cache ({fmt_bytes(cache_bytes)})"
        switches.append(where)
        for w in (lo, hi):
            figs = [f"{d} {fmt_with_interval(metric, index.get((w.model, d)))}" for d in chart.devices]
            line = f"{w.model}: " + ", ".join(figs)
            if line not in figures:
                figures.append(line)
    details = [] if switches else [f"{_who(segs[0].winner)} on every architecture"] if segs else []
    close = [w for w in ws if w.winner == TOO_CLOSE_TO_CALL]
    if close:
        wide = {d: {index[(w.model, d)].kind for w in close if (w.model, d) in index
                    and w.intervals.get(d, (0, 0))[1] > w.intervals.get(d, (0, 0))[0]} for d in chart.devices}
        details.append(too_close_text(close, wide))
        if metric == "energy":  # the metric C5, C6 and the battery view decide on; one list keeps -q on a screen
            details += measure_first(chart)
    return Finding(metric, head, label_of(kinds), details, crossovers=switches[:6], figures=figures[:8])


def measure_first(chart, limit: int = 3) -> list[str]:
    """The board measurements that would settle the most cells too close to call, ranked (``judge.decide``)."""
    from edgecheck.judge.decide import suggestions

    return [f"measure first ({i}): {s.model} on {s.device}: {s.why}; run: {s.command}"
            for i, s in enumerate(suggestions(chart, limit), 1)]


def too_close_text(close: list, kinds: dict[str, set[str]]) -> str:
    """Which architectures are too close to call, why, and what would decide them: the real device where a twin's
    band is in the way, more processes where a measured interval is. ``kinds``: device -> the kinds (measured,
    simulated) of its figures that have an interval there."""
    names = ", ".join(w.model for w in close[:6]) + (f" and {len(close) - 6} more" if len(close) > 6 else "")
    simulated = sorted(d for d, k in kinds.items() if SIMULATED in k)
    measured = sorted(d for d, k in kinds.items() if MEASURED in k)
    decide = []
    if simulated:
        decide.append(f"measuring the real device instead of the twin {' and '.join(simulated)} (the twin's band is "
                      "wider than the gap)")
    if measured:
        decide.append(f"more processes on {' and '.join(measured)} (--processes) to narrow the measured interval")
    return (f"too close to call on {len(close)}: {names} (the intervals of the two platforms overlap); what would "
            f"decide it: {'; or '.join(decide) or 'exact figures'}")


def platform_findings(run, cache_bytes: int) -> list[Finding]:
    """The energy and latency findings of a run, without the chart's rules (no scikit-learn): the terminal's
    answer, worded as the report's."""
    from edgecheck.errors import EdgecheckError
    from edgecheck.judge.chart import Chart, winners
    from edgecheck.results import rows

    rs = rows(run, failed=True)
    index = {(r.model, r.device_label): r for r in rs if r.ok}
    out = []
    caveats = None  # the twins' low-confidence bands, said once (with the first metric answered)
    for metric in ("energy", "latency"):
        try:
            devices, ws = winners(run, metric)
        except EdgecheckError as e:
            out.append(Finding(metric, f"no answer on {metric}: {e}", NOT_TESTED))
            continue
        if not ws:
            out.append(Finding(metric, f"no answer on {metric}: no architecture on both platforms", NOT_TESTED))
            continue
        f = platform_finding(metric, Chart(metric, devices, ws, cache_bytes=cache_bytes), index, cache_bytes)
        if caveats is None:
            caveats = low_confidence_lines(run, devices)
            f = replace(f, details=f.details + caveats)
        out.append(f)
    return out


def low_confidence_lines(run, devices) -> list[str]:
    """A twin's band that is low confidence (a regime resting on fewer than three public sources, or covering less
    than 80 % of a source left out of it: ``twins.tpufit.envelope_report``): one line per device, naming each such
    regime with how many of the answer's models it concerns."""
    from edgecheck.results import Run

    counts: dict[str, dict[str, int]] = {}
    for e in Run.coerce(run).ok_entries():
        if e.device.name not in devices:
            continue
        for n in (e.twin or {}).get("notes") or []:
            if n.startswith("low confidence"):
                per = counts.setdefault(e.device.name, {})
                per[n] = per.get(n, 0) + 1
    return [f"{d}'s band is low confidence: "
            + "; ".join(f"{n.removeprefix('low confidence: the ')} on {k} model(s)" for n, k in sorted(per.items()))
            + ": read its figures as a range, not a value" for d, per in sorted(counts.items())]


def answer_lines(findings: list[Finding]) -> list[str]:
    """The answer as terminal lines: per metric, the headline labelled measured or simulated, then the
    crossovers, what is too close to call, and the figures at each crossover."""
    lines = []
    for f in findings:
        if f.status is not None:
            continue
        lines.append(f"{f.topic} [{f.label}]: {f.headline}")
        lines += [f"  crossover: {c}" for c in f.crossovers]
        lines += [f"  {d}" for d in f.details]
        if f.figures:
            lines.append("  at the crossovers: " + "; ".join(f.figures))
    return lines


def _interval_text(v) -> str:
    """An interval [low, high] always as two ends, with the digits that tell them apart; a single number as one."""
    if isinstance(v, (list, tuple)):
        if len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
            for digits in (3, 4, 5, 6):
                lo, hi = fmt_number(v[0], digits), fmt_number(v[1], digits)
                if lo != hi:
                    break
            return f"{lo}–{hi}"
        return ", ".join(_interval_text(x) for x in v)
    if isinstance(v, (int, float)):
        return fmt_number(v)
    return "-" if v is None else str(v)


def statistic_text(c: ClaimResult) -> str:
    """``cost ratio of 3x2048 = 129–129, limit 2`` without e-notation."""
    o = c.outcome
    if not o.statistic:
        return ""
    return f"{o.statistic} = {_interval_text(o.value)}, limit {_interval_text(o.limit)}"


def claim_label(c: ClaimResult, kinds: dict[str, str]) -> str:
    """Measured when every device the claim used was measured; C1's accuracy is measured by the build."""
    if c.status == REPRODUCED:
        return MEASURED
    if c.status == SIMULATION:
        return SIMULATED
    if c.status == SYNTHETIC:
        return "measured on synthetic data"
    if c.id == "C1" and c.devices:
        return MEASURED
    return label_of({kinds[d] for d in c.devices if d in kinds})


def claim_finding(c: ClaimResult, kinds: dict[str, str]) -> Finding:
    words = c.status if c.outcome.status != INCONCLUSIVE else f"inconclusive ({c.outcome.reason})"
    if c.status == FAILED:
        words = f"does not hold ({c.outcome.reason})"
    details = [d for d in (statistic_text(c), c.outcome.detail) if d]
    return Finding(c.id, f"{c.title}: {words}", claim_label(c, kinds), details, c.outcome.status, c.outcome.reason)


def answer(charts: dict, rows: list[Row], claims: list[ClaimResult], cache_bytes: int) -> list[Finding]:
    """The findings in reading order: energy, latency (each with its crossovers), then the claims. ``charts``
    maps energy and latency to a decision chart, or to the reason there is none."""
    index = {(r.model, r.device_label): r for r in rows if r.ok}
    kinds = {r.device_label: r.kind for r in rows}
    out = []
    for metric in ("energy", "latency"):
        ch = charts.get(metric)
        if ch is None or isinstance(ch, str) or not ch.winners:
            out.append(Finding(metric, f"no answer on {metric}: {ch or 'no architecture on both platforms'}",
                               NOT_TESTED))
            continue
        out.append(platform_finding(metric, ch, index, cache_bytes))
    out += [claim_finding(c, kinds) for c in claims]
    return out
