"""Preference scoring and exact search on the GPU: sparse rows against dense (feature-major)
weight vectors, per-pair predictions, and a top-k selection over every row's score."""
from __future__ import annotations

from typing import Any

import numpy as np

from .arrays import as_device_codes, as_matrix, cached, is_sparse_input, to_device
from .device import cupy, current_stream, kernels

_MAX_COLUMNS_PER_LAUNCH = 1 << 20  # grid limits of the transpose and scoring kernels


def _preference_weights(owner: Any, coef: np.ndarray, offsets: np.ndarray):
    """(population, offsets or None) on the device; ``coef`` and ``offsets`` are the model's own arrays."""
    sources = (coef, offsets) if offsets.size else (coef,)  # an empty offsets array is not identity
    return cached(owner, sources, ("preferences",),
                  lambda: (to_device(np.asarray(coef, np.float32)), to_device(offsets) if offsets.size else None))


def score(owner: Any, coef: np.ndarray, offsets: np.ndarray, user_rows: np.ndarray, items: Any):
    """Utilities of every (user, item): CuPy float32 (n_users x n_items).

    A user's weights are ``coef + offsets[row]`` (row -1: ``coef`` alone).
    """
    cp = cupy()
    module = kernels()
    M = coef.shape[0]
    items = as_device_codes(items, M, "item_codes")
    population, offsets_d = _preference_weights(owner, coef, offsets)
    n_users, n_items = user_rows.size, items.shape[0]
    out = cp.empty((n_users, n_items), cp.float32)
    stream = current_stream()
    for u0 in range(0, n_users, _MAX_COLUMNS_PER_LAUNCH):
        rows = cp.asarray(user_rows[u0:u0 + _MAX_COLUMNS_PER_LAUNCH], dtype=cp.int64)
        weights_t = cp.empty((M, rows.size), cp.float32)  # feature-major: coalesced gathers
        module.gather_transpose(weights_t, population, offsets_d, None if offsets_d is None else rows, stream)
        module.sparse_dense_scores(items, weights_t, out[u0:u0 + rows.size], stream)
    return out


def predict_pairs(owner: Any, coef: np.ndarray, offsets: np.ndarray, user_rows: np.ndarray | None,
                  pairs: Any, base_logit: np.ndarray | None, logits: bool):
    """``sigmoid(base + pair . w_user)`` per row (or the logit): CuPy float32 (n,)."""
    cp = cupy()
    M = coef.shape[0]
    pairs = as_device_codes(pairs, M, "pair_codes")
    population, offsets_d = _preference_weights(owner, coef, offsets)
    rows = None if (user_rows is None or offsets_d is None) else cp.asarray(user_rows, dtype=cp.int64)
    base = None if base_logit is None else cp.asarray(base_logit, dtype=cp.float32)
    out = cp.empty(pairs.shape[0], cp.float32)
    kernels().predict_pairs(population, None if rows is None else offsets_d, rows, pairs, base, bool(logits), out,
                            current_stream())
    return out


def exact_search(rows: Any, queries: Any, k: int, *, n_features: int, score_bytes: int = 1 << 30):
    """Exact top-k rows by inner product for each query: CuPy (ids int64, scores float32).

    ``rows``: the indexed codes (DeviceSparseCodes, cupyx or host codes); ``queries``: dense
    (n_queries x n_features, any device or host array) or sparse codes. Scores a batch of
    queries against every row (at most ``score_bytes`` of scores at a time), then selects.
    """
    cp = cupy()
    module = kernels()
    rows = as_device_codes(rows, n_features, "codes")
    if k > module.max_k:
        raise ValueError(f"k={k} exceeds the GPU search limit of {module.max_k}")
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
    stream = current_stream()
    batch = max(1, min(n_queries, _MAX_COLUMNS_PER_LAUNCH, score_bytes // (4 * n_rows)))
    for q0 in range(0, n_queries, batch):
        q = dense[q0:q0 + batch]
        nq = q.shape[0]
        q_t = cp.empty((n_features, nq), cp.float32)
        module.gather_transpose(q_t, None, q, None, stream)
        all_scores = cp.empty((nq, n_rows), cp.float32)
        module.sparse_dense_scores(rows, q_t, all_scores, stream)
        module.select_topk(all_scores, k, ids[q0:q0 + nq], scores[q0:q0 + nq], counts[q0:q0 + nq], stream)
    return ids.astype(cp.int64), scores


def _dense_queries(queries: Any, n_features: int):
    """Queries as a dense float32 CuPy matrix (sparse codes are densified on the device)."""
    cp = cupy()
    if is_sparse_input(queries):
        codes = as_device_codes(queries, n_features, "queries")
        out = cp.zeros(codes.shape, cp.float32)
        kernels().densify(codes, out, current_stream())
        return out
    q = as_matrix(queries if getattr(queries, "ndim", 2) != 1 else queries.reshape(1, -1), "queries", n_features)
    if q.dtype != "float32":
        raise TypeError("GPU search queries must be float32")
    if not bool(cp.isfinite(q.array).all()):
        raise ValueError("queries contain NaN or Inf")
    return q.array

