"""The measurement worker: fresh processes in shuffled orders, killed mid-run, under Python 3.7 with
tflite-runtime, and over a real ssh into a private folder of its own."""
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import INFERENCE, load, run_pytest

from edgecheck import artifacts as art
from edgecheck.errors import EdgecheckError
from edgecheck.measure import sweep
from edgecheck.measure.devices import parse_device_option
from edgecheck.measure.kinds.a53 import KIND as A53
from edgecheck.measure.kinds.cpu import KIND as CPU
from edgecheck.measure.remote import RemoteDevice, parse_target
from edgecheck.measure.transport import WORKER, LocalTransport, SshTransport


@dataclass(frozen=True)
class Timing:
    processes: int = 3
    rounds: int = 4
    warmup_rounds: int = 1
    round_seconds: float = 0.002
    calibration_seconds: float = 0.002
    max_extra_processes: int = 0
    target_ci: float = 0.03
    adaptive_budget: float = 0.0
    seed: int = 0


def smoke_job(root, timing=Timing(), with_inputs=True):
    a = art.load(root)
    models = a.models
    inputs = None
    if with_inputs:
        import numpy as np

        inputs = Path(root) / "test-windows.npz"
        np.savez(inputs, F_test=a.test_set.features)
    files = {m.name: [m.tflite, inputs] for m in models}
    device = RemoteDevice(CPU.name, "measured", 1, {"remote": "ssh://board"}, impl=CPU)  # the job a board gets
    return sweep.job(device, [{"name": m.name} for m in models], timing), files, models


def test_every_model_is_timed_in_fresh_processes_in_shuffled_orders(smoke_artifacts):
    job, files, models = smoke_job(smoke_artifacts)
    result = sweep.run(LocalTransport(), job, files)
    assert result.processes == 3 and result.interpreter == "ai_edge_litert.interpreter"
    orders = {}
    for m in models:
        ms = result.of(m.name)
        assert [t["process"] for t in sorted(ms.timings, key=lambda t: t["process"])] == [0, 1, 2]
        assert all(len(t["samples"]) == 4 and t["iterations"] >= 1 for t in ms.timings)
        for t in ms.timings:
            orders.setdefault(t["process"], {})[t["position"]] = m.name
        # the model's own fresh process: its peak memory above the worker's baseline, and its predictions
        assert ms.model["peak_rss_bytes"] > ms.model["baseline_rss_bytes"] > 0
        assert ms.model["predictions"] == [int(x) for x in m.build_predictions]
    assert len({tuple(o[k] for k in sorted(o)) for o in orders.values()}) > 1  # not one fixed order
    lat = sweep.latency(result.of(models[0].name), "time.perf_counter", 1)
    assert len(lat.samples) == 12 and len(lat.processes) == 3
    lo, hi = lat.ci95.low, lat.ci95.high
    assert lo <= lat.process_median <= hi


def test_a_worker_process_that_aborts_loses_no_other_result(smoke_artifacts, monkeypatch):
    monkeypatch.setenv("EDGECHECK_WORKER_ABORT_AFTER", "1")  # every process that loads the second model aborts
    job, files, models = smoke_job(smoke_artifacts, with_inputs=False)
    result = sweep.run(LocalTransport(), job, files)
    names = [m.name for m in models]
    assert len(result.of(names[0]).timings) == 3 and len(result.of(names[2]).timings) == 3
    lost = result.of(names[1])
    assert not lost.timings and any("killed by SIGABRT while measuring this model" in e for e in lost.errors)
    with pytest.raises(EdgecheckError, match="SIGABRT"):
        sweep.latency(lost, "time.perf_counter", 1)


