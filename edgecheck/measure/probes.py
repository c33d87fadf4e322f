"""Energy probes: power sensors read around a measurement window.

A probe is started and stopped around a window of back-to-back invokes and
returns the window's energy with its power samples. Every figure carries its
provenance: the probe and sensor for a measurement, the twin's power model for
an estimate. Sensors:

- ``hwmon:NAME_OR_PATH``: Linux hwmon (e.g. the ina2xx driver): power1_input
  in microwatts, or curr1_input (mA) x in1_input (mV), sampled in a thread at
  the sensor's update_interval (ms).
- ``rapl``: powercap energy_uj counters (x86 host package only; wraps at
  max_energy_range_uj; root-only since Linux 5.10).
- ``joulescope``: the joulescope package's energy accumulator.
- ``trace:FILE.csv``: an external meter's log, aligned with the windows'
  wall-clock timestamps (``--trace-offset`` shifts the meter's clock).
- ``model``: the twins' power model x measured time, labelled estimated.
"""
from __future__ import annotations

import csv
import io
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecheck import files
from edgecheck.config import DEFAULTS
from edgecheck.errors import EdgecheckError
from edgecheck.sysfs import read_number, read_text

HWMON_ROOT = Path("/sys/class/hwmon")
POWERCAP_ROOT = Path("/sys/class/powercap")
MIN_SAMPLES = DEFAULTS.min_power_samples
SENSOR_READ_TIMEOUT_S = 10.0  # a sysfs read of a sensor on a hung I2C bus can block; the window fails after this


@dataclass
class Window:
    """One probe window: wall-clock start and end, the energy, the samples behind it."""

    t0: float
    t1: float
    energy_j: float | None
    samples: int | None  # power samples integrated here; None where the instrument integrates (a counter)
    mean_power_w: float | None
    pending: bool = False  # a trace probe integrates when the meter's log is complete

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0


def require_samples(window: str, seconds: float, samples: int | None, option: str, where: str = "") -> None:
    """A window we integrate from our own samples needs MIN_SAMPLES of them (idle windows too: idle power is
    subtracted from every window). A window a meter integrated itself (``samples`` None) is exempt."""
    if samples is not None and samples < MIN_SAMPLES:
        raise EdgecheckError(f"{where}{window} window of {seconds:.2f} s got {samples} power samples "
                             f"(< {MIN_SAMPLES}): lengthen it with {option}")


def integrate(t: np.ndarray, p: np.ndarray, t0: float, t1: float) -> tuple[float, int]:
    """Energy (J) of a power trace between t0 and t1: trapezoids, with the trace
    interpolated at the window's edges. Returns (energy, samples inside the window)."""
    t, p = np.asarray(t, float), np.asarray(p, float)
    if t.size < 2 or t0 >= t1:
        raise ValueError("need at least two samples and t0 < t1")
    if t[0] > t0 or t[-1] < t1:
        raise ValueError(f"the trace covers {t[0]:.3f}..{t[-1]:.3f}, not the window {t0:.3f}..{t1:.3f}")
    inside = (t > t0) & (t < t1)
    tt = np.concatenate([[t0], t[inside], [t1]])
    pp = np.concatenate([[np.interp(t0, t, p)], p[inside], [np.interp(t1, t, p)]])
    return float(np.sum((pp[1:] + pp[:-1]) / 2 * np.diff(tt))), int(inside.sum())


MAX_SENSOR_INTERVAL_S = 10.0  # a hwmon update_interval beyond this is a broken sensor, not a slow one


@dataclass(frozen=True)
class HwmonDevice:
    """One /sys/class/hwmon/hwmonN folder and how it reports power, if it does."""

    path: Path
    name: str
    mode: str | None  # "power" (power1_input), "current x voltage" (curr1_input x in1_input), or None

    @classmethod
    def at(cls, path: Path) -> HwmonDevice:
        mode = ("power" if (path / "power1_input").exists() else
                "current x voltage" if (path / "curr1_input").exists() and (path / "in1_input").exists() else None)
        return cls(path, read_text(path / "name") or path.name, mode)

    @property
    def files(self) -> tuple[str, ...]:
        return {"power": ("power1_input",), "current x voltage": ("curr1_input", "in1_input")}.get(self.mode, ())

    @property
    def readable(self) -> bool:
        return bool(self.files) and all(os.access(self.path / f, os.R_OK) for f in self.files)


