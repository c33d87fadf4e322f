"""The rows of a run as people read them: one structured row per entry (``result_rows``), which the terminal
table, the CLI and the HTML report all format."""
from __future__ import annotations

from dataclasses import dataclass

from edgecheck.results import Entry, Run
from edgecheck.textfmt import fmt_bytes, fmt_count, fmt_energy, fmt_interval, fmt_time, text_table

CI_LABEL, BAND_LABEL, SPREAD_LABEL = "95 % CI", "twin band", "spread over windows"


@dataclass(frozen=True)
class Interval:
    """A figure's uncertainty: measured (95 % interval across processes or windows) or simulated (the twin's
    band, low to high)."""

    low: float
    high: float
    label: str  # CI_LABEL, BAND_LABEL or SPREAD_LABEL


def _band(obj: dict) -> tuple[float, float] | None:
    """``{"low", "central", "high"}`` or a ``[low, high]`` pair, as a (low, high) pair."""
    if isinstance(obj, dict) and obj.get("low") is not None and obj.get("high") is not None:
        return float(obj["low"]), float(obj["high"])
    if isinstance(obj, (list, tuple)) and len(obj) == 2 and all(isinstance(v, (int, float)) for v in obj):
        return float(obj[0]), float(obj[1])
    return None


def latency_interval(e: Entry) -> Interval | None:
    """The 95 % interval of the median across processes (measured), else the twin's band (simulated)."""
    lat = e.latency
    if lat is None:
        return None
    ci = _band(lat.extra.get("ci95"))
    if ci:
        return Interval(*ci, CI_LABEL)
    band = _band(lat.extra.get("band"))
    return Interval(*band, BAND_LABEL) if band else None


def energy_interval(e: Entry) -> Interval | None:
    """The 95 % interval over windows (measured), the twin's band (simulated), or the windows' spread."""
    en = e.energy
    if en is None or en.total_j is None:
        return None
    ci = _band(en.extra.get("ci95"))
    if ci:
        return Interval(*ci, CI_LABEL)
    band = _band(en.extra.get("band")) or _band(en.extra.get("band_j"))
    if band:
        return Interval(*band, BAND_LABEL)
    spread = _band(en.spread_j)
    return Interval(*spread, SPREAD_LABEL) if spread and spread[0] != spread[1] else None


@dataclass(frozen=True)
class ResultRow:
    """One (architecture, device) entry with every figure a reader looks at, unformatted."""

    model: str
    device: str
    kind: str  # measured or simulated
    ok: bool
    error: str | None
    params: int | None
    macs: int | None
    weight_bytes: int | None
    f1: float | None
    f1_ci: tuple[float, float] | None
    latency_s: float | None
    latency_interval: Interval | None
    unstable: str | None  # why the latency is too noisy to decide on
    load_s: float | None
    first_invoke_s: float | None
    memory_bytes: int | None  # the model's own peak above a fresh worker's
    agreement: float | None  # predictions equal to the build's
    energy_j: float | None
    energy_interval: Interval | None
    energy_provenance: str | None
    near_limit: str | None = None  # the twin's two outcomes for a model near the Edge TPU's on-chip limit

    @property
    def source(self) -> str:
        return self.kind if self.ok else f"FAILED: {self.error or ''}"


def result_rows(results: Run | dict) -> list[ResultRow]:
    """Every entry of the run (failed ones too), smallest model first."""
    entries = sorted(Run.coerce(results).entries,
                     key=lambda e: (e.model.size.get("params") or 0, e.model.name, e.device.label))
    out = []
    for e in entries:
        size = e.model.size
        f1_ci = e.model.metric("int8", "macro_f1_ci95")
        out.append(ResultRow(
            model=e.model.name, device=e.device.label, kind=e.kind, ok=e.ok, error=e.error,
            params=size.get("params"), macs=size.get("macs"), weight_bytes=size.get("weight_bytes"),
            f1=e.model.metric("int8", "macro_f1"), f1_ci=tuple(f1_ci) if f1_ci else None,
            latency_s=e.latency.median if e.latency else None, latency_interval=latency_interval(e),
            unstable=e.latency.extra.get("unstable") if e.latency else None,
            load_s=e.load_seconds, first_invoke_s=e.first_invoke_seconds,
            memory_bytes=(e.extra.get("memory") or {}).get("model_rss_bytes"),
            agreement=e.on_device.agreement_with_build if e.on_device else None,
            energy_j=e.energy.total_j if e.energy else None, energy_interval=energy_interval(e),
            energy_provenance=e.energy.provenance if e.energy else None,
            near_limit=((e.twin or {}).get("near_limit") or {}).get("text")))
    return out


def _energy(r: ResultRow) -> str:
    """Energy per inference, with the twin's band when it has one (a measured interval is in the report)."""
    iv = r.energy_interval
    band = " " + fmt_interval(iv.low, iv.high, fmt_energy) if iv and iv.label == BAND_LABEL else ""
    return fmt_energy(r.energy_j) + band


def results_table(results: Run | dict) -> list[str]:
    """One row per (architecture, device): size, accuracy with its interval, latency with its interval across
    processes (or the twin's band), load time, first invoke, the model's own memory, agreement with the build,
    energy, and where it came from. A figure too noisy to decide on is marked."""
    header = ("model", "params", "weights", "F1 int8 [95 % CI]", "device", "median [95 % CI]", "load", "1st inv",
              "memory", "agree", "energy", "source")
    rows, notes = [], []
    for r in result_rows(results):
        f1_text = "-" if r.f1 is None else f"{r.f1:.3f}" + (f" [{r.f1_ci[0]:.2f}, {r.f1_ci[1]:.2f}]" if r.f1_ci
                                                             else "")
        median = "-"
        if r.latency_s is not None:
            iv = r.latency_interval
            median = fmt_time(r.latency_s) + (" " + fmt_interval(iv.low, iv.high, fmt_time) if iv else "")
            if r.near_limit:
                median += " ~"
                notes.append(f"~ {r.model} on {r.device}: {r.near_limit}")
            if r.unstable:
                median += " !"
                notes.append(f"! {r.model} on {r.device}: unstable ({r.unstable})")
        source = r.source if r.ok else f"FAILED: {(r.error or '')[:40]}"
        rows.append((r.model, fmt_count(r.params), fmt_bytes(r.weight_bytes), f1_text, r.device, median,
                     fmt_time(r.load_s), fmt_time(r.first_invoke_s),
                     "-" if r.memory_bytes is None else "+" + fmt_bytes(r.memory_bytes),
                     "-" if r.agreement is None else f"{r.agreement:.0%}", _energy(r), source))
    if not rows:
        return ["(no results)"]
    legend = ["median: seconds per invoke; measured: the median over rounds of fresh processes with the 95 % "
              "interval of the median across processes; simulated: the twin's central value with its band [low, "
              "high]; memory: the model's own peak above a fresh worker's; agree: predictions equal to the build's; "
              "! marks a figure too noisy to decide on; ~ a model near the Edge TPU's on-chip limit (both outcomes "
              "below the table)"]
    return text_table(header, rows, right={1, 2, 5, 6, 7, 8, 9, 10}, rule=True) + notes + legend
