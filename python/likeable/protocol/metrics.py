"""AUC and accuracy with bootstrap confidence intervals (vectorised over resamples), mean
per-user AUC, multiple-comparison corrections, and the correlations the protocol reads
features by.

Bootstraps resample the sampled unit: whole groups (``groups=``: the split's prompt /
conversation components) for held-out pairs, users for per-user means (or each user's groups
when the users are few and fixed). A resample is a matrix of counts, one row per resample, so
every statistic of a resample is a weighted statistic of the original data.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np

__all__ = ["Estimate", "auc", "accuracy", "weighted_auc", "resample_counts", "bootstrap_auc", "bootstrap_accuracy",
           "bootstrap_aucs", "interval", "fraction_of_signal", "fraction_beyond", "user_aucs", "mean_user_auc",
           "bootstrap_user_aucs", "benjamini_hochberg", "bonferroni", "column_correlation"]


@dataclass(frozen=True)
class Estimate:
    """A metric with its bootstrap percentile interval.

    ``n``: pairs (or users, for a mean over users) it was computed on; ``n_groups``: how many
    units the bootstrap resampled (prompt/conversation components, users or draws), when not
    the pairs themselves.
    """

    value: float
    low: float
    high: float
    n: int
    n_groups: int | None = None

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


def weighted_auc(labels, scores, weights) -> np.ndarray:
    """AUC for each row of ``weights`` (resample counts, n_resamples x n), ties counted one half.

    Scores are sorted once; per distinct score, the weighted positives times the weighted
    negatives strictly below (plus half those tied) gives the Mann-Whitney numerator. NaN for
    a row whose weights leave only one class.
    """
    y = np.asarray(labels, np.float64)
    s = np.asarray(scores, np.float64)
    weights = np.atleast_2d(np.asarray(weights, np.float64))
    if y.size == 0:
        return np.full(weights.shape[0], np.nan)
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
    return float(weighted_auc(y, s, np.ones((1, y.size)))[0])


def accuracy(labels, scores, threshold: float = 0.5) -> float:
    """Share of pairs where ``scores > threshold`` matches the label (probabilities by default)."""
    y, s = _check(labels, scores)
    if y.size == 0:
        return float("nan")
    return float(np.mean((s > threshold) == (y == 1.0)))


def _group_codes(groups, n: int) -> tuple[np.ndarray, int]:
    """Each item's group as 0..G-1 and G (each item its own group when ``groups`` is None)."""
    if groups is None:
        return np.arange(n), n
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"groups ({groups.shape[0] if groups.ndim else 0}) and labels ({n}) differ in length")
    _, codes = np.unique(groups, return_inverse=True)
    codes = codes.ravel()
    return codes, int(codes.max()) + 1 if n else 0


def resample_counts(n: int, n_boot: int, rng: np.random.Generator, groups=None) -> np.ndarray:
    """How often each of ``n`` items appears in each of ``n_boot`` resamples: (n_boot, n) float64.

    Without ``groups`` items are drawn with replacement; with ``groups`` (one key per item)
    whole groups are, so every item of a drawn group gets the group's count.
    """
    codes, n_groups = _group_codes(groups, n)
    draws = rng.integers(0, n_groups, (n_boot, n_groups)) + (np.arange(n_boot) * n_groups)[:, None]
    counts = np.bincount(draws.ravel(), minlength=n_boot * n_groups).reshape(n_boot, n_groups)
    return counts[:, codes].astype(np.float64)



def interval(value: float, samples: np.ndarray, n: int, level: float = 0.95,
             n_groups: int | None = None) -> Estimate:
    """``value`` with the percentile interval of its bootstrap ``samples`` (NaN samples ignored)."""
    samples = np.asarray(samples, np.float64)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0 or not np.isfinite(value):
        return Estimate(float(value), float("nan"), float("nan"), int(n), n_groups)
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(float(value), float(lo), float(hi), int(n), n_groups)



def _chunks(n_boot: int, chunk: int):
    for start in range(0, n_boot, chunk):
        yield min(chunk, n_boot - start)


def bootstrap_aucs(labels, scores: Mapping[str, np.ndarray], n_boot: int = 1000, seed: int = 0, groups=None,
                   chunk: int = 200) -> dict[str, np.ndarray]:
    """Bootstrap AUCs of several scorings of the same pairs on the SAME resamples (so their
    differences and ratios have intervals): name -> (n_boot,) samples."""
    y = np.asarray(labels, np.float64).ravel()
    checked = {name: _check(y, s)[1] for name, s in scores.items()}
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {name: [] for name in checked}
    for size in _chunks(n_boot, chunk):
        counts = resample_counts(y.size, size, rng, groups)
        for name, s in checked.items():
            out[name].append(weighted_auc(y, s, counts))
    return {name: np.concatenate(v) if v else np.zeros(0) for name, v in out.items()}


def _n_groups(groups, n: int) -> int | None:
    return None if groups is None else _group_codes(groups, n)[1]


def bootstrap_auc(labels, scores, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                  chunk: int = 200, groups=None) -> Estimate:
    """AUC with a percentile bootstrap interval over pairs, or over whole ``groups`` of pairs."""
    y, s = _check(labels, scores)
    if y.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    samples = bootstrap_aucs(y, {"auc": s}, n_boot, seed, groups, chunk)["auc"]
    return interval(auc(y, s), samples, y.size, level, _n_groups(groups, y.size))


