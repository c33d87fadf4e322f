"""What would decide it: the few board measurements that would settle the most cells too close to call.

A cell of the decision chart (and so C5's crossover and C6's agreement) is too close to call when the two
platforms' intervals overlap; on the twins those intervals are their bands. Measuring the model on the real
device replaces that device's band with a measured figure. This ranks the measurements a person with one
board should run first: a model whose twin's central figure lies outside the other platform's interval is
likely decided by measuring it (if the board lands near the twin's central value), and every measurement on
a device also calibrates that device's twin (``edgecheck calibrate``), which narrows its band on the other
open cells that hinge on it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from edgecheck.judge.chart import Chart, Winner
from edgecheck.judge.roles import MEASURED_OF_ROLE, TOO_CLOSE_TO_CALL, role_of_device
from edgecheck.textfmt import fmt_energy, fmt_interval, fmt_time


@dataclass(frozen=True)
class Suggestion:
    """Measure ``model`` on ``device`` (a measured kind) instead of trusting ``twin``'s band."""

    model: str
    device: str  # the measured kind to run it on (tpu, a53)
    twin: str  # the twin whose band it replaces
    decides: bool  # the twin's central figure lies outside the other platform's interval: likely decided
    hinges: list[str] = field(default_factory=list)  # open cells whose answer hinges on this twin's band
    why: str = ""

    @property
    def command(self) -> str:
        return f'pytest benchmarks --device {self.device} -k "{self.model}"'

    def to_dict(self) -> dict:
        return {"model": self.model, "device": self.device, "twin": self.twin, "decides": self.decides,
                "hinges": list(self.hinges), "why": self.why, "command": self.command}


def _pinned_decides(w: Winner, device: str) -> bool:
    """True when the cell is decided with ``device``'s figure fixed at its central value (a measurement that
    lands there) and every other device keeping its interval."""
    v = w.values[device]
    others = [d for d in w.values if d != device]
    return all(v < w.intervals.get(d, (w.values[d],) * 2)[0] or v > w.intervals.get(d, (w.values[d],) * 2)[1]
               for d in others)


def _hinges_on(w: Winner, device: str) -> bool:
    """The cell's overlap involves ``device``'s own interval (it is not a point)."""
    lo, hi = w.intervals.get(device, (w.values[device],) * 2)
    return hi > lo


def suggestions(chart: Chart, limit: int = 3) -> list[Suggestion]:
    """The measurements that would settle the most open cells of ``chart``, best first (at most ``limit``).

    Ranked by: likely deciding its own cell, then the number of open cells that hinge on the same twin's band
    (a board measurement calibrates that twin), then closeness to the middle of those cells (a representative
    point for the calibration)."""
    open_cells = [w for w in chart.winners if w.winner == TOO_CLOSE_TO_CALL]
    candidates: list[tuple[tuple, Suggestion]] = []
    for w in open_cells:
        for dev, kind in w.kinds.items():
            measured = MEASURED_OF_ROLE.get(role_of_device(dev))
            if kind != "simulated" or measured is None or not _hinges_on(w, dev):
                continue
            hinges = [x.model for x in open_cells if dev in x.values and _hinges_on(x, dev)]
            middle = sorted(x.macs for x in open_cells if x.model in hinges)[len(hinges) // 2]
            decides = _pinned_decides(w, dev)
            fmt = fmt_energy if chart.metric == "energy" else fmt_time
            others = ", ".join(f"{d} {fmt(w.values[d])} {fmt_interval(*w.intervals[d], fmt)}"
                               if d in w.intervals and w.intervals[d][1] > w.intervals[d][0] else
                               f"{d} {fmt(w.values[d])}" for d in w.values if d != dev)
            why = (f"{dev}'s central {fmt(w.values[dev])} lies outside {others}: a board near it decides {w.model}"
                   if decides else f"{dev}'s central {fmt(w.values[dev])} lies inside {others}: the measurement "
                                   f"narrows the cell without deciding it alone")
            if len(hinges) > 1:
                why += f"; it also calibrates {dev} for {len(hinges) - 1} other open cell(s)"
            score = (not decides, -len(hinges), abs(math.log(max(w.macs, 1) / max(middle, 1))), w.model)
            candidates.append((score, Suggestion(w.model, measured, dev, decides, hinges, why)))
    out, seen = [], set()
    for _, s in sorted(candidates, key=lambda c: c[0]):
        if s.model in seen:
            continue
        seen.add(s.model)
        out.append(s)
        if len(out) == limit:
            break
    return out


def lines(chart: Chart, limit: int = 3) -> list[str]:
    """The list as the terminal and the report say it (empty when nothing is too close to call)."""
    sugg = suggestions(chart, limit)
    if not sugg:
        return []
    n = sum(w.winner == TOO_CLOSE_TO_CALL for w in chart.winners)
    out = [f"what would decide it: {n} cell(s) of the {chart.metric} chart are too close to call on the twins' "
           f"bands; measure first:"]
    for i, s in enumerate(sugg, 1):
        out.append(f"  {i}. {s.model} on {s.device}: {s.why}")
        out.append(f"     {s.command}")
    return out
