"""Classification metrics in plain numpy (no scikit-learn on a board)."""
from __future__ import annotations

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``y_true`` or ``y_pred``
    (as scikit-learn's ``f1_score(average="macro")``; a class never predicted nor present is skipped)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = np.union1d(y_true, y_pred) if n_classes is None else np.arange(n_classes)
    f1s = []
    for c in labels:
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else float("nan")


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of windows on which two predictions agree."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.mean(a == b)) if a.size else float("nan")


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    return {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred, n_classes)}


def _bucket(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Labels as int64 codes 0..n_classes, with n_classes for any label that is no class."""
    lab = np.asarray(labels)
    ok = (lab >= 0) & (lab < n_classes)
    return np.where(ok, lab, n_classes).astype(np.int64)


def _macro_f1_resampled(y_true: np.ndarray, y_pred: np.ndarray, idx: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 of every resample (rows of ``idx``), vectorized; classes absent from a resample are skipped,
    as ``macro_f1`` skips them."""
    # one confusion matrix per resample from one bincount (the per-class masks over every resample cost ten
    # times more); a label outside 0..n_classes-1 counts as "another class", as the masks counted it
    n = n_classes + 1
    cells = (_bucket(y_true, n_classes) * n + _bucket(y_pred, n_classes))[idx]  # each window's confusion cell
    cells += np.arange(idx.shape[0], dtype=np.int64)[:, None] * (n * n)  # each resample's own matrix
    confusion = np.bincount(cells.ravel(), minlength=idx.shape[0] * n * n).reshape(-1, n, n)
    f1 = np.zeros((idx.shape[0], n_classes))
    present = np.zeros_like(f1, dtype=bool)
    for c in range(n_classes):
        tp = confusion[:, c, c]
        fp = confusion[:, :, c].sum(axis=1) - tp
        fn = confusion[:, c, :].sum(axis=1) - tp
        denom = 2 * tp + fp + fn
        present[:, c] = denom > 0
        f1[:, c] = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    counts = present.sum(axis=1)
    return np.where(counts > 0, (f1 * present).sum(axis=1) / np.maximum(counts, 1), np.nan)


def _bootstrap(values, confidence: float) -> list[float]:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    lo, hi = np.percentile(v, [50 * (1 - confidence), 50 * (1 + confidence)]) if v.size else (np.nan, np.nan)
    return [float(lo), float(hi)]


def macro_f1_ci(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, confidence: float = 0.95,
                resamples: int = 2000, seed: int = 0) -> list[float]:
    """Percentile-bootstrap interval of macro-F1 over the test windows (resampled with replacement)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    idx = np.random.default_rng(seed).integers(0, y_true.size, (resamples, y_true.size))
    return _bootstrap(_macro_f1_resampled(y_true, y_pred, idx, n_classes), confidence)


def drop_ci(y_true: np.ndarray, pred_float: np.ndarray, pred_int8: np.ndarray, n_classes: int,
            confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> list[float]:
    """Interval of macro-F1(float) - macro-F1(int8) over the same resampled windows (paired bootstrap)."""
    y, pf, pi = np.asarray(y_true), np.asarray(pred_float), np.asarray(pred_int8)
    idx = np.random.default_rng(seed).integers(0, y.size, (resamples, y.size))
    return _bootstrap(_macro_f1_resampled(y, pf, idx, n_classes) - _macro_f1_resampled(y, pi, idx, n_classes),
                      confidence)


def scores_with_ci(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """Accuracy and macro-F1 with the macro-F1's bootstrap interval (what every accuracy figure carries)."""
    return {**scores(y_true, y_pred, n_classes), "macro_f1_ci95": macro_f1_ci(y_true, y_pred, n_classes)}
