"""SparseIndex against plain numpy float64 references, on fresh random inputs and awkward sizes."""
from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk
from likeable.index import brute_force_search

DATA = Path(__file__).resolve().parents[1] / "data"


# --- helpers -------------------------------------------------------------------------------
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


# --- exact search ----------------------------------------------------------------------------
@pytest.mark.parametrize("n_rows,n_features,k", [(1, 5, 1), (1, 5, 3), (7, 1, 7), (37, 19, 5),
                                                  (130, 67, 130), (257, 33, 300)])
@pytest.mark.parametrize("signed", [False, True])
def test_exact_equals_numpy_with_ties(rng, kernel_path, n_rows, n_features, k, signed):
    codes, dense = random_codes(rng, n_rows, n_features, density=0.3, signed=signed, integer=True)
    _, q_dense = random_codes(rng, 9, n_features, density=0.4, signed=signed, integer=True)
    index = lk.SparseIndex(codes, approximate=False)
    want_ids, want_scores = reference_search(dense, q_dense, k)
    for queries in (lk.SparseCodes.from_dense(q_dense), q_dense):
        ids, scores = index.search(queries, k=k)
        assert ids.dtype == np.int64 and scores.dtype == np.float32 and ids.shape == (9, k)
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(scores, want_scores.astype(np.float32))


@pytest.mark.parametrize("signed", [False, True])
def test_exact_float_data_and_both_kernels(rng, kernel_path, signed):
    # Few query features take the scatter path; a dense weight vector takes the forward pass.
    codes, dense = random_codes(rng, 301, 45, density=0.15, signed=signed)
    index = lk.SparseIndex(codes, approximate=False, threads=2)
    sparse_q = random_codes(rng, 11, 45, density=0.05, signed=signed)[1]
    dense_q = rng.standard_normal((11, 45)).astype(np.float32)
    for q in (sparse_q, dense_q):
        want_ids, want_scores = reference_search(dense, q, 10)
        ids, scores = index.search(q, k=10)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)
        # ids agree wherever the reference's neighbouring scores are not within rounding.
        gaps = np.abs(np.diff(np.sort(q.astype(np.float64) @ dense.T.astype(np.float64), axis=1), axis=1))
        if gaps.min() > 1e-4:
            np.testing.assert_array_equal(ids, want_ids)
        else:
            assert recall_at_k(ids, want_ids) > 0.95


@pytest.mark.parametrize("signed", [False, True])
def test_exact_scatter_path_few_touched_rows(rng, kernel_path, signed):
    # Queries of one or two features touch fewer rows than k: the untouched rows (score 0, lowest
    # ids first) must fill the top k, and beat negative scores; cancelled sums count as 0 too.
    codes, dense = random_codes(rng, 400, 200, density=0.02, signed=signed, integer=True)
    q = np.zeros((6, 200), np.float32)
    q[0, 3] = 2
    q[1, [5, 7]] = [1, -1] if signed else [1, 1]
    q[2, 11] = -3 if signed else 3
    q[4, [0, 199]] = [-1, -2] if signed else [1, 2]
    q[5, 17] = 1
    q[5, 17 + 1] = -1 if signed else 1
    index = lk.SparseIndex(codes, approximate=False)
    for k in (1, 5, 40, 450):
        want_ids, want_scores = reference_search(dense, q, k)
        for _ in range(2):  # twice: the per-thread buffers must be clean after each query
            ids, scores = index.search(lk.SparseCodes.from_dense(q), k=k)
            np.testing.assert_array_equal(ids, want_ids)
            np.testing.assert_array_equal(scores, want_scores.astype(np.float32))


