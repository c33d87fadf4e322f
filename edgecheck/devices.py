"""Devices a model can be measured on, and the one place that decides which run.

A device has a name, a kind ("measured" or "simulated") and metadata recorded
with every result. ``select`` turns the ``--device`` values into the devices of
this session plus the reasons the others are skipped.
"""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .artifacts import ModelEntry
from .environment import cpu_model, cpufreq, machine
from .errors import EdgecheckError
from .interpreter import (
    InterpreterPackage,
    find_package,
    make_interpreter,
    predict,
    quantize_input,
)
from .twins import check_a53_threads

MEASURED = "measured"
SIMULATED = "simulated"

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
    name: str
    kind: str
    threads: int = 1
    metadata: dict = field(default_factory=dict)

    @property
    def remote(self) -> str | None:
        return self.metadata.get("remote")

    @property
    def key(self) -> str:
        """The device configuration results are matched on."""
        if self.remote:
            return f"{self.name}@{self.remote}:threads={self.threads}"
        if self.kind == SIMULATED:
            m = self.metadata
            cfg = f"link={m['link']},clock={m['clock_hz'] / 1e6:g}MHz" if self.name == "tpu-sim" else \
                f"threads={self.threads},clock={m['clock_hz'] / 1e6:g}MHz"
            return f"{self.name}:{cfg},constants={m['constants_sha256'][:12]}"
        return f"{self.name}:threads={self.threads}"

    @property
    def provenance(self) -> str:
        if self.remote:
            return (f"measured on {self.name} at {self.remote} (edgecheck worker, timed on that host, "
                    f"{self.threads} thread(s))")
        if self.kind == MEASURED and self.name == "tpu":
            pkg = self.metadata.get("interpreter", {})
            return (f"measured on tpu ({self.metadata.get('connection')} Edge TPU, libedgetpu "
                    f"{self.metadata.get('runtime', {}).get('version', '?')}, {pkg.get('distribution', '?')} "
                    f"{pkg.get('version', '?')})")
        if self.kind == MEASURED:
            pkg = self.metadata.get("interpreter", {})
            return (f"measured on {self.name} ({self.metadata.get('cpu_model', 'unknown CPU')}, "
                    f"{pkg.get('distribution', '?')} {pkg.get('version', '?')}, {self.threads} thread(s))")
        m = self.metadata
        if self.name == "tpu-sim":
            return (f"simulated by the Edge TPU twin ({m['link']}, {m['clock_hz'] / 1e6:g} MHz, "
                    f"constants {m['constants_sha256'][:12]})")
        return (f"simulated by the Cortex-A53 twin ({self.threads} thread(s), {m['clock_hz'] / 1e6:g} MHz, "
                f"constants {m['constants_sha256'][:12]})")

    def to_dict(self) -> dict:
        public = {k: v for k, v in self.metadata.items() if not k.startswith("_")}
        return {"name": self.name, "kind": self.kind, "threads": self.threads, "key": self.key,
                "provenance": self.provenance, "metadata": public}

    def cannot_run(self, model: ModelEntry) -> str | None:
        """Why this device cannot run ``model`` (a skip reason), or None."""
        if self.kind == SIMULATED and model.origin == "user" and model.edgetpu_tflite == model.tflite:
            return f"{model.tflite} is compiled for the Edge TPU; the twins need the CPU .tflite it came from"
        if self.name != "tpu" and model.origin == "user" and model.edgetpu_tflite == model.tflite:
            return f"{model.tflite} is compiled for the Edge TPU (edgetpu-custom-op): only the tpu device runs it"
        if self.name == "tpu" and model.edgetpu_tflite is None:
            return (f"{model.name} has no compiled *_edgetpu.tflite: build on an x86-64 host with edgetpu_compiler "
                    "installed, or pass --model my_edgetpu.tflite")
        return None

    @property
    def exact_cpu_kernels(self) -> bool:
        """True when the device runs the same CPU kernels as the build, so predictions must match."""
        return self.kind == MEASURED and self.name in ("cpu", "a53") and not self.remote

    def open(self, model: ModelEntry) -> "LocalRunner":
        if self.kind != MEASURED:
            raise EdgecheckError(f"device {self.name} is {self.kind}; it has no interpreter to open")
        if self.name == "tpu":
            from .edgetpu import load_delegate, pycoral_edgetpu

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


