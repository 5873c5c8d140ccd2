"""A guard on large allocations: refuse with a clear MemoryError instead of being killed.

The limit is, in order: the value set with :func:`set_max_memory` (or the ``max_memory``
context manager), the ``LIKEABLE_MAX_MEMORY`` environment variable (bytes, or with a K/M/G/T
suffix), else the memory the OS reports as available. Each public call that allocates an
output proportional to its inputs (scores, weights, decoded rows, codes, search results)
checks its size first.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import os
import threading

_local_limit = threading.local()
_global_limit: int | None = None

_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int:
    value = str(text).strip().upper().removesuffix("B").removesuffix("I")
    suffix = value[-1] if value and value[-1] in _SUFFIXES else ""
    number = value[: len(value) - len(suffix)]
    try:
        n = float(number) * _SUFFIXES[suffix]
    except ValueError:
        raise ValueError(f"cannot read a memory size from {text!r} (e.g. 8G, 512M, 1000000)") from None
    if not math.isfinite(n):  # "inf", "nan", "1e400": int() of them would raise OverflowError
        raise ValueError(f"a memory limit must be a finite number of bytes, got {text!r}")
    if n < 1:
        raise ValueError(f"a memory limit must be positive, got {text!r}")
    return int(n)


def _as_limit(limit: int | str) -> int:
    """A positive byte count from an int (or integral float) or a '8G'-style string."""
    if isinstance(limit, str):
        return parse_bytes(limit)
    if isinstance(limit, bool) or not isinstance(limit, numbers.Real):
        raise TypeError(f"a memory limit must be a number of bytes or a string like '8G', got {type(limit).__name__}")
    if not math.isfinite(limit) or limit < 1:
        raise ValueError(f"a memory limit must be a positive, finite number of bytes, got {limit!r}")
    return int(limit)


def set_max_memory(limit: int | str | None) -> None:
    """Set (bytes or '8G'-style) or clear (None) the process-wide allocation limit; an invalid
    limit raises and leaves the one in force unchanged."""
    global _global_limit
    _global_limit = None if limit is None else _as_limit(limit)


@contextlib.contextmanager
def max_memory(limit: int | str):
    """Limit allocations inside a ``with`` block (this thread only)."""
    value = _as_limit(limit)  # checked before anything changes
    previous = getattr(_local_limit, "value", None)
    _local_limit.value = value
    try:
        yield
    finally:
        _local_limit.value = previous


def available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def current_limit() -> int | None:
    local = getattr(_local_limit, "value", None)
    if local is not None:
        return local
    if _global_limit is not None:
        return _global_limit
    env = os.environ.get("LIKEABLE_MAX_MEMORY")
    if env:
        try:
            return parse_bytes(env)
        except ValueError as exc:
            raise ValueError(f"LIKEABLE_MAX_MEMORY: {exc}") from None
    return available_memory()


def check_allocation(n_bytes: int, what: str) -> None:
    """Raise MemoryError naming ``what`` when ``n_bytes`` exceeds the limit."""
    limit = current_limit()
    if limit is not None and n_bytes > limit:
        raise MemoryError(f"{what} needs {n_bytes / 2**30:.2f} GiB, over the {limit / 2**30:.2f} GiB limit "
                          f"(likeable.set_max_memory / LIKEABLE_MAX_MEMORY); process it in smaller batches")
