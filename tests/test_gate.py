"""The gate across sessions: instruction counts (real Valgrind on the real worker), wall clock judged against the
drift a history of runs measures, a comparison or a requested device that has nothing to show fails, and the
build key that lets the boards' CI reuse the same bytes."""
import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from support import FAST, INFERENCE, REPO, load, run_edgecheck, run_pytest, skip_unless_available, workflow_checker
from test_compare import entry, run_of

from edgecheck.errors import EdgecheckError
from edgecheck.judge.compare import (
    MISSING_LABEL,
    NOT_COUNTED,
    REGRESSION,
    RUN_ROW,
    UNCHANGED,
    WITHIN_DRIFT,
    Thresholds,
    compare,
    compare_runs,
    has_regression,
)
from edgecheck.results import Instructions

WORKER = REPO / "edgecheck" / "measure" / "worker.py"


# -------------------------------------------------------------------- instruction counts, real Valgrind


def _worker_job(models, count=True, **kw):
    job = {"protocol": 3, "device": "cpu", "accelerator": None, "cpu_part": None, "threads": 1, "tpu_device": None,
           "timer": "time.perf_counter", "processes": 1, "rounds": 1, "warmup_rounds": 0, "round_seconds": 0.001,
           "calibration_seconds": 0.001, "seed": 0, "memory": False, "adaptive": {},
           "models": [{"name": Path(m).stem, "path": str(m), "inputs": None} for m in models]}
    if count:
        job["count"] = {"tool": "callgrind", "invokes": 5, "cache_sim": False, **kw}
    return job


