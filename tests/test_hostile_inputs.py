"""Hostile input, generated (issue 28): no input makes edgecheck overwrite its own input, hang, or crash.

One property test per family of hostile input. Each runs a fixed number of examples (``derandomize=True``, the same
cases every run), each case under a timeout of its own (``within``: SIGALRM interrupts a blocking open or read),
and asserts what a user sees: one line naming the file or option, exit 2 (CLI) or a usage error (pytest: the
configure-time ``SessionConfig``, exit 4), no traceback, no input changed, no special file replaced.

Families: output/input path collisions; special files (FIFO, device, directory, a link to /dev/zero, a read-only
file) as inputs and outputs; sysfs and hwmon readings; mutated baselines and results (and the property that what
the results schema accepts can be compared, reported and charted); mutated claims files and twin constants;
hostile strings reaching a terminal or Markdown; option bounds; --resume with a foreign entry; the build child's
crash. Together under 60 s on a 2-core machine.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from support import assert_one_line_error, entry, run, run_main, run_pytest, snapshot
from test_typed_results import energy_block, latency_block  # every schema-valid latency and energy block

from edgecheck.errors import EdgecheckError

SETTINGS = dict(deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CASE_TIMEOUT_S = 10  # no single case may take longer: a hang fails the test instead of stopping it
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x9b]")  # what a terminal would interpret (newline and tab aside)


@contextlib.contextmanager
def within(seconds: int = CASE_TIMEOUT_S):
    """Fail the case if it takes longer than ``seconds``: SIGALRM interrupts a blocking open() or read()."""
    def hang(signum, frame):
        raise AssertionError(f"hung: no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def cli(*argv) -> tuple[int, str, str]:
    with within():
        return run_main(*argv)


def _run(models=("1x32", "2x64", "4x512"), devices=(("cpu", "measured"), ("tpu-sim", "simulated"),
                                                   ("a53-sim", "simulated")), scale: float = 1.0) -> dict:
    """A small real-shaped run: three architectures on a measured cpu and both twins, with energy and bands."""
    es = []
    for i, m in enumerate(models):
        for d, kind in devices:
            lat = scale * 1e-4 * (i + 1) * (1 if d == "cpu" else 2)
            band = (lat * 0.8, lat, lat * 1.2) if kind == "simulated" else None
            es.append(entry(m, 1000 * (i + 1), 900 * (i + 1), d, kind, lat, energy=lat * 3,
                            processes=[lat * 0.99, lat, lat * 1.01] if kind == "measured" else None,
                            latency_ci=(lat * 0.98, lat * 1.02) if kind == "measured" else None,
                            band=band, energy_band=tuple(b * 3 for b in band) if band else None))
    return run(es)


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def _modes(folder: Path) -> dict[str, int]:
    return {p.name: p.lstat().st_mode for p in folder.iterdir()}


# ----------------------------------------------------------------------------
# 1. An output path that is also an input
# ----------------------------------------------------------------------------

# (command line builder, which input the output aliases): the builder gets the folder and the aliased path
CLI_COLLISIONS = {
    "compare --json BASELINE": lambda d, a: ("compare", a, d / "r.json", "--json", a),
    "compare --json RUN": lambda d, a: ("compare", d / "b.json", a, "--json", a),
    "report -o RUN": lambda d, a: ("report", a, "-o", a),
    "report -o --baseline": lambda d, a: ("report", d / "r.json", "--baseline", a, "-o", a),
    "claims -o RUN": lambda d, a: ("claims", a, "-o", Path(str(a).removesuffix(".claims.json"))),
    "merge -o RUN": lambda d, a: ("merge", d / "b.json", a, "-o", a),
    "energy-from-trace -o TRACE": lambda d, a: ("energy-from-trace", d / "r.json", a, "-o", a),
    "calibrate -o RESULTS": lambda d, a: ("calibrate", "--device", "tpu", a, "-o", a),
}


def _alias(folder: Path, target: Path, how: str) -> Path:
    """Another name of ``target``: itself, through ``..``, a symlink, or a hard link."""
    if how == "same":
        return target
    if how == "dotdot":
        (folder / "sub").mkdir(exist_ok=True)
        return folder / "sub" / ".." / target.name
    alias = folder / f"alias-{how}{''.join(target.suffixes)}"
    alias.unlink(missing_ok=True)
    (os.symlink if how == "symlink" else os.link)(target, alias)
    return alias


@settings(max_examples=24, **SETTINGS)
@given(command=st.sampled_from(sorted(CLI_COLLISIONS)), how=st.sampled_from(["same", "dotdot", "symlink", "hard"]))
def test_no_command_writes_over_a_file_it_reads(tmp_path_factory, command, how):
    d = tmp_path_factory.mktemp("collide")
    _write(d / "b.json", _run())
    _write(d / "r.json", _run(scale=2.0))  # twice as slow: a comparison with itself would call it unchanged
    target = d / ("r.claims.json" if command.startswith("claims") else "r.json")
    if command.startswith("claims"):
        _write(target, _run())
    if "TRACE" in command:
        target = d / "trace.csv"
        target.write_text("t,w\n0,1\n1,1\n")
    argv = CLI_COLLISIONS[command](d, _alias(d, target, how))
    before, modes = snapshot(d), _modes(d)
    code, _, err = cli(*argv)
    assert_one_line_error(code, err, contains="this command reads")
    assert snapshot(d) == before and _modes(d) == modes


SESSION_COLLISIONS = [("results", "baseline"), ("save_baseline", "baseline"), ("report", "results"),
                      ("report", "baseline"), ("results", "claims"), ("results", "twin_constants"),
                      ("save_baseline", "results"), ("report", "twin_constants"), ("results", "compiler_log")]


def _session_config(values: dict):
    from edgecheck.options import OPTIONS, SessionConfig

    opts = {dest: o.default for dest, o in OPTIONS.items()}
    opts.update(values)
    return SessionConfig.from_options(lambda dest: opts.get(dest))


@settings(max_examples=18, **SETTINGS)
@given(pair=st.sampled_from(SESSION_COLLISIONS), how=st.sampled_from(["same", "dotdot", "symlink", "hard"]))
def test_no_session_writes_over_a_file_it_reads(tmp_path_factory, pair, how):
    """pytest's outputs (--results and its journal, --save-baseline, --report) against its inputs, checked at
    configure time (the plugin turns the error into a usage error, exit 4)."""
    from edgecheck.judge.claims import DEFAULT_CLAIMS_FILE
    from edgecheck.twins.model import DEFAULT_CONSTANTS

    d = tmp_path_factory.mktemp("session")
    inputs = {"baseline": _write(d / "base.json", _run()), "claims": _write(d / "claims.json",
                                                                             json.loads(DEFAULT_CLAIMS_FILE.read_text())),
              "twin_constants": _write(d / "k.json", json.loads(DEFAULT_CONSTANTS.read_text())),
              "results": _write(d / "r.json", _run())}
    (d / "c.log").write_text("Edge TPU Compiler version 16.0.384591198\nInput model: m.tflite\n")
    (d / "m.tflite").write_bytes(b"\0\0\0\0TFL3" + b"\0" * 64)
    inputs["compiler_log"] = d / "c.log"
    out, src = pair
    values = {"results": str(d / "other.json"), "report": "none", "model": [str(d / "m.tflite")],
              src: [str(inputs[src])] if src == "compiler_log" else str(inputs[src])}
    values[out] = str(_alias(d, inputs[src], how))
    before, modes = snapshot(d), _modes(d)
    with within(), pytest.raises(EdgecheckError) as err:
        _session_config(values)
    msg = str(err.value)
    assert "\n" not in msg and f"--{out.replace('_', '-')}" in msg and (
        "this command reads" in msg or "both write" in msg), msg
    assert snapshot(d) == before and _modes(d) == modes


def test_pytest_refuses_to_save_the_baseline_it_compares_with(tmp_path):
    """The case that lost a baseline: ``--baseline X --save-baseline X``: exit 4, one line, X unchanged."""
    base = _write(tmp_path / "base.json", _run())
    before = snapshot(tmp_path)
    proc = run_pytest("benchmarks/test_inference.py", "--device", "tpu-sim", "--grid", "1x32", "--baseline",
                      str(base), "--save-baseline", str(base), "--results", str(tmp_path / "r.json"), timeout=120)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 4 and len(lines) == 1 and "--save-baseline" in lines[0] and "--baseline" in lines[0], \
        lines
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------
# 2. Special files as inputs and outputs
# ----------------------------------------------------------------------------


def _special(folder: Path, kind: str) -> Path:
    p = folder / f"special-{kind}.json"
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "zero":
        os.symlink("/dev/zero", p)
    elif kind == "device":  # a copy of /dev/full's node (root), else a link to /dev/null
        try:
            os.mknod(p, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        except PermissionError:
            os.symlink("/dev/null", p)
    elif kind == "directory":
        p.mkdir()
    elif kind == "socket":
        import socket

        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        s.close()
    return p


def _kind_of(p: Path) -> int:
    return stat.S_IFMT(os.stat(p).st_mode)


SPECIAL_INPUTS = {
    "compare RUN": lambda d, s: ("compare", d / "b.json", s),
    "compare BASELINE": lambda d, s: ("compare", s, d / "b.json"),
    "claims --claims": lambda d, s: ("claims", d / "b.json", "--claims", s, "-o", d / "out"),
    "merge RUN": lambda d, s: ("merge", d / "b.json", s, "-o", d / "m.json"),
    "report --baseline": lambda d, s: ("report", d / "b.json", "--baseline", s, "-o", d / "r.html"),
    "energy-from-trace TRACE": lambda d, s: ("energy-from-trace", d / "b.json", s, "-o", d / "e.json"),
    "parse-compiler-log LOG": lambda d, s: ("parse-compiler-log", s),
    "inspect MODEL": lambda d, s: ("inspect", s),
    "calibrate --constants": lambda d, s: ("calibrate", "--device", "tpu", d / "b.json", "--constants", s, "-o",
                                           d / "k.json"),
}
SPECIAL_OUTPUTS = {
    "merge -o": lambda d, s: ("merge", d / "b.json", "-o", s),
    "compare --json": lambda d, s: ("compare", d / "b.json", d / "b.json", "--json", s),
    "report -o": lambda d, s: ("report", d / "b.json", "-o", s),
    "energy-from-trace -o": lambda d, s: ("energy-from-trace", d / "b.json", d / "t.csv", "-o", s),
}


@settings(max_examples=30, **SETTINGS)
@given(role=st.sampled_from(sorted(SPECIAL_INPUTS) + sorted(SPECIAL_OUTPUTS)),
       kind=st.sampled_from(["fifo", "zero", "device", "directory", "socket", "readonly"]))
def test_special_files_are_refused_at_once_and_never_replaced(tmp_path_factory, role, kind):
    d = tmp_path_factory.mktemp("special")
    _write(d / "b.json", _run())
    (d / "t.csv").write_text("t,w\n0,1\n")
    if kind == "readonly":
        assume(role in SPECIAL_OUTPUTS)  # a read-only input is read as any other
        s = _write(d / "ro.json", _run())
        s.chmod(0o444)
    else:
        s = _special(d, kind)
    before_kind, before_mode = _kind_of(s), os.stat(s).st_mode
    build = SPECIAL_INPUTS.get(role) or SPECIAL_OUTPUTS[role]
    before = snapshot(d)
    start = time.monotonic()
    code, _, err = cli(*build(d, s))
    assert time.monotonic() - start < CASE_TIMEOUT_S
    assert_one_line_error(code, err)
    assert _kind_of(s) == before_kind and os.stat(s).st_mode == before_mode, "the special file was replaced"
    assert snapshot(d) == before


@pytest.mark.parametrize("kind", ["fifo", "directory", "zero"])
def test_resume_refuses_a_journal_that_is_no_file_at_once(tmp_path, kind):
    from edgecheck.results import ResultsFile

    results = tmp_path / "r.json"
    journal = tmp_path / "r.json.journal"
    special = _special(tmp_path, kind)
    special.rename(journal) if kind != "zero" else (special.unlink(), os.symlink("/dev/zero", journal))
    with within(), pytest.raises(EdgecheckError) as err:
        ResultsFile.start(results, {"run": {}}, resume=True)
    assert "\n" not in str(err.value) and str(journal) in str(err.value)
    assert not (tmp_path / "r.json.lock").exists()


def test_every_input_kind_has_a_cap_named_in_its_error(tmp_path):
    from edgecheck.files import SIZE_CAPS, read_bytes

    big = tmp_path / "big"
    big.write_bytes(b"x" * (SIZE_CAPS["claims"] + 1))
    with within(), pytest.raises(EdgecheckError, match=r"larger than the 1 MiB a claims file may be"):
        read_bytes(big, f"--claims: {big}", "claims")
    code, _, err = cli("claims", _write(tmp_path / "b.json", _run()), "--claims", big, "-o", tmp_path / "o")
    assert_one_line_error(code, err, contains="1 MiB")


# ----------------------------------------------------------------------------
# 3. Sensors: hwmon and sysfs readings
# ----------------------------------------------------------------------------

SENSOR_VALUES = st.one_of(st.sampled_from([b"inf", b"-inf", b"nan", b"1e999", b"\xff\xfe", b"", b"12abc",
                                           b"9" * 400, b"1" * 70000]),
                          st.binary(max_size=12))


@settings(max_examples=40, **SETTINGS)
@given(name=st.sampled_from(["power1_input", "update_interval"]), value=SENSOR_VALUES,
       special=st.sampled_from([None, None, None, "fifo", "zero", "directory"]))
def test_a_hwmon_reading_is_a_number_or_one_line(tmp_path_factory, name, value, special):
    from edgecheck.measure.probes import HwmonProbe

    root = tmp_path_factory.mktemp("hwmon")
    dev = root / "hwmon0"
    dev.mkdir()
    (dev / "name").write_text("ina260\n")
    (dev / "power1_input").write_text("2500000\n")
    (dev / "update_interval").write_text("2\n")
    target = dev / name
    if special:
        target.unlink()
        s = _special(dev, special)
        s.rename(target) if special != "zero" else (s.unlink(), os.symlink("/dev/zero", target))
    else:
        target.write_bytes(value)
    try:
        with within():
            probe = HwmonProbe.open("ina260", root)
            watts = probe.read_w()
    except EdgecheckError as e:
        assert "\n" not in str(e) and len(str(e)) < 400 and str(dev) in str(e), str(e)
        return
    assert watts == pytest.approx(2.5) and 0.001 <= probe.interval_s <= 10


# ----------------------------------------------------------------------------
# 4. Mutated baselines and results; what the schema accepts, the commands use
# ----------------------------------------------------------------------------

HOSTILE_NUMBERS = st.sampled_from([0, 0.0, -1e-5, -1, 5e-324, 1e308, "1", "x", True, None, [], {}, [1, 2],
                                   {"low": "a", "central": 1, "high": 2}, {"low": 3, "central": 2, "high": 1}])
SITES = [("latency", "stats", "median"), ("latency", "samples", 0), ("latency", "processes", 0, "median"),
         ("latency", "ci95"), ("latency", "band"), ("latency", "band", "low"), ("latency", "process_median"),
         ("energy", "total_j"), ("energy", "band"), ("energy", "ci95"), ("energy", "power_w"), ("energy", "spread_j"),
         ("device", "metadata", "board"), ("device", "metadata"), ("model", "compiler"),
         ("model", "size", "params"), ("model", "metrics", "int8", "macro_f1_ci95")]


def _set(node, path, value) -> None:
    for k in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(k, {} if not isinstance(k, int) else [])
        elif isinstance(node, list) and isinstance(k, int) and k < len(node):
            node = node[k]
        else:
            return
    if isinstance(node, dict) or (isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node)):
        node[path[-1]] = value


@st.composite
def mutated_run(draw) -> dict:
    data = _run()
    for _ in range(draw(st.integers(1, 3))):
        e = data["entries"][draw(st.integers(0, len(data["entries"]) - 1))]
        _set(e, draw(st.sampled_from(SITES)), copy.deepcopy(draw(HOSTILE_NUMBERS)))
    if draw(st.booleans()):  # a duplicate of an entry: equal, or with other figures
        dup = copy.deepcopy(data["entries"][0])
        if draw(st.booleans()):
            dup["latency"]["stats"]["median"] *= 3
        data["entries"].append(dup)
    return data


REPORT_TIMEOUT_S = 60  # the HTML report renders its figures with matplotlib: seconds each on a busy machine


@settings(max_examples=30, **SETTINGS)
@given(data=mutated_run())
def test_a_mutated_baseline_or_run_is_used_or_refused_in_one_line(tmp_path_factory, data):
    _use_mutated(tmp_path_factory, data, with_report=False)


@settings(max_examples=4, **SETTINGS)
@given(data=mutated_run())
def test_a_mutated_baseline_or_run_makes_a_report_or_one_line(tmp_path_factory, data):
    _use_mutated(tmp_path_factory, data, with_report=True)


def _use_mutated(tmp_path_factory, data: dict, with_report: bool) -> None:
    d = tmp_path_factory.mktemp("mutated")
    base, mutated, out = _write(d / "b.json", _run()), _write(d / "m.json", data), d / "out"
    out.mkdir()
    before = snapshot(d)
    argvs = [("compare", mutated, base), ("compare", base, mutated), ("claims", mutated, "-o", out / "c"),
             ("merge", base, mutated, "-o", out / "m.json"), ("chart", mutated, "-o", out)]
    if with_report:  # matplotlib's figures take seconds: a few examples render the whole report
        argvs.append(("report", mutated, "--baseline", base, "-o", out / "r.html"))
    for argv in argvs:
        with within(REPORT_TIMEOUT_S):
            code, stdout, err = run_main(*argv)
        assert "Traceback" not in err, err[-3000:]
        if code == 2:
            assert_one_line_error(code, err)
        else:
            assert code in (0, 1), (argv, code, err[-2000:])
            assert "nan" not in stdout.split("summary:")[-1], stdout[-2000:]  # no NaN ratio as a verdict
    assert {k: v for k, v in snapshot(d).items() if not k.startswith("out")} == before


def test_a_zero_or_negative_figure_and_a_conflicting_duplicate_are_refused_naming_them(tmp_path):
    from edgecheck.results import Run

    for site, value, field in ((("latency", "stats", "median"), 0, "latency/stats/median"),
                               (("energy", "total_j"), 0.0, "energy/total_j"),
                               (("energy", "total_j"), -1e-3, "energy/total_j"),
                               (("latency", "processes", 0, "median"), -1e-5, "processes/0/median")):
        data = _run()
        _set(data["entries"][0], site, value)
        with pytest.raises(EdgecheckError, match=re.escape(field)):
            Run.from_json(data, "b.json")
    data = _run()
    dup = copy.deepcopy(data["entries"][0])
    dup["latency"]["stats"]["median"] *= 2
    data["entries"].append(dup)
    with pytest.raises(EdgecheckError, match=r"entry 1x32@cdcdcdcdcdcd\|cpu appears twice with different figures"):
        Run.from_json(data, "b.json")
    data["entries"][-1] = copy.deepcopy(data["entries"][0])  # an equal repeat is one entry
    assert len(Run.from_json(data, "b.json").entries) == len(_run()["entries"])


def _schema_valid_runs_used(data):
    """Two runs whose latency and energy blocks are any the schema accepts (the generators of test_typed_results),
    compared, tabled, claimed and charted (the chart's rules) without an exception."""
    from edgecheck.judge.chart import build_chart
    from edgecheck.judge.claims import evaluate, load_thresholds, markdown
    from edgecheck.judge.compare import compare_runs
    from edgecheck.judge.tables import results_table
    from edgecheck.results import Run, validate

    runs = []
    for side in ("base", "run"):
        d = _run()
        for e in d["entries"]:
            e["latency"] = data.draw(st.none() | latency_block(False), label=f"{side} latency")
            e["energy"] = data.draw(st.none() | energy_block(False), label=f"{side} energy")
        validate(d, side)  # the generator makes only what the schema accepts
        runs.append(Run.from_json(d, side))
    with within():
        comparison = compare_runs(runs[0], runs[1])
        comparison.table()
        comparison.summary_line()
        results_table(runs[1])
        markdown(evaluate(runs[1], load_thresholds()))
        for metric in ("energy", "latency"):
            try:
                build_chart(runs[1], metric)
            except EdgecheckError as e:  # a chart that cannot be drawn says why in one line
                assert "\n" not in str(e)
    return runs, comparison


@settings(max_examples=25, **SETTINGS)
@given(st.data())
def test_anything_the_schema_accepts_can_be_compared_claimed_and_charted(data):
    _schema_valid_runs_used(data)


@settings(max_examples=3, **SETTINGS)
@given(st.data())
def test_anything_the_schema_accepts_can_be_reported(data):
    from edgecheck.judge.report import html_report

    runs, comparison = _schema_valid_runs_used(data)
    with within(REPORT_TIMEOUT_S):
        html_report([("r.json", runs[1])], comparison)


# ----------------------------------------------------------------------------
# 5. Claims files and twin constants: type, sign and range when loaded
# ----------------------------------------------------------------------------

BAD_SETTING = st.sampled_from(["0.5", "x", True, False, None, [], {}, -1, -0.01, 0, 1e300, 10**30, 2.5, 1.0000001])


def _leaves(node, at=()) -> list[tuple]:
    if isinstance(node, dict):
        return [p for k, v in node.items() if k not in ("schema", "note", "source", "kind", "confidence",
                                                        "contradicted_when") for p in _leaves(v, at + (k,))]
    return [at] if isinstance(node, (int, float)) and not isinstance(node, bool) else []


def _put(node, path, value):
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


@settings(max_examples=40, **SETTINGS)
@given(data=st.data())
def test_a_mutated_claims_file_is_checked_when_loaded(tmp_path_factory, data):
    from edgecheck.judge.claims import CLAIM_BOUNDS, DEFAULT_CLAIMS_FILE, _bound, load_thresholds

    d = tmp_path_factory.mktemp("claims")
    claims = json.loads(DEFAULT_CLAIMS_FILE.read_text())
    path = data.draw(st.sampled_from(_leaves(claims)))
    value = data.draw(BAD_SETTING)
    _put(claims, path, value)
    f = _write(d / "claims.json", claims)
    try:
        with within():
            loaded = load_thresholds(f)
    except EdgecheckError as e:
        assert "\n" not in str(e) and str(f) in str(e) and ".".join(map(str, path)) in str(e), str(e)
    else:  # accepted: a number of the right type inside its bounds
        lo, hi, whole = _bound(".".join(map(str, path)))
        assert isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi, (path, value)
        assert CLAIM_BOUNDS and loaded
    code, _, err = cli("claims", _write(d / "r.json", _run()), "--claims", f, "-o", d / "out")
    assert "Traceback" not in err and (code in (0, 1) or code == 2 and len(err.strip().splitlines()) == 1), err


def test_every_packaged_claims_setting_and_twin_constant_has_explicit_bounds():
    from edgecheck.judge.claims import DEFAULT_CLAIMS_FILE, _bound
    from edgecheck.twins.model import DEFAULT_CONSTANTS, constant_bound

    claims = json.loads(DEFAULT_CLAIMS_FILE.read_text())
    assert [p for p in _leaves(claims) if _bound(".".join(map(str, p))) is None] == []
    constants = json.loads(DEFAULT_CONSTANTS.read_text())
    missing = [p for p in _leaves(constants) if constant_bound(".".join(p[:-1] if p[-1] in ("value", "low", "high")
                                                                       else p)) is None]
    assert missing == []


@settings(max_examples=50, **SETTINGS)
@given(data=st.data())
def test_mutated_twin_constants_are_checked_when_loaded(tmp_path_factory, data):
    """A string, a bool, zero, a negative value or a huge one in the twins' constants: refused in one line when
    loaded, or within the constant's bounds and then usable by both twins."""
    from tinytflite import dense_tflite

    from edgecheck.twins.model import (
        DEFAULT_CONSTANTS,
        constant_bound,
        load_constants,
        predict_a53,
        predict_tpu,
        workload,
    )

    d = tmp_path_factory.mktemp("constants")
    constants = json.loads(DEFAULT_CONSTANTS.read_text())
    path = data.draw(st.sampled_from(_leaves(constants)))
    value = data.draw(st.one_of(BAD_SETTING, st.sampled_from([0, 1, 0.5, 4096.0, -4096])))
    _put(constants, path, value)
    f = _write(d / "k.json", constants)
    try:
        with within():
            c = load_constants(f)
    except EdgecheckError as e:
        assert "\n" not in str(e) and str(f) in str(e), str(e)
        return
    name = ".".join(path[:-1] if path[-1] in ("value", "low", "high") else path)
    lo, hi, whole = constant_bound(name)
    assert not isinstance(value, bool) and lo <= value <= hi and (not whole or value == int(value)), (name, value)
    w = workload(dense_tflite(d / "m.tflite", [16, 8, 4]))
    for p in (predict_tpu(w, c), predict_a53(w, c)):
        assert p.latency_s > 0 and p.energy_j > 0


# ----------------------------------------------------------------------------
# 6. Hostile strings never reach a terminal or Markdown as they are
# ----------------------------------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.sampled_from(["\x1b[2J\x1b[31mred", "a\rb", "\x9b31m", "[x](javascript:alert(1))", "![i](http://e/x.png)",
                     "<img src=x onerror=alert(1)>", "a|b", "\u202eevil", "x" * 5000, "\x07\x08\x00"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20))


