"""The pytest plugin: options, and hooks of a few lines that hand off to ``session.EdgecheckSession``.

Loaded through the ``pytest11`` entry point (``edgecheck``). The options are
defined in ``options`` (shared with the ``edgecheck`` command) and validated
while pytest parses them; the files they name are loaded in ``pytest_configure``.
"""
from __future__ import annotations

import importlib.metadata
import os

import pytest

from edgecheck import artifacts as art
from edgecheck.config import DEFAULTS
from edgecheck.errors import EdgecheckError, one_line
from edgecheck.measure.kinds.a53 import KIND as A53_KIND
from edgecheck.measure.kinds.tpu import KIND as TPU_KIND
from edgecheck.measure.recorder import Recorder, benchmark_extra_info
from edgecheck.options import SessionConfig, add_options
from edgecheck.results import BENCHMARK_KEY, benchmark_header
from edgecheck.session import EdgecheckSession
from edgecheck.textfmt import safe_text

SESSION_KEY = pytest.StashKey[EdgecheckSession]()
DEFAULT_RESULTS = DEFAULTS.results


def _labgrid_plugin_adds_lg_coordinator(pluginmanager) -> bool:
    """labgrid's own pytest plugin defines --lg-coordinator (same dest): edgecheck then reads that one."""
    if pluginmanager.has_plugin("labgrid"):
        return True
    if pluginmanager.is_blocked("labgrid") or os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    return any(ep.name == "labgrid" for ep in importlib.metadata.entry_points(group="pytest11"))


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """Every option from ``edgecheck.options`` (the ``edgecheck`` command shares their checks, limits and help)."""
    g = parser.getgroup("edgecheck", "edgecheck: Edge TPU vs CPU benchmarks")
    add_options(g.addoption, skip=["lg_coordinator"] if _labgrid_plugin_adds_lg_coordinator(pluginmanager) else [])


def _uncaptured(config: pytest.Config, fn):
    """``fn`` run with pytest's output capture suspended: progress and the build's log reach the terminal."""
    capman = config.pluginmanager.getplugin("capturemanager")

    def run(*args):
        if capman is None:
            return fn(*args)
        with capman.global_and_fixture_disabled():
            return fn(*args)

    return run


def _write_line(config: pytest.Config):
    def write(line: str) -> None:
        tw = config.get_terminal_writer()
        tw.line()
        tw.line(line)

    return _uncaptured(config, write)


def _run_child(config: pytest.Config):
    import subprocess

    return _uncaptured(config, lambda cmd, env: subprocess.run(cmd, env=env).returncode)


@pytest.hookimpl(trylast=True)  # the other plugins are configured first: pytest unconfigures them after an error
def pytest_configure(config: pytest.Config) -> None:
    """Every option read once and every file they name loaded here, before anything is built or measured: a bad
    one is a usage error (one line, exit 4)."""
    try:
        options = SessionConfig.from_options(config.getoption)
    except EdgecheckError as e:
        raise pytest.UsageError(one_line(e)) from None
    config.stash[SESSION_KEY] = EdgecheckSession(options, _write_line(config), _run_child(config))
    config.addinivalue_line("markers", "edgecheck: a benchmark parametrized over edgecheck's models and devices")
    # a twin's benchmark is a prediction, never timed: its unused benchmark fixture is expected
    config.addinivalue_line("filterwarnings", "ignore:Benchmark fixture was not used at all")
    config.addinivalue_line("markers", "edgecheck_claim: a check of the paper's claims, run after every benchmark")
    config.addinivalue_line("markers", "edgecheck_after_sweep: reads the whole sweep's results, run after every "
                                       "benchmark")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """A bad option or file is a usage error: one line, exit 4. Claims and other checks of the whole sweep
    read its results: they run after every benchmark."""
    es = config.stash.get(SESSION_KEY, None)
    if es is not None and es.error:
        es.abandon()
        es.error_raised = True
        raise pytest.UsageError(one_line(es.error))
    items.sort(key=lambda item: any(item.get_closest_marker(m) for m in ("edgecheck_claim", "edgecheck_after_sweep")))


