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
from edgecheck.twins.sections import REFERENCE_HOST, TPU, TPU_HOSTS

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
    host: str | None = None  # the --tpu-host class of the source's host (None: not stated)
    slope: bool = False  # the source varies MACs at a fixed host and link: its cached slope is evidence
    floor: bool = False  # a whole invoke of a model of unknown shape: sets its host's overhead only

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


def published_points(data: dict | None = None, used_only: bool = True, cached_band: bool = False
                     ) -> list[TpuPoint]:
    """The published points: of sources with used=true (they fit the streamed form); with ``cached_band``, also
    the cached points and host floors of sources with cached_band=true or a floor row (the cached band's
    envelope across sources and hosts)."""
    data = data or published_data()
    out = []
    for r in data["rows"]:
        s = data["sources"][r["src"]]
        used = s.get("used") is True
        extra = cached_band and (s.get("cached_band") is True or r.get("floor") is True) and \
            int(r["streamed_bytes"]) == 0
        if used_only and not used and not extra:
            continue
        out.append(TpuPoint(r["src"], int(s["tier"]), r["link"], int(r["macs"]), int(r["streamed_bytes"]),
                            float(r["latency_s"]), int(r.get("io_bytes", 0)), r.get("model", ""),
                            int(r.get("runs", 1)), s.get("host_class"), s.get("slope") is True,
                            r.get("floor") is True))
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


def _banded(t: float, margin: float, end: str) -> float:
    """``t`` at one end of a band of relative half-width ``margin`` ("low", "value" or "high")."""
    return t * {"low": 1 - margin, "value": 1.0, "high": 1 + margin}[end]


def predict_point(table: dict[tuple, Estimate], p: TpuPoint, end: str = "value") -> float:
    """The form at one point; "low"/"high" take every quantity at the end that makes latency low/high."""
    slow = {"low": "low", "value": "value", "high": "high"}[end]
    fast = {"low": "high", "value": "value", "high": "low"}[end]
    stream = table[("stream_overhead_s", p.link)].end(slow) if p.streamed_bytes > 0 else 0.0
    t = (table[("overhead_s", p.link)].end(slow) + p.macs * table[("s_per_mac", None)].end(slow) + stream
         + (p.streamed_bytes + p.io_bytes) / table[("rate_Bps", p.link)].end(fast))
    m = table[("band_margin", p.regime)].value if ("band_margin", p.regime) in table else 0.0
    return _banded(t, m, end)


# ----------------------------------------------------------------------------
# The cached regime: compute rate from slopes, invoke overhead split into device and host
# ----------------------------------------------------------------------------

PEAK_S_PER_MAC = 1 / (4096 * 500e6)  # the whole 64x64 array at 500 MHz: no slope is faster than this
# Raspberry Pi 4 has no public Edge TPU invoke timing: its host part spans its two neighbours in the record
# (a Cortex-A72 at 1.5-1.8 GHz sits between the Jetson Nano's A57 and the Pi 5's A76); an assumption
RPI4_NEIGHBOURS = ("jetson-nano", "rpi5")


def _by_src(points: list[TpuPoint]) -> dict[str, list[TpuPoint]]:
    out: dict[str, list[TpuPoint]] = {}
    for p in points:
        out.setdefault(p.src, []).append(p)
    return out


def source_line(points: list[TpuPoint], s_central: float) -> tuple[float, float | None]:
    """(intercept, slope) of one source's cached points at one link: least squares weighted by runs when its
    MACs span 4x or more, or it is a slope source (``TpuPoint.slope``) with three sizes or more (the slope
    non-negative); else the intercept at the central slope and no slope."""
    if identifies_compute(points) or (all(p.slope for p in points) and len({p.macs for p in points}) >= 3):
        A = np.c_[np.ones(len(points)), [p.macs for p in points]]
        w = np.sqrt([p.runs for p in points])
        x = nnls(A * w[:, None], np.array([p.latency_s for p in points]) * w)
        return float(x[0]), float(x[1])
    w = np.array([p.runs for p in points], float)
    return float(np.average([p.latency_s - p.macs * s_central for p in points], weights=w)), None


