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



def paired_overhead(timed: list[float], bare: list[float], relative: float = 0.05, absolute_s: float = 5e-8,
                    fail_factor: float = 2.0) -> tuple[str, float, tuple[float, float], float]:
    """Does a harness add more than the limit to a bare loop's per-invoke time? From interleaved pairs: "pass"
    when the 95 % interval of the median paired difference lies below the limit (``relative`` of the bare loop,
    at least ``absolute_s``), "fail" when it lies entirely above ``fail_factor`` times the limit, else
    "inconclusive". One-sided: a harness measured faster than the bare loop adds nothing. The gap between the
    limit and the fail zone is what two loops of the same code differ by in one process, wherever the code
    landed: on 1x32 (1.4-1.5 us an invoke) they differed by -0.094 us and +0.111 us (-6 % and +8 %, intervals
    clear of zero) in two default runs on this project's machine, so a difference under twice the limit is not
    the harness's for sure. Returns the outcome, the median difference, its interval and the limit."""
    import numpy as np

    from edgecheck.stats import median_ci

    diffs = np.asarray(timed, float) - np.asarray(bare, float)
    limit = max(relative * float(np.median(bare)), absolute_s)
    lo, hi = median_ci(diffs, 0.95)
    med = float(np.median(diffs))
    if hi <= limit:
        return "pass", med, (lo, hi), limit
    if lo > fail_factor * limit:
        return "fail", med, (lo, hi), limit
    return "inconclusive", med, (lo, hi), limit