@pytest.mark.parametrize("n_rows", [5, 16, 1037])
@pytest.mark.parametrize("signed", [False, True])
def test_exact_scatter_path_most_rows_touched(rng, kernel_path, n_rows, signed):
    # Queries whose columns hold about as many postings as there are rows take the plain scatter
    # and the full scan in blocks of 16 rows (n_rows below, at and not a multiple of 16), with
    # integer values so that ties and exact zeros are common.
    codes, dense = random_codes(rng, n_rows, 300, density=0.05, signed=signed, integer=True)
    q = np.zeros((8, 300), np.float32)
    for i in range(8):
        q[i, rng.choice(300, size=6 + 4 * i, replace=False)] = rng.integers(1, 4, size=6 + 4 * i) * (
            rng.choice([-1, 1], size=6 + 4 * i) if signed else 1)
    index = lk.SparseIndex(codes, approximate=False)
    for k in (1, 10, n_rows + 3):
        want_ids, want_scores = reference_search(dense, q, k)
        for _ in range(2):  # twice: the score buffer must be clean after each query
            ids, scores = index.search(lk.SparseCodes.from_dense(q), k=k)
            np.testing.assert_array_equal(ids, want_ids)
            np.testing.assert_array_equal(scores, want_scores.astype(np.float32))


def test_brute_force_reference_matches_numpy(rng):
    codes, dense = random_codes(rng, 50, 20, density=0.3, signed=True, integer=True)
    q = random_codes(rng, 4, 20, density=0.5, signed=True, integer=True)[1]
    ids, scores = brute_force_search(codes, q, k=60)
    want_ids, want_scores = reference_search(dense, q, 60)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(scores, want_scores.astype(np.float32))


def test_empty_index_and_empty_queries(rng):
    empty = lk.SparseIndex(lk.SparseCodes.empty(0, 8), approximate=False)
    ids, scores = empty.search(np.ones((3, 8), np.float32), k=4)
    assert (ids == -1).all() and np.isneginf(scores).all()
    ids, scores = lk.SparseIndex(lk.SparseCodes.empty(0, 8)).search(lk.SparseCodes.empty(2, 8), k=2)
    assert ids.shape == (2, 2) and (ids == -1).all()
    codes, _ = random_codes(rng, 20, 8, density=0.5)
    exact = lk.SparseIndex(codes, approximate=False)
    ids, scores = exact.search(np.zeros((2, 8), np.float32), k=3)   # every row scores 0: ids 0, 1, 2
    np.testing.assert_array_equal(ids, [[0, 1, 2]] * 2)
    assert (scores == 0).all()
    ids, _ = exact.search(lk.SparseCodes.empty(0, 8), k=3)
    assert ids.shape == (0, 3)
    approx = lk.SparseIndex(codes, approximate=True)
    ids, scores = approx.search(lk.SparseCodes.empty(2, 8), k=3)   # visits nothing: all padding
    assert (ids == -1).all() and np.isneginf(scores).all()


@pytest.mark.parametrize("approximate", [False, True])
@pytest.mark.parametrize("n_rows", [0, 5])
def test_indexes_without_postings_save_and_load(tmp_path, approximate, n_rows):
    # No rows, or rows that are all zero: every array that holds postings is empty, and an
    # empty posting array must still be written with the type the loader expects.
    index = lk.SparseIndex(lk.SparseCodes.empty(n_rows, 8), approximate=approximate)
    index.save(tmp_path / "empty.sidx")
    loaded = lk.SparseIndex.load(tmp_path / "empty.sidx")
    assert loaded.to_bytes() == index.to_bytes() and loaded.n_rows == n_rows
    ids, scores = loaded.search(np.ones((2, 8), np.float32), k=3)
    assert (ids == index.search(np.ones((2, 8), np.float32), k=3)[0]).all()


