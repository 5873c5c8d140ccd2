"""One place for input checks at the Python boundary: clear messages, nothing lost."""
from __future__ import annotations

import functools
import numbers
import os
import sys
from typing import Any

import numpy as np

from . import _core


class NotFittedError(ValueError, AttributeError):
    """Raised when an estimator is used before ``fit``."""


def not_fitted(message: str) -> NotFittedError:
    """A NotFittedError that is also scikit-learn's, once scikit-learn is imported (so its tools
    catch it) — without importing scikit-learn here: nobody can catch its class before then."""
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    if sklearn_exceptions is None:
        return NotFittedError(message)
    return _with_sklearn_base(sklearn_exceptions.NotFittedError)(message)


@functools.lru_cache(maxsize=None)
def _with_sklearn_base(base: type) -> type:
    return type("NotFittedError", (NotFittedError, base), {"__module__": "likeable", "__doc__": NotFittedError.__doc__})


class ArgumentError(ValueError):
    """A bad argument, told in the caller's terms: ``str()`` names Python arguments
    (``columns={'label': ...}``), ``cli_message`` the command-line flags (``--columns label=COL``)."""

    def __init__(self, message: str, cli: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = message if cli is None else cli


class _ComplexDataError(TypeError, ValueError):
    """Complex numbers where real ones are needed: a TypeError, and the ValueError scikit-learn expects."""


def max_threads() -> int:
    """The most threads any call may use: ``MAX_THREADS_PER_CORE`` (4) per core of this machine.

    More threads than cores only cost (stacks, scratch buffers, OpenMP teams), and a count such
    as 10,000 can make the OpenMP runtime end the process where address space is limited; so
    ``threads=`` above this raises ``ValueError`` (``LIKEABLE_NUM_THREADS`` above it is capped).
    """
    return _core.max_threads()


def resolve_threads(threads: int | None) -> int:
    """``threads`` if given, else ``LIKEABLE_NUM_THREADS``, else every core (at most :func:`max_threads`)."""
    if threads is None:
        return _core.resolve_threads(0)
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    if threads > _core.max_threads():
        raise ValueError(f"threads={threads} is more than {_core.MAX_THREADS_PER_CORE} per core "
                         f"(likeable.max_threads() = {_core.max_threads()} on this machine)")
    return int(threads)


def as_float32_matrix(X: Any, name: str = "X", n_cols: int | None = None,
                      allow_empty: bool = True, check_finite: bool = True, *,
                      owner: str | None = None, min_cols: int = 0) -> np.ndarray:
    """A C-contiguous float32 2-D array (copied only when needed), checked for shape and NaN/Inf.

    ``owner`` (an estimator's name) words a column mismatch as scikit-learn does; ``min_cols``
    refuses matrices with fewer columns (a fit needs at least one feature).
    """
    if hasattr(X, "__cuda_array_interface__"):
        raise TypeError(f"{name} is a GPU array; pass device='cuda' or a numpy array")
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got {type(X).__name__}")
    if _is_scipy_sparse(X):
        raise TypeError(f"{name} is a scipy.sparse matrix, but dense rows are expected here: pass X.toarray()")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and similar
        raise TypeError(f"{name} must be a numeric array: {exc}") from None
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise _ComplexDataError(f"Complex data not supported: {name} has dtype {arr.dtype}")
    if arr.dtype == object:
        try:  # numbers held as objects (e.g. from a DataFrame) are numbers
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must hold real numbers: {exc}") from None
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_rows x n_dims), got shape {arr.shape}: Reshape your data "
                         f"(one row: X.reshape(1, -1))")
    if n_cols is not None and arr.shape[1] != n_cols:
        if owner is not None:
            raise ValueError(f"{name} has {arr.shape[1]} features, but {owner} is expecting {n_cols} features "
                             f"as input: pass {n_cols} columns")
        raise ValueError(f"{name} has {arr.shape[1]} columns, expected {n_cols}")
    if arr.shape[1] < min_cols:
        raise ValueError(f"Found array with {arr.shape[1]} feature(s) (shape={arr.shape}) while a minimum of "
                         f"{min_cols} is required.")
    if not allow_empty and arr.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if check_finite and arr.size and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} contains NaN or Inf (first at row {bad[0]}, column {bad[1]})")
    return arr


def _is_scipy_sparse(X: Any) -> bool:
    import scipy.sparse as sp

    return sp.issparse(X)


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


