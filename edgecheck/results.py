"""The results of a run: typed entries, one JSON file per run, and the one reader every stage uses.

A run is a header (what ran, where, with which artifacts) and a list of
entries, one per (model, device configuration): raw samples, their statistics,
accuracy, energy and provenance. The dataclasses refuse values no consumer
could use when they are created (as pyperf's ``Run`` does), the JSON Schema is
checked on save and on load, and an older file is migrated on load. The file
is rewritten atomically after every entry, so a crash keeps every finished one.

Consumers read results through ``rows()`` (one flat ``Row`` per entry) or the
typed ``Entry`` fields; nobody walks raw key paths.
"""
from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgecheck.errors import EdgecheckError, one_line
from edgecheck.files import append_json_line, atomic_write_json, load_json, strict_json, upgrade
from edgecheck.stats import summarize

if TYPE_CHECKING:
    from edgecheck.files import FileLock

RESULTS_SCHEMA = "edgecheck.results/2"
SCHEMA_FILE = Path(__file__).with_name("results.schema.json")
MEASURED, SIMULATED = "measured", "simulated"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _plain(obj: Any) -> Any:
    """A dataclass as JSON data, without the optional fields that are unset (None)."""
    if hasattr(obj, "to_json"):
        return obj.to_json()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _from(cls, data: dict, where: str):
    """``cls(**data)`` for the dataclass's own keys; unknown keys are kept in ``extra`` when it has one."""
    if not isinstance(data, dict):
        raise EdgecheckError(f"{where}: expected an object, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    known = {k: v for k, v in data.items() if k in names and k != "extra"}
    if "extra" in names:
        known["extra"] = {k: v for k, v in data.items() if k not in names}
    return cls(**known)


def _to(obj, omit_none: bool = True) -> dict:
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        if f.name == "extra":
            out.update(_plain(v))
        elif v is not None or not omit_none:
            out[f.name] = _plain(v)
    return out


def _number(v, where: str) -> float:
    """A finite real number (never a bool), as the file gave it (an int stays an int, so files round-trip)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
        raise EdgecheckError(f"{where}: must be a finite number, got {one_line(repr(v))[:60]}")
    return v


def _whole(v) -> bool:
    """A whole number as JSON Schema's "integer" counts it (2.0 is one), never a bool."""
    return not isinstance(v, bool) and (isinstance(v, int) or (isinstance(v, float) and v.is_integer()))


def _optional_number(v, where: str) -> float | None:
    return None if v is None else _number(v, where)


FIGURE_RANGE = (1e-12, 1e6)  # seconds, joules, watts: the schema's "positive"


def _positive(v, where: str) -> float:
    """A latency, an energy or a power: > 0 and within ``FIGURE_RANGE``, since comparisons divide by it and take
    its logarithm (a ratio of 1e299 to 5e-324 is no figure)."""
    _number(v, where)
    lo, hi = FIGURE_RANGE
    if not v > 0:
        raise EdgecheckError(f"{where}: must be > 0, got {one_line(repr(v))[:60]}")
    if not lo <= v <= hi:
        raise EdgecheckError(f"{where}: must lie between {lo:g} and {hi:g}, got {one_line(repr(v))[:60]}")
    return v


def _optional_positive(v, where: str) -> float | None:
    return None if v is None else _positive(v, where)


def _positive_record(cls):
    """A band or interval of a figure that must be positive (a latency, an energy): its low end > 0."""
    def check(v, where: str):
        rec = _typed(cls, v, where)
        if rec is not None:
            for end in ("low", "central", "high"):
                if hasattr(rec, end):
                    _positive(getattr(rec, end), f"{where}.{end}")
        return rec

    return check


def _positive_pair(v, where: str) -> list | None:
    """``[low, high]`` of positive figures (the windows' spread), kept as the list the file gave."""
    if v is None:
        return None
    _positive_record(Interval)(v, where)
    return v


def _optional_count(v, where: str) -> int | None:
    """A whole number >= 0, or None (the schema's ``count``)."""
    if v is None:
        return None
    if not _whole(v) or v < 0:
        raise EdgecheckError(f"{where}: must be a whole number >= 0, got {one_line(repr(v))[:60]}")
    return v


def _optional_text(v, where: str) -> str | None:
    if v is not None and not isinstance(v, str):
        raise EdgecheckError(f"{where}: must be text, got {type(v).__name__}")
    return v


def _typed(cls, value, where: str):
    """``value`` as a ``cls`` record: kept when it already is one, else built from its JSON form; a bad value
    raises one EdgecheckError line naming the field (``where``)."""
    if value is None or isinstance(value, cls):
        return value
    try:
        return cls.from_json(value)
    except EdgecheckError as e:
        raise EdgecheckError(f"{where}: {e}") from None
    except TypeError as e:  # a missing or unexpected key of the record
        raise EdgecheckError(f"{where}: {e}") from None


def _processes(v, where: str) -> list[ProcessTiming] | None:
    if v is None:
        return None
    if not isinstance(v, (list, tuple)):
        raise EdgecheckError(f"{where}: expected a list, got {type(v).__name__}")
    return [_typed(ProcessTiming, p, f"{where}/{i}") for i, p in enumerate(v)]


def _texts(v, where: str) -> list[str] | None:
    if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
        raise EdgecheckError(f"{where}: expected a list of text")
    return v


def _record(cls):
    return lambda v, where: _typed(cls, v, where)


class _Checked:
    """For the mutable records (stages fill them in after creating them): every field named in ``_CHECKED`` is
    checked, and built from its JSON form, whenever it is set, at creation as later; so a bad value is refused
    where it is made, never by the reader that trips on it."""

    _CHECKED: ClassVar[dict[str, Callable[[Any, str], Any]]] = {}
    _NAME: ClassVar[str] = ""

    def __setattr__(self, name: str, value: Any) -> None:
        check = self._CHECKED.get(name)
        super().__setattr__(name, value if check is None else check(value, f"{self._NAME}.{name}"))


@dataclass(frozen=True)
class Interval:
    """A figure's interval [low, high] (a 95 % interval, a band's ends, the spread over windows): finite and
    ordered, so a reader can compare and divide by it without checking. JSON: ``[low, high]``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        _number(self.low, "interval low")
        _number(self.high, "interval high")
        if self.low > self.high:
            raise EdgecheckError(f"interval: low {self.low!r} > high {self.high!r}")

    @classmethod
    def from_json(cls, data) -> Interval:
        if not isinstance(data, (list, tuple)) or len(data) != 2:
            raise EdgecheckError(f"interval: expected [low, high], got {one_line(repr(data))[:60]}")
        return cls(data[0], data[1])

    def to_json(self) -> list:
        return [self.low, self.high]


@dataclass(frozen=True)
class Band:
    """A twin's band beside its prediction: what its constants' ranges and the compiler's possible allocations
    allow, low <= central <= high (central = the prediction). JSON: ``{"low", "central", "high"}``."""

    low: float
    central: float
    high: float

    def __post_init__(self) -> None:
        for name in ("low", "central", "high"):
            _number(getattr(self, name), f"band {name}")
        if not self.low <= self.central <= self.high:
            raise EdgecheckError(f"band: expected low <= central <= high, got {self.low!r}, {self.central!r}, "
                                 f"{self.high!r}")

    @classmethod
    def from_json(cls, data) -> Band:
        if not isinstance(data, dict) or set(data) != {"low", "central", "high"}:
            raise EdgecheckError(f"band: expected an object with exactly low, central and high, got "
                                 f"{one_line(repr(data))[:60]}")
        return cls(data["low"], data["central"], data["high"])

    def to_json(self) -> dict:
        return {"low": self.low, "central": self.central, "high": self.high}

    @property
    def interval(self) -> Interval:
        return Interval(self.low, self.high)


@dataclass(frozen=True)
class ProcessTiming:
    """One fresh worker process's timing of a model: its median is one observation of the variance between
    processes, which the comparison and the claims' resampling count."""

    median: float
    process: int | None = None
    position: int | None = None  # where the model came in this process's shuffled order
    rounds: int | None = None
    iterations: int | None = None
    short_rounds: int | None = None
    # guards on a board (worker.guards): why this process was measured once more (its first attempt hot or
    # throttled), and why even that one cannot be trusted; a model with an unstable process is never red
    repeated: str | None = None
    unstable: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _positive(self.median, "median")
        if self.process is not None and not _whole(self.process):
            raise EdgecheckError(f"process: must be a whole number, got {one_line(repr(self.process))[:60]}")
        for name in ("position", "rounds", "iterations", "short_rounds"):
            _optional_count(getattr(self, name), name)
        _optional_text(self.repeated, "repeated")
        _optional_text(self.unstable, "unstable")

    @classmethod
    def from_json(cls, data) -> ProcessTiming:
        return _from(cls, data, "process")

    def to_json(self) -> dict:
        return _to(self)


@dataclass(frozen=True)
class InProcess:
    """pytest-benchmark's own rounds, timed in the long-lived pytest process: kept beside the process-level
    figures (the verdicts use those)."""

    samples: list[float]
    iterations_per_round: int | None = None
    timer: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.samples, (list, tuple)):
            raise EdgecheckError(f"samples: expected a list, got {type(self.samples).__name__}")
        for i, s in enumerate(self.samples):
            _number(s, f"samples/{i}")
        _optional_count(self.iterations_per_round, "iterations_per_round")
        _optional_text(self.timer, "timer")

    @classmethod
    def from_json(cls, data) -> InProcess:
        return _from(cls, data, "in_process")

    def to_json(self) -> dict:
        return _to(self)


