"""Device arrays: host staging, GPU inputs in place, CSR rows in GPU memory, and device copies
of model weights cached per model."""
from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, NamedTuple

import numpy as np

from ..sparse import SparseCodes, as_sparse_codes
from .device import cupy, current_stream, has_cuda_array_interface, is_device_array, kernels


# --- dense matrices -------------------------------------------------------------------------
class DeviceMatrix(NamedTuple):
    """A C-contiguous 2-D CuPy array and the dtype its elements are read as.

    ``dtype`` is "float32", "float16" or "bfloat16"; bfloat16 data is held as uint16 bit
    patterns (CuPy has no bfloat16), which only cuBLAS reads.
    """

    array: Any
    dtype: str

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.array.shape)


def as_matrix(X: Any, name: str, n_cols: int) -> DeviceMatrix:
    """X as a device matrix: GPU inputs in place, host inputs through pinned memory."""
    cp = cupy()
    if isinstance(X, cp.ndarray) or has_cuda_array_interface(X):
        arr = cp.asarray(X)
    elif hasattr(X, "__dlpack__") and is_device_array(X):
        try:
            arr = cp.from_dlpack(X)
        except Exception:  # noqa: BLE001 - a dtype CuPy cannot hold (bfloat16): the binding reads it
            stream = current_stream().ptr or 1  # 1: the legacy default stream (DLPack's convention)
            view = kernels().DLPackMatrix(X.__dlpack__(stream=stream))
            matrix = DeviceMatrix(cp.asarray(view), view.dtype)
            _check_columns(matrix.shape, name, n_cols)
            return matrix
    else:
        arr = to_device(np.asarray(X, dtype=np.float32))
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {arr.shape}")
    if arr.dtype == cp.float16:
        dtype = "float16"
    else:
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
        arr, dtype = arr.astype(cp.float32, copy=False), "float32"
    matrix = DeviceMatrix(cp.ascontiguousarray(arr), dtype)
    _check_columns(matrix.shape, name, n_cols)
    return matrix


def _check_columns(shape, name: str, n_cols: int) -> None:
    if shape[1] != n_cols:
        raise ValueError(f"{name} has {shape[1]} columns, expected {n_cols}")


