"""The GPU path: likeable's CUDA kernels (``likeable._cuda``) driven through CuPy.

CuPy owns allocation (its memory pool), streams (every call runs on CuPy's current stream)
and the matrix products (cuBLAS through CuPy's binding); the kernels of ours select the top k
per row, score sparse rows against dense vectors, and decode. Inputs on the GPU are used in
place: CuPy arrays, anything with ``__cuda_array_interface__``, or DLPack producers such as
PyTorch tensors (bfloat16 included). Host (numpy) inputs are staged through pinned memory.

The public entry points are the usual methods with ``device="cuda"`` (or GPU inputs):
``SparseEncoder.encode/decode``, ``UserPreferences.score/predict_proba/decision_function``
and exact ``SparseIndex.search``. This module adds :func:`available`, :func:`unavailable_reason`,
:func:`device_info` and :class:`DeviceSparseCodes`.
"""
from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Any, NamedTuple

import numpy as np

from .sparse import SparseCodes

# CUDA ABI constants (library_types.h, cublas_api.h): stable across CUDA 11-13.
_CUDA_R_32F, _CUDA_R_16F, _CUDA_R_16BF = 0, 2, 14
_CUBLAS_OP_N, _CUBLAS_OP_T = 0, 1
_CUBLAS_COMPUTE_32F, _CUBLAS_COMPUTE_32F_FAST_TF32 = 68, 77
_CUBLAS_GEMM_DEFAULT = -1
_DLPACK_CUDA, _DLPACK_CUDA_MANAGED = 2, 13
_DLPACK_FLOAT, _DLPACK_BFLOAT = 2, 4

# dtype codes shared with the kernels: float32, bfloat16, float16.
_F32, _BF16, _F16 = 0, 1, 2
_CUDA_TYPE = {_F32: _CUDA_R_32F, _BF16: _CUDA_R_16BF, _F16: _CUDA_R_16F}
_ITEMSIZE = {_F32: 4, _BF16: 2, _F16: 2}

_ONE = np.ones(1, np.float32)   # cuBLAS alpha/beta, read from host memory
_ZERO = np.zeros(1, np.float32)
_NO_BAD_ROW = np.iinfo(np.uint64).max

#: Bytes of pre-activations per encode tile: large enough to keep launches few, small enough
#: to stay near L2 (50 MB on an H100).
DEFAULT_TILE_BYTES = 64 << 20


# --- availability ---------------------------------------------------------------------------
def _kernels():
    try:
        from . import _cuda
    except ImportError:
        return None
    return _cuda


def unavailable_reason() -> str | None:
    """Why the GPU path cannot run here (None when it can)."""
    kernels = _kernels()
    if kernels is None:
        return ("likeable was built without its CUDA module (no CUDA toolkit was found at build "
                "time; rebuild with one, e.g. CMAKE_ARGS=-DLIKEABLE_ENABLE_CUDA=ON)")
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "CuPy is not installed (pip install 'likeable[gpu]')"
    count, reason = kernels.device_count()
    if count == 0:
        return f"no usable CUDA device ({reason})"
    return None


def available() -> bool:
    """True when the CUDA module is built, CuPy imports and a CUDA device is visible."""
    return unavailable_reason() is None


def require() -> None:
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"the GPU path is unavailable: {reason}")


def device_info(device: int | None = None) -> dict:
    """Name, compute capability, multiprocessors, L2 and memory of a device (default: current)."""
    require()
    import cupy as cp

    return _kernels().device_properties(cp.cuda.Device().id if device is None else int(device))


def _cp():
    require()
    import cupy as cp

    return cp


def _stream_ptr() -> int:
    import cupy as cp

    return cp.cuda.get_current_stream().ptr


# --- where a call runs ----------------------------------------------------------------------
def _has_cuda_array_interface(obj: Any) -> bool:
    # Not hasattr: PyTorch raises TypeError (bfloat16) or RuntimeError (requires_grad) from it.
    try:
        return getattr(obj, "__cuda_array_interface__", None) is not None
    except Exception:  # noqa: BLE001
        return False


