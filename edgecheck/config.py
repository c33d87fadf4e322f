"""Every default edgecheck runs with, named once, with where it comes from; and the option parsers.

The pytest plugin, the CLI and the measuring worker's jobs all read ``DEFAULTS``;
the worker itself (a standalone script for boards) gets every value in its job
and has no defaults of its own. Options are validated while they are parsed
(``type=`` functions, as pytest-benchmark's ``parse_rounds``): a bad value is a
usage error that names the option, before anything runs.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, fields


def _default(value, source: str):
    return field(default=value, metadata={"source": source})


@dataclass(frozen=True)
class Defaults:
    grid: str = _default("default", "the paper's kind of sweep: 1-4 hidden layers x 32-2048 neurons "
                                    "(architecture.NAMED_GRIDS)")
    dataset: str = _default("collar", "the synthetic collar-IMU generator (build/data.py); offline and deterministic")
    results: str = _default(".edgecheck/results/latest.json", "one results file per run, beside the build cache")
    build_dir: str = _default(".edgecheck/artifacts", "the content-addressed build cache")
    processes: int = _default(10, "fresh worker processes per model (pyperf-style): a model's latency varies "
                                 "between processes as between runs, and the comparison counts that variance")
    rounds: int = _default(5, "timed rounds per model in each process: between-process variance dominates, so "
                              "a few rounds per process and more processes")
    warmup_rounds: int = _default(1, "rounds run before timing, after the first invoke and every model switch")
    min_processes: int = _default(6, "processes before a model may stop early (its interval within target_ci): the "
                                     "fewest for which the order-statistic interval of the median, min to max, "
                                     "covers it with at least 95 % (1 - 2 x 0.5^6 = 96.9 %)")
    max_extra_processes: int = _default(8, "processes added, adaptively, for models whose interval is still wide and "
                                                 "could come within target_ci with them")
    target_ci: float = _default(0.03, "relative half-width of a model's interval below which it needs no more "
                                      "processes")
    adaptive_budget: float = _default(0.5, "extra processes may add at most this share of the sweep's time")
    in_process_rounds: int = _default(10, "rounds pytest-benchmark times in the pytest process itself, for its own "
                                          "table and JSON")
    round_seconds: float = _default(0.005, "target duration of one round: 5 ms keeps the timer's resolution "
                                           "and the round's own call overhead below 0.01 %")
    calibration_seconds: float = _default(0.005, "back-to-back invokes that estimate the invokes per round")
    energy_window_seconds: float = _default(2.0, "an INA260 at its default 2.2 ms update interval gives about "
                                                 "900 samples per window")
    energy_windows: int = _default(5, "median of 5 windows, as MLPerf Tiny's EnergyRunner reports")
    idle_seconds: float = _default(2.0, "idle power measured before each device's first model")
    min_power_samples: int = _default(10, "power samples a window needs before its energy is trusted")
    worker_timeout_seconds: float = _default(600.0, "a worker silent this long is hung (--worker-timeout): a farm "
                                                    "board is power-cycled and its model retried once")
    lg_wait_seconds: float = _default(3600.0, "waiting for a labgrid place held by others (--lg-wait): a CI job "
                                              "fails with who holds it rather than wait forever")
    lg_boot_seconds: float = _default(300.0, "a power-cycled board's sshd comes back (--lg-boot-timeout); a Dev "
                                             "Board boots Mendel in about a minute")
    lg_power_seconds: float = _default(60.0, "one run of the --lg-power-cycle command")
    lg_rpc_seconds: float = _default(30.0, "one call to the labgrid coordinator")
    ssh_connect_timeout_seconds: float = _default(60.0, "making the remote worker's folder over ssh")
    tpu_probe_timeout_seconds: float = _default(60.0, "loading the Edge TPU delegate and one invoke in a child")
    cpu_threads: int = _default(1, "single-threaded, as the paper's per-core comparison")
    a53_threads: int = _default(1, "one Cortex-A53 core; the cluster has four")
    tpu_link: str = _default("pcie", "the Coral Dev Board's Edge TPU sits on PCIe")
    tpu_clock_mhz: float = _default(500.0, "libedgetpu's Max clock, the PCIe default (libedgetpu "
                                           "driver/beagle/beagle_top_level_handler.cc)")
    battery_rate_hz: float = _default(10.0, "inferences per second in the report's battery view")

    @classmethod
    def sources(cls) -> dict[str, str]:
        return {f.name: f.metadata["source"] for f in fields(cls)}


DEFAULTS = Defaults()

# The Edge TPU's on-chip parameter cache as edgetpu_compiler reports it: about 7.8 MiB usable of the
# "~8 MB" cache (https://coral.ai/docs/edgetpu/pipeline; compiler logs in google-coral/edgetpu issues
# print 7.73-7.88 MiB "remaining for caching model parameters" for a nearly empty model).
EDGE_TPU_CACHE_BYTES = 8178892

# Upper bounds of the options that have no natural one (every option has one: a typo never asks for a wait that
# would not end or a figure no device has)
MAX_WAIT_S = 86400.0  # --worker-timeout, --lg-wait, --lg-boot-timeout: a day
MAX_CLOCK_MHZ = 1000.0  # --tpu-clock: libedgetpu's fastest setting is 500 MHz
MAX_OFFSET_S = 1e9  # --trace-offset: about 32 years, more than any two clocks disagree


# ----------------------------------------------------------------------------
# Option parsers: argparse/pytest ``type=`` functions
# ----------------------------------------------------------------------------


def _number(text: str, kind) -> float:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a {'whole ' if kind is int else ''}number, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def count_up_to(limit: int):
    """A ``type=`` for a count (processes, rounds, windows, threads): a whole number from 1 to ``limit``, so that
    a typo never asks for a run that would not end."""
    def parse(text: str) -> int:
        value = positive_int(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"must be at most {limit}, got {value}")
        return value

    parse.__name__ = "count"
    return parse


def seconds_up_to(limit: float):
    """A ``type=`` for a duration: finite, > 0 and at most ``limit`` seconds (no option makes a wait unbounded)."""
    return positive_up_to(limit, " s", "seconds")


LOCAL_EXECUTOR = "local"
DASK_SCHEME = "dask://"


def build_executor(text: str) -> str:
    """``local`` (worker processes on this machine) or ``dask://HOST:PORT`` (a running Dask scheduler)."""
    if text == LOCAL_EXECUTOR:
        return text
    if text.startswith(DASK_SCHEME):
        host, sep, port = text[len(DASK_SCHEME):].rpartition(":")
        if host and sep and port.isdigit() and 0 < int(port) < 65536:
            return text
    raise argparse.ArgumentTypeError(f"{text!r}: use 'local' (worker processes on this machine) or dask://HOST:PORT "
                                     "(a running Dask scheduler, e.g. dask://10.0.0.5:8786)")


