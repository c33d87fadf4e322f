"""Shared fixtures for the tests: one real build of the smoke grid per session, one real sshd on 127.0.0.1
(helpers: support.py)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from support import run_edgecheck, skip_unless_available


@pytest.fixture(scope="session")
def smoke_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke grid built once by the real ``edgecheck build`` command."""
    out = tmp_path_factory.mktemp("artifacts") / "smoke"
    run_edgecheck("build", "--grid", "smoke", "--dataset", "collar", "--out", str(out))
    return out


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
