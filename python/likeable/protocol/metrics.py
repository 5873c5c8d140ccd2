"""AUC and accuracy with bootstrap confidence intervals (vectorised over resamples), mean
per-user AUC, and the correlations the protocol reads features by."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Estimate", "auc", "accuracy", "bootstrap_auc", "bootstrap_accuracy", "fraction_of_signal",
           "mean_user_auc", "column_correlation"]


@dataclass(frozen=True)
class Estimate:
    """A metric with its bootstrap percentile interval."""

    value: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def _check(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.shape[0]}) and scores ({s.shape[0]}) differ in length")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1 (drop ties before scoring)")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or Inf")
    return y, s


def _weighted_auc(y: np.ndarray, s: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC for each row of ``weights`` (resample counts), ties counted one half.

    Scores are sorted once; per distinct score, the weighted positives times the weighted
    negatives strictly below (plus half those tied) gives the Mann-Whitney numerator.
    """
    order = np.argsort(s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    w = weights[:, order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    pos = np.add.reduceat(w * y_sorted, starts, axis=1)
    neg = np.add.reduceat(w * (1.0 - y_sorted), starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    numer = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    denom = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, numer / np.where(denom > 0, denom, 1.0), np.nan)


def auc(labels, scores) -> float:
    """Area under the ROC curve (probability a positive outscores a negative; ties = 1/2).

    NaN when only one class is present.
    """
    y, s = _check(labels, scores)
    if y.size == 0:
        return float("nan")
    return float(_weighted_auc(y, s, np.ones((1, y.size)))[0])


def accuracy(labels, scores, threshold: float = 0.5) -> float:
    """Share of pairs where ``scores > threshold`` matches the label (probabilities by default)."""
    y, s = _check(labels, scores)
    if y.size == 0:
        return float("nan")
    return float(np.mean((s > threshold) == (y == 1.0)))


def _resample_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How often each pair appears in each of ``n_boot`` resamples (one bincount for all)."""
    draws = rng.integers(0, n, (n_boot, n)) + (np.arange(n_boot) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def _interval(value: float, samples: np.ndarray, n: int, level: float) -> Estimate:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0 or not np.isfinite(value):
        return Estimate(float(value), float("nan"), float("nan"), n)
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(float(value), float(lo), float(hi), n)


def bootstrap_auc(labels, scores, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                  chunk: int = 200) -> Estimate:
    """AUC with a percentile bootstrap interval over pairs (resamples in chunks of ``chunk``)."""
    y, s = _check(labels, scores)
    if y.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    samples = [_weighted_auc(y, s, _resample_counts(y.size, min(chunk, n_boot - i), rng))
               for i in range(0, n_boot, chunk)]
    return _interval(auc(y, s), np.concatenate(samples), y.size, level)


def bootstrap_accuracy(labels, scores, threshold: float = 0.5, n_boot: int = 1000,
                       level: float = 0.95, seed: int = 0, chunk: int = 200) -> Estimate:
    """Accuracy with a percentile bootstrap interval."""
    y, s = _check(labels, scores)
    if y.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    correct = ((s > threshold) == (y == 1.0)).astype(np.float64)
    rng = np.random.default_rng(seed)
    samples = [_resample_counts(y.size, min(chunk, n_boot - i), rng) @ correct / y.size
               for i in range(0, n_boot, chunk)]
    return _interval(float(correct.mean()), np.concatenate(samples), y.size, level)


def fraction_of_signal(auc_value: float, auc_dense: float) -> float:
    """(AUC − 0.5) / (AUC_dense − 0.5): how much of the dense probe's signal a model keeps."""
    if not np.isfinite(auc_value) or not np.isfinite(auc_dense) or auc_dense <= 0.5:
        return float("nan")
    return float((auc_value - 0.5) / (auc_dense - 0.5))


def mean_user_auc(labels, scores, users, min_pairs: int = 1) -> float:
    """Mean over users (with both labels and at least ``min_pairs`` pairs) of each user's AUC.

    NaN when no user qualifies.
    """
    y, s = _check(labels, scores)
    users = np.asarray(users)
    if users.shape != y.shape:
        raise ValueError(f"users ({users.shape[0]}) and labels ({y.shape[0]}) differ in length")
    if y.size == 0:
        return float("nan")
    _, inverse = np.unique(users, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    bounds = np.flatnonzero(np.diff(inverse.ravel()[order])) + 1
    values = []
    for rows in np.split(order, bounds):  # one slice per user, no per-user mask over all pairs
        n_pos = y[rows].sum()
        if rows.size >= min_pairs and 0 < n_pos < rows.size:
            values.append(float(_weighted_auc(y[rows], s[rows], np.ones((1, rows.size)))[0]))
    return float(np.mean(values)) if values else float("nan")


def column_correlation(a, b) -> np.ndarray:
    """Pearson correlation of every column of ``a`` with every column of ``b``: (a_cols, b_cols).

    NaN where a column is constant.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"a {a.shape} and b {b.shape} must be matrices with the same number of rows")
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    na, nb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a.T @ b) / np.outer(na, nb)