def _pairs(session: pytest.Session, es: EdgecheckSession) -> list:
    """(model, device) of every collected benchmark that will run."""
    out = []
    for item in session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "edgecheck_model" in params and not item.get_closest_marker("skip"):
            device = es.device_labelled(params["device"])
            if device is not None:
                out.append((es.model_named(params["edgecheck_model"]), device))
    return out


def pytest_collection_finish(session: pytest.Session) -> None:
    es = session.config.stash.get(SESSION_KEY, None)
    if es is None or es.recorder is None:
        return
    pairs = _pairs(session, es)
    es.plan(pairs)
    measured = [d for _, d in pairs if d.kind == "measured"]
    for line in es.estimate_line(len(measured), sorted({d.name for d in measured}), len({d.key for d in measured}),
                                 len(pairs)):
        session.config.get_terminal_writer().line(line)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One benchmark per (model, device), parametrized by their names, so pytest-benchmark's JSON reads
    ``{"edgecheck_model": "2x512", "device": "cpu"}``; the fixtures below hand the tests the objects."""
    if "edgecheck_model" not in metafunc.fixturenames or "device" not in metafunc.fixturenames:
        return
    es = metafunc.config.stash[SESSION_KEY]
    es.prepare()
    if es.error:  # reported as a usage error once collection is done
        metafunc.parametrize(["edgecheck_model", "device"], [pytest.param("-", "-", id="setup-error")],
                             indirect=True)
        return
    metafunc.parametrize(["edgecheck_model", "device"], [
        pytest.param(model.name, label, id=test_id, marks=[pytest.mark.skip(reason=why)] if why else [])
        for model, label, test_id, why in es.pairs()], indirect=True)


@pytest.fixture
def edgecheck_model(request: pytest.FixtureRequest, edgecheck_session: EdgecheckSession) -> art.ModelEntry:
    """The model of this benchmark (an ``artifacts.ModelEntry``: its files, size, build accuracy, test windows)."""
    return edgecheck_session.model_named(request.param)


@pytest.fixture
def device(request: pytest.FixtureRequest, edgecheck_session: EdgecheckSession):
    """The device of this benchmark: measured here, on a board, or a twin (``measure.devices.Device``)."""
    return edgecheck_session.device_labelled(request.param)


@pytest.fixture
def edgecheck_session(request: pytest.FixtureRequest) -> EdgecheckSession:
    """The session: its models, devices (``selection``), artifacts and recorder."""
    session = request.config.stash[SESSION_KEY]
    session.prepare()
    if session.error:
        raise pytest.UsageError(session.error)
    return session


def _interpreter_factory(session: EdgecheckSession, name: str):
    """``make(model)`` for the measured device of kind ``name`` on this machine (an interpreter fixture)."""
    dev, reason = session.local_device(name)
    if dev is None:
        pytest.skip(f"{name}: {reason}")

    def make(model: art.ModelEntry):
        """An allocated interpreter for ``model`` on this device (the Edge TPU runs the *_edgetpu.tflite)."""
        why = dev.cannot_run(model)
        if why:
            pytest.skip(f"{name}: {why}")
        return dev.open(model).interp

    return make


@pytest.fixture
def tpu_interpreter(edgecheck_session: EdgecheckSession):
    """``tpu_interpreter(model)``: an allocated interpreter for ``model`` (an ``edgecheck_model`` or one of
    ``edgecheck_session.models``) on this machine's Edge TPU, running its compiled *_edgetpu.tflite: Google's
    pycoral ``make_interpreter`` when pycoral is installed, else LiteRT with the libedgetpu delegate (--tpu-device
    picks the TPU). Skips with the reason when there is no usable Edge TPU here or the model is not compiled."""
    return _interpreter_factory(edgecheck_session, TPU_KIND.name)


@pytest.fixture
def a53_interpreter(edgecheck_session: EdgecheckSession):
    """``a53_interpreter(model)``: an allocated CPU interpreter for ``model`` on this machine's Arm Cortex-A53
    (--a53-threads threads). Skips with the reason on any other CPU."""
    return _interpreter_factory(edgecheck_session, A53_KIND.name)


@pytest.fixture
def energy_probe(edgecheck_session: EdgecheckSession):
    """``energy_probe.measure(invoke)``: energy per inference of your own loop, read from the configured
    ``--energy-probe`` of this machine (hwmon, rapl, joulescope): idle power first (``--idle-seconds``, once a
    session; also ``energy_probe.idle()``), then ``--energy-windows`` windows of ``--energy-window`` seconds of
    back-to-back calls; returns an ``results.Energy`` (total and dynamic J per inference, windows, provenance).
    E.g. ``def test_mine(tpu_interpreter, energy_probe, benchmark)``. Skips without a probe of this machine."""
    from edgecheck.measure.energy import EnergyMeter

    opts = edgecheck_session.recorder.energy
    if opts is None:
        pytest.skip("energy_probe: no --energy-probe given")
    if opts.probe is None:  # only remote boards measured: open it here for this test
        from dataclasses import replace

        from edgecheck.measure.probes import open_probe

        try:
            opts = replace(opts, probe=open_probe(opts.spec, edgecheck_session.config.trace_offset))
        except EdgecheckError as e:
            pytest.skip(f"energy_probe: {e}")
    if opts.probe == "model" or getattr(opts.probe, "integrates_later", False):
        pytest.skip(f"energy_probe: --energy-probe {opts.spec} has no power reading to give a test (it is an "
                    "estimate or a meter log integrated later)")
    return EnergyMeter(opts, edgecheck_session.recorder.ctx.idle)


class _Measurer:
    """The ``edgecheck`` fixture: ``edgecheck.measure(benchmark, edgecheck_model, device)``."""

    def __init__(self, recorder: Recorder):
        self.recorder = recorder

    @property
    def timing(self):
        return self.recorder.timing

    def measure(self, benchmark, model: art.ModelEntry, device):
        """Measure and record; skip a pair an earlier run already measured (``--resume``)."""
        if self.recorder.already_done(model, device) is not None:
            pytest.skip(f"already measured in {self.recorder.results.path} (--resume)")
        try:
            entry = self.recorder.measure(model, device, timer=_pytest_benchmark_timer(benchmark))
        except EdgecheckError as e:  # recorded as a failed entry; the test fails with the one-line reason
            pytest.fail(f"{model.name} on {device.label}: {e}", pytrace=False)
        benchmark.extra_info.update(benchmark_extra_info(model, device, entry))
        return entry.to_json()


def _pytest_benchmark_timer(benchmark):
    """Times ``fn`` (one round: ``invokes_per_call`` calls of a bound ``invoke``, no argument unpacking) with
    pytest-benchmark's pedantic mode, runner and timer; returns seconds per invoke of each round (None when
    --benchmark-disable). pytest-benchmark's own table and JSON then read seconds per invoke too, with
    ``invokes_per_call`` as their iterations, as pedantic(iterations=N) would record them."""
    def run(fn, rounds: int, invokes_per_call: int, warmup_rounds: int):
        benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=warmup_rounds)
        meta = getattr(benchmark, "stats", None)
        if meta is None or getattr(meta, "stats", None) is None:
            return None
        meta.stats.data[:] = [d / invokes_per_call for d in meta.stats.data]
        meta.iterations = invokes_per_call
        return [float(d) for d in meta.stats.data]

    return run


@pytest.fixture
def edgecheck(edgecheck_session: EdgecheckSession) -> _Measurer:
    """The recorder: ``edgecheck.measure(benchmark, edgecheck_model, device)`` returns the recorded entry."""
    return _Measurer(edgecheck_session.recorder)


@pytest.fixture
def edgecheck_claims(edgecheck_session: EdgecheckSession):
    """``edgecheck_claims("C3")``: that claim evaluated over this run's results so far (all devices)."""
    def get(claim_id: str):
        try:
            return edgecheck_session.claim(claim_id)
        except EdgecheckError as e:
            raise pytest.UsageError(str(e)) from None

    return get


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    es = session.config.stash.get(SESSION_KEY, None)
    if es is None:
        return
    if es.recorder is None:
        es.release_boards()
        return
    if es.finish(exitstatus):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    """The last hook pytest runs, also after an interrupt during collection: no labgrid place stays locked."""
    es = config.stash.get(SESSION_KEY, None)
    if es is not None:
        es.release_boards()