@dataclass(frozen=True)
class Memory:
    """A model's own memory: the peak RSS of a fresh process that loads and runs only it, above the same
    process's baseline before loading it."""

    peak_rss_bytes: int | None = None
    baseline_rss_bytes: int | None = None
    model_rss_bytes: int | None = None  # peak - baseline (may be negative when the allocator returns pages)
    measured: str | None = None  # how it was measured
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _optional_count(self.peak_rss_bytes, "peak_rss_bytes")
        _optional_count(self.baseline_rss_bytes, "baseline_rss_bytes")
        if self.model_rss_bytes is not None and not _whole(self.model_rss_bytes):
            raise EdgecheckError(f"model_rss_bytes: must be a whole number, got "
                                 f"{one_line(repr(self.model_rss_bytes))[:60]}")
        _optional_text(self.measured, "measured")

    @classmethod
    def from_json(cls, data) -> Memory:
        return _from(cls, data, "memory")

    def to_json(self) -> dict:
        return _to(self)


@dataclass(frozen=True)
class Instructions:
    """Instructions retired per invoke, counted under Valgrind (``--count-instructions``): deterministic where
    wall clock drifts, so runs of separate sessions compare on it. Either a count (``per_invoke``, the mean of
    ``blocks``: each block's instructions / ``invokes``) with its provenance, or ``unavailable``: why this host
    could not count (no Valgrind, an accelerator), which a comparison reports as not-testable."""

    per_invoke: float | None = None
    blocks: list[float] | None = None  # per invoke, each block counted separately (they check each other)
    invokes: int | None = None  # invokes per block
    warmup_invokes: int | None = None
    ll_misses_per_invoke: float | None = None  # simulated last-level misses (callgrind's cache simulation)
    tool: str | None = None  # callgrind
    valgrind: str | None = None  # valgrind --version
    kernel_path: str | None = None  # which kernels ran: the ones Valgrind allows (no AVX-512)
    xnnpack: bool | None = None
    seconds: float | None = None  # the counting process's wall time (every model of the device)
    provenance: str | None = None
    unavailable: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.per_invoke is None and not self.unavailable:
            raise EdgecheckError("instructions: either per_invoke or the reason it is unavailable")
        if self.per_invoke is not None:
            _number(self.per_invoke, "instructions.per_invoke")
            if self.per_invoke <= 0:
                raise EdgecheckError(f"instructions.per_invoke: must be > 0, got {self.per_invoke!r}")
            if not self.blocks or not isinstance(self.blocks, (list, tuple)):
                raise EdgecheckError("instructions.blocks: expected a non-empty list")
            for i, b in enumerate(self.blocks):
                _number(b, f"instructions.blocks/{i}")
        _optional_count(self.invokes, "instructions.invokes")
        _optional_count(self.warmup_invokes, "instructions.warmup_invokes")
        _optional_number(self.ll_misses_per_invoke, "instructions.ll_misses_per_invoke")
        _optional_number(self.seconds, "instructions.seconds")
        for name in ("tool", "valgrind", "kernel_path", "provenance", "unavailable"):
            _optional_text(getattr(self, name), f"instructions.{name}")

    @property
    def block_spread(self) -> float:
        """Relative spread of the blocks' per-invoke counts ((max - min) / mean): 0 when deterministic."""
        if not self.blocks or not self.per_invoke:
            return 0.0
        return (max(self.blocks) - min(self.blocks)) / self.per_invoke

    @classmethod
    def from_json(cls, data) -> Instructions:
        return _from(cls, data, "instructions")

    def to_json(self) -> dict:
        return _to(self)


