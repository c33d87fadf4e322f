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
from .interpreter import InterpreterPackage, find_package, make_interpreter, predict, quantize_input

MEASURED = "measured"
SIMULATED = "simulated"

# Names --device accepts. auto is resolved by select().
KNOWN_DEVICES = ("auto", "cpu", "a53")

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
    def key(self) -> str:
        """The device configuration results are matched on."""
        return f"{self.name}:threads={self.threads}"

    @property
    def provenance(self) -> str:
        if self.kind == MEASURED:
            pkg = self.metadata.get("interpreter", {})
            return (f"measured on {self.name} ({self.metadata.get('cpu_model', 'unknown CPU')}, "
                    f"{pkg.get('distribution', '?')} {pkg.get('version', '?')}, {self.threads} thread(s))")
        return f"simulated by {self.name}"

    def to_dict(self) -> dict:
        public = {k: v for k, v in self.metadata.items() if not k.startswith("_")}
        return {"name": self.name, "kind": self.kind, "threads": self.threads, "key": self.key,
                "provenance": self.provenance, "metadata": public}

    def open(self, model: ModelEntry) -> "LocalRunner":
        if self.kind != MEASURED:
            raise EdgecheckError(f"device {self.name} is {self.kind}; it has no interpreter to open")
        return LocalRunner.open(model.tflite, self.threads, self.metadata["_package"])


@dataclass
class LocalRunner:
    """An interpreter in this process, with its input set to a real test window."""

    interp: object
    load_seconds: float
    first_invoke_seconds: float = float("nan")

    @classmethod
    def open(cls, path: Path, threads: int, package: InterpreterPackage) -> "LocalRunner":
        t0 = time.perf_counter()
        interp = make_interpreter(path, threads=threads, package=package)
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
    skipped: dict[str, str]  # device name -> reason it does not run here


def parse_device_option(values: list[str] | None) -> list[str]:
    """``--device`` is repeatable and takes comma-separated lists; the default is auto."""
    names: list[str] = []
    for v in values or ["auto"]:
        for part in str(v).split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part not in KNOWN_DEVICES:
                raise EdgecheckError(f"--device: unknown device {part!r}; known: {', '.join(KNOWN_DEVICES)}")
            if part not in names:
                names.append(part)
    return names or ["auto"]


def select(values: list[str] | None, cpu_threads: int = 1, a53_threads: int = 1,
           cpuinfo_text: str | None = None) -> Selection:
    """The devices of this session. auto = every real device found: the host CPU
    (called a53 when it is a Cortex-A53)."""
    names = parse_device_option(values)
    a53_host = is_cortex_a53(cpuinfo_text)
    wanted: list[str] = []
    for n in names:
        if n == "auto":
            wanted.append("a53" if a53_host else "cpu")
        else:
            wanted.append(n)
    devices, skipped = [], {}
    for n in dict.fromkeys(wanted):
        if n == "cpu":
            if a53_host:
                skipped[n] = "this host's CPU is a Cortex-A53: use --device=a53"
            else:
                devices.append(_cpu_device("cpu", cpu_threads))
        elif n == "a53":
            if not 1 <= a53_threads <= 4:
                raise EdgecheckError(f"--a53-threads: must be 1 to 4, got {a53_threads}")
            if a53_host:
                devices.append(_cpu_device("a53", a53_threads))
            else:
                skipped[n] = "this host's CPU is not an Arm Cortex-A53 (no CPU part 0xd03 in /proc/cpuinfo)"
    return Selection(devices, skipped)