# --- approximate search ----------------------------------------------------------------------
@pytest.mark.parametrize("signed", [False, True])
def test_approximate_with_lossless_settings_is_exact(rng, kernel_path, signed):
    # Unpruned lists, full summaries, every query component, heap_factor 1: the summary bounds are
    # valid upper bounds (u8 rounding goes up), so every row that can beat the k-th is scanned.
    codes, dense = clustered_codes(rng, 400, 60, signed=signed)
    q = clustered_codes(rng, 15, 60, signed=signed)[1]
    index = lk.SparseIndex(codes, approximate=True, n_postings=10_000, summary_energy=1.0,
                           block_fraction=0.2)
    assert index.signed == signed
    want_ids, want_scores = reference_search(dense, q, 5)
    ids, scores = index.search(q, k=5)
    positive = (want_scores > 1e-3).all(axis=1)  # rows of score <= 0 may be in no visited block
    assert positive.sum() >= 5
    atol = half_precision_atol(dense, q)[positive]
    assert (np.abs(scores[positive] - want_scores[positive]) <= atol).all()
    # Every true top-5 row is found, up to rows within the stored precision of the 5th score.
    for found, want, sc, tol in zip(ids[positive], want_ids[positive], want_scores[positive], atol[:, 0]):
        close = np.abs(sc - sc[-1]) <= 2 * tol
        assert set(want[~close]) <= set(found)


@pytest.mark.parametrize("kind", ["random", "clustered"])
@pytest.mark.parametrize("signed", [False, True])
def test_approximate_recall(rng, kernel_path, kind, signed):
    if kind == "random":
        codes, dense = random_codes(rng, 2000, 200, density=0.05, signed=signed)
        q = random_codes(rng, 50, 200, density=0.05, signed=signed)[1]
    else:
        codes, dense = clustered_codes(rng, 2000, 200, signed=signed)
        q = clustered_codes(rng, 50, 200, signed=signed)[1]
    want_ids, _ = reference_search(dense, q, 10)
    index = lk.SparseIndex(codes, n_postings=60, block_fraction=0.1, summary_energy=0.5)
    assert index.n_blocks > 0 and index.nbytes > 0
    full = recall_at_k(index.search(q, k=10, heap_factor=0.8)[0], want_ids)
    fast = recall_at_k(index.search(q, k=10, query_cut=3, heap_factor=1.2)[0], want_ids)
    print(f"recall@10 {kind} signed={signed}: generous {full:.3f}, aggressive {fast:.3f}")
    assert full >= 0.85
    assert fast >= 0.2


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("n_features", [120, 70_000])  # u16 ids (AVX2 re-scoring) and u32 ids
def test_approximate_simd_and_portable_kernels_agree(rng, simd_switch, signed, n_features):
    # The AVX2/F16C kernels (chosen at run time) and the portable loops must find the same rows
    # with the same scores: integer values make every sum exact in any order, and row lengths
    # (~1-60) cover the 16-, 8- and 1-wide loop tails.
    density = 0.25 if n_features == 120 else 30 / n_features
    codes = lk.SparseCodes.from_scipy(sp.random(300, n_features, density=density, format="csr", random_state=rng,
                                                data_rvs=lambda n: rng.integers(1, 4, n) * (
                                                    rng.choice([-1, 1], n) if signed else 1)))
    queries = lk.SparseCodes.from_scipy(sp.random(20, n_features, density=density * 0.8, format="csr",
                                                  random_state=rng, data_rvs=lambda n: rng.integers(1, 4, n) * (
                                                      rng.choice([-1, 1], n) if signed else 1)))
    index = lk.SparseIndex(codes, n_postings=40, summary_energy=0.5)
    with simd_switch(True):
        fast = index.search(queries, k=7, query_cut=5)
    with simd_switch(False):
        portable = index.search(queries, k=7, query_cut=5)
    np.testing.assert_array_equal(fast[0], portable[0])
    np.testing.assert_array_equal(fast[1], portable[1])


