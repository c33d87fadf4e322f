"""One device's sweep: the worker's job, running it with a watchdog, and what its lines become.

The worker times every model in several fresh processes (``worker.py``); this
side turns the per-process rounds into a ``Latency`` with process-level
statistics: the pooled rounds and their summary, each process's median, the
interval of the median across processes, and why the figure is unstable when
it is (a robust CV across processes over the limit, throttling, rounds that
came out short).
"""
from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecheck.errors import EdgecheckError
from edgecheck.measure.transport import stop
from edgecheck.results import Instructions, Interval, Latency, Memory, ProcessTiming
from edgecheck.stats import median_ci, robust_cv
from edgecheck.textfmt import pct_over

EXIT_TIMEOUT_S = 30.0  # a worker that closed its output gets this long to exit before it is killed
UNSTABLE_PROCESS_CV = 0.10  # robust CV of the process medians above which a figure is too noisy to decide on


@dataclass
class ModelSweep:
    """What the worker said about one model: its timing lines (one per process), its memory line, and on a
    board with its own power sensor, its energy windows."""

    name: str
    timings: list[dict] = field(default_factory=list)
    model: dict | None = None
    errors: list[str] = field(default_factory=list)
    energy: list[dict] | None = None
    count: dict | None = None  # the worker's instruction count (or why it failed)


@dataclass
class SweepResult:
    models: dict[str, ModelSweep]
    host: dict = field(default_factory=dict)
    interpreter: str | None = None
    processes: int = 0
    seconds: float = 0.0
    started: float = 0.0  # wall clock (unix time) of the sweep's start and end: parallel boards overlap
    finished: float = 0.0
    idle: dict | None = None  # the board's idle power window (board-side energy probe)
    sensor: dict | None = None
    recoveries: list[dict] = field(default_factory=list)  # hangs, and the power cycles after them
    count_unavailable: str | None = None  # why no instructions were counted on this host (no Valgrind)

    def of(self, name: str) -> ModelSweep:
        return self.models.get(name) or ModelSweep(name, errors=["the worker never measured it"])


class Cancelled(Exception):
    """Another part of the session stopped this sweep (an interrupt, or another board's failure)."""


def job(device, models: list[dict], timing, timer: str = "time.perf_counter", memory: bool = True,
        energy: dict | None = None) -> dict:
    """The worker's job for ``device``: every value explicit (the worker has no defaults of its own)."""
    return {"protocol": 3, "device": device.name, "accelerator": device.impl.accelerator,
            "cpu_part": list(device.impl.cpu_part) if device.impl.cpu_part else None, "threads": device.threads,
            "tpu_device": device.metadata.get("selector"), "timer": timer,
            "processes": timing.processes, "rounds": timing.rounds, "warmup_rounds": timing.warmup_rounds,
            "round_seconds": timing.round_seconds, "calibration_seconds": timing.calibration_seconds,
            "seed": timing.seed, "memory": memory,
            "adaptive": {"max_extra_processes": timing.max_extra_processes, "target_ci": timing.target_ci,
                         "budget_fraction": timing.adaptive_budget,
                         # a timing without it (an older caller) keeps every process, as before the early stop
                         "min_processes": min(getattr(timing, "min_processes", timing.processes), timing.processes)},
            **({"energy": energy} if energy else {}),
            **({"count": count} if (count := getattr(timing, "count_job", None)) and not device.impl.accelerator
               else {}),
            "models": models}


@dataclass
class _Attempt:
    """One worker process's run: what it said, and how it ended."""

    result: SweepResult
    timed_out: bool = False
    hung: str | None = None  # the model a process had started and not finished when the worker went silent
    returncode: int | None = None
    stderr: str = ""
    fatal: str | None = None


