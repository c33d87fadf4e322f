"""A/B in one session: two sets of models measured interleaved, on the same machine at the same time.

``edgecheck ab BASE HEAD`` is the way to check a change against main on a shared
runner: the worker alternates fresh processes between the two sets (A, B, B, A,
...), each in a shuffled order, so drift and the machine's state reach both
alike. BASE and
HEAD are artifact folders (models paired by architecture name) or two .tflite
files.

``sequential`` measures in looks: a first job of a few processes per side, then further jobs of only the
models the caller's ``judge`` still needs, up to a cap in processes per side and/or seconds. Each job's
processes are slots of two (A,B then B,A: ABBA, worker.py), renumbered after the earlier jobs', so every slot
of the session pairs an A process with its time-neighbouring B process. The statistics live in the judge
(edgecheck/judge/ab_stats.py); this module only measures and hands over the paired process medians.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgecheck import artifacts as art
from edgecheck.errors import EdgecheckError
from edgecheck.measure import sweep
from edgecheck.measure.device import Device
from edgecheck.measure.recorder import MeasureContext
from edgecheck.results import RESULTS_SCHEMA, Run


def models_of(path: str | Path, what: str) -> list[art.ModelEntry]:
    """An artifacts folder's models, or one .tflite file."""
    path = Path(path)
    if path.is_dir():
        return art.load(path).models
    if path.suffix == ".tflite":
        return [art.user_model(path)]
    raise EdgecheckError(f"ab {what}: {path} is neither an artifacts folder nor a .tflite file")


def pair(base: list[art.ModelEntry], head: list[art.ModelEntry]) -> list[tuple[art.ModelEntry, art.ModelEntry]]:
    """Models of the two sets with the same name; two single files are paired whatever their names."""
    if len(base) == 1 and len(head) == 1:
        return [(base[0], head[0])]
    by_name = {m.name: m for m in head}
    pairs = [(m, by_name[m.name]) for m in base if m.name in by_name]
    if not pairs:
        raise EdgecheckError("ab: BASE and HEAD share no architecture name")
    return pairs


@dataclass
class Look:
    """One job of a sequential A/B: processes per side after it, the models it measured, its seconds."""

    processes: int
    models: list[str]
    seconds: float


@dataclass
class Sequential:
    """A sequential A/B's measurements: both runs (every process of every look), the looks, why it stopped."""

    base: Run
    head: Run
    looks: list[Look] = field(default_factory=list)
    stopped: str = ""
    seconds: float = 0.0


def slots_of(timings: dict[str, list[dict]]) -> dict:
    """A model's paired process medians from its A and B timing lines: {"slots", "a", "b"} (slot = process // 2;
    a slot where one side's process lost the model is left out)."""
    by = {g: {t["process"] // 2: float(np.median(t["samples"])) for t in timings[g]} for g in ("A", "B")}
    ks = sorted(set(by["A"]) & set(by["B"]))
    unstable = [f"{g} process {t['process']}: {t['unstable']}" for g in ("A", "B") for t in timings[g]
                if t.get("unstable")]  # hot or throttled again when measured once more (the worker's guards)
    return {"slots": ks, "a": [by["A"][k] for k in ks], "b": [by["B"][k] for k in ks], "unstable": unstable}


def sequential(pairs: list[tuple[art.ModelEntry, art.ModelEntry]], device: Device, ctx: MeasureContext,
               plan: list[int], judge: Callable[[dict, int, bool], list[str]], max_seconds: float | None = None,
               clock: Callable[[], float] = time.monotonic) -> Sequential:
    """Measure in looks: ``plan`` is the processes per side at each look (ab_stats.schedule). After each job,
    ``judge(slots, processes, last)`` sees every model's paired medians so far (``slots_of``) and returns the
    models the next look needs (none: stop). ``max_seconds``: no look starts that the time measured so far says
    would end past it (the cap's looks not taken only remove chances to err)."""
    if device.kind != "measured":
        raise EdgecheckError(f"ab: {device.name} is a twin; A/B compares measurements (use cpu, a53, tpu or X@ssh://)")
    by_name = {p[0].name: p for p in pairs}
    timings = {name: {"A": [], "B": []} for name in by_name}
    errors: dict[str, list[str]] = {name: [] for name in by_name}
    timing, t0, done, host = ctx.timing, clock(), 0, {}
    need, out = list(by_name), Sequential(None, None)  # type: ignore[arg-type]
    per_unit = None  # seconds per (process, model) measured so far
    for j, n in enumerate(plan):
        add = n - done
        if add <= 0 or not need:
            continue
        if max_seconds is not None and per_unit is not None and \
                clock() - t0 + per_unit * 2 * add * len(need) > max_seconds:
            out.stopped = (f"--max-seconds {max_seconds:g}: the next look ({len(need)} models, {add} more processes "
                           f"a side) would end past it")
            break
        ctx.timing = replace(timing, processes=add, min_processes=add, max_extra_processes=0, seed=timing.seed + j)
        if ctx.progress:
            ctx.progress(f"edgecheck ab: look {j + 1}/{len(plan)}: {len(need)} model{'s' if len(need) != 1 else ''} "
                         f"x 2 on {device.label}, processes {done + 1}-{n} a side, alternating A,B / B,A")
        models, files = [], {}
        for group, side in (("A", 0), ("B", 1)):
            for name in need:
                m = by_name[name][side]
                models.append({"name": f"{group}:{name}", "group": group})
                files[f"{group}:{name}"] = [device.model_file(m), None]
        started = clock()
        try:
            result = ctx.run_job(device, models, files, memory=False)
        except EdgecheckError as e:
            if not done:
                raise
            out.stopped = f"look {j + 1} failed, the looks before it are kept: {e}"  # measured data is never lost
            break
        finally:
            ctx.timing = timing
        host = result.host or host
        per_unit = (clock() - started) / max(1, 2 * add * len(need))
        for name in need:
            for group in ("A", "B"):
                ms = result.of(f"{group}:{name}")
                timings[name][group] += [{**t, "process": t["process"] + 2 * done} for t in ms.timings]
                errors[name] += ms.errors
        done = n
        out.looks.append(Look(n, list(need), round(clock() - started, 1)))
        last = j == len(plan) - 1
        need = judge({name: slots_of(timings[name]) for name in by_name}, n, last)
    ctx.timing = timing
    out.seconds = round(clock() - t0, 1)
    out.base, out.head = _runs(pairs, device, ctx, timings, errors, host)
    return out


def _runs(pairs, device, ctx, timings, errors, host) -> tuple[Run, Run]:
    """Both sides as results runs: every process of every look (a model no process measured is a failed entry:
    what the others measured is kept)."""
    from edgecheck.measure.sweep import ModelSweep

    runs = []
    for group, side in (("A", 0), ("B", 1)):
        entries = []
        for p in pairs:
            m = p[side]
            ms = ModelSweep(f"{group}:{m.name}", timings[p[0].name][group], errors=errors[p[0].name])
            try:
                lat = sweep.latency(ms, f"{ctx.timer_name} (edgecheck worker, A/B interleaved, sequential)",
                                    ctx.timing.warmup_rounds)
            except EdgecheckError as e:
                entries.append(device.new_entry(replace(m, name=p[0].name), status="failed", error=str(e)))
                continue
            entries.append(device.new_entry(replace(m, name=p[0].name), latency=lat,
                                            worker={"host": host, "ab_group": group}))
        header = {"schema": RESULTS_SCHEMA, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "run": {"devices": [device.to_dict()], "ab": group}}
        runs.append(Run(header, entries))
    return runs[0], runs[1]
