"""Preference models over sparse pair codes: a population model and per-user personalization.

A preference pair (prompt, response A, response B, label = 1 if A was chosen) is a row of
features of A minus features of B (a sparse code of the embedding difference, or any dense
feature difference such as :class:`likeable.AttributeBank` scores). Bradley–Terry on such rows
is a logistic regression without intercept: P(A preferred) = sigmoid(x · w).

All fitting and scoring runs in the compiled core with the GIL released.
"""
from __future__ import annotations

import copy
import numbers
import threading
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Sequence

import numpy as np

from . import _core
from ._io import atomic_write_bytes, read_file_bytes, tensors_from_bytes, tensors_to_bytes
from ._validation import NotFittedError, as_float32_matrix, as_labels, check_positive_int, resolve_threads
from ._memory import check_allocation
from .sparse import SparseCodes, as_sparse_codes

__all__ = ["PreferenceModel", "UserPreferences", "FeatureEffects", "Selection", "DriftWeights",
           "UnknownUserError", "drift_weights"]

_FORMAT = "likeable.UserPreferences"
_FORMAT_VERSION = 1


class UnknownUserError(KeyError, ValueError):
    """A user id that the model has never seen, asked for with ``strict=True``."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


# --- input checks -------------------------------------------------------------------------
_NO_OFFSETS = np.zeros((0, 0), np.float32)  # a population model has no per-user offsets


def _host(obj: Any) -> Any:
    """Small per-row side inputs (user ids, controls) may come as GPU arrays: bring them over."""
    return obj.get() if type(obj).__module__.startswith("cupy") and hasattr(obj, "get") else obj


def _as_pair_codes(X: Any, name: str = "pair_codes", n_features: int | None = None) -> SparseCodes:
    """SparseCodes, any scipy.sparse matrix, or a dense 2-D array of feature differences."""
    if isinstance(X, SparseCodes) or _is_scipy_sparse(X):
        codes = as_sparse_codes(X, name, n_features)
    else:
        dense = as_float32_matrix(X, name, n_cols=n_features)
        codes = SparseCodes.from_dense(dense)
    if codes.values.size and not np.isfinite(codes.values).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return codes


def _is_scipy_sparse(X: Any) -> bool:
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover - scipy is a dependency
        return False
    return sp.issparse(X)


def _as_controls(controls: Any, n_rows: int, n_controls: int | None) -> np.ndarray | None:
    if controls is None:
        if n_controls:
            raise ValueError(f"the model was fitted with {n_controls} controls; pass controls=")
        return None
    arr = np.asarray(controls)
    if arr.ndim == 1:
        arr = arr[:, None]
    arr = as_float32_matrix(arr, "controls", n_cols=n_controls)
    if arr.shape[0] != n_rows:
        raise ValueError(f"controls has {arr.shape[0]} rows but there are {n_rows} pairs")
    return arr


def _normalise_id(user: Any) -> Hashable:
    if isinstance(user, np.generic):
        user = user.item()
    try:
        hash(user)
    except TypeError:
        raise TypeError(f"user ids must be hashable, got {type(user).__name__}") from None
    return user


def _fast_id_array(user_ids: Any) -> np.ndarray | None:
    """A numpy array of int/str ids (vectorised lookups), or None for anything else."""
    if isinstance(user_ids, np.ndarray) and user_ids.ndim == 1 and user_ids.dtype.kind in "iuU":
        return user_ids
    return None


def _rows_for(row_of: dict, user_ids: Any, n: int | None, name: str = "user_ids") -> tuple[np.ndarray, list]:
    """Row of each id (-1 when absent) and the distinct ids, looked up once per distinct id."""
    arr = _fast_id_array(user_ids)
    if arr is None:
        ids = _as_user_list(user_ids, n, name)
        rows = np.fromiter((row_of.get(u, -1) for u in ids), dtype=np.int64, count=len(ids))
        return rows, ids
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]} but there are {n} pairs")
    uniq, inverse = np.unique(arr, return_inverse=True)
    uniq_ids = uniq.tolist()
    return np.array([row_of.get(u, -1) for u in uniq_ids], dtype=np.int64)[inverse.ravel()], uniq_ids


def _assign_rows(row_of: dict, user_ids: Any, n: int) -> np.ndarray:
    """Rows of the ids, adding unseen ids to ``row_of`` in order of first appearance."""
    arr = _fast_id_array(user_ids)
    if arr is None:
        ids = _as_user_list(user_ids, n)
        return np.fromiter((row_of.setdefault(u, len(row_of)) for u in ids), dtype=np.int64, count=len(ids))
    if arr.shape[0] != n:
        raise ValueError(f"user_ids has length {arr.shape[0]} but there are {n} pairs")
    uniq, first, inverse = np.unique(arr, return_index=True, return_inverse=True)
    uniq_ids = uniq.tolist()
    for j in np.argsort(first, kind="stable"):
        row_of.setdefault(uniq_ids[j], len(row_of))
    return np.array([row_of[u] for u in uniq_ids], dtype=np.int64)[inverse.ravel()]


def _as_user_list(user_ids: Any, n: int | None, name: str = "user_ids") -> list:
    if isinstance(user_ids, (str, bytes)) or not isinstance(user_ids, Iterable):
        raise TypeError(f"{name} must be a sequence of ids (one per row), got {type(user_ids).__name__}")
    ids = [_normalise_id(u) for u in (user_ids.tolist() if isinstance(user_ids, np.ndarray) else user_ids)]
    if n is not None and len(ids) != n:
        raise ValueError(f"{name} has length {len(ids)} but there are {n} pairs")
    return ids


def _check_nonneg(value: Any, name: str, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (strict and value == 0):
        raise ValueError(f"{name} must be {'>' if strict else '>='} 0, got {value!r}")
    return float(value)


# --- results ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureEffects:
    """Per-feature effect on the choice, controlling for the controls.

    For each feature j a logistic model ``label ~ x_j + controls (+ intercept)`` is fitted
    (L2 ``l2`` on the feature's coefficient only); ``std_error`` comes from the inverse
    Hessian at the optimum and ``p_value`` is two-sided (normal approximation). Features that
    are never active have coefficient 0 and NaN statistics.
    """

    coef: np.ndarray
    std_error: np.ndarray
    z: np.ndarray
    p_value: np.ndarray
    n_active: np.ndarray

    def top(self, n: int = 10, names: Sequence[str] | None = None) -> list[tuple]:
        """The ``n`` most significant features as ``(feature, coef, std_error, p_value, n_active)``."""
        order = np.argsort(np.where(np.isnan(self.p_value), np.inf, self.p_value), kind="stable")[:n]
        label = (lambda j: names[j]) if names is not None else int
        return [(label(j), float(self.coef[j]), float(self.std_error[j]), float(self.p_value[j]),
                 int(self.n_active[j])) for j in order]

    def __repr__(self) -> str:
        tested = int(np.count_nonzero(self.n_active))
        signif = int(np.count_nonzero(self.p_value < 0.05))
        return f"<likeable.FeatureEffects(n_features={self.coef.shape[0]}, tested={tested}, p<0.05: {signif})>"


@dataclass(frozen=True)
class Selection:
    """Features chosen along an L1 path (controls unpenalised)."""

    features: np.ndarray   # int64 feature ids, by |coef| descending
    coef: np.ndarray       # their coefficients at ``l1``
    l1: float              # the penalty where the selection was read off
    path_l1: np.ndarray    # penalties visited
    path_n_active: np.ndarray  # non-zero features at each

    def __repr__(self) -> str:
        return f"<likeable.Selection(n_features={self.features.shape[0]}, l1={self.l1:.4g})>"


@dataclass(frozen=True)
class DriftWeights:
    """Per-user unit preference directions from :func:`drift_weights`."""

    user_ids: list
    weights: np.ndarray  # n_users x n_features, unit rows (zero rows for users with no signal)

    def decision_function(self, pair_codes: Any, user_ids: Any) -> np.ndarray:
        """Per-pair margin ``code · p_user`` for each row's user, float32 (0 for unknown users)."""
        codes = _as_pair_codes(pair_codes, n_features=self.weights.shape[1])
        rows, _ = _rows_for({u: i for i, u in enumerate(self.user_ids)}, user_ids, codes.shape[0])
        no_population = np.zeros(self.weights.shape[1], np.float32)
        return _core.predict_pairs(no_population, np.ascontiguousarray(self.weights, np.float32), rows, codes,
                                   None, resolve_threads(None), True)

    def __repr__(self) -> str:
        return f"<likeable.DriftWeights(n_users={len(self.user_ids)}, n_features={self.weights.shape[1]})>"


# --- population model ---------------------------------------------------------------------
class PreferenceModel:
    """Bradley–Terry / logistic model on sparse pair features plus dense controls.

    Minimises ``sum_i logloss(y_i, x_i·w + c_i·g + b) + l2/2 ||w||² + l1 ||w||₁``: the penalties
    apply to the features only (controls and intercept are unpenalised), and the loss is a sum,
    as in scikit-learn's ``LogisticRegression(C=1/l2)``. Solved in the core by IRLS with
    coordinate descent (glmnet's scheme), which handles L1 exactly.

    Parameters
    ----------
    l2, l1 : float
        Penalties on the feature coefficients.
    fit_intercept : bool
        Bradley–Terry on differences has no intercept; set True for a position bias.
    max_iter : int
        Newton (IRLS) iterations.
    tol : float
        Stop when no coefficient moves more than this in a Newton step.
    threads : int or None
        Threads for :meth:`feature_effects` and prediction (None: LIKEABLE_NUM_THREADS or all cores).

    Attributes
    ----------
    coef_ : ndarray (n_features,) float64
    control_coef_ : ndarray (n_controls,) float64
    intercept_ : float
    n_features_in_, n_controls_, n_iter_, converged_
    """

    def __init__(self, *, l2: float = 1.0, l1: float = 0.0, fit_intercept: bool = False,
                 max_iter: int = 100, tol: float = 1e-7, threads: int | None = None) -> None:
        self.l2 = l2
        self.l1 = l1
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.threads = threads

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in ("l2", "l1", "fit_intercept", "max_iter", "tol", "threads")}

    def set_params(self, **params) -> "PreferenceModel":
        for key, value in params.items():
            if key not in self.get_params():
                raise ValueError(f"unknown parameter {key!r} for PreferenceModel")
            setattr(self, key, value)
        return self

    def _checked_params(self) -> tuple[float, float, int, float]:
        return (_check_nonneg(self.l2, "l2"), _check_nonneg(self.l1, "l1"),
                check_positive_int(self.max_iter, "max_iter"), _check_nonneg(self.tol, "tol", strict=True))

    def _prepare(self, pair_codes, labels, controls, n_features=None, n_controls=None):
        codes = _as_pair_codes(pair_codes, n_features=n_features)
        y = as_labels(labels, codes.shape[0])
        ctl = _as_controls(controls, codes.shape[0], n_controls)
        return codes, y, ctl

    def fit(self, pair_codes: Any, labels: Any, controls: Any = None) -> "PreferenceModel":
        """Fit on pair codes (SparseCodes, scipy.sparse or dense), labels in {0, 1} and optional controls."""
        l2, l1, max_iter, tol = self._checked_params()
        codes, y, ctl = self._prepare(pair_codes, labels, controls)
        coef, control_coef, intercept, n_iter, converged = _core.fit_logistic(
            codes, ctl, y, None, l2, l1, bool(self.fit_intercept), max_iter, tol)
        self.coef_ = coef
        self.control_coef_ = control_coef
        self.intercept_ = float(intercept)
        self.n_features_in_ = codes.shape[1]
        self.n_controls_ = 0 if ctl is None else ctl.shape[1]
        self.n_iter_ = int(n_iter)
        self.converged_ = bool(converged)
        return self

    @classmethod
    def from_coefficients(cls, coef: Any, control_coef: Any = None, intercept: float = 0.0,
                          **params) -> "PreferenceModel":
        """A fitted model with the given weights, without fitting (``params`` as for the constructor).

        E.g. ``PreferenceModel.from_coefficients(np.zeros(m))``: the all-zero prior of per-user-only
        :class:`UserPreferences`.
        """
        coef = np.array(coef, dtype=np.float64).ravel()
        control_coef = np.zeros(0) if control_coef is None else np.array(control_coef, dtype=np.float64).ravel()
        intercept = float(intercept)
        if not (np.isfinite(coef).all() and np.isfinite(control_coef).all() and np.isfinite(intercept)):
            raise ValueError("coefficients must be finite")
        model = cls(**params)
        model.coef_, model.control_coef_, model.intercept_ = coef, control_coef, intercept
        model.n_features_in_, model.n_controls_ = coef.shape[0], control_coef.shape[0]
        model.n_iter_, model.converged_ = 0, True
        return model

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("this PreferenceModel is not fitted yet; call fit() first")

    def _base_logit(self, ctl: np.ndarray | None, n_rows: int) -> np.ndarray:
        """Controls and intercept part of the logit, per row (float32)."""
        base = np.full(n_rows, self.intercept_, dtype=np.float64)
        if ctl is not None and self.n_controls_:
            base += ctl.astype(np.float64) @ self.control_coef_
        return base.astype(np.float32)

    def decision_function(self, pair_codes: Any, controls: Any = None, device: str | None = None) -> np.ndarray:
        """Logit of P(A preferred) per pair, float32 of shape (n_pairs,)."""
        return self._pairs(pair_codes, controls, logits=True, device=device)

    def predict_proba(self, pair_codes: Any, controls: Any = None, device: str | None = None) -> np.ndarray:
        """P(first response preferred) per pair, float32 of shape (n_pairs,) (GPU codes: on the GPU)."""
        return self._pairs(pair_codes, controls, logits=False, device=device)

    def _pairs(self, pair_codes: Any, controls: Any, logits: bool, device: str | None = None) -> np.ndarray:
        self._check_fitted()
        from . import gpu

        if gpu.wants_gpu(device, pair_codes):
            n = pair_codes.shape[0]
            ctl = _as_controls(_host(controls), n, self.n_controls_)
            with gpu.device_context(device):
                out = gpu.predict_pairs(self, self.coef_, _NO_OFFSETS, None, pair_codes,
                                        self._base_logit(ctl, n), logits)
            return out if gpu.is_device_array(pair_codes) else out.get()
        codes = _as_pair_codes(pair_codes, n_features=self.n_features_in_)
        ctl = _as_controls(controls, codes.shape[0], self.n_controls_)
        no_users = np.full(codes.shape[0], -1, dtype=np.int64)
        return _core.predict_pairs(self.coef_.astype(np.float32), np.zeros((0, self.n_features_in_), np.float32),
                                   no_users, codes, self._base_logit(ctl, codes.shape[0]),
                                   resolve_threads(self.threads), logits)

    def predict(self, pair_codes: Any, controls: Any = None) -> np.ndarray:
        """1 where A is predicted to be chosen."""
        return (self.predict_proba(pair_codes, controls) > 0.5).astype(np.int64)

    def feature_effects(self, pair_codes: Any, labels: Any, controls: Any = None) -> FeatureEffects:
        """Per feature: coefficient controlling for the controls, standard error, p-value.

        One small logistic per feature (feature + controls, intercept if ``fit_intercept``),
        all solved at once in the core; uses this model's ``l2`` on the feature coefficient
        (set ``l2=0`` for classical unpenalised standard errors). Does not need ``fit``.
        """
        l2, _, max_iter, tol = self._checked_params()
        codes, y, ctl = self._prepare(pair_codes, labels, controls)
        out = _core.feature_effects(codes, ctl, y, l2, bool(self.fit_intercept), max_iter, tol,
                                    resolve_threads(self.threads))
        return FeatureEffects(**out)

    def select(self, pair_codes: Any, labels: Any, n_features: int = 10, controls: Any = None,
               n_steps: int = 50, min_ratio: float = 1e-3, progress: bool = False) -> Selection:
        """Choose ``n_features`` features along an L1 path with the controls unpenalised.

        Walks ``l1`` geometrically down from the smallest penalty that keeps every feature at
        zero (warm-started), stops at the first penalty with at least ``n_features`` active
        features, and returns the ``n_features`` largest in magnitude there. Uses this model's
        ``l2`` as an elastic-net term. Does not change the fitted model. ``progress=True``
        shows a tqdm bar over the path.
        """
        n_features = check_positive_int(n_features, "n_features")
        l2, _, max_iter, tol = self._checked_params()
        codes, y, ctl = self._prepare(pair_codes, labels, controls)
        m = codes.shape[1]
        # Controls-only fit (every feature penalised to zero) gives the gradient at the path start.
        huge = 1e30
        start = _core.fit_logistic(codes, ctl, y, None, l2, huge, bool(self.fit_intercept), max_iter, tol)
        eta = start[2] + (ctl.astype(np.float64) @ start[1] if ctl is not None else 0.0)
        grad = codes.to_scipy().T @ (y - 1.0 / (1.0 + np.exp(-eta)))
        l1_max = float(np.max(np.abs(grad))) if m and codes.nnz else 0.0
        if l1_max == 0.0:
            empty = np.zeros(0, np.int64)
            return Selection(empty, np.zeros(0), 0.0, np.zeros(0), np.zeros(0, np.int64))
        path = l1_max * np.geomspace(1.0, min_ratio, n_steps)
        init = start[:3]
        visited, actives = [], []
        coef = np.asarray(start[0])
        chosen_l1 = path[-1]
        from tqdm.auto import tqdm

        for l1 in tqdm(path, desc="L1 path", disable=not progress, leave=False):
            coef, control_coef, intercept, _, _ = _core.fit_logistic(
                codes, ctl, y, None, l2, float(l1), bool(self.fit_intercept), max_iter, tol, init)
            init = (coef, control_coef, intercept)
            visited.append(l1)
            actives.append(int(np.count_nonzero(coef)))
            chosen_l1 = float(l1)
            if actives[-1] >= n_features:
                break
        nonzero = np.flatnonzero(coef)
        order = nonzero[np.argsort(-np.abs(coef[nonzero]), kind="stable")][:n_features]
        return Selection(order.astype(np.int64), coef[order], chosen_l1, np.asarray(visited),
                         np.asarray(actives, dtype=np.int64))

    def __repr__(self) -> str:
        state = f", n_features={self.n_features_in_}" if hasattr(self, "coef_") else ""
        return (f"<likeable.PreferenceModel(l2={self.l2}, l1={self.l1}, "
                f"fit_intercept={self.fit_intercept}{state})>")


