"""Preference models over sparse pair codes: a population model and per-user personalization.

A preference pair (prompt, response A, response B, label = 1 if A was chosen) is a row of
features of A minus features of B (a sparse code of the embedding difference, or any dense
feature difference such as :class:`likeable.AttributeBank` scores). Bradley–Terry on such rows
is a logistic regression without intercept: P(A preferred) = sigmoid(x · w).

:class:`PreferenceModel` is the population model (a scikit-learn binary classifier);
:class:`UserPreferences` (module ``likeable.user_preferences``) adds a per-user offset. All
fitting and scoring runs in the compiled core with the GIL released.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import _core
from ._estimator import Estimator, renamed_arguments
from ._gpu.device import dispatch
from ._io import Fields, check_tensor, tensors_from_bytes, tensors_to_bytes
from ._pairs import (NO_OFFSETS, UnknownUserError, as_controls, as_pair_codes, as_user_list, check_nonneg,
                     on_host, rows_for)
from ._persistence import Persistent
from .sparse import SparseCodes
from ._validation import (not_fitted, as_float32_matrix, as_labels, binary_labels, check_positive_int,
                          resolve_threads)

_MODEL_FORMAT = "likeable.PreferenceModel"
_MODEL_FORMAT_VERSION = 1

__all__ = ["PreferenceModel", "UserPreferences", "FeatureEffects", "Selection", "DriftWeights",
           "UnknownUserError", "drift_weights"]

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
        codes = as_pair_codes(pair_codes, "pair_codes", self.weights.shape[1], owner="DriftWeights")
        rows, _ = rows_for({u: i for i, u in enumerate(self.user_ids)}, user_ids, codes.shape[0])
        no_population = np.zeros(self.weights.shape[1], np.float32)
        return _core.predict_pairs(no_population, np.ascontiguousarray(self.weights, np.float32), rows, codes,
                                   None, resolve_threads(None), True)

    def __repr__(self) -> str:
        return f"<likeable.DriftWeights(n_users={len(self.user_ids)}, n_features={self.weights.shape[1]})>"


# --- population model ---------------------------------------------------------------------
class PreferenceModel(Estimator, Persistent):
    """Bradley–Terry / logistic model on sparse pair features plus dense controls.

    Minimises ``sum_i logloss(y_i, x_i·w + c_i·g + b) + l2/2 ||w||² + l1 ||w||₁``: the penalties
    apply to the features only (controls and intercept are unpenalised), and the loss is a sum,
    as in scikit-learn's ``LogisticRegression(C=1/l2)``. Solved in the core by IRLS with
    coordinate descent (glmnet's scheme), which handles L1 exactly.

    A scikit-learn binary classifier: ``X`` is pair codes (:class:`likeable.SparseCodes`), any
    scipy.sparse matrix or a dense array of feature differences; ``y`` is 0/1 (1: the first
    response was preferred) or any two labels (the larger is the positive class).

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
    warm_start : bool
        Start :meth:`fit` from the current coefficients when the model is already fitted to
        data of the same shape (scikit-learn's meaning): a path of penalties, large to small,
        converges in fewer iterations.

    Attributes
    ----------
    coef_ : ndarray (n_features,) float64
    control_coef_ : ndarray (n_controls,) float64
    intercept_ : float
    classes_ : ndarray of the two labels (``[0, 1]`` for 0/1 labels)
    n_features_in_, n_controls_, n_iter_, converged_
    """

    _sklearn_kind = "classifier"
    _sklearn_requires_y = True
    _sklearn_sparse = True
    _expected_failed_checks = {
        "check_do_not_raise_errors_in_init_or_set_params":
            "the constructor and set_params refuse impossible settings (a negative penalty, max_iter < 1) "
            "where they are written, instead of at fit; valid values are stored exactly as given",
    }

    def __init__(self, *, l2: float = 1.0, l1: float = 0.0, fit_intercept: bool = False,
                 max_iter: int = 100, tol: float = 1e-7, threads: int | None = None,
                 warm_start: bool = False) -> None:
        self.l2 = l2
        self.l1 = l1
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.threads = threads
        self.warm_start = warm_start
        self._validate_params()

    def _check_params(self, params: dict[str, Any]) -> None:
        check_nonneg(params["l2"], "l2")
        check_nonneg(params["l1"], "l1")
        check_positive_int(params["max_iter"], "max_iter")
        check_nonneg(params["tol"], "tol", strict=True)
        for name in ("fit_intercept", "warm_start"):
            if not isinstance(params[name], (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {params[name]!r}")
        if params["threads"] is not None:
            resolve_threads(params["threads"])

    def _solver_params(self) -> tuple[float, float, int, float]:
        self._validate_params()
        return float(self.l2), float(self.l1), int(self.max_iter), float(self.tol)

    def _prepare(self, X, labels, controls):
        """Pair codes, 0/1 labels and controls for the statistics methods (labels strictly 0/1)."""
        codes = as_pair_codes(X, owner="PreferenceModel")
        y = as_labels(labels, codes.shape[0])
        ctl = as_controls(controls, codes.shape[0], None)
        return codes, y, ctl

    @renamed_arguments(pair_codes="X", labels="y")
    def fit(self, X: Any, y: Any, controls: Any = None) -> "PreferenceModel":
        """Fit on pair codes ``X`` (SparseCodes, scipy.sparse or dense), labels ``y`` and optional controls."""
        l2, l1, max_iter, tol = self._solver_params()
        codes = as_pair_codes(X, owner="PreferenceModel", fitting=True)
        classes, labels = binary_labels(y, codes.shape[0])
        ctl = as_controls(controls, codes.shape[0], None)
        init = None
        if self.warm_start and self._is_fitted() and self.n_features_in_ == codes.shape[1] \
                and self.n_controls_ == (0 if ctl is None else ctl.shape[1]):
            init = _core.LogisticFit(self.coef_, self.control_coef_, float(self.intercept_))
        fit = _core.fit_logistic(codes, ctl, labels, None, l2, l1, bool(self.fit_intercept), max_iter, tol, init)
        self._set_fitted(fit.coef, fit.control_coef, float(fit.intercept), classes, int(fit.n_iter),
                         bool(fit.converged))
        return self

    @classmethod
    def from_coefficients(cls, coef: Any, control_coef: Any = None, intercept: float = 0.0,
                          **params) -> "PreferenceModel":
        """A fitted model with the given weights, without fitting (``params`` as for the constructor).

        Classes are ``[0, 1]``. E.g. ``PreferenceModel.from_coefficients(np.zeros(m))``: the
        all-zero prior of per-user-only :class:`UserPreferences`.
        """
        coef = np.array(coef, dtype=np.float64).ravel()
        control_coef = np.zeros(0) if control_coef is None else np.array(control_coef, dtype=np.float64).ravel()
        intercept = float(intercept)
        if not (np.isfinite(coef).all() and np.isfinite(control_coef).all() and np.isfinite(intercept)):
            raise ValueError("coefficients must be finite")
        model = cls(**params)
        model._set_fitted(coef, control_coef, intercept, np.array([0, 1]), 0, True)
        return model

    def _set_fitted(self, coef, control_coef, intercept: float, classes, n_iter: int, converged: bool) -> None:
        self.coef_ = coef
        self.control_coef_ = control_coef
        self.intercept_ = intercept
        self.classes_ = classes
        self.n_features_in_ = int(coef.shape[0])
        self.n_controls_ = int(control_coef.shape[0])
        self.n_iter_ = n_iter
        self.converged_ = converged

    def _is_fitted(self) -> bool:
        return "coef_" in self.__dict__

    def __sklearn_is_fitted__(self) -> bool:
        return self._is_fitted()

    def _check_fitted(self) -> None:
        if not self._is_fitted():
            raise not_fitted("this PreferenceModel is not fitted yet; call fit() first")

    def _base_logit(self, ctl: np.ndarray | None, n_rows: int) -> np.ndarray:
        """Controls and intercept part of the logit, per row (float32)."""
        base = np.full(n_rows, self.intercept_, dtype=np.float64)
        if ctl is not None and self.n_controls_:
            base += ctl.astype(np.float64) @ self.control_coef_
        return base.astype(np.float32)

    # --- prediction -----------------------------------------------------------------------
    @renamed_arguments(pair_codes="X")
    def decision_function(self, X: Any, controls: Any = None, device: str | None = None) -> np.ndarray:
        """Logit of P(A preferred) per pair, float32 of shape (n_pairs,) (GPU codes: a CuPy array)."""
        return self._pairs(X, controls, logits=True, device=device)

    @renamed_arguments(pair_codes="X")
    def predict_proba(self, X: Any, controls: Any = None, device: str | None = None) -> np.ndarray:
        """Probabilities of ``classes_`` per pair, float32 (n_pairs, 2): column 1 is P(A preferred).

        GPU pair codes run on the GPU and give a CuPy array.
        """
        p = self._pairs(X, controls, logits=False, device=device)
        xp = np if isinstance(p, np.ndarray) else __import__("cupy")
        out = xp.empty((p.shape[0], 2), dtype=p.dtype)
        out[:, 1] = p
        out[:, 0] = 1 - p
        return out

    @renamed_arguments(pair_codes="X")
    def predict(self, X: Any, controls: Any = None) -> np.ndarray:
        """The predicted label per pair (``classes_[1]``, e.g. 1, where A is predicted to be chosen)."""
        logits = self.decision_function(X, controls)
        return self.classes_[(logits > 0).astype(np.int64)]

    def score(self, X: Any, y: Any, controls: Any = None) -> float:
        """Accuracy of :meth:`predict` on ``(X, y)`` (scikit-learn's classifier score)."""
        predicted = self.predict(X, controls)
        y = np.asarray(y)
        return float(np.mean(predicted == (y.ravel() if y.ndim == 2 else y)))

    def _pairs(self, X: Any, controls: Any, logits: bool, device: str | None = None) -> np.ndarray:
        self._check_fitted()

        def on_gpu():
            from ._gpu import scoring

            n = X.shape[0]
            ctl = as_controls(on_host(controls), n, self.n_controls_)
            return scoring.predict_pairs(self.coef_, self.coef_, NO_OFFSETS, None, X, self._base_logit(ctl, n), logits)

        def on_cpu():
            codes = as_pair_codes(X, n_features=self.n_features_in_, owner="PreferenceModel")
            ctl = as_controls(controls, codes.shape[0], self.n_controls_)
            no_users = np.full(codes.shape[0], -1, dtype=np.int64)
            return _core.predict_pairs(self.coef_.astype(np.float32), np.zeros((0, self.n_features_in_), np.float32),
                                       no_users, codes, self._base_logit(ctl, codes.shape[0]),
                                       resolve_threads(self.threads), logits)

        return dispatch(device, X, gpu=on_gpu, cpu=on_cpu)

    # --- persistence ----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """safetensors bytes: coefficients (float64) and JSON metadata (parameters, classes, fit details)."""
        self._check_fitted()
        classes = [c.item() if isinstance(c, np.generic) else c for c in self.classes_]
        if not all(isinstance(c, (bool, int, float, str)) for c in classes):
            raise TypeError(f"only bool, int, float or str labels can be saved, got {classes!r}")
        meta = {"format": _MODEL_FORMAT, "version": _MODEL_FORMAT_VERSION, "params": self.get_params(),
                "intercept": self.intercept_, "classes": classes, "classes_dtype": str(np.asarray(self.classes_).dtype),
                "n_iter": self.n_iter_, "converged": self.converged_}
        return tensors_to_bytes({"coef": self.coef_, "control_coef": self.control_coef_}, meta)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> "PreferenceModel":
        """Inverse of :meth:`to_bytes`; damaged or foreign data raises :class:`likeable.FormatError`."""
        tensors, meta = tensors_from_bytes(bytes(data), source)
        if meta.get("format") != _MODEL_FORMAT:
            raise _core.FormatError(f"{source}: not a PreferenceModel file (format={meta.get('format')!r})")
        fields = Fields(meta, source)
        if fields.int("version") != _MODEL_FORMAT_VERSION:
            raise _core.FormatError(f"{source}: unsupported PreferenceModel version {meta.get('version')!r} "
                                    f"(this likeable reads version {_MODEL_FORMAT_VERSION})")
        coef = check_tensor(tensors, "coef", source, np.float64, (None,))
        control_coef = check_tensor(tensors, "control_coef", source, np.float64, (None,))
        classes = _stored_classes(fields, source)
        try:
            model = cls(**fields.dict("params").meta)
        except (TypeError, ValueError) as exc:
            raise _core.FormatError(f"{source}: field 'params' holds parameters this likeable refuses ({exc})") from None
        model._set_fitted(coef, control_coef, fields.float("intercept"), classes, fields.int("n_iter"),
                          fields.bool("converged"))
        return model

    def feature_effects(self, pair_codes: Any, labels: Any, controls: Any = None) -> FeatureEffects:
        """Per feature: coefficient controlling for the controls, standard error, p-value.

        One small logistic per feature (feature + controls, intercept if ``fit_intercept``),
        all solved at once in the core; uses this model's ``l2`` on the feature coefficient
        (set ``l2=0`` for classical unpenalised standard errors). Does not need ``fit``.
        """
        l2, _, max_iter, tol = self._solver_params()
        codes, y, ctl = self._prepare(pair_codes, labels, controls)
        out = _core.feature_effects(codes, ctl, y, l2, bool(self.fit_intercept), max_iter, tol,
                                    resolve_threads(self.threads))
        return FeatureEffects(coef=out.coef, std_error=out.std_error, z=out.z, p_value=out.p_value,
                              n_active=out.n_active)

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
        l2, _, max_iter, tol = self._solver_params()
        codes, y, ctl = self._prepare(pair_codes, labels, controls)
        m = codes.shape[1]
        # Controls-only fit (every feature penalised to zero) gives the gradient at the path start.
        huge = 1e30
        start = _core.fit_logistic(codes, ctl, y, None, l2, huge, bool(self.fit_intercept), max_iter, tol)
        eta = start.intercept + (ctl.astype(np.float64) @ start.control_coef if ctl is not None else 0.0)
        grad = codes.to_scipy().T @ (y - 1.0 / (1.0 + np.exp(-eta)))
        l1_max = float(np.max(np.abs(grad))) if m and codes.nnz else 0.0
        if l1_max == 0.0:
            empty = np.zeros(0, np.int64)
            return Selection(empty, np.zeros(0), 0.0, np.zeros(0), np.zeros(0, np.int64))
        path = l1_max * np.geomspace(1.0, min_ratio, n_steps)
        fit = start  # each step starts from the last
        visited, actives = [], []
        chosen_l1 = path[-1]
        from tqdm.auto import tqdm

        for l1 in tqdm(path, desc="L1 path", disable=not progress, leave=False):
            fit = _core.fit_logistic(codes, ctl, y, None, l2, float(l1), bool(self.fit_intercept), max_iter, tol,
                                     fit)
            visited.append(l1)
            actives.append(int(np.count_nonzero(fit.coef)))
            chosen_l1 = float(l1)
            if actives[-1] >= n_features:
                break
        coef = fit.coef
        nonzero = np.flatnonzero(coef)
        order = nonzero[np.argsort(-np.abs(coef[nonzero]), kind="stable")][:n_features]
        return Selection(order.astype(np.int64), coef[order], chosen_l1, np.asarray(visited),
                         np.asarray(actives, dtype=np.int64))

    def __repr__(self) -> str:
        state = f", n_features={self.n_features_in_}" if hasattr(self, "coef_") else ""
        return (f"<likeable.PreferenceModel(l2={self.l2}, l1={self.l1}, "
                f"fit_intercept={self.fit_intercept}{state})>")


def _stored_classes(fields: Fields, source: str) -> np.ndarray:
    """The two labels of a saved model: distinct bools, finite numbers or strings, of a plain dtype."""
    dtype_name = fields.meta.get("classes_dtype")
    try:
        dtype = np.dtype(dtype_name) if isinstance(dtype_name, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "biufU":
        raise _core.FormatError(f"{source}: field 'classes_dtype' is {dtype_name!r}, not a bool, number or text dtype")
    values = fields.list("classes", (bool, int, float, str))
    try:
        classes = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _core.FormatError(f"{source}: field 'classes' does not fit its dtype {dtype} ({exc})") from None
    if classes.shape != (2,) or classes[0] == classes[1] or (dtype.kind == "f" and not np.isfinite(classes).all()):
        raise _core.FormatError(f"{source}: field 'classes' must hold two distinct labels, got {values!r}")
    return classes


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
        deltas = as_pair_codes(deltas, "attribute_deltas").to_scipy()
        n = deltas.shape[0]
    y = as_labels(labels, n)
    ids = as_user_list(user_ids, n)
    row_of: dict = {}
    users = np.fromiter((row_of.setdefault(u, len(row_of)) for u in ids), dtype=np.int64, count=n)
    sign = (2.0 * y - 1.0).astype(np.float64)
    indicator = sp.csr_matrix((sign, (users, np.arange(n))), shape=(len(row_of), n))
    v = indicator @ deltas
    v = np.asarray(v.toarray() if sp.issparse(v) else v, dtype=np.float64)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    weights = np.divide(v, norm, out=np.zeros_like(v), where=norm > 0).astype(np.float32)
    return DriftWeights(list(row_of), weights)



from .user_preferences import UserPreferences  # noqa: E402  (it builds on PreferenceModel)
