"""Sequential A/B (`edgecheck ab`): the looks, the rule and the run-level test, on the real worker and files."""
from __future__ import annotations

import numpy as np
import pytest

from edgecheck.judge import ab_stats
from edgecheck.judge.ab_stats import ModelSlots, Sequence


def _slots(rng, n, ratio, cv):
    a = np.exp(rng.normal(0, cv, n))
    return ModelSlots(list(range(n)), list(a), list(a * ratio * np.exp(rng.normal(0, cv / 3, n))))


def test_the_options_cap_is_the_judges():
    from edgecheck.options import AB_CAP

    assert AB_CAP == ab_stats.CAP


def test_a_decided_model_stops_and_an_open_one_is_measured_further():
    """The look's rule on paired slots: a quiet unchanged model is decided at the first look and leaves; a model
    whose ratio sits on the threshold stays open, is measured further, and is too close to call at the cap."""
    rng = np.random.default_rng(1)
    names = ["quiet", "edge"]
    seq = Sequence(names, dict.fromkeys(names, 0.05), 0.05)
    plan = ab_stats.schedule(ab_stats.FIRST, 20)
    assert plan == [8, 20] and seq.level == pytest.approx(0.05 * 0.8 / 2)
    assert seq.run_alpha == pytest.approx(0.05 * 0.2 / 2)
    data = {"quiet": _slots(rng, 20, 1.0, 0.003), "edge": _slots(rng, 20, 1.05, 0.03)}
    for j, n in enumerate(plan):
        seq.look({m: ModelSlots(d.slots[:n], d.a[:n], d.b[:n]) for m, d in data.items()}, n, j == len(plan) - 1)
        if seq.done:
            break
    assert seq.verdict["quiet"] == "unchanged" and seq.decided_at["quiet"] == 8
    assert seq.verdict["edge"] == "too close to call" and seq.taken == [8, 20]


def test_identical_sides_are_never_red_and_fifty_percent_is():
    """The same slots judged as they are and with one model's B x1.5 as the statistics see it."""
    rng = np.random.default_rng(2)
    names = ["m0", "m1", "m2"]
    data = {m: _slots(rng, 14, 1.0, 0.02) for m in names}
    for scale, red in (({}, False), ({"m0": 1.5}, True)):
        seq = Sequence(names, dict.fromkeys(names, 0.05), 0.05, scale=scale)
        for j, n in enumerate([8, 14]):  # two looks
            seq.look({m: ModelSlots(d.slots[:n], d.a[:n], d.b[:n]) for m, d in data.items()}, n, j == 1)
        assert seq.red is red and (seq.verdict["m0"] == "regression") is red


def test_real_session_honours_the_cap_and_reports_the_run_level(tmp_path):
    """A real session on the worker: identical files on both sides, judged as measured and with one model x1.5;
    the cap is never passed, the run level has its row and record, identical sides are never red."""
    from tinytflite import dense_tflite

    from edgecheck import artifacts as art
    from edgecheck.abrun import ab_session
    from edgecheck.judge.ab_stats import ab_comparison
    from edgecheck.measure.devices import select
    from edgecheck.measure.recorder import MeasureContext, TimingOptions

    models = [art.user_model(dense_tflite(tmp_path / f"m{i}.tflite", [64, 32 * (i + 1), 4], seed=i))
              for i in range(3)]
    pairs = [(m, m) for m in models]
    device = select(["cpu"]).devices[0]
    with MeasureContext(TimingOptions(processes=10, rounds=3)) as ctx:
        got, seqs = ab_session(pairs, device, ctx, 10, (), None, {"slow": {models[0].name: 1.5}}, first=8)
    assert [lk.processes for lk in got.looks][-1] <= 10 and len(got.looks) <= ab_stats.LOOKS
    for e in got.base.ok_entries() + got.head.ok_entries():
        assert len(e.latency.processes) <= 10
        # slots of two, A,B then B,A (ABBA): A ran processes 0, 3, 4, 7, ... of the first look's 16
        first = {p.process for p in e.latency.processes if p.process < 16}
        a_side = {p for p in range(16) if (p + p // 2) % 2 == 0}
        assert first == (a_side if e.worker["ab_group"] == "A" else set(range(16)) - a_side)
    assert not seqs[""].red
    slow = seqs["slow"].verdict[models[0].name]
    assert slow in ("regression", "unstable"), slow  # unstable only when the busy machine spread it past 10 %
    if seqs["slow"].noisy.get(models[0].name, 0) <= 0.10:
        assert slow == "regression"
    with MeasureContext(TimingOptions(processes=10, rounds=3)) as ctx:  # a cap in seconds: one look, then stop
        short, short_seqs = ab_session(pairs, device, ctx, 10, (), 0.01, None, first=8)
    assert [lk.processes for lk in short.looks] == [8]
    decided_at_once = short_seqs[""].run_at == 8 and set(short_seqs[""].decided_at) == {m.name for m in models}
    assert short.stopped.startswith("--max-seconds 0.01") or decided_at_once
    assert "open" not in short_seqs[""].verdict.values() and short_seqs[""].run != "open"
    result = ab_comparison(got.base, got.head, (), seqs[""], got.looks, got.stopped, base_label="A", head_label="B")
    run = result.rows[0]
    assert run.metric == "latency (geometric mean)" and run.verdict == result.ab["run_level"]["verdict"]
    assert not result.has_regression and result.to_json()["ab"]["alpha_per_look"] == pytest.approx(0.02)


def test_pytest_ab_against_a_folder(smoke_artifacts, tmp_path):
    """``pytest benchmarks --ab BASE``: the same A/B after the session, BASE a folder (the session's own artifacts:
    identical sides, never red); the run-level line, the table and the record are there."""
    from support import run_pytest

    from edgecheck.judge.compare import load_comparison

    common = ["benchmarks/test_inference.py", "--artifacts", str(smoke_artifacts), "--device", "cpu", "--processes",
              "2", "--rounds", "2", "--report", "none", "--ab-processes", "10"]
    proc = run_pytest(*common, "--results", str(tmp_path / "r.json"), "--ab", str(smoke_artifacts))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "edgecheck A/B (--ab)" in proc.stdout and "run level: " in proc.stdout
    got = load_comparison(tmp_path / "r.ab-comparison.json")
    assert got.kind == "ab" and got.ab["run_level"] is not None and not got.has_regression
    assert max(lk["processes"] for lk in got.ab["looks"]) <= 10


@pytest.mark.integration  # builds this commit in a git worktree (a whole build child): run by .ci/run
def test_pytest_ab_against_a_git_ref(smoke_artifacts, smoke_cache, tmp_path):
    """``--ab HEAD``: the ref built in a temporary worktree (its models cache hits in a copy of the smoke build's
    cache), then measured against this session's artifacts."""
    import shutil

    from support import run_pytest

    cache = tmp_path / "cache"
    shutil.copytree(smoke_cache, cache)
    common = ["benchmarks/test_inference.py", "--artifacts", str(smoke_artifacts), "--device", "cpu", "--processes",
              "2", "--rounds", "2", "--report", "none", "--ab-processes", "10"]
    proc = run_pytest(*common, "--results", str(tmp_path / "g.json"), "--ab", "HEAD", "--build-dir",
                      str(tmp_path / "builds"), "--build-cache", str(cache), "--dataset", "collar")
    assert "building" in proc.stdout and "temporary worktree" in proc.stdout, proc.stdout[-3000:]
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "g.ab-comparison.json").is_file() and "run level: " in proc.stdout
