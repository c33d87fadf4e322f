"""How the measuring worker reaches a device: a child process here, or ssh to a board.

The same worker script (``worker.py``) runs either way, with the same JSON job on
stdin and JSON lines on stdout. Over ssh, each run makes its own private folder
on the board (``mktemp -d``, mode 700), copies the worker and the models there,
checks what arrived by sha256 before running anything, and removes the folder
when the session ends: another user of a shared board can neither read, plant
nor swap files in it. The ssh argv puts ``--`` before the host, and host and
user names are checked, so a name can never be read as an ssh option.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from edgecheck.config import DEFAULTS
from edgecheck.errors import EdgecheckError

WORKER = Path(__file__).with_name("worker.py")
SSH_MARGIN_S = 5.0  # our own bound on an ssh command beyond its ConnectTimeout or transfer time
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]+\]?$")
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def check_host(host: str, user: str | None, where: str) -> None:
    """A host name (or IP address) and user name ssh cannot mistake for an option."""
    if not host or host.startswith("-") or not _HOST.match(host):
        raise EdgecheckError(f"{where}: {host!r} is not a host name or IP address")
    if user is not None and (user.startswith("-") or not _USER.match(user)):
        raise EdgecheckError(f"{where}: {user!r} is not a user name")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class LocalTransport:
    """The worker as a child process of this one, on this machine."""

    where: str = "local worker"

    def put(self, local: Path) -> str:
        return str(local)

    def spawn(self, worker: str) -> subprocess.Popen:
        # a session of its own: a stop kills the worker's forked children too, which hold its pipes open
        return subprocess.Popen([sys.executable, worker], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)

    def worker(self) -> str:
        return str(WORKER)

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


def stop(proc: subprocess.Popen) -> None:
    """Kill a worker and everything in its process group (a local worker's forked children), then reap it."""
    if proc.poll() is None:
        try:
            if os.getpgid(proc.pid) == proc.pid:  # a local worker leads its own group; ssh does not
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:  # already gone
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process SIGKILL cannot stop (D state)
        pass


@dataclass
class SshTransport:
    """The worker on a board over ssh, in a private folder of this run's own."""

    host: str  # host name or address
    user: str | None = None
    port: int | None = None
    python: str = "python3"
    ssh_options: tuple[str, ...] = ()
    connect_timeout_s: float = DEFAULTS.ssh_connect_timeout_seconds
    _dir: str | None = field(default=None, repr=False)
    _copied: dict = field(default_factory=dict, repr=False)
    _live: set = field(default_factory=set, repr=False)  # ssh processes running now (abort() kills them)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        check_host(self.host, self.user, "--device")

    @property
    def where(self) -> str:
        login = f"{self.user}@{self.host}" if self.user else self.host
        return f"ssh://{login}" + (f":{self.port}" if self.port else "")

    def ssh(self) -> list[str]:
        # ConnectTimeout bounds the TCP connect and ssh's banner exchange (0 would mean none: at least 1 s)
        cmd = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, math.ceil(self.connect_timeout_s))}",
               *self.ssh_options]
        if self.port:
            cmd += ["-p", str(self.port)]
        if self.user:
            cmd += ["-l", self.user]
        return cmd + ["--", self.host]

    def run(self, command: str, data: bytes = b"", timeout: float | None = None) -> subprocess.CompletedProcess:
        """``command`` on the board; ssh's own ConnectTimeout first, then ours (a connection that opens and then
        hangs): never a wait without a bound."""
        limit = (timeout or self.connect_timeout_s) + SSH_MARGIN_S
        proc = self._popen(self.ssh() + [command])
        try:
            out, err = proc.communicate(data, timeout=limit)
        except subprocess.TimeoutExpired:
            stop(proc)
            raise EdgecheckError(f"{self.where}: ssh did not answer within {limit:.0f} s "
                                 f"(running {command.split()[0]!r}); check the host, port and network") from None
        finally:
            with self._lock:
                self._live.discard(proc)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def _popen(self, argv: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with self._lock:
            self._live = {p for p in self._live if p.poll() is None} | {proc}
        return proc

    def abort(self) -> None:
        """Kill this transport's running ssh processes (another thread is stopping the session), and reap them:
        Popen.wait is safe beside the owning thread's own wait, and leaves no zombie if that thread is gone."""
        with self._lock:
            live = list(self._live)
        for proc in live:
            stop(proc)

    def _folder(self) -> str:
        if self._dir is None:
            r = self.run("umask 077 && mktemp -d /tmp/edgecheck-XXXXXXXX")
            if r.returncode != 0:
                raise EdgecheckError(f"{self.where}: ssh failed: {r.stderr.decode(errors='replace').strip()}")
            path = r.stdout.decode().strip()
            if not re.fullmatch(r"/tmp/edgecheck-[A-Za-z0-9]{8}", path):
                raise EdgecheckError(f"{self.where}: mktemp returned {path!r}, not a private folder")
            self._dir = path
        return self._dir

    def put(self, local: Path) -> str:
        """Copy a file into the private folder once (content-addressed), then check it arrived unchanged."""
        data = Path(local).read_bytes()
        digest = _sha256(data)
        if digest in self._copied:
            return self._copied[digest]
        path = f"{self._folder()}/{digest[:16]}-{Path(local).name}"
        q = shlex.quote(path)
        # noclobber: never write through a file (or symlink) that is already there
        r = self.run(f"set -o noclobber && cat > {q} && chmod 600 {q}", data, timeout=300)
        if r.returncode != 0:
            raise EdgecheckError(f"{self.where}: copying {Path(local).name} failed: "
                                 f"{r.stderr.decode(errors='replace').strip()}")
        self._copied[digest] = path
        return path

    def _verify(self, paths: dict[str, str]) -> None:
        """Every copied file still holds what was sent (sha256 on the board), right before the worker runs."""
        if not paths:
            return
        quoted = " ".join(shlex.quote(p) for p in paths.values())
        r = self.run(f"test ! -L {shlex.quote(self._folder())} && sha256sum -- {quoted}")
        got = {}
        for line in r.stdout.decode(errors="replace").splitlines():
            digest, _, path = line.partition(" ")
            got[path.strip().lstrip("*")] = digest
        for digest, path in paths.items():
            if r.returncode != 0 or got.get(path) != digest:
                raise EdgecheckError(f"{self.where}: {path} does not hold what was copied (sha256 "
                                     f"{(got.get(path) or 'missing')[:16]}, expected {digest[:16]}); refusing to run "
                                     "it")

    def worker(self) -> str:
        return self.put(WORKER)

    def spawn(self, worker: str) -> subprocess.Popen:
        self._verify(self._copied)
        return self._popen(self.ssh() + [f"{shlex.quote(self.python)} {shlex.quote(worker)}"])

    def forget(self) -> None:
        """Drop what this run copied without reaching the board (it is being power-cycled): the next job makes
        a new private folder and copies everything again."""
        self._dir = None
        self._copied = {}

    def close(self) -> None:
        """Remove this run's folder from the board (best effort: the run's results are already kept)."""
        if self._dir is not None:
            try:
                self.run(f"rm -rf -- {shlex.quote(self._dir)}", timeout=30)
            except EdgecheckError:
                pass
            self._dir = None
            self._copied = {}
