"""Dense user queries (issue 19): each user's k best items, users' weights over every feature
against sparse items, single-threaded unless said, interleaved with the peer in one process.

- M = 4096: 1,000 users x the 200k SAE-code items of sae_corpus.py (K = 32 of M = 4096),
  k = 32. Users are a UserPreferences fit on pairs of those items (population + offsets).
  Contenders: ``top_items`` (the fused tile kernel), scipy brute force (``items @ W.T`` in
  batches of 100 users, then argpartition + sort, BLAS on one thread) and ``score`` for the same
  pairs (the users x items matrix top_items never builds; target: top_items within 1.5x of it).
- M = 32: 1,000 users x 200k dense non-negative items (32 of 32 features), k = 32.
- Threads: top_items with 1 and 2 threads.
- The approximate index given the users' dense weights (routed to every row): time and recall.

Run: ``PYTHONPATH=python python -m pytest benchmarks/test_bench_retrieval.py``; the table of
interleaved comparisons prints at the end (min and median of 5 rounds, load average).
"""
from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import likeable as lk

from conftest import interleaved, report_interleaved
from sae_corpus import sae_corpus

N_USERS, K, PAIRS_PER_USER = 1_000, 32, 25


def fitted_users(items: lk.SparseCodes, seed: int = 0) -> lk.UserPreferences:
    """1,000 users fit on 25 preference pairs each (codes of item a minus item b), labels from a
    planted population taste plus each user's own."""
    rng = np.random.default_rng(seed)
    m = items.shape[1]
    n = N_USERS * PAIRS_PER_USER
    x = items.to_scipy()
    a, b = rng.integers(items.shape[0], size=(2, n))
    pairs = (x[a] - x[b]).tocsr()
    users = np.repeat(np.arange(N_USERS), PAIRS_PER_USER)
    taste = rng.normal(size=m) + 0.5 * rng.normal(size=(N_USERS, m))
    logit = np.asarray(pairs.multiply(taste[users]).sum(axis=1)).ravel()
    labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    population = lk.PreferenceModel(l2=1.0).fit(pairs, labels)
    return lk.UserPreferences(population=population, shrinkage=1.0, threads=1).fit(pairs, labels, users)


def scipy_top_k(items_csr, weights: np.ndarray, k: int = K, batch: int = 100) -> np.ndarray:
    """scipy.sparse brute force: scores of a batch of users (items @ W.T), argpartition, sort."""
    out = np.empty((weights.shape[0], k), np.int64)
    for start in range(0, weights.shape[0], batch):
        scores = np.ascontiguousarray((items_csr @ weights[start:start + batch].T).T)
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out[start:start + batch] = np.take_along_axis(top, order, axis=1)
    return out


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the same item ids (a float32 near-tie may order two items either way)."""
    return float(np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(a, b)]))


@pytest.fixture(scope="module")
def sae_users():
    items, _ = sae_corpus()
    return items, fitted_users(items)


def test_top_items_m4096(sae_users):
    items, model = sae_users
    ids = np.arange(N_USERS)
    weights = model.weights(ids)
    csr = items.to_scipy()
    with threadpool_limits(1):
        want = scipy_top_k(csr, weights)
        got = model.top_items(ids, items, k=K)[0]
        assert agreement(got, want) > 0.999
        times = interleaved({
            "likeable top_items": lambda: model.top_items(ids, items, k=K),
            "scipy items @ W.T + argpartition": lambda: scipy_top_k(csr, weights),
            "likeable score (same pairs)": lambda: model.score(ids, items),
        })
    report_interleaved(f"top_items {N_USERS} users x {items.shape[0]} items, K=32 of M=4096, k={K}, 1 thread",
                       times, "likeable top_items", ["scipy items @ W.T + argpartition", "likeable score (same pairs)"])


def test_top_items_threads(sae_users):
    items, model = sae_users
    ids = np.arange(N_USERS)

    def with_threads(n):
        model.threads = n
        return model.top_items(ids, items, k=K)

    one, two = with_threads(1), with_threads(2)
    np.testing.assert_array_equal(one[0], two[0])
    times = interleaved({"top_items threads=2": lambda: with_threads(2), "top_items threads=1": lambda: with_threads(1)})
    model.threads = 1
    report_interleaved("top_items threads (2-core machine)", times, "top_items threads=2", ["top_items threads=1"])


def test_top_items_m32():
    rng = np.random.default_rng(3)
    n_items, m = 200_000, 32
    dense = rng.gamma(1.0, 1.0, size=(n_items, m)).astype(np.float32)
    items = lk.SparseCodes.from_dense(dense)
    weights = rng.normal(size=(N_USERS, m)).astype(np.float32)
    csr = items.to_scipy()

    def ours():
        # The tile kernel on explicit weights: an exact index's dense queries take the same path.
        return index.search(weights, k=K, threads=1)

    index = lk.SparseIndex(items, approximate=False, threads=1)
    with threadpool_limits(1):
        assert agreement(ours()[0], scipy_top_k(csr, weights)) > 0.999
        times = interleaved({"likeable exact search (dense queries)": ours,
                             "scipy items @ W.T + argpartition": lambda: scipy_top_k(csr, weights)})
    report_interleaved(f"dense queries {N_USERS} x {n_items} items, M=32 (all features), k={K}, 1 thread", times,
                       "likeable exact search (dense queries)", ["scipy items @ W.T + argpartition"])


def test_dense_queries_on_the_approximate_index(sae_users):
    items, model = sae_users
    ids = np.arange(N_USERS)
    weights = model.weights(ids)
    exact = lk.SparseIndex(items, approximate=False, threads=1)
    approx = lk.SparseIndex(items, n_postings=1000, threads=1)  # the SAE benchmark's build
    truth = exact.search(weights, k=K)[0]
    found = approx.search(weights, k=K)[0]
    recall = agreement(found, truth)
    assert recall >= 0.95
    times = interleaved({"approximate index (routed to every row)": lambda: approx.search(weights, k=K),
                         "exact index": lambda: exact.search(weights, k=K)}, rounds=3)
    report_interleaved("users' dense weights through either index kind, 1 thread", times,
                       "approximate index (routed to every row)", ["exact index"],
                       extra=f"recall@{K} {recall:.4f}")
