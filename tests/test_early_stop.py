"""Stop measuring once decided: a model leaves the later processes once its interval of the median across
processes is narrow enough, never before ``min_processes`` (a real model, a real worker on this host's cpu)."""
import pytest
from tinytflite import dense_tflite

from edgecheck import artifacts as art
from edgecheck.config import DEFAULTS
from edgecheck.measure.devices import select
from edgecheck.measure.recorder import TimingOptions, start_recorder


def processes_run(tmp_path, **timing) -> list[int]:
    models = [art.user_model(dense_tflite(tmp_path / f"m{i}.tflite", [32, 16, 4], seed=i)) for i in range(2)]
    (device,) = select(["cpu"]).devices
    opts = TimingOptions(processes=10, rounds=2, round_seconds=0.001, **timing)
    with start_recorder(tmp_path / "r.json", {"run": {"devices": [device.to_dict()]}}, opts,
                        plan={device.key: models}, progress=lambda _: None, idle_timeout_s=120) as recorder:
        entries = [recorder.measure(m, device) for m in models]
    assert all(e.ok for e in entries)
    return [len(e.latency.processes) for e in entries]


def test_a_decided_model_stops_at_min_processes(tmp_path):
    # every interval is "narrow enough" at a 1000 % target: each model stops at the floor, not at the cap
    assert processes_run(tmp_path, target_ci=10.0) == [DEFAULTS.min_processes] * 2


def test_an_undecided_model_runs_to_the_cap(tmp_path):
    # no interval is ever within 0 %: every process runs (the early stop can only shorten a sweep)
    assert processes_run(tmp_path, target_ci=0.0, max_extra_processes=0) == [10, 10]


def test_min_processes_equal_to_the_cap_turns_it_off(tmp_path):
    # what a run with --baseline (and `edgecheck ab`) asks: the comparison keeps all its processes
    assert processes_run(tmp_path, target_ci=10.0, min_processes=10) == [10, 10]


def test_the_floor_gives_a_95_percent_interval():
    # the interval at the floor is min..max of the process medians: it covers the median with 1 - 2 x 0.5^n
    n = DEFAULTS.min_processes
    assert 1 - 2 * 0.5**n >= 0.95 and 1 - 2 * 0.5 ** (n - 1) < 0.95
    assert n <= DEFAULTS.processes


@pytest.mark.parametrize("n", [DEFAULTS.min_processes])
def test_the_worker_interval_at_the_floor_is_min_to_max(n):
    from edgecheck.measure.worker import _ci_width

    v = [1.0 + i / 100 for i in range(n)]
    assert _ci_width(v) == pytest.approx((max(v) - min(v)) / (2 * sorted(v)[n // 2]))