# --- per-user model -----------------------------------------------------------------------
@dataclass(frozen=True)
class _State:
    """Everything a reader needs, swapped as one reference by ``update`` (never mutated)."""

    user_ids: tuple
    row_of: dict
    offsets: np.ndarray          # n_users x n_features float32, read-only
    history: SparseCodes         # every pair seen, for exact refits on update
    history_labels: np.ndarray   # float32
    history_users: np.ndarray    # int64 row of the user of each pair
    history_controls: np.ndarray | None


class UserPreferences:
    """Per-user preference weights: population weights plus an offset shrunk toward zero.

    For user u, ``w_u = w_pop + d_u`` where ``d_u`` minimises
    ``sum_{i in u} logloss(y_i, x_i·(w_pop + d_u) + controls) + shrinkage/2 ||d_u||²``.
    All users are solved at once in the core (a Newton solve per user over only the
    features that user touched; in the n × n dual form when a user has fewer pairs than
    active features). Unseen users get the population weights.

    Parameters
    ----------
    population : PreferenceModel or None
        A fitted model is used as is (copied); an unfitted one (or None: a default
        ``PreferenceModel()``) is fitted on the pooled pairs in :meth:`fit`.
    shrinkage : float
        L2 strength pulling each user toward the population (> 0). More pairs per user
        outweigh it; a user with few pairs stays near the population.
    max_iter, tol : Newton iterations and step tolerance per user.
    threads : int or None
        Threads for fitting and scoring (None: LIKEABLE_NUM_THREADS or all cores).

    Attributes
    ----------
    population_ : PreferenceModel
    user_ids_ : tuple of the fitted users' ids, in row order
    n_features_in_ : int
    n_not_converged_ : int (users whose Newton solve hit max_iter in the last fit/update)

    Notes
    -----
    Thread safety: readers (``weights``, ``predict_proba``, ``score``, ``top_items``) take one
    reference to an immutable state object and never lock. ``update`` holds ``self._lock``
    (one writer at a time), builds new arrays (copy-on-write: the old offsets are never
    written), and swaps the state reference at the end, so a concurrent reader sees the
    model entirely before or entirely after an update. The model keeps every pair it was
    fitted on, so ``update`` refits the affected users exactly: ``fit(a)`` then ``update(b)``
    equals ``fit(a + b)`` for those users (the population is not refitted by ``update``).
    """

    def __init__(self, population: PreferenceModel | None = None, *, shrinkage: float = 1.0,
                 max_iter: int = 50, tol: float = 1e-6, threads: int | None = None) -> None:
        self.population = population
        self.shrinkage = shrinkage
        self.max_iter = max_iter
        self.tol = tol
        self.threads = threads

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in ("population", "shrinkage", "max_iter", "tol", "threads")}

    # locks cannot be pickled or deep-copied; create on demand
    @property
    def _lock(self) -> threading.Lock:
        lock = self.__dict__.get("_lock_obj")
        if lock is None:
            lock = self.__dict__.setdefault("_lock_obj", threading.Lock())
        return lock

    def _check_fitted(self) -> _State:
        state = self.__dict__.get("_state")
        if state is None:
            raise NotFittedError("this UserPreferences is not fitted yet; call fit() first")
        return state

    @property
    def population_(self) -> PreferenceModel:
        self._check_fitted()
        return self._population

    @property
    def user_ids_(self) -> tuple:
        return self._check_fitted().user_ids

    @property
    def n_users_(self) -> int:
        return len(self._check_fitted().user_ids)

    @property
    def n_features_in_(self) -> int:
        return self._check_fitted().offsets.shape[1]

    @property
    def offsets_(self) -> np.ndarray:
        """Per-user offsets from the population (n_users × n_features, read-only)."""
        return self._check_fitted().offsets

    def _solve(self, history: SparseCodes, labels: np.ndarray, controls, users: np.ndarray,
               which: np.ndarray) -> tuple[np.ndarray, int]:
        """Offsets for the users ``which`` (sorted rows), from all their pairs in the history."""
        shrinkage = _check_nonneg(self.shrinkage, "shrinkage", strict=True)
        max_iter = check_positive_int(self.max_iter, "max_iter")
        tol = _check_nonneg(self.tol, "tol", strict=True)
        base = self._population_logit(history, controls)
        size = int(max(users.max(initial=-1), which.max(initial=-1))) + 1
        position = np.full(size, -1, dtype=np.int64)
        position[which] = np.arange(which.shape[0])
        mine = position[users] if users.size else users
        keep = np.flatnonzero(mine >= 0)
        order = keep[np.argsort(mine[keep], kind="stable")]
        counts = np.bincount(mine[keep], minlength=which.shape[0])
        row_ptr = np.zeros(which.shape[0] + 1, np.int64)
        np.cumsum(counts, out=row_ptr[1:])
        offsets, not_converged = _core.fit_user_offsets(
            history, base, labels, row_ptr, order.astype(np.int64), shrinkage, max_iter, tol,
            resolve_threads(self.threads))
        return offsets, int(not_converged)

    def _population_logit(self, codes: SparseCodes, controls) -> np.ndarray:
        pop = self._population
        feat = codes.to_scipy() @ pop.coef_
        return (feat + pop._base_logit(controls, codes.shape[0])).astype(np.float32)

    def fit(self, pair_codes: Any, labels: Any, user_ids: Any, controls: Any = None) -> "UserPreferences":
        """Fit every user at once; returns self.

        Parameters
        ----------
        pair_codes : SparseCodes, scipy.sparse or dense (n_pairs × n_features)
        labels : array of 0/1 (1: the first response was chosen)
        user_ids : sequence of hashable ids (str or int to be saveable), one per pair
        controls : optional dense covariates (n_pairs × n_controls) for the population model
        """
        _check_nonneg(self.shrinkage, "shrinkage", strict=True)
        pop = self.population if self.population is not None else PreferenceModel()
        if not isinstance(pop, PreferenceModel):
            raise TypeError(f"population must be a PreferenceModel or None, got {type(pop).__name__}")
        pop = copy.deepcopy(pop)
        fitted = hasattr(pop, "coef_")
        codes = _as_pair_codes(pair_codes, n_features=pop.n_features_in_ if fitted else None)
        y = as_labels(labels, codes.shape[0])
        ctl = _as_controls(controls, codes.shape[0], pop.n_controls_ if fitted else None)
        row_of: dict = {}
        users = _assign_rows(row_of, user_ids, codes.shape[0])
        if not fitted:
            pop.fit(codes, y, ctl)
        with self._lock:
            self._population = pop
            offsets, not_converged = self._solve(codes, y, ctl, users, np.arange(len(row_of)))
            offsets.flags.writeable = False
            self.n_not_converged_ = not_converged
            self._state = _State(tuple(row_of), row_of, offsets, codes, y, users, ctl)
        return self

    def update(self, pair_codes: Any, labels: Any, user_ids: Any, controls: Any = None) -> "UserPreferences":
        """Add feedback; refit only the users in ``user_ids`` (new users are added). Returns self.

        Safe with concurrent readers (see the class notes); concurrent updates are serialised.
        """
        with self._lock:
            state = self._check_fitted()
            pop = self._population
            codes = _as_pair_codes(pair_codes, n_features=state.offsets.shape[1])
            y = as_labels(labels, codes.shape[0])
            ctl = _as_controls(controls, codes.shape[0], pop.n_controls_)
            row_of = dict(state.row_of)
            new_rows = _assign_rows(row_of, user_ids, codes.shape[0])
            history = _concat_codes(state.history, codes)
            labels_all = np.concatenate([state.history_labels, y])
            users_all = np.concatenate([state.history_users, new_rows])
            controls_all = None if ctl is None else np.concatenate([state.history_controls, ctl])
            touched = np.unique(new_rows)
            fresh, not_converged = self._solve(history, labels_all, controls_all, users_all, touched)
            offsets = np.zeros((len(row_of), state.offsets.shape[1]), np.float32)
            offsets[:state.offsets.shape[0]] = state.offsets  # copy-on-write: readers keep the old array
            offsets[touched] = fresh
            offsets.flags.writeable = False
            self.n_not_converged_ = not_converged
            self._state = _State(tuple(row_of), row_of, offsets, history, labels_all, users_all, controls_all)
        return self

    # --- reading ------------------------------------------------------------------------
    def _rows(self, state: _State, user_ids: Any, strict: bool, n: int | None = None) -> np.ndarray:
        rows, ids = _rows_for(state.row_of, user_ids, n)
        if strict and rows.size and (rows < 0).any():
            unknown = next(u for u in ids if u not in state.row_of)
            raise UnknownUserError(f"unknown user {unknown!r}: not in the fitted users "
                                   f"(pass strict=False to fall back to the population)")
        return rows

    def _pop32(self) -> np.ndarray:
        return self._population.coef_.astype(np.float32)

    def weights(self, user_ids: Any, strict: bool = False) -> np.ndarray:
        """Dense weights (n_users × n_features) float32; unseen users get the population's
        (or :class:`UnknownUserError` with ``strict=True``)."""
        state = self._check_fitted()
        rows = self._rows(state, user_ids, strict)
        check_allocation(rows.size * state.offsets.shape[1] * 4, f"weights for {rows.size} users")
        return _core.gather_weights(self._pop32(), state.offsets, rows, resolve_threads(self.threads))

    def predict_proba(self, pair_codes: Any, user_ids: Any, controls: Any = None,
                      strict: bool = False, device: str | None = None) -> np.ndarray:
        """P(first response preferred) for each (pair, user) row, float32 (n_pairs,).

        GPU pair codes (or ``device="cuda"``) run on the GPU, as in :meth:`score`.
        """
        return self._pairs(pair_codes, user_ids, controls, strict, logits=False, device=device)

    def decision_function(self, codes: Any, user_ids: Any, controls: Any = None,
                          strict: bool = False, device: str | None = None) -> np.ndarray:
        """Per-row utility ``code · w_user`` (+ the population's control terms), float32.

        For pair codes this is the logit of :meth:`predict_proba`; for a candidate's own code
        it is that candidate's utility for the row's user.
        """
        return self._pairs(codes, user_ids, controls, strict, logits=True, device=device)

    def _pairs(self, pair_codes: Any, user_ids: Any, controls: Any, strict: bool, logits: bool,
               device: str | None = None) -> np.ndarray:
        state = self._check_fitted()
        from . import gpu

        if gpu.wants_gpu(device, pair_codes):
            n = pair_codes.shape[0]
            ctl = _as_controls(_host(controls), n, self._population.n_controls_)
            rows = self._rows(state, _host(user_ids), strict, n)
            with gpu.device_context(device):
                out = gpu.predict_pairs(state, self._population.coef_, state.offsets, rows, pair_codes,
                                        self._population._base_logit(ctl, n), logits)
            return out if gpu.is_device_array(pair_codes) else out.get()
        codes = _as_pair_codes(pair_codes, n_features=state.offsets.shape[1])
        ctl = _as_controls(controls, codes.shape[0], self._population.n_controls_)
        rows = self._rows(state, user_ids, strict, codes.shape[0])
        return _core.predict_pairs(self._pop32(), state.offsets, rows, codes,
                                   self._population._base_logit(ctl, codes.shape[0]),
                                   resolve_threads(self.threads), logits)

    def score(self, user_ids: Any, item_codes: Any, strict: bool = False, device: str | None = None) -> np.ndarray:
        """Utilities ``item · w_u`` for every user and item: float32 (n_users × n_items).

        GPU item codes (:class:`likeable.gpu.DeviceSparseCodes`, cupyx sparse) are scored on the
        GPU into a CuPy array; ``device="cuda"`` scores host codes there and returns numpy.
        """
        state = self._check_fitted()
        from . import gpu

        if gpu.wants_gpu(device, item_codes):
            rows = self._rows(state, _host(user_ids), strict)
            with gpu.device_context(device):
                out = gpu.score(state, self._population.coef_, state.offsets, rows, item_codes)
            return out if gpu.is_device_array(item_codes) else out.get()
        items = _as_pair_codes(item_codes, "item_codes", n_features=state.offsets.shape[1])
        rows = self._rows(state, user_ids, strict)
        check_allocation(rows.size * items.shape[0] * 4, f"scores for {rows.size} users x {items.shape[0]} items")
        return _core.score_users_items(self._pop32(), state.offsets, rows, items, resolve_threads(self.threads))

    def top_items(self, user_ids: Any, index: Any, k: int = 10, strict: bool = False):
        """Each user's ``k`` best items from ``index`` (e.g. :class:`likeable.SparseIndex`).

        Calls ``index.search(weights, k=k)`` with the users' dense weights as queries and
        returns what it returns (``(ids, scores)``, n_users × k).
        """
        k = check_positive_int(k, "k")
        return index.search(self.weights(user_ids, strict=strict), k=k)

    # --- persistence --------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """safetensors bytes: population weights, per-user offsets, history; JSON id map in metadata."""
        state = self._check_fitted()
        for u in state.user_ids:
            if isinstance(u, bool) or not isinstance(u, (str, int)):
                raise TypeError(f"only str and int user ids can be saved, got {type(u).__name__} ({u!r})")
        pop = self._population
        tensors = {
            "population_coef": pop.coef_, "population_control_coef": pop.control_coef_,
            "offsets": state.offsets,
            "history_indptr": state.history.indptr, "history_indices": state.history.indices,
            "history_values": state.history.values, "history_labels": state.history_labels,
            "history_users": state.history_users,
        }
        if state.history_controls is not None:
            tensors["history_controls"] = state.history_controls
        params = {k: getattr(self, k) for k in ("shrinkage", "max_iter", "tol", "threads")}
        metadata = {
            "format": _FORMAT, "version": _FORMAT_VERSION, "user_ids": list(state.user_ids),
            "n_features": state.offsets.shape[1], "params": params,
            "population": {**pop.get_params(), "intercept": pop.intercept_, "n_iter": pop.n_iter_,
                           "converged": pop.converged_},
            "n_not_converged": getattr(self, "n_not_converged_", 0),
        }
        return tensors_to_bytes(tensors, metadata)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> "UserPreferences":
        """Inverse of :meth:`to_bytes`; damaged or foreign data raises :class:`likeable.FormatError`."""
        tensors, meta = tensors_from_bytes(bytes(data), source)
        try:
            return cls._from_parts(tensors, meta, source)
        except _core.FormatError:
            raise
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise _core.FormatError(f"{source}: inconsistent UserPreferences data ({exc})") from None

    @classmethod
    def _from_parts(cls, tensors: dict, meta: dict, source: str) -> "UserPreferences":
        if meta.get("format") != _FORMAT:
            raise _core.FormatError(f"{source}: not a UserPreferences file (format={meta.get('format')!r})")
        if meta.get("version") != _FORMAT_VERSION:
            raise _core.FormatError(f"{source}: unsupported UserPreferences version {meta.get('version')!r} "
                                    f"(this likeable reads version {_FORMAT_VERSION})")
        m = int(meta["n_features"])
        ids = [u for u in meta["user_ids"]]
        offsets = tensors["offsets"]
        coef = tensors["population_coef"]
        if offsets.dtype != np.float32 or offsets.shape != (len(ids), m):
            raise ValueError(f"offsets have shape {offsets.shape}, expected ({len(ids)}, {m})")
        if coef.shape != (m,) or coef.dtype != np.float64:
            raise ValueError("population_coef has the wrong shape or dtype")
        if not (np.isfinite(offsets).all() and np.isfinite(coef).all()):
            raise ValueError("weights contain NaN or Inf")
        labels = tensors["history_labels"]
        history = SparseCodes(tensors["history_indptr"], tensors["history_indices"], tensors["history_values"],
                              (labels.shape[0], m))
        users = tensors["history_users"]
        if users.shape != labels.shape or (users.size and (users.min() < 0 or users.max() >= len(ids))):
            raise ValueError("history_users out of range")
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate user ids")
        control_coef = tensors["population_control_coef"]
        controls = tensors.get("history_controls")
        if control_coef.size and (controls is None or controls.shape != (labels.shape[0], control_coef.size)):
            raise ValueError("history_controls missing or of the wrong shape")
        pmeta = meta["population"]
        pop = PreferenceModel(**{k: pmeta[k] for k in PreferenceModel().get_params()})
        pop.coef_, pop.control_coef_ = coef, control_coef
        pop.intercept_ = float(pmeta["intercept"])
        pop.n_features_in_, pop.n_controls_ = m, int(control_coef.size)
        pop.n_iter_, pop.converged_ = int(pmeta["n_iter"]), bool(pmeta["converged"])
        model = cls(pop, **meta["params"])
        model._population = pop
        model.n_not_converged_ = int(meta.get("n_not_converged", 0))
        offsets = np.array(offsets)  # own, read-only copy
        offsets.flags.writeable = False
        model._state = _State(tuple(ids), {u: i for i, u in enumerate(ids)}, offsets, history,
                              labels.astype(np.float32), users.astype(np.int64), controls)
        return model

    def save(self, path) -> None:
        """Write atomically (temporary file in the same folder, fsync, rename)."""
        atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path) -> "UserPreferences":
        return cls.from_bytes(read_file_bytes(path), source=str(path))

    def __getstate__(self) -> dict:
        if self.__dict__.get("_state") is None:
            return {"params": self.get_params()}
        return {"bytes": self.to_bytes()}

    def __setstate__(self, state: dict) -> None:
        if "bytes" in state:
            self.__dict__.update(UserPreferences.from_bytes(state["bytes"], "<pickle>").__dict__)
        else:
            self.__dict__.update(state["params"])

    def __deepcopy__(self, memo) -> "UserPreferences":
        clone = UserPreferences.__new__(UserPreferences)
        clone.__setstate__(self.__getstate__())
        return clone

    def __repr__(self) -> str:
        state = self.__dict__.get("_state")
        fitted = f", n_users={len(state.user_ids)}, n_features={state.offsets.shape[1]}" if state else ""
        return f"<likeable.UserPreferences(shrinkage={self.shrinkage}{fitted})>"