def test_simd_switch_reaches_the_environment_variable(tmp_path):
    # LIKEABLE_NO_SIMD=1 when the core loads starts the switch off.
    import subprocess
    import sys

    script = "import likeable._core as c; print(c.simd_enabled())"
    env = dict(os.environ, LIKEABLE_NO_SIMD="1",
               PYTHONPATH=os.pathsep.join([str(Path(lk.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=60, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_dense_and_sparse_queries_agree(rng):
    codes, dense = clustered_codes(rng, 500, 80, signed=True)
    q = clustered_codes(rng, 20, 80, signed=True)[1]
    for approximate in (False, True):
        index = lk.SparseIndex(codes, approximate=approximate, n_postings=30)
        a = index.search(q, k=7, query_cut=4)
        b = index.search(lk.SparseCodes.from_dense(q), k=7, query_cut=4)
        c = index.search(sp.csr_matrix(q), k=7, query_cut=4)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[0], c[0])
        np.testing.assert_array_equal(a[1], b[1])
    single = index.search(q[0], k=7, query_cut=4)  # a 1-D dense query is one query
    np.testing.assert_array_equal(single[0], a[0][:1])


def test_dense_user_weights_use_largest_magnitudes(rng):
    codes, dense = clustered_codes(rng, 600, 50, signed=True)
    w = rng.standard_normal((8, 50)).astype(np.float32)
    index = lk.SparseIndex(codes, n_postings=10_000, summary_energy=1.0)
    want_ids, want_scores = reference_search(dense, w, 5)
    ids, scores = index.search(w, k=5)  # every component visited: exact up to rows of score <= 0
    ok = (want_scores > 0).all(axis=1)
    assert ok.sum() >= 4
    assert (np.abs(scores[ok] - want_scores[ok]) <= half_precision_atol(dense, w)[ok]).all()
    # With a cut, the visited lists are those of the largest |w_j|: a query whose weight sits on
    # one strongly negative feature still finds the rows most negative there... scoring highest.
    w1 = np.zeros((1, 50), np.float32)
    w1[0, 7] = -5.0
    w1[0, 8] = 0.01
    ids, scores = index.search(w1, k=3, query_cut=1)
    want_ids, want_scores = reference_search(dense, w1, 3)
    np.testing.assert_array_equal(ids, want_ids)


def test_threads_give_identical_results(rng):
    codes, _ = clustered_codes(rng, 800, 100)
    q = clustered_codes(rng, 40, 100)[1]
    index = lk.SparseIndex(codes, n_postings=50, threads=2)
    one = index.search(q, k=10, query_cut=5, threads=1)
    two = index.search(q, k=10, query_cut=5, threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    # Build is deterministic whatever the thread count.
    again = lk.SparseIndex(codes, n_postings=50, threads=1)
    assert again.to_bytes() == index.to_bytes()
    results = []

    def worker():
        results.append(index.search(q, k=10, query_cut=5, threads=1)[0])

    pool = [threading.Thread(target=worker) for _ in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, one[0])


# --- top activations -------------------------------------------------------------------------
@pytest.mark.parametrize("approximate,n_postings", [(False, 4000), (True, 4000), (True, 5), (True, 1)])
def test_top_activations_equal_sorted_column(rng, approximate, n_postings):
    codes, dense = random_codes(rng, 300, 12, density=0.3, signed=True, integer=True)  # many ties
    index = lk.SparseIndex(codes, approximate=approximate, n_postings=n_postings)
    for feature in range(12):
        col = dense[:, feature]
        for sign in (1, -1):
            for n in (0, 1, 7, 1000):
                rows, values = index.top_activations(feature, n=n, sign=sign)
                keep = np.flatnonzero(col * sign > 0)
                order = keep[np.lexsort((keep, -sign * col[keep]))][:n]
                np.testing.assert_array_equal(rows, order)
                np.testing.assert_array_equal(values, col[order])


@pytest.mark.parametrize("n_features", [40, 70_000])  # u16 and int32 feature ids
def test_approximate_forward_index_rounds_like_numpy_float16(rng, n_features):
    # Values spanning 12 decades inside a row reach half subnormals; top_activations reads the
    # compact forward index, so it must equal numpy's round-to-nearest-even float16 of x / s_r.
    n_rows = 60
    rows = np.repeat(np.arange(n_rows), 8)
    cols = np.concatenate([rng.choice(n_features, 8, replace=False) for _ in range(n_rows)])
    vals = (rng.choice([-1, 1], rows.size) * 10.0 ** rng.uniform(-9, 3, rows.size)).astype(np.float32)
    m = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, n_features), dtype=np.float32)
    index = lk.SparseIndex(lk.SparseCodes.from_scipy(m), n_postings=10_000, summary_energy=1.0)
    dense = m.toarray()
    scale = np.ldexp(np.float32(1), np.frexp(np.abs(dense).max(axis=1))[1]).astype(np.float32)
    stored = (dense / scale[:, None]).astype(np.float16).astype(np.float32) * scale[:, None]
    for feature in np.unique(cols)[:25]:
        for sign in (1, -1):
            got_rows, got_values = index.top_activations(int(feature), n=n_rows, sign=sign)
            np.testing.assert_array_equal(got_values, stored[got_rows, feature])
            # (values under ~2^-25 of their row's largest |x| are stored as 0 and drop out)
            assert set(got_rows) == set(np.flatnonzero(stored[:, feature] * sign > 0))
    # Search scores stay within the stored precision of the float64 reference.
    q = np.zeros((3, n_features), np.float32)
    q[:, cols[:5]] = rng.standard_normal((3, 5))
    ids, scores = index.search(q, k=5)
    exact = q.astype(np.float64) @ dense.T.astype(np.float64)
    got = np.take_along_axis(exact, np.maximum(ids, 0), axis=1)
    valid = ids >= 0
    assert (np.abs(scores - got)[valid] <= np.broadcast_to(half_precision_atol(dense, q), ids.shape)[valid]).all()


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors(rng):
    codes, _ = random_codes(rng, 30, 10, density=0.3)
    index = lk.SparseIndex(codes)
    with pytest.raises(ValueError, match="feature 10 is outside"):
        index.top_activations(10)
    with pytest.raises(ValueError, match="outside"):
        index.top_activations(-1)
    with pytest.raises(ValueError, match="sign"):
        index.top_activations(0, sign=0)
    with pytest.raises(ValueError, match="11 columns, expected 10"):
        index.search(np.ones((2, 11), np.float32))
    with pytest.raises(ValueError, match="features"):
        index.search(lk.SparseCodes.empty(2, 11))
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full((1, 10), np.nan, np.float32))
    with pytest.raises(ValueError, match="k must be"):
        index.search(np.ones((1, 10), np.float32), k=0)
    with pytest.raises(ValueError, match="query_cut"):
        index.search(np.ones((1, 10), np.float32), query_cut=0)
    with pytest.raises(ValueError, match="heap_factor"):
        index.search(np.ones((1, 10), np.float32), heap_factor=float("nan"))
    with pytest.raises(TypeError):
        index.search(np.array([["a"] * 10]))
    bad_ids = lk.SparseCodes(np.array([0, 1], np.int64), np.array([99], np.int32),
                             np.array([1.0], np.float32), (1, 10), validate=False)
    with pytest.raises(ValueError, match="feature id 99"):
        index.search(bad_ids)
    with pytest.raises(ValueError, match="feature id 99"):
        lk.SparseIndex(bad_ids)
    with pytest.raises(ValueError, match="block_fraction"):
        lk.SparseIndex(codes, block_fraction=0)
    with pytest.raises(ValueError, match="summary_energy"):
        lk.SparseIndex(codes, summary_energy=1.5)
    with pytest.raises(ValueError, match="n_postings"):
        lk.SparseIndex(codes, n_postings=0)
    with pytest.raises(TypeError, match="SparseCodes"):
        lk.SparseIndex(np.ones((3, 3)))


# --- files -----------------------------------------------------------------------------------
@pytest.mark.parametrize("approximate", [False, True])
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(rng, tmp_path, approximate, mmap):
    codes, _ = clustered_codes(rng, 300, 40, signed=True)
    q = clustered_codes(rng, 10, 40, signed=True)[1]
    index = lk.SparseIndex(codes, approximate=approximate, n_postings=20)
    path = tmp_path / "index.sidx"
    index.save(path)
    index.save(path)  # overwriting is atomic and leaves no temporary files behind
    assert os.listdir(tmp_path) == ["index.sidx"]
    assert path.stat().st_size == index.nbytes
    loaded = lk.SparseIndex.load(path, mmap=mmap)
    assert repr(loaded) == repr(index)
    for a, b in zip(index.search(q, k=5, query_cut=3), loaded.search(q, k=5, query_cut=3)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(index.top_activations(3, 5)[0], loaded.top_activations(3, 5)[0])
    clone = pickle.loads(pickle.dumps(index))
    np.testing.assert_array_equal(clone.search(q, k=5)[0], index.search(q, k=5)[0])
    assert lk.SparseIndex.from_bytes(index.to_bytes()).to_bytes() == index.to_bytes()


def test_damaged_files_raise_format_error(rng, tmp_path):
    codes, _ = random_codes(rng, 50, 10, density=0.3)
    data = lk.SparseIndex(codes).to_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "header only": data[:64],
        "empty": b"",
        "foreign": b"PK\x03\x04" + bytes(200),
        "padded": data + b"\0" * 64,
    }
    flipped = bytearray(data)
    flipped[-70] ^= 0x40  # a payload byte: caught by the section checksum
    cases["corrupted payload"] = bytes(flipped)
    flipped = bytearray(data)
    flipped[70] ^= 0x01  # the section table
    cases["corrupted table"] = bytes(flipped)
    for name, blob in cases.items():
        path = tmp_path / f"{name}.sidx"
        path.write_bytes(blob)
        with pytest.raises(lk.FormatError):
            lk.SparseIndex.load(path)
        with pytest.raises(lk.FormatError):
            lk.SparseIndex.from_bytes(blob)
    with pytest.raises(FileNotFoundError):
        lk.SparseIndex.load(tmp_path / "missing.sidx")
    with pytest.raises(IsADirectoryError):
        lk.SparseIndex.load(tmp_path)
    assert issubclass(lk.FormatError, ValueError)


def test_checksum_is_standard_crc32c(kernel_path):
    # The check value of CRC-32C (Castagnoli), and lengths around the 8-byte hardware stride, with
    # the SSE4.2 instructions and with the table.
    assert lk._core._crc32c(b"123456789") == 0xE3069283
    assert lk._core._crc32c(b"") == 0
    import zlib  # zlib's CRC-32 uses another polynomial: the two must differ
    assert lk._core._crc32c(b"likeable") != zlib.crc32(b"likeable")
    assert len({lk._core._crc32c(bytes(n)) for n in range(1, 20)}) == 19


def test_version_1_file_still_loads():
    # A tiny index saved by format version 1 (tests/data/make_index_v1.py); never regenerate it.
    index = lk.SparseIndex.load(DATA / "index_v1.sidx")
    expected = np.load(DATA / "index_v1_expected.npz")
    ids, scores = index.search(lk.SparseCodes(expected["q_indptr"], expected["q_indices"],
                                              expected["q_values"], (3, index.n_features)), k=4)
    np.testing.assert_array_equal(ids, expected["ids"])
    np.testing.assert_array_equal(scores, expected["scores"])


@pytest.mark.parametrize("name", ["signed", "unsigned"])
@pytest.mark.parametrize("version", [2, 3])
def test_older_approximate_files_still_load_and_search_identically(tmp_path, version, name):
    # Approximate indexes saved by format versions 2 and 3 (tests/data/make_index_v{2,3}.py, each
    # written before the next version existed; never regenerate them). Version 2: postings were
    # row ids beside a separate compact forward index; version 3: records in row order. Loading
    # converts them bit for bit (they keep their blocks, so they search exactly as when saved)
    # and re-saving writes the current version, which loads as the same index. A fresh build
    # prunes the same postings and stores the same values (its blocks differ since small
    # clusters are dissolved, index round 6).
    expected = np.load(DATA / f"index_v{version}_{name}_expected.npz")
    old = lk.SparseIndex.load(DATA / f"index_v{version}_{name}.sidx")
    queries = lk.SparseCodes(expected["q_indptr"], expected["q_indices"], expected["q_values"],
                             (len(expected["q_indptr"]) - 1, old.n_features))
    rebuilt = lk.SparseIndex(lk.SparseCodes.from_dense(expected["dense"]), n_postings=20, block_fraction=0.3)
    old.save(tmp_path / "resaved.sidx")
    resaved = lk.SparseIndex.load(tmp_path / "resaved.sidx")
    assert file_version(resaved.to_bytes()) == CURRENT_INDEX_VERSION
    assert resaved.to_bytes() == old.to_bytes()
    assert old._core.n_postings_stored == rebuilt._core.n_postings_stored
    for index in (old, resaved):
        ids, scores = index.search(queries, k=5, query_cut=3, heap_factor=0.9)
        np.testing.assert_array_equal(ids, expected["ids"])
        np.testing.assert_array_equal(scores, expected["scores"])
    for feature in range(old.n_features):
        for sign in (1, -1):
            for a, b in zip(old.top_activations(feature, 10, sign=sign), rebuilt.top_activations(feature, 10, sign=sign)):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("section,at,value", [
    ("post_loc", 1, 0x12),   # a posting that no longer points at a record
    ("post_loc", 0, 0x01),   # or names a wrong length
    ("fwd_rows", 0, 0x05),   # a record with another row's id
    ("fwd_rows", 7, 0x80),   # a row scale that is not a positive finite float
    ("fwd_rows", 9, 0xff),   # a feature id past n_features
    ("row_unit", 0, 0x08),   # a row whose record is not where row_unit says
    ("row_unit", 7, 0x40),   # or lies past the end of fwd_rows
])
def test_structurally_damaged_records_are_format_errors(rng, tmp_path, section, at, value):
    # Without checksum verification, the structure checks alone must refuse a file whose
    # postings or records could make search read outside its arrays.
    codes, _ = random_codes(rng, 60, 12, density=0.4, integer=True)
    data = bytearray(lk.SparseIndex(codes, n_postings=8).to_bytes())
    offset, _ = section_span(bytes(data), section)
    data[offset + at] ^= value
    (tmp_path / "bad.sidx").write_bytes(bytes(data))
    with pytest.raises(lk.FormatError, match="record|post_loc|outside"):
        lk.SparseIndex.load(tmp_path / "bad.sidx", verify=False)


CURRENT_INDEX_VERSION = 4


def test_clusters_of_one_or_two_rows_are_dissolved(rng):
    # Seismic's min_cluster_size (2): with block_fraction 0.5 most random centroids attract one
    # or two rows; those clusters are dissolved into the others. Only a list's leftover block
    # (rows meeting no centroid), or a list whose clusters are all that small, may keep one.
    codes, _ = random_codes(rng, 400, 16, density=0.5)
    index = lk.SparseIndex(codes, n_postings=100, block_fraction=0.5)
    lengths = index._core.block_lengths()
    assert lengths.sum() == index._core.n_postings_stored and len(lengths) == index.n_blocks
    assert (lengths <= 2).sum() <= index.n_features
    assert index.n_blocks < 0.5 * index._core.n_postings_stored / 2  # far fewer than 0.5 per posting


def file_version(data):
    assert data[12:16] == b"SIDX"
    return int.from_bytes(data[16:20], "little")


def test_saved_files_are_the_current_version(rng):
    codes, _ = random_codes(rng, 50, 10, density=0.3)
    for approximate in (False, True):
        assert file_version(lk.SparseIndex(codes, approximate=approximate).to_bytes()) == CURRENT_INDEX_VERSION


def test_wide_ids_and_long_rows_use_64_bit_postings(rng):
    # n_features > 65536 stores feature ids as two u16 units per entry, and a row of 2^16+
    # entries needs 17 length bits, which with the record offset no longer fit a u32 posting.
    # The long row's small values fall under the global pruning threshold (a row in 66k
    # posting lists would put its features in 66k block summaries), so it lives in the forward
    # index only and is read back through top_activations' full scan.
    n_features, n_rows = 70_000, 200
    rows = [np.zeros(66_000, np.int64)]
    cols = [rng.choice(n_features, 66_000, replace=False)]
    vals = [np.full(66_000, 0.5, np.float32)]
    for r in range(1, n_rows):
        rows.append(np.full(400, r))
        cols.append(rng.choice(n_features, 400, replace=False))
        vals.append(rng.integers(1, 4, 400).astype(np.float32))
    m = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n_rows, n_features), dtype=np.float32)
    dense = m.toarray()
    index = lk.SparseIndex(lk.SparseCodes.from_scipy(m), n_postings=1)
    assert section_elem_sizes(index.to_bytes())["post_loc"] == 8
    q = np.zeros((4, n_features), np.float32)
    q[:, cols[1][:30]] = rng.integers(1, 3, (4, 30))
    ids, scores = index.search(q, k=5)
    assert (ids >= 1).all()  # the long row is in no posting list
    exact = q.astype(np.float64) @ dense.T.astype(np.float64)
    np.testing.assert_array_equal(scores, np.take_along_axis(exact, ids, axis=1))  # integers: exact
    assert (ids[:, 0] == 1).all()
    only_long = np.setdiff1d(cols[0], np.concatenate(cols[1:]))[:3]
    for feature in only_long:
        got_rows, got_values = index.top_activations(int(feature), n=3)
        np.testing.assert_array_equal(got_rows, [0])
        np.testing.assert_array_equal(got_values, [0.5])
    loaded = lk.SparseIndex.from_bytes(index.to_bytes())
    np.testing.assert_array_equal(loaded.search(q, k=5)[0], ids)
    small = lk.SparseIndex(lk.SparseCodes.from_dense(dense[1:]), n_postings=1)
    assert section_elem_sizes(small.to_bytes())["post_loc"] == 4


