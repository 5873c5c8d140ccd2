"""Named linear probes (formality, humour, verbosity, ...) over embeddings or sparse features."""
from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np

from ._validation import NotFittedError, as_float32_matrix
from .sparse import SparseCodes

__all__ = ["AttributeBank"]


class AttributeBank:
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

    # names are checked lazily so __init__ stays logic-free (scikit-learn convention)
    def _names(self) -> list[str]:
        names = list(self.names) if not isinstance(self.names, str) else None
        if not names or not all(isinstance(n, str) for n in names):
            raise ValueError("names must be a non-empty sequence of str")
        if len(set(names)) != len(names):
            raise ValueError("names must be unique")
        return names

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if hasattr(self, "directions_"):
            return self.directions_, self.intercepts_
        if self.directions is None:
            raise NotFittedError("this AttributeBank has no directions; pass directions= or call fit()")
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
        names = self._names()
        if isinstance(self.l2, bool) or not isinstance(self.l2, numbers.Real) or self.l2 < 0:
            raise ValueError(f"l2 must be a number >= 0, got {self.l2!r}")
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

    def __repr__(self) -> str:
        try:
            dims = self._fitted()[0].shape[1]
        except (NotFittedError, ValueError):
            dims = None
        return f"<likeable.AttributeBank(names={list(self.names)!r}, n_dims={dims})>"
