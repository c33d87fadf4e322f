"""Boards from a labgrid farm: ``--device tpu@labgrid:PLACE`` (also a53@ and cpu@), or
``tpu@labgrid:board=devboard`` for any free place with those tags.

edgecheck writes no coordinator of its own: labgrid's coordinator reserves and
locks boards across clients, and edgecheck is one more client, through
labgrid's Python API (one ``ClientSession`` per process, as labgrid allows).
For each device it reserves a place and waits for it (``labgrid-client reserve
--wait``), locks it, and reaches the board through the place's NetworkService
with labgrid's SSHDriver. The edgecheck worker then runs on the board exactly as
over ``@ssh://``, through the driver's own ssh connection, in a private folder
(``transport.SshTransport``).

Locks are released on every exit that can run code: the end of the session,
an exception, SIGINT, and SIGTERM or SIGHUP (turned into an interrupt while a
place is held). Each lock's owner name carries this process's pid, start time
and pid namespace (``<user>.ec<pid>.<start>.<pidns>``), recorded by the
coordinator with the lock itself; after a SIGKILL the next run, or
``edgecheck farm unlock``, frees a lock whose owner on this host is gone, and
says so. Owners on other hosts are never judged from here.

A worker that stops answering is power-cycled through the place's power driver
(``--lg-power-cycle``: labgrid's ExternalPowerDriver) and its model retried
once (``sweep.run``). Two labgrid 26 habits are handled: a cancelled
reservation frees its place for waiters only on the coordinator's next
scheduling pass (up to 15 s), so every cancel is followed by a reservation that
matches nothing (a pass now); and a released place stays allocated to its
reservation unless that is cancelled too.
"""
from __future__ import annotations

import atexit
import contextlib
import getpass
import os
import re
import shlex
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgecheck.config import DEFAULTS
from edgecheck.errors import EdgecheckError
from edgecheck.measure.transport import SshTransport, check_host

FARM_MISSING = ("labgrid is not installed here: pip install 'edgecheck[farm]' (labgrid 26) on the host that drives "
                "the boards; a board itself needs only the worker's Python 3.7, numpy and its interpreter")
DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid's own default (LG_COORDINATOR overrides it)
_PLACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_TAG_KEY = re.compile(r"^[a-z][a-z0-9_]+$")  # labgrid's rule for tag names
_TAG_VALUE = re.compile(r"^[A-Za-z0-9_.:\-]+$")  # safe in a power command, and in a shell
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
NUDGE_FILTER = {"edgecheck_nudge": "never_matches"}


# ---------------------------------------------------------------------------
# --device tpu@labgrid:PLACE | tpu@labgrid:TAG=VALUE[,TAG=VALUE]
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FarmSpec:
    """A farm device as given: the role on the board, and a place name or the tags a place must have."""

    device: str
    place: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def selector(self) -> str:
        return self.place or ",".join(f"{k}={v}" for k, v in self.tags)

    @property
    def filters(self) -> dict[str, str]:
        """labgrid's reservation filter: ``name`` is the place's implicit tag."""
        return {"name": self.place} if self.place else dict(self.tags)

    @property
    def wanted(self) -> str:
        return f"place {self.place}" if self.place else "a place tagged " + " ".join(f"{k}={v}" for k, v in self.tags)


def is_farm_spec(text: str) -> bool:
    return "@labgrid:" in text


def parse_farm_spec(text: str, kinds: tuple[str, ...] | None = None) -> FarmSpec:
    """``KIND@labgrid:PLACE`` or ``KIND@labgrid:board=devboard[,slot=a]``; ``kinds``: the kinds a board can
    measure (the registry's; None checks the form only)."""
    usage = ("farm devices look like KIND@labgrid:PLACE or KIND@labgrid:board=devboard"
             + (f", KIND one of {', '.join(kinds)}" if kinds else ""))
    dev, _, rest = text.partition("@")
    if not dev or (kinds is not None and dev not in kinds) or not rest.startswith("labgrid:") \
            or not rest[len("labgrid:"):]:
        raise EdgecheckError(f"--device {text!r}: {usage}")
    sel = rest[len("labgrid:"):]
    if "=" not in sel:
        if not _PLACE.match(sel):
            raise EdgecheckError(f"--device {text!r}: {sel!r} is not a place name (letters, digits, '.', '_', '-')")
        return FarmSpec(dev, place=sel)
    tags = []
    for part in sel.split(","):
        key, eq, value = part.partition("=")
        if not eq or not _TAG_KEY.match(key) or not _TAG_VALUE.match(value):
            raise EdgecheckError(f"--device {text!r}: {part!r} is not a tag filter: TAG=VALUE, TAG as labgrid's tags "
                                 "(a-z, 0-9, _), VALUE of letters, digits, '.', '_', ':', '-'")
        tags.append((key, value))
    return FarmSpec(dev, tags=tuple(tags))


