"""The HTML report: one self-contained page that answers the question first, then shows the evidence.

At the top, the answer (which platform wins on energy and on latency, where the crossover falls, which claims
hold, each labelled measured or simulated with its interval); then the claims, the decision charts with their
rules, the figures, the battery view, the comparison with a baseline and every result, as sortable HTML
tables. The page loads nothing: figures are data: URIs, the script and the style are inline, and a Content
Security Policy forbids every other source. Everything taken from results (model, dataset and device names,
messages) is escaped; the battery view's data is JSON in a non-executed script block, escaped for it.
"""
from __future__ import annotations

import base64
import hashlib
import html
import re
from pathlib import Path

from edgecheck.errors import EdgecheckError
from edgecheck.files import strict_json
from edgecheck.judge.answer import statistic_text
from edgecheck.judge.compare import RunComparison
from edgecheck.outcome import FAIL, INCONCLUSIVE, PASS
from edgecheck.results import Row, Run, Uncertainty, by_size, rows
from edgecheck.textfmt import fmt_bytes, fmt_energy, fmt_eng, fmt_number, fmt_time

ASSETS = Path(__file__).parent
MICRO = "µ"
FEATURE_NAMES = {"params": "parameters", "macs": "MACs", "weight_bytes_over_cache": "weight bytes / on-chip cache",
                 "input_size": "input features"}


def esc(text) -> str:
    """Text from results made inert in HTML (element content and quoted attributes)."""
    return html.escape(str(text), quote=True)


def pretty(text: str) -> str:
    """Units in messages written for the terminal ("82.9 uJ") as the page shows them ("82.9 µJ")."""
    return re.sub(r"(\d) u([sJW])\b", r"\1 µ\2", str(text))


def script_json(data) -> str:
    """JSON that cannot end or open anything inside a <script> block: <, >, & and the line separators escaped
    (JSON.parse reads them back unchanged)."""
    text = strict_json(data, sort_keys=True)
    for ch, sub in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, sub)
    return text


def _label(kind: str) -> str:
    cls = {"simulated": "simulated", "measured and simulated": "both"}.get(
        kind, "measured" if kind.startswith("measured") else "untested")
    return f"<span class='label {cls}'>{esc(kind)}</span>"


def _badge(status: str, reason: str | None = None) -> str:
    text = status if not reason else f"{status}: {reason}"
    return f"<span class='badge {esc(status)}'>{esc(text)}</span>"


def _td(text, v=None, cls: str = "", sub: str = "") -> str:
    """A cell: escaped text, an optional second line, and ``data-v`` (the sort key) where the text is a
    formatted number."""
    attrs = f" data-v='{esc(v)}'" if v is not None else ""
    attrs += f" class='{cls}'" if cls else ""
    small = f"<small>{esc(sub)}</small>" if sub else ""
    return f"<td{attrs}>{esc(text)}{small}</td>"