def cached_slopes(points: list[TpuPoint]) -> Estimate:
    """Seconds per MAC of a cached dense layer from the slopes of latency against MACs within each source that
    varies MACs at a fixed host and link (one point per source cannot separate compute from overhead). Central:
    the best-ranked such source's slope; range: the envelope of all, floored at the MAC array's peak."""
    slopes = []
    for src, ps in sorted(_by_src([p for p in points if p.slope and p.regime == "cached" and not p.floor]).items()):
        for link in sorted({p.link for p in ps}):
            _, b = source_line([p for p in ps if p.link == link], PRIOR_S_PER_MAC)
            if b is not None:
                slopes.append((min(p.tier for p in ps), src, max(b, PEAK_S_PER_MAC)))
    if not slopes:
        return Estimate(PRIOR_S_PER_MAC / FALLBACK_SPREAD, PRIOR_S_PER_MAC, PRIOR_S_PER_MAC * FALLBACK_SPREAD,
                        "no source varies MACs at a fixed host and link: 1/8 of the MAC array (assumption)")
    best = min(slopes)[2]
    vals = [v for *_, v in slopes]
    return Estimate(min(vals), best, max(vals), "slopes within sources (" + ", ".join(
        f"{s} {v * 1e12:.1f} ps/MAC" for _, s, v in slopes) + "); central: the best-ranked; range: their envelope, "
        f"floored at the array's peak {PEAK_S_PER_MAC * 1e12:.2f} ps/MAC", {s: v for _, s, v in slopes})


@dataclass
class CachedModel:
    """The cached regime across hosts: compute rate, the device part of the invoke overhead per link, the host
    part per host class, and the margin from each source's scatter about its own line."""

    s_per_mac: Estimate
    device: dict[str, Estimate]  # link -> the device part (link + Edge TPU)
    hosts: dict[str, Estimate]  # host class -> the host part (CPU class, runtime and API)
    others: dict[str, Estimate]  # sources whose host is not stated: their own excess over the device part
    margin: float
    margin_basis: str

    def host_range(self, host: str | None) -> tuple[float, float, float]:
        """(low, central, high) host part: the host's own, or with no host the envelope across hosts and the
        sources whose host is not stated (central: the reference host's)."""
        if host is not None:
            e = self.hosts[host]
            return e.low, e.value, e.high
        every = list(self.hosts.values()) + list(self.others.values())
        ref = self.hosts.get(REFERENCE_HOST) or min(self.hosts.values(), key=lambda e: e.value)
        return min(e.low for e in every), ref.value, max(e.high for e in every)

    def host_part(self, host: str | None, end: str) -> float:
        """One end ("low", "value", "high") of ``host_range``."""
        return self.host_range(host)[ENDS.index(end)]

    def predict(self, macs: int, link: str, host: str | None = None, end: str = "value") -> float:
        t = self.device[link].end(end) + self.host_part(host, end) + macs * self.s_per_mac.end(end)
        return _banded(t, self.margin, end)