def check_reading(watts: float, where: str) -> float:
    """A power (W) or energy (J) reading that can be trusted: finite and not negative."""
    if not math.isfinite(watts) or watts < 0:
        raise EdgecheckError(f"{where}: the sensor returned {watts!r}, not a finite non-negative reading")
    return watts


def hwmon_devices(root: Path = HWMON_ROOT, power_only: bool = True) -> list[HwmonDevice]:
    """Every hwmon device under ``root`` (sorted); with ``power_only`` those that report power."""
    found = [HwmonDevice.at(d) for d in sorted(Path(root).glob("hwmon*")) if d.is_dir()]
    return [d for d in found if d.mode is not None or not power_only]


@dataclass
class HwmonProbe:
    """A hwmon power sensor sampled in a thread."""

    path: Path
    interval_s: float
    mode: str  # "power" or "current x voltage"
    name: str = ""
    _samples: list = field(default_factory=list, repr=False)
    _error: list = field(default_factory=list, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    kind = "measured"

    @classmethod
    def open(cls, spec: str, root: Path = HWMON_ROOT) -> HwmonProbe:
        """``spec``: a hwmon folder path, or the content of a device's ``name`` file (e.g. ina260)."""
        p = Path(spec)
        if not p.is_absolute() and os.sep not in spec:
            every = hwmon_devices(root, power_only=False)
            found = [d for d in every if d.name == spec]
            if not found:
                names = sorted(d.name for d in every)
                raise EdgecheckError(f"--energy-probe hwmon:{spec}: no hwmon device named {spec!r} under {root} "
                                     f"(found: {', '.join(names) or 'none'})")
            p = found[0].path
        if not p.is_dir():
            raise EdgecheckError(f"--energy-probe hwmon:{spec}: {p} does not exist or is not a directory")
        dev = HwmonDevice.at(p)
        if dev.mode is None:
            raise EdgecheckError(f"--energy-probe hwmon:{spec}: {p} has neither power1_input nor curr1_input and "
                                 "in1_input; pick the sensor on the board's supply rail")
        for f in dev.files:
            read_number(p / f)  # readable now, or a clear error before the run starts
        interval = read_number(p / "update_interval") / 1000 if (p / "update_interval").exists() else 0.01
        if not 0 <= interval <= MAX_SENSOR_INTERVAL_S:  # a sensor that updates less often cannot time a window
            raise EdgecheckError(f"--energy-probe hwmon:{spec}: {p / 'update_interval'} says {interval * 1000:g} ms; "
                                 f"expected 0 to {MAX_SENSOR_INTERVAL_S * 1000:g} ms")
        return cls(p, max(interval, 0.001), dev.mode, dev.name)

    def describe(self) -> dict:
        return {"probe": "hwmon", "sensor": f"{self.name} ({self.path})", "reading": self.mode,
                "sampling_interval_s": self.interval_s}

    def read_w(self) -> float:
        """One power reading (W); a reading no sensor can give (NaN, infinite, negative) is an error."""
        if self.mode == "power":
            w = read_number(self.path / "power1_input") / 1e6  # microwatts
        else:
            w = read_number(self.path / "curr1_input") / 1e3 * read_number(self.path / "in1_input") / 1e3
        return check_reading(w, f"hwmon {self.path}")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._samples.append((time.time(), self.read_w()))
            except EdgecheckError as e:
                self._error.append(e)
                return
            self._stop.wait(self.interval_s)

    def start(self) -> float:
        self._samples, self._error = [], []
        self._stop.clear()
        self._samples.append((time.time(), self.read_w()))
        self._thread = threading.Thread(target=self._run, name="edgecheck-hwmon", daemon=True)
        self._thread.start()
        return time.time()

    def stop(self) -> Window:
        t1 = time.time()
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.interval_s + SENSOR_READ_TIMEOUT_S)
            if self._thread.is_alive():  # a read blocked on the bus: never wait for it without a bound
                raise EdgecheckError(f"energy window failed: hwmon {self.path} did not answer within "
                                     f"{SENSOR_READ_TIMEOUT_S:g} s")
        if self._error:
            raise EdgecheckError(f"energy window failed: {self._error[0]}")
        self._samples.append((time.time(), self.read_w()))
        t = np.array([s[0] for s in self._samples])
        p = np.array([s[1] for s in self._samples])
        t0 = self._samples[0][0]
        e, n = integrate(t, p, t0, t1)
        return Window(t0, t1, e, n, e / (t1 - t0))


