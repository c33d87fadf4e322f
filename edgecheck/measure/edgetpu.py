"""The Edge TPU: finding it and loading its delegate safely (compiling is the build stage's, build/compile.py).

Detection reads the same places the runtime uses: ``/dev/apex_*`` for PCIe
(the Coral Dev Board's TPU and M.2/mini-PCIe cards) and USB sysfs for the USB
Accelerator (``1a6e:089a`` before its firmware loads, ``18d1:9302`` after).
Loading a delegate can abort the whole process, so a session first probes it
in a short-lived child process (``python -m edgecheck.measure.edgetpu probe``).
"""
from __future__ import annotations

import ctypes.util
import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from edgecheck.sysfs import read_text

USB_IDS = {("1a6e", "089a"): "usb (firmware not yet loaded)", ("18d1", "9302"): "usb"}
USB_SPEEDS = {"1.5": "USB 1 low speed", "12": "USB 1 full speed", "480": "USB 2", "5000": "USB 3 (5 Gb/s)",
              "10000": "USB 3 (10 Gb/s)", "20000": "USB 3 (20 Gb/s)"}


def delegate_library() -> str:
    """The libedgetpu file name load_delegate wants on this OS (as pycoral uses)."""
    return {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}.get(
        platform.system(), "libedgetpu.so.1")


@dataclass
class EdgeTpu:
    type: str  # "usb" or "pci"
    path: str  # /dev/apex_0 or the sysfs USB device folder
    state: str = "ready"
    usb_speed: str | None = None
    accessible: bool | None = None  # can this user open the device node?
    note: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def pycoral_edgetpu():
    """Google's pycoral.utils.edgetpu when it is installed (from Coral's repository, never PyPI's 'pycoral'),
    else None."""
    try:
        from pycoral.utils import edgetpu  # noqa: PLC0415
    except Exception:  # noqa: BLE001 - absent, or PyPI's unrelated 'pycoral' without this module
        return None
    return edgetpu if hasattr(edgetpu, "list_edge_tpus") and hasattr(edgetpu, "make_interpreter") else None


def find_edge_tpus(dev: Path = Path("/dev"), usb_sysfs: Path = Path("/sys/bus/usb/devices"),
                   use_pycoral: bool = True) -> list[EdgeTpu]:
    """Edge TPUs visible to this machine, PCIe first; roots are parameters so tests use real layouts.
    With Google's pycoral installed, its list_edge_tpus() is asked first (what the runtime itself sees)."""
    pc = pycoral_edgetpu() if use_pycoral else None
    if pc is not None:
        listed = [EdgeTpu(t["type"], t["path"], note="listed by pycoral") for t in pc.list_edge_tpus()]
        if listed:
            return listed
    found: list[EdgeTpu] = []
    for node in sorted(dev.glob("apex_*")):
        ok = os.access(node, os.R_OK | os.W_OK)
        found.append(EdgeTpu("pci", str(node), accessible=ok,
                             note=None if ok else f"no read/write permission on {node}: add the user to group "
                                                  "'apex' (udev rule from the Coral runtime package)"))
    if usb_sysfs.is_dir():
        for d in sorted(usb_sysfs.iterdir()):
            vid, pid = read_text(d / "idVendor"), read_text(d / "idProduct")
            if (vid, pid) not in USB_IDS:
                continue
            speed = read_text(d / "speed")
            busnum, devnum = read_text(d / "busnum"), read_text(d / "devnum")
            node = dev / "bus" / "usb" / f"{int(busnum):03d}" / f"{int(devnum):03d}" if busnum and devnum else None
            ok = os.access(node, os.R_OK | os.W_OK) if node and node.exists() else None
            note = None
            if speed == "480":
                note = "connected at USB 2 speed: use a USB 3 port (transfers are about 10x slower)"
            if ok is False:
                note = f"no read/write permission on {node}: install the Coral udev rules (plugdev group)"
            found.append(EdgeTpu("usb", str(d), state=USB_IDS[(vid, pid)],
                                 usb_speed=USB_SPEEDS.get(speed or "", speed), accessible=ok, note=note))
    return found


def runtime_info() -> dict:
    """Which libedgetpu is installed: library path, Debian package (std or max) and version."""
    from edgecheck.measure.worker import libedgetpu_installed

    info: dict = {"library": ctypes.util.find_library("edgetpu")}
    lib = libedgetpu_installed()  # dpkg's status file, read as the worker reads it on a board
    if lib:
        info.update(package=lib["package"], variant=lib["flavour"], version=lib["version"])
    try:
        from pycoral.utils.edgetpu import get_runtime_version  # Google's pycoral, only if installed

        info["runtime_version"] = get_runtime_version()
    except Exception:  # noqa: BLE001 - absent or broken pycoral: the other fields still help
        pass
    return info


def load_delegate(device: str | None = None, package_module: str | None = None):
    """The Edge TPU delegate through the interpreter package in use (``device``: ':0', 'usb', 'pci:0')."""
    import importlib

    from edgecheck.interpreter import find_package

    mod = importlib.import_module(package_module or find_package().module)
    options = {"device": device} if device else {}
    return mod.load_delegate(delegate_library(), options)


def probe(model: str, device: str | None = None, timeout: float = 60.0) -> tuple[bool, str]:
    """Load the delegate and run one invoke of ``model`` in a child process.

    Returns (ok, message); a child that aborts, hangs or fails gives ok=False and its error."""
    cmd = [sys.executable, "-m", "edgecheck.measure.edgetpu", "probe", model] + (["--device", device] if device else [])
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"the Edge TPU probe did not finish within {timeout:.0f} s"
    for line in reversed(r.stdout.strip().splitlines()):
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if r.returncode == 0 and report.get("ok"):
            return True, line
        if "error" in report:
            return False, report["error"]
    # the child died before it could report (an abort in the delegate, a segfault)
    err = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
    if r.returncode < 0:
        err = f"the probe process was killed by signal {-r.returncode} ({err})"
    return False, err


def _probe_main(model: str, device: str | None) -> int:
    """Google's pycoral first (its own libedgetpu/TFLite pairing: a TPU that LiteRT cannot drive because of a
    version mismatch still runs through it), else LiteRT with the libedgetpu delegate."""
    import numpy as np

    from edgecheck.interpreter import make_interpreter

    pc = pycoral_edgetpu()
    if pc is not None:
        try:
            interp = pc.make_interpreter(model, device=device)
            interp.allocate_tensors()
        except (OSError, ValueError, RuntimeError) as e:
            print(json.dumps({"ok": False, "via": "pycoral", "error": f"pycoral cannot open the Edge TPU: {e}"}))
            return 3
        via = "pycoral.utils.edgetpu.make_interpreter"
    else:
        try:
            delegate = load_delegate(device)
        except (OSError, ValueError) as e:
            # stdout carries the report: the interpreter packages print a harmless Delegate.__del__ error on stderr
            print(json.dumps({"ok": False, "error": f"cannot load the Edge TPU delegate {delegate_library()}: {e}"}))
            return 3
        interp = make_interpreter(model, delegates=[delegate])
        via = f"{delegate_library()} delegate"
    d = interp.get_input_details()[0]
    interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    interp.invoke()
    print(json.dumps({"ok": True, "model": model, "via": via}))
    return 0


if __name__ == "__main__":  # the child-process probe
    import argparse

    ap = argparse.ArgumentParser(prog="python -m edgecheck.measure.edgetpu")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("probe")
    p.add_argument("model")
    p.add_argument("--device", default=None)
    a = ap.parse_args()
    sys.exit(_probe_main(a.model, a.device))
