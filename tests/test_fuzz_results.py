"""Hand-edited results files, generated: JSON mutations of a real results file (the cpu measured, and both twins)
fed to every command that reads results, in process.

Each mutated file is either used as it is (exit 0 or 1) or refused with one line naming the file and the field
(exit 2): never a traceback from deep inside a reader, and no input file changed. What the schema accepts is what
the readers can use (edgecheck/results.schema.json).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from support import INFERENCE, assert_one_line_error, run_main, run_pytest, snapshot

FAST = ("--processes", "2", "--rounds", "3", "--round-time", "0.001")
SETTINGS = dict(deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])


@pytest.fixture(scope="module")
def real_run(smoke_artifacts, tmp_path_factory) -> dict:
    """A real run's results: three models measured on this host's cpu and predicted by both twins."""
    folder = tmp_path_factory.mktemp("real-run")
    results = folder / "r.json"
    proc = run_pytest(INFERENCE, "--artifacts", str(smoke_artifacts), "--device", "cpu", "--device", "tpu-sim",
                      "--device", "a53-sim", "--results", str(results), "--report", "none", *FAST)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return json.loads(results.read_text())


def _paths(node, prefix=()) -> list[tuple]:
    """Every place in a JSON tree: the mutation sites."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):  # the first few items of long lists (samples, entries) stand for all
            out += _paths(v, prefix + (i,))
    return out


BIG = "__1e999__"  # written as the bare literal 1e999, which JSON parsers read as infinity
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.sampled_from([0, -1, 1e308, -1e-300, 0.5, 10**400, BIG])
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6)


def _mutate(data: dict, draw) -> dict:
    data = copy.deepcopy(data)
    paths = [p for p in _paths(data) if p]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        node = data
        try:
            for k in path[:-1]:
                node = node[k]
            if draw(st.booleans()) and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = draw(JSON_VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this place
    return data


def _write(path: Path, data: dict) -> None:
    # allow_nan: a hand edit may leave NaN tokens (and 1e999) that strict readers refuse
    path.write_text(json.dumps(data).replace(json.dumps(BIG), "1e999"))


def _check(code: int, err: str) -> None:
    assert "Traceback" not in err, err[-3000:]
    if code == 2:
        assert_one_line_error(code, err)
    else:
        assert code in (0, 1), (code, err[-2000:])


@settings(max_examples=30, **SETTINGS)
@given(data=st.data())
def test_mutated_results_are_used_or_refused_in_one_line(real_run, tmp_path, data):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir(exist_ok=True)
    out.mkdir(exist_ok=True)
    base, mutated = inputs / "base.json", inputs / "mutated.json"
    _write(base, real_run)
    _write(mutated, _mutate(real_run, data.draw))
    before = snapshot(inputs)
    for argv in (("compare", base, mutated), ("compare", mutated, base), ("claims", mutated, "-o", out / "c"),
                 ("merge", base, mutated, "-o", out / "m.json"), ("chart", mutated, "-o", out),
                 ("energy-from-trace", mutated, inputs / "no-trace.csv", "-o", out / "e.json")):
        code, _, err = run_main(*argv)
        _check(code, err)
    assert snapshot(inputs) == before


@settings(max_examples=6, **SETTINGS)
@given(data=st.data())
def test_mutated_results_make_a_report_or_one_line(real_run, tmp_path, data):
    inputs = tmp_path / "in"
    inputs.mkdir(exist_ok=True)
    mutated = inputs / "mutated.json"
    _write(mutated, _mutate(real_run, data.draw))
    before = snapshot(inputs)
    code, _, err = run_main("report", mutated, "-o", tmp_path / "r.html")
    _check(code, err)
    assert snapshot(inputs) == before
