"""One place for input checks at the Python boundary: clear messages, nothing lost."""
from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np

from . import _core


class NotFittedError(ValueError, AttributeError):
    """Raised when an estimator is used before ``fit``."""


def resolve_threads(threads: int | None) -> int:
    """``threads`` if given, else ``LIKEABLE_NUM_THREADS``, else every core."""
    if threads is None:
        return _core.resolve_threads(0)
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return int(threads)


def as_float32_matrix(X: Any, name: str = "X", n_cols: int | None = None,
                      allow_empty: bool = True, check_finite: bool = True) -> np.ndarray:
    """A C-contiguous float32 2-D array (copied only when needed), checked for shape and NaN/Inf."""
    if hasattr(X, "__cuda_array_interface__"):
        raise TypeError(f"{name} is a GPU array; pass device='cuda' or a numpy array")
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got {type(X).__name__}")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and similar
        raise TypeError(f"{name} must be a numeric array: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                   or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_rows x n_dims), got shape {arr.shape}")
    if n_cols is not None and arr.shape[1] != n_cols:
        raise ValueError(f"{name} has {arr.shape[1]} columns, expected {n_cols}")
    if not allow_empty and arr.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if check_finite and arr.size and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} contains NaN or Inf (first at row {bad[0]}, column {bad[1]})")
    return arr


def as_labels(y: Any, n: int, name: str = "labels") -> np.ndarray:
    """Binary labels as float32 0/1, length ``n``."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]} but there are {n} rows")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric 0/1, got dtype {arr.dtype}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        bad = arr[~np.isin(arr, (0, 1))][0]
        raise ValueError(f"{name} must be 0 or 1, found {bad!r}")
    return arr.astype(np.float32)


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def fspath(path: Any, name: str = "path") -> str:
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}") from None
