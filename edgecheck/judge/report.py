"""Human-readable views of results: the terminal table, figures and the HTML report."""
from __future__ import annotations

from edgecheck.errors import EdgecheckError
from edgecheck.judge.tables import results_table
from edgecheck.results import Run, rows

# ----------------------------------------------------------------------------
# Figures and the HTML report (matplotlib: the "report" extra)
# ----------------------------------------------------------------------------

DEVICE_COLORS = {"tpu": "#1f77b4", "tpu-sim": "#6baed6", "a53": "#d62728", "a53-sim": "#fc9272", "cpu": "#2ca02c",
                 "none": "#bbbbbb"}


def _figure_bytes(fig) -> tuple[bytes, str]:
    import io

    png, svg = io.BytesIO(), io.StringIO()
    fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
    fig.savefig(svg, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return png.getvalue(), svg.getvalue()


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise EdgecheckError("figures need matplotlib (pip install 'edgecheck[report]')") from e
    return plt


def chart_figure(chart) -> tuple[bytes, str]:
    """Winners over hidden layers x neurons; cells beyond the on-chip cache hatched; the crossover outlined."""
    plt = _plt()
    ws = [w for w in chart.winners if w.layers and w.width]
    layers = sorted({w.layers for w in ws})
    widths = sorted({w.width for w in ws})
    fig, ax = plt.subplots(figsize=(1.3 * len(widths) + 2, 0.9 * len(layers) + 1.8))
    for w in ws:
        x, y = widths.index(w.width), layers.index(w.layers)
        over = w.param_bytes > chart.cache_bytes
        ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=DEVICE_COLORS.get(w.winner, "#999"),
                                   edgecolor="white", lw=1.5))
        if over:
            ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, hatch="//", edgecolor="#555", lw=0))
        v = w.values.get(w.winner)
        unit = "uJ" if chart.metric == "energy" else "us"
        label = f"{w.winner}\n{v * 1e6:.3g} {unit}" if v is not None else w.winner
        ax.text(x, y, label, ha="center", va="center", fontsize=7.5, color="black")
    # crossover: between horizontally adjacent cells whose winners differ
    for w in ws:
        x, y = widths.index(w.width), layers.index(w.layers)
        right = next((v for v in ws if v.layers == w.layers and v.width == widths[min(x + 1, len(widths) - 1)]), None)
        if right is not None and right is not w and right.winner != w.winner:
            ax.plot([x + 0.5, x + 0.5], [y - 0.5, y + 0.5], color="black", lw=3)
    ax.set_xticks(range(len(widths)), [str(w) for w in widths])
    ax.set_yticks(range(len(layers)), [str(v) for v in layers])
    ax.set_xlim(-0.5, len(widths) - 0.5)
    ax.set_ylim(-0.5, len(layers) - 0.5)
    ax.set_xlabel("neurons per hidden layer")
    ax.set_ylabel("hidden layers")
    what = {"energy": "least energy per inference", "latency": "least latency"}[chart.metric]
    if chart.budget_s:
        what += f" within {chart.budget_s * 1e3:g} ms"
    ax.set_title(f"Decision chart: {what} ({chart.provenance})\nhatched: weights exceed the Edge TPU's on-chip cache; "
                 "thick line: crossover", fontsize=9)
    return _figure_bytes(fig)


def _finish(fig, ax, xlabel: str, ylabel: str, title: str) -> tuple[bytes, str]:
    """Log x axis, labels, title and legend: the common end of the line plots."""
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _figure_bytes(fig)


def pareto_figure(results: Run | dict, op: dict | None) -> tuple[bytes, str]:
    """Macro-F1 against energy per inference, per device, with each device's Pareto front."""
    plt = _plt()
    with_energy = [r for r in rows(results) if r.energy_j is not None and r.f1_int8 is not None]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for dev in sorted({r.device for r in with_energy}):
        rs = sorted([r for r in with_energy if r.device == dev], key=lambda r: r.energy_j)
        kind = rs[0].kind
        ax.scatter([r.energy_j * 1e6 for r in rs], [r.f1_int8 for r in rs], s=18, color=DEVICE_COLORS.get(dev, "#777"),
                   label=f"{dev} ({kind})")
        front, best = [], -1.0
        for r in rs:
            if r.f1_int8 > best:
                front.append(r)
                best = r.f1_int8
        ax.plot([r.energy_j * 1e6 for r in front], [r.f1_int8 for r in front], color=DEVICE_COLORS.get(dev, "#777"),
                lw=1)
    if op:
        ax.scatter([op["energy_j"] * 1e6], [op["macro_f1"]], s=160, facecolors="none", edgecolors="black", lw=1.5,
                   label=f"C2 operating point ({op['operating_point']})")
    return _finish(fig, ax, "energy per inference (uJ, log)", "int8 macro-F1 (test split)",
                   "Accuracy against energy, with Pareto fronts")


