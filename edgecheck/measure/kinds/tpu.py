"""``tpu``: Google's Edge TPU (PCIe on the Coral Dev Board, or the USB Accelerator), running compiled models.

The paper's accelerator (claim role ``tpu``); its twin is ``tpu-sim``. Found through ``measure.edgetpu``
(device nodes, USB ids, Google's pycoral when installed); its delegate is loaded first in a child process,
since a bad delegate can abort the process that loads it."""
from __future__ import annotations

import time
from pathlib import Path

from edgecheck.artifacts import ModelEntry
from edgecheck.environment import cpu_model
from edgecheck.interpreter import find_package
from edgecheck.measure.device import MEASURED, Device, DeviceKind, SelectOptions


def _version(distribution: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class EdgeTpuKind(DeviceKind):
    name = "tpu"
    role = "tpu"
    twin = "tpu-sim"
    auto = True
    remote = True
    accelerator = "edgetpu"
    calibration = "board"
    description = "Google's Edge TPU (measured)"

    def threads(self, options: SelectOptions) -> int:
        return 1

    def detect(self, options: SelectOptions):
        """The Edge TPU device, or the reason it is not usable here."""
        import ctypes.util

        from edgecheck.measure.edgetpu import delegate_library, find_edge_tpus, pycoral_edgetpu, runtime_info
        from edgecheck.measure.local import LocalDevice

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
                "selector": options.tpu_selector, "runtime": runtime_info(), "host_cpu": cpu_model(),
                "clock": "libedgetpu default (PCIe: max 500 MHz; USB: std 250 MHz, max 500 MHz)",
                "interpreter": interp, "_package": pkg}
        return LocalDevice(name=self.name, kind=MEASURED, threads=1, metadata=meta, impl=self), None

    def model_file(self, model: ModelEntry) -> Path:
        return model.edgetpu_tflite

    def cannot_run(self, device: Device, model: ModelEntry) -> str | None:
        if model.edgetpu_tflite is None:
            return (f"{model.name} has no compiled *_edgetpu.tflite: build on an x86-64 host with edgetpu_compiler "
                    "installed, or pass --model my_edgetpu.tflite")
        return None

    def open(self, device: Device, model: ModelEntry):
        from edgecheck.measure.edgetpu import load_delegate, pycoral_edgetpu
        from edgecheck.measure.local import LocalRunner

        pc = pycoral_edgetpu()
        if pc is not None:  # Google's pycoral: make_interpreter with its device selector (':0', 'usb', 'pci:0')
            t0 = time.perf_counter()
            interp = pc.make_interpreter(str(model.edgetpu_tflite), device=device.metadata.get("selector"))
            interp.allocate_tensors()
            return LocalRunner(interp, time.perf_counter() - t0)
        pkg = device.metadata["_package"]
        delegate = load_delegate(device.metadata.get("selector"), pkg.module)
        return LocalRunner.open(model.edgetpu_tflite, 1, pkg, delegates=[delegate])

    def preflight(self, device: Device, models: list[ModelEntry]) -> str | None:
        """Load the delegate and invoke once in a child process first: a delegate can abort its process."""
        if device.remote:
            return None
        model = next((m.edgetpu_tflite for m in models if m.edgetpu_tflite is not None), None)
        if model is None:
            return None  # every benchmark of the device skips with its own reason
        from edgecheck.measure.edgetpu import probe

        ok, message = probe(str(model), device.metadata.get("selector"))
        return None if ok else f"the Edge TPU probe failed in a child process: {message}"

    def provenance(self, device: Device) -> str:
        pkg = device.metadata.get("interpreter", {})
        return (f"measured on {device.name} ({device.metadata.get('connection')} Edge TPU, libedgetpu "
                f"{device.metadata.get('runtime', {}).get('version', '?')}, {pkg.get('distribution', '?')} "
                f"{pkg.get('version', '?')})")

    def power_model(self, constants, threads: int, end: str = "value"):
        from edgecheck.twins.model import power_model

        return power_model(constants, self.name, threads, end)


KIND = EdgeTpuKind()
