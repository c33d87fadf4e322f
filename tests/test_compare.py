"""Baseline comparison on runs with known answers: process-level statistics, Holm over a run's comparisons,
identity matching, missing entries, bad thresholds and samples, old baselines."""
import copy
import json

import numpy as np
import pytest
from support import load, run_edgecheck

from edgecheck.config import DEFAULTS
from edgecheck.errors import EdgecheckError
from edgecheck.judge.compare import (
    DIFFERENT,
    IMPROVEMENT,
    MISSING_LABEL,
    REGRESSION,
    TOO_CLOSE_LABEL,
    UNCHANGED,
    UNSTABLE_LABEL,
    Thresholds,
    compare,
    fingerprint_differences,
    has_regression,
)
from edgecheck.results import RESULTS_SCHEMA, Run
from edgecheck.stats import hodges_lehmann, holm, p_greater, summarize

MODELS = 24  # the default grid's size: one run makes 24 latency comparisons


def entry(name, process_medians, device="cpu", sha=None, rounds=3, energy_windows=None, simulated=False):
    """A measured entry whose processes have the given medians (each process's rounds spread 1 % around it)."""
    samples = [m * f for m in process_medians for f in np.linspace(0.99, 1.01, rounds)]
    lat = {"unit": "s", "samples": samples, "stats": summarize(samples)}
    if not simulated:
        lat["processes"] = [{"process": i, "median": m, "rounds": rounds} for i, m in enumerate(process_medians)]
        lat["process_cv"] = float(np.std(process_medians) / np.mean(process_medians))
    else:
        lat["simulated"] = True
    e = {"model": {"name": name, "sha256": sha or (name.encode().hex() * 16)[:64], "size": {"params": 1,
                                                                                          "layer_sizes": [8, 4]}},
         "device": {"name": device, "kind": "simulated" if simulated else "measured", "key": f"{device}:x"},
         "kind": "simulated" if simulated else "measured", "provenance": "p", "status": "ok", "latency": lat}
    if energy_windows:
        e["energy"] = {"unit": "J", "total_j": float(np.median(energy_windows)), "provenance": "measured: test",
                       "windows": [{"t0": 0, "t1": 1, "invokes": 1000, "energy_j": w * 1000} for w in energy_windows]}
    return e


def run_of(entries):
    return {"schema": RESULTS_SCHEMA, "created_utc": "now", "entries": entries,
            "artifacts": {"dataset": {"sha256": "d1"}, "features": {"key": "k"}, "grid": {"architectures": "g"}},
            "run": {"devices": [{"name": "cpu", "key": "cpu:x", "metadata": {"cpu_model": "X"}}]}}


def sweep(rng, cv, processes=DEFAULTS.processes, slowdown=lambda i: 1.0):
    """A run of the default grid's size: each model's process medians lognormal around its latency."""
    return run_of([entry(f"m{i}", list(1e-5 * (1 + i) * slowdown(i) * np.exp(rng.normal(0, cv, processes))))
                   for i in range(MODELS)])


QUIET = Thresholds(drift_sd=0.01)  # a machine whose run-to-run drift is small (measured so by a history)


def outcomes(rng, cv, slowdown, trials=40, processes=DEFAULTS.processes, th=None):
    runs, rows = [], []
    for _ in range(trials):
        got = compare(sweep(rng, cv, processes), sweep(rng, cv, processes, slowdown), th)
        runs.append(has_regression(got))
        rows += [r.verdict for r in got if r.metric == "latency"]
    return sum(runs) / trials, rows


# -------------------------------------------------------------------- the statistics themselves


def test_hodges_lehmann_and_its_interval():
    a, b = np.log([1.0, 1.01, 0.99, 1.02, 0.98]), np.log([1.2, 1.21, 1.19, 1.22, 1.18])
    est, lo, hi = hodges_lehmann(a, b)
    assert est == pytest.approx(np.log(1.2), abs=0.01) and lo < est < hi and lo > 0
    assert p_greater(a, b, np.log(1.05)) < 0.01 and p_greater(b, a, 0.0) > 0.99


