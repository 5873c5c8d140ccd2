"""One place for input checks at the Python boundary: clear messages, nothing lost."""
from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np

from . import _core


class NotFittedError(ValueError, AttributeError):
    """Raised when an estimator is used before ``fit``."""


class ArgumentError(ValueError):
    """A bad argument, told in the caller's terms: ``str()`` names Python arguments
    (``columns={'label': ...}``), :meth:`for_cli` the command-line flags (``--columns label=COL``)."""

    def __init__(self, message: str, cli: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = message if cli is None else cli

    def for_cli(self) -> str:
        return self.cli_message


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


# Label words every entry point understands (the data loader, fit, the CLI's --labels).
LABEL_WORDS = {"a": 1.0, "b": 0.0, "tie": 0.5, "true": 1.0, "false": 0.0}


def label_value(value: Any) -> float | None:
    """1.0 (A preferred), 0.0 (B), 0.5 (tie) for a label value or word; None when not a label."""
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        key = value.strip().lower()
        if key in LABEL_WORDS:
            return LABEL_WORDS[key]
        try:
            value = float(key)
        except ValueError:
            return None
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, numbers.Real) and value in (0, 0.5, 1):
        return float(value)
    return None


def as_labels(y: Any, n: int, name: str = "labels") -> np.ndarray:
    """Binary labels as float32 0/1, length ``n``: numbers, booleans or the words 'A'/'B'."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]} but there are {n} rows")
    if arr.dtype.kind in "OUS":  # words such as 'A'/'B' (what the data loader accepts)
        out = np.empty(arr.shape[0], np.float32)
        for i, v in enumerate(arr.tolist()):
            value = label_value(v)
            if value not in (0.0, 1.0):
                hint = " (ties are not used for fitting: drop them)" if value == 0.5 else ""
                raise ValueError(f"{name}[{i}] is {v!r}; expected 1/'A' (A chosen) or 0/'B' (B chosen){hint}")
            out[i] = value
        return out
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be 0/1 or 'A'/'B', got dtype {arr.dtype}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        bad = arr[~np.isin(arr, (0, 1))][0]
        hint = " (ties are not used for fitting: drop them)" if bad == 0.5 else ""
        raise ValueError(f"{name} must be 0 or 1, found {bad!r}{hint}")
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
