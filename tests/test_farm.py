"""A farm of boards on labgrid, for real on 127.0.0.1: a labgrid coordinator and exporter started here, two places
(dev-a, dev-b) whose NetworkService is the test sshd, and pytest sessions measuring through them as users run
them. Every test here has "labgrid" in its name (``pytest -k labgrid``). Without labgrid or sshd they skip with
the reason, or fail where CI requires them (EDGECHECK_REQUIRE=sshd,labgrid)."""
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support import INFERENCE, REPO, load, run_edgecheck, skip_unless_available

from edgecheck.errors import EdgecheckError
from edgecheck.measure.devices import parse_device_option
from edgecheck.measure.farm import FarmClient, FarmOptions, owner_identity, parse_farm_spec, parse_owner
from edgecheck.measure.transport import SshTransport

# one process of two rounds per model, no HTML report; assertions not rewritten: child sessions import labgrid and
# edgecheck, whose modules pytest would otherwise rewrite (seconds per session where no bytecode is cached)
FAST = ("--processes", "1", "--rounds", "2", "--round-time", "0.001", "--report", "none", "--assert=plain")


def _wait_for_line(path: Path, needle: str, proc: subprocess.Popen, seconds: float = 20.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if needle in text:
            return text
        if proc.poll() is not None:
            skip_unless_available("labgrid", f"{Path(proc.args[0]).name} exited ({proc.returncode}): {text[-300:]}")
        time.sleep(0.05)
    skip_unless_available("labgrid", f"{Path(proc.args[0]).name} did not say {needle!r} within {seconds} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def lab(sshd, tmp_path_factory):
    """A labgrid coordinator and exporter on 127.0.0.1 (started once for this module), and two places tagged
    board=devboard (slot=a, slot=b) whose NetworkService is the test sshd; an admin client to look at locks."""
    bindir = Path(sys.executable).parent
    coordinator_bin, exporter_bin = bindir / "labgrid-coordinator", bindir / "labgrid-exporter"
    try:
        import labgrid  # noqa: F401
    except ImportError:
        skip_unless_available("labgrid", "labgrid is not installed (pip install -e '.[farm]'; make setup does)")
    if not coordinator_bin.exists() or not exporter_bin.exists():
        skip_unless_available("labgrid", f"labgrid's coordinator and exporter are not in {bindir}")
    d = tmp_path_factory.mktemp("lab")
    procs = []
    admin = None
    try:
        log = d / "coordinator.log"
        with open(log, "wb") as f:  # it keeps places.yaml in its working folder: a fresh one
            procs.append(subprocess.Popen([str(coordinator_bin), "--listen", "127.0.0.1:0"], cwd=d, stdout=f,
                                          stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}))
        text = _wait_for_line(log, "listening on", procs[0])
        address = next(x for x in text.splitlines() if x.startswith("listening on ")).split()[-1]
        config = d / "exporter.yaml"
        config.write_text("".join(f"board-{s}:\n  NetworkService:\n    address: 127.0.0.1\n    port: {sshd['port']}\n"
                                  f"    username: {sshd['user']}\n" for s in "ab"))
        xlog = d / "exporter.log"
        with open(xlog, "wb") as f:
            procs.append(subprocess.Popen([str(exporter_bin), "-c", address, "-n", "lab", "--hostname", "127.0.0.1",
                                           str(config)], cwd=d, stdout=f, stderr=subprocess.STDOUT,
                                          env={**os.environ, "PYTHONUNBUFFERED": "1"}))
        _wait_for_line(xlog, "Exporter ready", procs[1])
        admin = FarmClient(FarmOptions(coordinator=address), say=lambda line: None)
        pb2 = admin.pb2
        for slot in "ab":
            place = f"dev-{slot}"
            admin._rpc("AddPlace", pb2.AddPlaceRequest(name=place))
            admin._rpc("SetPlaceTags", pb2.SetPlaceTagsRequest(placename=place, tags={"board": "devboard",
                                                                                        "slot": slot}))
            admin._rpc("AddPlaceMatch", pb2.AddPlaceMatchRequest(placename=place,
                                                                 pattern=f"lab/board-{slot}/NetworkService"))
        yield {"address": address, "admin": admin, "dir": d, "sshd": sshd}
    finally:
        if admin is not None:
            admin.close()
        for p in reversed(procs):
            _stop(p)


def _locks(lab) -> dict:
    """Who holds each place, and the reservations left (none once every session has ended)."""
    admin = lab["admin"]
    return {"held": {n: p.acquired for n, p in admin.places().items() if p.acquired},
            "reservations": [r.token for r in admin.reservations()]}


def _no_locks_left(lab) -> None:
    assert _locks(lab) == {"held": {}, "reservations": []}


def _farm_args(lab, *devices: str, power: str | None = None, labgrid_plugin: bool = False) -> list[str]:
    args = [INFERENCE, *[a for d in devices for a in ("--device", d)], "--lg-coordinator", lab["address"],
            "--lg-ssh-key", lab["sshd"]["key"], "--remote-python", sys.executable, *FAST]
    if power:
        args += ["--lg-power-cycle", power]
    return args if labgrid_plugin else ["-p", "no:labgrid", *args]


@pytest.fixture(autouse=True, scope="module")
def _sigint_as_at_a_terminal():
    """The sessions these tests start get Ctrl-C as at a terminal, even where the tests run as a background job
    (a shell's `&`, a CI runner): such a job starts with SIGINT ignored, exec passes an ignored signal on, and
    Python then keeps it ignored. A handled signal is reset to the default in a child, so this process handles
    it while the farm tests run (no preexec_fn: forking a process with gRPC's threads can crash the child)."""
    before = signal.getsignal(signal.SIGINT)
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _pytest(*args, **popen) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **popen.pop("env", {})}
    if "no:labgrid" not in args:  # this session loads labgrid's plugin: not left out for speed (conftest.py)
        env["PYTEST_ADDOPTS"] = " ".join(env.get("PYTEST_ADDOPTS", "").replace("-p no:labgrid", "").split())
    return subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=REPO,
                            env=env, text=True, **popen)