def cached_model(points: list[TpuPoint]) -> CachedModel:
    """The cached regime from every cached point and host floor (``published_points(cached_band=True)``).

    No public source splits one invoke into host and device time, so the split is relative: a link's device part
    is the smallest intercept any source shows on it (the fastest host's: its host part is 0), and each host's
    part is its sources' excess over it, point by point (the envelope). USB 2's device part is USB 3's plus the
    difference one source (same host) shows between the two links; PCIe's is USB 3's (Coral's table times
    compute-bound models equally on the Dev Board and over USB 3)."""
    s = cached_slopes(points)
    cached = [p for p in points if p.regime == "cached"]
    lines: dict[tuple[str, str], tuple[float, float | None]] = {}
    for src, ps in _by_src([p for p in cached if not p.floor]).items():
        for link in {p.link for p in ps}:
            lines[(src, link)] = source_line([p for p in ps if p.link == link], s.value)
    device: dict[str, Estimate] = {}
    usb3 = [(a, src) for (src, lk), (a, _) in lines.items() if lk == "usb3"]
    if usb3:
        a, src = min(usb3)
        device["usb3"] = Estimate(a, a, a, f"the smallest cached intercept on USB 3 ({src}'s)", {src: a})
    else:
        a = 2.15e-4
        device["usb3"] = Estimate(a, a, a, "no USB 3 source: assumption")
    both = [src for (src, lk) in lines if lk == "usb2" and (src, "usb3") in lines]
    if both:
        d = lines[(both[0], "usb2")][0] - lines[(both[0], "usb3")][0]
        v = device["usb3"].value + d
        device["usb2"] = Estimate(v, v, v, f"USB 3's + {d * 1e3:.3f} ms, {both[0]}'s difference between USB 2 and "
                                           "USB 3 on one host", {both[0]: d})
    else:
        v = device["usb3"].value / USB2_OVER_USB3 ** 0.1
        device["usb2"] = Estimate(v, v, v, "USB 3's (no source on both links): assumption")
    v = device["usb3"].value
    device["pcie"] = Estimate(v, v, v, "USB 3's: Coral's benchmark table times compute-bound models equally on the "
                                       "Dev Board (PCIe) and over USB 3", {"CORAL": 0.0})
    excess: dict[str, list[tuple[int, str, float]]] = {}
    for p in cached:
        if p.link not in device:
            continue
        b = lines.get((p.src, p.link), (0.0, None))[1]
        x = max(0.0, p.latency_s - p.macs * (s.value if b is None else max(b, PEAK_S_PER_MAC))
                - device[p.link].value)
        excess.setdefault(p.host or f"source {p.src}", []).append((p.tier, p.src, x))
    hosts, others = {}, {}
    for h, xs in excess.items():
        best_tier = min(t for t, _, _ in xs)
        value = float(np.median([x for t, _, x in xs if t == best_tier]))
        e = Estimate(min(x for *_, x in xs), value, max(x for *_, x in xs),
                     f"{len(xs)} point(s) of {', '.join(sorted({src for _, src, _ in xs}))}: the excess over the "
                     "device part", {src: x for _, src, x in xs})
        (hosts if not h.startswith("source ") else others)[h] = e
    if "rpi4" not in hosts and all(n in hosts for n in RPI4_NEIGHBOURS):
        n = [hosts[k] for k in RPI4_NEIGHBOURS]
        hosts["rpi4"] = Estimate(min(e.low for e in n), float(np.mean([e.value for e in n])), max(e.high for e in n),
                                 "assumption: no public source; the envelope of the Jetson Nano's and the Pi 5's "
                                 "host parts (a Cortex-A72 sits between their A57 and A76)")
    res = []
    for (src, link), (a, b) in lines.items():
        ps = [p for p in cached if p.src == src and p.link == link and not p.floor]
        if len(ps) < 2:
            continue
        res += [abs(p.latency_s / (a + p.macs * (s.value if b is None else b)) - 1) for p in ps]
    m = float(median(res)) if res else 0.0
    return CachedModel(s, device, hosts, others, m, f"median distance of {len(res)} cached points from their own "
                                                    "source's line")


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


# ----------------------------------------------------------------------------
# Leave-one-source-out coverage of the envelope band, per regime and per link
# ----------------------------------------------------------------------------

MIN_SOURCES = 3  # a regime resting on fewer sources is low confidence
MIN_COVERAGE = 0.8