@dataclass(frozen=True)
class Stats:
    """Robust summary of per-round samples (``stats.summarize``)."""

    n: int
    min: float
    max: float
    mean: float
    median: float
    stddev: float | None = None
    q1: float | None = None
    q3: float | None = None
    iqr: float | None = None
    cv: float | None = None
    spread_min: float | None = None
    spread_max: float | None = None

    @classmethod
    def of(cls, samples: list[float]) -> Stats:
        return cls(**summarize(samples))

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Latency(_Checked):
    """Seconds per invoke: the raw per-round samples and their statistics (one value for a twin)."""

    samples: list[float]
    stats: Stats
    unit: str = "s"
    statistic: str | None = None
    rounds: int | None = None
    iterations_per_round: int | None = None
    warmup_rounds: int | None = None
    timer: str | None = None
    simulated: bool | None = None
    # measured in fresh processes (measure/sweep.py): one record per process, the median of their medians, its
    # 95 % interval, their robust CV, and why the figure is too noisy to decide on (if it is)
    processes: list[ProcessTiming] | None = None
    process_median: float | None = None
    ci95: Interval | None = None
    process_cv: float | None = None
    unstable: str | None = None
    errors: list[str] | None = None  # processes that failed (the others still count)
    in_process: InProcess | None = None  # pytest-benchmark's rounds in the pytest process (measure/local.py)
    band: Band | None = None  # simulated: the twin's band around its prediction
    extra: dict = field(default_factory=dict)  # keys this version does not know, kept for the next one

    _NAME: ClassVar[str] = "latency"
    _CHECKED: ClassVar[dict] = {"processes": _processes, "process_median": _optional_positive,
                                "ci95": _positive_record(Interval), "process_cv": _optional_number,
                                "unstable": _optional_text, "errors": _texts, "in_process": _record(InProcess),
                                "band": _positive_record(Band)}

    def __post_init__(self) -> None:
        if isinstance(self.stats, dict):
            self.stats = _from(Stats, self.stats, "latency.stats")
        if not isinstance(self.samples, (list, tuple)) or not self.samples:
            raise EdgecheckError("latency: no samples")
        for i, v in enumerate(self.samples):  # seconds per invoke: a ratio is taken of them
            _positive(v, f"latency.samples/{i}")
        _positive(self.stats.median, "latency.stats.median")
        if self.unit != "s":
            raise EdgecheckError(f"latency: unit must be 's', got {self.unit!r}")

    @classmethod
    def from_samples(cls, samples: list[float], **kw) -> Latency:
        samples = [float(s) for s in samples]
        return cls(samples=samples, stats=Stats.of(samples), rounds=kw.pop("rounds", len(samples)), **kw)

    @property
    def median(self) -> float:
        return self.stats.median

    def to_json(self) -> dict:
        return _to(self)


