"""The pytest plugin: options, the session that prepares artifacts and devices,
parametrization of the benchmarks, fixtures and the end-of-run table.

Loaded through the ``pytest11`` entry point (``edgecheck``). Nothing heavy
happens unless a collected test asks for ``edgecheck_model``: plain unit tests
pay nothing. The build runs in a separate process; this process never imports
TensorFlow.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from . import artifacts as art
from .devices import Selection, select
from .environment import measuring_environment
from .errors import EdgecheckError
from .measure import EnergyOptions, Recorder, TimingOptions
from .results import ResultsFile

SESSION_KEY = pytest.StashKey["EdgecheckSession"]()
DEFAULT_RESULTS = ".edgecheck/results/latest.json"


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("edgecheck", "edgecheck: Edge TPU vs CPU benchmarks")
    g.addoption("--device", action="append", default=None, metavar="NAME",
                help="device(s): auto (default: real devices found plus twins of the missing ones), cpu, a53, tpu, "
                     "tpu-sim, a53-sim; repeatable, comma-separated lists accepted")
    g.addoption("--remote-python", default="python3",
                help="python on a remote board for --device X@ssh://... (default python3)")
    g.addoption("--ssh-option", action="append", default=[], metavar="OPT",
                help="extra ssh argument for remote devices, repeatable (e.g. --ssh-option=-i --ssh-option=key)")
    g.addoption("--tpu-device", default=None, metavar="SEL",
                help="which Edge TPU: ':0', 'usb', 'usb:1', 'pci:0' (default: the first found)")
    g.addoption("--grid", default="default", help="architecture grid: default, smoke, or e.g. 1x32,2x64 (default: default)")
    g.addoption("--dataset", default="collar",
                help="collar (synthetic, default), basicmotions, a .npz/.csv file or a UCI HAR folder")
    g.addoption("--artifacts", default=None, metavar="DIR",
                help="prebuilt artifacts directory: measure it, never build (a board has no TensorFlow)")
    g.addoption("--model", action="append", default=None, metavar="PATH",
                help="benchmark this .tflite instead of a grid; repeatable")
    g.addoption("--results", default=DEFAULT_RESULTS, metavar="PATH",
                help=f"results JSON written after every model (default {DEFAULT_RESULTS})")
    g.addoption("--resume", action="store_true", help="keep finished entries of --results and measure only the rest")
    g.addoption("--build-dir", default=".edgecheck/artifacts", metavar="DIR",
                help="where built artifacts are cached (default .edgecheck/artifacts/<grid>-<dataset>)")
    g.addoption("--cpu-threads", type=int, default=1, help="interpreter threads on the cpu device (default 1)")
    g.addoption("--a53-threads", type=int, default=1, help="interpreter threads on the a53 device, 1-4 (default 1)")
    g.addoption("--tpu-link", default="pcie", choices=["pcie", "usb3", "usb2"],
                help="tpu-sim: link between host and Edge TPU (default pcie, the Dev Board)")
    g.addoption("--tpu-clock", type=float, default=500, help="tpu-sim: Edge TPU clock in MHz: 63, 125, 250, 500 (default 500)")
    g.addoption("--twin-constants", default=None, metavar="PATH",
                help="twin constants JSON (default: the packaged table; fitted files live in fixtures/twins/)")
    g.addoption("--claims", default=None, metavar="PATH",
                help="claims thresholds file (default fixtures/claims.json)")
    g.addoption("--baseline", default=None, metavar="PATH",
                help="compare this run with a saved baseline at the end; a regression fails the session")
    g.addoption("--save-baseline", default=None, metavar="PATH", help="save this run as a baseline")
    g.addoption("--compare-threshold", action="append", default=[], metavar="METRIC=VALUE",
                help="override a comparison threshold: latency=0.2, energy=0.1, accuracy=0.02, "
                     "or per architecture 4x2048:latency=0.3 (repeatable)")
    g.addoption("--force-baseline", action="store_true",
                help="compare even when the baseline's dataset, config or device runtimes differ")
    g.addoption("--energy-probe", default="none", metavar="PROBE",
                help="none (default), auto, hwmon:NAME_OR_PATH, rapl, joulescope, trace:FILE.csv, model")
    g.addoption("--energy-window", type=float, default=2.0, help="seconds of back-to-back invokes per energy window (default 2)")
    g.addoption("--energy-windows", type=int, default=5, help="energy windows per model; the median is reported (default 5)")
    g.addoption("--idle-seconds", type=float, default=2.0, help="idle power measured this long before each device (default 2)")
    g.addoption("--trace-offset", type=float, default=0.0,
                help="seconds added to a trace's timestamps to reach this machine's clock (default 0)")
    g.addoption("--report", default=None, metavar="PATH",
                help="HTML report written at the end (default: the results path with .html; 'none' to skip)")
    g.addoption("--rounds", type=int, default=30, help="timed rounds per model, each one raw sample (default 30)")
    g.addoption("--round-time", type=float, default=0.01,
                help="target seconds per round; sets invokes per round (default 0.01)")


@dataclass
class EdgecheckSession:
    """Everything one pytest session knows about edgecheck: built lazily, once."""

    config: pytest.Config
    models: list[art.ModelEntry] = field(default_factory=list)
    artifacts: art.Artifacts | None = None
    selection: Selection | None = None
    recorder: Recorder | None = None
    error: str | None = None
    prepared: bool = False
    claims: dict = field(default_factory=dict)  # claim id -> ClaimResult, as the claim tests evaluate them
    comparison: list | None = None  # rows of the baseline comparison
    report_path: str | None = None
    report_error: str | None = None
    comparison_error: str | None = None

    def option(self, name: str):
        return self.config.getoption(name)

    def prepare(self) -> None:
        if self.prepared:
            return
        self.prepared = True
        try:
            self._prepare()
        except EdgecheckError as e:
            self.error = str(e)

    def _prepare(self) -> None:
        opt = self.option
        if opt("rounds") < 1:
            raise EdgecheckError(f"--rounds: must be >= 1, got {opt('rounds')}")
        if not opt("round_time") > 0:
            raise EdgecheckError(f"--round-time: must be > 0 seconds, got {opt('round_time')}")
        if opt("cpu_threads") < 1:
            raise EdgecheckError(f"--cpu-threads: must be >= 1, got {opt('cpu_threads')}")
        self.selection = select(opt("device"), cpu_threads=opt("cpu_threads"), a53_threads=opt("a53_threads"),
                                tpu_selector=opt("tpu_device"),
                                twin_options={"constants_path": opt("twin_constants"), "tpu_link": opt("tpu_link"),
                                              "tpu_clock_mhz": opt("tpu_clock")},
                                remote_options={"python": opt("remote_python"),
                                                "ssh_options": tuple(opt("ssh_option"))})
        if opt("model"):
            self.models = [art.user_model(p) for p in opt("model")]
        else:
            root = Path(opt("artifacts")) if opt("artifacts") else self._build()
            self.artifacts = art.load(root)
            self.models = self.artifacts.models
        self._probe_tpu()
        # every option is checked before the results file is started, so a typo never wipes the last run's file
        energy = None
        from .probes import open_probe

        probe = open_probe(opt("energy_probe"), opt("trace_offset"))
        if probe is not None:
            if opt("energy_window") <= 0 or opt("energy_windows") < 1 or opt("idle_seconds") <= 0:
                raise EdgecheckError("--energy-window and --idle-seconds must be > 0 and --energy-windows >= 1")
            energy = EnergyOptions(probe, opt("energy_window"), opt("energy_windows"), opt("idle_seconds"))
        header = {
            "run": {"argv": sys.argv, "devices_requested": opt("device") or ["auto"],
                    "devices": [d.to_dict() for d in self.selection.devices],
                    "devices_skipped": self.selection.skipped, "devices_absent": self.selection.absent,
                    "grid": opt("grid"), "dataset": opt("dataset")},
            "environment": measuring_environment(),
            "artifacts": self._artifacts_header(),
        }
        results = ResultsFile.start(opt("results"), header, resume=opt("resume"))
        features = self.artifacts.test_features() if self.artifacts else None
        n_classes = len(self.artifacts.manifest["dataset"]["classes"]) if self.artifacts else None
        timing = TimingOptions(rounds=opt("rounds"), round_seconds=opt("round_time"))
        self.recorder = Recorder(results, timing, features, n_classes, energy)

    def _probe_tpu(self) -> None:
        """Load the delegate and invoke once in a child process first: a delegate can abort its process."""
        tpu = next((d for d in self.selection.devices if d.name == "tpu"), None)
        if tpu is None:
            return
        model = next((m.edgetpu_tflite for m in self.models if m.edgetpu_tflite is not None), None)
        if model is None:
            return  # every tpu benchmark skips with its own reason
        from .edgetpu import probe

        ok, message = probe(str(model), tpu.metadata.get("selector"))
        if not ok:
            self.selection.devices.remove(tpu)
            self.selection.skipped["tpu"] = f"the Edge TPU probe failed in a child process: {message}"

    def _artifacts_header(self) -> dict | None:
        if self.artifacts is None:
            return {"models": [str(m.tflite) for m in self.models], "origin": "user"}
        m = self.artifacts.manifest
        return {"root": str(self.artifacts.root), "manifest_sha256": self.artifacts.manifest_sha256,
                "grid": m["grid"], "dataset": {k: m["dataset"][k] for k in ("name", "sha256", "windows", "classes")},
                "features": {k: m["features"][k] for k in ("key", "spectrogram", "n_features")},
                "build_versions": m["versions"], "build_git": m.get("git")}

    def _build(self) -> Path:
        """Build (or reuse) the grid's artifacts in a child process that may import TensorFlow."""
        opt = self.option
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{opt('grid')}-{Path(opt('dataset')).name}")
        out = Path(opt("build_dir")) / safe
        cmd = [sys.executable, "-m", "edgecheck", "build", "--grid", opt("grid"), "--dataset", opt("dataset"),
               "--out", str(out)]
        # TensorFlow's C++ log: 3 hides its harmless "NodeDef mentions attribute" errors; Python errors still show
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
        capman = self.config.pluginmanager.getplugin("capturemanager")
        tw = self.config.get_terminal_writer()
        tw.line(f"edgecheck: building or reusing artifacts: {' '.join(cmd[2:])}")
        if capman is not None:
            with capman.global_and_fixture_disabled():
                proc = subprocess.run(cmd, env=env)
        else:
            proc = subprocess.run(cmd, env=env)
        if proc.returncode != 0:
            raise EdgecheckError(f"edgecheck build failed (exit {proc.returncode}); command: {' '.join(cmd)}")
        return out


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SESSION_KEY] = EdgecheckSession(config)
    config.addinivalue_line("markers", "edgecheck: a benchmark parametrized over edgecheck's models and devices")
    # a twin's benchmark is a prediction, never timed: its unused benchmark fixture is expected
    config.addinivalue_line("filterwarnings", "ignore:Benchmark fixture was not used at all")
    config.addinivalue_line("markers", "edgecheck_claim: a check of the paper's claims, run after every benchmark")
    config.addinivalue_line("markers", "edgecheck_after_sweep: reads the whole sweep's results, run after every benchmark")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Claims and other checks of the whole sweep read its results: run them after every benchmark."""
    items.sort(key=lambda item: any(item.get_closest_marker(m) for m in ("edgecheck_claim", "edgecheck_after_sweep")))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Say up front how long the sweep should take: a long run should not be a silent one."""
    es = session.config.stash.get(SESSION_KEY, None)
    if es is None or es.recorder is None:
        return
    pairs = [item.callspec.params for item in session.items
             if hasattr(item, "callspec") and "device" in item.callspec.params
             and item.callspec.params.get("device") is not None
             and not item.get_closest_marker("skip")]
    measured = [p for p in pairs if p["device"].kind == "measured"]
    t = es.recorder.timing
    per_model = (t.rounds + t.warmup_rounds) * t.round_seconds + 0.3  # rounds, plus load and accuracy windows
    if es.recorder.energy is not None:
        per_model += es.recorder.energy.windows * es.recorder.energy.window_seconds
    devices = sorted({p["device"].name for p in measured})
    estimate = len(measured) * per_model + len({p["device"].key for p in measured}) * (
        es.recorder.energy.idle_seconds if es.recorder.energy else 0)
    tw = session.config.get_terminal_writer()
    if es.recorder.energy is not None:
        probe = es.recorder.energy.probe
        what = "model: the twins' power model x measured latency (estimated)" if probe == "model" else \
            ", ".join(f"{k} {v}" for k, v in probe.describe().items() if v is not None)
        tw.line(f"edgecheck: energy probe: {what}")
    tw.line(
        f"edgecheck: {len(pairs)} benchmarks, {len(measured)} measured"
        + (f" on {', '.join(devices)}, about {estimate:.0f} s" if measured else "")
        + f"; {len(pairs) - len(measured)} simulated (instant)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "edgecheck_model" not in metafunc.fixturenames or "device" not in metafunc.fixturenames:
        return
    session = metafunc.config.stash[SESSION_KEY]
    session.prepare()
    if session.error:
        metafunc.parametrize(["edgecheck_model", "device"],
                             [pytest.param(None, None, marks=pytest.mark.usefixtures("_edgecheck_error"),
                                           id="setup-error")])
        return
    params = []
    for model in session.models:
        for dev in session.selection.devices:
            reason = dev.cannot_run(model)
            marks = [pytest.mark.skip(reason=f"{dev.name}: {reason}")] if reason else []
            dev_id = dev.name if not dev.remote else f"{dev.name}@{dev.remote.replace('ssh://', '')}"
            params.append(pytest.param(model, dev, id=f"{model.name}-{dev_id}", marks=marks))
        for name, reason in session.selection.skipped.items():
            params.append(pytest.param(model, None, id=f"{model.name}-{name}", marks=pytest.mark.skip(reason=f"{name}: {reason}")))
    metafunc.parametrize(["edgecheck_model", "device"], params)


@pytest.fixture
def _edgecheck_error(request: pytest.FixtureRequest) -> None:
    raise pytest.UsageError(request.config.stash[SESSION_KEY].error)


@pytest.fixture
def edgecheck_session(request: pytest.FixtureRequest) -> EdgecheckSession:
    session = request.config.stash[SESSION_KEY]
    session.prepare()
    if session.error:
        raise pytest.UsageError(session.error)
    return session


def _interpreter_factory(session: EdgecheckSession, name: str):
    dev = next((d for d in session.selection.devices if d.name == name and d.kind == "measured" and not d.remote), None)
    if dev is None:
        reason = session.selection.skipped.get(name) or session.selection.absent.get(name) or "not selected (--device)"
        pytest.skip(f"{name}: {reason}")

    def make(model: art.ModelEntry):
        """An allocated interpreter for ``model`` on this device (the Edge TPU runs the *_edgetpu.tflite)."""
        reason = dev.cannot_run(model)
        if reason:
            pytest.skip(f"{name}: {reason}")
        return dev.open(model).interp

    return make


@pytest.fixture
def tpu_interpreter(edgecheck_session: EdgecheckSession):
    """``tpu_interpreter(model)``: the model's interpreter with the Edge TPU delegate; skips without a TPU."""
    return _interpreter_factory(edgecheck_session, "tpu")


@pytest.fixture
def a53_interpreter(edgecheck_session: EdgecheckSession):
    """``a53_interpreter(model)``: the model's CPU interpreter on a Cortex-A53; skips on other hosts."""
    return _interpreter_factory(edgecheck_session, "a53")


@pytest.fixture
def edgecheck(edgecheck_session: EdgecheckSession) -> Recorder:
    """The recorder: ``edgecheck.measure(benchmark, edgecheck_model, device)``."""
    return edgecheck_session.recorder


@pytest.fixture
def edgecheck_claims(edgecheck_session: EdgecheckSession):
    """``edgecheck_claims("C3")``: that claim evaluated over this run's results so far (all devices)."""
    from .claims import evaluate, load_thresholds

    def get(claim_id: str):
        thresholds = load_thresholds(edgecheck_session.option("claims"))
        results = edgecheck_session.recorder.results
        found = {c.id: c for c in evaluate(results.data, thresholds, with_chart=claim_id == "C6")}
        if claim_id not in found:
            raise pytest.UsageError(f"unknown claim {claim_id!r}")
        edgecheck_session.claims[claim_id] = found[claim_id]
        results.update(claims=[c.to_dict() for c in sorted(edgecheck_session.claims.values(), key=lambda c: c.id)])
        return found[claim_id]

    return get


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    es = session.config.stash.get(SESSION_KEY, None)
    if es is None or es.recorder is None:
        return
    results = es.recorder.results
    # evidence for the rule that the measuring process never imports TensorFlow
    results.update(measuring_process={"tensorflow_imported": "tensorflow" in sys.modules,
                                      "pytest_exit_status": int(exitstatus)})
    energy = es.recorder.energy
    if energy is not None and hasattr(energy.probe, "energy") and hasattr(energy.probe, "path"):
        from .energy_trace import fill_from_trace

        try:  # the meter's log may already cover every window; if not, it stays pending
            fill_from_trace(results.data, energy.probe)
            results.save()
        except EdgecheckError as e:
            results.update(energy_pending=str(e))
    if es.option("save_baseline"):
        from .files import atomic_write_json

        atomic_write_json(es.option("save_baseline"), results.data)
    if es.option("baseline"):
        from . import results as res
        from .compare import compare, has_regression

        try:
            baseline = res.load(es.option("baseline"))
            th = thresholds_from_options(baseline, es.option("compare_threshold"))
            rows = compare(baseline, results.data, th, force=es.option("force_baseline"))
        except EdgecheckError as e:
            es.comparison_error = str(e)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        es.comparison = rows
        results.update(comparison={"baseline": es.option("baseline"), "rows": [r.to_dict() for r in rows]})
        if has_regression(rows):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    _write_report(es)


def thresholds_from_options(baseline: dict, values: list[str]):
    """The baseline's thresholds, overridden by ``--compare-threshold`` values."""
    from .compare import Thresholds

    th = Thresholds.from_baseline(baseline)
    for v in values:
        key, sep, num = v.partition("=")
        model, _, metric = key.rpartition(":")
        try:
            value = float(num)
        except ValueError:
            value = None
        if not sep or metric not in ("latency", "energy", "accuracy") or value is None or value < 0:
            raise EdgecheckError(f"--compare-threshold {v!r}: use latency|energy|accuracy=NUMBER, "
                                 "optionally prefixed by an architecture (4x2048:latency=0.3)")
        if model:
            th.per_model.setdefault(model, {})[metric] = value
        else:
            setattr(th, metric, value)
    return th


def _write_report(es: "EdgecheckSession") -> None:
    target = es.option("report")
    if target == "none" or not es.recorder.results.data["entries"]:
        return
    from .files import atomic_write_text
    from .report import html_report

    path = target or str(Path(es.recorder.results.path).with_suffix(".html"))
    try:
        atomic_write_text(path, html_report([(str(es.recorder.results.path), es.recorder.results.data)], es.comparison))
        es.report_path = path
    except (EdgecheckError, ImportError) as e:
        es.report_error = f"no HTML report: {e}"


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None or session.recorder is None:
        if session is not None and session.error:
            terminalreporter.write_line(f"edgecheck: {session.error}", red=True)
        return
    from .report import results_table

    data = session.recorder.results.data
    terminalreporter.section("edgecheck results")
    for line in results_table(data):
        terminalreporter.write_line(line)
    if session.claims:
        from .claims import table

        terminalreporter.section("edgecheck claims")
        for line in table(sorted(session.claims.values(), key=lambda c: c.id)):
            terminalreporter.write_line(line)
    if data.get("twin_form"):
        terminalreporter.section("edgecheck twin form")
        for device, form in sorted(data["twin_form"].items()):
            terminalreporter.write_line(
                f"the twins' form fitted on {len(form['fitted_on'])} {device} models of <= 1 M parameters predicts the "
                f"{len(form['held_out'])} larger ones with a median error of {form['held_out_mdape_pct']:.1f} % "
                f"(allowed {form['max_held_out_mdape_pct']:g} %; measured)",
                red=form["held_out_mdape_pct"] > form["max_held_out_mdape_pct"])
    if session.comparison is not None or session.comparison_error:
        from .compare import has_regression, summary, table

        terminalreporter.section("edgecheck baseline comparison")
        if session.comparison_error:
            terminalreporter.write_line(f"edgecheck: {session.comparison_error}", red=True)
        else:
            for line in table(session.comparison, only_changes=True):
                terminalreporter.write_line(line)
            counts = summary(session.comparison)
            terminalreporter.write_line("summary: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())),
                                        red=has_regression(session.comparison))
    terminalreporter.write_line(f"results: {session.recorder.results.path}")
    if session.report_path:
        terminalreporter.write_line(f"report: {session.report_path}")
    elif session.report_error:
        terminalreporter.write_line(f"edgecheck: {session.report_error}", yellow=True)
    if "tensorflow" in sys.modules:
        terminalreporter.write_line("edgecheck: WARNING: TensorFlow was imported in the measuring process", red=True)