def latency_figure(results: Run | dict, cache_bytes: int) -> tuple[bytes, str]:
    plt = _plt()
    timed = [r for r in rows(results) if r.latency_s]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for dev in sorted({r.device for r in timed}):
        rs = sorted([r for r in timed if r.device == dev], key=lambda r: r.params)
        ax.plot([r.params for r in rs], [r.latency_s * 1e6 for r in rs], "o-", ms=3, lw=1,
                color=DEVICE_COLORS.get(dev, "#777"), label=f"{dev} ({rs[0].kind})")
    ax.axvline(cache_bytes, color="grey", ls="--", lw=1)
    ax.text(cache_bytes, ax.get_ylim()[1] if ax.has_data() else 1, " on-chip cache", fontsize=7, va="top", color="grey")
    ax.set_yscale("log")
    return _finish(fig, ax, "parameters (log; about the int8 weight bytes)", "latency per inference (us, log)",
                   "Latency against model size (the Edge TPU's on-chip cliff)")


def battery_rows(results: Run | dict, rate_hz: float) -> list[dict]:
    """Average power and energy per hour at ``rate_hz`` inferences per second: idle power plus dynamic energy x rate."""
    from edgecheck.twins.model import load_constants, power_model

    out = []
    idle_by_device = {}  # measured idle power where a probe measured it
    for e in Run.coerce(results).entries:
        p_idle = ((e.energy.idle if e.energy else None) or {}).get("power_w")
        if p_idle is not None:
            idle_by_device[e.device.name] = p_idle
    c = load_constants()
    idle_by_device.setdefault("tpu-sim", power_model(c, "tpu")[0])  # the twins' idle power
    idle_by_device.setdefault("a53-sim", power_model(c, "a53")[0])
    for r in rows(results):
        if r.energy_j is None or r.latency_s is None or r.device not in idle_by_device:
            continue
        idle = idle_by_device[r.device]
        dynamic = max(r.energy_j - idle * r.latency_s, 0.0)
        if rate_hz * r.latency_s > 1:
            continue  # the device cannot sustain this rate
        avg = idle + dynamic * rate_hz
        out.append({"model": r.model, "device": r.device, "kind": r.kind, "avg_power_w": avg,
                    "dynamic_j": dynamic, "idle_w": idle})
    return out


