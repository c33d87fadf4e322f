"""Guards on a board: the Edge TPU's temperature and the CPU's frequency and governor, read by the worker before
and after each measured process from sysfs laid out as the kernel lays it out.

The layouts are the kernel's own: the apex class of google/gasket-driver (src/apex_driver.c: ``temp`` and
``trip_point0_temp`` .. ``trip_point2_temp`` printed with "%i\\n" in millidegrees C, defaults 85000, 90000 and
95000, ``temp_poll_interval`` 5000 ms) and cpufreq's policy files (Documentation/admin-guide/pm/cpufreq.rst:
``scaling_cur_freq``, ``scaling_max_freq`` and ``cpuinfo_max_freq`` in kHz, ``scaling_governor`` a name), with
the Coral Dev Board's i.MX 8M frequencies (1.5 GHz max). This machine has neither, so the worker reads a fake
/sys (``sysfs_root``); the measuring is real (LiteRT in the worker's fresh processes).
"""
import importlib.util
from pathlib import Path

import pytest

from edgecheck.measure.transport import WORKER


@pytest.fixture(scope="module")
def worker():
    spec = importlib.util.spec_from_file_location("worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def apex(root: Path, temp: int, trips=(85000, 90000, 95000)) -> Path:
    """/sys/class/apex/apex_0 as the gasket driver publishes it (one value and a newline per file)."""
    d = root / "sys" / "class" / "apex" / "apex_0"
    d.mkdir(parents=True, exist_ok=True)
    files = {"temp": temp, "temp_poll_interval": 5000, "hw_temp_warn1": 100000, "hw_temp_warn2": 100000,
             "hw_temp_warn1_en": 0, "hw_temp_warn2_en": 1}
    files.update({f"trip_point{i}_temp": t for i, t in enumerate(trips)})
    for name, value in files.items():
        (d / name).write_text(f"{value}\n")
    return d


def cpufreq(root: Path, cores=4, governor="performance", cur=1500000, top=1500000) -> list[Path]:
    """/sys/devices/system/cpu/cpuN/cpufreq for a Dev Board's four A53 cores (one policy, as on the i.MX 8M)."""
    out = []
    for n in range(cores):
        d = root / "sys" / "devices" / "system" / "cpu" / f"cpu{n}" / "cpufreq"
        d.mkdir(parents=True, exist_ok=True)
        for name, value in {"scaling_cur_freq": cur, "scaling_max_freq": top, "scaling_min_freq": 1000000,
                            "cpuinfo_max_freq": 1500000, "cpuinfo_min_freq": 1000000,
                            "scaling_available_frequencies": "1000000 1300000 1500000 ",
                            "scaling_available_governors": "interactive conservative ondemand userspace powersave "
                                                           "performance schedutil ",
                            "scaling_governor": governor, "scaling_driver": "imx8mq-cpufreq"}.items():
            (d / name).write_text(f"{value}\n")
        out.append(d)
    return out


def test_the_readings_of_a_cool_board_at_full_speed_raise_nothing(worker, tmp_path):
    apex(tmp_path, 47250)
    cpufreq(tmp_path)
    g = worker.guards(str(tmp_path))
    assert g["tpus"] == {"apex_0": {"temp": 47250, "trip": 85000, "trip_from": "trip_point0_temp"}}
    assert g["cpus"]["cpu3"] == {"cur": 1500000, "max": 1500000, "governor": "performance"} and g["skipped"] == []
    assert worker._guarded(g, worker.guards(str(tmp_path))) == []


def test_absent_files_are_skipped_with_the_reason(worker, tmp_path):
    """A VM (no cpufreq) with a USB Accelerator (no apex class): nothing is guessed, each reason is named."""
    g = worker.guards(str(tmp_path))
    assert g["tpus"] == {} and g["cpus"] == {}
    assert g["skipped"] == [
        f"Edge TPU temperature: no {tmp_path}/sys/class/apex/apex_* (no PCIe Edge TPU under the apex driver; a USB "
        "Accelerator publishes no temperature)",
        f"CPU frequency and governor: no {tmp_path}/sys/devices/system/cpu/cpu*/cpufreq (no cpufreq driver: a VM, "
        "or a kernel without it)"]
    assert worker._guarded(g, g) == []
    d = apex(tmp_path, 47250, trips=())  # an apex folder whose temp cannot be read, and no trip points
    (d / "temp").unlink()
    assert worker.guards(str(tmp_path))["skipped"][0] == f"apex_0 temperature: {d / 'temp'} unreadable or absent"
    (d / "temp").write_text("91000\n")  # no trip_point0_temp: the driver's default 85 C
    g = worker.guards(str(tmp_path))
    assert worker._guarded(g, g) == ["apex_0 at 91.0 C, at or above its first throttle trip point 85.0 C (the "
                                     "driver's default 85 C)"]


def test_a_governor_change_or_a_lowered_max_mid_run_is_caught(worker, tmp_path):
    policies = cpufreq(tmp_path, governor="performance")
    before = worker.guards(str(tmp_path))
    (policies[0] / "scaling_governor").write_text("powersave\n")  # changed while the process ran
    (policies[1] / "scaling_max_freq").write_text("1000000\n")  # thermal capping lowers the policy's max
    (policies[2] / "scaling_cur_freq").write_text("1000000\n")  # performance, but below max
    assert worker._guarded(before, worker.guards(str(tmp_path))) == [
        "cpu0 governor changed from performance to powersave during the process",
        "cpu1 max frequency lowered from 1500 to 1000 MHz during the process",
        "cpu2 at 1000 MHz under the performance governor, below its max 1500 MHz"]
    # ondemand idles a core below its max by design: a low frequency alone is not a throttle there
    ondemand = tmp_path / "ondemand"
    cpufreq(ondemand, governor="ondemand", cur=1000000)
    g = worker.guards(str(ondemand))
    assert worker._guarded(g, g) == []



def test_a_core_that_slowed_during_the_timing_is_named_by_its_own_number(worker, tmp_path):
    """The frequency-drop check reads the same two guards readings: a core (cpu10, after cpu2 in sysfs's listing
    order) that fell below the drop threshold between them is named; one that stayed is not; a thermal trip and a
    guard's reason follow."""
    policies = cpufreq(tmp_path, cores=11, governor="ondemand", cur=1500000)
    before = worker.guards(str(tmp_path))
    (policies[10] / "scaling_cur_freq").write_text("1000000\n")
    after = worker.guards(str(tmp_path))
    assert worker._throttle(before, after, ["thermal_zone0 passive (90000 >= 85000)"], ["a guard"]) == (
        "cpu10 frequency dropped from 1500 to 1000 MHz; thermal trip: thermal_zone0 passive (90000 >= 85000); "
        "a guard")
    assert worker._throttle(before, before, []) is None


def _ab(tmp_path, root, head_sizes):
    from support import ab_on_cpu
    from tinytflite import dense_tflite

    got, _ = ab_on_cpu(dense_tflite(tmp_path / "a.tflite", [64, 32, 4]),
                       dense_tflite(tmp_path / "b.tflite", head_sizes, seed=1), root)
    return got.base, got.head


HOT = "apex_0 at 86.0 C, at or above its first throttle trip point 85.0 C (trip_point0_temp)"
SLOW = ("cpu0 at 1000 MHz under the performance governor, below its max 1500 MHz; cpu1 at 1000 MHz under the "
        "performance governor, below its max 1500 MHz")
NO_CPUFREQ = "CPU frequency and governor: no {root}/sys/devices/system/cpu/cpu*/cpufreq (no cpufreq driver: a VM, or " \
             "a kernel without it)"
NO_APEX = "Edge TPU temperature: no {root}/sys/class/apex/apex_* (no PCIe Edge TPU under the apex driver; a USB " \
          "Accelerator publishes no temperature)"


@pytest.mark.parametrize("board", ["hot tpu", "cores held below max"])
def test_a_hot_or_throttled_board_is_measured_once_more_then_unstable_and_never_red(tmp_path, board):
    """Every process measured at 86 C (above trip point 0), or with the cores under the performance governor
    held at 1.0 of 1.5 GHz, runs once more in a fresh process; hot or slow again, its ProcessTiming says so and
    the model is unstable, so even a head 16 times larger is inconclusive."""
    from edgecheck.judge.compare import AB, compare_runs

    root = tmp_path / "board"
    if board == "hot tpu":
        apex(root, 86000)
        why, skipped = HOT, NO_CPUFREQ
    else:
        cpufreq(root, cores=2, governor="performance", cur=1000000)
        why, skipped = SLOW, NO_APEX
    base, head = _ab(tmp_path, root, [64, 512, 4])
    for run in (base, head):
        (e,) = run.entries
        procs = e.latency.processes
        assert sorted(p.process for p in procs) == ([0, 3] if run is base else [1, 2])
        assert all(p.repeated == why and p.unstable == why for p in procs)
        assert e.latency.unstable.endswith("; ".join(  # after a robust CV over 10 %, if the CV is that too
            f"process {p.process} hot or throttled again when measured once more: {why}"
            for p in sorted(procs, key=lambda p: p.process)))
        assert e.worker["host"]["guards_skipped"] == [skipped.format(root=root)]
        assert e.to_json()["latency"]["processes"][0]["unstable"] == why  # in the results record
    got = compare_runs(base, head, by_name=True, kind=AB)
    (row,) = got.rows
    assert row.verdict == "unstable" and row.outcome.status == "inconclusive" and not got.has_regression


def test_the_sequential_ab_never_decides_a_model_measured_hot(tmp_path):
    """``edgecheck ab``'s own rule (judge/ab_stats.py): a model whose processes were hot again when measured once
    more stays undecided through the looks and ends unstable, naming why, even with a head 16 times larger."""
    from support import ab_on_cpu
    from tinytflite import dense_tflite

    from edgecheck.judge import ab_stats

    root = tmp_path / "board"
    apex(root, 86000)
    got, seqs = ab_on_cpu(dense_tflite(tmp_path / "a.tflite", [64, 32, 4]),
                          dense_tflite(tmp_path / "b.tflite", [64, 512, 4], seed=1), root, cap=4)
    result = ab_stats.ab_comparison(got.base, got.head, (), seqs[""], got.looks, got.stopped, base_label="a",
                                    head_label="b")
    (row,) = [r for r in result.rows if r.metric == "latency" and r.model != "(whole run)"]
    assert row.verdict == ab_stats.UNSTABLE and HOT in row.outcome.detail and not result.has_regression


def test_a_cool_tpu_at_its_governors_speed_is_measured_once(tmp_path):
    """The same A/B at 47 C under schedutil: no process repeated, none unstable for a guard."""
    root = tmp_path / "board"
    apex(root, 47000)
    cpufreq(root, governor="schedutil", cur=1200000)
    base, head = _ab(tmp_path, root, [64, 512, 4])
    for run in (base, head):
        (e,) = run.entries
        assert len(e.latency.processes) == 2
        assert all(p.repeated is None and p.unstable is None for p in e.latency.processes)
        assert "apex_0" not in (e.latency.unstable or "") and "cpu" not in (e.latency.unstable or "")
        assert e.worker["host"]["guards_skipped"] == []


def test_a_repeat_that_comes_out_cool_replaces_the_hot_attempt():
    """The host's side: the worker's lines for a process measured hot, then once more and cool (as the worker
    writes them); the repeat's line replaces the first, and the model is not unstable for it."""
    from edgecheck.measure import sweep

    why = "apex_0 at 85.5 C, at or above its first throttle trip point 85.0 C (trip_point0_temp)"
    result = sweep.SweepResult(models={"1x16": sweep.ModelSweep("1x16")})
    line = {"kind": "timing", "name": "1x16", "position": 0, "iterations": 100, "short_rounds": 0}
    for msg in ({**line, "process": 0, "samples": [2e-5, 2e-5], "throttle": why},
                {**line, "process": 1, "samples": [1e-5, 1e-5], "throttle": None},
                {**line, "process": 0, "samples": [1e-5, 1e-5], "throttle": None, "repeated": why, "unstable": None}):
        sweep._take(result, msg, None)
    lat = sweep.latency(result.of("1x16"), "time.perf_counter", 1)
    assert [(p.process, p.median, p.repeated, p.unstable) for p in lat.processes] == [(0, 1e-5, why, None),
                                                                                       (1, 1e-5, None, None)]
    assert "apex_0" not in (lat.unstable or "")
    hot_again = {**line, "process": 1, "samples": [3e-5, 3e-5], "throttle": why, "repeated": why, "unstable": why}
    sweep._take(result, hot_again, None)
    lat = sweep.latency(result.of("1x16"), "time.perf_counter", 1)
    assert lat.processes[1].unstable == why and lat.unstable.endswith(
        f"process 1 hot or throttled again when measured once more: {why}")


def test_a_governor_changed_while_a_process_runs_makes_it_run_once_more(tmp_path, monkeypatch):
    """A real sweep: the first process of side A reads the governor (performance), then is held in its model's
    load (the worker's hang injection, which writes its pid first) while the governor is set to powersave, as a
    user or a power daemon would; that process is measured once more, and the repeat, under one governor
    throughout, stands: repeated, not unstable."""
    import threading
    import time

    (policy,) = cpufreq(tmp_path / "board", cores=1, governor="performance")
    pidfile = tmp_path / "held.pids"
    monkeypatch.setenv("EDGECHECK_WORKER_HANG", "A:a")
    monkeypatch.setenv("EDGECHECK_WORKER_HANG_SECONDS", "2")  # the switch has 2 s
    monkeypatch.setenv("EDGECHECK_WORKER_HANG_PIDFILE", str(pidfile))

    def switch():
        deadline = time.monotonic() + 120
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        (policy / "scaling_governor").write_text("powersave\n")

    thread = threading.Thread(target=switch)
    thread.start()
    try:
        base, head = _ab(tmp_path, tmp_path / "board", [64, 32, 4])
    finally:
        thread.join()
    why = "cpu0 governor changed from performance to powersave during the process"
    (e,) = base.entries
    assert [(p.process, p.repeated, p.unstable) for p in e.latency.processes] == [(0, why, None), (3, None, None)]
    assert "governor" not in (e.latency.unstable or "")
    assert len(pidfile.read_text().split()) == 3  # A's processes 0 (twice: once more after the change) and 2
    (e,) = head.entries
    assert all(p.repeated is None and p.unstable is None for p in e.latency.processes)