def test_holm_is_step_down():
    assert holm([0.001, 0.02, 0.03], 0.05) == [True, True, True]
    assert holm([0.02, 0.02, 0.5], 0.05) == [False, False, False]  # 0.02 > 0.05 / 3 at the first step
    assert holm([0.01, 0.04], 0.05) == [True, True]


# -------------------------------------------------------------------- the shipped defaults, on process-level data


def test_the_power_claim_at_the_shipped_defaults():
    """README: with the shipped defaults (10 processes, threshold 5 %, alpha 0.05), 2 % noise between
    processes and a machine whose drift between sessions is small, a +10 % slowdown of every model fails the run
    every time and is flagged on nearly every model; unchanged runs never fail."""
    assert (DEFAULTS.processes, Thresholds().latency, Thresholds().alpha) == (10, 0.05, 0.05)
    rng = np.random.default_rng(0)
    failed, rows = outcomes(rng, 0.02, lambda i: 1.10, th=QUIET)
    assert failed == 1.0 and rows.count(REGRESSION) / len(rows) >= 0.95
    failed, rows = outcomes(rng, 0.02, lambda i: 1.0, th=QUIET)
    assert failed == 0.0 and REGRESSION not in rows
    assert rows.count(UNCHANGED) / len(rows) >= 0.9  # decided, not inconclusive


def test_a_slowdown_too_small_or_too_noisy_to_call_is_inconclusive_not_a_failure():
    rng = np.random.default_rng(1)
    failed, rows = outcomes(rng, 0.10, lambda i: 1.05, trials=20)
    assert failed <= 0.05
    assert rows.count(TOO_CLOSE_LABEL) + rows.count(UNSTABLE_LABEL) >= 0.5 * len(rows)


def test_one_model_slowed_alone_is_caught_and_named():
    rng = np.random.default_rng(2)
    caught = 0
    for _ in range(20):
        rows = compare(sweep(rng, 0.02), sweep(rng, 0.02, slowdown=lambda i: 1.15 if i == 7 else 1.0))
        regressed = [r.model for r in rows if r.verdict == REGRESSION]
        assert regressed in ([], ["m7"])
        caught += regressed == ["m7"]
    assert caught >= 18


def test_both_directions_are_treated_alike():
    """A noisy speed-up is as inconclusive as a noisy slowdown (never reported as a sure improvement)."""
    rng = np.random.default_rng(3)
    noisy_base = [entry("m", list(1e-5 * np.exp(rng.normal(0, 0.3, 10))))]
    for factor in (0.8, 1.25):
        noisy_run = [entry("m", list(1e-5 * factor * np.exp(rng.normal(0, 0.3, 10))))]
        for e in noisy_base + noisy_run:
            e["latency"]["unstable"] = "robust CV across processes 30 % > 10 %"
        (row,) = [r for r in compare(run_of(copy.deepcopy(noisy_base)), run_of(noisy_run)) if r.metric == "latency"]
        assert row.verdict == UNSTABLE_LABEL and row.outcome.status == "inconclusive"


def test_a_clear_improvement_is_reported_and_passes():
    base = run_of([entry("m", [1e-5 * f for f in (1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.01, 0.99, 1.0)])])
    fast = run_of([entry("m", [0.8e-5 * f for f in (1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.01, 0.99, 1.0)])])
    (row,) = compare(base, fast)
    assert row.verdict == IMPROVEMENT and not has_regression([row]) and row.ratio == pytest.approx(0.8, rel=0.02)


# -------------------------------------------------------------------- matching, missing, bad input


def _base():
    return run_of([entry(f"m{i}", [1e-5 * (1 + i)] * 10) for i in range(3)])


def test_missing_entries_fail_unless_allowed():
    base = _base()
    run = copy.deepcopy(base)
    run["entries"] = run["entries"][:2]
    rows = compare(base, run)
    assert has_regression(rows) and [r.verdict for r in rows if r.model == "m2"] == [MISSING_LABEL]
    rows = compare(base, run, allow_missing=True)
    assert not has_regression(rows) and [r.outcome.status for r in rows if r.model == "m2"] == ["inconclusive"]


