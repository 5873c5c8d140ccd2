"""The SAE-code corpus of the retrieval benchmarks: our own workload.

Clustered 384-d embeddings (a hierarchy of topics and subtopics, unit length), encoded by our
own ``likeable.SparseEncoder`` (ReLU TopK, K = 32 of M = 4096, unsigned), fit on a sample of
the rows. Everything is seeded, so the corpus is the same on every machine; it is cached
outside the repository (``LIKEABLE_BENCH_CACHE``, else the user cache folder) because the fit
takes minutes on a 2-core machine. ``LIKEABLE_BENCH_SAE_ROWS`` sets the row count (default
200,000, the issue's size).

Used by test_bench_sae_index.py (approximate search against Seismic, BMP and kannolo, 1,000 held-out codes as queries)
and test_bench_retrieval.py (1,000 users' dense weights against the items).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import likeable as lk

DIM, M, K = 384, 4096, 32
N_ROWS = int(os.environ.get("LIKEABLE_BENCH_SAE_ROWS", "200000"))
N_QUERIES = 1_000
FIT_ROWS, FIT_EPOCHS = 50_000, 3


def cache_dir() -> Path:
    root = os.environ.get("LIKEABLE_BENCH_CACHE")
    if root is None:
        from platformdirs import user_cache_dir

        root = os.path.join(user_cache_dir("likeable"), "bench")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def clustered_embeddings(n: int, seed: int = 0, n_topics: int = 1000, n_sub: int = 20) -> np.ndarray:
    """Unit rows around a two-level hierarchy of random directions (topic, then subtopic). The
    noise is set so that recall@10 moves over the search sweep as it does on sentence
    embeddings (HH + MiniLM): about 0.6 at query_cut 4 to 0.98 at 24 lists; with less noise
    every setting finds the same near-duplicates (recall 0.998 at 4 lists) and compares nothing."""
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(n_topics, DIM))
    subs = topics[:, None, :] + rng.normal(size=(n_topics, n_sub, DIM))
    which = rng.integers(n_topics * n_sub, size=n)
    x = subs.reshape(-1, DIM)[which] + 0.9 * rng.normal(size=(n, DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def _load_codes(path: Path) -> lk.SparseCodes:
    with np.load(path) as z:
        return lk.SparseCodes(z["indptr"], z["indices"], z["values"], tuple(z["shape"]), validate=False)


def _save_codes(path: Path, codes: lk.SparseCodes) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, indptr=codes.indptr, indices=codes.indices, values=codes.values,
             shape=np.array(codes.shape, np.int64))
    os.replace(tmp, path)


def sae_corpus(n_rows: int = N_ROWS, seed: int = 0) -> tuple[lk.SparseCodes, lk.SparseCodes]:
    """(items, queries): SAE codes of n_rows clustered embeddings and of 1,000 more from the
    same distribution, K = 32 of M = 4096, values >= 0."""
    path = cache_dir() / f"sae_codes_v2_{n_rows}_{M}_{K}_{seed}.npz"
    qpath = cache_dir() / f"sae_queries_v2_{n_rows}_{M}_{K}_{seed}.npz"
    if path.exists() and qpath.exists():
        return _load_codes(path), _load_codes(qpath)
    emb = clustered_embeddings(n_rows + N_QUERIES, seed)
    enc_path = cache_dir() / f"sae_encoder_v2_{M}_{K}_{FIT_ROWS}_{FIT_EPOCHS}_{seed}.lkenc"
    if enc_path.exists():
        encoder = lk.SparseEncoder.load(enc_path)
    else:
        encoder = lk.SparseEncoder(n_features=M, k=K, kind="topk", seed=seed, threads=1)
        encoder.fit(emb[:FIT_ROWS], epochs=FIT_EPOCHS, progress=False, threads=1)
        encoder.save(enc_path)
    codes = encoder.encode(emb[:n_rows])
    queries = encoder.encode(emb[n_rows:])
    _save_codes(path, codes)
    _save_codes(qpath, queries)
    return codes, queries


if __name__ == "__main__":
    import time

    t = time.perf_counter()
    items, queries = sae_corpus()
    cols = np.bincount(items.indices, minlength=M)
    print(f"{items.shape} nnz {items.nnz} ({items.nnz / items.shape[0]:.1f}/row), queries {queries.shape}, "
          f"columns used {np.count_nonzero(cols)}, longest column {cols.max()}, "
          f"{time.perf_counter() - t:.1f} s")
