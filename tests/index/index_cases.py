"""Shared by the index tests: random and clustered codes, the numpy float64 search reference, and
readers of an index file's section table."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

import likeable as lk

DATA = Path(__file__).resolve().parents[1] / "data"
CURRENT_INDEX_VERSION = 6


def random_codes(rng, n_rows, n_features, density=0.1, signed=False, integer=False):
    """Sparse codes; integer-valued ones make float32 sums exact, so ties are real ties."""
    dense = np.zeros((n_rows, n_features), np.float32)
    mask = rng.random((n_rows, n_features)) < density
    if integer:
        vals = rng.integers(1, 4, size=mask.sum()).astype(np.float32)
    else:
        vals = rng.random(mask.sum()).astype(np.float32) + 0.01
    if signed:
        vals *= rng.choice(np.array([-1, 1], np.float32), size=vals.shape)
    dense[mask] = vals
    return lk.SparseCodes.from_dense(dense), dense


def clustered_codes(rng, n_rows, n_features, n_clusters=20, nnz_per_row=12, signed=False):
    """Rows drawn around cluster-specific feature sets (the shape of learned sparse text vectors)."""
    centres = [rng.choice(n_features, size=3 * nnz_per_row, replace=False) for _ in range(n_clusters)]
    rows, cols, vals = [], [], []
    for r in range(n_rows):
        pool = centres[rng.integers(n_clusters)]
        feats = np.unique(np.concatenate([rng.choice(pool, nnz_per_row - 2, replace=False),
                                          rng.integers(0, n_features, 2)]))
        v = rng.exponential(1.0, feats.size).astype(np.float32) + 0.01
        if signed:
            v *= rng.choice(np.array([-1, 1], np.float32), size=v.shape)
        rows.append(np.full(feats.size, r))
        cols.append(feats)
        vals.append(v)
    m = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n_rows, n_features), dtype=np.float32)
    return lk.SparseCodes.from_scipy(m), m.toarray()


def reference_search(dense_rows, queries, k):
    """numpy float64: sort by score descending, ties by lower row id; pad with -1 / -inf."""
    scores = queries.astype(np.float64) @ dense_rows.astype(np.float64).T
    n_q, n = scores.shape
    ids = np.full((n_q, k), -1, np.int64)
    out = np.full((n_q, k), -np.inf, np.float64)
    for i in range(n_q):
        order = np.lexsort((np.arange(n), -scores[i]))[:k]
        ids[i, :order.size] = order
        out[i, :order.size] = scores[i, order]
    return ids, out


def half_precision_atol(dense_rows, queries):
    """Per-query bound on the score error of the approximate mode's forward index: values are
    stored as IEEE half of x / s_r (s_r a power of two, max|x_r| <= s_r < 2 max|x_r|), so each
    stored value is off by at most 2^-12 s_r <= 2^-11 max|x_r|."""
    largest = np.abs(dense_rows).max() if dense_rows.size else 0.0
    return (2.0 ** -11 * largest * np.abs(queries).sum(axis=1) + 1e-5)[:, None]


def section_span(data, name):
    """(byte offset, byte length) of a named section of an index file."""
    n = int.from_bytes(data[20:24], "little")
    for i in range(64, 64 + 64 * n, 64):
        if data[i:i + 32].split(b"\0")[0].decode() == name:
            return int.from_bytes(data[i + 40:i + 48], "little"), int.from_bytes(data[i + 48:i + 56], "little")
    raise KeyError(name)


def section_elem_sizes(data):
    """{section name: element size} from an index file's section table (64-byte entries after
    the 64-byte header: name[32], dtype u32, elem_size u32, ...)."""
    n = int.from_bytes(data[20:24], "little")
    table = data[64:64 + 64 * n]
    return {table[i:i + 32].split(b"\0")[0].decode(): int.from_bytes(table[i + 36:i + 40], "little")
            for i in range(0, len(table), 64)}


def recall_at_k(found, truth):
    hits = [len(set(f[f >= 0]) & set(t[t >= 0])) / max(1, (t >= 0).sum()) for f, t in zip(found, truth)]
    return float(np.mean(hits))


def file_version(data):
    assert data[12:16] == b"SIDX"
    return int.from_bytes(data[16:20], "little")


def edit_section(data: bytes, name: str, dtype, edit) -> bytes:
    """The index file with section ``name`` (viewed as ``dtype``) changed by ``edit(array)`` in
    place and every checksum recomputed: a crafted file that passes verification, for tests
    of the checks on stored values."""
    out = bytearray(data)
    offset, length = section_span(data, name)
    edit(np.frombuffer(out, dtype=dtype, count=length // np.dtype(dtype).itemsize, offset=offset))
    n = int.from_bytes(out[20:24], "little")
    for i in range(64, 64 + 64 * n, 64):
        if out[i:i + 32].split(b"\0")[0].decode() == name:
            out[i + 56:i + 60] = lk._core._crc32c(bytes(out[offset:offset + length])).to_bytes(4, "little")
    out[32:36] = lk._core._crc32c(bytes(out[64:64 + 64 * n])).to_bytes(4, "little")
    out[36:40] = lk._core._crc32c(bytes(out[:36])).to_bytes(4, "little")
    return bytes(out)
