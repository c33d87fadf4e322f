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


def macro_f1_ci(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, confidence: float = 0.95,
                resamples: int = 2000, seed: int = 0) -> list[float]:
    """95 % percentile-bootstrap interval of macro-F1 over the test windows."""
    from edgecheck.stats import bootstrap_ci

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    lo, hi = bootstrap_ci(lambda i: macro_f1(y_true[i], y_pred[i], n_classes), y_true.size, resamples, confidence,
                          seed)
    return [lo, hi]


def drop_ci(y_true: np.ndarray, pred_float: np.ndarray, pred_int8: np.ndarray, n_classes: int,
            confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> list[float]:
    """Interval of macro-F1(float) - macro-F1(int8) from the same resampled windows (paired bootstrap)."""
    from edgecheck.stats import bootstrap_ci

    y, pf, pi = np.asarray(y_true), np.asarray(pred_float), np.asarray(pred_int8)
    lo, hi = bootstrap_ci(lambda i: macro_f1(y[i], pf[i], n_classes) - macro_f1(y[i], pi[i], n_classes), y.size,
                          resamples, confidence, seed)
    return [lo, hi]


def scores_with_ci(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """Accuracy and macro-F1 with the macro-F1's bootstrap interval (what every accuracy figure carries)."""
    return {**scores(y_true, y_pred, n_classes), "macro_f1_ci95": macro_f1_ci(y_true, y_pred, n_classes)}
