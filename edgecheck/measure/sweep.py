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
from edgecheck.results import Latency
from edgecheck.stats import median_ci, robust_cv

EXIT_TIMEOUT_S = 30.0  # a worker that closed its output gets this long to exit before it is killed
UNSTABLE_PROCESS_CV = 0.10  # robust CV of the process medians above which a figure is too noisy to decide on


@dataclass
class ModelSweep:
    """What the worker said about one model: its timing lines (one per process) and its memory line."""

    name: str
    timings: list[dict] = field(default_factory=list)
    model: dict | None = None
    errors: list[str] = field(default_factory=list)


@dataclass
class SweepResult:
    models: dict[str, ModelSweep]
    host: dict = field(default_factory=dict)
    interpreter: str | None = None
    processes: int = 0
    seconds: float = 0.0

    def of(self, name: str) -> ModelSweep:
        return self.models.get(name) or ModelSweep(name, errors=["the worker never measured it"])


def job(device, models: list[dict], timing, timer: str = "time.perf_counter", memory: bool = True) -> dict:
    """The worker's job for ``device``: every value explicit (the worker has no defaults of its own)."""
    return {"protocol": 2, "device": device.name, "threads": device.threads,
            "tpu_device": device.metadata.get("selector"), "timer": timer,
            "processes": timing.processes, "rounds": timing.rounds, "warmup_rounds": timing.warmup_rounds,
            "round_seconds": timing.round_seconds, "calibration_seconds": timing.calibration_seconds,
            "seed": timing.seed, "memory": memory,
            "adaptive": {"max_extra_processes": timing.max_extra_processes, "target_ci": timing.target_ci,
                         "budget_fraction": timing.adaptive_budget},
            "models": models}


def run(transport, job_: dict, files: dict[str, list[Path]], progress=None, idle_timeout_s: float = 600.0,
        sysfs_root: str | None = None) -> SweepResult:
    """Run ``job_`` through ``transport``; ``files`` maps model name -> [model file, inputs file or None].

    A worker silent for ``idle_timeout_s`` is killed: the models it had not reported fail with that reason,
    and every line already received is kept."""
    t0 = time.perf_counter()
    models = []
    for m in job_["models"]:
        path, inputs = files[m["name"]]
        models.append({**m, "path": transport.put(path), "inputs": transport.put(inputs) if inputs else None})
    worker = transport.worker()
    body = {**job_, "models": models, **({"sysfs_root": sysfs_root} if sysfs_root else {})}
    proc = transport.spawn(worker)
    proc.stdin.write(json.dumps(body).encode())
    proc.stdin.close()
    result = SweepResult({m["name"]: ModelSweep(m["name"]) for m in models})
    buf, err_buf, fatal, timed_out = b"", b"", None, False
    fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    open_fds = [fd, err_fd]  # stderr is drained too: a worker never blocks on a full pipe nobody reads
    while fd in open_fds:
        ready, _, _ = select.select(open_fds, [], [], idle_timeout_s)
        if not ready:
            timed_out = True
            proc.kill()
            break
        if err_fd in ready:
            chunk = os.read(err_fd, 1 << 16)
            if not chunk:
                open_fds.remove(err_fd)
            err_buf = (err_buf + chunk)[-(1 << 16):]
        if fd not in ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for raw in lines:
            try:
                msg = json.loads(raw.decode(errors="replace"))
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue  # not a worker message (a board's login banner, say)
            fatal = _take(result, msg, progress) or fatal
    try:
        proc.wait(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:  # closed its output but never exited: bounded, like every other wait
        proc.kill()
        proc.wait()
    err = (err_buf + _drain(err_fd if err_fd in open_fds else None)).decode(errors="replace")
    result.seconds = time.perf_counter() - t0
    if fatal:
        raise EdgecheckError(f"{job_['device']} at {transport.where}: {fatal}")
    if timed_out or proc.returncode not in (0, None):
        how = (f"stopped answering for {idle_timeout_s:.0f} s" if timed_out else _death(proc.returncode, err,
                                                                                       transport))
        for ms in result.models.values():
            if not ms.timings:
                ms.errors.append(f"the measurement worker at {transport.where} {how}")
    return result


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
    ms = result.models.get(msg.get("name"))
    if ms is None:
        return None
    if kind == "timing":
        ms.timings.append(msg)
        if progress:
            progress(msg)
    elif kind == "model":
        ms.model = msg
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
        unstable.append(f"robust CV across processes {cv:.0%} > {UNSTABLE_PROCESS_CV:.0%}")
    throttled = sorted({m["throttle"] for m in timings if m.get("throttle")})
    unstable += throttled
    lat = Latency.from_samples(samples, statistic="seconds per invoke, one sample per round, rounds of "
                                                  f"{len(timings)} fresh processes",
                               rounds=len(samples), iterations_per_round=int(np.median([m["iterations"]
                                                                                        for m in timings])),
                               warmup_rounds=warmup_rounds, timer=timer_label)
    lat.extra.update({
        "processes": [{"process": m["process"], "position": m["position"], "median": med, "rounds": len(m["samples"]),
                       "iterations": m["iterations"], "short_rounds": m.get("short_rounds", 0)}
                      for m, med in zip(timings, medians)],
        "process_median": float(np.median(medians)), "ci95": [lo, hi], "process_cv": cv,
        **({"unstable": "; ".join(unstable)} if unstable else {}),
        **({"errors": ms.errors} if ms.errors else {}),
    })
    return lat


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
                                 "processes": len(lat.extra["processes"]), "sweep_seconds": result.seconds})
    m = ms.model or {}
    e.load_seconds, e.first_invoke_seconds = m.get("load_seconds"), m.get("first_invoke_seconds")
    e.input = m.get("input")
    if m.get("peak_rss_bytes"):
        e.peak_rss_bytes = int(m["peak_rss_bytes"])
        e.extra["memory"] = {"peak_rss_bytes": int(m["peak_rss_bytes"]),
                             "baseline_rss_bytes": int(m.get("baseline_rss_bytes") or 0),
                             "model_rss_bytes": int(m["peak_rss_bytes"]) - int(m.get("baseline_rss_bytes") or 0),
                             "measured": "peak RSS of a fresh process that loads and runs only this model "
                                         "(baseline: the same process before loading it)"}
    preds = m.get("predictions")
    if preds is not None and model.test_set is not None:
        ts = model.test_set
        y = ts.labels[: len(preds)]
        p = np.asarray(preds)
        e.on_device = OnDevice(**scores_with_ci(y, p, ts.n_classes or int(y.max()) + 1), windows=int(y.size))
        if model.build_predictions is not None:
            e.on_device.agreement_with_build = agreement(p, model.build_predictions[: y.size])
    return e
