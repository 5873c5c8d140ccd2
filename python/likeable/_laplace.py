"""Laplace posteriors of per-user offsets: covariance, prior variances by marginal likelihood, information gain.

The random-effects logistic model behind :class:`likeable.UserPreferences`: user u's weights
are ``w_pop + d_u`` with ``d_u ~ N(0, diag(τ²))``. At the posterior mode ``d̂_u`` (solved in
the core) the Laplace approximation of ``d_u``'s posterior is ``N(d̂_u, Σ_u)`` with
``Σ_u⁻¹ = X_uᵀ W_u X_u + diag(1/τ²)`` (``W_u``: p(1 − p) of the user's pairs). Only the
features a user touched enter ``Σ_u``; for the rest the posterior is the prior. These small
dense blocks are numpy BLAS products and inverses, one per user.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

__all__ = ["rows_by_user", "user_designs", "posterior_blocks", "estimate_prior_variance", "information_gain"]

#: A feature's variance is set to zero (it does not vary by user) once its prior pulls every
#: user's offset to within this share of what the user's data alone would say (τ² · h < it).
PRUNE = 1e-3


def rows_by_user(users: np.ndarray, n_users: int) -> list[np.ndarray]:
    """Row ids of each user 0..n_users-1 (one stable sort)."""
    order = np.argsort(users, kind="stable")
    bounds = np.searchsorted(users[order], np.arange(n_users + 1))
    return [order[bounds[u]:bounds[u + 1]] for u in range(n_users)]


def _flat(codes, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(local row, column, value) of every stored entry of ``rows`` of a CSR matrix."""
    starts, lengths = codes.indptr[rows], codes.indptr[rows + 1] - codes.indptr[rows]
    total = int(lengths.sum())
    local = np.repeat(np.arange(rows.size), lengths)
    position = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths) + np.repeat(starts, lengths)
    return local, codes.indices[position], codes.data[position] if hasattr(codes, "data") else codes.values[position]


