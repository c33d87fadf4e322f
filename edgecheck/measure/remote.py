"""Driving the measurement worker in a child process: here, or on a board over ssh.

``--device tpu@ssh://user@board`` copies ``worker.py`` and the models to the
board once, runs the rounds there (timed on the board) and gets the per-round
samples back as JSON lines. The board needs only Python 3.7+, numpy and its
Coral runtime. A worker that dies (a lost connection, a delegate that aborts)
fails the model it was measuring with a clear message; a new worker measures
the rest, so no other result is lost.
"""
from __future__ import annotations

import hashlib
import json
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from edgecheck.config import DEFAULTS
from edgecheck.errors import EdgecheckError

if TYPE_CHECKING:
    from edgecheck.results import Entry

WORKER = Path(__file__).with_name("worker.py")


@dataclass(frozen=True)
class Target:
    device: str  # "tpu", "a53" or "cpu": the role on the remote host
    host: str | None = None  # user@host for ssh; None runs the worker locally
    port: int | None = None
    python: str = "python3"
    ssh_options: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"ssh://{self.host}" + (f":{self.port}" if self.port else "") if self.host else "local worker"


def parse_target(spec: str, python: str = "python3", ssh_options: tuple[str, ...] = ()) -> Target:
    """``tpu@ssh://user@host[:port]`` (also a53@ and cpu@)."""
    dev, sep, url = spec.partition("@")
    if not sep or dev not in ("tpu", "a53", "cpu"):
        raise EdgecheckError(f"--device {spec!r}: remote devices look like tpu@ssh://user@host, a53@ssh://... or cpu@ssh://...")
    u = urlparse(url)
    if u.scheme != "ssh" or not u.hostname:
        raise EdgecheckError(f"--device {spec!r}: only ssh:// is supported, e.g. tpu@ssh://mendel@coral.local")
    host = f"{u.username}@{u.hostname}" if u.username else u.hostname
    return Target(dev, host, u.port, python, tuple(ssh_options))


@dataclass
class WorkerClient:
    target: Target
    rounds: int = DEFAULTS.rounds
    warmup_rounds: int = DEFAULTS.warmup_rounds
    round_seconds: float = DEFAULTS.round_seconds
    threads: int = 1
    tpu_device: str | None = None
    timeout_s: float = DEFAULTS.worker_timeout_seconds
    _remote_dir: str | None = field(default=None, repr=False)
    _copied: dict = field(default_factory=dict, repr=False)

    # -- transport ---------------------------------------------------------
    def _ssh(self) -> list[str]:
        cmd = ["ssh", "-o", "BatchMode=yes", *self.target.ssh_options]
        if self.target.port:
            cmd += ["-p", str(self.target.port)]
        return cmd + [self.target.host]

    def _run_remote(self, command: str, data: bytes = b"", timeout: float | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self._ssh() + [command], input=data, capture_output=True,
                              timeout=timeout or self.timeout_s)

    def _put(self, local: Path) -> str:
        """Copy a file to the board once (content-addressed by its sha256); returns its remote path."""
        if self.target.host is None:
            return str(local)
        data = local.read_bytes()
        digest = hashlib.sha256(data).hexdigest()[:16]
        if digest in self._copied:
            return self._copied[digest]
        if self._remote_dir is None:
            r = self._run_remote("mkdir -p /tmp/edgecheck-worker && echo /tmp/edgecheck-worker",
                                 timeout=DEFAULTS.ssh_connect_timeout_seconds)
            if r.returncode != 0:
                raise EdgecheckError(f"{self.target.where}: ssh failed: {r.stderr.decode(errors='replace').strip()}")
            self._remote_dir = r.stdout.decode().strip()
        path = f"{self._remote_dir}/{digest}-{local.name}"
        r = self._run_remote(f"cat > {shlex.quote(path)}", data, timeout=300)
        if r.returncode != 0:
            raise EdgecheckError(f"{self.target.where}: copying {local.name} failed: "
                                 f"{r.stderr.decode(errors='replace').strip()}")
        self._copied[digest] = path
        return path

    def _spawn(self, job: dict, worker_path: str) -> subprocess.Popen:
        if self.target.host is None:
            cmd = [sys.executable, worker_path]
        else:
            cmd = self._ssh() + [f"{shlex.quote(self.target.python)} {shlex.quote(worker_path)}"]
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    # -- measuring ---------------------------------------------------------
    def measure_many(self, models: list[tuple[str, Path]]) -> dict[str, dict]:
        """Measure (name, file) pairs; returns name -> the worker's line, or {"ok": False, "error": ...}."""
        worker_path = self._put(WORKER)
        remote = [(name, self._put(Path(path))) for name, path in models]
        results: dict[str, dict] = {}
        todo = list(remote)
        while todo:
            job = {"device": self.target.device, "threads": self.threads, "tpu_device": self.tpu_device,
                   "rounds": self.rounds, "warmup_rounds": self.warmup_rounds, "round_seconds": self.round_seconds,
                   "models": [{"name": n, "path": p} for n, p in todo]}
            proc = self._spawn(job, worker_path)
            try:
                out, err = proc.communicate(input=json.dumps(job).encode(), timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                err += f"\n(the worker did not finish within {self.timeout_s:.0f} s)".encode()
            for line in out.decode(errors="replace").splitlines():
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if "fatal" in msg:
                    raise EdgecheckError(f"{self.target.device} at {self.target.where}: {msg['fatal']}")
                results[msg["name"]] = msg
            todo = [(n, p) for n, p in todo if n not in results]
            if todo:  # the worker died while measuring todo[0]: fail that model, measure the rest anew
                name = todo.pop(0)[0]
                results[name] = {"name": name, "ok": False, "error": _death(proc.returncode, err, self.target)}
        return results


def _death(code: int | None, stderr: bytes, target: Target) -> str:
    lines = [x for x in stderr.decode(errors="replace").strip().splitlines() if x and not x.startswith("INFO:")]
    tail = " | ".join(lines[-3:])
    if code is not None and code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    elif target.host is not None and code == 255:
        how = "the ssh connection failed or was lost"
    else:
        how = f"exited with status {code}"
    return f"the measurement worker at {target.where} {how} while measuring this model" + (f" ({tail})" if tail else "")


def measure_remote(device, model, ctx) -> Entry:
    """Timed by the worker on the remote host; its per-round samples are the raw samples."""
    from edgecheck.results import Energy, Latency

    t = ctx.timing
    client = ctx.clients.setdefault(device.key, WorkerClient(
        device.target, rounds=t.rounds, warmup_rounds=t.warmup_rounds, round_seconds=t.round_seconds,
        threads=device.threads))
    line = client.measure_many([(model.name, device.model_file(model))])[model.name]
    if not line.get("ok"):
        raise EdgecheckError(f"{model.name} on {device.key}: {line['error']}")
    entry = device.new_entry(
        model, load_seconds=line["load_seconds"], first_invoke_seconds=line["first_invoke_seconds"],
        input="zeros (the worker has no test data)",
        latency=Latency.from_samples(line["samples"], statistic="seconds per invoke, one sample per round",
                                     iterations_per_round=line["iterations"], warmup_rounds=t.warmup_rounds,
                                     timer=f"time.perf_counter on {device.remote} (edgecheck worker)"),
        worker={"host": line.get("host"), "interpreter": line.get("interpreter")})
    if ctx.energy is not None:
        entry.energy = Energy(total_j=None, dynamic_j=None,
                              provenance="none: energy probes read this host's sensors, not a remote board's")
    return entry
