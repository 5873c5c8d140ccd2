"""Encode and decode on the GPU: a cuBLAS product per tile of rows, then our selection kernels.

The pre-activations are formed by the rule the CPU encoder uses (``likeable._core``, one C++
function for both paths): fold ``b_dec`` into the bias when there are few features or the
input is narrower than float32, otherwise centre each tile of rows exactly.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import _core
from .arrays import DeviceMatrix, DeviceSparseCodes, as_device_codes, as_matrix, bfloat16_bits, cached, to_device
from .device import cupy, current_stream, kernels

#: Bytes of pre-activations per encode tile: large enough to keep launches few, small enough
#: to stay near L2 (50 MB on an H100).
DEFAULT_TILE_BYTES = 64 << 20

_NO_BAD_ROW = np.iinfo(np.uint64).max
_ONE = np.ones(1, np.float32)   # cuBLAS alpha/beta, read from host memory
_ZERO = np.zeros(1, np.float32)


def encode_bias(weights, input_dtype: str) -> tuple[bool, np.ndarray]:
    """(centre each row first?, the bias added to the product) for inputs of ``input_dtype``.

    The CPU encoder's rule and fold, from the core: folded, ``b_enc - b_dec @ W_enc`` in float64;
    centred, ``b_enc`` after ``x - b_dec``.
    """
    n_features = weights.W_encT.shape[0]
    bits = 32 if input_dtype == "float32" else 16
    if _core.encoder_folds_decoder_bias(n_features, bits):
        return False, _core.encoder_folded_bias(weights.W_encT, weights.b_enc, weights.b_dec)
    return True, weights.b_enc


class _OnDevice(NamedTuple):
    W_encT: Any    # M x d in the input's dtype (bfloat16 as bit patterns)
    centre: bool
    bias: Any      # M float32: folded, or b_enc when centring
    threshold: Any
    W_dec: Any
    b_dec: Any


def _weights_on_device(weights, dtype: str) -> _OnDevice:
    def build():
        W = weights.W_encT
        if dtype == "bfloat16":
            W_dev = to_device(bfloat16_bits(W))
        else:
            W_dev = to_device(W.astype(np.float16 if dtype == "float16" else np.float32, copy=False))
        centre, bias = encode_bias(weights, dtype)
        threshold = None if weights.threshold is None else to_device(weights.threshold)
        return _OnDevice(W_dev, centre, to_device(np.asarray(bias, np.float32)), threshold,
                         to_device(weights.W_dec), to_device(weights.b_dec))

    sources = (weights.W_encT, weights.b_enc, weights.W_dec, weights.b_dec, weights.threshold)
    return cached(weights.W_encT, sources, ("encoder", dtype), build)


def _gemm(rows, dtype: str, W_encT, out, allow_tf32: bool) -> None:
    """out[:n] (n x M, float32) = rows (n x d) @ W_encT^T through cuBLAS (TF32 tensor cores for
    float32 inputs when allowed).

    cuBLAS is column-major: the row-major product is the column-major M x n matrix W_encT
    (op T) times rows^T (op N).
    """
    cp = cupy()
    from cupy.cuda import cublas, runtime

    n, d = rows.shape
    M = W_encT.shape[0]
    cuda_type = {"float32": runtime.CUDA_R_32F, "float16": runtime.CUDA_R_16F,
                 "bfloat16": runtime.CUDA_R_16BF}[dtype]
    tf32 = allow_tf32 and dtype == "float32"
    compute = cublas.CUBLAS_COMPUTE_32F_FAST_TF32 if tf32 else cublas.CUBLAS_COMPUTE_32F
    handle = cp.cuda.device.get_cublas_handle()
    set_mode = getattr(cublas, "setPointerMode", None)
    if set_mode is not None:
        set_mode(handle, cublas.CUBLAS_POINTER_MODE_HOST)  # alpha/beta are host floats (the default)
    cublas.gemmEx(handle, cublas.CUBLAS_OP_T, cublas.CUBLAS_OP_N, M, n, d, _ONE.ctypes.data,
                  W_encT.data.ptr, cuda_type, d, rows.data.ptr, cuda_type, d, _ZERO.ctypes.data,
                  out.data.ptr, runtime.CUDA_R_32F, M, compute, cublas.CUBLAS_GEMM_DEFAULT)


def tile_rows_for(n_rows: int, n_features: int, tile_rows: int | None, tile_bytes: int) -> int:
    """Rows per tile: ``tile_rows`` if given, else as many as fit ``tile_bytes`` of float32 pre-activations."""
    if tile_rows is not None:
        if isinstance(tile_rows, bool) or int(tile_rows) < 1:
            raise ValueError(f"tile_rows must be a positive integer, got {tile_rows!r}")
        return min(int(tile_rows), max(n_rows, 1))
    return max(1, min(max(n_rows, 1), tile_bytes // (4 * n_features), 1 << 20))


class _Tiles:
    """Pre-activation tiles of X: X[r0:r0 + rows] (centred if the rule says so) @ W_enc."""

    def __init__(self, x: DeviceMatrix, w: _OnDevice, tile: int, allow_tf32: bool) -> None:
        cp = cupy()
        self.x, self.w, self.tile = x, w, tile
        self.n = x.shape[0]
        self.pre = cp.empty((tile, w.W_encT.shape[0]), cp.float32)
        self.centred = cp.empty((tile, x.shape[1]), cp.float32) if w.centre else None
        self.allow_tf32 = allow_tf32

    def __iter__(self):
        cp = cupy()
        for r0 in range(0, self.n, self.tile):
            rows = min(self.tile, self.n - r0)
            block = self.x.array[r0:r0 + rows]
            if self.centred is not None:  # float32 input: the exact centring, as on the CPU
                block = cp.subtract(block, self.w.b_dec, out=self.centred[:rows])
            _gemm(block, self.x.dtype, self.w.W_encT, self.pre, self.allow_tf32)
            yield r0, self.pre[:rows]


def _raise_if_bad(bad_row) -> None:
    row = int(bad_row[0])
    if row != int(_NO_BAD_ROW):
        raise ValueError(f"X contains NaN or Inf (first in row {row}), or values so large their "
                         f"products overflow float32")


def encode(weights, X: Any, *, k: int, use_threshold: bool, signed: bool, allow_tf32: bool = False,
           tile_rows: int | None = None, tile_bytes: int = DEFAULT_TILE_BYTES) -> DeviceSparseCodes:
    """GPU codes of the rows of X (see :meth:`likeable.SparseEncoder.encode`).

    ``weights`` holds the encoder's host arrays (:class:`likeable.encoder.EncoderWeights`).
    """
    cp = cupy()
    module = kernels()
    n_features, n_dims = weights.W_encT.shape
    x = as_matrix(X, "X", n_dims)
    n = x.shape[0]
    if not use_threshold and k > module.max_k:
        raise ValueError(f"k={k} exceeds the GPU encoder's limit of {module.max_k}; use the CPU path")
    w = _weights_on_device(weights, x.dtype)
    tiles = _Tiles(x, w, tile_rows_for(n, n_features, tile_rows, tile_bytes), allow_tf32)
    bad = cp.full(1, _NO_BAD_ROW, cp.uint64)
    stream = current_stream()
    if not use_threshold:
        ids = cp.empty((n, k), cp.int32)
        values = cp.empty((n, k), cp.float32)
        counts = cp.empty(n, cp.int32)
        for r0, pre in tiles:
            module.encode_select_tile(pre, w.bias, r0, k, bool(signed), ids, values, counts, bad, stream)
        _raise_if_bad(bad)
        return DeviceSparseCodes.from_fixed(ids, values, counts, n_features)

    # Threshold mode: a counting sweep sizes the output, a second sweep writes it.
    row_counts = cp.zeros(n, cp.int64)
    indptr = cp.zeros(n + 1, cp.int64)
    for r0, pre in tiles:
        module.encode_threshold_tile(pre, w.bias, w.threshold, r0, bool(signed), indptr, row_counts, bad,
                                     None, None, stream)
    _raise_if_bad(bad)
    cp.cumsum(row_counts, out=indptr[1:])
    nnz = int(indptr[-1])
    ids, values = cp.empty(nnz, cp.int32), cp.empty(nnz, cp.float32)
    for r0, pre in tiles:
        module.encode_threshold_tile(pre, w.bias, w.threshold, r0, bool(signed), indptr, row_counts, bad,
                                     ids, values, stream)
    return DeviceSparseCodes(indptr, ids, values, (n, n_features), validate=False)


def decode(weights, codes: Any):
    """codes @ W_dec + b_dec on the GPU: a CuPy float32 array (n x d)."""
    cp = cupy()
    n_features, n_dims = weights.W_dec.shape
    codes = as_device_codes(codes, n_features)
    w = _weights_on_device(weights, "float32")
    out = cp.empty((codes.shape[0], n_dims), cp.float32)
    kernels().decode(codes, w.W_dec, w.b_dec, out, current_stream())
    return out
