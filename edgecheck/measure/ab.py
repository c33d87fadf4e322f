"""A/B in one session: two sets of models measured interleaved, on the same machine at the same time.

``edgecheck ab BASE HEAD`` is the way to check a change against main on a shared
runner: the worker alternates fresh processes between the two sets (A, B, A, B,
...), each in a shuffled order, so drift and the machine's state reach both
alike, and the two runs are then compared like a run and its baseline. BASE and
HEAD are artifact folders (models paired by architecture name) or two .tflite
files.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

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


def measure(pairs: list[tuple[art.ModelEntry, art.ModelEntry]], device: Device,
            ctx: MeasureContext) -> tuple[Run, Run]:
    """Both sets in one worker job, processes alternating between them; returns (base run, head run). The job
    runs through ``ctx`` (its timing, clock and idle timeout), whose owner closes the worker (``with ctx:``)."""
    if device.kind != "measured":
        raise EdgecheckError(f"ab: {device.name} is a twin; A/B compares measurements (use cpu, a53, tpu or X@ssh://)")
    models, files = [], {}
    for group, side in (("A", 0), ("B", 1)):
        for p in pairs:
            m = p[side]
            models.append({"name": f"{group}:{m.name}", "group": group})
            files[f"{group}:{m.name}"] = [device.model_file(m), None]
    timing, timer = ctx.timing, ctx.timer_name
    if ctx.progress:
        ctx.progress(f"edgecheck ab: {len(pairs)} models x 2 on {device.label}, {timing.processes} processes "
                     "each, alternating")
    result = ctx.run_job(device, models, files, memory=False)
    runs = []
    for group, side in (("A", 0), ("B", 1)):
        entries = []
        for p in pairs:
            m = p[side]
            lat = sweep.latency(result.of(f"{group}:{m.name}"), f"{timer} (edgecheck worker, A/B interleaved)",
                                timing.warmup_rounds)
            # both sides under BASE's name: two single files are paired whatever their names (``pair``), and the
            # comparison matches A/B entries by name; the entry keeps HEAD's own sha256 (the comparison's labels name
            # the files)
            entries.append(device.new_entry(replace(m, name=p[0].name), latency=lat,
                                            worker={"host": result.host, "ab_group": group}))
        header = {"schema": RESULTS_SCHEMA, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "run": {"devices": [device.to_dict()], "ab": group}}
        runs.append(Run(header, entries))
    return runs[0], runs[1]
