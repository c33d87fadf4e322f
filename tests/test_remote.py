"""The measurement worker: under Python 3.7 with tflite-runtime, killed mid-run, and over a real ssh."""
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import INFERENCE, load, run_pytest

from edgecheck import artifacts as art
from edgecheck.errors import EdgecheckError
from edgecheck.measure.remote import WORKER, Target, WorkerClient, parse_target


def smoke_models(root):
    return [(m.name, m.tflite) for m in art.load(root).models]


def test_a_worker_that_aborts_loses_no_other_result(smoke_artifacts, monkeypatch):
    monkeypatch.setenv("EDGECHECK_WORKER_ABORT_AFTER", "1")  # the worker calls os.abort() at its second model
    results = WorkerClient(Target("cpu"), rounds=5).measure_many(smoke_models(smoke_artifacts))
    names = [n for n, _ in smoke_models(smoke_artifacts)]
    assert results[names[0]]["ok"] and results[names[2]]["ok"] and len(results[names[2]]["samples"]) == 5
    assert not results[names[1]]["ok"] and "killed by SIGABRT while measuring this model" in results[names[1]]["error"]


def test_target_parsing():
    t = parse_target("tpu@ssh://mendel@coral.local:2222")
    assert (t.device, t.host, t.port, t.where) == ("tpu", "mendel@coral.local", 2222, "ssh://mendel@coral.local:2222")
    for bad in ("gpu@ssh://x", "tpu@http://x", "tpu@ssh://"):
        with pytest.raises(EdgecheckError, match="--device"):
            parse_target(bad)


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
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "tflite-runtime==2.11.0", "numpy<1.22"],
                         capture_output=True, text=True, timeout=600)
    if pip.returncode != 0:
        pytest.skip(f"cannot install tflite-runtime 2.11 for Python 3.7: {pip.stderr.strip()[-300:]}")
    return venv / "bin" / "python"


def test_worker_runs_under_python37_and_tflite_runtime(py37_with_tflite_runtime, smoke_artifacts):
    name, path = smoke_models(smoke_artifacts)[0]
    job = {"device": "cpu", "rounds": 4, "models": [{"name": name, "path": str(path)}]}
    proc = subprocess.run([str(py37_with_tflite_runtime), str(WORKER)], input=json.dumps(job), capture_output=True,
                          text=True, timeout=120)
    line = json.loads(proc.stdout.splitlines()[-1])
    assert line["ok"] and line["interpreter"] == "tflite_runtime.interpreter"
    assert line["host"]["python"].startswith("3.7")
    assert len(line["samples"]) == 4 and all(s > 0 for s in line["samples"])
    job["device"] = "a53"
    proc = subprocess.run([str(py37_with_tflite_runtime), str(WORKER)], input=json.dumps(job), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 3 and "not an Arm Cortex-A53" in proc.stdout


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real OpenSSH server on 127.0.0.1, with its own host key and one authorized key."""
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd_bin).exists() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server or client not installed (Debian openssh-server; .ci/run installs it)")
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
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE)
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    opts = ("-i", str(d / "user"), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR")
    for _ in range(50):
        if proc.poll() is not None:
            pytest.skip(f"sshd could not start: {proc.stderr.read().decode(errors='replace')[-300:]}")
        ok = subprocess.run(["ssh", "-o", "BatchMode=yes", "-p", str(port), *opts, f"{user}@127.0.0.1", "true"],
                            capture_output=True, timeout=20)
        if ok.returncode == 0:
            break
        time.sleep(0.2)
    else:
        proc.terminate()
        pytest.skip(f"cannot log in to the test sshd: {ok.stderr.decode(errors='replace')[-300:]}")
    yield {"port": port, "user": user, "opts": opts}
    proc.terminate()
    proc.wait(timeout=10)


def test_measure_over_ssh(sshd, smoke_artifacts, tmp_path):
    """pytest on this host measures the 'board' over ssh; the samples are timed there and recorded here."""
    results = tmp_path / "r.json"
    spec = f"cpu@ssh://{sshd['user']}@127.0.0.1:{sshd['port']}"
    ssh_args = [f"--ssh-option={o}" for o in sshd["opts"]]
    proc = run_pytest(INFERENCE, "--artifacts", str(smoke_artifacts), "--device", spec, "--results", str(results),
                      "--remote-python", sys.executable, "--rounds", "4", *ssh_args)
    assert proc.returncode == 0, proc.stdout[-3000:]
    entries = load(results)["entries"]
    assert len(entries) == 3
    for e in entries:
        assert e["status"] == "ok" and e["kind"] == "measured"
        assert e["provenance"].startswith(f"measured on cpu at ssh://{sshd['user']}@127.0.0.1:{sshd['port']}")
        assert len(e["latency"]["samples"]) == 4 and "edgecheck worker" in e["latency"]["timer"]


def test_lost_connection_fails_clearly(smoke_artifacts):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = WorkerClient(Target("cpu", "nobody@127.0.0.1", port, ssh_options=("-o", "ConnectTimeout=5")), rounds=3)
    with pytest.raises(EdgecheckError, match="ssh failed"):
        client.measure_many(smoke_models(smoke_artifacts)[:1])