def run(transport, job_: dict, files: dict[str, list[Path]], progress=None, idle_timeout_s: float = 600.0,
        sysfs_root: str | None = None, recover=None, cancel=None) -> SweepResult:
    """Run ``job_`` through ``transport``; ``files`` maps model name -> [model file, inputs file or None].

    A worker silent for ``idle_timeout_s`` is killed. Without ``recover`` (a plain ssh host, this machine)
    the models it had not reported fail with that reason, and every line already received is kept. With
    ``recover`` (a farm board with a power driver: returns a note and the transport to use afterwards, or
    None when it cannot recover the board), the board is power-cycled and the sweep run again: the model
    it hung on is retried once; when it hangs again, it fails with a clear message, the board is cycled
    again and the other models are measured. Every wait is bounded by ``idle_timeout_s``; ``cancel`` (a
    threading.Event) stops the sweep from another thread."""
    names = [m["name"] for m in job_["models"]]
    started, t0 = time.time(), time.perf_counter()
    silent = f"stopped answering for {idle_timeout_s:g} s (--worker-timeout)"
    hangs: dict[str | None, int] = {}
    failed: dict[str, str] = {}
    recoveries: list[dict] = []
    unfinished = None  # why the models the last attempt did not reach have no figures, when it did not end well
    while True:
        todo = [m for m in job_["models"] if m["name"] not in failed]
        att = _attempt(transport, {**job_, "models": todo}, files, progress, idle_timeout_s, sysfs_root, cancel)
        if att.fatal:
            raise EdgecheckError(f"{job_['device']} at {transport.where}: {att.fatal}")
        if not att.timed_out:
            if att.returncode not in (0, None):
                unfinished = _death(att.returncode, att.stderr, transport)
            break
        if recover is None:
            unfinished = silent
            break
        hangs[att.hung] = hangs.get(att.hung, 0) + 1
        what = f"on {att.hung}" if att.hung else "before it started a model"
        if progress:
            progress(f"edgecheck: the worker at {transport.where} {silent} {what}")
        got = recover()
        recoveries.append({"hung_on": att.hung, "after_s": idle_timeout_s, "action": got[0] if got else None})
        if got is None:
            unfinished = (f"{silent}; the board has no power driver (--lg-power-cycle), so it was neither "
                          "power-cycled nor retried")
            break
        note, transport = got
        if progress:
            progress(f"edgecheck: {note}; measuring again")
        if hangs[att.hung] >= 2:
            if att.hung is None:
                unfinished = f"{silent} before starting a model, twice, even after a power cycle ({note})"
                break
            failed[att.hung] = (f"the measurement worker at {transport.where} {silent} on this model twice; the "
                                f"board was power-cycled after each hang ({note}) and the model retried once")
            if len(failed) == len(names):
                break
    result = att.result
    for name in names:
        if name in failed:
            result.models[name] = ModelSweep(name, errors=[failed[name]])
        elif name not in result.models:
            result.models[name] = ModelSweep(name)
        elif unfinished and not result.models[name].timings:
            result.models[name].errors.append(f"the measurement worker at {transport.where} {unfinished}")
    result.recoveries = recoveries
    result.seconds, result.started, result.finished = time.perf_counter() - t0, started, time.time()
    return result


def _attempt(transport, job_: dict, files: dict, progress, idle_timeout_s: float, sysfs_root: str | None,
             cancel) -> _Attempt:
    models = []
    for m in job_["models"]:
        path, inputs = files[m["name"]]
        models.append({**m, "path": transport.put(path), "inputs": transport.put(inputs) if inputs else None})
    worker = transport.worker()
    body = json.dumps({**job_, "models": models, **({"sysfs_root": sysfs_root} if sysfs_root else {})}).encode()
    att = _Attempt(SweepResult({m["name"]: ModelSweep(m["name"]) for m in models}))
    proc = transport.spawn(worker)
    out_fd, err_fd, in_fd = proc.stdout.fileno(), proc.stderr.fileno(), proc.stdin.fileno()
    os.set_blocking(in_fd, False)
    buf, err, current = b"", bytearray(), None
    readers = {out_fd, err_fd}
    last = time.monotonic()
    try:
        while readers:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"{transport.where}: stopped")
            if out_fd in readers:  # silent for idle_timeout_s: hung
                wait = idle_timeout_s - (time.monotonic() - last)
            else:  # its output closed: it gets EXIT_TIMEOUT_S to close stderr and exit, then it is killed
                wait = min(idle_timeout_s, EXIT_TIMEOUT_S) - (time.monotonic() - last)
            if wait <= 0:
                att.timed_out = out_fd in readers
                break
            writers = [in_fd] if body else []
            ready, writable, _ = select.select(list(readers), writers, [], min(wait, 0.25))
            if writable:
                try:
                    body = body[os.write(in_fd, body[:65536]):]
                except BlockingIOError:
                    pass
                except BrokenPipeError:  # the worker died before reading its job: its exit says why
                    body = b""
                if not body:
                    proc.stdin.close()
            for fd in ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    readers.discard(fd)
                    if fd == out_fd:
                        last = time.monotonic()
                    continue
                if fd == err_fd:
                    err = (err + chunk)[-65536:]  # the tail says why a worker died
                    continue
                last = time.monotonic()
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    try:
                        msg = json.loads(raw.decode(errors="replace"))
                    except ValueError:
                        continue
                    if not isinstance(msg, dict):
                        continue  # not a worker message (a board's login banner, say)
                    if msg.get("kind") == "start":
                        current = msg.get("name")
                    elif msg.get("kind") in ("timing", "model", "error", "energy") and msg.get("name") == current:
                        current = None
                    att.fatal = _take(att.result, msg, progress) or att.fatal
    finally:
        if att.timed_out or readers or (cancel is not None and cancel.is_set()):
            stop(proc)  # silent, or stopped from outside: kill it (and a local worker's children)
        else:
            try:
                proc.wait(timeout=min(idle_timeout_s, EXIT_TIMEOUT_S))
            except subprocess.TimeoutExpired:  # closed its output but never exited: bounded, like every wait
                att.timed_out = True
                stop(proc)
        if not proc.stdin.closed:
            proc.stdin.close()
        proc.stdout.close()
        proc.stderr.close()
    att.hung = current if att.timed_out else None
    att.returncode, att.stderr = proc.returncode, bytes(err).decode(errors="replace")
    return att