@dataclass
class Energy(_Checked):
    """Energy per inference (J): total (what a battery pays) and dynamic (minus idle), with provenance."""

    total_j: float | None
    provenance: str
    unit: str = "J"
    dynamic_j: float | None = None
    power_w: float | None = None
    spread_j: list[float] | None = None
    statistic: str | None = None
    windows: list[dict] | None = None
    idle: dict | None = None
    model_idle_w: float | None = None  # the board's idle watts in the power model a simulated or estimated figure
    #                                    came from (the session's twin constants); measured idle is in ``idle``
    probe: dict | None = None
    pending: bool | None = None
    note: str | None = None
    error: str | None = None  # why this entry's energy failed (e.g. the meter's log could not fill its windows)
    ci95: Interval | None = None  # measured: a 95 % interval of the figure
    # simulated: the twin's band around its energy per inference, its ends as an interval (written for older
    # readers), and the band of its power
    band: Band | None = None
    band_j: Interval | None = None
    power_band_w: Band | None = None
    extra: dict = field(default_factory=dict)  # keys this version does not know, kept for the next one

    _NAME: ClassVar[str] = "energy"
    _CHECKED: ClassVar[dict] = {"total_j": _optional_positive, "power_w": _optional_positive,
                                "dynamic_j": _optional_number, "spread_j": _positive_pair,
                                "ci95": _positive_record(Interval), "band": _positive_record(Band),
                                "band_j": _positive_record(Interval), "power_band_w": _positive_record(Band)}

    def __post_init__(self) -> None:
        if self.unit != "J":
            raise EdgecheckError(f"energy: unit must be 'J', got {self.unit!r}")

    @property
    def twin_band(self) -> Interval | None:
        """The ends of the twin's band: ``band``, or ``band_j`` in a file that has only that."""
        return self.band.interval if self.band is not None else self.band_j

    def to_json(self) -> dict:
        out = _to(self)
        out.setdefault("total_j", None)  # an energy object always says whether it has a figure
        return out


@dataclass
class OnDevice:
    """Accuracy of the model as the device computed it on the test windows."""

    accuracy: float | None = None
    macro_f1: float | None = None
    macro_f1_ci95: list[float] | None = None  # bootstrap interval over the test windows
    windows: int | None = None
    agreement_with_build: float | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return _to(self)


@dataclass
class ModelRecord:
    """What was measured: the model's identity (name and sha256), size, build metrics and compiler figures."""

    name: str
    sha256: str
    size: dict
    origin: str | None = None
    arch: dict | None = None
    metrics: dict | None = None
    compiler: dict | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = _to(self)
        for k in ("arch", "metrics", "compiler"):  # written as null when absent, as before
            out.setdefault(k, None)
        return out

    def metric(self, precision: str, name: str) -> float | None:
        """A build metric, e.g. ``metric("int8", "macro_f1")``."""
        return ((self.metrics or {}).get(precision) or {}).get(name)


@dataclass
class DeviceRecord:
    """Where it was measured (or which twin predicted it): the configuration results are matched on."""

    name: str
    kind: str
    key: str
    threads: int | None = None
    provenance: str | None = None
    metadata: dict | None = None
    role: str | None = None  # the platform the device plays in the claims (judge.roles); None for other kinds
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The device as tables show it, naming a remote board: tpu@dev-a (a labgrid place), tpu@mendel@coral."""
        m = self.metadata or {}
        place = (m.get("board") or {}).get("place")
        if place:
            return f"{self.name}@{place}"
        if m.get("remote"):
            return f"{self.name}@{str(m['remote']).removeprefix('ssh://')}"
        return self.name

    def to_json(self) -> dict:
        return _to(self)


@dataclass
class Entry(_Checked):
    """One (model, device configuration) of a run."""

    model: ModelRecord
    device: DeviceRecord
    kind: str
    provenance: str
    status: str
    started_utc: str | None = None
    error: str | None = None
    traceback: str | None = None
    latency: Latency | None = None
    energy: Energy | None = None
    on_device: OnDevice | None = None
    load_seconds: float | None = None
    first_invoke_seconds: float | None = None
    input: str | None = None
    frequency_mhz: dict | None = None
    peak_rss_bytes: int | None = None
    worker: dict | None = None
    twin: dict | None = None
    memory: Memory | None = None  # the model's own memory (a fresh process that runs only it)
    instructions: Instructions | None = None  # --count-instructions: counted under Valgrind, beside latency
    extra: dict = field(default_factory=dict)  # keys this version does not know, kept for the next one

    _NAME: ClassVar[str] = "entry"
    _CHECKED: ClassVar[dict] = {"memory": _record(Memory), "instructions": _record(Instructions)}

    def __post_init__(self) -> None:
        if self.kind not in (MEASURED, SIMULATED):
            raise EdgecheckError(f"entry kind must be {MEASURED!r} or {SIMULATED!r}, got {self.kind!r}")
        if self.status not in ("ok", "failed"):
            raise EdgecheckError(f"entry status must be 'ok' or 'failed', got {self.status!r}")

    @property
    def key(self) -> str:
        """A (model, device configuration) pair: what --resume and merge match on."""
        return f"{model_key(self.model.name, self.model.sha256)}|{self.device.key}"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        return _to(self)

    @classmethod
    def from_json(cls, data: dict, where: str = "entry") -> Entry:
        d = dict(data)
        d["model"] = _from(ModelRecord, d.get("model"), f"{where}.model")
        d["device"] = _from(DeviceRecord, d.get("device"), f"{where}.device")
        if d.get("latency") is not None:
            d["latency"] = _from(Latency, d["latency"], f"{where}.latency")
        if d.get("energy") is not None:
            d["energy"] = _from(Energy, d["energy"], f"{where}.energy")
        if d.get("on_device") is not None:
            d["on_device"] = _from(OnDevice, d["on_device"], f"{where}.on_device")
        return _from(cls, d, where)


def model_key(name: str, sha256: str) -> str:
    """A model as an entry's key names it: its name and the start of its hash."""
    return f"{name}@{sha256[:12]}"


def unique_entries(entries: list[Entry], where: str) -> list[Entry]:
    """One entry per (model, device configuration), in order. A repeat equal to the first is dropped, a failed
    entry gives way to an ok one (a model measured again after its board failed); two ok entries that differ are
    refused naming the entry, since keeping either would drop a measurement without a word."""
    out: dict[str, Entry] = {}
    for e in entries:
        seen = out.get(e.key)
        if seen is None or not seen.ok or seen.to_json() == e.to_json():
            out[e.key] = e if seen is None or not seen.ok or e.ok else seen
        elif e.ok:
            raise EdgecheckError(f"{where}: entry {one_line(e.key)[:120]} appears twice with different figures; "
                                 "keep one of them")
    return list(out.values())