def bootstrap_accuracy(labels, scores, threshold: float = 0.5, n_boot: int = 1000,
                       level: float = 0.95, seed: int = 0, chunk: int = 200, groups=None) -> Estimate:
    """Accuracy with a percentile bootstrap interval (over pairs, or whole ``groups``)."""
    y, s = _check(labels, scores)
    if y.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    correct = ((s > threshold) == (y == 1.0)).astype(np.float64)
    rng = np.random.default_rng(seed)
    samples = []
    for size in _chunks(n_boot, chunk):
        counts = resample_counts(y.size, size, rng, groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            samples.append(counts @ correct / counts.sum(axis=1))
    return interval(float(correct.mean()), np.concatenate(samples), y.size, level, _n_groups(groups, y.size))


def fraction_of_signal(auc_value, auc_dense):
    """(AUC − 0.5) / (AUC_dense − 0.5): how much of the dense probe's signal a model keeps.

    Scalars or arrays (bootstrap samples); NaN where the dense probe is not above chance.
    """
    return fraction_beyond(auc_value, 0.5, auc_dense)


def fraction_beyond(auc_value, auc_base, auc_dense):
    """(AUC − AUC_base) / (AUC_dense − AUC_base): a model's share of the dense probe's signal
    beyond a baseline (e.g. length alone). Scalars or arrays; NaN where the dense probe does not
    beat the baseline."""
    value, base, dense = (np.asarray(v, np.float64) for v in (auc_value, auc_base, auc_dense))
    gap = dense - base
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(np.isfinite(value) & np.isfinite(gap) & (gap > 0), (value - base) / np.where(gap > 0, gap, 1.0),
                       np.nan)
    return float(out) if out.ndim == 0 else out


def user_aucs(labels, scores, users, min_pairs: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Each qualifying user's AUC: ``(users, aucs)`` for users with both labels and at least
    ``min_pairs`` pairs, in sorted user order."""
    y, s = _check(labels, scores)
    users = np.asarray(users)
    if users.shape != y.shape:
        raise ValueError(f"users ({users.shape[0] if users.ndim else 0}) and labels ({y.shape[0]}) differ in length")
    names, values = [], []
    for name, rows in _by_user(users):
        n_pos = y[rows].sum()
        if rows.size >= min_pairs and 0 < n_pos < rows.size:
            names.append(name)
            values.append(float(weighted_auc(y[rows], s[rows], np.ones((1, rows.size)))[0]))
    return np.asarray(names, dtype=users.dtype if users.size else object), np.asarray(values, np.float64)


def _by_user(users: np.ndarray):
    """(user, its row ids) for each user, in sorted order (one sort, no per-user mask over all rows)."""
    if users.size == 0:
        return
    uniq, inverse = np.unique(users, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    yield from zip(uniq, np.split(order, bounds))


def mean_user_auc(labels, scores, users, min_pairs: int = 1) -> float:
    """Mean over users (with both labels and at least ``min_pairs`` pairs) of each user's AUC.

    NaN when no user qualifies.
    """
    _, values = user_aucs(labels, scores, users, min_pairs)
    return float(np.mean(values)) if values.size else float("nan")


def bootstrap_user_aucs(labels, scores: Mapping[str, np.ndarray], users, min_pairs: int = 1, n_boot: int = 1000,
                        seed: int = 0, resample_users: bool = True, groups=None
                        ) -> tuple[dict[str, float], dict[str, np.ndarray], int]:
    """Mean per-user AUC of several scorings, and its bootstrap samples on shared resamples.

    ``resample_users``: draw users with replacement (the users are a sample of people); else
    keep the users fixed and resample each user's pairs, as whole ``groups`` where given
    (the users are the only ones of interest, e.g. two objectives). Returns ``(values,
    samples, n_users)``: name -> mean per-user AUC, name -> (n_boot,) samples, qualifying users.
    """
    y = np.asarray(labels, np.float64).ravel()
    users = np.asarray(users)
    scores = {name: _check(y, s)[1] for name, s in scores.items()}
    qualified = [rows for _, rows in _by_user(users)
                 if rows.size >= min_pairs and 0 < y[rows].sum() < rows.size]
    values = {name: float(np.mean([auc(y[r], s[r]) for r in qualified])) if qualified else float("nan")
              for name, s in scores.items()}
    rng = np.random.default_rng(seed)
    if not qualified or n_boot <= 0:
        return values, {name: np.zeros(0) for name in scores}, len(qualified)
    if resample_users:
        per_user = {name: np.array([auc(y[r], s[r]) for r in qualified]) for name, s in scores.items()}
        counts = resample_counts(len(qualified), n_boot, rng)
        samples = {name: counts @ a / len(qualified) for name, a in per_user.items()}
        return values, samples, len(qualified)
    group_codes = None if groups is None else np.asarray(groups)
    total = {name: np.zeros(n_boot) for name in scores}
    for rows in qualified:
        counts = resample_counts(rows.size, n_boot, rng, None if group_codes is None else group_codes[rows])
        for name, s in scores.items():
            total[name] += weighted_auc(y[rows], s[rows], counts)  # NaN when a resample loses a class
    return values, {name: t / len(qualified) for name, t in total.items()}, len(qualified)


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini–Hochberg q-values (step-up false discovery rate) of the finite p-values.

    ``q_(i) = min_{j >= i} m p_(j) / j`` over the ``m`` finite p-values sorted ascending,
    capped at 1; NaN p-values (untested features) stay NaN and do not count in ``m``.
    """
    p = np.asarray(p_values, np.float64).ravel()
    q = np.full(p.shape, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    m = tested.size
    if m == 0:
        return q
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def bonferroni(p_values, alpha: float = 0.05) -> np.ndarray:
    """True where ``p < alpha / m`` (``m``: finite p-values); False for NaN p-values."""
    p = np.asarray(p_values, np.float64).ravel()
    m = int(np.isfinite(p).sum())
    with np.errstate(invalid="ignore"):
        return np.isfinite(p) & (p < alpha / max(m, 1))


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