def _run(*args, timeout=120, **popen) -> subprocess.CompletedProcess:
    proc = _pytest(*args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)
    out, _ = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def _hanging_python(d: Path, hang: str, pidfile: Path) -> Path:
    """The board's python, with the worker's fault injection on: the process that loads ``hang`` hangs."""
    script = d / f"python-hanging-{hang}-{pidfile.stem}"
    script.write_text(f"#!/bin/sh\nexport EDGECHECK_WORKER_HANG={hang} EDGECHECK_WORKER_HANG_PIDFILE={pidfile} "
                      f"EDGECHECK_WORKER_HANG_SECONDS=60\nexec {sys.executable} \"$@\"\n")
    script.chmod(0o755)
    return script


def _model(artifacts: Path) -> Path:
    """The smoke grid's 1x16 as a user's model file (its name in a run: "model", the file's stem)."""
    from edgecheck import artifacts as art

    return next(m.tflite for m in art.load(artifacts).models if m.name == "1x16")


def _kill_hung(pidfile: Path) -> None:
    """What a power cycle does to a hung board: its worker processes are gone (their pids, as they wrote them)."""
    for pid in (int(x) for x in pidfile.read_text().split()) if pidfile.exists() else ():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    pidfile.unlink(missing_ok=True)


def test_labgrid_device_specs():
    assert parse_farm_spec("tpu@labgrid:dev-a").filters == {"name": "dev-a"}
    spec = parse_farm_spec("cpu@labgrid:board=devboard,slot=a")
    assert spec.filters == {"board": "devboard", "slot": "a"} and spec.wanted == "a place tagged board=devboard slot=a"
    for bad, why in (("gpu@labgrid:x", "farm devices look like"), ("tpu@labgrid:", "farm devices look like"),
                     ("tpu@labgrid:-oProxy", "is not a place name"), ("tpu@labgrid:Board=x", "is not a tag filter"),
                     ("tpu@labgrid:board=$(reboot)", "is not a tag filter")):
        with pytest.raises(EdgecheckError, match=why):
            parse_farm_spec(bad, ("tpu", "a53", "cpu"))
    with pytest.raises(EdgecheckError, match="KIND one of cpu, tpu, a53"):  # the kinds come from the registry
        parse_device_option(["gpu@labgrid:x"])
    me = owner_identity()
    assert parse_owner(f"host/{me}")[1] == os.getpid()


