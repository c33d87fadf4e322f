"""Devices a model can be measured on, and the one place that decides which run.

Every device measures itself through one protocol, ``measure(model, ctx) ->
Entry``: a ``LocalDevice`` times an interpreter in this process, a
``RemoteDevice`` has the edgecheck worker time it on a board, a ``TwinDevice``
predicts it. A device has a name, a kind ("measured" or "simulated") and
metadata recorded with every result. ``select`` turns the ``--device`` values
into the devices of this session plus the reasons the others are skipped.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgecheck.artifacts import ModelEntry
from edgecheck.environment import cpu_model, cpufreq, machine
from edgecheck.errors import EdgecheckError
from edgecheck.interpreter import InterpreterPackage, find_package
from edgecheck.results import MEASURED, SIMULATED, Energy, Entry, Latency
from edgecheck.twins.model import check_a53_threads, check_tpu_clock, check_tpu_link, load_constants

if TYPE_CHECKING:
    from edgecheck.measure.recorder import MeasureContext

# Names --device accepts. auto is resolved by select().
KNOWN_DEVICES = ("auto", "cpu", "a53", "tpu", "tpu-sim", "a53-sim")
TWIN_OF = {"tpu": "tpu-sim", "a53": "a53-sim"}

CORTEX_A53_PART = "0xd03"


def is_cortex_a53(cpuinfo_text: str | None = None) -> bool:
    """True when /proc/cpuinfo names Arm's Cortex-A53 (implementer 0x41, part 0xd03)."""
    if cpuinfo_text is None:
        try:
            cpuinfo_text = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    parts = {line.split(":", 1)[1].strip().lower() for line in cpuinfo_text.splitlines()
             if line.lower().startswith("cpu part") and ":" in line}
    implementers = {line.split(":", 1)[1].strip().lower() for line in cpuinfo_text.splitlines()
                    if line.lower().startswith("cpu implementer") and ":" in line}
    return CORTEX_A53_PART in parts and (not implementers or "0x41" in implementers)


@dataclass
class Device:
    """What every device is: a name, a kind, threads and the metadata recorded with its results."""

    name: str
    kind: str
    threads: int = 1
    metadata: dict = field(default_factory=dict)

    @property
    def remote(self) -> str | None:
        return None

    @property
    def key(self) -> str:
        """The device configuration results are matched on."""
        return f"{self.name}:threads={self.threads}"

    @property
    def provenance(self) -> str:
        return f"{self.kind} on {self.name}"

    @property
    def label(self) -> str:
        """The device as test ids show it."""
        return self.name

    def to_dict(self) -> dict:
        public = {k: v for k, v in self.metadata.items() if not k.startswith("_")}
        return {"name": self.name, "kind": self.kind, "threads": self.threads, "key": self.key,
                "provenance": self.provenance, "metadata": public}

    def cannot_run(self, model: ModelEntry) -> str | None:
        """Why this device cannot run ``model`` (a skip reason), or None."""
        compiled_only = model.origin == "user" and model.edgetpu_tflite == model.tflite
        if self.kind == SIMULATED and compiled_only:
            return f"{model.tflite} is compiled for the Edge TPU; the twins need the CPU .tflite it came from"
        if self.name != "tpu" and compiled_only:
            return f"{model.tflite} is compiled for the Edge TPU (edgetpu-custom-op): only the tpu device runs it"
        if self.name == "tpu" and model.edgetpu_tflite is None:
            return (f"{model.name} has no compiled *_edgetpu.tflite: build on an x86-64 host with edgetpu_compiler "
                    "installed, or pass --model my_edgetpu.tflite")
        return None

    @property
    def exact_cpu_kernels(self) -> bool:
        """True when the device runs the same CPU kernels as the build, so predictions must match."""
        return False

    def model_file(self, model: ModelEntry) -> Path:
        """The file this device runs: the compiled *_edgetpu.tflite on an Edge TPU, else the CPU .tflite."""
        return model.edgetpu_tflite if self.name == "tpu" else model.tflite

    def new_entry(self, model: ModelEntry, status: str = "ok", **fields) -> Entry:
        from edgecheck.results import DeviceRecord, ModelRecord

        return Entry(model=ModelRecord(**model.record()), device=DeviceRecord(**self.to_dict()), kind=self.kind,
                     provenance=self.provenance, status=status,
                     started_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields)

    def measure(self, model: ModelEntry, ctx: MeasureContext) -> Entry:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} cannot measure")


