"""Devices on another host: ``--device tpu@ssh://user@board`` (also a53@ and cpu@).

pytest runs here; the edgecheck worker (``worker.py``, Python 3.7+, numpy and the
board's interpreter package) runs on the board in a private folder of its own
(``transport.SshTransport``), times every model there in fresh processes, and
sends the samples back as JSON lines. A lost connection or a crashed worker
fails the models it had not finished, with a clear message, and keeps every
other result.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from edgecheck.config import DEFAULTS
from edgecheck.errors import EdgecheckError
from edgecheck.measure.transport import SshTransport, check_host

if TYPE_CHECKING:
    from edgecheck.results import Entry


@dataclass(frozen=True)
class Target:
    device: str  # "tpu", "a53" or "cpu": the role on the remote host
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


def parse_target(spec: str, python: str = "python3", ssh_options: tuple[str, ...] = ()) -> Target:
    """``tpu@ssh://user@host[:port]`` (also a53@ and cpu@)."""
    dev, sep, url = spec.partition("@")
    if not sep or dev not in ("tpu", "a53", "cpu"):
        raise EdgecheckError(f"--device {spec!r}: remote devices look like tpu@ssh://user@host, a53@ssh://... "
                             "or cpu@ssh://...")
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


def measure_remote(device, model, ctx) -> Entry:
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
            entry.energy = model_energy(device, entry.latency)
        else:
            entry.energy = Energy(total_j=None, dynamic_j=None,
                                  provenance=f"none: --energy-probe {opts.spec} reads this host's sensors, not a "
                                             "remote board's (use a sensor on the board: hwmon:NAME)")
    return entry
