"""What every device is, and what a device kind provides: the base the kinds' modules build on.

A *device kind* (``DeviceKind``) is one module under ``measure/kinds/`` (or a
third party's, registered through the ``edgecheck.devices`` entry point): its
name, whether it is measured or simulated, how it is found on this host, what
it runs, its twin and its role in the paper's claims, its power model. A
*device* (``Device``) is one configured instance of a kind in a session: a kind
measured here (``local.LocalDevice``), on a board (``remote.RemoteDevice``:
over ssh or on a labgrid place), or predicted (``twin.TwinDevice``).

This module imports nothing else of the measuring stage, so the transports,
the recorder and the kinds all build on it without an import circle.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from edgecheck.artifacts import ModelEntry
from edgecheck.results import MEASURED, SIMULATED, DeviceRecord, Entry, ModelRecord


@dataclass(frozen=True)
class SelectOptions:
    """What the session's options say about the devices, handed to every kind when it is detected or built.

    A kind reads the fields it needs and ignores the rest; ``extra`` carries options a third-party kind
    adds for itself."""

    cpu_threads: int = 1
    a53_threads: int = 1
    tpu_selector: str | None = None
    tpu_link: str = "pcie"
    tpu_host: str | None = None  # --tpu-host: None, the twin's band spans every host
    tpu_clock_mhz: float = 500.0
    constants: object = None  # twins.model.Constants, loaded once per session (None: the packaged table)
    cpuinfo_text: str | None = None  # tests: a verbatim /proc/cpuinfo instead of this host's
    remote_python: str = "python3"
    ssh_options: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    def twin_constants(self):
        """The session's twin constants (loaded here once when the caller gave none)."""
        if self.constants is None:
            from edgecheck.twins.model import load_constants

            object.__setattr__(self, "constants", load_constants())
        return self.constants


class DeviceKind:
    """One kind of device. Subclass it in the kind's own module and register the instance.

    Class attributes say what the kind is; methods have defaults that fit a CPU-like measured kind, so a
    new kind overrides only what differs."""

    name: str = ""
    simulated: bool = False
    role: str | None = None  # the platform it plays in the paper's claims (judge.roles), or None
    twin: str | None = None  # the simulated kind that stands in for it when it is missing (auto)
    auto: bool = False  # ``--device auto`` looks for it on this host
    remote: bool = False  # the worker can measure it on a board (X@ssh://..., X@labgrid:...)
    accelerator: str | None = None  # the worker's delegate ("edgetpu"), None for the CPU interpreter
    cpu_part: tuple[str, str] | None = None  # (CPU part, name): the worker refuses a board whose CPU is not it
    exact_cpu_kernels: bool = False  # runs the build's CPU kernels: its predictions must match the build's
    calibration: str | None = None  # "host-form" (fit the twins' form here) or "board" (fit a twin's constants)
    description: str = ""

    # -- finding and building devices ---------------------------------------------------------------
    def check_options(self, options: SelectOptions) -> None:
        """Refuse this kind's options when they are wrong, whichever devices the session uses (one error, at
        once, rather than only on the day the kind is selected)."""

    def detect(self, options: SelectOptions) -> tuple[Device | None, str | None]:
        """This kind's device on this host, or None and the reason it is not usable here."""
        return None, f"{self.name} cannot run on this host"

    def threads(self, options: SelectOptions) -> int:
        return options.cpu_threads

    # -- what it runs --------------------------------------------------------------------------------
    def model_file(self, model: ModelEntry) -> Path:
        return model.tflite

    def cannot_run(self, device: Device, model: ModelEntry) -> str | None:
        """Why ``device`` cannot run ``model`` (a skip reason), or None."""
        if model.origin == "user" and model.edgetpu_tflite == model.tflite:
            if self.simulated:
                return f"{model.tflite} is compiled for the Edge TPU; the twins need the CPU .tflite it came from"
            if self.accelerator != "edgetpu":
                return f"{model.tflite} is compiled for the Edge TPU (edgetpu-custom-op): only an Edge TPU runs it"
        return None

    def open(self, device: Device, model: ModelEntry):
        """An interpreter for ``model`` in this process (a ``local.LocalRunner``), or None for the default: the
        CPU interpreter package the device found, with its threads."""
        return None

    def preflight(self, device: Device, models: list[ModelEntry]) -> str | None:
        """Checked once before anything is measured (an accelerator's delegate loaded in a child process):
        the reason the device cannot be used, or None."""
        return None

    def provenance(self, device: Device) -> str:
        pkg = device.metadata.get("interpreter", {})
        return (f"measured on {device.name} ({device.metadata.get('cpu_model', 'unknown CPU')}, "
                f"{pkg.get('distribution', '?')} {pkg.get('version', '?')}, {device.threads} thread(s))")

    def key(self, device: Device) -> str:
        return f"{device.name}:threads={device.threads}"

    # -- what the judge and the twins need -------------------------------------------------------
    def power_model(self, constants, threads: int, end: str = "value") -> tuple[float, float] | None:
        """(idle, active) watts of the board while it runs inferences, from the twins' constants; None when the
        kind has no power model (the ``model`` energy probe then has nothing to estimate with)."""
        return None

    def cache_geometry(self, constants):
        """The L2 the twins' form is fitted with on this kind's measured results (``twins.cache``), or None
        when the form is not fitted for it."""
        return None


@dataclass
class Device:
    """One configured device of a session: a name (its kind's), measured or simulated, threads, and the
    metadata recorded with every result. What differs between kinds is asked of ``impl``."""

    name: str
    kind: str
    threads: int = 1
    metadata: dict = field(default_factory=dict)
    impl: DeviceKind = field(default_factory=DeviceKind, repr=False, compare=False)

    @property
    def remote(self) -> str | None:
        return None

    @property
    def key(self) -> str:
        """The device configuration results are matched on."""
        return self.impl.key(self)

    @property
    def provenance(self) -> str:
        return f"{self.kind} on {self.name}"

    @property
    def label(self) -> str:
        """The device as test ids show it."""
        return self.name

    @property
    def role(self) -> str | None:
        return self.impl.role

    @property
    def exact_cpu_kernels(self) -> bool:
        """True when the device runs the same CPU kernels as the build, so predictions must match."""
        return False

    def to_dict(self) -> dict:
        public = {k: v for k, v in self.metadata.items() if not k.startswith("_")}
        out = {"name": self.name, "kind": self.kind, "threads": self.threads, "key": self.key,
               "provenance": self.provenance, "metadata": public}
        if self.role:
            out["role"] = self.role
        return out

    def cannot_run(self, model: ModelEntry) -> str | None:
        """Why this device cannot run ``model`` (a skip reason), or None."""
        return self.impl.cannot_run(self, model)

    def model_file(self, model: ModelEntry) -> Path:
        """The file this device runs (an accelerator's compiled file, else the CPU .tflite)."""
        return self.impl.model_file(model)

    def power_model(self, constants, end: str = "value") -> tuple[float, float] | None:
        return self.impl.power_model(constants, self.threads, end)

    def new_entry(self, model: ModelEntry, status: str = "ok", **fields) -> Entry:
        return Entry(model=ModelRecord(**model.record()), device=DeviceRecord(**self.to_dict()), kind=self.kind,
                     provenance=self.provenance, status=status,
                     started_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields)

    def measure(self, model: ModelEntry, ctx) -> Entry:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} cannot measure")


__all__ = ["Device", "DeviceKind", "SelectOptions", "MEASURED", "SIMULATED"]
