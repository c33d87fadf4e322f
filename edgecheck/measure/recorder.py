"""The recorder: has each device measure a model, adds the energy step, and records the entry.

A failure is recorded as a failed entry (the error kept) and re-raised, so one
model's failure never loses what was measured before it; every entry is
written to the results file as soon as it is measured.

Boards (``@ssh://`` hosts and labgrid places) measure in parallel: when the
first model of a remote device is measured, every planned remote device's
sweep starts, one thread per board (devices of one board one after another),
each thread pumping its own worker's lines. Whatever touches labgrid (a power
cycle) runs on this, the main, thread: labgrid's client session is not shared
between threads.
"""
from __future__ import annotations

import queue
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path

from edgecheck.artifacts import ModelEntry
from edgecheck.config import DEFAULTS
from edgecheck.errors import EdgecheckError
from edgecheck.measure.device import Device
from edgecheck.measure.settings import EnergyOptions, TimingOptions
from edgecheck.results import BENCHMARK_ENTRY, Energy, Entry, Latency, ResultsFile

_SAY = threading.Lock()  # progress lines from several boards' threads, one at a time
_FILES = threading.Lock()


def _call(fn):
    return fn()


def _stopped():
    from edgecheck.measure.sweep import Cancelled

    return Cancelled("the session is stopping")


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
    devices: dict = field(default_factory=dict)  # device key -> the planned device
    sweeps: dict = field(default_factory=dict)  # device key -> SweepResult (or the error), one job per device
    transports: dict = field(default_factory=dict)  # device key -> LocalTransport or SshTransport
    progress: Callable[[str], None] | None = None
    idle_timeout_s: float = DEFAULTS.worker_timeout_seconds
    sysfs_root: str | None = None  # tests: a fake /sys for the worker's throttling checks
    workdir: Path | None = None  # the session's scratch folder (test windows written for the worker)

    def energy_step(self, runner, device: Device, latency: Latency | None) -> Energy:
        from edgecheck.measure.energy import measure_energy

        return measure_energy(runner, device, latency, self.energy, self.idle)

    def sweep(self, device: Device, model: ModelEntry):
        """The worker's sweep of every planned model of ``device``, run once, when its first model is measured;
        a remote device's first model starts every planned board's sweep, in parallel."""
        first = device.key not in self.sweeps
        if first:
            if device.remote:
                self._sweep_boards(device, model)
            else:
                self.sweeps[device.key] = self._sweep_one(device, self._models(device, model))
        got = self.sweeps[device.key]
        if isinstance(got, BaseException):  # a board that never answered is not waited for again, model after model
            raise EdgecheckError(str(got) if first else f"{got} (not tried again for {model.name})")
        return got

    def _models(self, device: Device, model: ModelEntry | None) -> list[ModelEntry]:
        models = list(self.plan.get(device.key) or [])
        if model is not None and model.key not in {m.key for m in models}:
            models.append(model)
        return models

    def run_job(self, device: Device, models: list[dict], files: dict, *, memory: bool = True,
                energy: dict | None = None, recover=None, cancel=None, progress=None):
        """One worker job on ``device`` with this context's timing, clock and idle timeout. Its transport is
        kept here, so an interrupt aborts it and ``close`` closes it: the session's sweeps and ``edgecheck ab``
        open and close workers one way."""
        from edgecheck.measure import sweep as sw

        transport = self.transports[device.key] = device.transport()
        return sw.run(transport, sw.job(device, models, self.timing, self.timer_name, memory=memory, energy=energy),
                      files, idle_timeout_s=self.idle_timeout_s, sysfs_root=self.sysfs_root, recover=recover,
                      cancel=cancel, progress=progress)

    def _sweep_one(self, device: Device, models: list[ModelEntry], cancel=None, on_main=None):
        files = {m.name: [device.model_file(m), self._inputs(m)] for m in models}
        t = self.timing
        say = self._say
        plural = "s" if len(models) != 1 else ""
        stop = (f"; a model stops after {t.min_processes} once its interval is within {t.target_ci:.0%}"
                if t.min_processes < t.processes else "")
        say(f"edgecheck: {device.label}: timing {len(models)} model{plural} in up to {t.processes} fresh processes "
            f"of {t.rounds} rounds each{stop} (adaptively up to {t.max_extra_processes} more where it stays wider "
            "and more could bring it within)")
        recover = None
        if getattr(device, "recover", None) is not None:
            def recover():
                got = (on_main or _call)(device.recover)
                if got is not None:
                    self.transports[device.key] = got[1]
                return got
        energy = self.energy.on_board if (self.energy is not None and device.remote) else None
        result = self.run_job(device, [{"name": m.name} for m in models], files, energy=energy, recover=recover,
                              cancel=cancel, progress=say if device.remote else None)
        say(f"edgecheck: {device.label}: {result.processes} processes in {result.seconds:.1f} s")
        return result

    def _say(self, line) -> None:
        if self.progress and isinstance(line, str):
            with _SAY:
                self.progress(line)

    def _sweep_boards(self, device: Device, model: ModelEntry) -> None:
        """Every planned remote device not swept yet, one thread per board; labgrid calls come back here."""
        boards: dict[str, list[Device]] = {}
        for d in [device, *self.devices.values()]:
            if d.remote and d.key not in self.sweeps and d.key not in {x.key for x in boards.get(d.board, [])}:
                boards.setdefault(d.board, []).append(d)
        if len(boards) == 1 and len(boards[device.board]) == 1:  # one board: no thread needed
            try:
                self.sweeps[device.key] = self._sweep_one(device, self._models(device, model))
            except EdgecheckError as e:
                self.sweeps[device.key] = e
            return
        if self.progress:
            self.progress(f"edgecheck: measuring {len(boards)} boards in parallel: {', '.join(sorted(boards))}")
        calls: queue.Queue = queue.Queue()
        cancel = threading.Event()

        def on_main(fn):
            fut: Future = Future()
            calls.put((fn, fut))
            while True:
                if cancel.is_set():
                    raise _stopped()
                try:
                    return fut.result(timeout=0.25)
                except FutureTimeout:
                    continue

        def board_thread(devices: list[Device]) -> dict:
            out = {}
            for d in devices:
                try:
                    out[d.key] = self._sweep_one(d, self._models(d, model if d is device else None), cancel, on_main)
                except EdgecheckError as e:  # one board's failure is that board's: the others go on
                    out[d.key] = e
                except Exception as e:  # noqa: BLE001 - an unexpected error, kept as that board's failure
                    out[d.key] = EdgecheckError(f"{type(e).__name__}: {e}")
            return out

        pool = ThreadPoolExecutor(max_workers=len(boards), thread_name_prefix="edgecheck-board")
        futures = [pool.submit(board_thread, devs) for devs in boards.values()]
        try:
            pending = set(futures)
            while pending:
                _, pending = wait_futures(pending, timeout=0.1)
                while not calls.empty():
                    fn, fut = calls.get()
                    try:
                        fut.set_result(fn())
                    except BaseException as e:  # noqa: BLE001 - handed to the board's thread
                        fut.set_exception(e)
        except BaseException:
            cancel.set()  # an interrupt: stop every board's worker, then let the lease be released
            for t in self.transports.values():
                t.abort()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        for f in futures:
            self.sweeps.update(f.result())

    def _inputs(self, model: ModelEntry) -> Path | None:
        """The model's test windows as a small .npz the worker reads (built models only)."""
        if model.test_set is None or model.origin != "built":
            return None
        import tempfile

        import numpy as np

        with _FILES:  # boards' threads share these files: each is written once, whole, before anyone reads it
            if self.workdir is None:
                self.workdir = Path(tempfile.mkdtemp(prefix="edgecheck-session-"))
            path = self.workdir / f"test-windows-{id(model.test_set):x}.npz"
            if not path.exists():
                np.savez(path, F_test=model.test_set.features)
        return path

    def close(self) -> None:
        for t in self.transports.values():
            t.close()
        self.transports.clear()
        if self.workdir is not None:
            import shutil

            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> MeasureContext:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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

    def close(self) -> None:
        """The workers and the scratch folder first, then the results file's lock: whatever happened."""
        try:
            self.ctx.close()
        finally:
            self.results.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_recorder(results_path: str | Path, header: dict, timing: TimingOptions, energy: EnergyOptions | None = None,
                   *, resume: bool = False, plan: dict | None = None, progress: Callable[[str], None] | None = None,
                   timer_name: str = "time.perf_counter",
                   idle_timeout_s: float = DEFAULTS.worker_timeout_seconds,
                   models: set[str] | None = None) -> Recorder:
    """The results file started (or resumed) with ``header``, the measuring context, and the recorder joining
    them: the one set-up of the pytest session and ``edgecheck calibrate``. ``plan`` is device key -> models,
    when it is known up front (the session fills it later, after -k); ``models`` the sweep's models
    (``results.model_key``): --resume keeps no entry of another."""
    results = ResultsFile.start(results_path, header, resume=resume, models=models)
    if results.left_out and progress is not None:
        progress(f"edgecheck: --resume: left out {results.left_out} entries of {results_path} whose model is not "
                 "in this sweep")
    ctx = MeasureContext(timing, energy, timer_name=timer_name, plan=dict(plan or {}), progress=progress,
                         idle_timeout_s=idle_timeout_s)
    return Recorder(results, ctx)


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
    extra[BENCHMARK_ENTRY] = entry.to_json()  # pytest-benchmark's storage then serves as --baseline history
    return extra