def test_repr_and_sizes(rng):
    codes, _ = random_codes(rng, 40, 9, density=0.3)
    index = lk.SparseIndex(codes, approximate=False)
    assert "exact" in repr(index) and "n_rows=40" in repr(index)
    assert index.shape == (40, 9) and len(index) == 40 and index.nnz == codes.nnz


def test_rows_whose_top_components_meet_no_centroid_join_a_real_block():
    # Every row has a large component of its own and two small shared ones. With doc_cut=1 a
    # row probes the centroids with its own component only and meets none; it must then be
    # clustered by all of its components, not dumped in a leftover block with a loose summary.
    n = 40
    dense = np.zeros((n, n + 2), np.float32)
    dense[:, 0], dense[:, 1] = 0.5, 0.3
    dense[np.arange(n), 2 + np.arange(n)] = 1.0
    index = lk.SparseIndex(lk.SparseCodes.from_dense(dense), n_postings=100, block_fraction=0.1, doc_cut=1)
    # Lists 0 and 1 hold every row in ceil(0.1 * 40) = 4 clusters; each other list is one block.
    assert index.n_blocks <= 4 + 4 + n
    queries = lk.SparseCodes.from_dense(dense[:5] + dense[5:10])
    ids, scores = index.search(queries, k=3, query_cut=n + 2, heap_factor=0.5)
    expected = (dense[:5] + dense[5:10]).astype(np.float64) @ dense.T.astype(np.float64)
    np.testing.assert_allclose(scores, np.sort(expected, axis=1)[:, ::-1][:, :3], rtol=1e-3)
