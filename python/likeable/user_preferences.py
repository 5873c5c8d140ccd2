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
from ._io import Fields, check_tensor, tensors_from_bytes, tensors_to_bytes
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
    """Everything a reader uses, swapped as one reference by ``fit`` and ``update`` (never
    mutated): a reader takes the reference once and sees one fitted model throughout."""

    population: PreferenceModel  # fitted; never changed once in a state
    population32: np.ndarray     # its coef_ as float32 (read-only): what the kernels read
    shrinkage: Any               # float, or float64 per feature (inf: no offset)
    n_not_converged: int
    n_iter_shrinkage: int | None  # marginal-likelihood iterations (shrinkage="auto" only)
    user_ids: tuple
    row_of: dict
    offsets: np.ndarray          # n_users x n_features float32, read-only
    history: SparseCodes         # every pair seen, for exact refits on update
    history_labels: np.ndarray   # float32
    history_users: np.ndarray    # int64 row of the user of each pair
    history_controls: np.ndarray | None


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.array(a)  # own copy
    a.flags.writeable = False
    return a


def _new_state(population: PreferenceModel, shrinkage, n_not_converged: int, n_iter_shrinkage, row_of: dict,
               offsets, history, labels, users, controls) -> _State:
    return _State(population, _read_only(population.coef_.astype(np.float32)), shrinkage, int(n_not_converged),
                  n_iter_shrinkage, tuple(row_of), row_of, _read_only(offsets), history, labels, users, controls)


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
    Thread safety: readers (``weights``, ``predict_proba``, ``score``, ``top_items``, the fitted
    attributes, ``save``) take one reference to an immutable state object holding everything
    they use (population, offsets, shrinkage, ids, history) and never lock. ``fit`` and
    ``update`` hold ``self._lock`` (one writer at a time), build new arrays (copy-on-write: the
    old ones are never written), and swap the state reference at the end, so a concurrent
    reader sees the model entirely before or entirely after a fit or an update. The model keeps every pair it was
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
        return self._check_fitted().population

    @property
    def shrinkage_(self) -> Any:
        """The shrinkage in use: a float, or float64 per feature (estimated for ``"auto"``)."""
        return self._check_fitted().shrinkage

    @property
    def n_not_converged_(self) -> int:
        return self._check_fitted().n_not_converged

    @property
    def n_iter_shrinkage_(self) -> int:
        n_iter = self._check_fitted().n_iter_shrinkage
        if n_iter is None:
            raise AttributeError("n_iter_shrinkage_ exists only for shrinkage='auto'")
        return n_iter

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
        precision = np.broadcast_to(np.asarray(state.shrinkage, np.float64), (state.offsets.shape[1],))
        return np.where(np.isfinite(precision), 1.0 / precision, 0.0)

    def _solve(self, pop: PreferenceModel, shrinkage: Any, history: SparseCodes, labels: np.ndarray, controls,
               users: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, int]:
        """Offsets for the users ``which`` (sorted rows), from all their pairs in the history,
        around the population ``pop``.

        ``shrinkage``: a float, or one per feature; then the core solves in rescaled features
        ``x_j / sqrt(s_j)`` with shrinkage 1, which is the same problem (inf: the feature's
        column is zeroed, so its offset stays 0).
        """
        shrinkage = np.asarray(shrinkage, np.float64)
        base = _population_logit(pop, history, controls)
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
        with self._lock:  # everything below is private until the one swap at the end
            # An unfitted population is the random-effects model's mean: estimated with the users.
            shrinkage, n_iter = self._fitted_shrinkage(pop, codes, y, ctl, users, everyone, estimate_mean=not fitted)
            offsets, not_converged = self._solve(pop, shrinkage, codes, y, ctl, users, everyone)
            self._state = _new_state(pop, shrinkage, not_converged, n_iter, row_of, offsets, codes, y, users, ctl)
        return self

    def _fitted_shrinkage(self, pop: PreferenceModel, codes: SparseCodes, y: np.ndarray, ctl, users: np.ndarray,
                          everyone: np.ndarray, estimate_mean: bool):
        """(shrinkage, marginal-likelihood iterations or None): ``shrinkage`` as given (checked
        against the features), or estimated for ``"auto"`` (with ``estimate_mean``, the weights
        of ``pop``, which is not yet shared, are re-estimated with it)."""
        m = codes.shape[1]
        if isinstance(self.shrinkage, str):
            coef = pop.coef_.copy()
            base = pop._base_logit(ctl, codes.shape[0])
            threads = resolve_threads(self.threads)

            def solve(precision, shift):
                pop.coef_ = coef + shift
                return self._solve(pop, precision, codes, y, ctl, users, everyone)[0]

            def probabilities(offsets, shift):
                return _core.predict_pairs((coef + shift).astype(np.float32), np.ascontiguousarray(offsets, np.float32),
                                           users, codes, base, threads, False)

            variance, shift, n_iter = _laplace.estimate_prior_variance(
                solve, probabilities, codes.to_scipy(), users, len(everyone), estimate_mean=estimate_mean)
            pop.coef_ = coef + shift
            return np.where(variance > 0, 1.0 / np.where(variance > 0, variance, 1.0), np.inf), int(n_iter)
        value = np.asarray(self.shrinkage, np.float64)
        if value.ndim == 0:
            return float(value), None
        if value.shape != (m,):
            raise ValueError(f"shrinkage has {value.shape[0]} values but the pairs have {m} features")
        return _read_only(value), None

    def information_gain(self, pair_codes: Any, user_ids: Any, controls: Any = None) -> np.ndarray:
        """Expected information about each row's user from asking that user about the row's pair.

        ``½ log(1 + p(1 − p) xᵀ Σ_u x)`` with ``Σ_u`` the Laplace posterior covariance of the
        user's offset (the prior ``diag(prior_variance_)`` for a user never seen): what active
        selection maximises to choose the next question. float64 (n_pairs,).
        """
        state = self._check_fitted()
        codes = as_pair_codes(pair_codes, "pair_codes", state.offsets.shape[1], owner="UserPreferences")
        owner = self._rows(state, user_ids, False, codes.shape[0])
        probability = self._pairs_cpu(state, codes, user_ids, controls, False, logits=False)
        free_variance = np.broadcast_to(np.asarray(state.shrinkage, np.float64), (state.offsets.shape[1],))
        variance = np.where(np.isfinite(free_variance), 1.0 / free_variance, 0.0)
        asked = np.unique(owner[owner >= 0])
        history_p = _core.predict_pairs(state.population32, state.offsets, state.history_users, state.history,
                                        state.population._base_logit(state.history_controls, state.history.shape[0]),
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
            pop = state.population
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
            fresh, not_converged = self._solve(pop, state.shrinkage, history, labels_all, controls_all, users_all,
                                               touched)
            offsets = np.zeros((len(row_of), state.offsets.shape[1]), np.float32)
            offsets[:state.offsets.shape[0]] = state.offsets  # copy-on-write: readers keep the old array
            offsets[touched] = fresh
            self._state = _new_state(pop, state.shrinkage, not_converged, state.n_iter_shrinkage, row_of, offsets,
                                     history, labels_all, users_all, controls_all)
        return self

    # --- reading ------------------------------------------------------------------------
    def _rows(self, state: _State, user_ids: Any, strict: bool, n: int | None = None) -> np.ndarray:
        rows, ids = rows_for(state.row_of, user_ids, n)
        if strict and rows.size and (rows < 0).any():
            unknown = next(u for u in ids if u not in state.row_of)
            raise UnknownUserError(f"unknown user {unknown!r}: not in the fitted users "
                                   f"(pass strict=False to fall back to the population)")
        return rows

    def weights(self, user_ids: Any, strict: bool = False) -> np.ndarray:
        """Dense weights (n_users × n_features) float32; unseen users get the population's
        (or :class:`UnknownUserError` with ``strict=True``)."""
        state = self._check_fitted()
        rows = self._rows(state, user_ids, strict)
        check_allocation(rows.size * state.offsets.shape[1] * 4, f"weights for {rows.size} users")
        return _core.gather_weights(state.population32, state.offsets, rows, resolve_threads(self.threads))

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
        pop = state.population

        def on_gpu():
            from ._gpu import scoring

            n = pair_codes.shape[0]
            ctl = as_controls(on_host(controls), n, pop.n_controls_)
            rows = self._rows(state, on_host(user_ids), strict, n)
            return scoring.predict_pairs(state, pop.coef_, state.offsets, rows, pair_codes, pop._base_logit(ctl, n),
                                         logits)

        return dispatch(device, pair_codes, gpu=on_gpu,
                        cpu=lambda: self._pairs_cpu(state, pair_codes, user_ids, controls, strict, logits))

    def _pairs_cpu(self, state: _State, pair_codes: Any, user_ids: Any, controls: Any, strict: bool,
                   logits: bool) -> np.ndarray:
        pop = state.population
        codes = as_pair_codes(pair_codes, "pair_codes", state.offsets.shape[1], owner="UserPreferences")
        ctl = as_controls(controls, codes.shape[0], pop.n_controls_)
        rows = self._rows(state, user_ids, strict, codes.shape[0])
        return _core.predict_pairs(state.population32, state.offsets, rows, codes, pop._base_logit(ctl, codes.shape[0]),
                                   resolve_threads(self.threads), logits)

    def score(self, user_ids: Any, item_codes: Any, strict: bool = False, device: str | None = None) -> np.ndarray:
        """Utilities ``item · w_u`` for every user and item: float32 (n_users × n_items).

        GPU item codes (:class:`likeable.gpu.DeviceSparseCodes`, cupyx sparse) are scored on the
        GPU into a CuPy array; ``device="cuda"`` scores host codes there and returns numpy.
        """
        state = self._check_fitted()

        def on_gpu():
            from ._gpu import scoring

            rows = self._rows(state, on_host(user_ids), strict)
            return scoring.score(state, state.population.coef_, state.offsets, rows, item_codes)

        def on_cpu():
            items = as_pair_codes(item_codes, "item_codes", state.offsets.shape[1], owner="UserPreferences")
            rows = self._rows(state, user_ids, strict)
            check_allocation(rows.size * items.shape[0] * 4, f"scores for {rows.size} users x {items.shape[0]} items")
            return _core.score_users_items(state.population32, state.offsets, rows, items, resolve_threads(self.threads))

        return dispatch(device, item_codes, gpu=on_gpu, cpu=on_cpu)

    def top_items(self, user_ids: Any, index: Any, k: int = 10, strict: bool = False):
        """Each user's ``k`` best items: ``(ids, scores)``, n_users x k, best first (ties: lower
        item id), padded with -1 / -inf when there are fewer than ``k`` items.

        ``index`` is a :class:`likeable.SparseIndex` (then this is ``index.search(weights, k=k)``
        with the users' dense weights as queries: both index kinds score every row for them) or
        the items' sparse codes themselves (SparseCodes / scipy.sparse, n_items x n_features).
        Either way each user's scores are selected while a tile of users is scored, so the users x
        items matrix of :meth:`score` is never built.
        """
        k = check_positive_int(k, "k")
        if hasattr(index, "search"):
            return index.search(self.weights(user_ids, strict=strict), k=k)
        state = self._check_fitted()
        items = as_pair_codes(index, "items", state.offsets.shape[1], owner="UserPreferences")
        rows = self._rows(state, user_ids, strict)
        check_allocation(rows.size * k * 12, f"top {k} items for {rows.size} users")
        return _core.top_items(state.population32, state.offsets, rows, items, k, resolve_threads(self.threads))

    # --- persistence --------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """safetensors bytes: population weights, per-user offsets, history; JSON id map in metadata."""
        state = self._check_fitted()
        for u in state.user_ids:
            if isinstance(u, bool) or not isinstance(u, (str, int)):
                raise TypeError(f"only str and int user ids can be saved, got {type(u).__name__} ({u!r})")
        pop = state.population
        tensors = {
            "population_coef": pop.coef_, "population_control_coef": pop.control_coef_,
            "offsets": state.offsets,
            "history_indptr": state.history.indptr, "history_indices": state.history.indices,
            "history_values": state.history.values, "history_labels": state.history_labels,
            "history_users": state.history_users,
        }
        if state.history_controls is not None:
            tensors["history_controls"] = state.history_controls
        if np.ndim(state.shrinkage):
            tensors["shrinkage"] = np.asarray(state.shrinkage, np.float64)
        params = {k: getattr(self, k) for k in ("shrinkage", "max_iter", "tol", "threads")}
        if not isinstance(params["shrinkage"], (str, numbers.Real)):
            params["shrinkage"] = np.asarray(params["shrinkage"], np.float64).tolist()
        metadata = {
            "format": _FORMAT, "version": _FORMAT_VERSION, "user_ids": list(state.user_ids),
            "n_features": state.offsets.shape[1], "params": params,
            "population": {**pop.get_params(), "intercept": pop.intercept_, "n_iter": pop.n_iter_,
                           "converged": pop.converged_},
            "n_not_converged": state.n_not_converged,
        }
        return tensors_to_bytes(tensors, metadata)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> "UserPreferences":
        """Inverse of :meth:`to_bytes`; damaged or foreign data raises :class:`likeable.FormatError`
        naming ``source`` and the field, for every value the model would use (NaN weights,
        labels other than 0/1, ids out of range, impossible parameters such as ``threads``)."""
        tensors, meta = tensors_from_bytes(bytes(data), source)
        try:
            return cls._from_parts(tensors, Fields(meta, source), source)
        except _core.FormatError:
            raise
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise _core.FormatError(f"{source}: inconsistent UserPreferences data ({exc})") from None

    @classmethod
    def _from_parts(cls, tensors: dict, meta: Fields, source: str) -> "UserPreferences":
        if meta.meta.get("format") != _FORMAT:
            raise _core.FormatError(f"{source}: not a UserPreferences file (format={meta.meta.get('format')!r})")
        if meta.int("version") != _FORMAT_VERSION:
            raise _core.FormatError(f"{source}: unsupported UserPreferences version {meta.meta['version']!r} "
                                    f"(this likeable reads version {_FORMAT_VERSION})")
        m = meta.int("n_features")
        ids = meta.list("user_ids")
        if len(set(ids)) != len(ids):
            raise _core.FormatError(f"{source}: field 'user_ids' repeats an id")
        offsets = check_tensor(tensors, "offsets", source, np.float32, (len(ids), m))
        coef = check_tensor(tensors, "population_coef", source, np.float64, (m,))
        control_coef = check_tensor(tensors, "population_control_coef", source, np.float64, (None,))
        labels = check_tensor(tensors, "history_labels", source, np.float32, (None,))
        if labels.size and not np.isin(labels, (0.0, 1.0)).all():
            raise _core.FormatError(f"{source}: tensor 'history_labels' holds values other than 0 and 1")
        n = labels.shape[0]
        users = check_tensor(tensors, "history_users", source, np.int64, (n,))
        if users.size and (users.min() < 0 or users.max() >= len(ids)):
            raise _core.FormatError(f"{source}: tensor 'history_users' names users outside the {len(ids)} saved")
        controls = check_tensor(tensors, "history_controls", source, np.float32, (n, control_coef.size),
                                optional=not control_coef.size)
        parts = [check_tensor(tensors, name, source, dtype, (None,)) for name, dtype in
                 (("history_indptr", np.int64), ("history_indices", np.int32), ("history_values", np.float32))]
        try:
            history = SparseCodes(*parts, (n, m))
        except (ValueError, TypeError) as exc:
            raise _core.FormatError(f"{source}: the history tensors are not valid codes ({exc})") from None
        population = meta.dict("population")
        pop = _params_from(PreferenceModel, {k: population.meta[k] for k in PreferenceModel._param_names()
                                             if k in population.meta}, source, "population")
        # the population of a UserPreferences is always fitted on 0/1 labels
        pop._set_fitted(coef, control_coef, population.float("intercept"), np.array([0.0, 1.0], np.float32),
                        population.int("n_iter"), population.bool("converged"))
        params = meta.dict("params").meta
        model = _params_from(lambda **kw: cls(pop, **kw), params, source, "params")
        shrinkage = check_tensor(tensors, "shrinkage", source, np.float64, (m,), finite=False, optional=True)
        if shrinkage is not None:
            if np.isnan(shrinkage).any() or (shrinkage <= 0).any():
                raise _core.FormatError(f"{source}: tensor 'shrinkage' must hold one positive value per feature")
            shrinkage = _read_only(shrinkage)
        elif isinstance(model.shrinkage, numbers.Real):  # checked by the constructor: positive, finite
            shrinkage = float(model.shrinkage)
        else:
            raise _core.FormatError(f"{source}: tensor 'shrinkage' is missing (params.shrinkage is not one number)")
        model._state = _new_state(pop, shrinkage, meta.int("n_not_converged", default=0), None,
                                  {u: i for i, u in enumerate(ids)}, offsets, history, labels, users, controls)
        return model

    def __repr__(self) -> str:
        state = self.__dict__.get("_state")
        fitted = f", n_users={len(state.user_ids)}, n_features={state.offsets.shape[1]}" if state else ""
        return f"<likeable.UserPreferences(shrinkage={self.shrinkage}{fitted})>"


def _params_from(make: Any, params: dict, source: str, field: str):
    """An estimator made from stored parameters, which its constructor checks; FormatError naming
    the file and the field when it refuses them (e.g. threads above likeable.max_threads())."""
    try:
        return make(**params)
    except (TypeError, ValueError) as exc:
        raise _core.FormatError(f"{source}: field {field!r} holds parameters this likeable refuses ({exc})") from None


def _population_logit(pop: PreferenceModel, codes: SparseCodes, controls) -> np.ndarray:
    feat = codes.to_scipy() @ pop.coef_
    return (feat + pop._base_logit(controls, codes.shape[0])).astype(np.float32)


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
