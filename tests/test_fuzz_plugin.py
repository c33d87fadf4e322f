"""The pytest plugin's options driven with generated bad input: values parsed in process by pytest's own parser,
and whole sessions (pytester, in process) given files that are missing, directories, empty, not UTF-8, a JSON
list, or hold NaN.

A bad value is a usage error (exit 4) in one line that names the option, before anything runs; a session either
runs or ends in that one line: never a traceback or INTERNALERROR, and no input file changed.
"""
from __future__ import annotations

import json

import jsonschema  # noqa: F401 - imported before any session (below)
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from support import INFERENCE, REPO, entry, run, snapshot

import edgecheck.judge.compare  # noqa: F401
import edgecheck.judge.tables  # noqa: F401
import edgecheck.measure.energy  # noqa: F401
import edgecheck.session  # noqa: F401
import edgecheck.twins.model  # noqa: F401

# The modules a session imports are imported above, first: pytester unloads every module a session imports for
# the first time, and extension modules (jsonschema's rpds, numpy's parts) cannot be loaded twice in one process.
SETTINGS = dict(deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

NUMBERS = st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e309", "", "abc", "1e400", "5", "0.01", "3601",
                           "99999999999999999999"])
HOSTILE = NUMBERS | st.text(max_size=10) | st.floats().map(repr)
OPTIONS = {  # option -> values that are also worth trying besides the hostile ones
    "--device": st.sampled_from(["cpu", "tpu-sim,a53-sim", "tpu@ssh://u@h:abc", "tpu@ssh://u@h:99999", "gpu",
                                 "a53@ssh://-oProxyCommand=x", "cpu@ssh://", ",", "tpu@ssh://u@h:0"]),
    "--grid": st.sampled_from(["smoke", "1x100000000", "layers=1-99999999;widths=1", "3y", "1x0", "65x2"]),
    "--energy-probe": st.sampled_from(["none", "hwmon:", "trace:", "sparkle", "model"]),
    "--compare-threshold": st.sampled_from(["latency=nan", "energy=-1", "x=1", "4x2048:latency=0.3", "latency"]),
    "--tpu-link": st.sampled_from(["usb2", "usb4"]),
    "--energy-window": NUMBERS, "--energy-windows": NUMBERS, "--idle-seconds": NUMBERS, "--trace-offset": NUMBERS,
    "--rounds": NUMBERS, "--processes": NUMBERS, "--round-time": NUMBERS, "--cpu-threads": NUMBERS,
    "--a53-threads": NUMBERS, "--tpu-clock": NUMBERS,
}


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_option_values_parse_or_are_one_usage_error(pytester, data):
    names = data.draw(st.lists(st.sampled_from(sorted(OPTIONS)), min_size=1, max_size=3, unique=True))
    argv = []
    for name in names:
        argv.append(f"{name}={data.draw(OPTIONS[name] | HOSTILE)}")
    try:
        pytester.parseconfig(*argv)
    except pytest.UsageError as e:
        errors = [line for line in str(e).splitlines() if "error:" in line]
        assert len(errors) == 1, str(e)
        assert "Traceback" not in str(e) and any(n in errors[0] for n in names), str(e)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Files a user can give the options: right ones and wrong ones."""
    d = tmp_path_factory.mktemp("files")
    (d / "results.json").write_text(json.dumps(run([entry("1x16", 100, 90, "tpu-sim", "simulated", 1e-5,
                                                          energy=1e-4)])))
    (d / "list.json").write_text("[1]")
    (d / "nan.json").write_text('{"schema": NaN}')
    (d / "empty.json").write_text("")
    (d / "latin1.json").write_bytes(b'{"x": "\xe9"}')
    (d / "folder").mkdir()
    (d / "junk.tflite").write_bytes(b"TFL3 but not really")
    return d


@settings(max_examples=15, **SETTINGS)
@given(data=st.data())
def test_a_session_runs_or_ends_in_one_usage_error(pytester, smoke_artifacts, files, data):
    pytester.makepyfile(test_inference=(REPO / INFERENCE).read_text())
    paths = st.sampled_from([files / n for n in ("results.json", "list.json", "nan.json", "empty.json", "latin1.json",
                                                 "folder", "junk.tflite", "missing.json")] + ["/proc/x.json"])
    option = data.draw(st.sampled_from(["--twin-constants", "--claims", "--baseline", "--results", "--model",
                                        "--artifacts", "--save-baseline", "--energy-probe"]))
    value = data.draw(paths)
    if option in ("--save-baseline", "--results"):  # written, as asked: never over one of the shared input files
        value = data.draw(st.sampled_from([pytester.path / "b.json", files / "folder", "/proc/x.json",
                                           pytester.path / "sub" / "deeper.json"]))
    if option == "--energy-probe":
        value = f"trace:{value}"
    # labgrid's own pytest plugin (the farm extra) starts its step logger once a process: not in a second session
    args = ["-p", "no:labgrid", "--device", "tpu-sim", "--report", "none", f"{option}={value}"]
    if option != "--artifacts":
        args += ["--artifacts", str(smoke_artifacts)]
    if option != "--results":
        args += ["--results", str(pytester.path / "r.json")]
    before = snapshot(files)
    result = pytester.runpytest_inprocess(*args)
    out = result.stdout.str() + "\n" + result.stderr.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out, out[-3000:]
    assert result.ret in (0, 1, 4, 5), (result.ret, out[-3000:])  # 5: a --model the twins cannot run: all skipped
    if result.ret == 4:  # pytest's one "ERROR: " line, and the message nowhere else
        (line,) = [line for line in out.splitlines() if line.startswith("ERROR: ")]
        assert out.count(line.removeprefix("ERROR: ")) == 1, out[-3000:]
    assert snapshot(files) == before