def check_coordinator(address: str) -> str:
    """``HOST[:PORT]`` as labgrid takes it (``--lg-coordinator``, ``LG_COORDINATOR``)."""
    m = _ADDRESS.match(address or "")
    if not m or address.startswith("-"):
        raise EdgecheckError(f"--lg-coordinator: {address!r} is not HOST[:PORT] (e.g. 127.0.0.1:20408)")
    port = m.group(1) or m.group(2)
    if port and not 1 <= int(port[1:]) <= 65535:
        raise EdgecheckError(f"--lg-coordinator: the port of {address!r} must be 1 to 65535")
    return address


def coordinator_address(option: str | None) -> str:
    """The coordinator to use: the option, else LG_COORDINATOR, else labgrid's default."""
    return check_coordinator(option or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR)


def power_command(template: str, place: str, tags: dict[str, str]) -> str:
    """``--lg-power-cycle`` for one place: ``{place}`` and ``{TAG}`` (the place's tags) filled in. Tag values
    come from the coordinator, which has no authentication: only plain values are put into a command."""
    values = {"place": place, **tags}
    for key, value in values.items():
        if not _TAG_VALUE.match(str(value)):
            raise EdgecheckError(f"--lg-power-cycle: place {place}: {key}={value!r} is not a plain value (letters, "
                                 "digits, '.', '_', ':', '-'); refusing to put it into a command")
    try:
        return template.format_map(values)
    except KeyError as e:
        raise EdgecheckError(f"--lg-power-cycle: place {place} has no tag {e.args[0]!r} "
                             f"(its tags: {', '.join(sorted(tags)) or 'none'})") from None
    except (ValueError, IndexError) as e:
        raise EdgecheckError(f"--lg-power-cycle {template!r}: {e}") from None


# ---------------------------------------------------------------------------
# Owners: who holds a lock, and whether that process still exists
# ---------------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: when the process started (guards against a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # after the command name, which may hold spaces