def _skip_reason(report) -> str:
    lr = report.longrepr
    return lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)


def _write_sections(terminalreporter, sections) -> None:
    for title, colour, lines in sections:
        if title:
            terminalreporter.section(title)
        for line in lines:  # names and messages from files: escaped, never interpreted by the terminal
            terminalreporter.write_line(safe_text(line, 4000), **({colour: True} if colour else {}))


@pytest.hookimpl(tryfirst=True)  # edgecheck's view first; pytest-benchmark's own table (--benchmark-table) follows
def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    """The results (-q: where they are), the claims, the comparison, the checks left inconclusive, and last the
    answer and the files written."""
    es = config.stash.get(SESSION_KEY, None)
    if es is None:
        return
    _write_sections(terminalreporter, es.summary(config.get_verbosity()))
    undecided = [(r.nodeid.split("::")[-1], _skip_reason(r).removeprefix("Skipped: "))
                 for r in terminalreporter.stats.get("skipped", []) if "inconclusive:" in _skip_reason(r)]
    if undecided:
        terminalreporter.section("edgecheck inconclusive")
        what = f"{len(undecided)} test(s) inconclusive (counted, never failed)"
        rows = sum(r.outcome.status == "inconclusive" for r in es.comparison.rows) if es.comparison is not None else 0
        if rows:
            what += (f"; the baseline comparison's {rows} inconclusive row(s) are listed above and counted in the "
                     "comparison's test")
        terminalreporter.write_line(what + ":", yellow=True)
        for test, why in undecided:
            terminalreporter.write_line(safe_text(f"  {test}: {why}", 4000))
    _write_sections(terminalreporter, es.closing())


