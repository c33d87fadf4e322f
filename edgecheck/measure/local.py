"""Measuring a model on a device of this machine: an interpreter in this process.

Timing is pytest-benchmark's (``benchmark.pedantic``): warm-up rounds, then at
least ``rounds`` rounds of ``iterations`` back-to-back invokes each, enough that
the timer's overhead is negligible. The per-round times (seconds per invoke)
are the raw samples kept in the results.
"""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgecheck.artifacts import ModelEntry
from edgecheck.environment import cpufreq
from edgecheck.interpreter import InterpreterPackage, make_interpreter, predict, quantize_input
from edgecheck.measure.timing import iterations_for, seconds_per_invoke
from edgecheck.metrics import agreement, scores
from edgecheck.results import Entry, Latency, OnDevice

if TYPE_CHECKING:
    from edgecheck.measure.devices import LocalDevice
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


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def accuracy_on(runner: LocalRunner, model: ModelEntry) -> OnDevice:
    """The model's accuracy as this device computes it on the run's test windows, and its agreement
    with the build's own int8 predictions."""
    ts = model.test_set
    pred = runner.predict(ts.features)
    out = OnDevice(**scores(ts.labels, pred, ts.n_classes or int(ts.labels.max()) + 1), windows=int(ts.labels.size))
    if model.build_predictions is not None:
        out.agreement_with_build = agreement(pred, model.build_predictions[: ts.labels.size])
    return out


def measure_local(device: LocalDevice, model: ModelEntry, ctx: MeasureContext) -> Entry:
    """Time ``model`` with pytest-benchmark, then the recorder's steps (accuracy, energy) on the same runner."""
    freq_before = cpufreq().get("frequency_mhz")
    runner = device.open(model)
    has_test_set = model.test_set is not None and model.origin == "built"
    if has_test_set:
        runner.set_input(model.test_set.features[0])
    else:
        runner.set_zero_input()
    runner.first_invoke()
    t = ctx.timing
    iterations = iterations_for(seconds_per_invoke(runner.invoke, t.calibration_seconds), t.round_seconds)
    samples = ctx.timer(runner.invoke, rounds=t.rounds, iterations=iterations, warmup_rounds=t.warmup_rounds)
    latency = None
    if samples:  # None under --benchmark-disable: ran once, nothing timed
        latency = Latency.from_samples(samples, statistic="seconds per invoke, one sample per round",
                                       iterations_per_round=iterations, warmup_rounds=t.warmup_rounds,
                                       timer="time.perf_counter (pytest-benchmark)")
    entry = device.new_entry(model, load_seconds=runner.load_seconds, first_invoke_seconds=runner.first_invoke_seconds,
                             input="first test window" if has_test_set else "zeros (no test data for this model)",
                             latency=latency)
    if has_test_set:
        entry.on_device = accuracy_on(runner, model)
    if ctx.energy is not None:
        entry.energy = ctx.energy_step(runner, device, latency)
    freq_after = cpufreq().get("frequency_mhz")
    entry.frequency_mhz = {"before": freq_before, "after": freq_after}
    if freq_before and freq_after and freq_after < 0.95 * freq_before:
        import warnings

        warnings.warn(f"{device.name}: CPU frequency dropped from {freq_before:g} to {freq_after:g} MHz while "
                      f"measuring {model.name} (thermal throttling?)", stacklevel=2)
    entry.peak_rss_bytes = peak_rss_bytes()
    return entry
