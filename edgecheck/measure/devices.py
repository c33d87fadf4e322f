"""The device-kind registry, and the one place that decides which devices a session runs.

Each kind is one module (``measure/kinds/``) with a ``KIND`` object (``device.DeviceKind``); the built-in
ones are listed below, one line each, and third parties add theirs through the ``edgecheck.devices``
entry point of their package, as pytest plugins do (``[project.entry-points."edgecheck.devices"]``,
``mykind = "mypackage.mykind:KIND"``). ``select`` turns the ``--device`` values into the devices of this
session plus the reasons the others are skipped; every device measures itself through one protocol,
``measure(model, ctx) -> Entry``.
"""
from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass, field

from edgecheck.errors import EdgecheckError
from edgecheck.measure.device import MEASURED, SIMULATED, Device, DeviceKind, SelectOptions
from edgecheck.measure.farm import is_farm_spec, parse_farm_spec
from edgecheck.measure.remote import RemoteDevice, parse_target

# The kinds edgecheck ships, in the order ``auto`` looks for them and adds their twins: one line each.
BUILTIN = (
    "edgecheck.measure.kinds.cpu",
    "edgecheck.measure.kinds.tpu",
    "edgecheck.measure.kinds.a53",
    "edgecheck.measure.kinds.tpu_sim",
    "edgecheck.measure.kinds.a53_sim",
)
ENTRY_POINT_GROUP = "edgecheck.devices"
AUTO = "auto"


def _check_kind(kind: object, where: str) -> DeviceKind:
    if not isinstance(kind, DeviceKind) or not isinstance(kind.name, str) or not kind.name \
            or not kind.name.replace("-", "").replace("_", "").isalnum() or kind.name != kind.name.lower():
        raise EdgecheckError(f"device kind from {where}: not a DeviceKind with a lower-case name of letters, digits, "
                             f"'-' and '_' (got {kind!r})")
    return kind


def registry() -> dict[str, DeviceKind]:
    """Every device kind by name: the built-in ones, then those of installed packages (``edgecheck.devices``).

    A third-party kind may not take a built-in name; one that fails to load is an error naming its entry point."""
    kinds: dict[str, DeviceKind] = {}
    for module in BUILTIN:
        kind = _check_kind(importlib.import_module(module).KIND, module)
        kinds[kind.name] = kind
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            loaded = ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plugin is named, whatever it raised
            raise EdgecheckError(f"device kind {ep.name} ({ep.value}, entry point {ENTRY_POINT_GROUP}): cannot "
                                 f"load it: {type(e).__name__}: {e}") from None
        kind = _check_kind(loaded() if isinstance(loaded, type) else loaded, f"entry point {ep.name} = {ep.value}")
        if kind.name in kinds and type(kinds[kind.name]) is not type(kind):
            raise EdgecheckError(f"device kind {kind.name} from entry point {ep.value}: that name is taken by "
                                 f"{type(kinds[kind.name]).__module__}")
        kinds[kind.name] = kind
    return kinds


def kind(name: str) -> DeviceKind:
    """The kind called ``name``; an unknown name is an error listing the known ones."""
    kinds = registry()
    if name not in kinds:
        raise EdgecheckError(f"--device: unknown device {name!r}; known: {', '.join([AUTO, *kinds])}, "
                             "KIND@ssh://user@host, KIND@labgrid:PLACE, KIND@labgrid:TAG=VALUE")
    return kinds[name]


def measured_kinds() -> list[str]:
    """The names of every kind measured on real hardware (``edgecheck devices`` looks for each)."""
    return [n for n, k in registry().items() if not k.simulated]


@dataclass
class Selection:
    devices: list[Device]
    skipped: dict[str, str]  # requested device -> reason it does not run here (its benchmarks skip)
    absent: dict[str, str] = field(default_factory=dict)  # what auto looked for and did not find
    missing: dict[str, str] = field(default_factory=dict)  # asked for by name (--device) and absent: fails the run