@dataclass
class LocalRunner:
    """An interpreter in this process, with its input set to a real test window."""

    interp: object
    load_seconds: float
    first_invoke_seconds: float = float("nan")

    @classmethod
    def open(cls, path: Path, threads: int, package: InterpreterPackage, delegates: list | None = None) -> "LocalRunner":
        t0 = time.perf_counter()
        interp = make_interpreter(path, threads=threads, package=package, delegates=delegates)
        return cls(interp, time.perf_counter() - t0)

    def set_input(self, row: np.ndarray) -> None:
        d = self.interp.get_input_details()[0]
        self.interp.set_tensor(d["index"], quantize_input(np.asarray(row, np.float32), d).reshape(d["shape"]))

    def set_zero_input(self) -> None:
        d = self.interp.get_input_details()[0]
        self.interp.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))

    def first_invoke(self) -> None:
        t0 = time.perf_counter()
        self.interp.invoke()
        self.first_invoke_seconds = time.perf_counter() - t0

    @property
    def invoke(self):
        return self.interp.invoke

    def predict(self, X: np.ndarray) -> np.ndarray:
        return predict(self.interp, X).argmax(axis=1)


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _cpu_device(name: str, threads: int) -> Device:
    pkg = find_package()
    meta = {
        "cpu_model": cpu_model(),
        "cores": machine().get("cpu_count"),
        **cpufreq(),
        "interpreter": {"module": pkg.module, "distribution": pkg.distribution, "version": pkg.version},
        "_package": pkg,
    }
    return Device(name=name, kind=MEASURED, threads=threads, metadata=meta)


@dataclass
class Selection:
    devices: list[Device]
    skipped: dict[str, str]  # requested device -> reason it does not run here (its benchmarks skip)
    absent: dict[str, str] = field(default_factory=dict)  # what auto looked for and did not find


def parse_device_option(values: list[str] | None) -> list[str]:
    """``--device`` is repeatable and takes comma-separated lists; the default is auto."""
    names: list[str] = []
    for v in values or ["auto"]:
        for part in str(v).split(","):
            part = part.strip()
            if "@" not in part:
                part = part.lower()
            if not part:
                continue
            if "@" in part:
                from .remote import parse_target

                parse_target(part)  # validates; the device is built in select()
            elif part not in KNOWN_DEVICES:
                raise EdgecheckError(f"--device: unknown device {part!r}; known: {', '.join(KNOWN_DEVICES)}")
            if part not in names:
                names.append(part)
    return names or ["auto"]


def _tpu_device(selector: str | None) -> tuple[Device | None, str | None]:
    """The Edge TPU device, or the reason it is not usable here."""
    import ctypes.util

    from .edgetpu import delegate_library, find_edge_tpus, runtime_info

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
    meta = {"edge_tpus": [t.to_dict() for t in tpus], "connection": chosen.type, "usb_speed": chosen.usb_speed,
            "selector": selector, "runtime": runtime_info(), "host_cpu": cpu_model(),
            "clock": "libedgetpu default (PCIe: max 500 MHz; USB: std 250 MHz, max 500 MHz)",
            "interpreter": {"module": pkg.module, "distribution": pkg.distribution, "version": pkg.version},
            "_package": pkg}
    return Device(name="tpu", kind=MEASURED, threads=1, metadata=meta), None


def twin_device(name: str, constants_path: str | None = None, tpu_link: str = "pcie", tpu_clock_mhz: float = 500,
                a53_threads: int = 1) -> Device:
    """A simulated device: the twin, its configuration and the constants' fingerprint."""
    from .twins import LINKS, load_constants

    c = load_constants(constants_path)
    meta = {"twin": name, "constants_sha256": c.sha256, "constants_path": c.path, "_constants": c}
    if name == "tpu-sim":
        if tpu_link not in LINKS:
            raise EdgecheckError(f"--tpu-link: unknown link {tpu_link!r}; use {', '.join(LINKS)}")
        clock = float(tpu_clock_mhz) * 1e6
        if clock not in [float(x) for x in c.value("tpu", "clocks_hz")]:
            raise EdgecheckError(f"--tpu-clock: {tpu_clock_mhz:g} MHz is not an Edge TPU clock (63, 125, 250, 500)")
        meta.update(link=tpu_link, clock_hz=clock)
        return Device(name, SIMULATED, 1, meta)
    check_a53_threads(a53_threads)
    meta.update(clock_hz=float(c.value("a53", "clock_hz")))
    return Device(name, SIMULATED, a53_threads, meta)


def select(values: list[str] | None, cpu_threads: int = 1, a53_threads: int = 1,
           cpuinfo_text: str | None = None, tpu_selector: str | None = None, twin_options: dict | None = None,
           remote_options: dict | None = None) -> Selection:
    """The devices of this session. auto = every real device found (the host CPU,
    called a53 when it is a Cortex-A53, and a usable Edge TPU) plus the twin of
    every real device that is missing."""
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
    devices, skipped, absent = [], {}, {}
    for n in dict.fromkeys(wanted):
        if "@" in n:
            from .remote import parse_target

            t = parse_target(n, **(remote_options or {}))
            threads = a53_threads if t.device == "a53" else 1 if t.device == "tpu" else cpu_threads
            devices.append(Device(t.device, MEASURED, threads, {"remote": t.where, "_target": t}))
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