def test_a_hung_model_is_retried_once_after_a_power_cycle_then_failed_and_the_rest_measured(smoke_artifacts,
                                                                                             monkeypatch, tmp_path):
    """The sweep's watchdog with a way to recover the board (a farm place's power cycle: here, killing the hung
    processes): 2x32 hangs every time; it is retried once, then failed with the reason, and the others measured."""
    pidfile = tmp_path / "hung.pids"
    monkeypatch.setenv("EDGECHECK_WORKER_HANG", "2x32")
    monkeypatch.setenv("EDGECHECK_WORKER_HANG_PIDFILE", str(pidfile))
    job, files, models = smoke_job(smoke_artifacts, Timing(processes=1, rounds=2), with_inputs=False)
    job["memory"] = False
    transport, cycles = LocalTransport(), []

    def recover():
        for pid in map(int, pidfile.read_text().split()):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        pidfile.unlink()
        cycles.append(1)
        return "power-cycled (test)", transport

    result = sweep.run(transport, job, files, idle_timeout_s=3, recover=recover)
    assert len(cycles) == 2
    assert [r["hung_on"] for r in result.recoveries] == ["2x32", "2x32"]
    hung = result.of("2x32")
    assert not hung.timings and hung.errors == [
        "the measurement worker at local worker stopped answering for 3 s (--worker-timeout) on this model twice; "
        "the board was power-cycled after each hang (power-cycled (test)) and the model retried once"]
    for name in ("1x16", "1x64"):
        assert len(result.of(name).timings) >= 1 and not result.of(name).errors
    # no way to recover (a plain ssh host, this machine): the watchdog still bounds the wait, and the models fail
    without = sweep.run(transport, {**job, "models": [{"name": "2x32"}]}, files, idle_timeout_s=1)
    assert without.of("2x32").errors == ["the measurement worker at local worker stopped answering for 1 s "
                                         "(--worker-timeout)"]
    no_power = sweep.run(transport, {**job, "models": [{"name": "2x32"}]}, files, idle_timeout_s=1,
                         recover=lambda: None)  # a farm place without a power driver
    assert no_power.of("2x32").errors == ["the measurement worker at local worker stopped answering for 1 s "
                                          "(--worker-timeout); the board has no power driver (--lg-power-cycle), "
                                          "so it was neither power-cycled nor retried"]
    for pid in map(int, pidfile.read_text().split()):  # the worker's process group is killed on a hang already
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def test_throttling_marks_every_model_unstable(smoke_artifacts, tmp_path):
    """A thermal zone at its passive trip point during the sweep (a fake /sys laid out as the kernel's)."""
    zone = tmp_path / "sys" / "class" / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    for f, v in {"type": "cpu-thermal", "temp": "76000", "trip_point_0_type": "passive",
                 "trip_point_0_temp": "75000", "trip_point_1_type": "critical", "trip_point_1_temp": "90000"}.items():
        (zone / f).write_text(v + "\n")
    job, files, models = smoke_job(smoke_artifacts, with_inputs=False)
    result = sweep.run(LocalTransport(), job, files, sysfs_root=str(tmp_path))
    lat = sweep.latency(result.of(models[0].name), "time.perf_counter", 1)
    assert "thermal trip: thermal_zone0 passive (76000 >= 75000)" in lat.unstable


