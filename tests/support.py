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
# a run whose figures the test does not judge: two worker processes of three short rounds per model
FAST = ("--processes", "2", "--rounds", "3", "--round-time", "0.001")
# a run whose HTML report the test does not read (its figures cost more CPU than a FAST run of the smoke grid)
NO_REPORT = ("--report", "none")
REQUIRE_ENV = "EDGECHECK_REQUIRE"  # comma-separated capabilities CI must have: sshd, labgrid, chromium


def required(capability: str) -> bool:
    """Whether ``capability`` is listed in $EDGECHECK_REQUIRE (CI sets it so that it cannot pass by skipping)."""
    return capability in {c.strip() for c in os.environ.get(REQUIRE_ENV, "").split(",") if c.strip()}


def skip_unless_available(capability: str, reason: str) -> None:
    """Skip with ``reason`` when a real component cannot run here, or fail when CI requires it."""
    import pytest

    if required(capability):
        pytest.fail(f"{capability} is required ({REQUIRE_ENV}={os.environ[REQUIRE_ENV]}) but not available: {reason}",
                    pytrace=False)
    pytest.skip(reason)


def chromium_driver(width: int = 1280, height: int = 1000):
    """Headless Chromium (Debian's chromium) driven by selenium through Debian's chromedriver, with the network
    log on (``driver.get_log("performance")``). Skips, or fails under EDGECHECK_REQUIRE=chromium, where a
    piece is missing."""
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_bin = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        skip_unless_available("chromium", "selenium is not installed (pip install -e '.[test]')")
    if browser is None or not Path(driver_bin).exists():
        skip_unless_available("chromium", "headless Chromium and its driver are not installed (Debian packages "
                                          "chromium and chromium-driver; .ci/run installs them)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions", f"--window-size={width},{height}",
                 "--force-device-scale-factor=1", "--lang=en-US"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    try:
        return webdriver.Chrome(options=opts, service=Service(driver_bin))
    except Exception as e:  # noqa: BLE001 - a browser that cannot start is a missing component, said with its reason
        skip_unless_available("chromium", f"headless Chromium could not start: {str(e).splitlines()[0]}")


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
          layer_sizes=None, threads=1, metadata=None, latency_ci=None, processes=None, energy_ci=None, f1_ci=None,
          unstable=None, band=None, energy_band=None):
    """One valid results entry with a known latency (one sample, or one per process), energy, build accuracy
    and, where given, their intervals; ``band``/``energy_band``: a twin's (low, central, high) band in seconds
    and joules."""
    e = {"model": {"name": name, "sha256": "cd" * 32,
                   "size": {"params": params, "macs": macs, "weight_bytes": macs, "bias_bytes": params - macs,
                            **({"layer_sizes": layer_sizes} if layer_sizes is not None else {})},
                   "metrics": {"int8": {"macro_f1": f1, **({"macro_f1_ci95": list(f1_ci)} if f1_ci else {})},
                               "float": {"macro_f1": f1 if f1_float is None else f1_float},
                               "test_windows": windows}},
         "device": {"name": device, "kind": kind, "key": device, "threads": threads, "metadata": metadata or {}},
         "kind": kind, "provenance": kind, "status": "ok"}
    samples = list(processes) if processes else [latency]
    e["latency"] = {"unit": "s", "samples": samples,
                    "stats": {"n": len(samples), "min": min(samples), "max": max(samples),
                              "mean": sum(samples) / len(samples), "median": latency}}
    if processes:
        e["latency"]["processes"] = [{"process": i, "median": v, "rounds": 1} for i, v in enumerate(processes)]
    if latency_ci:
        e["latency"]["ci95"] = list(latency_ci)
    if unstable:
        e["latency"]["unstable"] = unstable
    if band:
        e["latency"]["band"] = dict(zip(("low", "central", "high"), band))
    if energy is not None:
        e["energy"] = {"unit": "J", "total_j": energy, "provenance": kind,
                       **({"ci95": list(energy_ci)} if energy_ci else {}),
                       **({"band": dict(zip(("low", "central", "high"), energy_band))} if energy_band else {})}
    return e


def run(entries, dataset="collar", synthetic=None, sweep=None, real_data=None):
    """A results file's data around ``entries``."""
    ds = {"name": dataset, **({"synthetic": synthetic} if synthetic is not None else {})}
    data = {"schema": RESULTS_SCHEMA, "created_utc": "x", "artifacts": {"dataset": ds}, "entries": entries}
    if sweep:
        data["run"] = {"sweep": sweep}
    if real_data:
        data["real_data"] = real_data
    return data


def load(path) -> dict:
    """A results file as the JSON a user reads: loaded, migrated and checked by edgecheck, then as plain data."""
    from edgecheck.results import load as load_run

    return load_run(path).to_json()


def run_main(*argv: str) -> tuple[int, str, str]:
    """``edgecheck ARGV`` in this process (``edgecheck.cli.main``): (exit status, stdout, stderr)."""
    import contextlib
    import io

    from edgecheck.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse's usage errors and --help
            code = e.code if isinstance(e.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, err: str, *, expected_code: int = 2, contains: str | None = None) -> None:
    """A bad input's whole answer: exit ``expected_code`` and one line of stderr that says what is wrong, with no
    traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == expected_code, f"exit {code}, stderr: {err[-2000:]}"
    assert "Traceback" not in err, err[-3000:]
    assert len(lines) == 1 and "error: " in lines[0], f"not one error line: {err[-2000:]}"
    if contains is not None:
        assert contains in lines[0], lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and its sha256: what a test compares to show no file changed."""
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def ab_on_cpu(base_tflite, head_tflite, sysfs_root, cap: int = 2, first: int = 2):
    """``edgecheck ab``'s session (abrun.ab_session) of two .tflite files on this host's CPU, with tiny timings and
    the worker's sysfs read under ``sysfs_root`` (the guards' and runtime tests' fake board): (got, sequences)."""
    from edgecheck.abrun import ab_session
    from edgecheck.measure import ab
    from edgecheck.measure.devices import select
    from edgecheck.measure.kinds.cpu import KIND as CPU
    from edgecheck.measure.recorder import MeasureContext, TimingOptions

    pairs = ab.pair(ab.models_of(base_tflite, "BASE"), ab.models_of(head_tflite, "HEAD"))
    timing = TimingOptions(processes=cap, rounds=2, min_processes=cap, round_seconds=0.002, calibration_seconds=0.002,
                           max_extra_processes=0, adaptive_budget=0.0)
    with MeasureContext(timing, sysfs_root=str(sysfs_root)) as ctx:
        return ab_session(pairs, select([CPU.name]).devices[0], ctx, cap, first=first)


def workflow_checker():
    """ci/workflow_check.py, imported as the workflow tests use it."""
    import sys

    sys.path.insert(0, str(REPO / "ci"))
    try:
        import workflow_check
    finally:
        sys.path.pop(0)
    return workflow_check