@dataclass
class LocalDevice(Device):
    """A CPU or Edge TPU of this machine, timed in this process by pytest-benchmark."""

    @property
    def key(self) -> str:
        return f"{self.name}:threads={self.threads}"

    @property
    def provenance(self) -> str:
        pkg = self.metadata.get("interpreter", {})
        if self.name == "tpu":
            return (f"measured on tpu ({self.metadata.get('connection')} Edge TPU, libedgetpu "
                    f"{self.metadata.get('runtime', {}).get('version', '?')}, {pkg.get('distribution', '?')} "
                    f"{pkg.get('version', '?')})")
        return (f"measured on {self.name} ({self.metadata.get('cpu_model', 'unknown CPU')}, "
                f"{pkg.get('distribution', '?')} {pkg.get('version', '?')}, {self.threads} thread(s))")

    @property
    def exact_cpu_kernels(self) -> bool:
        return self.name in ("cpu", "a53")

    def open(self, model: ModelEntry):
        """An interpreter for ``model`` on this device, with its load time (``measure.local.LocalRunner``)."""
        from edgecheck.measure.local import LocalRunner

        if self.name == "tpu":
            from edgecheck.measure.edgetpu import load_delegate, pycoral_edgetpu

            pc = pycoral_edgetpu()
            if pc is not None:  # Google's pycoral: make_interpreter with its device selector (':0', 'usb', 'pci:0')
                t0 = time.perf_counter()
                interp = pc.make_interpreter(str(model.edgetpu_tflite), device=self.metadata.get("selector"))
                interp.allocate_tensors()
                return LocalRunner(interp, time.perf_counter() - t0)
            pkg = self.metadata["_package"]
            delegate = load_delegate(self.metadata.get("selector"), pkg.module)
            return LocalRunner.open(model.edgetpu_tflite, 1, pkg, delegates=[delegate])
        return LocalRunner.open(model.tflite, self.threads, self.metadata["_package"])

    def transport(self):
        from edgecheck.measure.transport import LocalTransport

        return LocalTransport()

    def measure(self, model: ModelEntry, ctx: MeasureContext) -> Entry:
        from edgecheck.measure.local import measure_local

        return measure_local(self, model, ctx)


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

    def measure(self, model: ModelEntry, ctx: MeasureContext) -> Entry:
        from edgecheck.measure.remote import measure_remote

        return measure_remote(self, model, ctx)


@dataclass
class TwinDevice(Device):
    """A twin: one deterministic predicted value per model, labelled simulated."""

    @property
    def constants(self):
        return self.metadata["_constants"]

    @property
    def key(self) -> str:
        m = self.metadata
        cfg = f"link={m['link']},clock={m['clock_hz'] / 1e6:g}MHz" if self.name == "tpu-sim" else \
            f"threads={self.threads},clock={m['clock_hz'] / 1e6:g}MHz"
        return f"{self.name}:{cfg},constants={m['constants_sha256'][:12]}"

    @property
    def provenance(self) -> str:
        m = self.metadata
        if self.name == "tpu-sim":
            return (f"simulated by the Edge TPU twin ({m['link']}, {m['clock_hz'] / 1e6:g} MHz, "
                    f"constants {m['constants_sha256'][:12]})")
        return (f"simulated by the Cortex-A53 twin ({self.threads} thread(s), {m['clock_hz'] / 1e6:g} MHz, "
                f"constants {m['constants_sha256'][:12]})")

    def cannot_run(self, model: ModelEntry) -> str | None:
        """Besides the general reasons: a model the Edge TPU compiler would refuse is not predicted by tpu-sim
        (an inconclusive outcome naming the reason; the A53 twin still answers)."""
        why = super().cannot_run(model)
        if why or self.name != "tpu-sim":
            return why
        from edgecheck.modelfile import read_model
        from edgecheck.outcome import NOT_TESTABLE, Outcome
        from edgecheck.twins.model import tpu_refusal

        comp = model.compiler or {}
        unmapped = sorted({op for m in comp.get("models") or [] for op in m.get("unmapped_operators") or []}
                          - {"QUANTIZE", "DEQUANTIZE"})
        if comp.get("failure"):
            refusal = f"its compiler log says so: {comp['failure']['message']}"
        elif unmapped:
            refusal = (f"its compiler log leaves {', '.join(unmapped)} on the CPU (the twin does not cost a partly "
                       "mapped model)")
        else:
            try:
                refusal = tpu_refusal(read_model(model.tflite))
            except EdgecheckError:
                return None  # an unreadable file fails in measure() with its own message
        if refusal is None:
            return None
        return Outcome.inconclusive(NOT_TESTABLE, "Edge TPU compiler would accept the model", False, True,
                                    refusal).summary

    def measure(self, model: ModelEntry, ctx: MeasureContext | None = None) -> Entry:
        from edgecheck.twins.model import predict_a53, predict_tpu, workload

        c = self.constants
        w = workload(model.tflite)
        if self.name == "tpu-sim":
            p = predict_tpu(w, c, self.metadata["link"], self.metadata["clock_hz"], model.compiler)
        else:
            p = predict_a53(w, c, self.threads, self.metadata["clock_hz"])
        split = p.breakdown.get("cache_split_from")
        latency = Latency.from_samples([p.latency_s], statistic="predicted seconds per invoke (deterministic, one "
                                                                "value)", simulated=True)
        energy = Energy(total_j=p.energy_j, power_w=p.power_w, dynamic_j=None,
                        provenance=f"simulated: {self.name} power model x predicted latency")
        twin = {"breakdown": p.breakdown, "constants_sha256": c.sha256, "constants_path": c.path,
                "compiler_log_used": split == "compiler log"}
        if p.band:
            # the band beside the central value: what the twin's constants and the compiler's possible
            # allocations allow (seconds, watts, joules)
            latency.band = p.band["latency_s"]
            energy.band = p.band["energy_j"]
            energy.band_j = [p.band["energy_j"]["low"], p.band["energy_j"]["high"]]
            energy.power_band_w = p.band["power_w"]
        if p.near_limit:
            twin["near_limit"] = p.near_limit
        if p.notes:
            twin["notes"] = p.notes
        return self.new_entry(model, latency=latency, energy=energy, twin=twin)


