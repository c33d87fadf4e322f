"""A pytest plugin that times the phases of a `make bench` run, for the README's profile (Speed).

    PYTHONPATH=ci .venv/bin/python -m pytest -p phaseclock -p no:labgrid -p no:hypothesispytest -p no:xdist benchmarks

prints, after the run, wall seconds per phase: start-up to configure, collection (the builds' reuse checks and the
artifacts), the harness check, the cpu sweep (the first cpu benchmark waits for the whole sweep), the other cpu
benchmarks (pytest-benchmark's in-process rounds and each entry), the twins' benchmarks, the claims, and the
session's end (results file, twins' form, HTML report), which it splits by timing the session's own steps.
Phases come from hook times, so nothing of edgecheck is changed; the wall figure includes whatever else runs.
"""
from __future__ import annotations

import functools
import time

_T0 = time.perf_counter()
_marks: list[tuple[str, float]] = []
_inside: dict[str, float] = {}


def _mark(name: str) -> None:
    _marks.append((name, time.perf_counter() - _T0))


def _timed(owner, name: str) -> None:
    f = getattr(owner, name)

    @functools.wraps(f)
    def g(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            _inside[name] = _inside.get(name, 0.0) + time.perf_counter() - t

    setattr(owner, name, g)


def pytest_configure(config) -> None:
    _mark("configure")
    from edgecheck.session import EdgecheckSession

    for name in ("_build", "_write_report", "_twin_form", "finish"):
        _timed(EdgecheckSession, name)


def pytest_collection_finish(session) -> None:
    _mark("collection")


def pytest_runtest_logfinish(nodeid, location) -> None:
    _mark(nodeid)


def _phase(nodeid: str) -> str:
    if "test_harness" in nodeid:
        return "harness check"
    if "test_claims" in nodeid:
        return "claims"
    if "test_inference" in nodeid and nodeid.endswith("-cpu]"):
        return "cpu benchmarks"
    if "test_inference" in nodeid:
        return "twin benchmarks"
    return "other tests"


def pytest_unconfigure(config) -> None:
    _mark("end")
    phases: dict[str, float] = {}
    prev, first_cpu = 0.0, True
    for name, t in _marks:
        label = {"configure": "start-up and configure", "collection": "collection", "end": "session end"}.get(name)
        if label is None:
            label = _phase(name)
            if label == "cpu benchmarks" and first_cpu:
                label, first_cpu = "cpu sweep (first cpu benchmark)", False
        phases[label] = phases.get(label, 0.0) + t - prev
        prev = t
    lines = [f"{v:6.2f} s  {k}" for k, v in phases.items()]
    lines += [f"        of which {k}: {v:.2f} s" for k, v in sorted(_inside.items())]
    lines.append(f"{prev:6.2f} s  total (from the plugin's import)")
    print("\nphaseclock:\n" + "\n".join(lines))
