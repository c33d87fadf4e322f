"""Shared fixtures for the tests: one real build of the smoke grid per run (shared by pytest-xdist's workers),
one real sshd on 127.0.0.1 per worker (helpers: support.py)."""
from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from support import run_edgecheck, skip_unless_available

# pytest-xdist names its worker in the environment. The pytest sessions the tests start must not inherit it:
# pytest-benchmark switches itself off when it sees it.
XDIST_WORKER = os.environ.pop("PYTEST_XDIST_WORKER", None)
for _name in ("PYTEST_XDIST_TESTRUNUID", "PYTEST_XDIST_WORKER_COUNT"):
    os.environ.pop(_name, None)
# Builds the tests start never read or fill the user's shared build cache (~/.cache/edgecheck): a test that
# needs one names its own folder (--build-cache), as the smoke build below does.
os.environ["EDGECHECK_CACHE"] = "none"


# The pytest sessions the tests start (a user's `pytest benchmarks`) leave out the installed plugins they never
# use: labgrid's (edgecheck drives labgrid through its own client), Hypothesis' and xdist's. Loading them cost
# about 1.5 s of CPU in each of the many sessions the tests start (README, Speed). The farm test that checks
# edgecheck beside labgrid's plugin loads it (test_farm.py).
CHILD_PLUGINS_OFF = "-p no:labgrid -p no:hypothesispytest -p no:xdist"


@pytest.fixture(scope="session", autouse=True)
def _child_sessions_without_unused_plugins():
    """Set at test time (not import time): pytest-xdist's workers are configured by then."""
    before = os.environ.get("PYTEST_ADDOPTS")
    os.environ["PYTEST_ADDOPTS"] = f"{before} {CHILD_PLUGINS_OFF}" if before else CHILD_PLUGINS_OFF
    yield
    if before is None:
        os.environ.pop("PYTEST_ADDOPTS", None)
    else:
        os.environ["PYTEST_ADDOPTS"] = before


@pytest.fixture(autouse=True)
def _pytester_sessions_too(request: pytest.FixtureRequest) -> None:
    """pytester clears PYTEST_ADDOPTS for the sessions it runs: set it again for them."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")
        request.getfixturevalue("monkeypatch").setenv("PYTEST_ADDOPTS", CHILD_PLUGINS_OFF)


@pytest.fixture(scope="session")
def smoke_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke grid built once by the real ``edgecheck build`` command, on a pool of two worker processes,
    into its own shared build cache (``smoke_cache``). Under pytest-xdist (``make test`` runs two workers) the
    first worker builds it in the run's shared temporary folder, under a lock, and the others use it; tests
    copy it before changing anything in it."""
    root = tmp_path_factory.getbasetemp()
    if XDIST_WORKER:
        root = root.parent  # the run's folder, above every worker's own
    out = root / "shared-artifacts" / "smoke"
    with open(root / "shared-artifacts.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "manifest.json").exists():
            run_edgecheck("build", "--grid", "smoke", "--dataset", "collar", "--out", str(out), "--jobs", "2",
                          "--build-cache", str(out.parent / "cache"))
    return out


@pytest.fixture(scope="session")
def smoke_cache(smoke_artifacts: Path) -> Path:
    """The shared build cache the smoke build filled (read it; copy before changing it)."""
    return smoke_artifacts.parent / "cache"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real OpenSSH server on 127.0.0.1 (the boards of the remote and farm tests), with its own host key and
    one authorized key: {"port", "user", "opts" (ssh options that log in), "key" (the private key)}."""
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd_bin).exists() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        skip_unless_available("sshd",
                              "OpenSSH server or client not installed (Debian openssh-server; .ci/run installs it)")
    d = tmp_path_factory.mktemp("sshd")
    for key in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    (d / "authorized_keys").write_text((d / "user.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        f"PidFile {d / 'sshd.pid'}\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nMaxSessions 50\nMaxStartups 100:30:200\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    log = d / "sshd.log"  # a file, not a pipe: nobody reads sshd's per-connection lines while tests run
    with open(log, "wb") as f:
        proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(d / "sshd_config")], stderr=f)
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    opts = ("-i", str(d / "user"), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR")
    for _ in range(50):
        if proc.poll() is not None:
            err = log.read_text(errors="replace")[-300:]
            skip_unless_available("sshd", f"sshd could not start: {err}")
        ok = subprocess.run(["ssh", "-o", "BatchMode=yes", "-p", str(port), *opts, f"{user}@127.0.0.1", "true"],
                            capture_output=True, timeout=20)
        if ok.returncode == 0:
            break
        time.sleep(0.2)
    else:
        proc.terminate()
        skip_unless_available("sshd", f"cannot log in to the test sshd: {ok.stderr.decode(errors='replace')[-300:]}")
    yield {"port": port, "user": user, "opts": opts, "key": str(d / "user")}
    proc.terminate()
    proc.wait(timeout=10)
