"""The recorder: has each device measure a model, adds the energy step, and records the entry.

A failure is recorded as a failed entry (the error kept) and re-raised, so one
model's failure never loses what was measured before it; every entry is
written to the results file as soon as it is measured.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgecheck.artifacts import ModelEntry
from edgecheck.config import DEFAULTS
from edgecheck.errors import EdgecheckError
from edgecheck.measure.devices import Device
from edgecheck.results import Energy, Entry, Latency, ResultsFile


@dataclass(frozen=True)
class TimingOptions:
    processes: int = DEFAULTS.processes
    rounds: int = DEFAULTS.rounds  # per process
    warmup_rounds: int = DEFAULTS.warmup_rounds
    round_seconds: float = DEFAULTS.round_seconds
    calibration_seconds: float = DEFAULTS.calibration_seconds
    max_extra_processes: int = DEFAULTS.max_extra_processes
    target_ci: float = DEFAULTS.target_ci
    adaptive_budget: float = DEFAULTS.adaptive_budget
    in_process_rounds: int = DEFAULTS.in_process_rounds
    seed: int = 0


@dataclass(frozen=True)
class EnergyOptions:
    probe: object  # a probe from probes.open_probe, or "model"
    window_seconds: float = DEFAULTS.energy_window_seconds
    windows: int = DEFAULTS.energy_windows
    idle_seconds: float = DEFAULTS.idle_seconds


# times ``fn`` for ``rounds`` rounds of ``iterations`` calls; returns seconds per call of each round (or None)
Timer = Callable[..., "list[float] | None"]


@dataclass
class MeasureContext:
    """What a device needs to measure one model: options, the timer, and state shared across models."""

    timing: TimingOptions
    energy: EnergyOptions | None = None
    timer: Timer | None = None  # pytest-benchmark's timing of a local invoke
    timer_name: str = "time.perf_counter"  # the clock the worker times with (pytest-benchmark's --benchmark-timer)
    idle: dict = field(default_factory=dict)  # device key -> idle measurement, taken before its first model
    plan: dict = field(default_factory=dict)  # device key -> the models this session measures on it
    sweeps: dict = field(default_factory=dict)  # device key -> SweepResult, one worker job per device
    sweep_errors: dict = field(default_factory=dict)  # device key -> why its sweep failed (not retried)
    transports: dict = field(default_factory=dict)  # device key -> LocalTransport or SshTransport
    progress: Callable[[str], None] | None = None
    idle_timeout_s: float = DEFAULTS.worker_timeout_seconds
    sysfs_root: str | None = None  # tests: a fake /sys for the worker's throttling checks
    workdir: Path | None = None  # the session's scratch folder (test windows written for the worker)

    def energy_step(self, runner, device: Device, latency: Latency | None) -> Energy:
        from edgecheck.measure.energy import measure_energy

        return measure_energy(runner, device, latency, self.energy, self.idle)

    def sweep(self, device: Device, model: ModelEntry):
        """The worker's sweep of every planned model of ``device``, run once, when its first model is measured."""
        from edgecheck.measure import sweep as sw

        failed = self.sweep_errors.get(device.key)
        if failed is not None:  # a board that never answered is not waited for again, model after model
            raise EdgecheckError(f"{failed} (not tried again for {model.name})")
        if device.key not in self.sweeps:
            models = self.plan.get(device.key) or [model]
            if model.key not in {m.key for m in models}:
                models = [*models, model]
            transport = self.transports.setdefault(device.key, device.transport())
            files = {m.name: [device.model_file(m), self._inputs(m)] for m in models}
            t = self.timing
            if self.progress:
                self.progress(f"edgecheck: {device.label}: timing {len(models)} models in {t.processes} fresh "
                              f"processes of {t.rounds} rounds each (adaptively up to {t.max_extra_processes} more)")
            try:
                result = sw.run(transport, sw.job(device, [{"name": m.name} for m in models], t, self.timer_name),
                                files, idle_timeout_s=self.idle_timeout_s, sysfs_root=self.sysfs_root)
            except EdgecheckError as e:
                self.sweep_errors[device.key] = str(e)
                raise
            if self.progress:
                self.progress(f"edgecheck: {device.label}: {result.processes} processes in {result.seconds:.1f} s")
            self.sweeps[device.key] = result
        return self.sweeps[device.key]

    def _inputs(self, model: ModelEntry) -> Path | None:
        """The model's test windows as a small .npz the worker reads (built models only)."""
        if model.test_set is None or model.origin != "built":
            return None
        import tempfile

        import numpy as np

        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="edgecheck-session-"))
        path = self.workdir / f"test-windows-{id(model.test_set):x}.npz"
        if not path.exists():
            np.savez(path, F_test=model.test_set.features)
        return path

    def close(self) -> None:
        for t in self.transports.values():
            t.close()
        if self.workdir is not None:
            import shutil

            shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class Recorder:
    """Measures (model, device) pairs and appends each to the results file."""

    results: ResultsFile
    ctx: MeasureContext

    @property
    def timing(self) -> TimingOptions:
        return self.ctx.timing

    @property
    def energy(self) -> EnergyOptions | None:
        return self.ctx.energy

    def already_done(self, model: ModelEntry, device: Device) -> Entry | None:
        return self.results.done(f"{model.name}@{model.sha256[:12]}|{device.key}")

    def measure(self, model: ModelEntry, device: Device, timer: Timer | None = None) -> Entry:
        """Have ``device`` measure ``model``; record and return the entry (a failure is recorded, then raised)."""
        self.ctx.timer = timer
        try:
            entry = device.measure(model, self.ctx)
        except BaseException as e:
            failed = device.new_entry(model, status="failed", error=f"{type(e).__name__}: {e}",
                                      traceback=traceback.format_exc(limit=8))
            self.results.add(failed)
            raise
        finally:
            self.ctx.timer = None
        self.results.add(entry)
        return entry


def benchmark_extra_info(model: ModelEntry, device: Device, entry: Entry) -> dict:
    """edgecheck's fields for pytest-benchmark's ``extra_info``."""
    extra = {"model": model.name, "device": device.name, "kind": device.kind, "provenance": device.provenance,
             **{k: model.size.get(k) for k in ("params", "macs", "weight_bytes")}}
    for prec in ("float", "int8"):
        for metric, v in (model.metrics.get(prec) or {}).items():
            extra[f"{prec}_{metric}"] = v
    if entry.energy is not None and entry.energy.total_j is not None:
        extra["energy_per_inference_j"] = entry.energy.total_j
        extra["energy_provenance"] = entry.energy.provenance
    if entry.on_device is not None:
        extra["device_int8_macro_f1"] = entry.on_device.macro_f1
        extra["device_agreement_with_build"] = entry.on_device.agreement_with_build
    return extra