@settings(max_examples=30, **SETTINGS)
@given(name=HOSTILE_TEXT, where=st.sampled_from(["model", "device", "dataset", "error"]))
def test_text_from_files_is_escaped_for_the_terminal_and_markdown(tmp_path_factory, name, where):
    from edgecheck.judge.tables import results_table

    d = tmp_path_factory.mktemp("strings")
    data = _run()
    if where == "model":
        for e in data["entries"][:3]:
            e["model"]["name"] = name
    elif where == "device":
        data["entries"][0]["device"]["name"] = data["entries"][0]["device"]["key"] = name
    elif where == "dataset":
        data["artifacts"]["dataset"]["name"] = name
    else:
        data["entries"][0].update(status="failed", error=name)
    r = _write(d / "r.json", data)
    outputs = []
    for argv in (("compare", _write(d / "b.json", _run()), r, "--all"), ("claims", r, "-o", d / "c")):
        code, out, err = cli(*argv)
        assert code in (0, 1, 2) and "Traceback" not in err, err[-2000:]
        outputs += [out, err]
    from edgecheck.results import load

    outputs += results_table(load(r))
    for text in outputs:
        assert not CONTROL.search(text.replace("\n", "").replace("\t", "")), repr(text[:400])
        assert "\u202e" not in text
    md = (d / "c.claims.md").read_text() if (d / "c.claims.md").exists() else ""
    assert "](" not in md.replace("\\](", "").replace("\\]\\(", "") and "![" not in md.replace("\\!\\[", ""), md
    assert not CONTROL.search(md.replace("\n", ""))