def _preference_words(arr: np.ndarray, name: str) -> np.ndarray | None:
    """Labels written as the loader's words ('A'/'B', 'true'/'false') as float32 1/0; None when
    ``arr`` is not all such words (then it is read as any other labels)."""
    if arr.dtype.kind not in "OUS" or arr.size == 0:
        return None
    values = [label_value(v) if isinstance(v, (str, bytes, np.str_, np.bytes_)) else None for v in arr.tolist()]
    if any(v is None for v in values):
        return None
    if 0.5 in values:
        i = values.index(0.5)
        raise ValueError(f"{name}[{i}] is {arr.tolist()[i]!r}, a tie; ties are not used for fitting: drop them")
    return np.asarray(values, np.float32)


def binary_labels(y: Any, n: int, name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """(classes_, labels as float32 0/1) for a preference model's targets.

    0/1 (or bool) labels keep their meaning, 1 = the first response preferred, even when one
    side never wins, and so do the loader's words: 'A'/'B' (any case) and 'true'/'false' give
    ``classes_ = ['B', 'A']`` (the preferred-A class second, as the loader reads them). Any
    other two distinct values are read as scikit-learn reads them (sorted, the second is the
    positive class).
    """
    if y is None:
        raise ValueError("a preference model requires y to be passed, but the target y is None")
    arr = np.asarray(y)
    words = _preference_words(arr, name) if arr.ndim == 1 else None
    if words is not None:  # 'A' means the first response won, whatever sorting says
        if words.shape[0] != n:
            raise ValueError(f"{name} has length {words.shape[0]} but there are {n} rows")
        spellings = {side: set(arr[words == side].tolist()) for side in (0.0, 1.0)}
        if all(len(s) == 1 for s in spellings.values()):  # classes_ in the caller's words, B-side first
            return np.array([spellings[0.0].pop(), spellings[1.0].pop()]), words
        return np.array([0, 1]), words
    if arr.ndim == 2 and arr.shape[1] == 1:
        _warn_column_vector(name)
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]} but there are {n} rows")
    if arr.dtype.kind == "c":
        raise _ComplexDataError(f"Complex data not supported: {name} has dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        if np.isnan(arr).any():
            raise ValueError(f"Input {name} contains NaN.")
        if np.isinf(arr).any():
            raise ValueError(f"Input {name} contains infinity or a value too large for {arr.dtype!r}.")
        if arr.size and not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"Unknown label type: continuous. {name} must hold two classes "
                             f"(0 or 1: 1 means the first response was preferred)")
    try:
        classes = np.unique(arr)
    except TypeError as exc:
        raise ValueError(f"Unknown label type: {name} mixes values that cannot be compared ({exc})") from None
    if arr.dtype.kind in "biuf" and set(classes.tolist()) <= {0, 1}:
        classes = np.array([False, True]) if arr.dtype.kind == "b" else np.array([0, 1], dtype=arr.dtype)
    if classes.shape[0] > 2:
        raise ValueError(f"Only binary classification is supported. The type of the target is multiclass: "
                         f"{name} has {classes.shape[0]} classes; preference labels are 0 or 1")
    if classes.shape[0] < 2:
        raise ValueError(f"{name} has one class only ({classes[0]!r}); preference labels are 0 or 1 "
                         f"(1 means the first response was preferred)" if classes.size else f"{name} is empty")
    return classes, (arr == classes[1]).astype(np.float32)


def _warn_column_vector(name: str) -> None:
    import warnings

    try:  # scikit-learn's own category where it is installed, so its tools recognise the warning
        from sklearn.exceptions import DataConversionWarning as category
    except ImportError:
        category = UserWarning
    warnings.warn(f"A column-vector {name} was passed when a 1d array was expected; it was raveled",
                  category, stacklevel=4)


def as_labels(y: Any, n: int, name: str = "labels") -> np.ndarray:
    """Binary labels as float32 0/1, length ``n``: numbers, booleans or the words 'A'/'B'."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]} but there are {n} rows")
    words = _preference_words(arr, name)
    if words is not None:
        return words
    if arr.dtype.kind in "OUS":
        bad = next((v for v in arr.tolist() if label_value(v) not in (0.0, 1.0)), arr[0])
        raise ValueError(f"{name} must be 1/'A' (A chosen) or 0/'B' (B chosen), found {bad!r}")
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
