"""Measuring a model on a device of this machine: an interpreter in this process.

Timing is pytest-benchmark's (``benchmark.pedantic``): warm-up rounds, then at
least ``rounds`` rounds of ``iterations`` back-to-back invokes each, enough that
the timer's overhead is negligible. The per-round times (seconds per invoke)
are the raw samples kept in the results.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgecheck.artifacts import ModelEntry
from edgecheck.environment import cpu_model, cpufreq, machine
from edgecheck.interpreter import InterpreterPackage, find_package, make_interpreter, predict, quantize_input
from edgecheck.measure.device import MEASURED, Device, DeviceKind
from edgecheck.measure.timing import iterations_for, seconds_per_invoke
from edgecheck.results import Entry

if TYPE_CHECKING:
    from edgecheck.measure.recorder import MeasureContext


@dataclass
class LocalRunner:
    """An interpreter in this process, with its input set to a real test window."""

    interp: object
    load_seconds: float
    first_invoke_seconds: float = float("nan")

    @classmethod
    def open(cls, path: Path, threads: int, package: InterpreterPackage, delegates: list | None = None) -> LocalRunner:
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


def in_process_timing(runner: LocalRunner, ctx: MeasureContext) -> dict | None:
    """pytest-benchmark's own view: rounds timed in this (long-lived) process by pytest-benchmark's runner and
    timer, each round a loop that calls the bound ``invoke`` with no argument unpacking. Kept beside the
    process-level figures; the verdicts use those."""
    if ctx.timer is None:
        return None
    t = ctx.timing
    n = iterations_for(seconds_per_invoke(runner.invoke, t.calibration_seconds), t.round_seconds)
    invoke, loop = runner.invoke, range(n)

    def one_round() -> None:
        for _ in loop:
            invoke()

    samples = ctx.timer(one_round, rounds=t.in_process_rounds, invokes_per_call=n, warmup_rounds=1)
    if not samples:
        return None  # --benchmark-disable: ran once, nothing timed
    return {"samples": samples, "iterations_per_round": n, "timer": "pytest-benchmark (in the pytest process)"}


@dataclass
class LocalDevice(Device):
    """A device of this machine (its CPU, an accelerator on it), timed by the worker in fresh processes here,
    and by pytest-benchmark in this process."""

    @property
    def provenance(self) -> str:
        return self.impl.provenance(self)

    @property
    def exact_cpu_kernels(self) -> bool:
        return self.impl.exact_cpu_kernels

    def open(self, model: ModelEntry) -> LocalRunner:
        """An interpreter for ``model`` on this device, with its load time: the kind's own way (an accelerator's
        delegate), else the CPU interpreter package found, with the device's threads."""
        runner = self.impl.open(self, model)
        if runner is None:
            runner = LocalRunner.open(self.model_file(model), self.threads, self.metadata["_package"])
        return runner

    def transport(self):
        from edgecheck.measure.transport import LocalTransport

        return LocalTransport()

    def measure(self, model: ModelEntry, ctx: MeasureContext) -> Entry:
        return measure_local(self, model, ctx)


def host_cpu_device(kind: DeviceKind, threads: int) -> LocalDevice:
    """This host's CPU as a measured device of ``kind``: the interpreter package found, and the CPU's facts."""
    pkg = find_package()
    meta = {
        "cpu_model": cpu_model(),
        "cores": machine().get("cpu_count"),
        **cpufreq(),
        "interpreter": {"module": pkg.module, "distribution": pkg.distribution, "version": pkg.version},
        "_package": pkg,
    }
    return LocalDevice(name=kind.name, kind=MEASURED, threads=threads, metadata=meta, impl=kind)


def measure_local(device: LocalDevice, model: ModelEntry, ctx: MeasureContext) -> Entry:
    """The worker's process-level timing, then in this process pytest-benchmark's rounds and the energy step."""
    from edgecheck.measure import sweep

    entry = sweep.entry(device, model, ctx)
    needs_runner = ctx.timer is not None or ctx.energy is not None
    if needs_runner:
        runner = device.open(model)
        if model.test_set is not None and model.origin == "built":
            runner.set_input(model.test_set.features[0])
        else:
            runner.set_zero_input()
        runner.first_invoke()
        inproc = in_process_timing(runner, ctx)
        if inproc:
            entry.latency.in_process = inproc
        if ctx.energy is not None:
            entry.energy = ctx.energy_step(runner, device, entry.latency)
    return entry