# ----------------------------------------------------------------------------
# 7. Options: every one has an upper bound; no empty device or architecture
# ----------------------------------------------------------------------------

BAD_OPTIONS = st.one_of(
    st.tuples(st.sampled_from(["--worker-timeout", "--lg-wait", "--lg-boot-timeout"]),
              st.sampled_from(["1e300", "86401", "1e9", "inf", "0", "-1"])),
    st.tuples(st.just("--tpu-clock"), st.sampled_from(["1e300", "1001", "0"])),
    st.tuples(st.just("--trace-offset"), st.sampled_from(["1e300", "-1e300", "nan"])),
    st.tuples(st.just("--device"), st.sampled_from(["", " ", ",", " , "])),
    st.tuples(st.just("--compare-threshold"), st.sampled_from([":latency=0.1", " :energy=0.2", ":accuracy=0"])))


@settings(max_examples=25, **SETTINGS)
@given(option=BAD_OPTIONS)
def test_out_of_bounds_options_are_usage_errors(option):
    """Parsed by pytest's own parser as the plugin adds them (exit 4 in a session) and by the command's."""
    import argparse

    from edgecheck.options import OPTIONS

    flag, value = option
    parser = argparse.ArgumentParser(exit_on_error=False)
    OPTIONS[flag.lstrip("-").replace("-", "_")].add(parser.add_argument)
    with pytest.raises(argparse.ArgumentError) as err:
        parser.parse_args([f"{flag}={value}"])
    assert "\n" not in str(err.value)