def _cpu_device(name: str, threads: int) -> LocalDevice:
    pkg = find_package()
    meta = {
        "cpu_model": cpu_model(),
        "cores": machine().get("cpu_count"),
        **cpufreq(),
        "interpreter": {"module": pkg.module, "distribution": pkg.distribution, "version": pkg.version},
        "_package": pkg,
    }
    return LocalDevice(name=name, kind=MEASURED, threads=threads, metadata=meta)


@dataclass
class Selection:
    devices: list[Device]
    skipped: dict[str, str]  # requested device -> reason it does not run here (its benchmarks skip)
    absent: dict[str, str] = field(default_factory=dict)  # what auto looked for and did not find


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


def parse_device_option(values: list[str] | None) -> list[str]:
    """``--device`` is repeatable and takes comma-separated lists; the default is auto."""
    from edgecheck.measure.farm import is_farm_spec, parse_farm_spec
    from edgecheck.measure.remote import parse_target

    names: list[str] = []
    for v in values or ["auto"]:
        for part in _parts(v):
            if is_farm_spec(part):
                parse_farm_spec(part)  # validates; the place is reserved and locked in select()
            elif "@" in part:
                parse_target(part)  # validates; the device is built in select()
            elif part not in KNOWN_DEVICES:
                raise EdgecheckError(f"--device: unknown device {part!r}; known: {', '.join(KNOWN_DEVICES)}, "
                                     "tpu@ssh://user@host, tpu@labgrid:PLACE, tpu@labgrid:TAG=VALUE")
            if part not in names:
                names.append(part)
    return names or ["auto"]