def entry_key(entry: Entry | dict) -> str:
    """The key of a typed entry or of its JSON form."""
    if isinstance(entry, Entry):
        return entry.key
    return f"{entry['model']['name']}@{entry['model']['sha256'][:12]}|{entry['device']['key']}"


# ----------------------------------------------------------------------------
# A whole run
# ----------------------------------------------------------------------------


@dataclass
class Run:
    """A run's header (everything but the entries, kept as plain JSON data) and its typed entries."""

    header: dict
    entries: list[Entry] = field(default_factory=list)

    def to_json(self) -> dict:
        return {**self.header, "schema": RESULTS_SCHEMA, "entries": [e.to_json() for e in self.entries]}

    @classmethod
    def from_json(cls, data: dict, where: str = "results") -> Run:
        """Check ``data`` against the schema (migrating an older one) and type its entries."""
        if data.get("schema") in MIGRATIONS:
            data = MIGRATIONS[data["schema"]](data)
        validate(data, where)
        header = {k: v for k, v in data.items() if k != "entries"}
        try:
            entries = [Entry.from_json(e, f"{where}: entries/{i}") for i, e in enumerate(data["entries"])]
        except (TypeError, ValueError) as e:
            raise EdgecheckError(f"{where}: {e}") from None
        return cls(header, unique_entries(entries, where))

    @classmethod
    def coerce(cls, data: Run | dict) -> Run:
        """A typed run from either a ``Run`` or its JSON form (as tests and callers hold it)."""
        if isinstance(data, Run):
            return data
        d = dict(data)
        d.setdefault("schema", RESULTS_SCHEMA)
        d.setdefault("created_utc", "")
        return cls.from_json(d, "results")

    @property
    def artifacts(self) -> dict:
        return self.header.get("artifacts") or {}

    @property
    def dataset(self) -> dict:
        return self.artifacts.get("dataset") or {}

    @property
    def devices(self) -> list[dict]:
        return (self.header.get("run") or {}).get("devices", [])

    def ok_entries(self) -> list[Entry]:
        return [e for e in self.entries if e.ok]

    @property
    def synthetic(self) -> bool:
        """True when the run's dataset was generated (the collar generator), not recorded by sensors."""
        return bool(self.dataset.get("synthetic", self.dataset.get("name") == "collar"))

    @property
    def sweep(self) -> str:
        """"grid" (the paper's kind of sweep) or "models" (a --model list)."""
        return (self.header.get("run") or {}).get("sweep") or (
            "models" if self.artifacts.get("origin") == "user" else "grid")


def _migrate_1_to_2(data: dict) -> dict:
    """edgecheck.results/1 -> /2: the same layout; /2 adds keys (never renames them), and is typed on load."""
    return {**data, "schema": RESULTS_SCHEMA}


MIGRATIONS = {"edgecheck.results/1": _migrate_1_to_2}


def _numbers_fit(node, at: tuple = ()) -> tuple | None:
    """Where ``node`` holds a number no reader can compute with (infinite, NaN, or a whole number beyond 64 bits,
    as JSON allows and ``1e999`` parses to), or None."""
    if isinstance(node, float) and not math.isfinite(node):
        return at
    if isinstance(node, int) and not isinstance(node, bool) and abs(node) >= 2**63:
        return at
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return None
    for k, v in items:
        if isinstance(v, (dict, list, float, int)):
            found = _numbers_fit(v, at + (k,))
            if found is not None:
                return found
    return None


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


def validate(data: dict, where: str) -> None:
    """Check ``data`` against the packaged JSON Schema; the error names the file and the field."""
    import jsonschema

    bad = _numbers_fit(data)
    if bad is not None:
        at = "/".join(map(str, bad)) or "(top level)"
        raise EdgecheckError(f"{where}: not a valid results file at {at}: a number out of range (infinite, NaN or "
                             "beyond 64 bits)")

    err = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    if err is not None:
        at = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise EdgecheckError(f"{where}: not a valid results file at {at}: {err.message}")


def load(path: str | Path) -> Run:
    """Read, migrate and check a results file; a cut-off or foreign file gets a clear error."""
    data = load_json(path, RESULTS_SCHEMA, "results file", MIGRATIONS, kind="results")
    return Run.from_json(data, str(path))


BENCHMARK_KEY = "edgecheck"  # pytest-benchmark's saved JSON: the run's header at the top, each entry in extra_info
BENCHMARK_ENTRY = "edgecheck_entry"


def benchmark_header(run: Run) -> dict:
    """What edgecheck adds to pytest-benchmark's saved JSON (``--benchmark-autosave``/``-save``/``-json``) so that
    its storage can serve as a history: the run's header; the entries travel in each benchmark's ``extra_info``."""
    return {"schema": RESULTS_SCHEMA, "header": run.header}


def _is_benchmark_json(data: dict) -> bool:
    return "benchmarks" in data and "machine_info" in data and "schema" not in data