def test_a_threshold_naming_no_compared_architecture_is_a_usage_error_with_close_matches(tmp_path):
    b, r = _write(tmp_path / "b.json", _run()), _write(tmp_path / "r.json", _run())
    code, _, err = cli("compare", b, r, "--threshold", "4x521:latency=0.3")
    assert_one_line_error(code, err, contains="did you mean 4x512")
    code, _, err = cli("compare", b, r, "--threshold", ":latency=0.1")
    assert_one_line_error(code, err, contains="architecture before ':' is empty")
    with pytest.raises(EdgecheckError, match="--compare-threshold: .*no architecture '2x46'.*did you mean 2x64"):
        _session_config({"baseline": str(b), "compare_threshold": [("2x46", "latency", 0.3)], "grid": "1x32,2x64",
                         "results": str(tmp_path / "o.json"), "report": "none"})


# ----------------------------------------------------------------------------
# 8. --resume keeps only the sweep's entries; 9. the build child's crash
# ----------------------------------------------------------------------------


def test_resume_keeps_only_entries_of_the_current_sweep(tmp_path):
    from edgecheck.files import append_json_line
    from edgecheck.results import Entry, ResultsFile, model_key

    path = tmp_path / "r.json"
    header = {"run": {"grid": "1x32", "devices": [{"name": "cpu", "key": "cpu"}]}}
    journal = path.with_name(path.name + ".journal")
    mine = entry("1x32", 1000, 900, "cpu", "measured", 1e-4)
    foreign = entry("9x9999", 1000, 900, "cpu", "measured", 5e-5)  # a model outside the sweep
    append_json_line(journal, {"header": header}, fresh=True)
    append_json_line(journal, {"entry": mine})
    append_json_line(journal, {"entry": foreign})
    sweep = {model_key("1x32", "cd" * 32)}
    rf = ResultsFile.start(path, header, resume=True, models=sweep)
    try:
        assert [e.model.name for e in rf.entries] == ["1x32"] and rf.left_out == 1
        assert rf.done(Entry.from_json(mine).key) is not None
    finally:
        rf.close()
    assert [e["model"]["name"] for e in json.loads(path.read_text())["entries"]] == ["1x32"]


def test_a_crash_of_the_build_child_is_the_builds_failure_naming_the_dataset(tmp_path):
    """A real child killed by SIGSEGV (as TensorFlow dies on some data): one line naming the dataset and the
    signal, raised as the build's failure."""
    from edgecheck.options import SessionConfig
    from edgecheck.session import EdgecheckSession

    crash = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    es = EdgecheckSession(SessionConfig(build_dir=str(tmp_path)), lambda line: None,
                          lambda cmd, env: subprocess.run(crash, env=env).returncode)
    with pytest.raises(EdgecheckError) as err:
        es._build("data/extreme.npz")
    msg = str(err.value)
    assert "\n" not in msg and "dataset data/extreme.npz" in msg and "SIGSEGV" in msg, msg