def test_a_changed_model_file_is_a_different_model_not_a_slower_one():
    base = _base()
    run = copy.deepcopy(base)
    run["entries"][0]["model"]["sha256"] = "ef" * 32
    run["entries"][0]["latency"]["samples"] = [3e-5] * 30
    run["entries"][0]["latency"]["stats"] = summarize([3e-5] * 30)
    rows = compare(base, run)
    m0 = [r for r in rows if r.model == "m0"]
    assert [r.verdict for r in m0] == [DIFFERENT] and m0[0].outcome.reason == "not-testable"
    assert not has_regression(rows)


def test_simulated_entries_match_by_layer_sizes_and_compare_exactly():
    base = run_of([entry("1x32", [1e-4], device="tpu-sim", sha="aa" * 32, simulated=True)])
    retrained = copy.deepcopy(base)
    retrained["entries"][0]["model"]["sha256"] = "bb" * 32  # another build, the same shape
    assert [r.verdict for r in compare(base, retrained)] == [UNCHANGED]
    tiny = copy.deepcopy(retrained)
    tiny["entries"][0]["latency"]["stats"]["median"] = 1e-4 * (1 + 1e-6)
    (row,) = compare(base, tiny)
    assert row.verdict == REGRESSION and "exact" in row.detail


@pytest.mark.parametrize("bad", [float("nan"), -0.1, float("inf")])
def test_bad_thresholds_are_refused(bad):
    with pytest.raises(EdgecheckError, match="threshold latency: must be a finite number >= 0"):
        Thresholds(latency=bad)
    with pytest.raises(EdgecheckError, match="threshold 4x2048:energy"):
        Thresholds(per_model={"4x2048": {"energy": bad}})


@pytest.mark.parametrize("bad", [float("nan"), 0.0, -1e-5])
def test_nan_or_non_positive_samples_are_refused_as_they_are_read(bad):
    """A latency sample of NaN, 0 or below never reaches a comparison (it would divide by it): results holding one
    are refused as they are read, naming the field."""
    base = _base()
    run = copy.deepcopy(base)
    e = run["entries"][1]
    e["latency"]["samples"][0] = bad
    match = "a number out of range" if bad != bad else "less than the minimum of 1e-12"
    with pytest.raises(EdgecheckError, match=f"entries/1/latency/samples/0: .*{match}"):
        compare(base, run)


def test_energy_is_compared_over_windows():
    wins = [1e-4 * f for f in (1.0, 1.01, 0.99, 1.02, 0.98)]
    base = run_of([entry("m", [1e-5] * 10, energy_windows=wins)])
    more = run_of([entry("m", [1e-5] * 10, energy_windows=[w * 1.3 for w in wins])])
    rows = compare(base, more)
    (row,) = [r for r in rows if r.metric == "energy"]
    assert row.verdict == REGRESSION and "5 vs 5 windows" in row.detail


def test_an_old_baseline_without_processes_is_compared_with_a_note():
    old = run_of([entry("m", [1e-5] * 10)])
    old["entries"][0]["latency"].pop("processes")
    old["schema"] = "edgecheck.results/1"
    (row,) = compare(old, run_of([entry("m", [1.02e-5] * 10)]))
    assert "weaker test: the baseline has one process" in row.detail and row.verdict != REGRESSION


def test_mismatched_fingerprints_are_refused():
    a = run_of([entry("a", [1.0])])
    b = copy.deepcopy(a)
    b["artifacts"]["dataset"]["sha256"] = "d2"
    with pytest.raises(EdgecheckError, match="baseline refused.*dataset differs"):
        compare(a, b)
    assert compare(a, b, force=True)
    c = copy.deepcopy(a)
    c["run"]["devices"][0]["metadata"]["cpu_model"] = "Y"
    assert any("cpu_model" in d for d in fingerprint_differences(Run.coerce(a), Run.coerce(c)))
    d = copy.deepcopy(a)
    d["run"]["devices"][0]["metadata"]["frequency_mhz"] = 1234  # volatile: never blocks
    assert fingerprint_differences(Run.coerce(a), Run.coerce(d)) == []


