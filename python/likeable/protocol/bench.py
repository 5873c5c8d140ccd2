"""Measurements of this machine: kernel throughput (``likeable bench``) and the encoder demo
(``likeable demo --encoder-only``: recovery of planted sparse directions and encode speed).

Quick numbers for a user's own machine; the project's performance claims live in
``benchmarks/`` as ratios against named peers.
"""
from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np

from .synthetic import planted_embeddings, random_directions

__all__ = ["kernel_table", "format_kernel_table", "encoder_demo"]


def kernel_table(n_rows: int = 20000, dim: int = 384, n_features: int = 4096, k: int = 32,
                 n_queries: int = 1000, n_users: int = 1000, threads: int | None = None,
                 gpu: bool = False, seed: int = 0) -> list[dict]:
    """Throughput of the core kernels on this machine (random weights and data of the given sizes).

    encode: rows/s and GFLOP/s of the encoder GEMM (2·n·d·M flops); search: queries/s and GB/s
    of postings read by exact search (8 bytes per posting of each query feature); score:
    user-item scores/s and GB/s of user weights streamed (4 bytes per weight per item nnz).
    """
    from ..encoder import SparseEncoder
    from ..index import SparseIndex
    from ..preferences import PreferenceModel, UserPreferences

    rng = np.random.default_rng(seed)
    W_dec = random_directions(n_features, dim, rng, orthonormal=False)
    enc = SparseEncoder.from_weights(np.ascontiguousarray(W_dec.T), np.zeros(n_features, np.float32), W_dec,
                                     np.zeros(dim, np.float32), k=k, signed=True, threads=threads)
    X = rng.standard_normal((n_rows, dim)).astype(np.float32)
    rows = []

    def best_of(fn, repeat=3):
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - start)
        return min(times), out

    t, codes = best_of(lambda: enc.encode(X))
    rows.append({"kernel": f"encode (d={dim}, M={n_features}, k={k})", "rows_per_s": n_rows / t,
                 "throughput": f"{2.0 * n_rows * dim * n_features / t / 1e9:.1f} GFLOP/s"})
    index = SparseIndex(codes, approximate=False, threads=threads)
    queries = codes[np.arange(min(n_queries, n_rows))]
    t, _ = best_of(lambda: index.search(queries, k=10))
    posting_len = np.bincount(codes.indices, minlength=n_features)
    touched = float(posting_len[queries.indices].sum()) * 8.0
    rows.append({"kernel": f"search exact (n={n_rows}, k=10)", "rows_per_s": len(queries) / t,
                 "throughput": f"{touched / t / 1e9:.2f} GB/s"})
    labels = (rng.random(n_rows) < 0.5).astype(np.float32)
    user_ids = rng.integers(0, n_users, n_rows).astype(str)
    prefs = UserPreferences(population=PreferenceModel(l2=1.0), shrinkage=3.0, threads=threads).fit(
        codes, labels, user_ids)
    users = list(np.unique(user_ids))
    t, _ = best_of(lambda: prefs.score(users, codes))
    rows.append({"kernel": f"score ({len(users)} users x {n_rows} items)", "rows_per_s": len(users) * n_rows / t,
                 "throughput": f"{len(users) * codes.nnz * 4.0 / t / 1e9:.2f} GB/s"})
    if gpu:
        rows.extend(_gpu_rows(enc, X, codes, prefs, users, queries, best_of))
    return rows