def to_device(host: np.ndarray, *, batch_bytes: int = 256 << 20):
    """Copy a host array to the current device through pinned memory, in large batches."""
    cp = cupy()
    import cupyx

    host = np.ascontiguousarray(host)
    out = cp.empty(host.shape, host.dtype)
    if host.size == 0:
        return out
    flat_in, flat_out = host.reshape(-1), out.reshape(-1)
    step = max(1, batch_bytes // host.itemsize)
    staging = cupyx.empty_pinned(min(step, flat_in.size), host.dtype)
    stream = current_stream()
    for start in range(0, flat_in.size, step):
        part = flat_in[start:start + step]
        stream.synchronize()  # the staging buffer is free again
        staging[:part.size] = part
        flat_out[start:start + part.size].set(staging[:part.size], stream=stream)
    stream.synchronize()
    return out


def bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, rounding to nearest even (finite inputs)."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


# --- sparse codes in GPU memory -------------------------------------------------------------
class DeviceSparseCodes:
    """CSR rows in GPU memory: CuPy ``indptr`` (int64), ``indices`` (int32), ``values`` (float32).

    What the GPU encoder returns for GPU inputs; :meth:`get` copies to a host
    :class:`likeable.SparseCodes`, :meth:`to_cupyx` views it as a ``cupyx.scipy.sparse`` matrix.
    """

    __slots__ = ("indptr", "indices", "values", "shape")

    def __init__(self, indptr, indices, values, shape, *, validate: bool = True) -> None:
        cp = cupy()
        self.indptr = cp.ascontiguousarray(cp.asarray(indptr), dtype=cp.int64)
        self.indices = cp.ascontiguousarray(cp.asarray(indices), dtype=cp.int32)
        self.values = cp.ascontiguousarray(cp.asarray(values), dtype=cp.float32)
        self.shape = (int(shape[0]), int(shape[1]))
        if self.indptr.ndim != 1 or self.indptr.size != self.shape[0] + 1:
            raise ValueError(f"indptr must have n_rows + 1 = {self.shape[0] + 1} entries")
        if self.indices.shape != self.values.shape or self.indices.ndim != 1:
            raise ValueError("indices and values must be 1-D and of equal length")
        if validate:
            self._validate()

    def _validate(self) -> None:
        cp = cupy()
        nnz = self.indices.size
        if int(self.indptr[0]) != 0 or int(self.indptr[-1]) != nnz:
            raise ValueError(f"indptr must start at 0 and end at nnz={nnz}")
        if self.shape[0] and bool((cp.diff(self.indptr) < 0).any()):
            raise ValueError("indptr must be non-decreasing")
        if nnz and (int(self.indices.min()) < 0 or int(self.indices.max()) >= self.shape[1]):
            raise ValueError(f"feature ids out of range [0, {self.shape[1]})")
        if nnz and not bool(cp.isfinite(self.values).all()):
            raise ValueError("values contain NaN or Inf")

    @classmethod
    def from_host(cls, codes: SparseCodes) -> "DeviceSparseCodes":
        codes = codes._checked()  # a checked snapshot, so the copy needs no check on the GPU
        return cls(to_device(codes.indptr), to_device(codes.indices), to_device(codes.values), codes.shape,
                   validate=False)

    @classmethod
    def from_fixed(cls, ids, values, counts, n_features: int) -> "DeviceSparseCodes":
        """From n x k slots with counts[r] used per row (no copy when every row is full)."""
        cp = cupy()
        n, k = ids.shape
        if n == 0 or int(counts.min()) == k:
            indptr = cp.arange(0, n * k + 1, k, dtype=cp.int64) if k else cp.zeros(n + 1, cp.int64)
            return cls(indptr, ids.reshape(-1), values.reshape(-1), (n, n_features), validate=False)
        used = cp.arange(k, dtype=cp.int32)[None, :] < counts[:, None]
        indptr = cp.zeros(n + 1, cp.int64)
        cp.cumsum(counts, out=indptr[1:])
        return cls(indptr, ids[used], values[used], (n, n_features), validate=False)

    def get(self) -> SparseCodes:
        """A host copy as :class:`likeable.SparseCodes`."""
        return SparseCodes(self.indptr.get(), self.indices.get(), self.values.get(), self.shape)

    to_host = get

    def to_cupyx(self):
        """A ``cupyx.scipy.sparse.csr_matrix`` over the same values (indptr cast to int32)."""
        import cupyx.scipy.sparse as csp

        if self.nnz > np.iinfo(np.int32).max:
            raise ValueError("cupyx CSR matrices need nnz < 2^31")
        return csp.csr_matrix((self.values, self.indices, self.indptr.astype(np.int32)), shape=self.shape)

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    @property
    def n_features(self) -> int:
        return self.shape[1]

    def row_nnz(self):
        return cupy().diff(self.indptr)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<likeable.gpu.DeviceSparseCodes(n_rows={self.shape[0]}, n_features={self.shape[1]}, nnz={self.nnz})>"


def is_sparse_input(obj: Any) -> bool:
    """Sparse rows of any kind: device codes, cupyx sparse, likeable or scipy sparse."""
    import scipy.sparse as sp

    return (isinstance(obj, (DeviceSparseCodes, SparseCodes)) or sp.issparse(obj)
            or type(obj).__module__.startswith("cupyx.scipy.sparse"))


def as_device_codes(codes: Any, n_features: int, name: str = "codes") -> DeviceSparseCodes:
    """DeviceSparseCodes from device codes, a cupyx sparse matrix, or host codes (uploaded)."""
    if isinstance(codes, DeviceSparseCodes):
        out = codes
    elif type(codes).__module__.startswith("cupyx.scipy.sparse"):
        csr = codes.tocsr()
        csr.sum_duplicates()
        out = DeviceSparseCodes(csr.indptr, csr.indices, csr.data, csr.shape)
    else:
        out = DeviceSparseCodes.from_host(as_sparse_codes(codes, name))
    if out.shape[1] != n_features:
        raise ValueError(f"{name} has {out.shape[1]} features, expected {n_features}")
    return out


# --- device copies of model weights, cached per model ---------------------------------------
_cache_lock = threading.Lock()
_weights_cache: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def cached(owner: Any, sources: tuple, key: tuple, build: Callable[[], Any]):
    """Device arrays built from ``sources`` (host arrays) for ``owner`` (weakly held), rebuilt
    when any source is replaced by another object."""
    cp = cupy()
    key = (cp.cuda.Device().id,) + key
    with _cache_lock:
        hit = _weights_cache.setdefault(owner, {}).get(key)
        if hit is not None and len(hit[0]) == len(sources) and all(a is b for a, b in zip(hit[0], sources)):
            return hit[1]
    built = build()
    with _cache_lock:
        _weights_cache.setdefault(owner, {})[key] = (sources, built)
    return built


def forget(owner: Any) -> None:
    """Drop the device copies of ``owner``'s weights (called when a model is refit)."""
    with _cache_lock:
        _weights_cache.pop(owner, None)