def test_per_model_thresholds():
    base = run_of([entry("big", [1e-4 * f for f in (1, 1.01, 0.99) * 4]),
                   entry("small", [1e-5 * f for f in (1, 1.01, 0.99) * 4])])
    slow = run_of([entry("big", [1.15e-4 * f for f in (1, 1.01, 0.99) * 4]),
                   entry("small", [1.15e-5 * f for f in (1, 1.01, 0.99) * 4])])
    rows = compare(base, slow, Thresholds(drift_sd=0.01, per_model={"big": {"latency": 0.30}}))
    assert rows[0].model == "(whole run)" and rows[0].verdict == REGRESSION  # +15 % everywhere: beyond the drift
    rows = rows[1:]
    verdict = {r.model: r.verdict for r in rows}
    assert verdict == {"big": UNCHANGED, "small": REGRESSION}


# -------------------------------------------------------------------- the CLI


def test_cli_compare_exit_codes(tmp_path):
    rng = np.random.default_rng(5)
    base = sweep(rng, 0.01)
    slower = copy.deepcopy(base)
    for e in slower["entries"]:
        for p in e["latency"]["processes"]:
            p["median"] *= 1.25
        e["latency"]["samples"] = [v * 1.25 for v in e["latency"]["samples"]]
        e["latency"]["stats"] = summarize(e["latency"]["samples"])
    pb, ps = tmp_path / "base.json", tmp_path / "slow.json"
    pb.write_text(json.dumps(base))
    ps.write_text(json.dumps(slower))
    assert run_edgecheck("compare", str(pb), str(pb), check=False).returncode == 0
    proc = run_edgecheck("compare", str(pb), str(ps), "--json", str(tmp_path / "diff.json"), check=False)
    assert proc.returncode == 1 and "regression" in proc.stdout
    diff = json.loads((tmp_path / "diff.json").read_text())
    assert diff["summary"]["regression"] == MODELS + 1  # every model, and the whole run (+25 %, beyond the drift)
    assert diff["schema"] == "edgecheck.comparison/3" and diff["kind"] == "baseline" and diff["failed"] is True
    assert diff["baseline"] == {"label": str(pb), "source": str(pb)} and diff["run"]["source"] == str(ps)
    assert proc.stdout.splitlines()[-1] == f"summary: {MODELS + 1} regression"
    proc = run_edgecheck("compare", str(pb), str(ps), "--threshold", "latency=nan", check=False)
    assert proc.returncode == 2 and "a threshold must be a finite number >= 0" in proc.stderr


def test_cut_off_and_foreign_results_are_clear(tmp_path):
    good = run_of([entry("a", [1.0])])
    p = tmp_path / "r.json"
    p.write_text(json.dumps(good)[:-40])
    with pytest.raises(EdgecheckError, match="cut off mid-write"):
        load(p)
    p.write_text(json.dumps({**good, "schema": "edgecheck.results/0"}))
    with pytest.raises(EdgecheckError, match="schema is 'edgecheck.results/0'"):
        load(p)
    bad = copy.deepcopy(good)
    bad["entries"][0]["kind"] = "guessed"
    p.write_text(json.dumps(bad))
    with pytest.raises(EdgecheckError, match="entries/0/kind"):
        load(p)


def test_threshold_options():
    import argparse

    from edgecheck.config import threshold_spec

    th = Thresholds.from_baseline({"thresholds": {"latency": 0.2}},
                                  [threshold_spec("energy=0.05"), threshold_spec("4x2048:latency=0.3")])
    assert th.latency == 0.2 and th.energy == 0.05 and th.for_model("4x2048", "latency") == 0.3
    with pytest.raises(argparse.ArgumentTypeError, match="'speed=1': use latency|energy|accuracy=NUMBER"):
        threshold_spec("speed=1")


# -------------------------------------------------------------------- one record, one format (edgecheck.comparison/3)


def _slower(run, factor):
    out = copy.deepcopy(run)
    for e in out["entries"]:
        for p in e["latency"]["processes"]:
            p["median"] *= factor
        e["latency"]["samples"] = [v * factor for v in e["latency"]["samples"]]
        e["latency"]["stats"] = summarize(e["latency"]["samples"])
    return out


