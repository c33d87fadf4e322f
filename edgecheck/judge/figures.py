"""The report's figures (matplotlib: the "report" extra): the decision chart, accuracy against energy, latency
against size and the comparison's ratios. Every figure is rendered as PNG and SVG; the report embeds the
smaller. Units on axes and in cells are engineering units (µJ/mJ/J, µs/ms/s), never e-notation."""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

from edgecheck.errors import EdgecheckError
from edgecheck.judge.roles import A53, LEGACY_ROLES, TOO_CLOSE_TO_CALL, TPU, TWIN_OF_ROLE
from edgecheck.results import BAND_LABEL, Row, Run, by_size, rows
from edgecheck.textfmt import fmt_bytes, fmt_energy, fmt_eng, fmt_number, fmt_time

# the two platforms by role, measured darker than simulated; any other device from a palette by its name
ROLE_COLORS = {(TPU, False): "#1f77b4", (TPU, True): "#6baed6", (A53, False): "#d62728", (A53, True): "#fc9272"}
OTHER_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#2ca02c", "#17becf", "#bcbd22", "#7f7f7f")  # the host cpu: green
CHART_COLORS = {"none": "#bbbbbb", TOO_CLOSE_TO_CALL: "#e0e0e0"}
MICRO = "µ"


def color(device: str, kind: str | None = None, role: str | None = None) -> str:
    """A device's colour; a remote board's (tpu@dev-a) is its device's. The platforms' colours follow their
    role (recorded by the kind, or the role table's for older files); any other device gets a palette colour
    fixed by its name, so it is the same in every figure and run."""
    import zlib

    base = device.split("@")[0]
    if base in CHART_COLORS:
        return CHART_COLORS[base]
    role = role or LEGACY_ROLES.get(base)
    simulated = kind == "simulated" if kind else base in TWIN_OF_ROLE.values()
    if role in (TPU, A53):
        return ROLE_COLORS[(role, simulated)]
    return OTHER_COLORS[zlib.crc32(base.encode()) % len(OTHER_COLORS)]


@dataclass(frozen=True)
class Rendered:
    """One figure as SVG (text kept as text, no timestamp: the same figure gives the same bytes) and, when asked
    for or when the SVG is large, as PNG."""

    svg: str
    png: bytes | None = None

    def smaller(self) -> tuple[str, bytes]:
        """(MIME type, bytes) of the smaller encoding, as the report embeds it."""
        svg = self.svg.encode()
        return ("image/svg+xml", svg) if self.png is None or len(svg) < len(self.png) else ("image/png", self.png)


# An SVG up to this size is smaller than the figure's PNG: the default run's four figures came out 45-74 KB as SVG
# and 86-129 KB as PNG at 110 dpi. Below it the PNG is not rendered (about 0.25 s a figure, 1 s of every report);
# above it (a grid of hundreds of points) both are, and the smaller is embedded.
SVG_SURELY_SMALLER = 80_000


def require_matplotlib() -> None:
    """Raise the one-line reason when matplotlib (the report extra) is missing."""
    _plt()


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise EdgecheckError("figures need matplotlib (pip install 'edgecheck[report]')") from e
    # text as text in SVG, no random ids, and names from results never parsed as TeX ($...$)
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "edgecheck", "font.size": 8,
                         "text.parse_math": False})
    return plt


def _render(fig, png: bool = False) -> Rendered:
    """SVG always; PNG too when ``png`` or when the SVG is larger than ``SVG_SURELY_SMALLER``."""
    import matplotlib.pyplot as plt

    svg = io.StringIO()
    fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    text = svg.getvalue()
    raster = None
    if png or len(text.encode()) > SVG_SURELY_SMALLER:
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=110, metadata={"Software": None})
        raster = out.getvalue()
    plt.close(fig)
    return Rendered(text, raster)


