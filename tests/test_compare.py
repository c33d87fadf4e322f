"""Baseline comparison on synthetic result sets with known answers and realistic noise."""
import copy
import json

import numpy as np
import pytest
from support import load, run_edgecheck

from edgecheck.errors import EdgecheckError
from edgecheck.judge.compare import (
    IMPROVEMENT,
    REGRESSION,
    UNCHANGED,
    Thresholds,
    _latency,
    compare,
    fingerprint_differences,
    has_regression,
    mann_whitney_p,
    min_p_reachable,
)
from edgecheck.results import RESULTS_SCHEMA
from edgecheck.stats import summarize

ROUNDS = 30  # the suite's default sample count per model


def noisy(rng, n, cv, scale):
    """Per-round samples: lognormal noise of the given CV plus a 5 % tail of 1.5-3x outliers."""
    s = np.sqrt(np.log(1 + cv**2))
    x = scale * rng.lognormal(-s * s / 2, s, n)
    tail = rng.random(n) < 0.05
    x[tail] *= rng.uniform(1.5, 3.0, tail.sum())
    return x.tolist()


def lat(x):
    return {"latency": {"samples": x, "stats": summarize(x)}}


def verdicts(cv, slowdown, threshold, trials=300, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        drift = rng.normal(1.0, 0.01)  # the machine drifts a little between runs
        base = noisy(rng, ROUNDS, cv, 1e-4)
        run = noisy(rng, ROUNDS, cv, 1e-4 * (1 + slowdown) * drift)
        out.append(_latency("m", "cpu", lat(base), lat(run), Thresholds(latency=threshold))[0].verdict)
    return out


def test_ten_percent_slowdown_is_caught():
    v = verdicts(cv=0.05, slowdown=0.10, threshold=0.05)
    assert v.count(REGRESSION) / len(v) >= 0.95


@pytest.mark.parametrize("cv", [0.05, 0.10, 0.20])
def test_identical_distributions_are_rarely_flagged(cv):
    v = verdicts(cv=cv, slowdown=0.0, threshold=0.10, seed=int(cv * 100))
    assert v.count(REGRESSION) / len(v) <= 0.01


@pytest.mark.parametrize("cv", [0.10, 0.20])
def test_noisy_slowdown_is_never_called_an_improvement(cv):
    """At CV 10-20 % and 30 rounds p<0.002 is out of reach for a 10 % change: it is reported as
    unstable or not significant, never hidden as an improvement."""
    v = verdicts(cv=cv, slowdown=0.10, threshold=0.05, seed=7)
    assert IMPROVEMENT not in v
    assert sum(x in ("regression", "unstable", "not significant") for x in v) / len(v) >= 0.6


def test_mann_whitney_against_known_values():
    # complete separation of 5 vs 5: exact two-sided p is 2/252; the normal approximation is close
    assert mann_whitney_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(0.0122, abs=0.002)
    assert mann_whitney_p([1, 2, 3], [1, 2, 3]) == 1.0
    assert min_p_reachable(3, 3) == pytest.approx(0.1)
    # with 3 samples each p<0.002 is unreachable: the CI rule decides
    v = _latency("m", "cpu", lat([1.0, 1.01, 0.99]), lat([2.0, 2.02, 1.98]), Thresholds())[0]
    assert v.verdict == REGRESSION and "CIs" in v.detail


def _run(latencies, simulated=False, dataset="d1", device="cpu", f1=0.9):
    entries = []
    for name, x in latencies.items():
        lat_ = {"unit": "s", "samples": x, "stats": summarize(x)}
        if simulated:
            lat_["simulated"] = True
        entries.append({"model": {"name": name, "sha256": "ab" * 32, "size": {"params": 1},
                                  "metrics": {"int8": {"macro_f1": f1}}},
                        "device": {"name": device, "kind": "simulated" if simulated else "measured",
                                   "key": f"{device}:x"},
                        "kind": "simulated" if simulated else "measured", "provenance": "p", "status": "ok",
                        "latency": lat_})
    return {"schema": RESULTS_SCHEMA, "created_utc": "now", "entries": entries,
            "artifacts": {"dataset": {"sha256": dataset}, "features": {"key": "k"}, "grid": {"architectures": "g"}},
            "run": {"devices": [{"name": device, "key": f"{device}:x", "metadata": {"cpu_model": "X"}}]}}


def test_simulated_values_compare_exactly():
    base = _run({"1x32": [1e-4]}, simulated=True)
    same = _run({"1x32": [1e-4]}, simulated=True)
    assert not has_regression(compare(base, same))
    tiny = _run({"1x32": [1e-4 * (1 + 1e-6)]}, simulated=True)
    rows = compare(base, tiny)
    assert rows[0].verdict == REGRESSION and "exact" in rows[0].detail


def test_accuracy_drop_and_improvement():
    rng = np.random.default_rng(0)
    x = noisy(rng, ROUNDS, 0.02, 1e-4)
    rows = compare(_run({"a": x}, f1=0.90), _run({"a": x}, f1=0.88))
    assert [r.verdict for r in rows if r.metric == "int8_macro_f1"] == [REGRESSION]
    rows = compare(_run({"a": x}, f1=0.88), _run({"a": x}, f1=0.90))
    assert [r.verdict for r in rows if r.metric == "int8_macro_f1"] == [IMPROVEMENT] and not has_regression(rows)


def test_mismatched_fingerprints_are_refused():
    a, b = _run({"a": [1.0]}), _run({"a": [1.0]}, dataset="d2")
    with pytest.raises(EdgecheckError, match="baseline refused.*dataset differs"):
        compare(a, b)
    assert compare(a, b, force=True)
    c = copy.deepcopy(a)
    c["run"]["devices"][0]["metadata"]["cpu_model"] = "Y"
    assert any("cpu_model" in d for d in fingerprint_differences(a, c))
    d = copy.deepcopy(a)
    d["run"]["devices"][0]["metadata"]["frequency_mhz"] = 1234  # volatile: never blocks
    assert fingerprint_differences(a, d) == []


def test_per_model_thresholds():
    rng = np.random.default_rng(3)
    base = noisy(rng, ROUNDS, 0.01, 1e-4)
    slow = [v * 1.15 for v in noisy(rng, ROUNDS, 0.01, 1e-4)]
    th = Thresholds(per_model={"big": {"latency": 0.30}})
    assert _latency("big", "cpu", lat(base), lat(slow), th)[0].verdict == UNCHANGED
    assert _latency("small", "cpu", lat(base), lat(slow), th)[0].verdict == REGRESSION


def test_cli_compare_exit_codes(tmp_path):
    rng = np.random.default_rng(5)
    base = _run({f"m{i}": noisy(rng, ROUNDS, 0.03, 1e-4) for i in range(3)})
    slower = copy.deepcopy(base)
    for e in slower["entries"]:
        e["latency"]["samples"] = [v * 1.25 for v in e["latency"]["samples"]]
        e["latency"]["stats"] = summarize(e["latency"]["samples"])
    pb, ps = tmp_path / "base.json", tmp_path / "slow.json"
    pb.write_text(json.dumps(base))
    ps.write_text(json.dumps(slower))
    assert run_edgecheck("compare", str(pb), str(pb), check=False).returncode == 0
    proc = run_edgecheck("compare", str(pb), str(ps), "--json", str(tmp_path / "diff.json"), check=False)
    assert proc.returncode == 1 and "regression" in proc.stdout
    diff = json.loads((tmp_path / "diff.json").read_text())
    assert diff["summary"]["regression"] == 3


def test_cut_off_and_foreign_results_are_clear(tmp_path):
    good = _run({"a": [1.0]})
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
