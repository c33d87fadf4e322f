"""The decision chart: which platform to pick for a model, from its parameters and context.

From one run's results: the per-architecture winner (least energy per inference,
or least latency, or the fastest under a latency budget), drawn over hidden
layers x neurons, and as rules: a shallow decision tree (depth <= 3) over
parameters, MACs, weight bytes against the on-chip cache and input size. Claim
C6 checks the rules leave-one-architecture-out against the measured winners.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from edgecheck.config import EDGE_TPU_CACHE_BYTES
from edgecheck.errors import EdgecheckError
from edgecheck.judge.roles import A53, TOO_CLOSE_TO_CALL, TPU, interval, role_device, winner
from edgecheck.results import Row, Run, rows
from edgecheck.textfmt import fmt_energy, fmt_interval, fmt_time

FEATURES = ("params", "macs", "weight_bytes_over_cache", "input_size")


@dataclass
class Winner:
    model: str
    layers: int | None
    width: int | None
    params: int
    macs: int
    param_bytes: int
    input_size: int
    winner: str  # device name, or "too close" when the intervals of the two lowest overlap
    values: dict  # device -> metric value
    kinds: dict  # device -> measured/simulated
    intervals: dict = field(default_factory=dict)  # device -> [low, high]: measured interval or the twin's band

    def label(self, metric: str = "energy", fmt=None) -> str:
        """The cell as the chart prints it: the winner, its figure and interval, or, too close to call, every
        device's figure and interval (``fmt``: how a figure is written; by default the metric's unit)."""
        fmt = fmt or (fmt_energy if metric == "energy" else fmt_time)

        def fig(d: str) -> str:
            lo, hi = self.intervals.get(d, (self.values[d], self.values[d]))
            return fmt(self.values[d]) + (f"\n{fmt_interval(lo, hi, fmt)}" if hi > lo else "")

        if self.winner == TOO_CLOSE_TO_CALL:
            return "too close\n" + "\n".join(f"{d} {fig(d)}" for d in self.values)
        if self.winner not in self.values:
            return self.winner
        return f"{self.winner}\n{fig(self.winner)}"


@dataclass
class Chart:
    metric: str  # "energy" or "latency" (or "latency<=budget")
    devices: list[str]
    winners: list[Winner]
    budget_s: float | None = None
    cache_bytes: int = EDGE_TPU_CACHE_BYTES
    rules_text: str = ""
    rules: dict = field(default_factory=dict)
    loo_agreement: float | None = None
    loo_misses: list[str] = field(default_factory=list)

    @property
    def provenance(self) -> str:
        kinds = {k for w in self.winners for k in w.kinds.values()}
        if len(kinds) == 1:
            return next(iter(kinds))
        return "measured and simulated"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["provenance"] = self.provenance
        return d


def winners(results: Run | dict, metric: str = "energy", budget_s: float | None = None,
            roles: tuple[str, ...] = (TPU, A53)) -> tuple[list[str], list[Winner]]:
    """Per architecture, the device with the least energy (or latency) per inference.

    With a latency budget, a device over budget cannot win; an architecture no device serves is "none"."""
    rs = rows(results)
    chosen = [d for d in (role_device(rs, role) for role in roles) if d is not None]
    if len(chosen) < 2:
        raise EdgecheckError(f"decision chart: needs results for two platforms (a tpu and an a53 device, measured or "
                             f"twin); this run has {sorted({r.device for r in rs})}")
    by = {}
    for r in rs:
        if r.device in chosen:
            by.setdefault(r.model, {})[r.device] = r
    attr = "energy_j" if metric == "energy" else "latency_s"
    out = []
    for model, devs in by.items():
        if set(devs) != set(chosen):
            continue
        vals = {d: getattr(devs[d], attr) for d in chosen}
        if any(v is None for v in vals.values()):
            raise EdgecheckError(f"decision chart: {model} has no {metric} figure on every device "
                                 f"(energy needs --energy-probe or the twins)")
        ok = {d: devs[d] for d in chosen if budget_s is None or devs[d].latency_s <= budget_s}
        win = winner(ok, attr) if ok else "none"
        r0 = next(iter(devs.values()))
        layers, width = r0.layers_width
        out.append(Winner(model, layers, width, r0.params, r0.macs, r0.param_bytes,
                          _input_size(r0, layers, width), win, vals, {d: devs[d].kind for d in chosen},
                          {d: list(interval(devs[d], attr)) for d in chosen}))
    return chosen, sorted(out, key=lambda w: (w.macs, w.model))


def _input_size(r: Row, layers: int | None, width: int | None) -> int:
    """Input features from MACs when the architecture is known: macs = n_in*w + (L-1)*w^2 + w*n_out."""
    if not layers or not width:
        return 0
    n_out = (r.params - r.macs) - layers * width  # biases minus hidden biases
    return int((r.macs - (layers - 1) * width * width - width * n_out) // width)


def feature_matrix(ws: list[Winner], cache_bytes: int) -> np.ndarray:
    return np.array([[w.params, w.macs, w.param_bytes / cache_bytes, w.input_size] for w in ws], float)


def fit_rules(ws: list[Winner], cache_bytes: int, max_depth: int = 3):
    """A shallow decision tree over the decided cells (a cell too close to call teaches nothing)."""
    from sklearn.tree import DecisionTreeClassifier

    decided = [w for w in ws if w.winner != TOO_CLOSE_TO_CALL]
    X = feature_matrix(decided, cache_bytes)
    y = np.array([w.winner for w in decided])
    return DecisionTreeClassifier(max_depth=max_depth, random_state=0).fit(X, y)


def leave_one_out(ws: list[Winner], cache_bytes: int) -> tuple[float, list[str]]:
    """Each architecture predicted by rules fitted without it; a cell too close to call counts as a miss."""
    misses = []
    for i, w in enumerate(ws):
        rest = [x for x in ws[:i] + ws[i + 1:] if x.winner != TOO_CLOSE_TO_CALL]
        if w.winner == TOO_CLOSE_TO_CALL or not rest:
            misses.append(w.model)
            continue
        if len({x.winner for x in rest}) == 1:
            pred = rest[0].winner
        else:
            pred = fit_rules(rest, cache_bytes).predict(feature_matrix([w], cache_bytes))[0]
        if pred != w.winner:
            misses.append(w.model)
    return 1 - len(misses) / len(ws), misses


def rules_dict(tree) -> dict:
    t = tree.tree_
    names = list(FEATURES)

    def node(i: int) -> dict:
        if t.children_left[i] == -1:
            return {"platform": str(tree.classes_[int(np.argmax(t.value[i]))]),
                    "architectures": int(t.n_node_samples[i])}
        return {"if": f"{names[t.feature[i]]} <= {t.threshold[i]:.6g}", "then": node(t.children_left[i]),
                "else": node(t.children_right[i])}

    return node(0)


def build_chart(results: Run | dict, metric: str = "energy", budget_s: float | None = None,
                cache_bytes: int = EDGE_TPU_CACHE_BYTES) -> Chart:
    if metric not in ("energy", "latency"):
        raise EdgecheckError(f"--metric: energy or latency, got {metric!r}")
    devices, ws = winners(results, metric, budget_s)
    chart = Chart(metric, devices, ws, budget_s, cache_bytes)
    if len(ws) >= 3 and len({w.winner for w in ws} - {TOO_CLOSE_TO_CALL}) > 1:
        from sklearn.tree import export_text

        tree = fit_rules(ws, cache_bytes)
        chart.rules_text = export_text(tree, feature_names=list(FEATURES))
        chart.rules = rules_dict(tree)
        chart.loo_agreement, chart.loo_misses = leave_one_out(ws, cache_bytes)
    elif ws:
        decided = [w.winner for w in ws if w.winner != TOO_CLOSE_TO_CALL]
        only = decided[0] if decided else TOO_CLOSE_TO_CALL
        chart.rules_text = f"always {only}"
        chart.rules = {"platform": only, "architectures": len(ws)}
        chart.loo_agreement, chart.loo_misses = leave_one_out(ws, cache_bytes)
    return chart