def test_compare_runs_is_one_record_that_round_trips_through_its_file(tmp_path):
    from edgecheck.config import threshold_spec
    from edgecheck.judge.compare import COMPARISON_SCHEMA, compare_runs, load_comparison

    base = run_of([entry(f"m{i}", [1e-5 * (1 + i) * f for f in (1, 1.01, 0.99) * 4]) for i in range(3)])
    slow = _slower(base, 1.3)
    pb, ps = tmp_path / "base.json", tmp_path / "slow.json"
    pb.write_text(json.dumps(base))
    ps.write_text(json.dumps(slow))
    got = compare_runs(str(pb), str(ps), [threshold_spec("m0:latency=0.5")])
    assert got.kind == "baseline" and (got.baseline.label, got.baseline.source) == (str(pb), str(pb))
    assert got.thresholds.for_model("m0", "latency") == 0.5 and got.thresholds.for_model("m1", "latency") == 0.05
    # +30 % everywhere is beyond the default drift allowance: the whole run fails, named with its size, and the
    # models are judged as measured (m0 within its own threshold)
    assert [(r.model, r.verdict) for r in got.rows] == [("(whole run)", REGRESSION), ("m0", UNCHANGED),
                                                        ("m1", REGRESSION), ("m2", REGRESSION)]
    assert "the whole run is slower by +30.0%" in got.rows[0].outcome.detail
    assert got.has_regression and got.counts == {UNCHANGED: 1, REGRESSION: 3}
    assert got.summary_line() == "summary: 3 regression, 1 unchanged"
    assert [line.split()[0] for line in got.table(only_changes=True)[1:]] == ["(whole", "m1", "m2", "note:"]
    assert [line.split()[0] for line in got.table()[1:]] == ["(whole", "m0", "m1", "m2", "note:"]
    # the same rows as compare() itself gives, and data in memory names its sides by role
    assert [r.to_dict() for r in got.rows] == [r.to_dict() for r in compare(base, slow, got.thresholds)]
    mem = compare_runs(base, slow, run_label="now")
    assert (mem.baseline.label, mem.baseline.source, mem.run.label, mem.run.source) == ("baseline", None, "now", None)

    got.save(tmp_path / "c.json")
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["schema"] == COMPARISON_SCHEMA == "edgecheck.comparison/3"
    assert data["failed"] is True and data["summary"] == {"regression": 3, "unchanged": 1}
    assert data["options"] == {"force": False, "allow_missing": False, "by_name": False, "history_runs": 1}
    assert data["drift"]["devices"]["cpu"]["runs"] == 0 and data["drift"]["devices"]["cpu"]["sd"] == 0.075
    back = load_comparison(tmp_path / "c.json")
    assert back.to_json() == data
    assert [r.to_dict() for r in back.rows] == [r.to_dict() for r in got.rows]


def _old_rows(base, now) -> list[dict]:
    """Rows as the old code wrote them: ``Comparison.to_dict()`` through json (its ci a tuple then)."""
    return json.loads(json.dumps([{**r.to_dict(), "ci": tuple(r.ci) if r.ci else None} for r in compare(base, now)]))