def _parts(value: str) -> list[str]:
    """A ``--device`` value split at commas; ``tpu@labgrid:board=devboard,slot=a`` keeps its tags together."""
    parts: list[str] = []
    for part in str(value).split(","):
        part = part.strip()
        if parts and "@" not in part and "=" in part and "@labgrid:" in parts[-1] and "=" in parts[-1]:
            parts[-1] += "," + part
        elif part:
            parts.append(part if "@" in part else part.lower())
    return parts


def _remote_kinds(kinds: dict[str, DeviceKind]) -> tuple[str, ...]:
    return tuple(n for n, k in kinds.items() if k.remote)


def parse_device_option(values: list[str] | None, kinds: dict[str, DeviceKind] | None = None) -> list[str]:
    """``--device`` is repeatable and takes comma-separated lists; the default is auto. ``kinds``: the registry,
    when the caller has it already."""
    kinds = registry() if kinds is None else kinds
    names: list[str] = []
    for v in values or [AUTO]:
        for part in _parts(v):
            if is_farm_spec(part):
                parse_farm_spec(part, _remote_kinds(kinds))  # validates; locked in select()
            elif "@" in part:
                parse_target(part, kinds=_remote_kinds(kinds))  # validates; the device is built in select()
            elif part != AUTO and part not in kinds:
                kind(part)  # the error listing the known kinds
            if part not in names:
                names.append(part)
    return names or [AUTO]


def select(values: list[str] | None, options: SelectOptions | None = None, farm=None) -> Selection:
    """The devices of this session. auto = every real device found (each kind with ``auto``: here the host
    CPU, called a53 when it is a Cortex-A53, and a usable Edge TPU) plus the twin of every real device that is
    missing. ``farm(spec)`` reserves and locks the labgrid place of a ``KIND@labgrid:...`` device and returns
    its connected board (``farm.Lease``)."""
    options = options or SelectOptions()
    kinds = registry()
    for k in kinds.values():
        k.check_options(options)
    names = parse_device_option(values, kinds)
    wanted: list[str] = []
    for n in names:
        wanted += [k.name for k in kinds.values() if k.auto] if n == AUTO else [n]
    devices: list[Device] = []
    skipped, absent, missing = {}, {}, {}
    for n in dict.fromkeys(wanted):
        if is_farm_spec(n):
            if farm is None:
                raise EdgecheckError(f"--device {n}: farm devices need a labgrid coordinator (--lg-coordinator)")
            k = kinds[parse_farm_spec(n, _remote_kinds(kinds)).device]
            lease = farm(n)
            dev = RemoteDevice(k.name, MEASURED, k.threads(options), {"remote": lease.remote, "board": lease.board,
                                                                      "requested": n, "_target": lease}, impl=k)
            same = next((d for d in devices if d.key == dev.key), None)
            if same is not None:  # two ways of asking for one board's same device: measured once
                skipped[n] = f"the same device as {same.metadata.get('requested')} ({same.label})"
            else:
                devices.append(dev)
            continue
        if "@" in n:
            t = parse_target(n, options.remote_python, options.ssh_options, _remote_kinds(kinds))
            k = kinds[t.device]
            devices.append(RemoteDevice(k.name, MEASURED, k.threads(options), {"remote": t.where, "_target": t},
                                        impl=k))
            continue
        dev, reason = kinds[n].detect(options)
        if dev is not None:
            devices.append(dev)
        elif n in names:
            skipped[n] = reason
            missing[n] = reason
        else:
            absent[n] = reason
    if AUTO in names:  # the twin of every real device that is missing
        real = {d.name for d in devices}
        for k in kinds.values():
            if k.auto and k.twin and k.name not in real and k.twin not in {d.name for d in devices}:
                twin, _ = kinds[k.twin].detect(options)
                if twin is not None:
                    devices.append(twin)
    return Selection(devices, skipped, absent, missing)


__all__ = ["Device", "DeviceKind", "SelectOptions", "Selection", "select", "registry", "kind", "measured_kinds",
           "parse_device_option", "MEASURED", "SIMULATED", "ENTRY_POINT_GROUP"]
