"""Pure statistics over raw per-round samples (no I/O, no state)."""
from __future__ import annotations

import math

import numpy as np


def summarize(samples: list[float] | np.ndarray) -> dict:
    """Robust summary of per-round latencies (seconds per invoke).

    ``cv`` (coefficient of variation) and the min/max spread relative to the
    median are the stability signals a comparison looks at (as pyperf check does).
    """
    a = np.asarray(samples, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no samples")
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return {
        "n": int(a.size),
        "min": float(a.min()),
        "max": float(a.max()),
        "mean": mean,
        "median": float(med),
        "stddev": std,
        "q1": float(q1),
        "q3": float(q3),
        "iqr": float(q3 - q1),
        "cv": std / mean if mean > 0 else math.nan,
        "spread_min": float((med - a.min()) / med) if med > 0 else math.nan,
        "spread_max": float((a.max() - med) / med) if med > 0 else math.nan,
    }


def median_ci(samples: list[float] | np.ndarray, confidence: float = 0.99) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics."""
    a = np.sort(np.asarray(samples, dtype=np.float64))
    n = a.size
    if n < 2:
        return (float(a[0]), float(a[0])) if n else (math.nan, math.nan)
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * math.sqrt(n) / 2
    lo = max(0, int(math.floor(n / 2 - half)) - 1)
    hi = min(n - 1, int(math.ceil(n / 2 + half)))
    return float(a[lo]), float(a[hi])


def rankdata(values) -> np.ndarray:
    """Ranks 1..n, ties given their average rank (as scipy.stats.rankdata's default)."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(v.size)
    ranks[order] = np.arange(1, v.size + 1, dtype=np.float64)
    _, inv, counts = np.unique(v, return_inverse=True, return_counts=True)
    if np.any(counts > 1):
        sums = np.bincount(inv, weights=ranks)
        ranks = (sums / counts)[inv]
    return ranks


def spearman(x, y) -> float:
    """Rank correlation (average ranks for ties); NaN when either side is constant."""
    rx, ry = rankdata(x), rankdata(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])