def _log_axis(axis, fmt) -> None:
    """A log axis whose labels are engineering units: ticks at 1, 2 and 5 of each decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
    axis.set_minor_formatter(NullFormatter())


def _renderer(fig):
    """Lay the figure out once (constrained layout) and return the renderer the labels are measured with."""
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _label_points(ax, points: list[tuple[float, float, str]], renderer, fontsize: float = 6.0) -> list[str]:
    """Each name beside its point, where it overlaps no other name, no point and stays inside the axes (tried
    right, left, above, below). Returns the names that found no free place."""
    frame = ax.get_window_extent(renderer)
    pixels = [tuple(ax.transData.transform((x, y))) for x, y, _ in points]
    placed, missed = [], []
    offsets = [(4, 1, "left", "bottom"), (4, -1, "left", "top"), (-4, 1, "right", "bottom"),
               (-4, -1, "right", "top"), (0, 5, "center", "bottom"), (0, -5, "center", "top")]
    for x, y, name in points:
        for dx, dy, ha, va in offsets:
            t = ax.annotate(name, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                            fontsize=fontsize, color="#333333")
            bb = t.get_window_extent(renderer).expanded(1.0, 1.0).padded(1.5)
            inside = frame.x0 <= bb.x0 and bb.x1 <= frame.x1 and frame.y0 <= bb.y0 and bb.y1 <= frame.y1
            hits_point = any(bb.x0 - 2 <= qx <= bb.x1 + 2 and bb.y0 - 2 <= qy <= bb.y1 + 2 for qx, qy in pixels)
            if inside and not hits_point and not any(bb.overlaps(o) for o in placed):
                placed.append(bb)
                break
            t.remove()
        else:
            missed.append(name)
    return missed


def chart_figure(chart) -> tuple[bytes, str]:
    """Winners over hidden layers x neurons; cells beyond the on-chip cache hatched; the crossover outlined.
    Returns (PNG bytes, SVG text)."""
    r = chart_rendered(chart, png=True)
    return r.png, r.svg


def chart_rendered(chart, png: bool = False) -> Rendered:
    """The decision chart of ``chart`` (``chart.build_chart``) as a figure (``png``: as PNG too)."""
    plt = _plt()
    ws = [w for w in chart.winners if w.layers and w.width]
    if not ws:
        raise EdgecheckError("decision chart: no architecture of the form LAYERSxWIDTH to place on the chart")
    layers = sorted({w.layers for w in ws})
    widths = sorted({w.width for w in ws})
    fig, ax = plt.subplots(figsize=(1.3 * len(widths) + 2, 0.9 * len(layers) + 1.8), layout="constrained")
    fmt = (lambda v: fmt_energy(v, MICRO)) if chart.metric == "energy" else (lambda v: fmt_time(v, MICRO))
    cell = {(w.layers, w.width): w for w in ws}
    for w in ws:
        x, y = widths.index(w.width), layers.index(w.layers)
        ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=color(w.winner), edgecolor="white", lw=1.5))
        if w.param_bytes > chart.cache_bytes:
            ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, hatch="//", edgecolor="#555", lw=0))
        label = w.label(chart.metric, fmt)  # with the intervals; too close to call: every device's
        ax.text(x, y, label, ha="center", va="center", fontsize=7.5 if label.count("\n") <= 2 else 6,
                color="black")
        # the crossover: between adjacent cells whose winners differ
        right = cell.get((w.layers, widths[x + 1])) if x + 1 < len(widths) else None
        if right is not None and right.winner != w.winner:
            ax.plot([x + 0.5, x + 0.5], [y - 0.5, y + 0.5], color="black", lw=3)
        above = cell.get((layers[y + 1], w.width)) if y + 1 < len(layers) else None
        if above is not None and above.winner != w.winner:
            ax.plot([x - 0.5, x + 0.5], [y + 0.5, y + 0.5], color="black", lw=3)
    ax.set_xticks(range(len(widths)), [str(w) for w in widths])
    ax.set_yticks(range(len(layers)), [str(v) for v in layers])
    ax.set_xlim(-0.5, len(widths) - 0.5)
    ax.set_ylim(-0.5, len(layers) - 0.5)
    ax.set_xlabel("neurons per hidden layer")
    ax.set_ylabel("hidden layers")
    what = {"energy": "least energy per inference", "latency": "least latency"}[chart.metric]
    if chart.budget_s:
        what += f" within {fmt_time(chart.budget_s, MICRO)}"
    ax.set_title(f"Decision chart: {what} ({chart.provenance})\nhatched: weights exceed the Edge TPU's on-chip "
                 "cache; thick line: crossover", fontsize=9)
    return _render(fig, png)


def _front(rs: list[Row]) -> list[Row]:
    """The Pareto front of least energy and highest accuracy: by energy, every model more accurate than all
    cheaper ones."""
    front, best = [], -math.inf
    for r in sorted(rs, key=lambda r: (r.energy_j, -r.f1_int8)):
        if r.f1_int8 > best:
            front.append(r)
            best = r.f1_int8
    return front


def pareto_figure(results: Run | dict, op: dict | None) -> Rendered:
    """Macro-F1 against energy per inference, one panel per device with its own energy range, so that a front
    whose energies differ by a few percent is not a vertical smear on a shared axis. The range of a panel ends
    a little beyond its front; models beyond it are marked at the right edge with their energy. ``op``: C2's
    evidence with its ``device``, circled on that device's panel."""
    plt = _plt()
    rs = [r for r in by_size(rows(results)) if r.energy_j and r.f1_int8 is not None]
    devices = sorted({r.device_label for r in rs})
    if not devices:
        raise EdgecheckError("no model has both an energy figure and an accuracy (energy needs --energy-probe or "
                             "the twins)")
    fig, axes = plt.subplots(1, len(devices), figsize=(4.6 * len(devices), 4.6), sharey=True, squeeze=False,
                             layout="constrained")
    labels = []
    for ax, dev in zip(axes[0], devices):
        mine = [r for r in rs if r.device_label == dev]
        front = _front(mine)
        lo = min(r.energy_j for r in mine) / 1.15
        hi = max(max(r.energy_j for r in front) * 1.6, lo * 2.5)
        shown = [r for r in mine if r.energy_j <= hi]
        beyond = sorted((r for r in mine if r.energy_j > hi), key=lambda r: r.energy_j)
        c = color(dev, mine[0].kind, mine[0].role)
        dominated = [r for r in shown if r not in front]
        ax.scatter([r.energy_j for r in dominated], [r.f1_int8 for r in dominated], s=16, facecolors="none",
                   edgecolors=c, lw=1, label="dominated")
        ax.scatter([r.energy_j for r in front], [r.f1_int8 for r in front], s=22, color=c, label="Pareto front")
        ax.step([r.energy_j for r in front] + [hi], [r.f1_int8 for r in front] + [front[-1].f1_int8], where="post",
                color=c, lw=1.2)
        if op and op.get("device") == dev:
            ax.scatter([op["energy_j"]], [op["macro_f1"]], s=170, facecolors="none", edgecolors="black", lw=1.5,
                       label=f"C2 operating point ({op['operating_point']})", zorder=5)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi * 1.12)
        _log_axis(ax.xaxis, lambda v: fmt_eng(v, "J", MICRO))
        ys = [r.f1_int8 for r in mine]
        ax.set_ylim(min(ys) - 0.015, max(ys) + 0.015)
        if beyond:
            ax.scatter([hi * 1.08] * len(beyond), [r.f1_int8 for r in beyond], marker=">", s=22, color=c, clip_on=False,
                       label="beyond the range (energy in the name)")
        ax.set_title(f"{dev} ({mine[0].kind})", fontsize=9)
        ax.set_xlabel("energy per inference (log)")
        ax.grid(True, which="major", color="#eeeeee", lw=0.6)
        names = [(r.energy_j, r.f1_int8, r.model) for r in front + dominated]
        names += [(hi * 1.08, r.f1_int8, f"{r.model} {fmt_energy(r.energy_j, MICRO)}") for r in beyond]
        labels.append((ax, names))
    axes[0][0].set_ylabel("int8 macro-F1 (test split)")
    handles: dict = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=len(handles), fontsize=7,
               frameon=False)
    fig.suptitle("Accuracy against energy: each device's Pareto front (filled points, the line), C2's operating "
                 "point circled", fontsize=9)
    renderer = _renderer(fig)
    for ax, names in labels:
        _label_points(ax, names, renderer)
    return _render(fig)