@dataclass
class RaplProbe:
    """powercap/RAPL package energy counter of the x86 host (never a USB Accelerator's own power)."""

    path: Path
    max_range_uj: int
    kind = "measured"
    _e0: int = 0
    _t0: float = 0.0

    @classmethod
    def open(cls, root: Path = POWERCAP_ROOT) -> RaplProbe:
        zone = root / "intel-rapl:0"
        if not zone.is_dir():
            raise EdgecheckError(f"--energy-probe rapl: {zone} not found (RAPL exists only on x86 Intel/AMD hosts)")
        f = zone / "energy_uj"
        if not os.access(f, os.R_OK):
            raise EdgecheckError(f"--energy-probe rapl: {f} is not readable: since Linux 5.10 energy_uj is root-only "
                                 "(CVE-2020-8694); add a udev rule or `chmod o+r` it, or run as root")
        rng = int(read_number(zone / "max_energy_range_uj"))
        return cls(zone, rng)

    def describe(self) -> dict:
        return {"probe": "rapl", "sensor": f"{self.path} (x86 host CPU package only, not an accelerator's power)",
                "reading": "energy counter", "sampling_interval_s": None}

    def _read(self) -> int:
        return int(read_number(self.path / "energy_uj"))

    def start(self) -> float:
        self._e0, self._t0 = self._read(), time.time()
        return self._t0

    def stop(self) -> Window:
        e1, t1 = self._read(), time.time()
        delta = wrap_delta(self._e0, e1, self.max_range_uj)
        e = delta / 1e6
        # the counter integrates in hardware: no power samples of ours, so the 10-sample rule does not apply
        return Window(self._t0, t1, e, None, e / (t1 - self._t0))


def wrap_delta(e0: int, e1: int, max_range: int) -> int:
    """Counter difference with wraparound at max_energy_range_uj."""
    return (e1 - e0) % (max_range + 1)


@dataclass
class JoulescopeProbe:
    """A Joulescope's on-instrument energy accumulator (optional package ``joulescope``)."""

    device: object
    kind = "measured"
    _latest: dict = field(default_factory=dict)
    _e0: float = 0.0
    _t0: float = 0.0

    @classmethod
    def open(cls, scan=None) -> JoulescopeProbe:
        if scan is None:
            try:
                import joulescope
            except ImportError:
                raise EdgecheckError("--energy-probe joulescope: install the joulescope package "
                                     "(pip install joulescope) and its udev rule") from None
            scan = joulescope.scan_require_one
        dev = scan(config="auto")
        dev.open()
        probe = cls(dev)
        dev.statistics_callback_register(probe._on_stats)
        return probe

    def _on_stats(self, stats: dict) -> None:  # called on the USB thread
        self._latest = stats

    def describe(self) -> dict:
        return {"probe": "joulescope", "sensor": str(self.device), "reading": "energy accumulator",
                "sampling_interval_s": None}

    def _energy(self) -> float:
        if not self._latest:
            raise EdgecheckError("joulescope: no statistics received yet (is the instrument streaming?)")
        return float(self._latest["accumulators"]["energy"]["value"])

    def start(self) -> float:
        self._e0, self._t0 = self._energy(), time.time()
        return self._t0

    def stop(self) -> Window:
        e, t1 = self._energy() - self._e0, time.time()
        # the instrument's accumulator integrates at its own rate (2 MS/s on a JS110): no samples of ours
        return Window(self._t0, t1, e, None, e / (t1 - self._t0))


