"""Dense queries (a user's weights over every feature): both index kinds score every row for
them in batches (cpp/index/all_rows.cpp), so the approximate kind no longer returns low recall
silently, and the exact kind equals numpy float64 with ties."""
from __future__ import annotations

import numpy as np
import pytest

import likeable as lk
from index_cases import clustered_codes, half_precision_atol, random_codes, recall_at_k, reference_search


@pytest.mark.parametrize("n_rows,n_features,k", [(1, 5, 3), (37, 19, 5), (300, 40, 7), (260, 9, 300)])
def test_exact_dense_queries_equal_numpy_with_ties(rng, kernel_path, n_rows, n_features, k):
    codes, dense = random_codes(rng, n_rows, n_features, density=0.3, signed=True, integer=True)
    # Every feature weighted: the queries' columns hold all entries, past the rule (half).
    q = rng.integers(-2, 3, (70, n_features)).astype(np.float32)
    q[q == 0] = 1.0
    index = lk.SparseIndex(codes, approximate=False)
    want_ids, want_scores = reference_search(dense, q, k)
    for queries in (q, lk.SparseCodes.from_dense(q)):  # CSR queries take the same path here
        for threads in (1, 2):
            ids, scores = index.search(queries, k=k, threads=threads)
            np.testing.assert_array_equal(ids, want_ids)
            np.testing.assert_array_equal(scores, want_scores.astype(np.float32))


def sae_like(rng, n_rows, n_features=256, active=16):
    """Unsigned clustered codes with a fixed number of active features (the shape of ReLU TopK
    SAE codes)."""
    codes, dense = clustered_codes(rng, n_rows, n_features, n_clusters=30, nnz_per_row=active)
    return codes, dense


@pytest.mark.parametrize("signed_weights", [True, False])
def test_approximate_index_reaches_recall_on_dense_queries_at_defaults(rng, signed_weights):
    # Before: block bounds (summaries keep 40% of a block's mass) cannot bound a query weighing
    # every feature, and default search returned recall 0.1-0.7 on such queries.
    codes, dense = sae_like(rng, 4000)
    w = rng.standard_normal((50, codes.n_features)).astype(np.float32)
    if not signed_weights:
        w = np.abs(w)
    index = lk.SparseIndex(codes)  # every default
    want_ids, want_scores = reference_search(dense, w, 10)
    ids, scores = index.search(w, k=10)
    assert recall_at_k(ids, want_ids) >= 0.95
    # Scored from the stored half-precision values, so within their rounding of the truth.
    assert (np.abs(scores - want_scores) <= half_precision_atol(dense, w)).all()
    # Mostly dense (a third of the features) counts too; so does a query given a cut.
    w[:, ::3] = 0.0
    want_ids, _ = reference_search(dense, w, 10)
    assert recall_at_k(index.search(w, k=10)[0], want_ids) >= 0.95
    assert recall_at_k(index.search(w, k=10, query_cut=5)[0], want_ids) >= 0.95
    # top_items goes the same way.
    model = lk.UserPreferences(population=lk.PreferenceModel.from_coefficients(w[0].astype(np.float64)))
    model.fit(lk.SparseCodes.from_dense(dense[:20]), np.arange(20) % 2, np.zeros(20, int))
    ids, _ = model.top_items(["stranger"], index, k=10)
    assert recall_at_k(ids, reference_search(dense, w[:1], 10)[0]) >= 0.95


def test_sparse_codes_as_queries_stay_approximate(rng):
    # Codes (a few features) touch a small share of the entries: the approximate path as asked,
    # dense array or CSR alike.
    codes, _ = sae_like(rng, 3000)
    q = sae_like(rng, 30)[1]
    index = lk.SparseIndex(codes, n_postings=40)
    a = index.search(q, k=10, query_cut=3)
    b = index.search(lk.SparseCodes.from_dense(q), k=10, query_cut=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
