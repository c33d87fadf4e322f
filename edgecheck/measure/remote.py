"""Devices on another host: ``--device KIND@ssh://user@board`` for every kind the worker can measure.

pytest runs here; the edgecheck worker (``worker.py``, Python 3.7+, numpy and the
board's interpreter package) runs on the board in a private folder of its own
(``transport.SshTransport``), times every model there in fresh processes, and
sends the samples back as JSON lines. A lost connection or a crashed worker
fails the models it had not finished, with a clear message, and keeps every
other result.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from edgecheck.artifacts import ModelEntry
from edgecheck.config import DEFAULTS
from edgecheck.errors import EdgecheckError
from edgecheck.measure.device import Device
from edgecheck.measure.transport import SshTransport, check_host
from edgecheck.results import Entry


@dataclass(frozen=True)
class Target:
    device: str  # the kind measured on the remote host
    host: str
    user: str | None = None
    port: int | None = None
    python: str = "python3"
    ssh_options: tuple[str, ...] = ()
    connect_timeout_s: float = DEFAULTS.ssh_connect_timeout_seconds

    @property
    def where(self) -> str:
        login = f"{self.user}@{self.host}" if self.user else self.host
        return f"ssh://{login}" + (f":{self.port}" if self.port else "")

    def transport(self) -> SshTransport:
        return SshTransport(self.host, self.user, self.port, self.python, self.ssh_options, self.connect_timeout_s)


def parse_target(spec: str, python: str = "python3", ssh_options: tuple[str, ...] = (),
                 kinds: tuple[str, ...] | None = None) -> Target:
    """``KIND@ssh://user@host[:port]``; ``kinds``: the kinds the worker can measure (the registry's)."""
    dev, sep, url = spec.partition("@")
    if not sep or (kinds is not None and dev not in kinds):
        raise EdgecheckError(f"--device {spec!r}: remote devices look like KIND@ssh://user@host, KIND one of "
                             f"{', '.join(kinds or ())}")
    u = urlparse(url)
    if u.scheme != "ssh" or not u.hostname:
        raise EdgecheckError(f"--device {spec!r}: only ssh:// is supported, e.g. tpu@ssh://mendel@coral.local")
    try:
        port = u.port
    except ValueError:
        raise EdgecheckError(f"--device {spec!r}: the port must be a number from 1 to 65535") from None
    if port is not None and not 1 <= port <= 65535:
        raise EdgecheckError(f"--device {spec!r}: the port must be a number from 1 to 65535")
    check_host(u.hostname, u.username, f"--device {spec!r}")
    return Target(dev, u.hostname, u.username, port, python, tuple(ssh_options))


@dataclass
class RemoteDevice(Device):
    """A device on another host (a Coral board), timed there by the edgecheck worker over ssh: a plain
    ``@ssh://`` host, or a labgrid place this session has locked (``measure.farm``)."""

    @property
    def target(self):
        return self.metadata["_target"]

    @property
    def remote(self) -> str | None:
        return self.metadata.get("remote")

    @property
    def board(self) -> str:
        """The board: devices of one board measure one after another, boards in parallel."""
        return self.remote

    @property
    def key(self) -> str:
        return f"{self.name}@{self.remote}:threads={self.threads}"

    @property
    def provenance(self) -> str:
        board = self.metadata.get("board") or {}
        via = f" via {board['ssh']}" if board.get("ssh") else ""
        return (f"measured on {self.name} at {self.remote}{via} (edgecheck worker, timed on that host, "
                f"{self.threads} thread(s))")

    @property
    def label(self) -> str:
        return f"{self.name}@{self.remote.replace('ssh://', '')}"

    @property
    def recover(self):
        """Power-cycles a farm board and reconnects (``Lease.recover``); None for a plain ssh host."""
        return getattr(self.target, "recover", None)

    def transport(self):
        return self.target.transport()

    def measure(self, model: ModelEntry, ctx) -> Entry:
        return measure_remote(self, model, ctx)


def measure_remote(device: RemoteDevice, model: ModelEntry, ctx) -> Entry:
    """Timed by the worker on the remote host in fresh processes; its per-round samples are the raw samples.
    Energy comes from a power sensor on the board itself (``--energy-probe hwmon:...``, opened there by the
    worker), or as the twins' estimate (``model``); a probe of this host cannot see a remote board."""
    from edgecheck.measure import sweep
    from edgecheck.measure.energy import board_energy, model_energy
    from edgecheck.results import Energy

    entry = sweep.entry(device, model, ctx)
    opts = ctx.energy
    if opts is not None:
        if opts.on_board:
            result = ctx.sweep(device, model)
            ms = result.of(model.name)
            entry.energy = board_energy(ms.energy, result.idle, device.remote, ms.errors)
        elif opts.probe == "model":
            entry.energy = model_energy(device, entry.latency, opts.constants)
        else:
            entry.energy = Energy(total_j=None, dynamic_j=None,
                                  provenance=f"none: --energy-probe {opts.spec} reads this host's sensors, not a "
                                             "remote board's (use a sensor on the board: hwmon:NAME)")
    return entry
