"""UserPreferences: per-user preference weights, a population model plus a shrunk offset per user."""
from __future__ import annotations

import copy
import numbers
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core, _laplace
from ._estimator import Estimator
from ._gpu.device import dispatch
from ._io import tensors_from_bytes, tensors_to_bytes
from ._memory import check_allocation
from ._pairs import (UnknownUserError, as_controls, as_pair_codes, assign_rows, check_nonneg, concat_codes,
                     on_host, rows_for)
from ._persistence import Persistent
from ._validation import not_fitted, as_labels, check_positive_int, resolve_threads
from .preferences import PreferenceModel
from .sparse import SparseCodes

__all__ = ["UserPreferences"]

_FORMAT = "likeable.UserPreferences"
_FORMAT_VERSION = 1

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


class UserPreferences(Estimator, Persistent):
    """Per-user preference weights: population weights plus an offset shrunk toward zero.

    For user u, ``w_u = w_pop + d_u`` where ``d_u`` minimises
    ``sum_{i in u} logloss(y_i, x_i·(w_pop + d_u) + controls) + shrinkage/2 ||d_u||²``.
    All users are solved at once in the core (a Newton solve per user over only the
    features that user touched; in the n × n dual form when a user has fewer pairs than
    active features). Unseen users get the population weights.

    This is the posterior mode of a random-effects logistic model with ``d_u ~ N(0,
    diag(1/shrinkage))``; ``shrinkage="auto"`` estimates the prior variance of every feature's
    offset from the training pairs (empirical Bayes: the Laplace marginal likelihood, see
    :mod:`likeable._laplace`), so features on which people do not differ get no offset.

    Parameters
    ----------
    population : PreferenceModel or None
        A fitted model is used as is (copied); an unfitted one (or None: a default
        ``PreferenceModel()``) is fitted on the pooled pairs in :meth:`fit` (with
        ``shrinkage="auto"`` its weights then become the mean of the users' weights, estimated
        with the prior variances: a pooled fit attenuates the weights people differ on).
    shrinkage : float, array of n_features floats, or "auto"
        L2 strength pulling each user toward the population (> 0). More pairs per user
        outweigh it; a user with few pairs stays near the population. One value per feature
        (inf: that feature has no offset), or ``"auto"``: one per feature estimated in
        :meth:`fit` by marginal likelihood (``shrinkage_``, ``prior_variance_``).
    max_iter, tol : Newton iterations and step tolerance per user.
    threads : int or None
        Threads for fitting and scoring (None: LIKEABLE_NUM_THREADS or all cores).

    Attributes
    ----------
    population_ : PreferenceModel
    user_ids_ : tuple of the fitted users' ids, in row order
    n_features_in_ : int
    shrinkage_ : float or ndarray (n_features,), the shrinkage in use (estimated for "auto")
    prior_variance_ : ndarray (n_features,), 1 / shrinkage_: the between-user variance of each
        feature's weight (0: the feature does not vary by user)
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

    def __init__(self, population: PreferenceModel | None = None, *, shrinkage: Any = 1.0,
                 max_iter: int = 50, tol: float = 1e-6, threads: int | None = None) -> None:
        self.population = population
        self.shrinkage = shrinkage
        self.max_iter = max_iter
        self.tol = tol
        self.threads = threads
        self._validate_params()

    def _check_params(self, params: dict[str, Any]) -> None:
        if params["population"] is not None and not isinstance(params["population"], PreferenceModel):
            raise TypeError(f"population must be a PreferenceModel or None, got {type(params['population']).__name__}")
        _check_shrinkage(params["shrinkage"])
        check_positive_int(params["max_iter"], "max_iter")
        check_nonneg(params["tol"], "tol", strict=True)
        if params["threads"] is not None:
            resolve_threads(params["threads"])

    def _is_fitted(self) -> bool:
        return self.__dict__.get("_state") is not None

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
            raise not_fitted("this UserPreferences is not fitted yet; call fit() first")
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

    @property
    def prior_variance_(self) -> np.ndarray:
        """Between-user variance of each feature's weight, 1 / ``shrinkage_`` (0 where it is inf)."""
        state = self._check_fitted()
        precision = np.broadcast_to(np.asarray(self.shrinkage_, np.float64), (state.offsets.shape[1],))
        return np.where(np.isfinite(precision), 1.0 / precision, 0.0)

    def _solve(self, history: SparseCodes, labels: np.ndarray, controls, users: np.ndarray,
               which: np.ndarray, shrinkage: Any = None) -> tuple[np.ndarray, int]:
        """Offsets for the users ``which`` (sorted rows), from all their pairs in the history.

        ``shrinkage`` (default ``shrinkage_``): a float, or one per feature; then the core
        solves in rescaled features ``x_j / sqrt(s_j)`` with shrinkage 1, which is the same
        problem (inf: the feature's column is zeroed, so its offset stays 0).
        """
        shrinkage = np.asarray(self.shrinkage_ if shrinkage is None else shrinkage, np.float64)
        base = self._population_logit(history, controls)
        per_feature = shrinkage.ndim == 1 and shrinkage.size > 0 and not (
            np.isfinite(shrinkage).all() and np.ptp(shrinkage) == 0)
        if per_feature:
            scale = np.where(np.isfinite(shrinkage), 1.0 / np.sqrt(shrinkage), 0.0)
            history = SparseCodes(history.indptr, history.indices,
                                  (history.values * scale[history.indices]).astype(np.float32),
                                  history.shape)
            shrinkage = np.float64(1.0)
        scalar = float(shrinkage.ravel()[0]) if shrinkage.size else 1.0
        offsets, not_converged = self._solve_core(history, base, labels, users, which, scalar)
        if per_feature:
            offsets = (offsets * scale).astype(np.float32)
        return offsets, not_converged

    def _solve_core(self, history: SparseCodes, base: np.ndarray, labels: np.ndarray, users: np.ndarray,
                    which: np.ndarray, shrinkage: float) -> tuple[np.ndarray, int]:
        max_iter = check_positive_int(self.max_iter, "max_iter")
        tol = check_nonneg(self.tol, "tol", strict=True)
        size = int(max(users.max(initial=-1), which.max(initial=-1))) + 1
        position = np.full(size, -1, dtype=np.int64)
        position[which] = np.arange(which.shape[0])
        mine = position[users] if users.size else users
        keep = np.flatnonzero(mine >= 0)
        order = keep[np.argsort(mine[keep], kind="stable")]
        counts = np.bincount(mine[keep], minlength=which.shape[0])
        row_ptr = np.zeros(which.shape[0] + 1, np.int64)
        np.cumsum(counts, out=row_ptr[1:])
        fit = _core.fit_user_offsets(history, base, labels, row_ptr, order.astype(np.int64), shrinkage, max_iter,
                                     tol, resolve_threads(self.threads))
        return fit.offsets, int(fit.n_not_converged)

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
        self._validate_params()
        pop = copy.deepcopy(self.population if self.population is not None else PreferenceModel())
        fitted = pop._is_fitted()
        codes = as_pair_codes(pair_codes, "pair_codes", pop.n_features_in_ if fitted else None,
                              owner="UserPreferences")
        y = as_labels(labels, codes.shape[0])
        ctl = as_controls(controls, codes.shape[0], pop.n_controls_ if fitted else None)
        row_of: dict = {}
        users = assign_rows(row_of, user_ids, codes.shape[0])
        if not fitted:
            pop.fit(codes, y, ctl)
        everyone = np.arange(len(row_of))
        with self._lock:
            self._population = pop
            # An unfitted population is the random-effects model's mean: estimated with the users.
            self.shrinkage_ = self._fitted_shrinkage(codes, y, ctl, users, everyone, estimate_mean=not fitted)
            offsets, not_converged = self._solve(codes, y, ctl, users, everyone)
            offsets.flags.writeable = False
            self.n_not_converged_ = not_converged
            self._state = _State(tuple(row_of), row_of, offsets, codes, y, users, ctl)
        return self

    def _fitted_shrinkage(self, codes: SparseCodes, y: np.ndarray, ctl, users: np.ndarray, everyone: np.ndarray,
                          estimate_mean: bool):
        """``shrinkage`` as given (checked against the features), or estimated for ``"auto"``
        (with ``estimate_mean``, the population weights are re-estimated with it)."""
        m = codes.shape[1]
        if isinstance(self.shrinkage, str):
            pop = self._population
            coef = pop.coef_.copy()
            base = pop._base_logit(ctl, codes.shape[0])
            threads = resolve_threads(self.threads)

            def solve(precision, shift):
                pop.coef_ = coef + shift
                return self._solve(codes, y, ctl, users, everyone, shrinkage=precision)[0]

            def probabilities(offsets, shift):
                return _core.predict_pairs((coef + shift).astype(np.float32), np.ascontiguousarray(offsets, np.float32),
                                           users, codes, base, threads, False)

            variance, shift, self.n_iter_shrinkage_ = _laplace.estimate_prior_variance(
                solve, probabilities, codes.to_scipy(), users, len(everyone), estimate_mean=estimate_mean)
            pop.coef_ = coef + shift
            return np.where(variance > 0, 1.0 / np.where(variance > 0, variance, 1.0), np.inf)
        value = np.asarray(self.shrinkage, np.float64)
        if value.ndim == 0:
            return float(value)
        if value.shape != (m,):
            raise ValueError(f"shrinkage has {value.shape[0]} values but the pairs have {m} features")
        return value.copy()

    def information_gain(self, pair_codes: Any, user_ids: Any, controls: Any = None) -> np.ndarray:
        """Expected information about each row's user from asking that user about the row's pair.

        ``½ log(1 + p(1 − p) xᵀ Σ_u x)`` with ``Σ_u`` the Laplace posterior covariance of the
        user's offset (the prior ``diag(prior_variance_)`` for a user never seen): what active
        selection maximises to choose the next question. float64 (n_pairs,).
        """
        state = self._check_fitted()
        codes = as_pair_codes(pair_codes, "pair_codes", state.offsets.shape[1], owner="UserPreferences")
        owner = self._rows(state, user_ids, False, codes.shape[0])
        probability = self.predict_proba(codes, user_ids, controls)
        variance = self.prior_variance_
        asked = np.unique(owner[owner >= 0])
        history_p = _core.predict_pairs(self._pop32(), state.offsets, state.history_users, state.history,
                                        self._population._base_logit(state.history_controls, state.history.shape[0]),
                                        resolve_threads(self.threads), False).astype(np.float64)
        asked_mask = np.zeros(len(state.user_ids), bool)
        asked_mask[asked] = True
        rows = [r if asked_mask[u] else r[:0]
                for u, r in enumerate(_laplace.rows_by_user(state.history_users, len(state.user_ids)))]
        free = variance > 0
        precision = np.where(free, 1.0 / np.where(free, variance, 1.0), np.inf)
        designs = _laplace.user_designs(state.history.to_scipy(), rows)
        blocks = {u: (touched, cov) for u, touched, cov, _ in _laplace.posterior_blocks(
            designs, history_p * (1.0 - history_p), free, precision)}
        return _laplace.information_gain(codes.to_scipy(), probability, owner, blocks, variance)

    def update(self, pair_codes: Any, labels: Any, user_ids: Any, controls: Any = None) -> "UserPreferences":
        """Add feedback; refit only the users in ``user_ids`` (new users are added). Returns self.

        Safe with concurrent readers (see the class notes); concurrent updates are serialised.
        """
        with self._lock:
            state = self._check_fitted()
            pop = self._population
            codes = as_pair_codes(pair_codes, "pair_codes", state.offsets.shape[1], owner="UserPreferences")
            y = as_labels(labels, codes.shape[0])
            ctl = as_controls(controls, codes.shape[0], pop.n_controls_)
            row_of = dict(state.row_of)
            new_rows = assign_rows(row_of, user_ids, codes.shape[0])
            history = concat_codes(state.history, codes)
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
        rows, ids = rows_for(state.row_of, user_ids, n)
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
        pop = self._population

        def on_gpu():
            from ._gpu import scoring

            n = pair_codes.shape[0]
            ctl = as_controls(on_host(controls), n, pop.n_controls_)
            rows = self._rows(state, on_host(user_ids), strict, n)
            return scoring.predict_pairs(state, pop.coef_, state.offsets, rows, pair_codes, pop._base_logit(ctl, n),
                                         logits)

        def on_cpu():
            codes = as_pair_codes(pair_codes, "pair_codes", state.offsets.shape[1], owner="UserPreferences")
            ctl = as_controls(controls, codes.shape[0], pop.n_controls_)
            rows = self._rows(state, user_ids, strict, codes.shape[0])
            return _core.predict_pairs(self._pop32(), state.offsets, rows, codes, pop._base_logit(ctl, codes.shape[0]),
                                       resolve_threads(self.threads), logits)

        return dispatch(device, pair_codes, gpu=on_gpu, cpu=on_cpu)

    def score(self, user_ids: Any, item_codes: Any, strict: bool = False, device: str | None = None) -> np.ndarray:
        """Utilities ``item · w_u`` for every user and item: float32 (n_users × n_items).

        GPU item codes (:class:`likeable.gpu.DeviceSparseCodes`, cupyx sparse) are scored on the
        GPU into a CuPy array; ``device="cuda"`` scores host codes there and returns numpy.
        """
        state = self._check_fitted()

        def on_gpu():
            from ._gpu import scoring

            rows = self._rows(state, on_host(user_ids), strict)
            return scoring.score(state, self._population.coef_, state.offsets, rows, item_codes)

        def on_cpu():
            items = as_pair_codes(item_codes, "item_codes", state.offsets.shape[1], owner="UserPreferences")
            rows = self._rows(state, user_ids, strict)
            check_allocation(rows.size * items.shape[0] * 4, f"scores for {rows.size} users x {items.shape[0]} items")
            return _core.score_users_items(self._pop32(), state.offsets, rows, items, resolve_threads(self.threads))

        return dispatch(device, item_codes, gpu=on_gpu, cpu=on_cpu)

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
        if np.ndim(self.shrinkage_):
            tensors["shrinkage"] = np.asarray(self.shrinkage_, np.float64)
        params = {k: getattr(self, k) for k in ("shrinkage", "max_iter", "tol", "threads")}
        if not isinstance(params["shrinkage"], (str, numbers.Real)):
            params["shrinkage"] = np.asarray(params["shrinkage"], np.float64).tolist()
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
        pop = PreferenceModel(**{k: pmeta[k] for k in PreferenceModel._param_names() if k in pmeta})
        # the population of a UserPreferences is always fitted on 0/1 labels
        pop._set_fitted(coef, control_coef, float(pmeta["intercept"]), np.array([0.0, 1.0], np.float32),
                        int(pmeta["n_iter"]), bool(pmeta["converged"]))
        model = cls(pop, **meta["params"])
        model._population = pop
        shrinkage = tensors.get("shrinkage")
        if shrinkage is not None:
            if shrinkage.shape != (m,) or np.isnan(shrinkage).any() or (shrinkage <= 0).any():
                raise ValueError("shrinkage must hold one positive value per feature")
            model.shrinkage_ = np.array(shrinkage, np.float64)
        else:
            model.shrinkage_ = check_nonneg(meta["params"]["shrinkage"], "shrinkage", strict=True)
        model.n_not_converged_ = int(meta.get("n_not_converged", 0))
        offsets = np.array(offsets)  # own, read-only copy
        offsets.flags.writeable = False
        model._state = _State(tuple(ids), {u: i for i, u in enumerate(ids)}, offsets, history,
                              labels.astype(np.float32), users.astype(np.int64), controls)
        return model

    def __repr__(self) -> str:
        state = self.__dict__.get("_state")
        fitted = f", n_users={len(state.user_ids)}, n_features={state.offsets.shape[1]}" if state else ""
        return f"<likeable.UserPreferences(shrinkage={self.shrinkage}{fitted})>"


def _check_shrinkage(value: Any) -> None:
    """A positive finite number, ``"auto"``, or one positive value (inf allowed) per feature."""
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"shrinkage must be a positive number, one per feature, or 'auto'; got {value!r}")
        return
    if isinstance(value, numbers.Real) or np.ndim(value) == 0:
        check_nonneg(value, "shrinkage", strict=True)
        return
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"shrinkage must be a number, an array of numbers or 'auto', got {type(value).__name__}") from None
    if arr.ndim != 1 or arr.size == 0 or np.isnan(arr).any() or (arr <= 0).any():
        raise ValueError("shrinkage per feature must be a non-empty vector of positive values (inf: no offset)")