def test_old_comparison_files_still_load(tmp_path):
    """/1 (``compare --json``: baseline, run) and /2 (``ab -o``: base, head) are migrated into the /3 record."""
    from edgecheck.judge.compare import load_comparison

    base = _base()
    slow = _slower(base, 1.5)
    rows = _old_rows(base, slow)
    counts = {REGRESSION: 4}  # three models and the whole run
    v1 = tmp_path / "v1.json"
    v1.write_text(json.dumps({"schema": "edgecheck.comparison/1", "baseline": "b.json", "run": "r.json",
                              "summary": counts, "rows": rows}))
    got = load_comparison(v1)
    assert got.kind == "baseline" and (got.baseline.label, got.baseline.source) == ("b.json", "b.json")
    assert (got.run.label, got.run.source) == ("r.json", "r.json") and got.thresholds is None
    assert [r.verdict for r in got.rows] == [REGRESSION] * 4 and got.has_regression and got.counts == counts
    assert got.rows[1].ci == tuple(rows[1]["ci"]) and got.rows[1].ratio == pytest.approx(1.5, rel=0.02)
    assert got.to_json()["schema"] == "edgecheck.comparison/3"

    v2 = tmp_path / "v2.json"
    v2.write_text(json.dumps({"schema": "edgecheck.comparison/2", "base": "main-artifacts", "head": "pr.tflite",
                              "summary": {UNCHANGED: 3}, "rows": _old_rows(base, base)}))
    got = load_comparison(v2)
    assert got.kind == "ab" and (got.baseline.label, got.run.label) == ("main-artifacts", "pr.tflite")
    assert got.baseline.source is None and got.options == {"by_name": True}
    assert [r.verdict for r in got.rows] == [UNCHANGED] * 3 and not got.has_regression

    # the first /1 files, before outcomes: change and verdict only
    first = tmp_path / "v1-first.json"
    first.write_text(json.dumps({"schema": "edgecheck.comparison/1", "baseline": "b.json", "run": "r.json",
                                 "summary": {"regression": 1, "not significant": 1, "unchanged": 1}, "rows": [
                                     {"model": "m0", "device": "cpu", "metric": "latency", "baseline": 1e-5,
                                      "now": 1.3e-5, "change": 0.3, "verdict": "regression", "detail": "p 0.001"},
                                     {"model": "m1", "device": "cpu", "metric": "latency", "baseline": 1e-5,
                                      "now": 1.2e-5, "change": 0.2, "verdict": "not significant", "detail": ""},
                                     {"model": "m1", "device": "cpu", "metric": "int8_macro_f1", "baseline": 0.9,
                                      "now": 0.9, "change": 0.0, "verdict": "unchanged", "detail": ""}]}))
    got = load_comparison(first)
    assert [(r.verdict, r.outcome.status) for r in got.rows] == [
        (REGRESSION, "fail"), (TOO_CLOSE_LABEL, "inconclusive"), (UNCHANGED, "pass")]
    assert got.rows[0].ratio == pytest.approx(1.3) and got.rows[2].ratio == 0.0 and got.has_regression


def test_a_bad_comparison_file_is_one_line_naming_it(tmp_path):
    from edgecheck.judge.compare import load_comparison

    p = tmp_path / "c.json"
    rows = _old_rows(_base(), _base())
    rows[1]["verdict"] = "faster"
    p.write_text(json.dumps({"schema": "edgecheck.comparison/2", "base": "a", "head": "b", "summary": {},
                             "rows": rows}))
    with pytest.raises(EdgecheckError, match=f"^{p}: not a valid comparison file at rows/1/verdict: 'faster'"):
        load_comparison(p)
    p.write_text(json.dumps({"schema": "edgecheck.comparison/1", "run": "r.json", "summary": {}, "rows": []}))
    with pytest.raises(EdgecheckError, match="not a valid comparison file at baseline/label: None is not of type"):
        load_comparison(p)
    p.write_text(json.dumps({"schema": "edgecheck.comparison/9", "rows": []}))
    with pytest.raises(EdgecheckError, match="schema is 'edgecheck.comparison/9', this edgecheck reads "
                                             "'edgecheck.comparison/3'"):
        load_comparison(p)
    good = _old_rows(_base(), _base())
    good[0]["outcome"] = {"status": "fail", "reason": "unstable"}  # a combination the outcome table refuses
    p.write_text(json.dumps({"schema": "edgecheck.comparison/2", "base": "a", "head": "b", "summary": {},
                             "rows": good}))
    with pytest.raises(EdgecheckError, match=f"^{p}: not a valid comparison: a fail outcome cannot have reason"):
        load_comparison(p)


def test_the_report_takes_the_record(tmp_path):
    """``edgecheck report --baseline`` hands the record to the page: the same section as from its rows."""
    pytest.importorskip("matplotlib")
    from edgecheck.judge.compare import compare_runs
    from edgecheck.judge.report import html_report

    base = _base()
    slow = _slower(base, 1.5)
    pb, ps = tmp_path / "base.json", tmp_path / "slow.json"
    pb.write_text(json.dumps(base))
    ps.write_text(json.dumps(slow))
    got = compare_runs(str(pb), str(ps), force=True)
    section = html_report([("slow.json", slow)], got).split("<section id='comparison'>")[1].split("</section>")[0]
    assert "4 regression" in section and section.count("<tr class='fail'>") == 8  # what changed, and every row
    out = tmp_path / "r.html"
    assert run_edgecheck("report", str(ps), "--baseline", str(pb), "-o", str(out)).returncode == 0
    assert "4 regression" in out.read_text().split("<section id='comparison'>")[1].split("</section>")[0]


