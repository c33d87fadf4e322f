"""The results records are typed on top and plain JSON underneath: every committed results file loads into the
typed fields and is written back as it was read, the schema and the records agree on what they accept, and a bad
interval or band is refused where it is made, with one line naming the field."""
from __future__ import annotations

import copy
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import REPO
from support import entry as make_entry
from support import run as make_run

from edgecheck.errors import EdgecheckError
from edgecheck.judge.tables import results_table
from edgecheck.results import (
    RESULTS_SCHEMA,
    Band,
    Energy,
    Entry,
    InProcess,
    Interval,
    Latency,
    Memory,
    ProcessTiming,
    Run,
    load,
    rows,
    validate,
)


def committed_results() -> list:
    """Every results file committed under fixtures/ and tests/ (found by its schema, not by a list kept here)."""
    found = []
    for path in sorted([*REPO.glob("fixtures/**/*.json"), *REPO.glob("tests/**/*.json")]):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(data, dict) and str(data.get("schema", "")).startswith("edgecheck.results/"):
            found.append(path)
    return found


def without_nulls(node):
    """``node`` without the dict keys whose value is null: an unset optional field is left out when written."""
    if isinstance(node, dict):
        return {k: without_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [without_nulls(v) for v in node]
    return node


def test_the_committed_baseline_is_found():
    assert REPO / "fixtures/baselines/twins-default-collar.json" in committed_results()


@pytest.mark.parametrize("path", committed_results(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_committed_results_file_loads_round_trips_and_gives_the_same_rows(path):
    original = json.loads(path.read_text())
    run = load(path)
    written = run.to_json()
    # the one normalisation: an older file's schema is written as the current one (results/1 -> /2 renames
    # nothing); every key, value and null of the file comes back
    assert written == {**original, "schema": RESULTS_SCHEMA}
    assert json.dumps(written, sort_keys=True) == json.dumps({**original, "schema": RESULTS_SCHEMA}, sort_keys=True)
    again = Run.from_json(json.loads(json.dumps(written)), "round trip")
    assert rows(again, failed=True) == rows(run, failed=True) and rows(run)
    assert results_table(again) == results_table(run)
    for e in run.entries:
        # nothing a reader uses is left in the keep-unknown-keys bucket
        known = {"band", "band_j", "power_band_w", "ci95", "processes", "process_cv", "process_median",
                 "unstable", "in_process", "errors", "memory"}
        for rec in (e, e.latency, e.energy):
            assert rec is None or not (set(rec.extra) & known), rec.extra


def test_the_baseline_twins_bands_are_typed_and_feed_the_rows():
    run = load(REPO / "fixtures/baselines/twins-default-collar.json")
    tpu = [e for e in run.entries if e.device.name == "tpu-sim"]
    assert tpu and all(isinstance(e.latency.band, Band) and isinstance(e.energy.band, Band)
                       and isinstance(e.energy.band_j, Interval) and isinstance(e.energy.power_band_w, Band)
                       for e in tpu)
    e = tpu[0]
    assert (e.energy.band_j.low, e.energy.band_j.high) == (e.energy.band.low, e.energy.band.high)
    row = next(r for r in rows(run) if r.device == "tpu-sim" and r.model == e.model.name)
    assert row.twin_band and row.latency_ci == (e.latency.band.low, e.latency.band.high)
    assert row.energy_ci == (e.energy.band.low, e.energy.band.high)
    a53 = next(r for r in rows(run) if r.device == "a53-sim")
    assert a53.twin_band and a53.latency_ci[0] < a53.latency_s < a53.latency_ci[1]  # a53-sim has a band too


def test_a_measured_entry_keeps_its_processes_memory_and_in_process_rounds_as_records():
    data = make_run([make_entry("1x32", 1000, 900, "cpu", "measured", 2e-5, processes=[1.9e-5, 2e-5, 2.2e-5],
                                latency_ci=(1.9e-5, 2.2e-5), unstable="throttled")])
    lat = data["entries"][0]["latency"]
    lat["process_cv"], lat["process_median"], lat["errors"] = 0.05, 2e-5, ["process 3: killed"]
    lat["in_process"] = {"samples": [2.1e-5, 2.0e-5], "iterations_per_round": 50, "timer": "pytest-benchmark"}
    data["entries"][0]["memory"] = {"peak_rss_bytes": 3000, "baseline_rss_bytes": 1000, "model_rss_bytes": 2000,
                                    "measured": "peak RSS"}
    run = Run.coerce(copy.deepcopy(data))
    e = run.entries[0]
    assert [p.median for p in e.latency.processes] == [1.9e-5, 2e-5, 2.2e-5]
    assert isinstance(e.latency.processes[0], ProcessTiming) and e.latency.processes[0].rounds == 1
    assert e.latency.ci95 == Interval(1.9e-5, 2.2e-5) and e.latency.unstable == "throttled"
    assert isinstance(e.latency.in_process, InProcess) and e.latency.in_process.iterations_per_round == 50
    assert e.memory == Memory(3000, 1000, 2000, "peak RSS") and e.latency.extra == {} and e.extra == {}
    r = rows(run)[0]
    assert (r.latency_processes, r.latency_ci, r.unstable, r.memory_bytes) == \
        ((1.9e-5, 2e-5, 2.2e-5), (1.9e-5, 2.2e-5), "throttled", 2000)
    assert without_nulls(run.to_json()["entries"]) == data["entries"]  # (the model record writes arch: null)


@pytest.mark.parametrize("where, value, field", [
    (("latency", "ci95"), [2e-5, 1e-5], "latency.ci95"),
    (("latency", "band"), {"low": 1e-5, "central": 3e-5, "high": 2e-5}, "latency.band"),
    (("energy", "band"), {"low": 1e-5, "central": 2e-5, "high": 3e-5, "unit": "J"}, "energy.band"),
    (("energy", "band_j"), [3.0, 1.0], "energy.band_j"),
    (("energy", "ci95"), [3.0, 1.0], "energy.ci95"),
    (("energy", "power_band_w"), {"low": 4.0, "central": 3.0, "high": 5.0}, "energy.power_band_w"),
    (("latency", "processes"), [{"median": -1.0}], "latency.processes/0"),
    (("latency", "in_process"), {"samples": ["fast"]}, "latency.in_process"),
    (("memory",), {"peak_rss_bytes": -5}, "memory"),
])
def test_a_bad_value_is_refused_when_the_file_is_read_with_one_line_naming_the_field(tmp_path, where, value, field):
    data = make_run([make_entry("1x32", 1000, 900, "cpu", "measured", 2e-5, energy=1e-4)])
    node = data["entries"][0]
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(EdgecheckError) as err:
        load(path)
    msg = str(err.value)  # the schema names a path (latency/ci95), the records a field (latency.ci95)
    assert "\n" not in msg and str(path) in msg and field.replace(".", "/") in msg.replace(".", "/"), msg


def test_a_bad_value_is_refused_where_a_stage_sets_it():
    lat = Latency.from_samples([1e-3, 2e-3])
    with pytest.raises(EdgecheckError, match=r"^latency\.ci95: interval: low 0\.002 > high 0\.001$"):
        lat.ci95 = [2e-3, 1e-3]
    with pytest.raises(EdgecheckError, match=r"^latency\.process_cv: must be a finite number"):
        lat.process_cv = math.nan
    en = Energy(total_j=1e-3, provenance="simulated")
    with pytest.raises(EdgecheckError, match=r"^energy\.band: band: expected low <= central <= high"):
        en.band = {"low": 1.0, "central": 0.5, "high": 2.0}
    en.band = {"low": 1.0, "central": 1.5, "high": 2.0}  # a twin sets the JSON form; the record is typed
    assert en.band == Band(1.0, 1.5, 2.0) and en.twin_band == Interval(1.0, 2.0)
    with pytest.raises(EdgecheckError, match=r"^band high: must be a finite number"):
        Band(0.0, 1.0, math.inf)
    with pytest.raises(EdgecheckError, match=r"^entry\.memory: peak_rss_bytes: must be a whole number >= 0"):
        Entry(model=None, device=None, kind="measured", provenance="x", status="ok", memory={"peak_rss_bytes": 1.5})


# ----------------------------------------------------------------------------
# Schema-valid latency and energy blocks, generated: the records build from every one
# ----------------------------------------------------------------------------

NUMBER = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-2**62, 2**62))
# latencies, energies and powers: the schema's ``positive`` (results.FIGURE_RANGE: a comparison divides by them)
POSITIVE = st.one_of(st.floats(1e-12, 1e6), st.integers(1, 10**6), st.sampled_from([1e-12, 1e6]))
COUNT = st.one_of(st.integers(0, 2**40), st.sampled_from([0.0, 3.0]))  # JSON Schema counts 3.0 as an integer
TEXT = st.text(max_size=12)


@st.composite
def ordered(draw, n: int, numbers=POSITIVE) -> list:
    return sorted(draw(st.lists(numbers, min_size=n, max_size=n)))


def interval(may_be_unordered: bool):
    return st.lists(POSITIVE, min_size=2, max_size=2) if may_be_unordered else ordered(2)


def band(may_be_unordered: bool):
    three = st.lists(POSITIVE, min_size=3, max_size=3) if may_be_unordered else ordered(3)
    return three.map(lambda v: dict(zip(("low", "central", "high"), v)))


def optional(strategy):
    """A key that is absent, null, or set."""
    return st.one_of(st.just(...), st.none(), strategy)


def block(draw, keys: dict) -> dict:
    out = {}
    for k, strategy in keys.items():
        v = draw(strategy)
        if v is not ...:
            out[k] = v
    out.update(draw(st.dictionaries(st.text(max_size=5).map(lambda k: "x_" + k), TEXT, max_size=2)))  # unknown
    return out


@st.composite
def latency_block(draw, may_be_unordered: bool) -> dict:
    samples = draw(st.lists(POSITIVE, min_size=1, max_size=4))
    stats = {"n": len(samples), "min": min(samples), "max": max(samples), "mean": draw(NUMBER),
             "median": draw(POSITIVE)}
    process = st.fixed_dictionaries({"median": POSITIVE}, optional={
        "process": st.integers(-5, 50), "position": COUNT, "rounds": COUNT, "iterations": COUNT,
        "short_rounds": COUNT, "repeated": st.none() | TEXT, "unstable": st.none() | TEXT})
    in_process = st.fixed_dictionaries({"samples": st.lists(NUMBER, max_size=3)},
                                       optional={"iterations_per_round": COUNT, "timer": st.none() | TEXT})
    return {"unit": "s", "samples": samples, "stats": stats, **block(draw, {
        "processes": st.just(...) | st.lists(process, max_size=3),
        "process_median": optional(POSITIVE), "process_cv": optional(NUMBER), "ci95": optional(interval(
            may_be_unordered)), "unstable": optional(TEXT), "errors": st.just(...) | st.lists(TEXT, max_size=2),
        "in_process": optional(in_process), "band": optional(band(may_be_unordered)),
        "rounds": optional(COUNT), "timer": optional(TEXT), "simulated": optional(st.booleans())})}


@st.composite
def energy_block(draw, may_be_unordered: bool) -> dict:
    return {"unit": "J", "total_j": draw(st.none() | POSITIVE), "provenance": draw(TEXT), **block(draw, {
        "dynamic_j": optional(NUMBER), "power_w": optional(POSITIVE), "spread_j": optional(ordered(2)),
        "ci95": optional(interval(may_be_unordered)), "band_j": optional(interval(may_be_unordered)),
        "band": optional(band(may_be_unordered)), "power_band_w": optional(band(may_be_unordered)),
        "pending": optional(st.booleans()), "note": optional(TEXT), "error": optional(TEXT)})}


@st.composite
def results(draw, may_be_unordered: bool = False) -> dict:
    kind = draw(st.sampled_from(["measured", "simulated"]))
    e = make_entry("1x32", 1000, 900, draw(st.sampled_from(["cpu", "tpu-sim", "a53-sim"])), kind, 1e-5)
    e["latency"] = draw(st.none() | latency_block(may_be_unordered))
    e["energy"] = draw(st.none() | energy_block(may_be_unordered))
    memory = st.fixed_dictionaries({}, optional={"peak_rss_bytes": COUNT, "baseline_rss_bytes": COUNT,
                                                 "model_rss_bytes": st.integers(-2**40, 2**40), "measured": TEXT})
    e["memory"] = draw(optional(memory))
    if e["memory"] is ...:
        del e["memory"]
    return make_run([e])


PROPERTY = settings(max_examples=150, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(results())
def test_every_schema_valid_latency_and_energy_block_builds_renders_and_round_trips(data):
    validate(data, "generated")  # the generator makes only what the schema accepts
    run = Run.from_json(copy.deepcopy(data), "generated")
    assert len(rows(run, failed=True)) == 1
    assert len(results_table(run)) >= 3
    # written back as generated, but for the optional keys generated as null: an unset field is left out
    assert without_nulls(run.to_json()["entries"]) == without_nulls(data["entries"])


@PROPERTY
@given(results(may_be_unordered=True))
def test_an_unordered_interval_or_band_is_the_only_schema_valid_value_refused(data):
    validate(data, "generated")
    e = data["entries"][0]
    pairs = [(b, k) for b in ("latency", "energy") for k in ("ci95", "band_j", "band", "power_band_w")
             if e.get(b) and e[b].get(k) is not None]
    ends = {f"{b}.{k}": list(e[b][k].values()) if isinstance(e[b][k], dict) else e[b][k] for b, k in pairs}
    bad = [name for name, values in ends.items() if values != sorted(values)]
    try:
        run = Run.from_json(copy.deepcopy(data), "generated")
    except EdgecheckError as err:
        assert bad and "\n" not in str(err) and any(f in str(err) for f in bad), (bad, str(err))
        return
    assert not bad
    rows(run, failed=True)
    results_table(run)
