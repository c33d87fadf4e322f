"""Stop measuring once decided: a model leaves the later processes once its interval of the median across
processes is narrow enough, never before ``min_processes`` (a real model, a real worker on this host's cpu)."""
import pytest
from tinytflite import dense_tflite

from edgecheck import artifacts as art
from edgecheck.config import DEFAULTS
from edgecheck.measure.devices import select
from edgecheck.measure.recorder import TimingOptions, start_recorder


def entries_of(tmp_path, **timing) -> list:
    models = [art.user_model(dense_tflite(tmp_path / f"m{i}.tflite", [32, 16, 4], seed=i)) for i in range(2)]
    (device,) = select(["cpu"]).devices
    opts = TimingOptions(processes=10, rounds=2, round_seconds=0.001, **timing)
    with start_recorder(tmp_path / "r.json", {"run": {"devices": [device.to_dict()]}}, opts,
                        plan={device.key: models}, progress=lambda _: None, idle_timeout_s=120) as recorder:
        entries = [recorder.measure(m, device) for m in models]
    assert all(e.ok for e in entries)
    return entries


def processes_run(tmp_path, **timing) -> list[int]:
    return [len(e.latency.processes) for e in entries_of(tmp_path, **timing)]


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


def test_later_processes_take_the_first_ones_calibration(tmp_path):
    # pyperf-style: the first process that times a model calibrates its invokes per round; later processes run
    # that many without a calibration burst, unless a round comes out short (then they raise it themselves)
    for e in entries_of(tmp_path, target_ci=0.0, max_extra_processes=0):
        first = e.latency.processes[0]
        for p in e.latency.processes[1:]:
            if p.short_rounds == 0:
                assert p.iterations == first.iterations, (e.model, [q.iterations for q in e.latency.processes])


@pytest.mark.parametrize("spread, n, left, worth", [
    (0.035, 10, 8, True),    # 3.5 % at 10: about 2.6 % at 18, within 3 %
    (0.060, 10, 8, False),   # 6 % at 10: about 4.5 % at 18, never within 3 %
    (0.020, 10, 8, False),   # already within: no extra process
    (0.035, 10, 1, False),   # one left cannot narrow 3.5 % to 3 %
])
def test_extra_processes_go_where_they_can_decide(spread, n, left, worth):
    from edgecheck.measure.worker import _ci_width, _worth_more

    # process medians evenly spread so that the interval's half-width is about ``spread``
    v = [1.0 + 2 * spread * (i / (n - 1) - 0.5) for i in range(n)]
    width = _ci_width(v)
    assert _worth_more(v, 0.03, left) is worth, width