def _version(distribution: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _tpu_device(selector: str | None) -> tuple[Device | None, str | None]:
    """The Edge TPU device, or the reason it is not usable here."""
    import ctypes.util

    from edgecheck.measure.edgetpu import delegate_library, find_edge_tpus, pycoral_edgetpu, runtime_info

    tpus = find_edge_tpus()
    if not tpus:
        return None, "no Edge TPU found (no /dev/apex_* node, no USB device 18d1:9302 or 1a6e:089a)"
    if ctypes.util.find_library("edgetpu") is None:
        return None, (f"an Edge TPU is present but the runtime library {delegate_library()} is not installed "
                      "(install libedgetpu1-std or libedgetpu1-max from Coral's apt repository)")
    blocked = [t for t in tpus if t.accessible is False]
    if blocked and len(blocked) == len(tpus):
        return None, blocked[0].note
    pkg = find_package()
    chosen = tpus[0]
    interp = {"module": pkg.module, "distribution": pkg.distribution, "version": pkg.version}
    if pycoral_edgetpu() is not None:  # the probe and the interpreters go through pycoral first
        interp = {"module": "pycoral.utils.edgetpu", "distribution": "pycoral", "version": _version("pycoral")}
    meta = {"edge_tpus": [t.to_dict() for t in tpus], "connection": chosen.type, "usb_speed": chosen.usb_speed,
            "selector": selector, "runtime": runtime_info(), "host_cpu": cpu_model(),
            "clock": "libedgetpu default (PCIe: max 500 MHz; USB: std 250 MHz, max 500 MHz)",
            "interpreter": interp, "_package": pkg}
    return LocalDevice(name="tpu", kind=MEASURED, threads=1, metadata=meta), None


def twin_device(name: str, constants_path: str | None = None, tpu_link: str = "pcie", tpu_clock_mhz: float = 500,
                a53_threads: int = 1) -> TwinDevice:
    """A simulated device: the twin, its configuration and the constants' fingerprint."""
    c = load_constants(constants_path)
    meta = {"twin": name, "constants_sha256": c.sha256, "constants_path": c.path, "_constants": c}
    if name == "tpu-sim":
        meta.update(link=check_tpu_link(tpu_link), clock_hz=check_tpu_clock(c, float(tpu_clock_mhz) * 1e6))
        return TwinDevice(name, SIMULATED, 1, meta)
    check_a53_threads(a53_threads)
    meta.update(clock_hz=float(c.value("a53", "clock_hz")))
    return TwinDevice(name, SIMULATED, a53_threads, meta)


def select(values: list[str] | None, cpu_threads: int = 1, a53_threads: int = 1,
           cpuinfo_text: str | None = None, tpu_selector: str | None = None, twin_options: dict | None = None,
           remote_options: dict | None = None, farm=None) -> Selection:
    """The devices of this session. auto = every real device found (the host CPU,
    called a53 when it is a Cortex-A53, and a usable Edge TPU) plus the twin of
    every real device that is missing. ``farm(spec)`` reserves and locks the labgrid place of a
    ``tpu@labgrid:...`` device and returns its connected board (``farm.Lease``)."""
    from edgecheck.measure.farm import is_farm_spec
    from edgecheck.measure.remote import parse_target

    check_a53_threads(a53_threads)  # once, for the local a53, its twin and a53@ssh:// alike
    twin_options = {"a53_threads": a53_threads, **(twin_options or {})}
    names = parse_device_option(values)
    a53_host = is_cortex_a53(cpuinfo_text)
    wanted: list[str] = []
    for n in names:
        if n == "auto":
            wanted += ["a53" if a53_host else "cpu", "tpu"]
        else:
            wanted.append(n)
    devices: list[Device] = []
    skipped, absent = {}, {}
    for n in dict.fromkeys(wanted):
        if is_farm_spec(n):
            if farm is None:
                raise EdgecheckError(f"--device {n}: farm devices need a labgrid coordinator (--lg-coordinator)")
            lease = farm(n)
            dev_name = n.partition("@")[0]
            threads = a53_threads if dev_name == "a53" else 1 if dev_name == "tpu" else cpu_threads
            dev = RemoteDevice(dev_name, MEASURED, threads, {"remote": lease.remote, "board": lease.board,
                                                             "requested": n, "_target": lease})
            same = next((d for d in devices if d.key == dev.key), None)
            if same is not None:  # two ways of asking for one board's same device: measured once
                skipped[n] = f"the same device as {same.metadata.get('requested')} ({same.label})"
            else:
                devices.append(dev)
        elif "@" in n:
            t = parse_target(n, **(remote_options or {}))
            threads = a53_threads if t.device == "a53" else 1 if t.device == "tpu" else cpu_threads
            devices.append(RemoteDevice(t.device, MEASURED, threads, {"remote": t.where, "_target": t}))
        elif n == "cpu":
            if a53_host:
                skipped[n] = "this host's CPU is a Cortex-A53: use --device=a53"
            else:
                devices.append(_cpu_device("cpu", cpu_threads))
        elif n == "a53":
            if a53_host:
                devices.append(_cpu_device("a53", a53_threads))
            else:
                skipped[n] = "this host's CPU is not an Arm Cortex-A53 (no CPU part 0xd03 in /proc/cpuinfo)"
        elif n == "tpu":
            dev, reason = _tpu_device(tpu_selector)
            if dev is not None:
                devices.append(dev)
            elif "tpu" in names:
                skipped[n] = reason
            else:
                absent[n] = reason
        elif n in TWIN_OF.values():
            devices.append(twin_device(n, **twin_options))
    if "auto" in names:  # the twin of every real device that is missing
        real = {d.name for d in devices}
        for dev_name, twin in TWIN_OF.items():
            if dev_name not in real and twin not in {d.name for d in devices}:
                devices.append(twin_device(twin, **twin_options))
    return Selection(devices, skipped, absent)


__all__ = ["Device", "LocalDevice", "RemoteDevice", "TwinDevice", "Selection", "select", "twin_device",
           "parse_device_option", "is_cortex_a53", "MEASURED", "SIMULATED", "InterpreterPackage"]