def envelope_report(cached_points: list[TpuPoint] | None = None, form_points: list[TpuPoint] | None = None,
                    coral: dict | None = None) -> dict:
    """Each source's points scored by the band built without it, with no host given (the band spans the hosts).

    Cached: ``cached_model`` refitted without the source. Streamed: the streamed form (``constants_table``)
    refitted without it, with the invoke overhead's host part spanning the hosts of the cached model built
    without it. Rows per regime and per link: sources, points, coverage, median half-width (of the band on all
    sources, as a share of its central value), and whether the regime is low confidence (fewer than
    ``MIN_SOURCES`` sources or coverage below ``MIN_COVERAGE``). Floors (shape unknown) are not scored."""
    cached_points = cached_points if cached_points is not None else published_points(cached_band=True)
    form_points = form_points if form_points is not None else published_points()
    full = cached_model(cached_points)
    scored = []
    for src in sorted({p.src for p in cached_points if p.regime == "cached" and not p.floor}):
        held = cached_model([p for p in cached_points if p.src != src])
        for p in (q for q in cached_points if q.src == src and q.regime == "cached" and not q.floor):
            if p.link not in held.device:
                continue
            lo, c, hi = (held.predict(p.macs, p.link, None, e) for e in ENDS)
            flo, fc, fhi = (full.predict(p.macs, p.link, None, e) for e in ENDS)
            scored.append({"src": src, "regime": "cached", "link": p.link, "measured_s": p.latency_s,
                           "held_out_low_s": lo, "held_out_high_s": hi, "inside": lo <= p.latency_s <= hi,
                           "half_width_pct": (fhi - flo) / 2 / fc * 100})
    table = constants_table(form_points, coral)
    for src in sorted({p.src for p in form_points if p.regime == "streamed"}):
        rest = [p for p in form_points if p.src != src]
        held = constants_table(rest, coral) if rest else None
        held_c = cached_model([p for p in cached_points if p.src != src])
        for p in (q for q in form_points if q.src == src and q.regime == "streamed"):
            if held is None or ("rate_Bps", p.link) not in held:
                continue
            lo, hi = (_streamed_point(held, held_c, p, e) for e in ("low", "high"))
            flo, fc, fhi = (_streamed_point(table, full, p, e) for e in ENDS)
            scored.append({"src": src, "regime": "streamed", "link": p.link, "measured_s": p.latency_s,
                           "held_out_low_s": lo, "held_out_high_s": hi, "inside": lo <= p.latency_s <= hi,
                           "half_width_pct": (fhi - flo) / 2 / fc * 100})
    rows = []
    for regime in REGIMES:
        sel = [r for r in scored if r["regime"] == regime]
        for link in [None] + [lk for lk in LINKS if any(r["link"] == lk for r in sel)]:
            rs = [r for r in sel if link is None or r["link"] == link]
            if not rs:
                continue
            n_src = len({r["src"] for r in rs})
            cov = sum(r["inside"] for r in rs) / len(rs)
            rows.append({"regime": regime, "link": link or "all", "sources": n_src, "points": len(rs),
                         "coverage": cov, "median_half_width_pct": float(median(r["half_width_pct"] for r in rs)),
                         "low_confidence": n_src < MIN_SOURCES or cov < MIN_COVERAGE})
    return {"method": "leave one source out; no host given (the band spans the hosts)", "rows": rows,
            "points": scored}


def _streamed_point(table: dict[tuple, Estimate], cm: CachedModel, p: TpuPoint, end: str) -> float:
    """A streamed point: the streamed form's transfer and streaming cost plus the invoke overhead split into the
    device part of the link and the host part spanning the hosts."""
    fast = {"low": "high", "value": "value", "high": "low"}[end]
    t = (cm.device[p.link].end(end) + cm.host_part(None, end) + p.macs * cm.s_per_mac.end(end)
         + table[("stream_overhead_s", p.link)].end(end)
         + (p.streamed_bytes + p.io_bytes) / table[("rate_Bps", p.link)].end(fast))
    return _banded(t, table[("band_margin", "streamed")].value, end)


ENVELOPE_HEADER = ("| regime | link | sources | points | coverage | median half-width | confidence |",
                   "|---|---|---|---|---|---|---|")


def envelope_table(report: dict | None = None) -> list[str]:
    """``envelope_report``'s rows as the Markdown table the README and docs/tpu-twin.md carry (a test checks them
    against it) and ``edgecheck calibrate --published`` prints."""
    rows = (report or envelope_report())["rows"]
    return [*ENVELOPE_HEADER, *(
        f"| {r['regime']} | {r['link']} | {r['sources']} | {r['points']} | {r['coverage'] * 100:.0f} % | "
        f"{r['median_half_width_pct']:.0f} % | {'low' if r['low_confidence'] else 'medium'} |" for r in rows)]