def test_a_session_against_its_baseline_prints_and_keeps_the_record(tmp_path):
    """``pytest --baseline``: the same summary line as ``edgecheck compare`` and the /3 record in the results."""
    from support import INFERENCE, run_pytest
    from tinytflite import dense_tflite

    from edgecheck.judge.compare import RunComparison

    model = dense_tflite(tmp_path / "m.tflite", [64, 32, 4])
    args = (INFERENCE, f"--model={model}", "--device", "tpu-sim", "--device", "a53-sim", "--report", "none")
    base = tmp_path / "base.json"
    proc = run_pytest(*args, "--results", str(tmp_path / "r0.json"), "--save-baseline", str(base))
    assert proc.returncode == 0, proc.stdout[-3000:]
    proc = run_pytest(*args, "--results", str(tmp_path / "r1.json"), "--baseline", str(base))
    assert proc.returncode == 0 and "summary: 4 unchanged" in proc.stdout, proc.stdout[-3000:]
    data = load(tmp_path / "r1.json")["comparison"]
    got = RunComparison.from_json(data, "r1.json")
    assert data["schema"] == "edgecheck.comparison/3" and not got.has_regression
    assert (got.baseline.source, got.run.label, got.run.source) == (str(base), str(tmp_path / "r1.json"), None)

    fast = json.loads(base.read_text())  # a baseline in which the twins were twice as fast: this run regressed
    for e in fast["entries"]:
        e["latency"]["stats"]["median"] /= 2
    base.write_text(json.dumps(fast))
    proc = run_pytest(*args, "--results", str(tmp_path / "r2.json"), "--baseline", str(base))
    assert proc.returncode == 1 and "summary: 2 regression, 2 unchanged" in proc.stdout, proc.stdout[-3000:]
    assert load(tmp_path / "r2.json")["comparison"]["failed"] is True


def test_cli_ab_measures_both_sides_and_writes_the_record(tmp_path):
    """``edgecheck ab``: two .tflite files measured interleaved on this cpu, compared, written as /3."""
    from tinytflite import dense_tflite

    from edgecheck.judge.compare import load_comparison

    a, b = dense_tflite(tmp_path / "a.tflite", [64, 32, 4]), dense_tflite(tmp_path / "b.tflite", [64, 32, 4], seed=1)
    out = tmp_path / "ab"
    proc = run_edgecheck("ab", str(a), str(b), "--processes", "2", "--rounds", "2", "-o", str(out), check=False)
    # two processes a side: the test cannot reach Holm's level, so nothing is called a regression
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "edgecheck ab: look 1/1: 1 model x 2 on cpu, processes 1-2 a side, alternating A,B / B,A" in proc.stderr
    got = load_comparison(out / "comparison.json")
    assert got.kind == "ab" and (got.baseline.label, got.run.label) == (str(a), str(b))
    assert got.options["by_name"] is True and proc.stdout.splitlines()[-2] == got.summary_line()
    assert proc.stdout.splitlines()[-3].startswith("run level: ") and got.ab["run_level"]["slots"] == 2
    run, row = got.rows
    assert (run.model, run.metric, run.verdict) == ("(whole run)", "latency (geometric mean)",
                                                    got.ab["run_level"]["verdict"])
    assert (row.model, row.device, row.metric) == ("a", "cpu", "latency") and row.outcome.status != "fail"
    import hashlib

    for side, path in (("base", a), ("head", b)):  # two files of different names are paired under BASE's name
        (e,) = load(out / f"{side}.json")["entries"]
        assert e["model"]["name"] == "a" and e["model"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert len(e["latency"]["processes"]) >= 2 and e["worker"]["ab_group"] == {"base": "A", "head": "B"}[side]