def run_from_benchmark_json(data: dict, where: str) -> Run:
    """A run rebuilt from one pytest-benchmark JSON file that edgecheck wrote: the header it added and the entries
    in the benchmarks' ``extra_info``. Only measured devices are timed by pytest-benchmark, so only their entries
    are there (what a wall-clock history needs). A file saved without edgecheck's fields is refused, naming it."""
    ours = data.get(BENCHMARK_KEY)
    benches = data.get("benchmarks")
    if not isinstance(ours, dict) or not isinstance(ours.get("header"), dict) or not isinstance(benches, list):
        raise EdgecheckError(f"{where}: a pytest-benchmark file without edgecheck's run header (saved by "
                             "pytest-benchmark alone, or by an edgecheck before 0.1's history support): "
                             "it cannot serve as a history")
    entries = [b["extra_info"][BENCHMARK_ENTRY] for b in benches
               if isinstance(b, dict) and isinstance(b.get("extra_info"), dict) and BENCHMARK_ENTRY in b["extra_info"]]
    if not entries:
        raise EdgecheckError(f"{where}: a pytest-benchmark file with no edgecheck entries in its benchmarks")
    header = {**ours["header"], "schema": ours.get("schema"),
              "source": f"pytest-benchmark storage: {where}"}
    return Run.from_json({**header, "entries": entries}, where)


def _benchmark_storage(p: Path) -> list[Path]:
    """pytest-benchmark's storage (``.benchmarks/<machine>/NNNN_*.json``) or one machine's folder of it; runs
    of two machines are refused (their drift is not one machine's)."""
    files = sorted(f for f in p.glob("*/[0-9][0-9][0-9][0-9]_*.json") if f.is_file())
    machines = sorted({f.parent.name for f in files})
    if len(machines) > 1:
        raise EdgecheckError(f"{p}: pytest-benchmark storage of {len(machines)} machines ({', '.join(machines)}): "
                             "a history is one machine's runs; pass one machine's folder")
    return files


def _load_history_file(f: Path) -> Run:
    data = load_json(f, None, "results file", kind="results")  # read once, then told apart
    if _is_benchmark_json(data):
        return run_from_benchmark_json(data, str(f))
    return Run.from_json(upgrade(data, f, RESULTS_SCHEMA, "results file", MIGRATIONS), str(f))


def load_history(path: str | Path) -> list[Run]:
    """Earlier runs to compare against, oldest first: one results file, or a folder of them (``*.json``, each
    checked; a file there that is not a results file is an error naming it), or pytest-benchmark's storage
    (``.benchmarks`` or one machine's folder in it, as ``--benchmark-autosave`` leaves it). The newest is the
    baseline; all of them measure the machine's run-to-run drift."""
    p = Path(path)
    if not p.is_dir():
        return [_load_history_file(p)]
    files = sorted(f for f in p.glob("*.json") if f.is_file()) or _benchmark_storage(p)
    if not files:
        raise EdgecheckError(f"{p}: a folder with no results files (*.json) in it, nor pytest-benchmark storage "
                             "(<machine>/NNNN_*.json)")
    runs = [_load_history_file(f) for f in files]
    return sorted(runs, key=lambda r: str(r.header.get("created_utc") or ""))


def save(run: Run, path: str | Path) -> None:
    """Write ``run`` atomically, after checking it against the schema (a file we cannot read back is never written)."""
    data = run.to_json()
    validate(data, f"{path} (not written)")
    atomic_write_json(path, data)


@dataclass
class ResultsFile:
    """The results file of the run under way, kept safe as entries arrive.

    Nothing is written until the first entry, so a run that measures nothing leaves the last run's
    files as they were. Each entry is then appended to a journal beside the file (``PATH.journal``,
    one JSON line, flushed to disk): constant cost per entry, and a crash keeps every finished entry.
    ``compact()`` (at the end of the session) writes the one self-contained results file and removes
    the journal; ``--resume`` reads both. A lock file (``PATH.lock``) keeps a second run from writing
    the same results at the same time."""

    path: Path
    run: Run
    lock: FileLock | None = None
    started: bool = False
    left_out: int = 0  # --resume: entries of the file whose model is not of this sweep

    @classmethod
    def start(cls, path: str | Path, header: dict, resume: bool = False,
              models: set[str] | None = None) -> ResultsFile:
        """The run's results file, locked; with ``resume`` the finished entries of an earlier run of this same
        sweep (file and journal) are kept, and entries of another grid or dataset are refused. ``models`` (the
        ``model_key`` of every model this sweep measures) keeps out an entry of any other model, such as a line
        added to the journal by hand; ``left_out`` counts them."""
        from edgecheck.files import FileLock

        path = Path(path)
        lock = FileLock.acquire(path, "--results")
        left_out = 0
        try:
            run = Run({"schema": RESULTS_SCHEMA, "created_utc": _now(), **header}, [])
            if resume:
                found = [e for e in _recover(path, header) if e.ok]
                run.entries = [e for e in found if models is None or model_key(e.model.name, e.model.sha256) in models]
                left_out = len(found) - len(run.entries)
        except BaseException:
            lock.release()
            raise
        rf = cls(path, run, lock, left_out=left_out)
        if run.entries:
            try:
                rf.compact()  # the recovered entries in one file again, before new ones are journalled
            except BaseException:
                rf.close()
                raise
        return rf

    @property
    def journal(self) -> Path:
        return self.path.with_name(self.path.name + ".journal")

    @property
    def entries(self) -> list[Entry]:
        return self.run.entries

    def done(self, key: str) -> Entry | None:
        return next((e for e in self.run.entries if e.key == key and e.ok), None)

    def add(self, entry: Entry) -> None:
        """Keep ``entry`` (replacing an earlier one of the same key) and append it to the journal."""
        data = entry.to_json()
        validate({**self.run.header, "schema": RESULTS_SCHEMA, "entries": [data]}, f"{self.path} (entry not written)")
        try:
            strict_json(data)  # refused before it is kept: a NaN must not block the later compaction
        except EdgecheckError as e:
            raise EdgecheckError(f"{self.path} (entry not written): {e}") from None
        self.run.entries = [e for e in self.run.entries if e.key != entry.key] + [entry]
        if not self.started:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            append_json_line(self.journal, {"header": self.run.header}, fresh=True)
            self.started = True
        append_json_line(self.journal, {"entry": data})

    def update(self, **header_fields) -> None:
        """Set header fields; written with the next compaction (never on a run that measured nothing)."""
        self.run.header.update(header_fields)
        if self.started:
            append_json_line(self.journal, {"header": self.run.header})

    def compact(self) -> None:
        """Write the one self-contained results file (atomically) and drop the journal."""
        self.run.header["updated_utc"] = _now()
        save(self.run, self.path)
        self.started = True
        try:
            self.journal.unlink()
        except FileNotFoundError:
            pass

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def _recover(path: Path, header: dict) -> list[Entry]:
    """The entries an earlier run of this sweep left in ``path`` and its journal (a crash leaves the journal).
    Entries of another grid, dataset or model set are refused, not mixed in."""
    entries: dict[str, Entry] = {}
    old_header = None
    if path.exists():
        old = load(path)
        old_header = old.header
        entries.update({e.key: e for e in old.entries})
    journal = path.with_name(path.name + ".journal")
    if journal.exists() or journal.is_symlink():
        from edgecheck.files import read_bytes

        text = read_bytes(journal, f"--resume: {journal}", "journal").decode("utf-8", "replace")
        for i, line in enumerate(text.splitlines()):
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a line cut off by a crash or a full disk: every other line is intact
            if not isinstance(item, dict):
                continue
            if "header" in item:
                old_header = item["header"]
            elif "entry" in item:
                try:
                    where = f"{journal}: line {i + 1}"
                    validate({"schema": RESULTS_SCHEMA, "created_utc": "", "entries": [item["entry"]]}, where)
                    e = Entry.from_json(item["entry"], where)
                except (EdgecheckError, TypeError, ValueError):
                    continue  # not an entry this edgecheck can use: measured again
                entries[e.key] = e
    if old_header is not None:
        mine, theirs = _sweep_identity(header), _sweep_identity(old_header)
        if mine != theirs:
            diff = ", ".join(f"{k}: {theirs.get(k)!r} there, {mine.get(k)!r} now" for k in mine
                             if mine.get(k) != theirs.get(k))
            raise EdgecheckError(f"--resume: {path} holds another sweep ({diff}); use another --results")
    return list(entries.values())