def nonnegative_float(text: str) -> float:
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def finite_float(text: str) -> float:
    return _number(text, float)


def within(limit: float, unit: str = ""):
    """A ``type=`` for a finite number whose magnitude is at most ``limit`` (an offset: either sign)."""
    def parse(text: str) -> float:
        value = finite_float(text)
        if abs(value) > limit:
            raise argparse.ArgumentTypeError(f"must be between -{limit:g} and {limit:g}{unit}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


def positive_up_to(limit: float, unit: str = "", name: str = "number"):
    """A ``type=`` for a finite number > 0 and at most ``limit`` (a clock, a rate, a duration); ``name`` is what
    argparse calls it in an error."""
    def parse(text: str) -> float:
        value = positive_float(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"must be at most {limit:g}{unit}, got {text}")
        return value

    parse.__name__ = name
    return parse


def threshold_spec(text: str) -> tuple[str | None, str, float]:
    """``METRIC=VALUE`` or ``ARCH:METRIC=VALUE`` (latency and energy relative, accuracy absolute)."""
    key, sep, num = str(text).partition("=")
    model, colon, metric = key.rpartition(":")
    usage = ("use latency|energy|accuracy|instructions=NUMBER (or drift_sd=NUMBER), optionally prefixed by an "
             "architecture (4x2048:latency=0.3)")
    if not sep or metric not in ("latency", "energy", "accuracy", "instructions", "drift_sd") \
            or (model and metric == "drift_sd"):
        raise argparse.ArgumentTypeError(f"{text!r}: {usage}")
    if colon and not model.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: the architecture before ':' is empty; {usage} (no prefix "
                                         "sets the global threshold)")
    try:
        value = float(num)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {num!r} is not a number; {usage}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a threshold must be a finite number >= 0")
    return (model or None), metric, value