def latency_figure(results: Run | dict, cache_bytes: int) -> Rendered:
    """Latency against parameters per device, with the on-chip cache's limit, each figure's interval (the twin's
    band, or the 95 % interval of a measured median) as a shaded band, and the architectures named."""
    plt = _plt()
    rs = [r for r in by_size(rows(results)) if r.latency_s and r.params]
    if not rs:
        raise EdgecheckError("no model has a latency")
    fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
    for dev in sorted({r.device_label for r in rs}):
        mine = sorted((r for r in rs if r.device_label == dev), key=lambda r: r.params)
        c = color(dev, mine[0].kind, mine[0].role)
        ax.plot([r.params for r in mine], [r.latency_s for r in mine], "o-", ms=3, lw=1, color=c,
                label=f"{dev} ({mine[0].kind})")
        with_iv = [r for r in mine if r.latency_interval]
        if with_iv:
            what = {r.latency_interval.label for r in with_iv}
            ax.fill_between([r.params for r in with_iv], [r.latency_interval.low for r in with_iv],
                            [r.latency_interval.high for r in with_iv], color=c, alpha=0.25, lw=0,
                            label=f"{dev}: {' / '.join(sorted(what))}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axvline(cache_bytes, color="#555555", ls="--", lw=1)
    ax.text(cache_bytes, 0.02, f"on-chip cache {fmt_bytes(cache_bytes)} ", transform=ax.get_xaxis_transform(),
            fontsize=7, va="bottom", ha="right", color="#555555")
    _log_axis(ax.xaxis, fmt_number)
    _log_axis(ax.yaxis, lambda v: fmt_eng(v, "s", MICRO))
    ax.set_xlabel("parameters (log; int8: about the weight bytes)")
    ax.set_ylabel("latency per inference (log)")
    ax.grid(True, which="major", color="#eeeeee", lw=0.6)
    ax.set_title("Latency against model size: the Edge TPU's on-chip cliff" +
                 (" (shaded: the twin's band)" if any(r.latency_interval and r.latency_interval.label == BAND_LABEL
                                                     for r in rs) else ""), fontsize=9)
    ax.legend(fontsize=6.5, loc="upper left")
    _label_points(ax, [(r.params, r.latency_s, r.model) for r in sorted(rs, key=lambda r: -r.latency_s)],
                  _renderer(fig))
    return _render(fig)


VERDICT_COLORS = {"regression": "#cf222e", "missing": "#cf222e", "improvement": "#1a7f37", "unchanged": "#555555",
                  "too close to call": "#bf8700", "unstable": "#bf8700"}


def ratio_figure(comparison: list) -> Rendered:
    """Now / baseline of every latency and energy figure, one row per device and figure, each model a point
    with its 95 % interval (log scale): what moved stands out in colour and is named."""
    plt = _plt()
    rows = [c for c in comparison if c.ratio is not None and c.metric in ("latency", "energy") and c.ratio > 0]
    if not rows:
        raise EdgecheckError("no latency or energy ratio to draw")
    groups = sorted({(c.device, c.metric) for c in rows})
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(groups) + 1.4), layout="constrained")
    named = []
    for g, key in enumerate(groups):
        mine = sorted((c for c in rows if (c.device, c.metric) == key), key=lambda c: c.ratio)
        for i, c in enumerate(mine):
            y = g + (0.0 if len(mine) == 1 else (i / (len(mine) - 1) - 0.5) * 0.6)
            lo, hi = c.ci if c.ci else (c.ratio, c.ratio)
            col = VERDICT_COLORS.get(c.verdict, "#555555")
            ax.plot([lo, hi], [y, y], color=col, lw=1.2, alpha=0.8)
            ax.plot([c.ratio], [y], "o", color=col, ms=3)
            if c.verdict != "unchanged":
                named.append((c.ratio, y, c.model))
    ax.axvline(1.0, color="#888888", lw=1)
    ax.set_yticks(range(len(groups)), [f"{d} · {m}" for d, m in groups])
    ax.set_ylim(-0.6, len(groups) - 0.4)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ends = [x for c in rows for x in (c.ci if c.ci else (c.ratio, c.ratio))]
    span = max(abs(math.log(x)) for x in ends)
    edge = math.exp(max(span * 1.25, math.log(1.15)))
    ax.set_xlim(1 / edge, edge)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ticks = [t for t in (0.25, 0.5, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 2.0, 4.0) if 1 / edge <= t <= edge]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"×{fmt_number(v)}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("now / baseline (log); the line through a point: its 95 % interval")
    ax.grid(True, axis="x", color="#eeeeee", lw=0.6)
    ax.set_title("Comparison with the baseline: red regression, green improvement, amber inconclusive, grey "
                 "unchanged", fontsize=9)
    if named:
        _label_points(ax, named, _renderer(fig))
    return _render(fig)
