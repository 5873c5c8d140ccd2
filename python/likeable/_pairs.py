"""Input checks shared by the preference models: pair codes, controls, user ids."""
from __future__ import annotations

import numbers
from typing import Any, Hashable, Iterable

import numpy as np
import scipy.sparse as sp

from ._validation import as_float32_matrix
from .sparse import SparseCodes, as_sparse_codes


class UnknownUserError(KeyError, ValueError):
    """A user id that the model has never seen, asked for with ``strict=True``."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


NO_OFFSETS = np.zeros((0, 0), np.float32)  # a population model has no per-user offsets


def on_host(obj: Any) -> Any:
    """Small per-row side inputs (user ids, controls) may come as GPU arrays: bring them over."""
    return obj.get() if type(obj).__module__.startswith("cupy") and hasattr(obj, "get") else obj


def as_pair_codes(X: Any, name: str = "X", n_features: int | None = None, *, owner: str = "the model",
                  fitting: bool = False) -> SparseCodes:
    """SparseCodes, any scipy.sparse matrix, or a dense 2-D array of feature differences.

    ``n_features`` is the count the fitted model expects; ``fitting`` refuses inputs with no
    rows or no features (scikit-learn's wording, which its estimator checks look for).
    """
    if isinstance(X, SparseCodes) or sp.issparse(X):
        codes = as_sparse_codes(X, name)
    else:
        codes = SparseCodes.from_dense(as_float32_matrix(X, name))
    if n_features is not None and codes.shape[1] != n_features:
        raise ValueError(f"{name} has {codes.shape[1]} features, but {owner} is expecting {n_features} "
                         f"features as input")
    if fitting and codes.shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={codes.shape}) while a minimum of 1 is required.")
    if fitting and codes.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    return codes  # a checked snapshot: finite values, ids in range


def as_controls(controls: Any, n_rows: int, n_controls: int | None) -> np.ndarray | None:
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
    # NaN (or pandas.NA) equals nothing, itself included: such an id could never be looked up,
    # and a list of one NaN object would be one user where an array of NaNs is many.
    try:
        missing = bool(user != user)
    except (TypeError, ValueError):  # pandas.NA: its truth value is ambiguous
        missing = True
    if missing:
        raise ValueError(f"user ids must not be NaN or missing (got {user!r}); use a number or a string")
    return user


def _fast_id_array(user_ids: Any) -> np.ndarray | None:
    """A numpy array of int/str ids (vectorised lookups), or None for anything else."""
    if isinstance(user_ids, np.ndarray) and user_ids.ndim == 1 and user_ids.dtype.kind in "iuU":
        return user_ids
    return None


def rows_for(row_of: dict, user_ids: Any, n: int | None, name: str = "user_ids") -> tuple[np.ndarray, list]:
    """Row of each id (-1 when absent) and the distinct ids, looked up once per distinct id."""
    arr = _fast_id_array(user_ids)
    if arr is None:
        ids = as_user_list(user_ids, n, name)
        rows = np.fromiter((row_of.get(u, -1) for u in ids), dtype=np.int64, count=len(ids))
        return rows, ids
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]} but there are {n} pairs")
    uniq, inverse = np.unique(arr, return_inverse=True)
    uniq_ids = uniq.tolist()
    return np.array([row_of.get(u, -1) for u in uniq_ids], dtype=np.int64)[inverse.ravel()], uniq_ids


def assign_rows(row_of: dict, user_ids: Any, n: int) -> np.ndarray:
    """Rows of the ids, adding unseen ids to ``row_of`` in order of first appearance."""
    arr = _fast_id_array(user_ids)
    if arr is None:
        ids = as_user_list(user_ids, n)
        return np.fromiter((row_of.setdefault(u, len(row_of)) for u in ids), dtype=np.int64, count=len(ids))
    if arr.shape[0] != n:
        raise ValueError(f"user_ids has length {arr.shape[0]} but there are {n} pairs")
    uniq, first, inverse = np.unique(arr, return_index=True, return_inverse=True)
    uniq_ids = uniq.tolist()
    for j in np.argsort(first, kind="stable"):
        row_of.setdefault(uniq_ids[j], len(row_of))
    return np.array([row_of[u] for u in uniq_ids], dtype=np.int64)[inverse.ravel()]


def as_user_list(user_ids: Any, n: int | None, name: str = "user_ids") -> list:
    if isinstance(user_ids, (str, bytes)) or not isinstance(user_ids, Iterable):
        raise TypeError(f"{name} must be a sequence of ids (one per row), got {type(user_ids).__name__}")
    ids = [_normalise_id(u) for u in (user_ids.tolist() if isinstance(user_ids, np.ndarray) else user_ids)]
    if n is not None and len(ids) != n:
        raise ValueError(f"{name} has length {len(ids)} but there are {n} pairs")
    return ids


def check_nonneg(value: Any, name: str, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (strict and value == 0):
        raise ValueError(f"{name} must be {'>' if strict else '>='} 0, got {value!r}")
    return float(value)


def concat_codes(a: SparseCodes, b: SparseCodes) -> SparseCodes:
    indptr = np.concatenate([a.indptr, b.indptr[1:] + a.indptr[-1]])
    return SparseCodes(indptr, np.concatenate([a.indices, b.indices]), np.concatenate([a.values, b.values]),
                       (a.shape[0] + b.shape[0], a.shape[1]))


