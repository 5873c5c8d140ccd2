"""SparseIndex against plain numpy float64 references, on fresh random inputs and awkward sizes."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk
from index_cases import clustered_codes, half_precision_atol, random_codes, recall_at_k, reference_search
from likeable.index import brute_force_search

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


@pytest.mark.parametrize("signed", [False, True])
def test_lists_of_more_than_256_blocks_search_exactly_under_lossless_settings(rng, kernel_path, signed):
    # Summaries by feature name a block by a u8 within its 256-block chunk: a list longer than
    # that (feature 0 is in every row here) spreads each feature's entries over two chunks, and
    # bounds must still be summed into the right blocks (format 6 groups them per list).
    from index_cases import section_span

    n_rows, n_features = 2800, 150
    dense = np.zeros((n_rows, n_features), np.float32)
    dense[:, 0] = rng.uniform(0.1, 1, n_rows)
    for r in range(n_rows):
        dense[r, rng.choice(np.arange(1, n_features), 6, replace=False)] = rng.uniform(-1 if signed else 0, 1, 6)
    q = np.where(rng.random((12, n_features)) < 0.1, rng.uniform(-1 if signed else 0, 1, (12, n_features)), 0)
    q[:, 0] = rng.uniform(2, 3, 12)  # the largest weight: query_cut=1 visits only feature 0's list
    index = lk.SparseIndex(lk.SparseCodes.from_dense(dense), n_postings=n_rows, block_fraction=0.3,
                           summary_energy=1.0)
    data = index.to_bytes()
    section_span(data, "sum_list_entry_ptr")  # summaries by feature
    offset, length = section_span(data, "list_block_ptr")
    assert np.diff(np.frombuffer(data[offset:offset + length], np.int64))[0] > 256
    want_ids, want_scores = reference_search(dense, q.astype(np.float32), 5)
    # Every row is in that list, unpruned, and full summaries bound every block from above: so
    # visiting it alone finds the exact top 5, but only if each block gets its own bound.
    ids, scores = index.search(lk.SparseCodes.from_dense(q.astype(np.float32)), k=5, query_cut=1)
    atol = half_precision_atol(dense, q.astype(np.float32))
    assert (np.abs(scores - want_scores) <= atol).all()
    for found, want, sc, tol in zip(ids, want_ids, want_scores, atol[:, 0]):
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


def test_huge_page_advice_changes_no_answer(tmp_path):
    # Index arrays of 4 MiB or more live in their own huge-page mappings; LIKEABLE_HUGE_PAGES=0
    # (read when the first one is made) keeps the mappings but drops the advice. Built, saved
    # and loaded (the file read into such a mapping), both answer identically.
    import subprocess
    import sys

    script = f"""
import numpy as np, scipy.sparse as sp, likeable as lk
rng = np.random.default_rng(7)
codes = lk.SparseCodes.from_scipy(sp.random(25_000, 512, density=48 / 512, format="csr", random_state=rng))
queries = lk.SparseCodes.from_scipy(sp.random(50, 512, density=0.06, format="csr", random_state=rng))
index = lk.SparseIndex(codes, n_postings=3000)
path = r"{tmp_path}" + "/index" + ("_off" if __import__("os").environ.get("LIKEABLE_HUGE_PAGES") == "0" else "_on")
index.save(path + ".sidx")
loaded = lk.SparseIndex.load(path + ".sidx")
built, read = index.search(queries, k=10, query_cut=8), loaded.search(queries, k=10, query_cut=8)
np.savez(path + ".npz", ids=built[0], scores=built[1], ids_read=read[0], scores_read=read[1])
assert loaded.to_bytes() == index.to_bytes()
exact = lk.SparseIndex(codes, approximate=False)  # its 4.8 MB value arrays are mapped too
want = lk.index.brute_force_search(codes, queries, k=10)
got = exact.search(queries, k=10)
assert (got[0] == want[0]).all() and np.allclose(got[1], want[1], rtol=1e-5, atol=1e-6)
"""
    base = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(lk.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    base.pop("LIKEABLE_HUGE_PAGES", None)
    for value in (None, "0"):
        env = dict(base) if value is None else dict(base, LIKEABLE_HUGE_PAGES=value)
        subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
    on, off = np.load(tmp_path / "index_on.npz"), np.load(tmp_path / "index_off.npz")
    assert on["ids"].shape == (50, 10) and (on["ids"] >= 0).all()
    for key in ("ids", "scores", "ids_read", "scores_read"):
        np.testing.assert_array_equal(on[key], off[key])
    np.testing.assert_array_equal(on["ids"], on["ids_read"])
    assert (tmp_path / "index_on.sidx").stat().st_size > 4 << 20  # large enough for the mappings


def test_dense_and_sparse_queries_agree(rng):
    # Sparse codes as queries (their columns hold ~3% of the entries, under the rule that sends
    # dense arrays to every row: test_dense_queries_route_to_every_row).
    codes, dense = clustered_codes(rng, 500, 400, signed=True)
    q = clustered_codes(rng, 20, 400, signed=True)[1]
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


def test_repr_and_sizes(rng):
    codes, _ = random_codes(rng, 40, 9, density=0.3)
    index = lk.SparseIndex(codes, approximate=False)
    assert "exact" in repr(index) and "n_rows=40" in repr(index)
    assert index.shape == (40, 9) and len(index) == 40 and index.nnz == codes.nnz


def test_forward_rows_for_the_gpu_copy_the_exact_index(rng):
    # The GPU's exact search reads the exact index's float32 rows (summed, sorted by feature);
    # an approximate index holds them compact and has none to give.
    codes, dense = random_codes(rng, 50, 13, density=0.3, signed=True)
    rows = lk.SparseIndex(codes, approximate=False)._core.forward_csr()
    assert rows.shape == (50, 13)
    got = lk.SparseCodes(rows.indptr, rows.indices, rows.values, rows.shape)
    np.testing.assert_array_equal(got.to_dense(), dense)
    assert rows.indices.dtype == np.int32 and rows.values.dtype == np.float32
    assert lk.SparseIndex(codes, approximate=True)._core.forward_csr() is None


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