def test_labgrid_options_are_checked_as_they_are_parsed():
    """Each option's type= check, and one through pytest itself: a usage error (exit 4) naming the option."""
    import argparse

    from edgecheck.config import positive_float
    from edgecheck.options import _checked, _coordinator, _device, _power_cycle

    for check, option, text, why in ((_device, "--device", "tpu@labgrid:bad name", "is not a place name"),
                                     (_coordinator, "--lg-coordinator", "-oProxyCommand=x", "is not HOST"),
                                     (_coordinator, "--lg-coordinator", "coord:99999", "must be 1 to 65535"),
                                     (_power_cycle, "--lg-power-cycle", "relay {outlet", "--lg-power-cycle"),
                                     (_power_cycle, "--lg-power-cycle", "relay 'cycle", "No closing quotation")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            _checked(check, option)(text)
    _checked(_power_cycle, "--lg-power-cycle")("relay-ctl cycle {place} {outlet}")  # tags fill in later
    for bad in ("0", "-1", "nan", "inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_float(bad)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:labgrid", "-p", "no:cacheprovider", INFERENCE,
                           "--worker-timeout", "0", "--device", "cpu@labgrid:dev-a"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 4 and "--worker-timeout: must be > 0" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_labgrid_two_places_measure_in_parallel_with_energy_from_the_boards_own_sensor(lab, smoke_artifacts,
                                                                                       tmp_path):
    """One session, two places: one worker per board, at the same time; the results are one run, each entry
    naming its board. --energy-probe is applied on the boards: each worker reads the board's INA260 (a verbatim
    hwmon tree, reached over ssh), measures idle power and the windows and returns the samples. labgrid's own
    pytest plugin is loaded here: edgecheck reads its --lg-coordinator."""
    sensor = _fake_hwmon(tmp_path) / "hwmon1"
    results = tmp_path / "r.json"
    proc = _run(*_farm_args(lab, "cpu@labgrid:dev-a", "cpu@labgrid:dev-b", labgrid_plugin=True),
                "--artifacts", str(smoke_artifacts), "-k", "1x16", "--results", str(results),
                "--energy-probe", f"hwmon:{sensor}", "--energy-window", "0.1", "--energy-windows", "2",
                "--idle-seconds", "0.1")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "measuring 2 boards in parallel: labgrid:dev-a, labgrid:dev-b" in proc.stdout
    assert f"energy probe: hwmon:{sensor}, opened by the worker on each board" in proc.stdout
    assert "1x16 " in proc.stdout and " cpu@dev-a " in proc.stdout and " cpu@dev-b " in proc.stdout  # the table
    entries = load(results)["entries"]
    assert len(entries) == 2 and all(e["status"] == "ok" and e["kind"] == "measured" for e in entries)
    spans = {}
    for e in entries:
        board = e["device"]["metadata"]["board"]
        place = board["place"]
        assert e["device"]["key"] == f"cpu@labgrid:{place}:threads=1"
        assert board["ssh"] == f"ssh://{lab['sshd']['user']}@127.0.0.1:{lab['sshd']['port']}"
        assert board["tags"] == {"board": "devboard", "slot": place[-1]}
        assert parse_owner(board["owner"])[1] != os.getpid()  # the measuring session's own identity
        assert e["provenance"].startswith(f"measured on cpu at labgrid:{place} via {board['ssh']}")
        spans[place] = (e["worker"]["sweep_started"], e["worker"]["sweep_finished"])
        en = e["energy"]
        assert en["provenance"] == f"measured: hwmon probe on the board at labgrid:{place}, ina260 ({sensor})"
        assert en["idle"]["power_w"] == pytest.approx(2.5) and len(en["windows"]) == 2
        for w in en["windows"]:
            assert w["mean_power_w"] == pytest.approx(2.5) and w["samples"] >= 10 and w["invokes"] > 0
        assert en["total_j"] == pytest.approx(2.5 * float(np.median([(w["t1"] - w["t0"]) / w["invokes"]
                                                                     for w in en["windows"]])), rel=1e-6)
        assert abs(en["dynamic_j"]) < 0.05 * en["total_j"]  # constant power: nothing above idle
    (a0, a1), (b0, b1) = spans["dev-a"], spans["dev-b"]
    assert a0 < b1 and b0 < a1, spans  # the two boards' sweeps overlapped in time
    assert "released labgrid place dev-a" in proc.stdout and "released labgrid place dev-b" in proc.stdout
    _no_locks_left(lab)  # after a session that passed


@pytest.mark.integration  # several whole farm sessions (make test: two places in parallel)
def test_labgrid_two_sessions_wanting_one_place_take_turns(lab, smoke_artifacts, tmp_path):
    """Both ask for any place tagged slot=a (only dev-a): one measures, the other waits, then measures.

    Deterministic on a loaded machine: the first session's board python waits (a wrapper) until the second has
    said that it waits, so the first cannot finish before the second asks (a fast early-stopping sweep could)."""
    outs = [tmp_path / f"out{i}.txt" for i in range(2)]
    go = tmp_path / "second-is-waiting"
    slow = tmp_path / "python-after-the-second-waits"
    slow.write_text(f"#!/bin/sh\nfor i in $(seq 1200); do [ -e {go} ] && break; sleep 0.1; done\n"
                    f"exec {sys.executable} \"$@\"\n")
    slow.chmod(0o755)
    procs = []
    for i, out in enumerate(outs):
        args = _farm_args(lab, "cpu@labgrid:slot=a")
        env = {}
        if i:  # the second finds the coordinator through labgrid's own variable, once the first holds the place
            del args[args.index("--lg-coordinator"):args.index("--lg-coordinator") + 2]
            env = {"LG_COORDINATOR": lab["address"]}
            deadline = time.monotonic() + 120
            while not _locks(lab)["held"] and time.monotonic() < deadline and procs[0].poll() is None:
                time.sleep(0.1)
        else:
            args[args.index("--remote-python") + 1] = str(slow)
        with open(out, "w") as f:
            procs.append(_pytest(*args, "--artifacts", str(smoke_artifacts), "-k", "1x16", "--results",
                                 str(tmp_path / f"r{i}.json"), stdout=f, stderr=subprocess.STDOUT, env=env))
    deadline = time.monotonic() + 120
    while "waiting for a place tagged slot=a" not in outs[1].read_text() and time.monotonic() < deadline \
            and procs[1].poll() is None:
        time.sleep(0.1)
    go.touch()
    for p in procs:
        p.wait(timeout=120)
    texts = [o.read_text() for o in outs]
    assert [p.returncode for p in procs] == [0, 0], texts
    waited = [t for t in texts if "waiting for a place tagged slot=a (dev-a held by" in t]
    assert len(waited) == 1, texts
    spans = []
    for i in range(2):
        (e,) = load(tmp_path / f"r{i}.json")["entries"]
        assert e["status"] == "ok" and e["device"]["metadata"]["board"]["place"] == "dev-a"
        spans.append((e["worker"]["sweep_started"], e["worker"]["sweep_finished"]))
    spans.sort()
    assert spans[0][1] <= spans[1][0]  # never on the board at once
    _no_locks_left(lab)


@pytest.mark.integration  # several whole farm sessions (make test: two places in parallel)
def test_labgrid_hung_worker_is_power_cycled_and_retried_and_the_run_goes_on(lab, smoke_artifacts, tmp_path):
    """1x16 hangs until the board is power-cycled. labgrid's ExternalPowerDriver runs --lg-power-cycle (observed
    here; it 'cycles' the board by killing the hung processes, as a real power cycle would), edgecheck reconnects
    and measures again: every model is measured, and the entries say what happened. (A model that hangs again
    after its retry fails with its own message: tests/test_remote.py, with the same worker and sweep.)"""
    marker, pidfile = tmp_path / "power.log", tmp_path / "hung.pids"
    python = tmp_path / "board-python"
    python.write_text(f"#!/bin/sh\ngrep -q cycle {marker} 2>/dev/null || export EDGECHECK_WORKER_HANG=1x16\n"
                      f"export EDGECHECK_WORKER_HANG_PIDFILE={pidfile}\nexec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    power = f"sh -c 'echo cycle {{place}} {{slot}} >> {marker}; cat {pidfile} | xargs -r kill -9; rm -f {pidfile}'"
    results = tmp_path / "r.json"
    args = _farm_args(lab, "cpu@labgrid:dev-a", power=power)
    args[args.index("--remote-python") + 1] = str(python)
    try:
        proc = _run(*args, "--artifacts", str(smoke_artifacts), "-k", "1x16 or 2x32", "--results", str(results),
                    "--worker-timeout", "3", timeout=180)
    finally:
        _kill_hung(pidfile)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert marker.read_text().splitlines() == ["cycle dev-a a"]  # {place} and the place's tag {slot}
    assert "the worker at ssh://" in proc.stdout and "stopped answering for 3 s (--worker-timeout) on 1x16" in \
        proc.stdout
    assert "power-cycled place dev-a through labgrid's ExternalPowerDriver" in proc.stdout
    entries = load(results)["entries"]
    assert {e["model"]["name"] for e in entries} == {"1x16", "2x32"}
    for e in entries:
        assert e["status"] == "ok"
        (r,) = e["worker"]["recoveries"]
        assert r["hung_on"] == "1x16" and r["after_s"] == 3 and r["action"].startswith("power-cycled place dev-a")
    assert entries[0]["device"]["metadata"]["board"]["power"].startswith("ExternalPowerDriver: sh -c")
    _no_locks_left(lab)


@pytest.mark.integration  # several whole farm sessions (make test: two places in parallel)
def test_labgrid_locks_are_released_on_sigint_and_sigterm(lab, smoke_artifacts, tmp_path):
    """Two sessions stopped while their boards' workers are busy (hung): Ctrl-C (SIGINT) on one, SIGTERM (a CI
    runner cancelling a job) on the other. Each unlocks its place and says so."""
    procs, outs, pidfiles = {}, {}, {}
    try:
        for how, place in (("SIGINT", "dev-a"), ("SIGTERM", "dev-b")):
            pidfiles[how], outs[how] = tmp_path / f"{how}.pids", tmp_path / f"{how}.txt"
            args = _farm_args(lab, f"cpu@labgrid:{place}")
            args[args.index("--remote-python") + 1] = str(_hanging_python(tmp_path, "model", pidfiles[how]))
            with open(outs[how], "w") as f:
                procs[how] = _pytest(*args, "--model", str(_model(smoke_artifacts)), "--results",
                                     str(tmp_path / f"{how}.json"), stdout=f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while not all(p.exists() for p in pidfiles.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(p.exists() for p in pidfiles.values()), {h: o.read_text()[-2000:] for h, o in outs.items()}
        assert set(_locks(lab)["held"]) == {"dev-a", "dev-b"}
        for how, proc in procs.items():
            proc.send_signal(getattr(signal, how))
        for how, proc in procs.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the {how} session did not end within 30 s of the signal: "
                            f"{outs[how].read_text()[-3000:]}")
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        for pidfile in pidfiles.values():
            _kill_hung(pidfile)
    for how, place in (("SIGINT", "dev-a"), ("SIGTERM", "dev-b")):
        text = outs[how].read_text()
        assert procs[how].returncode == 2, text[-3000:]  # interrupted
        assert f"released labgrid place {place}" in text, text[-3000:]
    assert "FarmInterrupt: edgecheck: SIGTERM: stopping; releasing the labgrid places" in outs["SIGTERM"].read_text()
    _no_locks_left(lab)


@pytest.mark.integration  # several whole farm sessions (make test: two places in parallel)
def test_labgrid_stale_lock_after_sigkill_is_freed_by_unlock_and_by_the_next_run(lab, smoke_artifacts, tmp_path):
    """SIGKILL runs no code: the lock stays. `edgecheck farm unlock` frees it (its owner process is gone), and so
    does the next session that wants a place; both say so. That session then fails to reach the board (a wrong
    key): an exception after locking, which unlocks the place again."""
    pidfiles = {p: tmp_path / f"{p}.pids" for p in ("dev-a", "dev-b")}
    procs = {}
    try:
        for place, pidfile in pidfiles.items():
            args = _farm_args(lab, f"cpu@labgrid:{place}")
            args[args.index("--remote-python") + 1] = str(_hanging_python(tmp_path, "model", pidfile))
            # a model file of its own (no test windows): a killed session leaves little behind (its private
            # folder on the board, which nothing can remove after a SIGKILL but a reboot)
            procs[place] = _pytest(*args, "--model", str(_model(smoke_artifacts)), "--results",
                                   str(tmp_path / f"{place}.json"), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 90
        while not all(p.exists() for p in pidfiles.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(p.exists() for p in pidfiles.values())
        for proc in procs.values():  # the session and its process group (its ssh clients), as a CI runner does
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    finally:
        for pidfile in pidfiles.values():
            _kill_hung(pidfile)
    held = _locks(lab)["held"]
    assert set(held) == {"dev-a", "dev-b"}
    assert parse_owner(held["dev-a"])[1] == procs["dev-a"].pid
    listed = run_edgecheck("farm", "places", "--lg-coordinator", lab["address"])
    assert f"dev-a  board=devboard slot=a  held by {held['dev-a']} (gone: edgecheck farm unlock frees it)" in \
        listed.stdout
    unlock = run_edgecheck("farm", "unlock", "dev-a", "--lg-coordinator", lab["address"])
    assert f"freed place dev-a: its lock belonged to edgecheck process {procs['dev-a'].pid} on this host, which is " \
           "gone" in unlock.stderr and "unlocked dev-a" in unlock.stdout
    assert set(_locks(lab)["held"]) == {"dev-b"}
    # the next run frees dev-b; it then meets an exception after locking it (the board refuses its key): a usage
    # error that unlocks the place again
    bad_key = tmp_path / "not-the-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(bad_key)], check=True)
    args = _farm_args(lab, "cpu@labgrid:dev-b")
    args[args.index("--lg-ssh-key") + 1] = str(bad_key)
    proc = _run(*args, "--artifacts", str(smoke_artifacts), "--results", str(tmp_path / "next.json"),
                env={"LG_SSH_CONNECT_TIMEOUT": "2"})
    assert f"freed place dev-b: its lock belonged to edgecheck process {procs['dev-b'].pid}" in proc.stdout
    assert "locked labgrid place dev-b" in proc.stdout
    assert proc.returncode == 4, proc.stdout[-3000:]
    assert "labgrid place dev-b: cannot ssh to" in proc.stdout and "check --lg-ssh-key" in proc.stdout
    assert "released labgrid place dev-b" in proc.stdout
    _no_locks_left(lab)


def _fake_hwmon(root: Path, power_uw: int = 2_500_000) -> Path:
    """/sys/class/hwmon as the kernel lays it out on a board: a thermal sensor, and an INA260 (ina2xx driver)."""
    base = root / "sys" / "class" / "hwmon"
    for n, files in ((0, {"name": "cpu_thermal", "temp1_input": 45000}),
                     (1, {"name": "ina260", "update_interval": 2, "in0_input": 5, "in1_input": 5000,
                          "curr1_input": power_uw // 5000, "power1_input": power_uw, "shunt_resistor": 2000})):
        d = base / f"hwmon{n}"
        d.mkdir(parents=True)
        for f, v in files.items():
            (d / f).write_text(f"{v}\n")
    return base


def test_labgrid_worker_finds_the_boards_sensor_by_name(tmp_path):
    """hwmon:ina260 on the board: the worker looks it up under the board's own /sys/class/hwmon."""
    import importlib.util

    from edgecheck.measure.transport import WORKER

    spec = importlib.util.spec_from_file_location("worker", WORKER)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    _fake_hwmon(tmp_path, power_uw=3_000_000)
    s = worker.Hwmon("ina260", str(tmp_path))
    assert s.path.endswith("hwmon1") and s.read_w() == pytest.approx(3.0) and s.interval == 0.002
    assert worker.Hwmon("auto", str(tmp_path)).path == s.path
    with pytest.raises(RuntimeError, match=r"no hwmon device named 'ina226' under .* \(found: cpu_thermal, ina260\)"):
        worker.Hwmon("ina226", str(tmp_path))


def test_labgrid_board_private_folder_refuses_planted_symlinks(sshd, smoke_artifacts, tmp_path):
    """Another user of a shared board plants a symlink where the worker's files go, to have a file of theirs
    overwritten: the folder is this run's own (mktemp -d, mode 700) and a copy never writes through a file or a
    symlink that is already there (noclobber)."""
    from edgecheck import artifacts as art

    model = art.load(smoke_artifacts).models[0].tflite
    t = SshTransport("127.0.0.1", sshd["user"], sshd["port"], sys.executable, sshd["opts"])
    folder = t._folder()
    assert oct(os.stat(folder).st_mode & 0o777) == "0o700"
    victim = tmp_path / "victim.txt"
    victim.write_text("theirs")
    data = model.read_bytes()
    target = Path(folder) / f"{hashlib.sha256(data).hexdigest()[:16]}-{model.name}"
    os.symlink(victim, target)
    with pytest.raises(EdgecheckError, match="copying .* failed"):
        t.put(model)
    assert victim.read_text() == "theirs"
    os.unlink(target)
    dangling = tmp_path / "created-by-us"
    os.symlink(dangling, target)  # a symlink to a file that does not exist yet: never created through it
    with pytest.raises(EdgecheckError, match="copying .* failed"):
        t.put(model)
    assert not dangling.exists()
    t.close()
    assert not os.path.exists(folder)
    # the worker's old fixed place /tmp/edgecheck-worker is never used: a symlink planted there changes nothing
    t2 = SshTransport("127.0.0.1", sshd["user"], sshd["port"], sys.executable, sshd["opts"])
    assert not t2.worker().startswith("/tmp/edgecheck-worker")
    t2.close()