def html_report(runs: list[tuple[str, Run | dict]], comparison: list | None = None, budget_s: float | None = None,
                rate_hz: float = 10.0) -> str:
    """One self-contained HTML file: environment, devices, claims, decision chart, plots, comparison, battery view."""
    import base64
    import html

    from edgecheck.judge.chart import build_chart
    from edgecheck.judge.claims import cache_bytes, evaluate, load_thresholds

    name, data = runs[0][0], Run.coerce(runs[0][1])
    if len(runs) > 1:
        from edgecheck.results import merge

        data = merge([Run.coerce(d) for _, d in runs], [n for n, _ in runs])
        name = " + ".join(n for n, _ in runs)
    th = load_thresholds()
    claims = evaluate(data, th)
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>edgecheck report: {esc(name)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 7px}"
             "th{background:#f2f2f2}.measured{color:#1a7f37}.simulated{color:#9a6700}"
             "pre{background:#f7f7f7;padding:8px}"
             ".reproduced{color:#1a7f37}.holds{color:#9a6700}.fails{color:#cf222e}img{max-width:100%}"
             "</style></head><body>",
             f"<h1>edgecheck report</h1><p>Run: <code>{esc(name)}</code>. Every figure is labelled "
             "<span class='measured'>measured</span> (on a device, by a probe) or "
             "<span class='simulated'>simulated</span> "
             "(by a twin); a claim is reproduced only when every device it uses was measured.</p>"]
    env = data.header.get("environment") or {}
    mach = env.get("machine") or {}
    parts.append("<h2>Environment</h2><table>" + "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in
        [("machine", f"{mach.get('cpu_model')} ({mach.get('cpu_count')} cores), {mach.get('system')} "
                     f"{mach.get('machine')}"),
         ("board", mach.get("board", "-")),
         ("versions", ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items())),
         ("dataset", data.dataset.get("name")), ("grid", (data.artifacts.get("grid") or {}).get("architectures"))])
        + "</table>")
    devs = data.devices
    parts.append("<h2>Devices</h2><table><tr><th>device</th><th>kind</th><th>provenance</th></tr>" + "".join(
        f"<tr><td>{esc(d['name'])}</td><td class='{esc(d['kind'])}'>{esc(d['kind'])}</td>"
        f"<td>{esc(d['provenance'])}</td></tr>"
        for d in devs) + "</table>")
    parts.append("<h2>Claims</h2><table id='claims'><tr><th>claim</th><th>status</th><th>devices</th>"
                 "<th>evidence</th></tr>")
    for c in claims:
        cls = "reproduced" if c.status == "reproduced" else "holds" if c.status == "holds in simulation" else "fails"
        parts.append(f"<tr class='claim'><td>{c.id} {esc(c.title)}</td><td class='{cls}'>{esc(c.status)}</td>"
                     f"<td>{esc(', '.join(c.devices) or '-')}</td><td>{esc(c.message)}</td></tr>")
    parts.append("</table>")

    def img(pair, alt):
        return f"<img alt='{esc(alt)}' src='data:image/png;base64,{base64.b64encode(pair[0]).decode()}'>"

    parts.append("<h2>Decision chart</h2>")
    metrics = [("energy", None), ("latency", None)] + ([("latency", budget_s)] if budget_s else [])
    for metric, budget in metrics:
        try:
            ch = build_chart(data, metric, budget, cache_bytes(th))
        except Exception as e:  # noqa: BLE001 - a chart that cannot be drawn says why, the report goes on
            parts.append(f"<p>No {metric} chart: {esc(str(e))}</p>")
            continue
        parts.append(img(chart_figure(ch), f"decision chart ({metric})"))
        parts.append(f"<p>Rules ({ch.provenance}; leave-one-architecture-out agreement "
                     f"{'-' if ch.loo_agreement is None else f'{ch.loo_agreement:.0%}'}):</p>"
                     f"<pre>{esc(ch.rules_text)}</pre>")
    op = next((c.evidence for c in claims if c.id == "C2" and c.holds), None)
    parts.append("<h2>Accuracy, energy and latency</h2>")
    for fig, alt in ((lambda: pareto_figure(data, op), "accuracy against energy"),
                     (lambda: latency_figure(data, cache_bytes(th)), "latency against parameters")):
        try:
            parts.append(img(fig(), alt))
        except Exception as e:  # noqa: BLE001
            parts.append(f"<p>No figure '{esc(alt)}': {esc(str(e))}</p>")
    if comparison is not None:
        from edgecheck.judge.compare import table

        parts.append("<h2>Baseline comparison</h2><pre>" + esc("\n".join(table(comparison, only_changes=True)))
                     + "</pre>")
    rows = battery_rows(data, rate_hz)
    parts.append(f"<h2>Battery view at {rate_hz:g} inferences per second</h2><p>Average power = idle power + dynamic "
                 "energy per inference x rate; a device that cannot sustain the rate is left out.</p>"
                 "<table><tr><th>model</th><th>device</th><th>kind</th><th>average power (W)</th>"
                 "<th>energy per hour (Wh = W x 1 h)</th></tr>"
                 + "".join(f"<tr><td>{esc(r['model'])}</td><td>{esc(r['device'])}</td>"
                           f"<td class='{r['kind']}'>{r['kind']}</td>"
                           f"<td>{r['avg_power_w']:.3f}</td><td>{r['avg_power_w']:.3f}</td></tr>" for r in rows)
                 + "</table>")
    parts.append("<h2>Results</h2><pre>" + esc("\n".join(results_table(data))) + "</pre>")
    # Says on the page when a figure did not load, and leaves a count a headless browser can read.
    parts.append("<script>window.addEventListener('load',function(){var im=document.images,ok=0;"
                 "for(var i=0;i<im.length;i++){if(im[i].complete&&im[i].naturalWidth>0)ok++;}"
                 "document.body.setAttribute('data-images-loaded',ok+'/'+im.length);"
                 "if(ok<im.length){var p=document.createElement('p');"
                 "p.textContent=(im.length-ok)+' figure(s) failed to load';"
                 "p.style.color='#cf222e';document.body.insertBefore(p,document.body.firstChild);}});</script>")
    parts.append("</body></html>")
    return "\n".join(parts)