def dense_block(codes, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``codes[rows][:, columns]`` as a dense float64 array (``columns`` sorted), without scipy indexing."""
    local, cols, values = _flat(codes, rows)
    out = np.zeros((rows.size, columns.size))
    if columns.size and cols.size:
        at = np.minimum(np.searchsorted(columns, cols), columns.size - 1)
        hit = columns[at] == cols
        out[local[hit], at[hit]] = values[hit]
    return out


def user_designs(codes, rows: list[np.ndarray]) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Per user with pairs: ``(user, its rows, the features it touched, its dense design on them)``."""
    out = []
    for u, r in enumerate(rows):
        if r.size:
            touched = np.unique(_flat(codes, r)[1])
            out.append((u, r, touched, dense_block(codes, r, touched)))
    return out


def posterior_blocks(designs, weights: np.ndarray, free: np.ndarray,
                     precision: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Per user: ``(user, touched free features T, Σ_u restricted to T, data information diag on T)``.

    ``designs`` from :func:`user_designs`, ``weights`` p(1 − p) per pair, ``free`` the
    features whose prior variance is positive, ``precision`` 1/τ² per feature.
    """
    for u, r, touched, x in designs:
        keep = free[touched]
        if not keep.any():
            continue
        x = x[:, keep]
        info = (x.T * weights[r]) @ x
        data_diag = np.diag(info).copy()
        info[np.diag_indices_from(info)] += precision[touched[keep]]
        yield u, touched[keep], _spd_inverse(info), data_diag


def _spd_inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of a small symmetric positive definite matrix (pseudo-inverse if it is singular)."""
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(a, hermitian=True)


def estimate_prior_variance(solve: Callable[[np.ndarray, np.ndarray], np.ndarray],
                            probabilities: Callable[[np.ndarray, np.ndarray], np.ndarray], codes, users: np.ndarray,
                            n_users: int, initial: float = 1.0, per_feature: bool = True, estimate_mean: bool = False,
                            max_iter: int = 200, tol: float = 1e-3) -> tuple[np.ndarray, np.ndarray, int]:
    """Prior variances τ² of the offsets by the Laplace marginal likelihood (type-II ML), and
    optionally the prior mean (the population weights) with them.

    MacKay's evidence update, i.e. EM with Laplace posteriors: ``τ²_j = Σ_u (d̂_uj − d̄_j)² /
    Σ_u γ_uj`` with ``γ_uj = 1 − Σ_u,jj / τ²_j`` (how well user u's data determine its offset
    on j), over the users that touched j; ``d̄_j`` their mean offset when ``estimate_mean``
    (the population weights then move by it: a pooled fit attenuates the weights of features
    people differ on, and every user's offset would lean the same way), else 0. With
    ``per_feature=False`` one τ² for all features. It holds the curvature fixed, so it runs a
    little below the maximum of the Laplace evidence itself (more shrinkage, not less). A
    feature whose variance falls so low that the prior decides every user's offset (``τ²·h <
    PRUNE``, h the median data information of its users) is set to 0: it does not vary by user.

    Parameters
    ----------
    solve : (precision (n_features,), mean shift (n_features,)) -> offsets (n_users, n_features)
        The posterior modes around the population weights plus the shift for prior
        precisions 1/τ² (inf: offset fixed at 0), from the core.
    probabilities : (offsets, mean shift) -> P(first response preferred) per pair.
    codes : scipy CSR (n_pairs, n_features)
    users : int64 (n_pairs,) row of each pair's user
    n_users, initial, per_feature, estimate_mean, max_iter
    tol : stop when no pair's logit moved more than this in an iteration

    Returns
    -------
    (τ² float64 (n_features,), mean shift float64 (n_features,), iterations)
    """
    m = codes.shape[1]
    designs = user_designs(codes, rows_by_user(users, n_users))
    variance, shift = np.full(m, float(initial)), np.zeros(m)
    previous = None
    for iteration in range(1, max_iter + 1):
        free = variance > 0
        precision = np.where(free, 1.0 / np.where(free, variance, 1.0), np.inf)
        offsets = np.asarray(solve(precision, shift), np.float64)
        p = np.asarray(probabilities(offsets, shift), np.float64)
        weights = p * (1.0 - p)
        sums, squares, gammas, counts = np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m)
        information: list[list[float]] = [[] for _ in range(m)]
        for u, touched, cov, data_diag in posterior_blocks(designs, weights, free, precision):
            sums[touched] += offsets[u, touched]
            squares[touched] += offsets[u, touched] ** 2
            gammas[touched] += np.clip(1.0 - np.diag(cov) / variance[touched], 0.0, 1.0)
            counts[touched] += 1
            for j, h in zip(touched, data_diag):
                information[j].append(h)
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0) if estimate_mean else np.zeros(m)
        squares = np.maximum(squares - counts * mean ** 2, 0.0)  # around the users' mean offset
        if per_feature:
            new = np.where(gammas > 1e-12, squares / np.where(gammas > 1e-12, gammas, 1.0), 0.0)
        else:
            total = gammas.sum()
            new = np.where(free, squares.sum() / total if total > 1e-12 else 0.0, 0.0)
        typical = np.array([np.median(h) if h else 0.0 for h in information])
        new = np.where(free & (new * typical >= PRUNE), new, 0.0)
        shift = shift + mean
        # Converged when the model's predictions stop moving: a variance creeping toward zero
        # (a feature that does not vary) no longer changes any logit.
        logits = np.log(np.clip(p, 1e-12, 1.0)) - np.log(np.clip(1.0 - p, 1e-12, 1.0))
        done = previous is not None and np.array_equal(new > 0, free) and np.max(
            np.abs(logits - previous), initial=0.0) < tol
        previous, variance = logits, new
        if done or not (variance > 0).any():
            break
    return variance, shift, iteration


def information_gain(codes, probability: np.ndarray, owner: np.ndarray, blocks: dict,
                     prior_variance: np.ndarray) -> np.ndarray:
    """Expected information about each row's user offset from asking that user about the row's pair.

    ``½ log(1 + p(1 − p) xᵀ Σ_u x)``: the drop in the entropy of the Laplace posterior when
    the answer arrives (the D-optimal criterion for a logistic model). ``blocks[u] = (T, Σ_u)``
    for users with data; others (and features outside T) have the prior ``diag(τ²)``.

    ``codes`` scipy CSR (n, m), ``probability`` (n,), ``owner`` int64 (n,) user row (-1: new user).
    """
    quadratic = np.asarray(codes.multiply(codes) @ prior_variance, np.float64).ravel()  # the prior's part
    order = np.argsort(owner, kind="stable")
    bounds = np.flatnonzero(np.diff(owner[order])) + 1
    for mine in np.split(order, bounds) if owner.size else []:
        u = int(owner[mine[0]])
        if u not in blocks:
            continue
        touched, cov = blocks[u]
        x = dense_block(codes, mine, touched)
        quadratic[mine] += np.einsum("ij,jk,ik->i", x, cov, x) - (x * x) @ prior_variance[touched]
    p = np.asarray(probability, np.float64)
    return 0.5 * np.log1p(p * (1.0 - p) * np.maximum(quadratic, 0.0))
