"""The GPU path: likeable's CUDA kernels (``likeable._cuda``) driven through CuPy.

CuPy owns allocation (its memory pool), streams (every call runs on CuPy's current stream)
and the matrix products (cuBLAS through CuPy's binding); the kernels of ours select the top k
per row, score sparse rows against dense vectors, and decode. Inputs on the GPU are used in
place: CuPy arrays, anything with ``__cuda_array_interface__``, or DLPack producers such as
PyTorch tensors (bfloat16 included). Host (numpy) inputs are staged through pinned memory.

The public entry points are the usual methods with ``device="cuda"`` (or GPU inputs):
``SparseEncoder.encode/decode``, ``PreferenceModel``/``UserPreferences``
``predict_proba/decision_function``, ``UserPreferences.score`` and exact ``SparseIndex.search``.
This module adds :func:`available`, :func:`unavailable_reason`, :func:`device_info` and
:class:`DeviceSparseCodes`, and keeps the lower-level calls (:func:`encode`, :func:`decode`,
:func:`score`, :func:`predict_pairs`, :func:`exact_search`). The implementation lives in
``likeable._gpu``, one module per concept.
"""
from __future__ import annotations

from typing import Any

from ._gpu import encode as _encode
from ._gpu.arrays import DeviceSparseCodes, as_device_codes, forget, to_device
from ._gpu.device import (available, device_context, device_info, dispatch, is_device_array, require,
                          unavailable_reason, wants_gpu)
from ._gpu.encode import DEFAULT_TILE_BYTES
from ._gpu.scoring import exact_search, predict_pairs, score

__all__ = ["available", "unavailable_reason", "require", "device_info", "DeviceSparseCodes", "is_device_array",
           "wants_gpu", "device_context", "dispatch", "to_device", "as_device_codes", "forget", "encode", "decode",
           "score", "predict_pairs", "exact_search", "DEFAULT_TILE_BYTES"]


def encode(encoder, X: Any, *, k: int, use_threshold: bool, allow_tf32: bool = False,
           tile_rows: int | None = None, tile_bytes: int = DEFAULT_TILE_BYTES) -> DeviceSparseCodes:
    """GPU codes of the rows of X with ``encoder``'s weights (see :meth:`likeable.SparseEncoder.encode`)."""
    return _encode.encode(encoder.weights_, X, k=k, use_threshold=use_threshold, signed=bool(encoder.signed),
                          allow_tf32=allow_tf32, tile_rows=tile_rows, tile_bytes=tile_bytes)


def decode(encoder, codes: Any):
    """``codes @ W_dec + b_dec`` on the GPU: a CuPy float32 array (n x d)."""
    return _encode.decode(encoder.weights_, codes)
