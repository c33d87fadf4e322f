"""Helpers the tests share: running edgecheck as a user would, and building results with known answers.

Fixtures live in conftest.py; plain helper functions live here (``from support import ...``).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from edgecheck.results import RESULTS_SCHEMA

REPO = Path(__file__).resolve().parent.parent
INFERENCE = "benchmarks/test_inference.py"  # the sweep without the claims (the smoke grid cannot show them)


def run_edgecheck(*args: str, cwd: Path | None = None, check: bool = True,
                  timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m edgecheck ARGS`` in a child process, as a user would."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-m", "edgecheck", *args], cwd=cwd or REPO, capture_output=True,
                          text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"edgecheck {' '.join(args)} exited {proc.returncode}\n{proc.stderr[-4000:]}")
    return proc


def run_pytest(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run pytest in a child process (the measuring process a user starts)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd or REPO,
                          capture_output=True, text=True, env=env, timeout=timeout)


def entry(name, params, macs, device, kind, latency, energy=None, f1=0.9, f1_float=None, windows=1800,
          layer_sizes=None, threads=1, metadata=None):
    """One valid results entry with a known latency (one sample), energy and build accuracy."""
    e = {"model": {"name": name, "sha256": "cd" * 32,
                   "size": {"params": params, "macs": macs, "weight_bytes": macs, "bias_bytes": params - macs,
                            **({"layer_sizes": layer_sizes} if layer_sizes is not None else {})},
                   "metrics": {"int8": {"macro_f1": f1}, "float": {"macro_f1": f1 if f1_float is None else f1_float},
                               "test_windows": windows}},
         "device": {"name": device, "kind": kind, "key": device, "threads": threads, "metadata": metadata or {}},
         "kind": kind, "provenance": kind, "status": "ok",
         "latency": {"unit": "s", "samples": [latency],
                     "stats": {"n": 1, "min": latency, "max": latency, "mean": latency, "median": latency}}}
    if energy is not None:
        e["energy"] = {"unit": "J", "total_j": energy, "provenance": kind}
    return e


def run(entries, dataset="collar"):
    """A results file's data around ``entries``."""
    return {"schema": RESULTS_SCHEMA, "created_utc": "x", "artifacts": {"dataset": {"name": dataset}},
            "entries": entries}


def load(path) -> dict:
    """A results file as the JSON a user reads: loaded, migrated and checked by edgecheck, then as plain data."""
    from edgecheck.results import load as load_run

    return load_run(path).to_json()