def _pid_namespace() -> str:
    """The inode of this pid namespace: containers sharing a host name never judge each other's pids."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def owner_identity(pid: int | None = None) -> str:
    """The labgrid user name of this process: ``<user>.ec<pid>.<start time>.<pid namespace>``."""
    pid = pid or os.getpid()
    user = re.sub(r"[^A-Za-z0-9_\-]", "_", getpass.getuser())
    return f"{user}.ec{pid}.{_start_time(pid)}.{_pid_namespace()}"


def parse_owner(acquired: str | None) -> tuple[str, int, str, str] | None:
    """``host/user.ec<pid>.<start>.<ns>`` -> (host, pid, start, ns); None for an owner edgecheck did not name."""
    if not acquired or "/" not in acquired:
        return None
    host, user = acquired.split("/", 1)
    m = re.fullmatch(r".*\.ec(\d+)\.(\d+)\.(\d+)", user)
    return (host, int(m.group(1)), m.group(2), m.group(3)) if m else None


def owner_alive(acquired: str | None, host: str) -> bool | None:
    """Whether an edgecheck owner on this host (and pid namespace) still runs; None where it cannot be told."""
    parsed = parse_owner(acquired)
    if parsed is None or parsed[0] != host or parsed[3] != _pid_namespace():
        return None
    return _start_time(parsed[1]) == parsed[2]


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------


class FarmInterrupt(KeyboardInterrupt):
    """SIGTERM or SIGHUP while a place is held: unwinds like Ctrl-C, so the lock is released."""


@dataclass
class FarmOptions:
    """How this session uses the farm (the pytest options ``--lg-*``)."""

    coordinator: str = DEFAULT_COORDINATOR
    ssh_key: str | None = None  # the key for the boards' NetworkService (default: ssh-agent, ~/.ssh/id_*)
    ssh_options: tuple[str, ...] = ()  # more ssh arguments for the worker's connection (--ssh-option)
    python: str = "python3"  # the board's Python (--remote-python)
    power_cycle: str | None = None  # a command with {place} and {TAG}; labgrid's ExternalPowerDriver runs it
    wait_s: float = DEFAULTS.lg_wait_seconds
    connect_s: float | None = None  # None: labgrid's own (LG_SSH_CONNECT_TIMEOUT, else 30 s)
    boot_s: float = DEFAULTS.lg_boot_seconds
    power_s: float = DEFAULTS.lg_power_seconds
    rpc_s: float = DEFAULTS.lg_rpc_seconds


class FarmClient:
    """This process's labgrid client session, and the places it holds.

    labgrid allows one ``ClientSession`` per process, bound to this thread's event loop; every call here
    runs on the thread that made the client. Every call to the coordinator is bounded (``rpc_s``)."""

    _open = 0

    def __init__(self, options: FarmOptions, say: Callable[[str], None] = print):
        try:
            from labgrid.remote import client as lgc
            from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2
            from labgrid.util.proxy import proxymanager
        except ImportError:
            raise EdgecheckError(FARM_MISSING) from None
        import asyncio

        if FarmClient._open:
            raise EdgecheckError("one labgrid client per process: close the other FarmClient first")
        if options.connect_s is None:
            from labgrid.util.ssh import get_ssh_connect_timeout

            options.connect_s = float(get_ssh_connect_timeout())
        self.options, self.say, self.pb2 = options, say, pb2
        self.leases: dict[str, Lease] = {}  # place -> its lease
        self._by_selector: dict[str, str] = {}  # what a device asked for -> the place it got
        self._signals: dict[int, object] = {}
        self._closed = False
        self._env = os.environ.get("LG_USERNAME")
        os.environ["LG_USERNAME"] = owner_identity()  # labgrid reads it on every call: set before the session
        self.loop = lgc.ensure_event_loop()
        asyncio.set_event_loop(self.loop)
        address = proxymanager.get_grpc_address(options.coordinator, default_port=20408)
        self.session = lgc.ClientSession(address, self.loop)
        FarmClient._open += 1
        try:
            self._await(self.session.start(), "connecting")
        except (EdgecheckError, lgc.ServerError) as e:
            self.close()
            raise EdgecheckError(f"--lg-coordinator {options.coordinator}: cannot reach the labgrid coordinator "
                                 f"({e})") from None
        self.host = self.session.gethostname()
        self.me = f"{self.host}/{self.session.getuser()}"
        atexit.register(self.close)

    # -- the coordinator, every call bounded ---------------------------------
    def _await(self, coro, what: str):
        import asyncio

        import grpc

        try:
            return self.loop.run_until_complete(asyncio.wait_for(coro, self.options.rpc_s))
        except asyncio.TimeoutError:
            raise EdgecheckError(f"labgrid coordinator {self.options.coordinator}: no answer within "
                                 f"{self.options.rpc_s:g} s ({what})") from None
        except grpc.aio.AioRpcError as e:
            raise EdgecheckError(f"labgrid coordinator {self.options.coordinator}: {what}: {e.code().name}: "
                                 f"{e.details()}") from None

    def _rpc(self, name: str, request):
        return self._await(getattr(self.session.stub, name)(request), name)

    def places(self) -> dict:
        """Place name -> labgrid's Place, as the coordinator has it now."""
        self._await(self.session.sync_with_coordinator(), "sync")
        return dict(self.session.places)

    def reservations(self) -> list:
        from labgrid.remote.common import Reservation

        return [Reservation.from_pb2(r) for r in self._rpc("GetReservations", self.pb2.GetReservationsRequest())
                .reservations]

    def nudge(self) -> None:
        """A reservation that matches nothing, made and cancelled: the coordinator schedules now, so a place
        freed a moment ago reaches the next waiter at once (labgrid 26 would wait for its 15 s pass)."""
        pb2 = self.pb2
        r = self._rpc("CreateReservation", pb2.CreateReservationRequest(
            filters={"main": pb2.Reservation.Filter(filter=NUDGE_FILTER)}, prio=-1000.0))
        self._rpc("CancelReservation", pb2.CancelReservationRequest(token=r.reservation.token))

    def cancel(self, token: str) -> None:
        self._rpc("CancelReservation", self.pb2.CancelReservationRequest(token=token))
        self.nudge()

    def release(self, place: str, owner: str) -> None:
        """Release ``place`` only if ``owner`` still holds it (atomic on the coordinator)."""
        self._rpc("ReleasePlace", self.pb2.ReleasePlaceRequest(placename=place, fromuser=owner))

    # -- stale locks ----------------------------------------------------------
    def reap_stale(self, only: set[str] | None = None) -> list[str]:
        """Free the places (and cancel the reservations) of edgecheck processes on this host that are gone;
        says what it freed. Owners on other hosts are left alone: their processes cannot be seen from here."""
        freed = []
        for name, place in sorted(self.places().items()):
            if only is not None and name not in only:
                continue
            if not place.acquired or place.acquired == self.me or owner_alive(place.acquired, self.host) is not False:
                continue
            owner, token = place.acquired, place.reservation  # before the coordinator's update replaces them
            self.release(name, owner)
            if token:
                with contextlib.suppress(EdgecheckError):
                    self.cancel(token)
            self.say(f"edgecheck: freed place {name}: its lock belonged to edgecheck process {parse_owner(owner)[1]} "
                     f"on this host, which is gone (labgrid owner {owner})")
            freed.append(name)
        for res in self.reservations():
            if res.state.name in ("waiting", "allocated") and owner_alive(res.owner, self.host) is False:
                with contextlib.suppress(EdgecheckError):
                    self.cancel(res.token)
                self.say(f"edgecheck: cancelled reservation {res.token} of edgecheck process "
                         f"{parse_owner(res.owner)[1]} on this host, which is gone")
        return freed

    # -- reserve, wait, lock ----------------------------------------------------
    def _reserve(self, spec: FarmSpec) -> tuple[str, str]:
        """``reserve --wait``, bounded by ``wait_s``: (token, place). The reservation is cancelled on any
        exception, an interrupt included."""
        from labgrid.remote.common import ReservationState

        pb2 = self.pb2
        r = self._rpc("CreateReservation", pb2.CreateReservationRequest(
            filters={"main": pb2.Reservation.Filter(filter=spec.filters)}, prio=0.0))
        token = r.reservation.token
        t0 = last_reap = last_nudge = time.monotonic()
        told = False
        try:
            while True:
                res = self._rpc("PollReservation", pb2.PollReservationRequest(token=token)).reservation
                state = ReservationState(res.state)
                if state in (ReservationState.allocated, ReservationState.acquired):
                    return token, res.allocations["main"]
                if state is not ReservationState.waiting:
                    raise EdgecheckError(f"labgrid: the reservation for {spec.wanted} became {state.name}")
                now = time.monotonic()
                if not told:
                    told = True
                    self.say(f"edgecheck: waiting for {spec.wanted} ({self._holders(spec)}); at most "
                             f"{self.options.wait_s:g} s (--lg-wait)")
                if now - t0 > self.options.wait_s:
                    raise EdgecheckError(f"--device {spec.device}@labgrid:{spec.selector}: no {spec.wanted} became "
                                         f"free within {self.options.wait_s:g} s (--lg-wait); {self._holders(spec)}")
                if now - last_reap >= 5:
                    last_reap = now
                    self.reap_stale()
                if now - last_nudge >= 1:
                    last_nudge = now
                    self.nudge()
                time.sleep(0.2)  # polling also keeps the reservation from expiring (60 s)
        except BaseException:
            with contextlib.suppress(Exception):
                self.cancel(token)
            raise

    def _holders(self, spec: FarmSpec) -> str:
        places = self.places()
        wanted = spec.filters
        match = [p for n, p in places.items()
                 if all((n if k == "name" else p.tags.get(k)) == v for k, v in wanted.items())]
        if not match:
            return "no place matches it yet"
        return "; ".join(f"{p.name} held by {p.acquired}" if p.acquired else f"{p.name} free" for p in match)

    def lease(self, text: str) -> Lease:
        """The board of ``tpu@labgrid:...``: reserved (waiting if need be), locked, connected. A device asking
        for a place this session already holds (or for the same tags again) shares its board."""
        spec = parse_farm_spec(text)
        held = self._by_selector.get(spec.selector) or (spec.place if spec.place in self.leases else None)
        if held:
            return self.leases[held]
        if not self.leases:
            self.reap_stale()  # locks of dead edgecheck runs of this host, before anything waits on them
            self._catch_signals()
        token, place = self._reserve(spec)
        lease = Lease(self, spec.selector, place, token)
        self.leases[place] = lease
        try:
            self._rpc("AcquirePlace", self.pb2.AcquirePlaceRequest(placename=place))
            lease.locked = True
            self.say(f"edgecheck: locked labgrid place {place} for {text} (owner {self.me})")
            lease.connect()
        except BaseException:
            lease.release()
            raise
        self._by_selector[spec.selector] = place
        return lease

    # -- the end -----------------------------------------------------------------
    def _catch_signals(self) -> None:
        """SIGTERM and SIGHUP unwind like Ctrl-C while places are held (their default ends the process with no
        cleanup). Only on the main thread, and only where nobody else handles them."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                self._signals[sig] = signal.signal(sig, _interrupt)

    def close(self) -> None:
        """Release every place (and cancel its reservation), close the session. Idempotent; safe in atexit."""
        if self._closed:
            return
        self._closed = True
        for lease in list(self.leases.values()):
            lease.release()
        with contextlib.suppress(Exception):
            self._await(self.session.stop(), "stop")
        with contextlib.suppress(Exception):
            self._await(self.session.close(), "close")
        for sig, handler in self._signals.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
        if self._env is None:
            os.environ.pop("LG_USERNAME", None)
        else:
            os.environ["LG_USERNAME"] = self._env
        FarmClient._open -= 1
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)


def _interrupt(signum, frame):
    raise FarmInterrupt(f"edgecheck: {signal.Signals(signum).name}: stopping; releasing the labgrid places")


@dataclass
class Lease:
    """A locked place: its reservation, its board's ssh connection (labgrid's SSHDriver) and power driver."""

    client: FarmClient
    selector: str
    place: str
    token: str
    locked: bool = False
    tags: dict = field(default_factory=dict)
    board: dict = field(default_factory=dict)  # recorded with every entry: which board measured it
    target: object = None
    ssh: object = None
    power: object = None
    power_cmd: str | None = None
    current: SshTransport | None = None
    released: bool = False

    @property
    def remote(self) -> str:
        return f"labgrid:{self.place}"

    def connect(self) -> None:
        """The place's NetworkService, reached through labgrid's SSHDriver (its own ControlMaster); the worker's
        ssh calls reuse that connection."""
        from labgrid import Target
        from labgrid.driver import ExternalPowerDriver, SSHDriver
        from labgrid.resource.remote import RemotePlace, RemotePlaceManager

        c, opts = self.client, self.client.options
        manager = RemotePlaceManager.get()
        manager.session, manager.loop = c.session, c.loop  # labgrid's one session of this process
        place = c.places()[self.place]
        self.tags = dict(place.tags)
        self.target = Target(self.place)
        try:
            RemotePlace(self.target, name=self.place)
            ns = self.target.get_resource("NetworkService")
        except Exception as e:  # noqa: BLE001 - labgrid raises plain exceptions for a place without one
            raise EdgecheckError(f"labgrid place {self.place} has no NetworkService (export one for the board and "
                                 f"add it with labgrid-client -p {self.place} add-match ...): {e}") from None
        user = ns.username or None
        check_host(ns.address, user, f"labgrid place {self.place} (NetworkService)")
        self.ssh = SSHDriver(self.target, name="edgecheck-ssh", keyfile=opts.ssh_key or "",
                             connection_timeout=float(opts.connect_s))
        self._activate_ssh(opts.connect_s)
        login = f"{user}@{ns.address}" if user else ns.address
        self.board = {"place": self.place, "tags": self.tags, "coordinator": opts.coordinator,
                      "ssh": f"ssh://{login}:{ns.port}", "owner": c.me,
                      "power": None}
        self.current = self._transport()
        if opts.power_cycle:
            self.power_cmd = power_command(opts.power_cycle, self.place, self.tags)
            bounded = shlex.join(["timeout", "-k", "5", f"{opts.power_s:g}", *shlex.split(self.power_cmd)])
            self.power = ExternalPowerDriver(self.target, name="edgecheck-power", cmd_on="false", cmd_off="false",
                                             cmd_cycle=bounded)
            self.target.activate(self.power)
            self.board["power"] = f"ExternalPowerDriver: {self.power_cmd}"

    def _activate_ssh(self, seconds: float) -> None:
        self.ssh.connection_timeout = float(seconds)
        try:
            self.target.activate(self.ssh)
        except Exception as e:  # noqa: BLE001 - labgrid raises a plain Exception on a timeout
            ns = self.ssh.networkservice
            raise EdgecheckError(f"labgrid place {self.place}: cannot ssh to {ns.username}@{ns.address}:{ns.port} "
                                 f"within {seconds:g} s through labgrid's SSHDriver ({e}); check --lg-ssh-key and "
                                 "the board's sshd") from None

    def _transport(self) -> SshTransport:
        ns, c = self.ssh.networkservice, self.client.options
        return SshTransport(ns.address, self.ssh._get_username() or None, int(ns.port), c.python,
                            (*self.ssh.ssh_prefix, *c.ssh_options), connect_timeout_s=c.connect_s)

    def transport(self) -> SshTransport:
        return self.current

    def recover(self) -> tuple[str, SshTransport] | None:
        """On a hang (``sweep.run``): power-cycle and reconnect; None when this place has no power driver."""
        return None if self.power is None else self._power_cycle()

    def _power_cycle(self) -> tuple[str, SshTransport]:
        """Cycle the board's power, wait for its sshd (``boot_s``), and start again with a new private folder.
        Runs on the client's thread (labgrid's session)."""
        old = self.current._dir
        self.current.abort()
        self.current.forget()  # what was copied is no longer to be trusted: everything is copied again
        try:
            self.power.cycle()
        except Exception as e:  # noqa: BLE001 - ExecutionError, or the bounded command's timeout
            raise EdgecheckError(f"labgrid place {self.place}: power cycle failed ({self.power_cmd}): {e}") from None
        self.target.deactivate(self.ssh)
        self._activate_ssh(self.client.options.boot_s)
        self.current = self._transport()
        if old:  # a /tmp that survives the reboot keeps the old private folder: remove it (best effort)
            with contextlib.suppress(EdgecheckError):
                self.current.run(f"rm -rf -- {shlex.quote(old)}", timeout=30)
        return f"power-cycled place {self.place} through labgrid's ExternalPowerDriver ({self.power_cmd})", \
            self.current

    def release(self) -> None:
        """Remove the private folder, close the ssh connection, unlock, cancel the reservation. Idempotent;
        each step is bounded and one failing step does not keep the others from running."""
        if self.released:
            return
        self.released = True
        c = self.client
        if self.current is not None:
            with contextlib.suppress(Exception):
                self.current.close()
        if self.target is not None:
            with contextlib.suppress(Exception):
                self.target.cleanup()
        problems = []
        if self.locked:
            try:
                c.release(self.place, c.me)
            except EdgecheckError as e:
                problems.append(str(e))
        try:
            c.cancel(self.token)
        except EdgecheckError as e:
            problems.append(str(e))
        if problems:
            c.say(f"edgecheck: WARNING: labgrid place {self.place} may still be locked: {'; '.join(problems)} "
                  "(edgecheck farm unlock frees it once this process has ended)")
        elif self.locked:
            c.say(f"edgecheck: released labgrid place {self.place}")
