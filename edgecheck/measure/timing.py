"""How many invokes make one timed round: the one calibration loop of the measuring process.

(The board-side worker, ``measure/worker.py``, is a standalone Python 3.7 script
that cannot import this package; it carries its own copy of these few lines.)
"""
from __future__ import annotations

import math
import time


def seconds_per_invoke(invoke, budget_s: float = 0.005, max_calls: int = 10_000) -> float:
    """Seconds per call from back-to-back calls lasting at least ``budget_s``."""
    n, t0 = 0, time.perf_counter()
    while True:
        invoke()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= budget_s or n >= max_calls:
            return dt / n


def iterations_for(seconds_per_call: float, round_seconds: float) -> int:
    """Invokes per round so one round lasts about ``round_seconds``."""
    if not seconds_per_call > 0:
        return 1
    return max(1, int(math.ceil(round_seconds / seconds_per_call)))