def pytest_sessionstart(session: pytest.Session) -> None:
    """After every plugin's pytest_configure (pytest-benchmark's session exists only after its own, and plugin
    order depends on how they were installed): hide its table unless asked."""
    _benchmark_table_hidden(session.config)


def _benchmark_table_hidden(config: pytest.Config) -> None:
    """pytest-benchmark's own table (nanoseconds, one row per timed benchmark) is printed only with
    --benchmark-table (or its own --benchmark-verbose): edgecheck's answer is the run's last word."""
    bs = getattr(config, "_benchmarksession", None)
    if bs is not None and not config.getoption("benchmark_table") and not getattr(bs, "verbose", False):
        bs.quiet = True  # its display() prints nothing; its regression checks still run


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_scale_unit(config, unit, benchmarks, best, worst, sort):
    """pytest-benchmark's table in engineering units: the unit of the median of the medians (us for the models
    edgecheck times), unless --benchmark-time-unit says otherwise."""
    if unit != "seconds" or (config is not None and config.getoption("benchmark_time_unit", None)
                             not in (None, "auto")) or not benchmarks:
        return None
    medians = sorted(b["median"] for b in benchmarks if b.get("median") is not None)
    if not medians:
        return None
    m = medians[len(medians) // 2]
    for prefix, scale, limit in (("n", 1e9, 1e-6), ("u", 1e6, 1e-3), ("m", 1e3, 1.0)):
        if m < limit:
            return prefix, scale
    return "", 1.0


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config, benchmarks, output_json):
    """pytest-benchmark's saved JSON (``--benchmark-autosave``, ``--benchmark-save``, ``--benchmark-json``) carries
    the run's header beside the entries in ``extra_info``, so its storage can be a ``--baseline`` history."""
    es = config.stash.get(SESSION_KEY, None)
    if es is not None and es.recorder is not None:
        output_json[BENCHMARK_KEY] = benchmark_header(es.recorder.results.run)