def test_rounds_that_come_out_short_are_measured_again():
    """The worker's round loop: a calibration that misjudged the speed gives short rounds, which are redone
    with more invokes, so every kept round lasts at least half its target."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("worker", WORKER)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    calls = [0]

    def invoke():  # slow while the calibration runs, fast afterwards (as when the load goes away)
        calls[0] += 1
        if calls[0] < 50:
            time.sleep(0.0002)

    job = {"round_seconds": 0.01, "calibration_seconds": 0.003, "warmup_rounds": 0, "rounds": 5}
    samples, n, short = worker.time_rounds(invoke, job, time.perf_counter)
    assert short >= 1 and len(samples) == 5 and all(s * n >= 0.005 for s in samples)


def test_target_parsing():
    t = parse_target("tpu@ssh://mendel@coral.local:2222")
    assert (t.device, t.host, t.user, t.port, t.where) == ("tpu", "coral.local", "mendel", 2222,
                                                            "ssh://mendel@coral.local:2222")
    for bad, why in (("gpu@ssh://x", "remote devices look like"), ("tpu@http://x", "only ssh://"),
                     ("tpu@ssh://", "only ssh://"), ("tpu@ssh://u@h:abc", "the port must be a number"),
                     ("tpu@ssh://u@h:99999", "the port must be a number"),
                     ("tpu@ssh://-oProxyCommand=x", "is not a host name"),
                     ("tpu@ssh://-l@h", "is not a user name")):
        with pytest.raises(EdgecheckError, match=why):
            parse_target(bad, kinds=("tpu", "a53", "cpu"))
    with pytest.raises(EdgecheckError, match="remote devices look like KIND@ssh://user@host, KIND one of cpu, tpu"):
        parse_device_option(["gpu@ssh://x"])  # the kinds a board can measure come from the registry
    assert SshTransport("coral.local", "mendel").ssh()[-2:] == ["--", "coral.local"]


def _python37() -> str | None:
    found = shutil.which("python3.7")
    if found and subprocess.run([found, "--version"], capture_output=True).returncode == 0:
        return found
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted(glob.glob(str(pyenv / "versions" / "3.7*" / "bin" / "python3.7")))
    return found[-1] if found else None


@pytest.fixture(scope="module")
def py37_with_tflite_runtime(tmp_path_factory):
    """A real Python 3.7 with tflite-runtime 2.11 (its last release with Python 3.7 wheels), as on a Dev Board."""
    py37 = _python37()
    if py37 is None:
        pytest.skip("no Python 3.7 interpreter on this machine")
    venv = tmp_path_factory.mktemp("py37")
    if subprocess.run([py37, "-m", "venv", str(venv)], capture_output=True).returncode != 0:
        pytest.skip("python3.7 cannot create a virtual environment here")
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-compile", "tflite-runtime==2.11.0",
                          "numpy<1.22"], capture_output=True, text=True, timeout=600)
    if pip.returncode != 0:
        pytest.skip(f"cannot install tflite-runtime 2.11 for Python 3.7: {pip.stderr.strip()[-300:]}")
    return venv / "bin" / "python"


@pytest.mark.integration  # a Python 3.7 virtual environment with tflite-runtime installed
def test_worker_runs_under_python37_and_tflite_runtime(py37_with_tflite_runtime, smoke_artifacts):
    job, files, models = smoke_job(smoke_artifacts, with_inputs=False)
    m = models[0]
    body = {**job, "models": [{"name": m.name, "path": str(m.tflite), "inputs": None}]}
    proc = subprocess.run([str(py37_with_tflite_runtime), str(WORKER)], input=json.dumps(body), capture_output=True,
                          text=True, timeout=300)
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    done = lines[-1]
    assert done["kind"] == "done" and done["interpreter"] == "tflite_runtime.interpreter"
    assert done["host"]["python"].startswith("3.7")
    timings = [x for x in lines if x["kind"] == "timing"]
    assert len(timings) == 3 and all(len(t["samples"]) == 4 and min(t["samples"]) > 0 for t in timings)
    proc = subprocess.run([str(py37_with_tflite_runtime), str(WORKER)], input=json.dumps({**body, "device": A53.name,
                                                                              "cpu_part": list(A53.cpu_part)}),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3 and "not an Arm Cortex-A53" in proc.stdout


def test_measure_over_ssh(sshd, smoke_artifacts, tmp_path):
    """pytest on this host measures the 'board' over ssh; the samples are timed there and recorded here."""
    results = tmp_path / "r.json"
    spec = f"cpu@ssh://{sshd['user']}@127.0.0.1:{sshd['port']}"
    ssh_args = [f"--ssh-option={o}" for o in sshd["opts"]]
    # the board's python, noting where the worker ran (other tests' private folders may exist meanwhile)
    seen = tmp_path / "worker-paths"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "$1" >> {seen}\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    proc = run_pytest(INFERENCE, "--artifacts", str(smoke_artifacts), "--device", spec, "--results", str(results),
                      "--remote-python", str(python), "--processes", "2", "--rounds", "3", *ssh_args)
    assert proc.returncode == 0, proc.stdout[-3000:]
    entries = load(results)["entries"]
    assert len(entries) == 3
    for e in entries:
        assert e["status"] == "ok" and e["kind"] == "measured"
        assert e["provenance"].startswith(f"measured on cpu at ssh://{sshd['user']}@127.0.0.1:{sshd['port']}")
        procs = e["latency"]["processes"]  # 2, and more where the interval stayed wide (adaptive)
        assert len(procs) >= 2 and len(e["latency"]["samples"]) == 3 * len(procs)
        assert "edgecheck worker on ssh://" in e["latency"]["timer"]
        assert e["on_device"]["agreement_with_build"] == 1.0  # the test windows went to the board too
    folders = {os.path.dirname(p) for p in seen.read_text().split()}
    assert len(folders) == 1 and next(iter(folders)).startswith("/tmp/edgecheck-")
    assert not os.path.exists(folders.pop())  # the private folder is removed


def _transport(sshd):
    return SshTransport("127.0.0.1", sshd["user"], sshd["port"], sys.executable, sshd["opts"])


def test_the_private_folder_refuses_a_planted_file(sshd, smoke_artifacts):
    """Another user swaps a copied file (here: a symlink to a file of theirs) before the worker runs: the
    hash check refuses to run it."""
    t = _transport(sshd)
    model = art.load(smoke_artifacts).models[0].tflite
    path = t.put(model)
    folder = os.path.dirname(path)
    assert oct(os.stat(folder).st_mode & 0o777) == "0o700" and os.path.basename(folder).startswith("edgecheck-")
    evil = Path(folder).parent / f"evil-{os.getpid()}"
    evil.write_bytes(b"not the model")
    os.unlink(path)
    os.symlink(evil, path)
    with pytest.raises(EdgecheckError, match="does not hold what was copied; refusing to run it|does not hold what"):
        t.spawn(t.worker())
    t.close()
    assert not os.path.exists(folder)
    evil.unlink()


def test_a_host_that_never_answers_fails_clearly(smoke_artifacts):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = SshTransport("127.0.0.1", "nobody", port, connect_timeout_s=5)
    with pytest.raises(EdgecheckError, match="ssh failed|did not answer"):
        t.put(art.load(smoke_artifacts).models[0].tflite)