def _gpu_rows(enc, X, codes, prefs, users, queries, best_of) -> list[dict]:
    """The same kernels on the GPU (inputs already on the device; each timing synchronises)."""
    from .. import gpu
    from ..index import SparseIndex

    if not gpu.available():
        return [{"kernel": "gpu", "rows_per_s": float("nan"), "throughput": f"skipped: {gpu.unavailable_reason()}"}]
    import cupy as cp

    def synced(fn):
        def run():
            out = fn()
            cp.cuda.get_current_stream().synchronize()
            return out
        return run

    X_dev, codes_dev = cp.asarray(X), gpu.DeviceSparseCodes.from_host(codes)
    n, dim = X.shape
    synced(lambda: enc.encode(X_dev))()  # warm-up: weights to the device, kernels loaded
    t, _ = best_of(synced(lambda: enc.encode(X_dev)))
    name = gpu.device_info()["name"]
    out = [{"kernel": f"gpu encode ({name})", "rows_per_s": n / t,
            "throughput": f"{2.0 * n * dim * enc.n_features / t / 1e12:.2f} TFLOP/s"}]
    index = SparseIndex(codes, approximate=False)
    q_dev = cp.asarray(queries.to_dense())
    synced(lambda: index.search(q_dev, k=10))()
    t, _ = best_of(synced(lambda: index.search(q_dev, k=10)))
    out.append({"kernel": "gpu search exact", "rows_per_s": q_dev.shape[0] / t,
                "throughput": f"{q_dev.shape[0] * codes.nnz * 4.0 / t / 1e9:.1f} GB/s"})
    synced(lambda: prefs.score(users, codes_dev))()
    t, _ = best_of(synced(lambda: prefs.score(users, codes_dev)))
    out.append({"kernel": "gpu score", "rows_per_s": len(users) * n / t,
                "throughput": f"{len(users) * codes.nnz * 4.0 / t / 1e9:.1f} GB/s"})
    return out


def encoder_demo(*, n_rows: int = 20000, n_dims: int = 64, n_planted: int = 128,
                  n_features: int = 256, k: int = 4, epochs: int = 40, lr: float = 1e-2,
                  seed: int = 0, threads: int | None = None, progress: bool = True,
                  out: Callable[[str], None] = print) -> dict:
    """Train the encoder on planted sparse directions; report recovery and encode throughput."""
    from ..encoder import SparseEncoder

    X, directions = planted_embeddings(n_rows, n_dims, n_planted, min(k, n_planted), 0.02, seed)
    out(f"synthetic embeddings: {n_rows} rows x {n_dims} dims, {n_planted} planted directions, "
        f"{min(k, n_planted)} active per row")
    enc = SparseEncoder(n_features=n_features, k=k, seed=seed, threads=threads)
    start = time.perf_counter()
    enc.fit(X, epochs=epochs, lr=lr, patience=3, progress=progress)
    fit_s = time.perf_counter() - start
    cosine = np.abs(enc.W_dec @ directions.T).max(axis=0)  # best decoder row per planted direction
    recovered = int((cosine > 0.9).sum())
    stats = enc.stats(X)
    start = time.perf_counter()
    enc.encode(X)
    encode_s = time.perf_counter() - start
    rows_per_s = n_rows / max(encode_s, 1e-9)
    out(f"trained {enc!r} in {fit_s:.2f} s ({len(enc.history_)} epochs)")
    out(f"recovered {recovered} of {n_planted} planted directions (cosine > 0.9)")
    out(f"normalized MSE {stats.normalized_mse:.4f}, dead features {stats.dead_fraction:.1%}, "
        f"mean active {stats.mean_active:.2f}")
    out(f"encode throughput: {rows_per_s:,.0f} rows/s ({encode_s * 1e3:.1f} ms for {n_rows} rows, "
        f"{enc._threads(threads)} threads)")
    return {"recovered": recovered, "n_planted": n_planted, "normalized_mse": stats.normalized_mse,
            "fit_seconds": fit_s, "encode_rows_per_second": rows_per_s}


def format_kernel_table(rows: list[dict], threads: int | None = None) -> str:
    """:func:`kernel_table`'s rows as the text table ``likeable bench`` prints."""
    lines = [f"machine: {os.cpu_count()} cores, threads={threads or 'all'}",
             f"{'kernel':<28}{'rows/s':>14}{'throughput':>22}"]
    lines += [f"{row['kernel']:<28}{row['rows_per_s']:>14,.0f}{row['throughput']:>22}" for row in rows]
    return "\n".join(lines)