def read_trace(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A meter's CSV: a timestamp column (``timestamp``/``time``/``t``, UNIX seconds) and ``watts``,
    or ``volts`` and ``amps``."""
    text = files.read_text(path, f"trace {path}", "trace")
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise EdgecheckError(f"trace {path}: not a CSV file ({e})") from None
    if not rows:
        raise EdgecheckError(f"trace {path}: no rows")
    cols = {c.strip().lower(): c for c in rows[0] if c is not None}
    tcol = next((cols[c] for c in ("timestamp", "time", "t", "unix_time") if c in cols), None)
    if tcol is None:
        raise EdgecheckError(f"trace {path}: no timestamp column (timestamp, time or t); columns: {', '.join(cols)}")
    try:
        t = np.array([float(r[tcol]) for r in rows])
        if "watts" in cols or "power" in cols or "w" in cols:
            pc = cols.get("watts") or cols.get("power") or cols.get("w")
            p = np.array([float(r[pc]) for r in rows])
        elif ("volts" in cols or "v" in cols) and ("amps" in cols or "a" in cols):
            vc, ac = cols.get("volts") or cols.get("v"), cols.get("amps") or cols.get("a")
            p = np.array([float(r[vc]) * float(r[ac]) for r in rows])
        else:
            raise EdgecheckError(f"trace {path}: needs a watts column, or volts and amps; columns: {', '.join(cols)}")
    except (ValueError, TypeError) as e:
        raise EdgecheckError(f"trace {path}: non-numeric value ({e})") from None
    for name, values in (("timestamp", t), ("power", p)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise EdgecheckError(f"trace {path}: row {bad[0] + 2}: {name} is {values[bad[0]]} (not a finite number)")
    if np.any(p < 0):
        i = int(np.flatnonzero(p < 0)[0])
        raise EdgecheckError(f"trace {path}: row {i + 2}: negative power {p[i]:g} W (a meter log holds power drawn)")
    if np.any(np.diff(t) <= 0):
        raise EdgecheckError(f"trace {path}: timestamps must increase")
    return t, p


@dataclass
class TraceProbe:
    """An external meter's log: windows are recorded now and integrated from the log later."""

    path: Path
    offset_s: float = 0.0  # added to the meter's timestamps to reach this machine's clock
    kind = "measured"
    integrates_later = True  # windows are recorded now; the meter's log is integrated at the end or later
    _t0: float = 0.0

    def describe(self) -> dict:
        return {"probe": "trace", "sensor": f"meter log {self.path}", "reading": "external trace",
                "clock_offset_s": self.offset_s, "sampling_interval_s": None}

    def start(self) -> float:
        self._t0 = time.time()
        return self._t0

    def stop(self) -> Window:
        return Window(self._t0, time.time(), None, 0, None, pending=True)

    def energy(self, t0: float, t1: float) -> tuple[float, int]:
        t, p = read_trace(self.path)
        return self.integrate(t, p, t0, t1)

    def integrate(self, t: np.ndarray, p: np.ndarray, t0: float, t1: float) -> tuple[float, int]:
        """The energy of an already read trace ``(t, p)`` over one window, with this probe's clock offset."""
        try:
            return integrate(t + self.offset_s, p, t0, t1)
        except ValueError as e:
            raise EdgecheckError(f"trace {self.path} (offset {self.offset_s:+g} s): {e}") from None


PROBES = "none, auto, hwmon:NAME_OR_PATH, rapl, joulescope, trace:FILE.csv or model"


def check_probe_spec(spec: str) -> None:
    """The form of ``--energy-probe`` (whether the sensor is there is checked when it is opened)."""
    kind, sep, arg = str(spec).partition(":")
    if spec in ("none", "auto", "rapl", "joulescope", "model") or (kind in ("hwmon", "trace") and sep and arg):
        return
    raise EdgecheckError(f"--energy-probe: unknown probe {spec!r}; use {PROBES}")


def runs_on_board(spec: str | None) -> bool:
    """Whether a remote board's worker opens this probe on the board itself (a hwmon sensor there)."""
    return bool(spec) and (spec == "auto" or spec.startswith("hwmon:"))


def open_probe(spec: str | None, trace_offset: float = 0.0, hwmon_root: Path = HWMON_ROOT):
    """The probe named by ``--energy-probe``; None for ``none``."""
    if spec in (None, "", "none"):
        return None
    if spec == "auto":
        for d in hwmon_devices(hwmon_root):
            return HwmonProbe.open(str(d.path), hwmon_root)
        raise EdgecheckError(f"--energy-probe auto: no hwmon device with power1_input or curr1_input under "
                             f"{hwmon_root}")
    kind, _, arg = spec.partition(":")
    if kind == "hwmon" and arg:
        return HwmonProbe.open(arg, hwmon_root)
    if kind == "rapl":
        return RaplProbe.open()
    if kind == "joulescope":
        return JoulescopeProbe.open()
    if kind == "trace" and arg:
        return TraceProbe(Path(arg), trace_offset)
    if kind == "model":
        return "model"
    raise EdgecheckError(f"--energy-probe: unknown probe {spec!r}; use {PROBES}")