def _sweep_identity(header: dict) -> dict:
    """What must match for --resume to continue a run: grid, dataset and the artifacts measured."""
    art = header.get("artifacts") or {}
    return {"grid": (art.get("grid") or {}).get("architectures") or (header.get("run") or {}).get("grid"),
            "dataset": (art.get("dataset") or {}).get("sha256") or (header.get("run") or {}).get("dataset"),
            "models": art.get("models")}


# ----------------------------------------------------------------------------
# The one reader: a flat row per entry
# ----------------------------------------------------------------------------


CI_LABEL, BAND_LABEL, SPREAD_LABEL = "95 % CI", "twin band", "spread over windows"


@dataclass(frozen=True)
class Uncertainty:
    """A figure's uncertainty as a row shows it: measured (95 % interval across processes or windows, or the
    windows' spread) or simulated (the twin's band, low to high), with which of them it is."""

    low: float
    high: float
    label: str  # CI_LABEL, BAND_LABEL or SPREAD_LABEL

    @property
    def pair(self) -> tuple[float, float]:
        return self.low, self.high


@dataclass(frozen=True)
class Row:
    """One (model, device) entry of a run, flattened: what the claims, the chart, the tables and the report read,
    unformatted. ``rows()`` gives the ok entries; ``rows(run, failed=True)`` every entry."""

    model: str
    device: str  # the device's name (tpu, tpu-sim, cpu): what roles and the chart match on
    kind: str  # measured or simulated
    params: int  # 0 when the file does not say
    macs: int
    param_bytes: int
    latency_s: float | None
    energy_j: float | None
    f1_int8: float | None
    f1_float: float | None
    test_windows: int | None
    streamed_bytes: int | None
    layer_sizes: tuple[int, ...] = ()
    sha256: str = ""
    latency_interval: Uncertainty | None = None  # measured: 95 % interval of the median across processes;
    #                                              simulated: the twin's band (latency.band)
    latency_processes: tuple[float, ...] = ()  # per-process medians (measured, process-level statistics)
    energy_interval: Uncertainty | None = None  # measured: 95 % interval or the windows' spread; simulated: band
    f1_int8_ci: tuple[float, float] | None = None  # bootstrap interval over test windows
    f1_float_ci: tuple[float, float] | None = None
    unstable: str | None = None  # why the measurement is too noisy to decide on, if it is
    role: str | None = None  # the platform its device plays in the claims, as its kind recorded it (judge.roles)
    twin_band: bool = False  # the intervals are a twin's band: its constants are shared, so rows of one twin move
    #                          together (same-device comparisons pair the band's ends)
    device_label: str = ""  # the device as tables show it, naming a remote board (tpu@dev-a)
    ok: bool = True
    error: str | None = None
    weight_bytes: int | None = None
    load_s: float | None = None
    first_invoke_s: float | None = None
    memory_bytes: int | None = None  # the model's own peak above a fresh worker's
    agreement: float | None = None  # predictions equal to the build's
    energy_provenance: str | None = None
    near_limit: str | None = None  # the twin's two outcomes for a model near the Edge TPU's on-chip limit

    @property
    def layers_width(self) -> tuple[int | None, int | None]:
        """(hidden layers, width) of a grid architecture named like 3x512, else (None, None)."""
        try:
            layers, width = self.model.split("-")[0].split("x")
            return int(layers), int(width)
        except ValueError:
            return None, None

    @property
    def latency_ci(self) -> tuple[float, float] | None:
        """(low, high) of the latency's interval or band: what the claims decide with."""
        return self.latency_interval.pair if self.latency_interval else None

    @property
    def energy_ci(self) -> tuple[float, float] | None:
        """(low, high) of the energy's 95 % interval or band (the windows' spread is no interval to decide on)."""
        iv = self.energy_interval
        return iv.pair if iv and iv.label != SPREAD_LABEL else None

    @property
    def source(self) -> str:
        return self.kind if self.ok else f"FAILED: {self.error or ''}"


