"""Metadata about the machine and software, recorded with every manifest and result.

Collected the pyperf way: read what is cheap and stable, never fail on what is
missing (a field that cannot be read is left out, not guessed).
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from edgecheck import __version__
from edgecheck.sysfs import read_text

BUILD_PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "librosa", "scipy", "numpy", "ai-edge-litert", "tflite",
                  "pyts")
MEASURE_PACKAGES = ("numpy", "ai-edge-litert", "tflite-runtime", "tflite", "pytest", "pytest-benchmark", "pycoral")


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    out = {"edgecheck": __version__, "python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def git_commit(path: str | os.PathLike | None = None) -> dict:
    """The commit of the checkout edgecheck runs from, and whether it has uncommitted changes."""
    cwd = Path(path) if path else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def cpu_model() -> str | None:
    text = read_text("/proc/cpuinfo", "procfs") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Hardware", "Processor"):
            return value.strip()
    return platform.processor() or None


def cpufreq(cpu: int = 0) -> dict:
    base = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq"
    out = {}
    gov = read_text(f"{base}/scaling_governor")
    if gov:
        out["governor"] = gov
    cur = read_text(f"{base}/scaling_cur_freq")
    if cur and cur.isdigit():
        out["frequency_mhz"] = int(cur) / 1000
    return out


def temperature_c() -> float | None:
    text = read_text("/sys/class/thermal/thermal_zone0/temp")
    return int(text) / 1000 if text and text.lstrip("-").isdigit() else None


def machine() -> dict:
    """Machine facts; volatile ones (frequency, temperature) are marked so comparisons ignore them."""
    info = {
        "node": platform.node(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "board": read_text("/proc/device-tree/model"),
        "python": platform.python_version(),
    }
    volatile = cpufreq()
    t = temperature_c()
    if t is not None:
        volatile["temperature_c"] = t
    info["volatile"] = volatile
    return {k: v for k, v in info.items() if v is not None}


def measuring_environment() -> dict:
    """What a measurement ran on: the machine, the measuring packages' versions, the git commit."""
    return {"machine": machine(), "versions": package_versions(MEASURE_PACKAGES), "git": git_commit()}
