"""Named linear probes (formality, humour, verbosity, ...) over embeddings or sparse features."""
from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np

from . import _core
from ._estimator import Estimator
from ._io import Fields, check_tensor, tensors_from_bytes, tensors_to_bytes
from ._persistence import Persistent
from ._validation import NotFittedError, as_float32_matrix, not_fitted
from .sparse import SparseCodes

__all__ = ["AttributeBank"]

_FORMAT = "likeable.AttributeBank"
_FORMAT_VERSION = 1


def _checked_names(names: Any) -> list[str]:
    listed = list(names) if not isinstance(names, str) and names is not None else None
    if not listed or not all(isinstance(n, str) for n in listed):
        raise ValueError("names must be a non-empty sequence of str")
    if len(set(listed)) != len(listed):
        raise ValueError("names must be unique")
    return listed


class AttributeBank(Estimator, Persistent):
    """A bank of named linear probes: ``score_a(x) = x · direction_a + intercept_a``.

    Build it from known directions (``AttributeBank(names, directions)``) or learn them from
    labelled examples with :meth:`fit` (ridge regression per attribute). Its scores, or the
    differences of two responses' scores (:meth:`pair_features`), serve as an interpretable
    feature space for :class:`likeable.PreferenceModel` and :class:`likeable.UserPreferences`.

    Parameters
    ----------
    names : sequence of str
        One name per attribute.
    directions : array (n_attributes × n_dims), optional
        Known probe directions; without them the bank must be fitted.
    intercepts : array (n_attributes,), optional
        Defaults to zeros when ``directions`` is given.
    l2 : float
        Ridge penalty used by :meth:`fit`.

    Attributes
    ----------
    directions_ : ndarray float32 (n_attributes × n_dims)
    intercepts_ : ndarray float32 (n_attributes,)
    """

    def __init__(self, names: Sequence[str], directions: Any = None, intercepts: Any = None, *,
                 l2: float = 1.0) -> None:
        self.names = names
        self.directions = directions
        self.intercepts = intercepts
        self.l2 = l2
        self._validate_params()

    def _check_params(self, params: dict[str, Any]) -> None:
        _checked_names(params["names"])
        l2 = params["l2"]
        if isinstance(l2, bool) or not isinstance(l2, numbers.Real) or not l2 >= 0 or not np.isfinite(l2):
            raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")

    def _names(self) -> list[str]:
        return _checked_names(self.names)

    def _is_fitted(self) -> bool:
        return hasattr(self, "directions_") or self.directions is not None

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if hasattr(self, "directions_"):
            return self.directions_, self.intercepts_
        if self.directions is None:
            raise not_fitted("this AttributeBank has no directions; pass directions= or call fit()")
        names = self._names()
        directions = as_float32_matrix(self.directions, "directions")
        if directions.shape[0] != len(names):
            raise ValueError(f"directions has {directions.shape[0]} rows for {len(names)} names")
        intercepts = (np.zeros(len(names), np.float32) if self.intercepts is None
                      else np.asarray(self.intercepts, np.float32).reshape(-1))
        if intercepts.shape != (len(names),) or not np.isfinite(intercepts).all():
            raise ValueError(f"intercepts must be {len(names)} finite numbers")
        return directions, intercepts

    def fit(self, X: Any, targets: Any) -> "AttributeBank":
        """Ridge regression of each attribute's targets on X; NaN targets are missing labels.

        X : (n × n_dims) embeddings (dense) or features (SparseCodes / scipy.sparse, densified).
        targets : (n × n_attributes), or (n,) with one attribute.
        """
        self._validate_params()
        names = self._names()
        X = self._as_inputs(X).astype(np.float64)
        T = np.asarray(targets, dtype=np.float64)
        if T.ndim == 1:
            T = T[:, None]
        if T.shape != (X.shape[0], len(names)):
            raise ValueError(f"targets has shape {T.shape}, expected ({X.shape[0]}, {len(names)})")
        if np.isinf(T).any():
            raise ValueError("targets contain Inf")
        d = X.shape[1]
        directions = np.zeros((len(names), d))
        intercepts = np.zeros(len(names))
        for a in range(len(names)):  # one small ridge per attribute (few attributes)
            rows = ~np.isnan(T[:, a])
            if rows.sum() < 2:
                raise ValueError(f"attribute {names[a]!r} has fewer than 2 labelled examples")
            Xa, ta = X[rows], T[rows, a]
            mx, mt = Xa.mean(axis=0), ta.mean()
            Xc = Xa - mx
            gram = Xc.T @ Xc + self.l2 * np.eye(d)
            directions[a] = np.linalg.lstsq(gram, Xc.T @ (ta - mt), rcond=None)[0]
            intercepts[a] = mt - mx @ directions[a]
        self.directions_ = directions.astype(np.float32)
        self.intercepts_ = intercepts.astype(np.float32)
        self.n_features_in_ = d
        return self

    def _as_inputs(self, X: Any) -> np.ndarray:
        import scipy.sparse as sp

        if isinstance(X, SparseCodes):
            return X.to_dense()
        if sp.issparse(X):
            X = X.toarray()
        return as_float32_matrix(X, "X")

    def transform(self, X: Any) -> np.ndarray:
        """Attribute scores (n × n_attributes) float32 for embeddings or feature rows, in batch."""
        directions, intercepts = self._fitted()
        import scipy.sparse as sp

        if isinstance(X, SparseCodes) or sp.issparse(X):
            csr = X.to_scipy() if isinstance(X, SparseCodes) else sp.csr_matrix(X)
            if csr.shape[1] != directions.shape[1]:
                raise ValueError(f"X has {csr.shape[1]} columns, expected {directions.shape[1]}")
            return np.asarray(csr @ directions.T, np.float32) + intercepts
        X = as_float32_matrix(X, "X", n_cols=directions.shape[1])
        return X @ directions.T + intercepts

    score = transform

    def pair_features(self, X_a: Any, X_b: Any) -> np.ndarray:
        """Score differences A − B (n_pairs × n_attributes): preference features for pairs."""
        a, b = self.transform(X_a), self.transform(X_b)
        if a.shape != b.shape:
            raise ValueError(f"X_a and X_b differ in shape: {a.shape} vs {b.shape}")
        return a - b

    def __getitem__(self, name: str) -> np.ndarray:
        directions, _ = self._fitted()
        names = self._names()
        if name not in names:
            raise KeyError(f"no attribute {name!r}; have {names}")
        return directions[names.index(name)]

    @property
    def n_attributes(self) -> int:
        return len(self._names())

    def __len__(self) -> int:
        return self.n_attributes

    # --- persistence ------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """safetensors bytes: directions and intercepts (float32), names and l2 in JSON metadata."""
        directions, intercepts = self._fitted()
        meta = {"format": _FORMAT, "version": _FORMAT_VERSION, "names": self._names(), "l2": float(self.l2)}
        return tensors_to_bytes({"directions": directions, "intercepts": intercepts}, meta)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> "AttributeBank":
        """Inverse of :meth:`to_bytes`; damaged or foreign data raises :class:`likeable.FormatError`."""
        tensors, meta = tensors_from_bytes(bytes(data), source)
        fields = Fields(meta, source)
        if meta.get("format") != _FORMAT or fields.int("version") != _FORMAT_VERSION:
            raise _core.FormatError(f"{source}: not an AttributeBank file of version {_FORMAT_VERSION} "
                                    f"(format={meta.get('format')!r}, version={meta.get('version')!r})")
        names = fields.list("names", (str,))
        try:
            bank = cls(names, l2=fields.float("l2"))
        except (ValueError, TypeError) as exc:
            raise _core.FormatError(f"{source}: fields 'names'/'l2' hold values this likeable refuses ({exc})") from None
        directions = check_tensor(tensors, "directions", source, np.float32, (len(names), None))
        intercepts = check_tensor(tensors, "intercepts", source, np.float32, (len(names),))
        bank.directions_, bank.intercepts_ = directions, intercepts
        bank.n_features_in_ = int(directions.shape[1])
        return bank

    def __repr__(self) -> str:
        try:
            dims = self._fitted()[0].shape[1]
        except (NotFittedError, ValueError):
            dims = None
        return f"<likeable.AttributeBank(names={list(self.names)!r}, n_dims={dims})>"