def is_device_array(obj: Any) -> bool:
    """Whether ``obj`` lives in GPU memory (CUDA array interface, CUDA DLPack, device codes)."""
    if isinstance(obj, DeviceSparseCodes) or _has_cuda_array_interface(obj):
        return True
    dl_device = getattr(obj, "__dlpack_device__", None)
    if dl_device is not None:
        try:
            return int(dl_device()[0]) in (_DLPACK_CUDA, _DLPACK_CUDA_MANAGED)
        except Exception:  # noqa: BLE001 - a producer that cannot answer is not on the GPU
            return False
    return type(obj).__module__.startswith("cupyx.scipy.sparse")


def wants_gpu(device: Any, *inputs: Any) -> bool:
    """Resolve ``device=`` (None: wherever the inputs are; "cpu"; "cuda" or "cuda:N")."""
    on_gpu = any(is_device_array(x) for x in inputs)
    if device is None:
        return on_gpu
    name = str(device).lower()
    if name == "cpu":
        if on_gpu:
            raise ValueError("device='cpu' was asked for but the input is in GPU memory: "
                             "copy it to the host first (e.g. .get()), or pass device=None")
        return False
    if name == "cuda" or name.startswith("cuda:"):
        return True
    raise ValueError(f"device must be None, 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def device_context(device: Any):
    """A CuPy device context for 'cuda:N' (the current device otherwise)."""
    cp = _cp()
    name = "" if device is None else str(device).lower()
    if name.startswith("cuda:"):
        try:
            return cp.cuda.Device(int(name[5:]))
        except ValueError:
            raise ValueError(f"bad device {device!r}: expected 'cuda:N'") from None
    return cp.cuda.Device()


# --- inputs ---------------------------------------------------------------------------------
class _Matrix(NamedTuple):
    ptr: int
    dtype: int        # _F32 / _BF16 / _F16
    shape: tuple
    owner: Any        # keeps the memory alive while kernels run


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


def _peek_dlpack(obj: Any, name: str) -> _Matrix:
    """Read a 2-D CUDA DLPack tensor in place (bfloat16 included, which CuPy cannot hold).

    The capsule is not consumed: it stays referenced until the call is done and its producer
    frees it as usual. Hand-written because CuPy has no bfloat16 dtype.
    """
    stream = _stream_ptr()
    capsule = obj.__dlpack__(stream=stream or 1)  # 1: the legacy default stream (DLPack spec)
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    tensor = _DLTensor.from_address(get(capsule, b"dltensor"))
    if tensor.device.device_type not in (_DLPACK_CUDA, _DLPACK_CUDA_MANAGED):
        raise ValueError(f"{name} is not in CUDA memory")
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got {tensor.ndim}-D")
    shape = (int(tensor.shape[0]), int(tensor.shape[1]))
    if tensor.strides and shape[0] > 1 and (tensor.strides[1] != 1 or tensor.strides[0] != shape[1]):
        raise ValueError(f"{name} must be C-contiguous (call .contiguous() first)")
    code = (int(tensor.dtype.code), int(tensor.dtype.bits), int(tensor.dtype.lanes))
    dtypes = {(_DLPACK_FLOAT, 32, 1): _F32, (_DLPACK_BFLOAT, 16, 1): _BF16, (_DLPACK_FLOAT, 16, 1): _F16}
    if code not in dtypes:
        raise TypeError(f"{name} must be float32, bfloat16 or float16 (DLPack type code {code})")
    return _Matrix(int(tensor.data or 0) + int(tensor.byte_offset), dtypes[code], shape, (obj, capsule))


def _as_matrix(X: Any, name: str, n_cols: int) -> _Matrix:
    """X as a C-contiguous device matrix: GPU inputs in place, host inputs through pinned memory."""
    cp = _cp()
    if isinstance(X, cp.ndarray) or _has_cuda_array_interface(X):
        arr = cp.asarray(X)
    elif hasattr(X, "__dlpack__") and is_device_array(X):
        try:
            arr = cp.from_dlpack(X)
        except Exception:  # noqa: BLE001 - e.g. bfloat16, which CuPy cannot represent
            mat = _peek_dlpack(X, name)  # bfloat16: read in place
            _check_shape(mat.shape, name, n_cols)
            return mat
    else:
        arr = to_device(np.asarray(X, dtype=np.float32))
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {arr.shape}")
    if arr.dtype == cp.float16:
        code = _F16
    elif str(arr.dtype) == "bfloat16":
        code = _BF16
    else:
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
        arr, code = arr.astype(cp.float32, copy=False), _F32
    arr = cp.ascontiguousarray(arr)
    _check_shape(arr.shape, name, n_cols)
    return _Matrix(arr.data.ptr if arr.size else 0, code, tuple(arr.shape), arr)


def _check_shape(shape, name: str, n_cols: int) -> None:
    if shape[1] != n_cols:
        raise ValueError(f"{name} has {shape[1]} columns, expected {n_cols}")


def to_device(host: np.ndarray, *, batch_bytes: int = 256 << 20):
    """Copy a host array to the current device through pinned memory, in large batches."""
    cp = _cp()
    import cupyx

    host = np.ascontiguousarray(host)
    out = cp.empty(host.shape, host.dtype)
    if host.size == 0:
        return out
    flat_in, flat_out = host.reshape(-1), out.reshape(-1)
    step = max(1, batch_bytes // host.itemsize)
    staging = cupyx.empty_pinned(min(step, flat_in.size), host.dtype)
    stream = cp.cuda.get_current_stream()
    for start in range(0, flat_in.size, step):
        part = flat_in[start:start + step]
        stream.synchronize()  # the staging buffer is free again
        staging[:part.size] = part
        flat_out[start:start + part.size].set(staging[:part.size], stream=stream)
    stream.synchronize()
    return out


# --- sparse codes in GPU memory -------------------------------------------------------------
class DeviceSparseCodes:
    """CSR rows in GPU memory: CuPy ``indptr`` (int64), ``indices`` (int32), ``values`` (float32).

    What the GPU encoder returns for GPU inputs; :meth:`get` copies to a host
    :class:`likeable.SparseCodes`, :meth:`to_cupyx` views it as a ``cupyx.scipy.sparse`` matrix.
    """

    __slots__ = ("indptr", "indices", "values", "shape")

    def __init__(self, indptr, indices, values, shape, *, validate: bool = True) -> None:
        cp = _cp()
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
        cp = _cp()
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
        return cls(to_device(codes.indptr), to_device(codes.indices), to_device(codes.values), codes.shape,
                   validate=False)

    @classmethod
    def from_fixed(cls, ids, values, counts, n_features: int) -> "DeviceSparseCodes":
        """From n x k slots with counts[r] used per row (no copy when every row is full)."""
        cp = _cp()
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
        return SparseCodes(self.indptr.get(), self.indices.get(), self.values.get(), self.shape, validate=False)

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
        cp = _cp()
        return cp.diff(self.indptr)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<likeable.gpu.DeviceSparseCodes(n_rows={self.shape[0]}, n_features={self.shape[1]}, nnz={self.nnz})>"


def as_device_codes(codes: Any, n_features: int, name: str = "codes") -> DeviceSparseCodes:
    """DeviceSparseCodes from device codes, a cupyx sparse matrix, or host codes (uploaded)."""
    if isinstance(codes, DeviceSparseCodes):
        out = codes
    elif type(codes).__module__.startswith("cupyx.scipy.sparse"):
        csr = codes.tocsr()
        csr.sum_duplicates()
        out = DeviceSparseCodes(csr.indptr, csr.indices, csr.data, csr.shape)
    else:
        from .sparse import as_sparse_codes

        out = DeviceSparseCodes.from_host(as_sparse_codes(codes, name))
    if out.shape[1] != n_features:
        raise ValueError(f"{name} has {out.shape[1]} features, expected {n_features}")
    return out


# --- device copies of model weights, cached per model ---------------------------------------
_cache_lock = threading.Lock()
_weights_cache: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _cached(owner: Any, sources: tuple, key: tuple, build):
    """Device arrays built from `sources` (host arrays), rebuilt when any source is replaced."""
    cp = _cp()
    key = (cp.cuda.Device().id,) + key
    with _cache_lock:
        entry = _weights_cache.setdefault(owner, {})
        hit = entry.get(key)
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


def _bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, rounding to nearest even (finite inputs)."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


class _EncoderOnDevice(NamedTuple):
    W_encT: Any   # M x d in the input's dtype
    bias: Any     # b_enc - b_dec @ W_enc, folded in float64
    threshold: Any
    W_dec: Any
    b_dec: Any


def _encoder_weights(encoder, dtype: int) -> _EncoderOnDevice:
    sources = (encoder._W_encT, encoder._b_enc, encoder._W_dec, encoder._b_dec, encoder._threshold)

    def build():
        W = encoder._W_encT
        if dtype == _BF16:
            W_dev = to_device(_bf16_bits(W))
        else:
            W_dev = to_device(W.astype(np.float16 if dtype == _F16 else np.float32, copy=False))
        # The folded bias keeps one GEMM per tile (no centring pass over X); float64 keeps it exact.
        bias = (encoder._b_enc.astype(np.float64) - W.astype(np.float64) @ encoder._b_dec.astype(np.float64))
        threshold = None if encoder._threshold is None else to_device(encoder._threshold)
        return _EncoderOnDevice(W_dev, to_device(bias.astype(np.float32)), threshold,
                                to_device(encoder._W_dec), to_device(encoder._b_dec))

    return _cached(encoder, sources, ("encoder", dtype), build)


# --- encoder ----------------------------------------------------------------------------------
def _gemm(x: _Matrix, first_row: int, n_rows: int, W_encT, n_features: int, out, allow_tf32: bool) -> None:
    """out (n_rows x M, float32) = X[first_row:first_row + n_rows] @ W_encT^T through cuBLAS.

    cuBLAS is column-major: the row-major product is the column-major M x n_rows matrix
    W_encT (op T) times X^T (op N).
    """
    import cupy as cp
    from cupy_backends.cuda.libs import cublas

    d = x.shape[1]
    compute = _CUBLAS_COMPUTE_32F_FAST_TF32 if (x.dtype == _F32 and allow_tf32) else _CUBLAS_COMPUTE_32F
    handle = cp.cuda.device.get_cublas_handle()
    set_mode = getattr(cublas, "setPointerMode", None)
    if set_mode is not None:
        set_mode(handle, 0)  # CUBLAS_POINTER_MODE_HOST (the default): alpha/beta are host floats
    cublas.gemmEx(handle, _CUBLAS_OP_T, _CUBLAS_OP_N, n_features, n_rows, d, _ONE.ctypes.data,
                  W_encT.data.ptr, _CUDA_TYPE[x.dtype], d, x.ptr + first_row * d * _ITEMSIZE[x.dtype],
                  _CUDA_TYPE[x.dtype], d, _ZERO.ctypes.data, out.data.ptr, _CUDA_R_32F, n_features,
                  compute, _CUBLAS_GEMM_DEFAULT)


def _tile_rows(n_rows: int, n_features: int, tile_rows: int | None, tile_bytes: int) -> int:
    if tile_rows is not None:
        if isinstance(tile_rows, bool) or int(tile_rows) < 1:
            raise ValueError(f"tile_rows must be a positive integer, got {tile_rows!r}")
        return min(int(tile_rows), max(n_rows, 1))
    return max(1, min(max(n_rows, 1), tile_bytes // (4 * n_features), 1 << 20))


def _raise_if_bad(bad_row) -> None:
    row = int(bad_row[0])
    if row != int(_NO_BAD_ROW):
        raise ValueError(f"X contains NaN or Inf (first in row {row}), or values so large their "
                         f"products overflow float32")


def encode(encoder, X: Any, *, k: int, use_threshold: bool, allow_tf32: bool = False,
           tile_rows: int | None = None, tile_bytes: int = DEFAULT_TILE_BYTES) -> DeviceSparseCodes:
    """GPU codes of the rows of X (see :meth:`likeable.SparseEncoder.encode`)."""
    cp = _cp()
    kernels = _kernels()
    x = _as_matrix(X, "X", encoder.n_dims_)
    n, M = x.shape[0], encoder.n_features
    if not use_threshold and k > kernels.max_k:
        raise ValueError(f"k={k} exceeds the GPU encoder's limit of {kernels.max_k}; use the CPU path")
    w = _encoder_weights(encoder, x.dtype)
    tile = _tile_rows(n, M, tile_rows, tile_bytes)
    pre = cp.empty((tile, M), cp.float32)
    bad = cp.full(1, _NO_BAD_ROW, cp.uint64)
    stream = _stream_ptr()
    signed = bool(encoder.signed)
    if not use_threshold:
        ids = cp.empty((n, k), cp.int32)
        values = cp.empty((n, k), cp.float32)
        counts = cp.empty(n, cp.int32)
        for r0 in range(0, n, tile):
            rows = min(tile, n - r0)
            _gemm(x, r0, rows, w.W_encT, M, pre, allow_tf32)
            kernels.encode_select_tile(pre.data.ptr, w.bias.data.ptr, rows, M, r0, k, signed, ids.data.ptr,
                                       values.data.ptr, counts.data.ptr, bad.data.ptr, stream)
        _raise_if_bad(bad)
        return DeviceSparseCodes.from_fixed(ids, values, counts, M)

    # Threshold mode: a counting sweep sizes the output, a second sweep writes it.
    row_counts = cp.zeros(n, cp.int64)
    indptr = cp.zeros(n + 1, cp.int64)
    for write in (False, True):
        if write:
            _raise_if_bad(bad)
            cp.cumsum(row_counts, out=indptr[1:])
            nnz = int(indptr[-1])
            ids, values = cp.empty(nnz, cp.int32), cp.empty(nnz, cp.float32)
        for r0 in range(0, n, tile):
            rows = min(tile, n - r0)
            _gemm(x, r0, rows, w.W_encT, M, pre, allow_tf32)
            kernels.encode_threshold_tile(pre.data.ptr, w.bias.data.ptr, w.threshold.data.ptr, rows, M, r0, signed,
                                          write, indptr.data.ptr, row_counts.data.ptr,
                                          ids.data.ptr if write else 0, values.data.ptr if write else 0,
                                          bad.data.ptr, stream)
    return DeviceSparseCodes(indptr, ids, values, (n, M), validate=False)


def decode(encoder, codes: Any):
    """codes @ W_dec + b_dec on the GPU: a CuPy float32 array (n x d)."""
    cp = _cp()
    codes = as_device_codes(codes, encoder.n_features)
    w = _encoder_weights(encoder, _F32)
    out = cp.empty((codes.shape[0], encoder.n_dims_), cp.float32)
    _kernels().decode(codes.indptr.data.ptr, codes.indices.data.ptr, codes.values.data.ptr, codes.shape[0],
                      w.W_dec.data.ptr, w.b_dec.data.ptr, encoder.n_dims_, out.data.ptr, _stream_ptr())
    return out


# --- preferences ------------------------------------------------------------------------------
_MAX_USERS_PER_LAUNCH = 1 << 20  # grid limits of the transpose and scoring kernels


def _preference_weights(owner, coef: np.ndarray, offsets: np.ndarray):
    """(population, offsets) on the device; `coef` and `offsets` are the model's own arrays."""
    sources = (coef, offsets) if offsets.size else (coef,)  # an empty offsets array is not identity
    return _cached(owner, sources, ("preferences",),
                   lambda: (to_device(np.asarray(coef, np.float32)), to_device(offsets)))


def score(owner, coef: np.ndarray, offsets: np.ndarray, user_rows: np.ndarray, items: Any):
    """Utilities of every (user, item): CuPy float32 (n_users x n_items).

    A user's weights are coef + offsets[row] (row -1: coef alone).
    """
    cp = _cp()
    kernels = _kernels()
    M = offsets.shape[1]
    items = as_device_codes(items, M, "item_codes")
    population, offsets = _preference_weights(owner, coef, offsets)
    n_users, n_items = user_rows.size, items.shape[0]
    out = cp.empty((n_users, n_items), cp.float32)
    stream = _stream_ptr()
    for u0 in range(0, n_users, _MAX_USERS_PER_LAUNCH):
        rows = cp.asarray(user_rows[u0:u0 + _MAX_USERS_PER_LAUNCH])
        weights_t = cp.empty((M, rows.size), cp.float32)  # feature-major: coalesced gathers
        kernels.gather_transpose(population.data.ptr, offsets.data.ptr if offsets.size else 0, M,
                                 rows.data.ptr, rows.size, M, weights_t.data.ptr, stream)
        kernels.sparse_dense_scores(items.indptr.data.ptr, items.indices.data.ptr, items.values.data.ptr,
                                    n_items, weights_t.data.ptr, rows.size, out[u0:].data.ptr if out.size else 0,
                                    n_items, stream)
    return out


def predict_pairs(owner, coef: np.ndarray, offsets: np.ndarray, user_rows: np.ndarray | None,
                  pairs: Any, base_logit: np.ndarray | None, logits: bool):
    """sigmoid(base + pair . w_user) per row (or the logit): CuPy float32 (n,)."""
    cp = _cp()
    M = coef.shape[0]
    pairs = as_device_codes(pairs, M, "pair_codes")
    pop_d, off_d = _preference_weights(owner, coef, offsets)
    n = pairs.shape[0]
    rows = None if user_rows is None else cp.asarray(user_rows, dtype=cp.int64)
    base = None if base_logit is None else cp.asarray(base_logit, dtype=cp.float32)
    out = cp.empty(n, cp.float32)
    _kernels().predict_pairs(pop_d.data.ptr, off_d.data.ptr if off_d.size else 0, M,
                             rows.data.ptr if rows is not None and rows.size else 0,
                             pairs.indptr.data.ptr, pairs.indices.data.ptr, pairs.values.data.ptr, n,
                             base.data.ptr if base is not None and base.size else 0, bool(logits),
                             out.data.ptr, _stream_ptr())
    return out


# --- exact search ---------------------------------------------------------------------------
def exact_search(rows: Any, queries: Any, k: int, *, n_features: int, score_bytes: int = 1 << 30):
    """Exact top-k rows by inner product for each query: CuPy (ids int64, scores float32).

    rows: the indexed codes (DeviceSparseCodes, cupyx or host codes); queries: dense
    (n_queries x n_features, any device or host array) or sparse codes. Scores a batch of
    queries against every row (at most ``score_bytes`` of scores at a time), then selects.
    """
    cp = _cp()
    kernels = _kernels()
    rows = as_device_codes(rows, n_features, "codes")
    if k > kernels.max_k:
        raise ValueError(f"k={k} exceeds the GPU search limit of {kernels.max_k}")
    n_rows = rows.shape[0]
    if n_rows >= 2 ** 31:
        raise ValueError("GPU exact search supports fewer than 2^31 rows")
    dense = _dense_queries(queries, n_features)
    n_queries = dense.shape[0]
    ids = cp.full((n_queries, k), -1, cp.int32)
    scores = cp.full((n_queries, k), -np.inf, cp.float32)
    counts = cp.empty(n_queries, cp.int32)
    if n_rows == 0 or n_queries == 0:
        return ids.astype(cp.int64), scores
    stream = _stream_ptr()
    batch = max(1, min(n_queries, _MAX_USERS_PER_LAUNCH, score_bytes // (4 * n_rows)))
    for q0 in range(0, n_queries, batch):
        q = dense[q0:q0 + batch]
        q_t = cp.empty((n_features, q.shape[0]), cp.float32)
        kernels.gather_transpose(0, q.data.ptr, n_features, 0, q.shape[0], n_features, q_t.data.ptr, stream)
        all_scores = cp.empty((q.shape[0], n_rows), cp.float32)
        kernels.sparse_dense_scores(rows.indptr.data.ptr, rows.indices.data.ptr, rows.values.data.ptr, n_rows,
                                    q_t.data.ptr, q.shape[0], all_scores.data.ptr, n_rows, stream)
        kernels.select_topk(all_scores.data.ptr, q.shape[0], n_rows, n_rows, k, ids[q0:].data.ptr,
                            scores[q0:].data.ptr, counts[q0:].data.ptr, stream)
    return ids.astype(cp.int64), scores


def _dense_queries(queries: Any, n_features: int):
    cp = _cp()
    from .sparse import SparseCodes as _Codes

    import scipy.sparse as sp

    if isinstance(queries, (DeviceSparseCodes, _Codes)) or sp.issparse(queries) \
            or type(queries).__module__.startswith("cupyx.scipy.sparse"):
        codes = as_device_codes(queries, n_features, "queries")
        out = cp.zeros(codes.shape, cp.float32)
        _kernels().densify(codes.indptr.data.ptr, codes.indices.data.ptr, codes.values.data.ptr, codes.shape[0],
                           n_features, out.data.ptr, _stream_ptr())
        return out
    q = _as_matrix(queries if getattr(queries, "ndim", 2) != 1 else queries.reshape(1, -1), "queries", n_features)
    if q.dtype != _F32:
        raise TypeError("GPU search queries must be float32")
    arr = q.owner
    if not bool(cp.isfinite(arr).all()):
        raise ValueError("queries contain NaN or Inf")
    return arr