def _drain(fd: int | None, within_s: float = 2.0) -> bytes:
    """What is left on a pipe, read for at most ``within_s`` (a grandchild may hold it open)."""
    out = b""
    deadline = time.monotonic() + within_s
    while fd is not None and (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        chunk = os.read(fd, 1 << 16) if ready else b""
        if not chunk:
            break
        out = (out + chunk)[-(1 << 16):]
    return out


def _take(result: SweepResult, msg: dict, progress) -> str | None:
    kind = msg.get("kind")
    if kind == "fatal":
        return msg.get("error", "fatal error")
    if kind == "done":
        result.host, result.interpreter, result.processes = msg.get("host", {}), msg.get("interpreter"), \
            msg.get("processes", 0)
        return None
    if kind == "idle":
        result.idle, result.sensor = msg, msg.get("sensor")
        return None
    if kind == "count_unavailable":
        result.count_unavailable = str(msg.get("reason") or "instruction counting unavailable")
        return None
    ms = result.models.get(msg.get("name"))
    if ms is None:
        return None
    if kind == "timing":
        if msg.get("repeated"):  # measured once more after a hot or throttled attempt: this line replaces that one
            ms.timings = [t for t in ms.timings if t.get("process") != msg.get("process")]
        ms.timings.append(msg)
        if progress:
            progress(msg)
    elif kind == "model":
        ms.model = msg
    elif kind == "energy":
        ms.energy = msg.get("windows")
    elif kind == "count":
        ms.count = msg
    elif kind == "error":
        ms.errors.append(f"process {msg.get('process')}: {msg.get('error')}")
    return None


def _death(code: int | None, stderr: str, transport) -> str:
    lines = [x for x in stderr.strip().splitlines() if x and not x.startswith("INFO:")]
    tail = " | ".join(lines[-3:])
    if code is not None and code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    elif getattr(transport, "host", None) and code == 255:
        how = "lost its ssh connection"
    else:
        how = f"exited with status {code}"
    return how + (f" ({tail})" if tail else "")


def latency(ms: ModelSweep, timer_label: str, warmup_rounds: int) -> Latency:
    """Process-level latency from a model's timing lines; raises when no process measured it."""
    if not ms.timings:
        raise EdgecheckError("; ".join(ms.errors) or "no process measured this model")
    timings = sorted(ms.timings, key=lambda m: m["process"])
    samples = [float(s) for m in timings for s in m["samples"]]
    bad = [s for s in samples if not (math.isfinite(s) and s > 0)]
    if bad:
        raise EdgecheckError(f"the worker returned {len(bad)} non-positive or non-finite samples")
    medians = [float(np.median(m["samples"])) for m in timings]
    lo, hi = median_ci(medians, 0.95)
    cv = robust_cv(medians)
    unstable = []
    if cv > UNSTABLE_PROCESS_CV:
        unstable.append(f"robust CV across processes {pct_over(cv, UNSTABLE_PROCESS_CV)}")
    throttled = sorted({(f"process {m['process']} hot or throttled again when measured once more: {m['throttle']}"
                         if m.get("repeated") else m["throttle"]) for m in timings if m.get("throttle")})
    unstable += throttled
    lat = Latency.from_samples(samples, statistic="seconds per invoke, one sample per round, rounds of "
                                                  f"{len(timings)} fresh processes",
                               rounds=len(samples), iterations_per_round=int(np.median([m["iterations"]
                                                                                        for m in timings])),
                               warmup_rounds=warmup_rounds, timer=timer_label)
    lat.processes = [ProcessTiming(process=m["process"], position=m["position"], median=med,
                                   rounds=len(m["samples"]), iterations=m["iterations"],
                                   short_rounds=m.get("short_rounds", 0), repeated=m.get("repeated"),
                                   unstable=m.get("throttle"))
                     for m, med in zip(timings, medians)]
    lat.process_median, lat.ci95, lat.process_cv = float(np.median(medians)), Interval(lo, hi), cv
    lat.unstable = "; ".join(unstable) if unstable else None
    lat.errors = list(ms.errors) if ms.errors else None
    return lat


def instructions(ms: ModelSweep, result: SweepResult, device) -> Instructions:
    """The model's instruction count from the worker's ``count`` line, or why there is none (not-testable)."""
    if device.impl.accelerator:
        return Instructions(unavailable=f"{device.name} runs the model on an accelerator: instruction counts are of "
                                        "the CPU path only")
    if result.count_unavailable:
        return Instructions(unavailable=result.count_unavailable)
    c = ms.count
    if c is None:
        return Instructions(unavailable="the worker did not count this model (an older worker, or it stopped first)")
    if c.get("error"):
        return Instructions(unavailable=str(c["error"]))
    n = int(c["invokes"])
    blocks = [float(b) / n for b in c["instructions"]]
    ll = [float(x) / n for x in c["ll_misses"]] if c.get("ll_misses") else None
    where = f" on {device.remote}" if device.remote else ""
    return Instructions(
        per_invoke=float(np.mean(blocks)), blocks=blocks, invokes=n, warmup_invokes=c.get("warmup_invokes"),
        ll_misses_per_invoke=float(np.mean(ll)) if ll else None, tool=c.get("tool"), valgrind=c.get("valgrind"),
        kernel_path=c.get("kernel_path"), xnnpack=c.get("xnnpack"), seconds=c.get("seconds"),
        provenance=f"measured{where} by {c.get('valgrind')} {c.get('tool')} (instructions retired inside "
                   f"{c.get('collect')}, {len(blocks)} blocks of {n} invokes after {c.get('warmup_invokes')} "
                   f"warm-up; {'with' if c.get('cache_sim') else 'no'} cache simulation); kernel path: "
                   f"{c.get('kernel_path')}")


def entry(device, model, ctx):
    """The results entry of ``model`` on ``device`` from the device's sweep: latency across processes, and
    from the model's own fresh process its load time, first invoke, peak memory and accuracy."""
    from edgecheck.metrics import agreement, scores_with_ci
    from edgecheck.results import OnDevice

    result = ctx.sweep(device, model)
    ms = result.of(model.name)
    where = "edgecheck worker" + (f" on {device.remote}" if device.remote else ", fresh local processes")
    lat = latency(ms, f"{ctx.timer_name} ({where})", ctx.timing.warmup_rounds)
    e = device.new_entry(model, latency=lat,
                         worker={"host": result.host, "interpreter": result.interpreter,
                                 "processes": len(lat.processes), "sweep_seconds": result.seconds,
                                 "sweep_started": result.started, "sweep_finished": result.finished,
                                 **({"recoveries": result.recoveries} if result.recoveries else {})})
    if getattr(ctx.timing, "count_instructions", False):
        e.instructions = instructions(ms, result, device)
    m = ms.model or {}
    e.load_seconds, e.first_invoke_seconds = m.get("load_seconds"), m.get("first_invoke_seconds")
    e.input = m.get("input")
    if m.get("peak_rss_bytes"):
        e.peak_rss_bytes = int(m["peak_rss_bytes"])
        e.memory = Memory(peak_rss_bytes=int(m["peak_rss_bytes"]),
                          baseline_rss_bytes=int(m.get("baseline_rss_bytes") or 0),
                          model_rss_bytes=int(m["peak_rss_bytes"]) - int(m.get("baseline_rss_bytes") or 0),
                          measured="peak RSS of a fresh process that loads and runs only this model (baseline: "
                                   "the same process before loading it)")
    preds = m.get("predictions")
    if preds is not None and model.test_set is not None:
        ts = model.test_set
        y = ts.labels[: len(preds)]
        p = np.asarray(preds)
        e.on_device = OnDevice(**scores_with_ci(y, p, ts.n_classes or int(y.max()) + 1), windows=int(y.size))
        if model.build_predictions is not None:
            e.on_device.agreement_with_build = agreement(p, model.build_predictions[: y.size])
    return e
