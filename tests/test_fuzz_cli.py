"""The ``edgecheck`` command driven with generated bad input, in process (``edgecheck.cli.main(argv)``): option
values (NaN, infinities, negative, huge, empty, text), and paths that are missing, directories, unwritable, empty,
not UTF-8, a JSON list, or hold NaN.

Every command either does its work (exit 0 or 1) or refuses in one line that names what is wrong (exit 2): never
a traceback, and no input file changed.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from support import REPO, assert_one_line_error, entry, run, run_main, snapshot

from edgecheck import artifacts as art

SETTINGS = dict(deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

NUMBERS = st.sampled_from(["nan", "NaN", "inf", "-inf", "-1", "0", "-0", "1e309", "1e-400", "", " ", "abc", "0x10",
                           "1_000", "٣", "2", "0.5", "99999999999999999999", "-", "--", "1e3"])
HOSTILE = NUMBERS | st.text(max_size=12) | st.floats().map(repr) | st.integers().map(str)


@pytest.fixture(scope="module")
def pool(tmp_path_factory, smoke_artifacts) -> dict[str, Path]:
    """Input files of every kind a user can get wrong, and one of each that is right."""
    d = tmp_path_factory.mktemp("pool")
    files = {
        "results": json.dumps(run([entry("1x32", 28676, 28640, "tpu-sim", "simulated", 4e-5, energy=1.8e-4),
                                   entry("1x32", 28676, 28640, "a53-sim", "simulated", 2e-5, energy=8e-5)])),
        "empty.json": "", "list.json": "[1, 2]", "nan.json": '{"schema": NaN}', "deep.json": "[" * 50000,
        "text.json": "hello", "trace.csv": "timestamp,watts\n" + "".join(f"{t},2.0\n" for t in range(50)),
        "badtrace.csv": "timestamp,watts\n1,nan\n", "log.txt": (REPO / "fixtures" / "compiler_logs" /
                                                                 "v16_partial_mapping.log").read_text(),
    }
    out = {}
    for name, text in files.items():
        p = d / (name if "." in name else f"{name}.json")
        p.write_text(text)
        out[name] = p
    (d / "latin1.json").write_bytes(b'{"schema": "edgecheck.results/2", "x": "\xe9"}')
    out["latin1.json"] = d / "latin1.json"
    (d / "folder").mkdir()
    out["folder"] = d / "folder"
    out["missing"] = d / "missing.json"
    out["model"] = art.load(smoke_artifacts).models[0].tflite
    out["proc"] = Path("/proc/x.json")
    out["devnull"] = Path("/dev/null")
    return out


def _path(pool, *keys):
    return st.sampled_from([pool[k] for k in keys]) | st.text(max_size=10)


def _argv(pool, out: Path) -> st.SearchStrategy:
    """A command line of one of the commands, with hostile values and paths."""
    inputs = list(pool)
    any_input = st.sampled_from([pool[k] for k in inputs]) | st.text(max_size=10)
    outputs = st.sampled_from([out / "o.json", pool["folder"], pool["proc"], out / "deeper" / "o.json"])
    bad_runs = _path(pool, "empty.json", "list.json", "nan.json", "deep.json", "text.json", "latin1.json", "folder",
                     "missing", "devnull")
    opt = lambda name, values: st.one_of(st.just([]), values.map(lambda v: [name, v]))  # noqa: E731
    return st.one_of(
        st.tuples(st.just(["compare"]), any_input.map(lambda p: [p]), any_input.map(lambda p: [p]),
                  opt("--threshold", HOSTILE | st.sampled_from(["latency=nan", "4x2048:latency=-1", "x=1"])),
                  opt("--latency-threshold", HOSTILE), opt("--json", outputs)),
        st.tuples(st.just(["claims"]), any_input.map(lambda p: [p]), opt("--claims", any_input),
                  st.just(["-o", out / "c"])),
        st.tuples(st.just(["merge"]), st.lists(any_input, min_size=1, max_size=2), opt("-o", outputs)),
        st.tuples(st.just(["energy-from-trace"]), any_input.map(lambda p: [p]), any_input.map(lambda p: [p]),
                  opt("--offset", HOSTILE), st.just(["-o", out / "e.json"])),
        st.tuples(st.just(["chart"]), any_input.map(lambda p: [p]), opt("--metric", HOSTILE | st.just("latency")),
                  opt("--budget-ms", HOSTILE), opt("-o", st.sampled_from([out, pool["results"], pool["proc"]]))),
        st.tuples(st.just(["report"]), bad_runs.map(lambda p: [p]), opt("--rate", HOSTILE),
                  opt("--budget-ms", HOSTILE), opt("--baseline", any_input), st.just(["-o", out / "r.html"])),
        st.tuples(st.just(["build", "--out", out / "b", "--dataset", pool["missing"].with_suffix(".npz")]),
                  opt("--grid", HOSTILE | st.sampled_from(["1x100000000", "layers=1-99999999;widths=1", "0x5",
                                                           "1x0", "layers=4-1;widths=2"])),
                  opt("--seed", HOSTILE), opt("--n-fft", HOSTILE), opt("--hop", HOSTILE), opt("--epochs", HOSTILE),
                  opt("--widen", HOSTILE)),
        st.tuples(st.just(["ab"]), bad_runs.map(lambda p: [p]), bad_runs.map(lambda p: [p]),
                  opt("--processes", HOSTILE), opt("--rounds", HOSTILE), opt("--device", HOSTILE | st.just("cpu")),
                  opt("-o", outputs)),
        st.tuples(st.just(["inspect"]), any_input.map(lambda p: [p])),
        st.tuples(st.just(["parse-compiler-log"]), any_input.map(lambda p: [p])),
        st.tuples(st.just(["recommend"]), any_input.map(lambda p: [p]), opt("--metric", HOSTILE),
                  opt("--results", any_input), opt("--tpu-link", HOSTILE | st.just("usb2"))),
        st.tuples(st.just(["calibrate", "--device"]), st.sampled_from([["tpu"], ["a53"]]),
                  st.lists(any_input, min_size=1, max_size=2), opt("--constants", any_input),
                  st.just(["-o", out / "k.json"])),
        st.lists(HOSTILE, max_size=4).map(lambda xs: [xs]),
    ).map(lambda parts: [str(a) for part in parts for a in part])


_STRATEGIES: dict = {}


@settings(max_examples=200, **SETTINGS)
@given(data=st.data())
def test_every_command_does_its_work_or_refuses_in_one_line(pool, tmp_path, monkeypatch, data):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    monkeypatch.chdir(out)  # relative paths the strategies make up land here
    key = (id(pool), str(out))
    if key not in _STRATEGIES:  # built once: building and validating it costs more than running a command
        _STRATEGIES[key] = _argv(pool, out)
    argv = data.draw(_STRATEGIES[key])
    folder = pool["results"].parent
    before = snapshot(folder)
    code, _, err = run_main(*argv)
    assert "Traceback" not in err, err[-3000:]
    if code == 2:
        assert_one_line_error(code, err)
    else:
        assert code in (0, 1), (argv, code, err[-2000:])
    assert snapshot(folder) == before, argv