def _concat_codes(a: SparseCodes, b: SparseCodes) -> SparseCodes:
    indptr = np.concatenate([a.indptr, b.indptr[1:] + a.indptr[-1]])
    return SparseCodes(indptr, np.concatenate([a.indices, b.indices]), np.concatenate([a.values, b.values]),
                       (a.shape[0] + b.shape[0], a.shape[1]), validate=False)


# --- baseline -----------------------------------------------------------------------------
def drift_weights(attribute_deltas: Any, labels: Any, user_ids: Any) -> DriftWeights:
    """Baseline per-user preference directions: ``p_u = v_u / ||v_u||``, ``v_u = Σ winner − loser``.

    ``attribute_deltas`` are per-pair differences A − B (dense or sparse); a pair with
    label 1 adds the delta, label 0 subtracts it. Users whose sum is zero get a zero row.
    """
    import scipy.sparse as sp

    deltas = attribute_deltas
    if not (isinstance(deltas, SparseCodes) or sp.issparse(deltas)):
        deltas = as_float32_matrix(deltas, "attribute_deltas")
        n = deltas.shape[0]
    else:
        deltas = _as_pair_codes(deltas, "attribute_deltas").to_scipy()
        n = deltas.shape[0]
    y = as_labels(labels, n)
    ids = _as_user_list(user_ids, n)
    row_of: dict = {}
    users = np.fromiter((row_of.setdefault(u, len(row_of)) for u in ids), dtype=np.int64, count=n)
    sign = (2.0 * y - 1.0).astype(np.float64)
    indicator = sp.csr_matrix((sign, (users, np.arange(n))), shape=(len(row_of), n))
    v = indicator @ deltas
    v = np.asarray(v.toarray() if sp.issparse(v) else v, dtype=np.float64)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    weights = np.divide(v, norm, out=np.zeros_like(v), where=norm > 0).astype(np.float32)
    return DriftWeights(list(row_of), weights)