def _table(table_id: str, head: list[str], rows: list[str], sortable: bool = True, num: set[int] = frozenset()
           ) -> str:
    ths = "".join(f"<th{' class=num' if i in num else ''} scope='col'>{esc(h)}</th>" for i, h in enumerate(head))
    cls = " class='sortable'" if sortable else ""
    return (f"<div class='wrap'><table id='{table_id}'{cls}><thead><tr>{ths}</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


def _interval_text(iv: Uncertainty | None, fmt) -> str:
    if iv is None:
        return ""
    lo, hi = fmt(iv.low), fmt(iv.high)
    if lo.split()[1:] == hi.split()[1:]:
        lo = lo.split()[0]
    return f"{iv.label} {lo}–{hi}"


# ----------------------------------------------------------------------------
# Figures as data: URIs
# ----------------------------------------------------------------------------


def _figure(rendered, alt: str, caption: str) -> str:
    mime, data = rendered.smaller()
    return (f"<figure><img alt='{esc(alt)}' src='data:{mime};base64,{base64.b64encode(data).decode()}'>"
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def _no_figure(what: str, err: Exception) -> str:
    return f"<p class='note'>No {esc(what)}: {esc(pretty(str(err)))}</p>"


# ----------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------


TOPICS = {"energy": "Energy per inference", "latency": "Latency per inference"}


def _answer_section(findings) -> str:
    cards, claims = [], []
    for f in findings:
        if f.status is None:
            body = "".join(f"<li>{esc(d)}</li>" for d in f.details)
            if f.crossovers:
                body += "".join(f"<li class='crossover'>Crossover: {esc(c)}</li>" for c in f.crossovers)
            figs = "".join(f"<li>{esc(x)}</li>" for x in f.figures)
            title = TOPICS.get(f.topic, f.topic)
            cards.append(f"<div class='card finding' data-topic='{esc(f.topic)}'><h3>{esc(title)} "
                         f"{_label(f.label)}</h3><div class='headline'>{esc(f.headline)}</div>"
                         + (f"<ul>{body}</ul>" if body else "")
                         + (f"<div class='at'>At the crossovers:</div><ul class='figs'>{figs}</ul>" if figs else "")
                         + "</div>")
        else:
            why = "; ".join(pretty(d) for d in f.details)
            claims.append(f"<li class='claim-answer' data-claim='{esc(f.topic)}' data-status='{esc(f.status)}'>"
                          f"{_badge(f.status)} <b>{esc(f.topic)}</b> {esc(f.headline)} {_label(f.label)}"
                          + (f"<span class='why'>{esc(why)}</span>" if why else "") + "</li>")
    counts = {s: sum(f.status == s for f in findings) for s in (PASS, FAIL, INCONCLUSIVE)}
    head = ", ".join(f"{n} {s}" for s, n in counts.items())
    return ("<section id='answer'><h2>The answer</h2><div class='cards'>" + "".join(cards) + "</div>"
            f"<h3>Which claims hold ({esc(head)})</h3><ul class='claims-at-a-glance'>" + "".join(claims)
            + "</ul></section>")


def _claims_section(claims, findings) -> str:
    label = {f.topic: f.label for f in findings if f.status is not None}
    order = {FAIL: 0, INCONCLUSIVE: 1, PASS: 2}
    rows = []
    for c in claims:
        o = c.outcome
        source = label.get(c.id, "-")
        rows.append(f"<tr class='claim {o.status}'>" + _td(c.id) + _td(c.title)
                    + f"<td data-v='{order[o.status]}'>{_badge(o.status, o.reason)}</td>" + _td(c.status)
                    + _td(source, cls=source.split()[0])
                    + _td(statistic_text(c), sub=pretty(o.detail) if o.detail and o.status != PASS else "")
                    + _td(", ".join(c.devices) or "-") + _td(pretty(c.message)) + "</tr>")
    return ("<section id='claims'><h2>Claims</h2><p class='note'>Each of the paper's claims C1-C6 as a check: "
            "pass, fail (contradicted, regression, missing) or inconclusive (not-testable, unstable, "
            "too-close-to-call). A claim is <i>reproduced</i> only when every device it uses was measured.</p>"
            + _table("claims-table", ["claim", "title", "outcome", "status", "source", "statistic (limit)",
                                      "devices", "evidence"], rows) + "</section>")


def _rules_rows(node: dict, conds: list[str], out: list) -> None:
    if "platform" in node:
        out.append((" and ".join(conds) or "always", node["platform"], node.get("architectures")))
        return
    feature, _, threshold = node["if"].partition(" <= ")
    name = FEATURE_NAMES.get(feature, feature)
    try:
        value = fmt_number(float(threshold))
    except ValueError:
        value = threshold
    _rules_rows(node["then"], conds + [f"{name} ≤ {value}"], out)
    _rules_rows(node["else"], conds + [f"{name} > {value}"], out)


def _chart_section(charts: dict, budget_chart) -> str:
    from edgecheck.judge.figures import chart_rendered

    parts = ["<section id='chart'><h2>Decision chart</h2><p class='note'>Per architecture, the platform with "
             "the least energy per inference, and the fastest; the rules below are a shallow decision tree "
             "fitted to the winners (claim C6 checks them leaving each architecture out).</p>"]
    budget = [] if budget_chart is None else [
        (f"latency within {fmt_time(budget_chart.budget_s, MICRO)}" if not isinstance(budget_chart, str)
         else "latency within the budget", budget_chart)]
    for key, ch in list(charts.items()) + budget:
        if isinstance(ch, str):
            parts.append(f"<p class='note'>No {esc(key)} chart: {esc(ch)}</p>")
            continue
        try:
            parts.append(_figure(chart_rendered(ch), f"decision chart ({key})",
                                 f"Winner per architecture ({key}, {ch.provenance}). Hatched: the weights exceed "
                                 "the Edge TPU's on-chip cache. Thick line: where the winner changes."))
        except (EdgecheckError, ImportError) as e:
            parts.append(_no_figure(f"{key} chart", e))
        leaves: list = []
        if ch.rules:
            _rules_rows(ch.rules, [], leaves)
        agreement = "-" if ch.loo_agreement is None else f"{ch.loo_agreement:.0%}"
        rows = [f"<tr>{_td(c)}{_td(p)}{_td(n if n is not None else '-', n, 'num')}</tr>" for c, p, n in leaves]
        parts.append(f"<h3>Rules ({esc(key)}; leave-one-architecture-out agreement {esc(agreement)})</h3>"
                     + _table(f"rules-{key.split()[0]}{'-budget' if 'within' in key else ''}",
                              ["when", "platform", "architectures"], rows,
                              sortable=False, num={2}))
    return "".join(parts) + "</section>"


def _figures_section(data: Run, op: dict | None, cache: int) -> str:
    from edgecheck.judge.figures import latency_figure, pareto_figure

    parts = ["<section id='figures'><h2>Accuracy, energy and latency</h2>"]
    try:
        parts.append(_figure(pareto_figure(data, op), "accuracy against energy, per device",
                             "int8 macro-F1 against energy per inference, one panel per device with its own energy "
                             "range. Filled points and the line: the Pareto front (no other model is both cheaper "
                             "and more accurate). Circled: C2's operating point. Models beyond a panel's range "
                             "sit at its right edge with their energy."))
    except (EdgecheckError, ImportError) as e:
        parts.append(_no_figure("accuracy against energy figure", e))
    try:
        parts.append(_figure(latency_figure(data, cache), "latency against parameters",
                             "Latency per inference against parameters. Dashed: the Edge TPU's on-chip cache; "
                             "beyond it the weights stream over the link on every inference. Shaded: the twin's "
                             "band (simulated) or the 95 % interval of a measured median. Architectures are named "
                             "where there is room."))
    except (EdgecheckError, ImportError) as e:
        parts.append(_no_figure("latency figure", e))
    return "".join(parts) + "</section>"


def _battery_section(bdata: dict) -> str:
    if not bdata["devices"]:
        why = "; ".join(f"{d}: {w}" for d, w in bdata["left_out"].items()) or "no results"
        return (f"<section id='battery'><h2>Battery life</h2><p class='note'>No device has both energy per "
                f"inference and idle power ({esc(why)}).</p></section>")
    devs = bdata["devices"]
    rate_inputs = "".join(
        f"<input class='rate' type='number' min='0' step='any' value='{esc(fmt_number(r))}' "
        f"aria-label='rate {i + 1}'>" for i, r in enumerate(bdata["rates"]))
    options = "".join(f"<option value='{esc(r)}'{' selected' if r == bdata['detail_rate'] else ''}>"
                      f"{esc(fmt_number(r))} per second</option>" for r in bdata["rates"])
    idle = ", ".join(f"{d['name']} {fmt_eng(d['idle_w'], 'W', MICRO)} ({d['idle_source']})" for d in devs)
    same_idle = len({round(d["idle_w"], 9) for d in devs if d["name"] in bdata["roles"].values()}) == 1 and \
        all(bdata["roles"].values())
    note = (" Energy per inference (the decision chart) charges idle power for an inference's duration; a "
            "battery pays idle power all the time, so here only the energy above idle grows with the rate, and "
            "the platform that lasts longer can differ from the chart's.")
    note += (" Both platforms here draw the same idle power (one board supplies both), so the platform that lasts "
            "longer changes with the rate only where a device cannot keep up; with different idle powers "
            "(measured with a probe) the crossover moves with the duty cycle." if same_idle else "")
    roles = bdata["roles"]
    summary_head = ["rate", f"{roles['a53'] or 'A53'} lasts longer", f"{roles['tpu'] or 'TPU'} lasts longer",
                    "too close, equal or neither", "battery life (all models)", "which lasts longer, by MACs"]
    detail_head = ["model", "MACs"]
    for d in devs:
        detail_head += [f"{d['name']}: average power", f"{d['name']}: battery life"]
    detail_head.append("lasts longer")
    left = "".join(f" {esc(d)} is left out: {esc(w)}." for d, w in bdata["left_out"].items())
    return (
        "<section id='battery'><h2>Battery life</h2>"
        "<p class='note'>Average power = idle power + dynamic energy per inference × rate; battery life = "
        "capacity / average power. A device busy more than 100 % of the time cannot sustain the rate. Idle power: "
        f"{esc(idle)}.{esc(note)}{left}</p>"
        "<form id='battery-form' class='inputs' autocomplete='off'>"
        "<label>battery <input id='capacity' type='number' min='0' step='any' "
        f"value='{esc(fmt_number(bdata['capacity_wh']))}'> Wh</label>"
        f"<label>rates (inferences per second) {rate_inputs}</label>"
        f"<label>details at <select id='detail-rate'>{options}</select></label>"
        "<span id='battery-message' class='error' role='status'></span></form>"
        "<noscript><p class='error'>The battery view computes in the page and needs JavaScript.</p></noscript>"
        "<h3>Which platform lasts longer at each rate</h3>"
        + _table("battery-summary", summary_head, [], num={0, 1, 2, 3, 4})
        + "<h3>Power and battery life per architecture at <span id='detail-rate-text'></span></h3>"
        "<p class='note'>The bar splits average power into idle<span class='legend-swatch' "
        "style='background:#8c959f'></span>and active<span class='legend-swatch' style='background:#0969da'>"
        "</span>.</p>"
        + _table("battery-detail", detail_head, [], num=set(range(1, len(detail_head) - 1)))
        + f"<script type='application/json' id='battery-data'>{script_json(bdata)}</script></section>")


def _comparison_rows(comparison: list) -> list[str]:
    from edgecheck.judge.compare import ACCURACY_METRICS, UNCHANGED

    order = {FAIL: 0, INCONCLUSIVE: 1, PASS: 2}
    rows = []
    for c in sorted(comparison, key=lambda c: (order[c.outcome.status], c.verdict == UNCHANGED, c.model, c.device,
                                               c.metric)):
        fmt = {"latency": lambda v: fmt_time(v, MICRO), "energy": lambda v: fmt_energy(v, MICRO)}.get(
            c.metric, lambda v: fmt_number(v, 4))
        if c.ratio is None:
            ratio = "-"
        elif c.metric in ACCURACY_METRICS:
            ratio = f"{c.ratio:+.4f}"
        else:
            ratio = f"×{fmt_number(c.ratio, 4)}"
        if not c.ci or c.metric in ACCURACY_METRICS:
            ci = "-"
        elif c.ci[0] == c.ci[1]:
            ci = "exact"
        else:
            ci = f"×{fmt_number(c.ci[0], 4)} – ×{fmt_number(c.ci[1], 4)}"
        o = c.outcome
        cls = {"unstable": "unstable", "too close to call": "too-close"}.get(c.verdict, o.status)
        why = o.summary if o.status == INCONCLUSIVE else (c.detail or o.detail)
        rows.append(f"<tr class='{cls}'>" + _td(c.model) + _td(c.device) + _td(c.metric)
                    + _td(fmt(c.baseline) if c.baseline is not None else "-", c.baseline, "num")
                    + _td(fmt(c.now) if c.now is not None else "-", c.now, "num")
                    + _td(ratio, c.ratio, "num") + _td(ci, c.ci[0] if c.ci else None, "num")
                    + f"<td data-v='{order[o.status]}'>{_badge(o.status, o.reason)}</td>"
                    + _td(c.verdict, sub=pretty(why)) + "</tr>")
    return rows


def _comparison_section(comparison: list) -> str:
    """What changed (failures and inconclusive rows first), the ratios as a figure, and every row on request."""
    from edgecheck.judge.compare import UNCHANGED, summary
    from edgecheck.judge.figures import ratio_figure

    counts = summary(comparison)
    head = ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "nothing to compare"
    cols = ["model", "device", "figure", "baseline", "now", "ratio", "95 % CI", "outcome", "verdict"]
    num = {3, 4, 5, 6}
    parts = [f"<section id='comparison'><h2>Comparison with the baseline</h2><p class='note'>{esc(head)}. "
             "Latency and energy: the ratio now / baseline with its 95 % interval (simulated figures are compared "
             "exactly); a regression is a ratio surely above the threshold; unstable and too close to call are "
             "inconclusive.</p>"]
    try:
        parts.append(_figure(ratio_figure(comparison), "ratios now / baseline",
                             "Now / baseline for each latency and energy figure, per device, with its 95 % "
                             "interval; the models that changed are named."))
    except (EdgecheckError, ImportError) as e:
        parts.append(_no_figure("ratio figure", e))
    changed = [c for c in comparison if c.verdict != UNCHANGED]
    if changed:
        parts.append("<h3>What changed</h3>" + _table("comparison-table", cols, _comparison_rows(changed), num=num))
    else:
        parts.append("<p>Nothing changed: every figure is within its threshold.</p>")
    parts.append(f"<details><summary>Every compared figure ({len(comparison)})</summary>"
                 + _table("comparison-all", cols, _comparison_rows(comparison), num=num) + "</details>")
    return "".join(parts) + "</section>"


def _results_section(rs: list[Row]) -> str:
    """Every entry as a sortable table; a column no entry of this run has a figure for is left out (and
    named)."""
    cols: list[tuple[str, object]] = [
        ("model", lambda r: _td(r.model)),
        ("params", lambda r: _td(fmt_number(r.params or None), r.params or None, "num")),
        ("MACs", lambda r: _td(fmt_number(r.macs or None), r.macs or None, "num")),
        ("weights", lambda r: _td(fmt_bytes(r.weight_bytes), r.weight_bytes, "num")),
        ("F1 int8", lambda r: _td("-" if r.f1_int8 is None else f"{r.f1_int8:.3f}", r.f1_int8, "num",
                                  f"95 % CI {r.f1_int8_ci[0]:.3f}–{r.f1_int8_ci[1]:.3f}" if r.f1_int8_ci else "")),
        ("device", lambda r: _td(r.device_label)),
        ("source", lambda r: _td(r.kind, cls=r.kind)),
        ("latency (median)", lambda r: _td(fmt_time(r.latency_s, MICRO), r.latency_s, "num",
                                           _interval_text(r.latency_interval, lambda v: fmt_time(v, MICRO)))),
        ("load", lambda r: _td(fmt_time(r.load_s, MICRO), r.load_s, "num")),
        ("1st invoke", lambda r: _td(fmt_time(r.first_invoke_s, MICRO), r.first_invoke_s, "num")),
        ("memory", lambda r: _td("-" if r.memory_bytes is None else "+" + fmt_bytes(r.memory_bytes), r.memory_bytes,
                                 "num")),
        ("agree", lambda r: _td("-" if r.agreement is None else f"{r.agreement:.0%}", r.agreement, "num")),
        ("energy / inference", lambda r: _td(fmt_energy(r.energy_j, MICRO), r.energy_j, "num",
                                             _interval_text(r.energy_interval, lambda v: fmt_energy(v, MICRO)))),
    ]
    optional = {"load": "load_s", "1st invoke": "first_invoke_s", "memory": "memory_bytes", "agree": "agreement",
                "energy / inference": "energy_j", "F1 int8": "f1_int8"}
    empty = [name for name, attr in optional.items() if all(getattr(r, attr) is None for r in rs)]
    cols = [c for c in cols if c[0] not in empty]
    body = []
    for r in rs:
        cls = "unstable" if r.unstable else "" if r.ok else "fail"
        note = f"unstable: {r.unstable}" if r.unstable else ("" if r.ok else f"FAILED: {r.error or ''}")
        mark = f"<td><span class='mark{'' if r.ok else ' fail'}'>{esc(note)}</span></td>" if note else _td("")
        body.append(f"<tr class='{cls}'>" + "".join(cell(r) for _, cell in cols) + mark + "</tr>")
    head = [c[0] for c in cols] + ["note"]
    num = {i for i, (name, _) in enumerate(cols) if name not in ("model", "device", "source")}
    left_out = (f" Not in this run, so left out: {', '.join(empty)}." if empty else "")
    return ("<section id='results'><h2>Results</h2><p class='note'>One row per architecture and device. Latency: "
            "the median over rounds of fresh processes with the 95 % interval across processes (measured), or the "
            "twin's band (simulated). Load and first invoke: seconds to load the model and to run its first "
            "inference. Memory: the model's own peak above a fresh worker's. Agree: predictions equal to the "
            f"build's. Rows marked unstable are too noisy to decide on.{esc(left_out)}</p>"
            + _table("results-table", head, body, num=num) + "</section>")


def _environment_section(data: Run, name: str) -> str:
    env = data.header.get("environment") or {}
    mach = env.get("machine") or {}
    items = [("results", name),
             ("machine", f"{mach.get('cpu_model', '-')} ({mach.get('cpu_count', '-')} cores), "
                         f"{mach.get('system', '-')} {mach.get('machine', '-')}"),
             ("board", mach.get("board", "-")),
             ("versions", ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items()) or "-"),
             ("dataset", data.dataset.get("name", "-")),
             ("grid", (data.artifacts.get("grid") or {}).get("architectures") or "-")]
    env_rows = "".join(f"<tr><th scope='row'>{esc(k)}</th>{_td(v)}</tr>" for k, v in items)
    dev_rows = [f"<tr>{_td(d.get('name'))}{_td(d.get('kind'), cls=str(d.get('kind')))}"
                f"{_td(d.get('provenance', '-'))}</tr>" for d in _devices(data)]
    return ("<section id='environment'><h2>Environment and devices</h2><div class='wrap'><table>" + env_rows
            + "</table></div>" + _table("devices-table", ["device", "kind", "provenance"], dev_rows, sortable=False)
            + "</section>")


def _devices(data: Run) -> list[dict]:
    if data.devices:
        return data.devices
    seen: dict[str, dict] = {}
    for e in data.entries:
        seen.setdefault(e.device.name, {"name": e.device.name, "kind": e.kind, "provenance": e.provenance})
    return list(seen.values())


# ----------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------


def html_report(runs: list[tuple[str, Run | dict]], comparison: RunComparison | list | None = None,
                budget_s: float | None = None, rate_hz: float = 10.0) -> str:
    """One self-contained HTML page of one run (or several, merged): the answer first, then the evidence.
    ``comparison`` is ``compare_runs``' record (or its rows); ``rate_hz`` is the battery view's first detail
    rate; the reader changes rates and capacity on the page."""
    if isinstance(comparison, RunComparison):
        comparison = comparison.rows
    from edgecheck.judge.answer import answer
    from edgecheck.judge.battery import DEFAULT_RATES_HZ, battery_data
    from edgecheck.judge.chart import build_chart
    from edgecheck.judge.claims import cache_bytes, evaluate, load_thresholds
    from edgecheck.judge.figures import require_matplotlib

    require_matplotlib()  # a report without its figures is not written: the reason is said instead
    name, data = runs[0][0], Run.coerce(runs[0][1])
    if len(runs) > 1:
        from edgecheck.results import merge

        data = merge([Run.coerce(d) for _, d in runs], [n for n, _ in runs])
        name = " + ".join(n for n, _ in runs)
    th = load_thresholds()
    cache = cache_bytes(th)
    claims = evaluate(data, th)
    charts: dict = {}
    for metric in ("energy", "latency"):
        try:
            charts[metric] = build_chart(data, metric, None, cache)
        except (EdgecheckError, ImportError) as e:
            charts[metric] = str(e)
    budget_chart = None
    if budget_s:
        try:
            budget_chart = build_chart(data, "latency", budget_s, cache)
        except (EdgecheckError, ImportError) as e:
            budget_chart = str(e)
    rs = by_size(rows(data, failed=True))
    findings = answer(charts, rs, claims, cache)
    op = next(({**c.evidence, "device": c.devices[0]} for c in claims if c.id == "C2" and c.holds and c.devices),
              None)
    bdata = battery_data(data, DEFAULT_RATES_HZ, rate_hz)
    script = (ASSETS / "report.js").read_text()
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
           "base-uri 'none'; form-action 'none'")
    devices = ", ".join(f"{d.get('name')} ({d.get('kind')})" for d in _devices(data))
    n_models = len({r.model for r in rs})
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{csp}\">",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>edgecheck report: {esc(name)}</title><style>{(ASSETS / 'report.css').read_text()}</style>"
        "</head><body>",
        f"<header><h1>edgecheck report</h1><p class='sub'>Run <code>{esc(name)}</code>: "
        f"{n_models} model{'s' if n_models != 1 else ''} on dataset {esc(data.dataset.get('name', '-'))}; "
        f"devices {esc(devices or '-')}. Every figure is labelled {_label('measured')} (on a device, by a probe) "
        f"or {_label('simulated')} (by a twin); a claim is reproduced only when every device it uses was "
        "measured.</p></header>",
        "<nav><a href='#answer'>Answer</a><a href='#claims'>Claims</a><a href='#chart'>Decision chart</a>"
        "<a href='#figures'>Figures</a><a href='#battery'>Battery life</a>"
        + ("<a href='#comparison'>Comparison</a>" if comparison is not None else "")
        + "<a href='#results'>Results</a><a href='#environment'>Environment</a></nav>",
        _answer_section(findings),
        _claims_section(claims, findings),
        _chart_section(charts, budget_chart),
        _figures_section(data, op, cache),
        _battery_section(bdata),
    ]
    if comparison is not None:
        parts.append(_comparison_section(comparison))
    parts += [_results_section(rs), _environment_section(data, name), f"<script>{script}</script></body></html>"]
    return "\n".join(parts)