def streamed_bytes(entry: Entry) -> int | None:
    """Off-chip parameter bytes: the twin's split when a twin predicted it, else the compiler's log."""
    if entry.twin:
        s = (entry.twin.get("breakdown") or {}).get("streamed_bytes")
        if s is not None:
            return s
    comp = (entry.model.compiler or {}).get("models") or []
    return sum(c.get("off_chip_streamed_bytes") or 0 for c in comp) if comp else None


def _pair(v) -> tuple[float, float] | None:
    """A [low, high] list from the build's metrics as a pair."""
    return (float(v[0]), float(v[1])) if isinstance(v, (list, tuple)) and len(v) == 2 else None


def latency_interval(e: Entry) -> Uncertainty | None:
    """The 95 % interval of the median across processes (measured), else the twin's band (simulated)."""
    lat = e.latency
    if lat is None:
        return None
    if lat.ci95 is not None:
        return Uncertainty(lat.ci95.low, lat.ci95.high, CI_LABEL)
    return Uncertainty(lat.band.low, lat.band.high, BAND_LABEL) if lat.band is not None else None


def energy_interval(e: Entry) -> Uncertainty | None:
    """The 95 % interval (measured), the twin's band (simulated), or the windows' spread when they differ."""
    en = e.energy
    if en is None or en.total_j is None:
        return None
    if en.ci95 is not None:
        return Uncertainty(en.ci95.low, en.ci95.high, CI_LABEL)
    band = en.twin_band
    if band is not None:
        return Uncertainty(band.low, band.high, BAND_LABEL)
    spread = _pair(en.spread_j)
    return Uncertainty(*spread, SPREAD_LABEL) if spread and spread[0] != spread[1] else None


def row_of(e: Entry) -> Row:
    """``e`` as a ``Row``."""
    s = e.model.size or {}
    met = e.model.metrics or {}
    lat, en = e.latency, e.energy
    return Row(model=e.model.name, device=e.device.name, kind=e.kind, params=s.get("params") or 0,
               macs=s.get("macs") or 0, param_bytes=(s.get("weight_bytes") or 0) + (s.get("bias_bytes") or 0),
               latency_s=lat.median if lat else None,
               energy_j=en.total_j if en else None,
               f1_int8=e.model.metric("int8", "macro_f1"), f1_float=e.model.metric("float", "macro_f1"),
               test_windows=met.get("test_windows"), streamed_bytes=streamed_bytes(e),
               layer_sizes=tuple(s.get("layer_sizes") or ()), sha256=e.model.sha256,
               latency_interval=latency_interval(e),
               latency_processes=tuple(p.median for p in (lat.processes or [])) if lat else (),
               energy_interval=energy_interval(e),
               f1_int8_ci=_pair(e.model.metric("int8", "macro_f1_ci95")),
               f1_float_ci=_pair(e.model.metric("float", "macro_f1_ci95")),
               unstable=lat.unstable if lat else None,
               twin_band=bool(lat and lat.band), role=e.device.role,
               device_label=e.device.label, ok=e.ok, error=e.error, weight_bytes=s.get("weight_bytes"),
               load_s=e.load_seconds, first_invoke_s=e.first_invoke_seconds,
               memory_bytes=e.memory.model_rss_bytes if e.memory else None,
               agreement=e.on_device.agreement_with_build if e.on_device else None,
               energy_provenance=en.provenance if en else None,
               near_limit=((e.twin or {}).get("near_limit") or {}).get("text"))


def rows(run: Run | dict, failed: bool = False) -> list[Row]:
    """Every ok entry of ``run`` as a ``Row``, in the run's order; with ``failed``, the failed entries too."""
    run = Run.coerce(run)
    return [row_of(e) for e in (run.entries if failed else run.ok_entries())]


def by_size(rs: list[Row]) -> list[Row]:
    """Rows as tables list them: smallest model first, then by name and device."""
    return sorted(rs, key=lambda r: (r.params, r.model, r.device_label))


def finite(x: float | None) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def merge(runs: list[Run], names: list[str]) -> Run:
    """One run from several (boards): an entry that failed in one run gives way to the same (model, device
    configuration) measured ok in another; two different ok entries of one pair are refused (``unique_entries``);
    each run's header is kept under ``merged_from``."""
    if not runs:
        raise EdgecheckError("merge: no results given")
    base = runs[0]
    datasets = {r.dataset.get("sha256") for r in runs}
    if len(datasets) > 1:
        raise EdgecheckError(f"merge: the runs used different datasets ({', '.join(map(str, datasets))})")
    entries = unique_entries([e for r in runs for e in r.entries], f"merge {', '.join(names)}")
    devices = {d["key"]: d for r in runs for d in r.devices}
    header = {"schema": RESULTS_SCHEMA, "created_utc": _now(), "artifacts": base.header.get("artifacts"),
              "environment": base.header.get("environment"),
              "run": {**(base.header.get("run") or {}), "devices": list(devices.values())},
              "merged_from": [{"file": n, "environment": r.header.get("environment"), "run": r.header.get("run")}
                              for n, r in zip(names, runs)]}
    return Run(header, entries)
