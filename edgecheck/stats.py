"""Pure statistics over raw per-round samples (no I/O, no state)."""
from __future__ import annotations

import functools
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


# ----------------------------------------------------------------------------
# Comparing two sets of process-level values: Hodges-Lehmann shift, its Mann-Whitney interval, Holm
# ----------------------------------------------------------------------------


def _normal_quantile(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


def mann_whitney_u(a, b) -> tuple[float, float]:
    """(U of ``b`` over ``a``, its standard deviation under H0 with the tie correction)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n1, n2 = a.size, b.size
    r = rankdata(np.concatenate([a, b]))
    u_b = r[n1:].sum() - n2 * (n2 + 1) / 2
    _, counts = np.unique(np.concatenate([a, b]), return_counts=True)
    n = n1 + n2
    tie = float(np.sum(counts**3 - counts))
    var = n1 * n2 / 12 * ((n + 1) - tie / (n * (n - 1))) if n > 1 else 0.0
    return float(u_b), math.sqrt(max(var, 0.0))


def p_greater(a, b, shift: float = 0.0) -> float:
    """One-sided p of H0 "b - shift is not above a" (Mann-Whitney, normal approximation with continuity
    correction): small when ``b`` exceeds ``a`` by more than ``shift``."""
    a, b = np.asarray(a, float), np.asarray(b, float) - shift
    if a.size == 0 or b.size == 0:
        return 1.0
    u, sigma = mann_whitney_u(a, b)
    if sigma == 0:
        return 0.0 if np.all(b > a.max()) else 1.0
    z = (u - a.size * b.size / 2 - 0.5) / sigma
    from statistics import NormalDist

    return float(1 - NormalDist().cdf(z))


def hodges_lehmann(a, b, confidence: float = 0.95) -> tuple[float, float, float]:
    """The shift of ``b`` against ``a`` (median of all pairwise differences b_j - a_i) and its
    distribution-free confidence interval from the Mann-Whitney distribution (normal approximation of
    the rank of the bounding differences). With one value on a side the interval is the range of
    differences, which is as wide as the data allow."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = np.sort((b[None, :] - a[:, None]).ravel())
    m = d.size
    est = float(np.median(d))
    n1, n2 = a.size, b.size
    z = _normal_quantile(0.5 + confidence / 2)
    k = int(math.floor(n1 * n2 / 2 - z * math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)))
    k = min(max(k, 0), (m - 1) // 2)
    return est, float(d[k]), float(d[m - 1 - k])


def holm(pvalues: list[float], alpha: float) -> list[bool]:
    """Holm's step-down: which hypotheses are rejected with the family-wise error held at ``alpha``."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    rejected = [False] * len(pvalues)
    m = len(pvalues)
    for step, i in enumerate(order):
        if pvalues[i] <= alpha / (m - step):
            rejected[i] = True
        else:
            break
    return rejected


def robust_cv(values) -> float:
    """IQR / (1.349 x median): the spread of the bulk, blind to a few outliers (0 for one value)."""
    v = np.asarray(values, float)
    if v.size < 2:
        return 0.0
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return float((q3 - q1) / (1.349 * med)) if med > 0 else float("nan")


def bootstrap_ci(statistic, n: int, resamples: int = 2000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(indices)`` over ``n`` items resampled with replacement."""
    rng = np.random.default_rng(seed)
    vals = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)], float)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(vals, [50 * (1 - confidence), 50 * (1 + confidence)])
    return float(lo), float(hi)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1 - x) / b


def t_sf(t: float, dof: float) -> float:
    """P(T > t) for Student's t with ``dof`` degrees of freedom (``math.inf``: the normal), without scipy."""
    if math.isinf(dof):
        from statistics import NormalDist

        return 1.0 - NormalDist().cdf(t)
    tail = 0.5 * _betainc(dof / 2, 0.5, dof / (dof + t * t))
    return tail if t > 0 else 1.0 - tail


@functools.lru_cache(maxsize=4096)
def t_quantile(p: float, dof: float) -> float:
    """The t value with P(T > t) = p (bisection on ``t_sf``: no scipy in the core install)."""
    lo, hi = -1e3, 1e3
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_sf(mid, dof) > p else (lo, mid)
    return (lo + hi) / 2