def _run_worker(job, env=None):
    proc = subprocess.run([sys.executable, str(WORKER)], input=json.dumps(job), capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from tinytflite import dense_tflite

    d = tmp_path_factory.mktemp("count")
    return [dense_tflite(d / "small.tflite", [64, 32, 4]), dense_tflite(d / "wider.tflite", [64, 33, 4])]


@pytest.fixture(scope="module")
def counted(tiny_models):
    """Two separate worker runs counting the same models, and one with XNNPACK off."""
    if not shutil.which("valgrind"):
        skip_unless_available("valgrind", "valgrind is not installed (Debian: apt-get install valgrind)")
    runs = [_run_worker(_worker_job(tiny_models)) for _ in range(2)]
    off = _run_worker(_worker_job(tiny_models), {"EDGECHECK_WORKER_NO_XNNPACK": "1"})
    return [{m["name"]: m for m in r if m["kind"] == "count"} for r in runs + [off]]


# Three worker runs under Valgrind (about half a minute of CPU): run by .ci/run (EDGECHECK_REQUIRE=valgrind); `make
# test` keeps the count's records, thresholds and its not-testable case without Valgrind (below)
@pytest.mark.integration
def test_counts_are_deterministic_across_processes_and_count_only_the_invokes(counted):
    a, b, _ = counted
    for name in ("small", "wider"):
        assert "error" not in a[name], a[name]
        assert a[name]["instructions"] == b[name]["instructions"]  # two separate processes: the same count
        blocks = a[name]["instructions"]
        assert len(blocks) == 2 and blocks[0] == blocks[1] > 0  # each block holds exactly its invokes
        assert a[name]["valgrind"].startswith("valgrind-") and a[name]["tool"] == "callgrind"
        assert "AVX-512" in a[name]["kernel_path"]
    # a wider layer executes more instructions per invoke
    assert a["wider"]["instructions"][0] > a["small"]["instructions"][0]


@pytest.mark.integration
def test_a_real_change_of_what_the_cpu_executes_is_caught(counted):
    """The same models with XNNPACK off run other kernels: the comparison calls it a regression or an
    improvement, never unchanged; the same count compares as unchanged."""
    a, b, off = counted

    def as_entry(msg):
        e = entry(msg["name"], [1e-5] * 4)
        n = msg["invokes"]
        e["instructions"] = {"per_invoke": msg["instructions"][0] / n, "blocks": [x / n for x in msg["instructions"]],
                             "invokes": n, "tool": "callgrind", "valgrind": msg["valgrind"]}
        return e

    same = compare(run_of([as_entry(a["small"])]), run_of([as_entry(b["small"])]))
    assert [r.verdict for r in same if r.metric == "instructions"] == [UNCHANGED]
    changed = [r for r in compare(run_of([as_entry(a["small"])]), run_of([as_entry(off["small"])]))
               if r.metric == "instructions"]
    assert changed[0].verdict != UNCHANGED and abs(changed[0].ratio - 1) > 0.05


def test_without_valgrind_the_count_is_not_testable(tiny_models, tmp_path):
    """No valgrind on PATH: the worker says so once, and the entry's figure is unavailable with the reason."""
    bare = tmp_path / "bin"
    bare.mkdir()
    lines = _run_worker(_worker_job(tiny_models[:1]), {"PATH": str(bare)})
    (msg,) = [m for m in lines if m["kind"] == "count_unavailable"]
    assert "valgrind is not installed" in msg["reason"]
    base = entry("m", [1e-5] * 4)
    base["instructions"] = {"per_invoke": 1000.0, "blocks": [1000.0, 1000.0], "invokes": 5}
    now = entry("m", [1e-5] * 4)
    now["instructions"] = {"unavailable": msg["reason"]}
    (row,) = [r for r in compare(run_of([base]), run_of([now])) if r.metric == "instructions"]
    assert row.verdict == NOT_COUNTED and row.outcome.status == "inconclusive"
    assert row.outcome.reason == "not-testable" and "valgrind is not installed" in row.outcome.summary


def test_instruction_threshold_and_records():
    def with_count(per_invoke, blocks=None):
        e = entry("m", [1e-5] * 4)
        e["instructions"] = {"per_invoke": per_invoke, "blocks": blocks or [per_invoke, per_invoke], "invokes": 20}
        return e

    th = Thresholds()
    assert th.instructions == 0.005
    verdicts = {f: [r.verdict for r in compare(run_of([with_count(1e5)]), run_of([with_count(1e5 * f)]))
                    if r.metric == "instructions"][0] for f in (1.0, 1.003, 1.01, 0.98)}
    assert verdicts == {1.0: UNCHANGED, 1.003: UNCHANGED, 1.01: REGRESSION, 0.98: "improvement"}
    wobbly = [r for r in compare(run_of([with_count(1e5)]), run_of([with_count(1e5, [0.99e5, 1.01e5])]))
              if r.metric == "instructions"]
    assert wobbly[0].outcome.status == "inconclusive" and wobbly[0].outcome.reason == "unstable"
    with pytest.raises(EdgecheckError, match="either per_invoke or the reason"):
        Instructions()
    with pytest.raises(EdgecheckError, match="per_invoke: must be > 0"):
        Instructions(per_invoke=-1.0, blocks=[1.0])


# -------------------------------------------------------------------- wall clock against a history of runs


def _session(rng, shift, per_model=None, processes=6, cv=0.02, created="2026-01-01T00:00:00Z"):
    """A run of 12 models: the whole session slower or faster by ``shift`` (the machine's drift), each model by
    ``per_model(i)`` more."""
    per_model = per_model or (lambda i: 1.0)
    r = run_of([entry(f"m{i}", list(1e-5 * (1 + i) * shift * per_model(i) * np.exp(rng.normal(0, cv, processes))))
                for i in range(12)])
    r["created_utc"] = created
    return r


def _history(rng, sd=0.075, k=5):
    return [_session(rng, float(np.exp(rng.normal(0, sd))), created=f"2026-01-0{j + 1}T00:00:00Z") for j in range(k)]


def test_a_shift_within_the_measured_drift_is_inconclusive_never_red(tmp_path):
    rng = np.random.default_rng(7)
    hist = _history(rng)
    # unchanged code on a session 9 % slower than the history's mean: within a 7.5 % sd drift over 5 runs
    got = compare_runs(hist, _session(rng, 1.09))
    assert not got.has_regression
    d = got.drift["devices"]["cpu"]
    assert d["runs"] == 5 and d["verdict"] == WITHIN_DRIFT and 1 < d["sd_pct"] < 20
    assert d["run_shift_pct"] == pytest.approx(9, abs=2.5) and len(d["shifts"]) == 5
    assert set(d["per_model_sd"]) == {f"m{i}" for i in range(12)}
    (run_row,) = [r for r in got.rows if r.model == RUN_ROW]
    assert run_row.verdict == WITHIN_DRIFT and run_row.outcome.status == "inconclusive"
    assert f"within this machine's drift (sd {d['sd_pct']:.1f}% over 5 runs)" in run_row.outcome.summary
    # the same history in a folder: the newest file is the baseline
    folder = tmp_path / "history"
    folder.mkdir()
    for j, h in enumerate(hist):
        (folder / f"run{j}.json").write_text(json.dumps(h))
    now = tmp_path / "now.json"
    now.write_text(json.dumps(_session(rng, 1.0)))
    proc = run_edgecheck("compare", str(folder), str(now), "--json", str(tmp_path / "c.json"), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["drift"]["devices"]["cpu"]["runs"] == 5 and data["options"]["history_runs"] == 5


def test_a_shift_beyond_the_drift_is_a_regression_named_with_its_size():
    rng = np.random.default_rng(8)
    hist = _history(rng, sd=0.03)
    got = compare_runs(hist, _session(rng, 1.25))
    assert got.has_regression
    (run_row,) = [r for r in got.rows if r.model == RUN_ROW]
    assert run_row.verdict == REGRESSION and "the whole run is slower by +2" in run_row.outcome.detail
    assert "over 5 runs" in run_row.outcome.detail
    # one model slowed alone, the session within the drift: that model is named, beyond the run's shift
    got = compare_runs(hist, _session(rng, 1.04, per_model=lambda i: 1.3 if i == 5 else 1.0))
    assert [r.model for r in got.rows if r.verdict == REGRESSION] == ["m5"]


def test_a_single_baseline_uses_the_default_drift_allowance():
    rng = np.random.default_rng(9)
    base = _session(rng, 1.0)
    got = compare_runs(base, _session(rng, 1.10))  # +10 %: within sd 7.5 % x sqrt(2)
    assert not got.has_regression
    d = got.drift["devices"]["cpu"]
    assert d["runs"] == 0 and d["sd"] == 0.075 and d["source"] == "default allowance"
    assert {r.verdict for r in got.rows if r.metric == "latency"} <= {WITHIN_DRIFT, UNCHANGED}
    assert compare_runs(base, _session(rng, 1.40)).has_regression
    # A/B (one session, interleaved) has no drift to allow for: +10 % everywhere is a regression there
    ab = compare_runs(base, _session(rng, 1.10), by_name=True, kind="ab")
    assert ab.drift is None and ab.has_regression


def test_history_of_another_dataset_is_refused():
    rng = np.random.default_rng(10)
    hist = _history(rng, k=3)
    hist[0]["artifacts"]["dataset"]["sha256"] = "other"
    with pytest.raises(EdgecheckError, match="history run 1: dataset differs"):
        compare_runs(hist, _session(rng, 1.0))


# -------------------------------------------------------------------- a gate that compared nothing is never green


def test_a_comparison_with_nothing_comparable_fails(tmp_path):
    rng = np.random.default_rng(11)
    base = _session(rng, 1.0)
    rebuilt = copy.deepcopy(base)  # every model rebuilt with other bytes: each row is a "different model"
    for e in rebuilt["entries"]:
        e["model"]["sha256"] = "f" * 64
    for allow in (False, True):
        rows = compare(base, rebuilt, allow_missing=allow)
        assert has_regression(rows)
        assert rows[-1].verdict == MISSING_LABEL and "nothing was compared" in rows[-1].outcome.detail
    vanished = copy.deepcopy(base)  # the device vanished: the run has no entries of it
    vanished["entries"] = []
    assert has_regression(compare(base, vanished, allow_missing=True))
    pb, pr = tmp_path / "b.json", tmp_path / "r.json"
    pb.write_text(json.dumps(base))
    pr.write_text(json.dumps(rebuilt))
    proc = run_edgecheck("compare", str(pb), str(pr), "--allow-missing", check=False)
    assert proc.returncode == 1 and "nothing was compared" in proc.stdout


def test_a_requested_absent_device_fails_the_run_unless_allowed(tmp_path):
    """``--device tpu`` with no Edge TPU: the run fails as missing, with the reason; --allow-missing passes it;
    the default set (auto) discovers what is there and never fails for what it did not find."""
    from tinytflite import dense_tflite

    model = dense_tflite(tmp_path / "m.tflite", [64, 32, 4])
    args = (INFERENCE, f"--model={model}", "--report", "none", *FAST)
    proc = run_pytest(*args, "--device", "tpu,tpu-sim", "--results", str(tmp_path / "a.json"))
    if "tpu-m" in proc.stdout and " passed" in proc.stdout and "tpu: " not in proc.stdout:
        pytest.skip("an Edge TPU is attached here: the absent case cannot be made")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "missing: requested with --device and absent: tpu:" in proc.stdout
    assert load(tmp_path / "a.json")["run"]["devices_missing"].keys() == {"tpu"}
    proc = run_pytest(*args, "--device", "tpu,tpu-sim", "--allow-missing", "--results", str(tmp_path / "b.json"))
    assert proc.returncode == 0 and "allowed by --allow-missing" in proc.stdout, proc.stdout[-3000:]
    proc = run_pytest(*args, "-k", "sim", "--results", str(tmp_path / "c.json"))  # auto: twins of what is absent
    assert proc.returncode == 0 and "missing:" not in proc.stdout, proc.stdout[-3000:]
    assert load(tmp_path / "c.json")["run"]["devices_missing"] == {}


# -------------------------------------------------------------------- the boards' artifacts, keyed by their inputs


def test_the_build_key_changes_when_an_input_changes_and_only_then(tmp_path):
    from edgecheck.buildkey import BUILD_INPUTS, build_inputs, build_key

    root = tmp_path / "repo"
    for rel in BUILD_INPUTS:
        src, dst = REPO / rel, root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    (root / "README.md").write_text("readme")
    (root / "edgecheck" / "judge").mkdir()
    (root / "edgecheck" / "judge" / "compare.py").write_text("x = 1\n")

    def key(grid="default", dataset="collar", **kw):
        return build_key(build_inputs(root, grid, dataset, **kw))

    first = key()
    assert key() == first and len(first) == 32
    (root / "README.md").write_text("another readme")  # not a build input
    (root / "edgecheck" / "judge" / "compare.py").write_text("x = 2\n")
    assert key() == first
    train = root / "edgecheck" / "build" / "train.py"
    original = train.read_bytes()
    train.write_bytes(original + b"\n# changed\n")
    assert key() != first
    train.write_bytes(original)
    assert key() == first
    constraints = root / "ci" / "constraints.txt"
    constraints.write_text(constraints.read_text() + "\nnumpy==0.0\n")
    assert key() != first
    constraints.write_bytes((REPO / "ci" / "constraints.txt").read_bytes())
    assert key() == first
    assert key(grid="smoke") != first and key(seed=1) != first and key(epochs=3) != first
    assert key(channels_last=True) != first and key(channels_last=False) == first
    assert key(widen=3.0) != first and key(widen=0.0) == first and key(widen=10.0) != key(widen=3.0)
    data = tmp_path / "d.npz"
    data.write_bytes(b"one")
    k1 = key(dataset=str(data))
    data.write_bytes(b"two")
    assert key(dataset=str(data)) != k1
    proc = run_edgecheck("build-key", "--root", str(root), "--grid", "default", "--dataset", "collar")
    assert proc.stdout.strip() == first


def test_the_boards_workflow_reuses_artifacts_by_their_build_key(tmp_path):
    workflow_check = workflow_checker()
    boards = REPO / ".github" / "workflows" / "boards.yml"
    assert workflow_check.problems(boards) == []
    wf = yaml.safe_load(boards.read_text())
    steps = wf["jobs"]["build"]["steps"]
    (cache,) = [s for s in steps if str(s.get("uses", "")).startswith("actions/cache@")]
    assert "steps.build-key.outputs.key" in cache["with"]["key"] and cache["with"]["path"] == "artifacts/"
    uncached = copy.deepcopy(wf)
    uncached["jobs"]["build"]["steps"] = [s for s in steps if s is not cache and s.get("id") != "artifacts-cache"]
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    shutil.copytree(REPO / "ci", tmp_path / "ci")
    bad = tmp_path / ".github" / "workflows" / "boards.yml"
    bad.write_text(yaml.safe_dump(uncached))
    assert any("without reusing them" in p for p in workflow_check.problems(bad))
    unguarded = copy.deepcopy(wf)
    for s in unguarded["jobs"]["build"]["steps"]:
        if "ci/build-artifacts.sh" in str(s.get("run", "")):
            s.pop("if")
    bad.write_text(yaml.safe_dump(unguarded))
    assert any("rebuilds the artifacts even when the cache has them" in p for p in workflow_check.problems(bad))


def test_the_pull_request_job_builds_both_sides_by_their_keys_and_runs_ab():
    """edgecheck.yml's pull-request job: main's and the PR's artifacts, each cached by its own build key and built
    only on a miss (main's with main's code), then `edgecheck ab` on the hosted cpu and the instruction counts of
    both builds compared by architecture name."""
    workflow_check = workflow_checker()
    path = REPO / ".github" / "workflows" / "edgecheck.yml"
    assert workflow_check.problems(path) == []
    job = yaml.safe_load(path.read_text())["jobs"]["ab"]
    assert job["runs-on"] == "ubuntu-latest" and job["if"] == "github.event_name == 'pull_request'"
    steps = job["steps"]
    keys = {s["id"]: s["run"] for s in steps if s.get("id") in ("main-key", "pr-key")}
    assert "--root main " in keys["main-key"] and "--root pr " in keys["pr-key"]
    caches = {s["id"]: s for s in steps if str(s.get("uses", "")).startswith("actions/cache@")}
    for side in ("main", "pr"):
        assert f"steps.{side}-key.outputs.key" in caches[f"{side}-cache"]["with"]["key"]
        (build,) = [s for s in steps if f"{side}/ci/build-artifacts.sh" in str(s.get("run"))]
        assert build["if"] == f"steps.{side}-cache.outputs.cache-hit != 'true'"
    runs = "\n".join(str(s.get("run")) for s in steps)
    assert "python -m edgecheck ab main-artifacts pr-artifacts --device cpu" in runs
    assert "apt-get install -y -qq valgrind" in runs and "--count-instructions" in runs
    assert "edgecheck compare --by-name --latency-threshold 10 ../ab/main-counts.json ../ab/pr-counts.json" in runs