def regime_confidence(report: dict | None = None) -> dict[str, dict]:
    """regime -> its row over all links (sources, points, coverage, low_confidence)."""
    report = report or envelope_report()
    return {r["regime"]: r for r in report["rows"] if r["link"] == "all"}


HOST_NAMES = {"x86-64": "x86-64 desktop", "rpi4": "Raspberry Pi 4", "rpi5": "Raspberry Pi 5",
              "coral-dev-board": "Coral Dev Board (i.MX 8M)", "jetson-nano": "Jetson Nano"}


def cached_constants(data: dict | None = None) -> dict:
    """The constants.json entries the cached model sets: tpu.matvec_utilization (from slopes), each link's device
    part, each host's part, the cached margin and its confidence (``envelope_report``)."""
    data = data or published_data()
    pts = published_points(data, cached_band=True)
    cm = cached_model(pts)
    conf = regime_confidence(envelope_report(pts, published_points(data), data.get("coral_table")))
    cite = {k: v["citation"] for k, v in data["sources"].items()}

    def util(s: float) -> float:
        return 1 / (s * 4096 * 500e6)

    s = cm.s_per_mac
    out: dict = {"matvec_utilization": {
        "value": round(util(s.value), 7), "low": round(util(s.high), 7), "high": round(util(s.low), 7),
        "kind": "fitted", "confidence": "medium",
        "source": f"cached compute rate {s.value * 1e12:.1f} ps per MAC at 500 MHz from {s.basis}: "
                  + "; ".join(f"{k}: {cite[k]}" for k in s.sources) + "; fitted by edgecheck.twins.tpufit.cached_slopes"
                  " on edgecheck/twins/published_tpu_latency.json"}}
    out["links"] = {lk: {"overhead_s": {
        "value": round(e.value, 10), "low": round(e.low, 10), "high": round(e.high, 10), "kind": "derived",
        "confidence": "low",
        "source": f"the device part of the invoke overhead (link + Edge TPU): {e.basis}; no public source splits one "
                  "invoke into host and device time, so the split is relative (the fastest host's part is 0); "
                  + "; ".join(f"{k}: {cite[k]}" for k in e.sources) + "; edgecheck.twins.tpufit.cached_model"}}
        for lk, e in cm.device.items()}
    out["hosts"] = {}
    for h in TPU_HOSTS:
        e = cm.hosts[h]
        srcs = "; ".join(f"{k}: {cite[k]}" for k in e.sources) or \
            "; ".join(f"{k}: {cite[k]}" for n in RPI4_NEIGHBOURS for k in cm.hosts[n].sources)
        out["hosts"][h] = {"name": HOST_NAMES[h], "overhead_s": {
            "value": round(e.value, 10), "low": round(e.low, 10), "high": round(e.high, 10),
            "kind": "assumption" if h == "rpi4" else "fitted", "confidence": "low" if h == "rpi4" else "medium",
            "source": f"host part of the invoke overhead (CPU class, runtime and API): {e.basis}; {srcs}; "
                      "edgecheck.twins.tpufit.cached_model"}}
    c, st = conf["cached"], conf.get("streamed")
    out["band"] = {"cached_margin": {
        "value": round(cm.margin, 6), "kind": "fitted", "confidence": "low" if c["low_confidence"] else "medium",
        "source": f"{cm.margin_basis} (edgecheck.twins.tpufit.cached_model); the cached band spans every host with "
                  f"no --tpu-host: leave-one-source-out coverage {c['coverage'] * 100:.0f} % over {c['sources']} "
                  f"sources and {c['points']} points (envelope_report)"}}
    if st:
        out["band"]["streamed_confidence"] = "low" if st["low_confidence"] else "medium"
    out["band"]["cached_confidence"] = "low" if c["low_confidence"] else "medium"
    for regime, r in (("cached", c), ("streamed", st)):
        if r:
            out["band"][f"{regime}_why"] = (f"leave-one-source-out coverage {r['coverage'] * 100:.0f} % over "
                                            f"{r['sources']} sources and {r['points']} points; median half-width "
                                            f"{r['median_half_width_pct']:.0f} %")
    return out
