"""Preferences benchmarks (issue 5). Run: python -m pytest benchmarks/test_bench_preferences.py

- score: 10k users x 1k candidate codes (K=32 of M=4096) against scipy.sparse (items @ W^T
  with the users' dense weights handed to scipy precomputed and C-contiguous).
- users.fit: 25 pairs per user (K=32 of M=4096) against a loop of scikit-learn
  LogisticRegression, one fit per user, on the same users (a subset: the loop is slow), plus
  our time for all 10k users.
- predict_proba: 1M (pair, user) rows, rows/s, against a numpy gather + reduceat.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk

M, K = 4096, 32
N_USERS, PAIRS_PER_USER, N_ITEMS = 10_000, 25, 1_000
PEER_FIT_USERS = 1_000


def random_codes(rng, n, m=M, k=K):
    """n rows with k distinct active features: start + odd stride (mod a power of two) never repeats."""
    start = rng.integers(0, m, (n, 1))
    stride = 2 * rng.integers(0, m // 2, (n, 1)) + 1
    idx = np.sort((start + stride * np.arange(k)) % m, axis=1).astype(np.int32)
    vals = rng.normal(size=(n, k)).astype(np.float32)
    return lk.SparseCodes(np.arange(0, n * k + 1, k, dtype=np.int64), idx.ravel(), vals.ravel(), (n, m))


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(0)
    codes = random_codes(rng, N_USERS * PAIRS_PER_USER)
    users = np.repeat(np.arange(N_USERS), PAIRS_PER_USER)
    truth = rng.normal(size=M) * 0.3
    logit = codes.to_scipy() @ truth
    labels = (rng.random(users.size) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    population = lk.PreferenceModel(l2=1.0).fit(codes, labels)
    return codes, labels, users, population


@pytest.fixture(scope="module")
def fitted(pairs):
    codes, labels, users, population = pairs
    return lk.UserPreferences(population=population, shrinkage=1.0).fit(codes, labels, users)


@pytest.mark.benchmark(group="score 10k users x 1k items")
def test_score_likeable(benchmark, fitted):
    items = random_codes(np.random.default_rng(1), N_ITEMS)
    ids = np.arange(N_USERS)
    out = benchmark(fitted.score, ids, items)
    assert out.shape == (N_USERS, N_ITEMS)


@pytest.mark.benchmark(group="score 10k users x 1k items")
def test_score_scipy(benchmark, fitted):
    items = random_codes(np.random.default_rng(1), N_ITEMS)
    weights_t = np.ascontiguousarray(fitted.weights(np.arange(N_USERS)).T)  # M x users, given to the peer
    csr = items.to_scipy()
    benchmark.extra_info["peer"] = "scipy.sparse"
    out = benchmark(lambda: (csr @ weights_t).T)
    np.testing.assert_allclose(out[:50], fitted.score(np.arange(50), items), rtol=1e-4, atol=1e-4)


def _subset(pairs, n_users):
    codes, labels, users, population = pairs
    rows = np.flatnonzero(users < n_users)
    return codes[rows[0]:rows[-1] + 1], labels[rows], users[rows], population


@pytest.mark.benchmark(group=f"users.fit {PEER_FIT_USERS} users x 25 pairs")
def test_users_fit_likeable(benchmark, pairs):
    codes, labels, users, population = _subset(pairs, PEER_FIT_USERS)
    model = lk.UserPreferences(population=population, shrinkage=1.0)
    benchmark.pedantic(model.fit, args=(codes, labels, users), rounds=5, iterations=1)
    assert model.n_users_ == PEER_FIT_USERS and model.n_not_converged_ == 0


@pytest.mark.benchmark(group=f"users.fit {PEER_FIT_USERS} users x 25 pairs")
def test_users_fit_sklearn_loop(benchmark, pairs):
    from sklearn.linear_model import LogisticRegression

    codes, labels, users, _ = _subset(pairs, PEER_FIT_USERS)
    X = codes.to_scipy()
    benchmark.extra_info["peer"] = "sklearn LogisticRegression loop"

    def loop():
        coefs = []
        for u in range(PEER_FIT_USERS):
            rows = slice(u * PAIRS_PER_USER, (u + 1) * PAIRS_PER_USER)
            y = labels[rows]
            if y.min() == y.max():  # sklearn refuses one-class data
                continue
            coefs.append(LogisticRegression(C=1.0, fit_intercept=False).fit(X[rows], y).coef_)
        return coefs

    benchmark.pedantic(loop, rounds=1, iterations=1)


@pytest.mark.benchmark(group="users.fit 10k users x 25 pairs (ours only)")
def test_users_fit_likeable_10k(benchmark, pairs):
    codes, labels, users, population = pairs
    model = lk.UserPreferences(population=population, shrinkage=1.0)
    benchmark.pedantic(model.fit, args=(codes, labels, users), rounds=3, iterations=1)
    benchmark.extra_info["users_per_s"] = round(N_USERS / benchmark.stats.stats.mean)
    assert model.n_users_ == N_USERS


@pytest.fixture(scope="module")
def million_rows(fitted):
    rng = np.random.default_rng(2)
    n = 1_000_000
    return random_codes(rng, n), rng.integers(0, N_USERS, n)


@pytest.mark.benchmark(group="predict_proba 1M (pair, user) rows")
def test_predict_proba_likeable(benchmark, fitted, million_rows):
    codes, ids = million_rows
    p = benchmark.pedantic(fitted.predict_proba, args=(codes, ids), rounds=3, iterations=1)
    benchmark.extra_info["rows_per_s"] = round(codes.shape[0] / benchmark.stats.stats.mean)
    assert p.shape == (codes.shape[0],)


@pytest.mark.benchmark(group="predict_proba 1M (pair, user) rows")
def test_predict_proba_numpy(benchmark, fitted, million_rows):
    codes, ids = million_rows
    weights = fitted.weights(np.arange(N_USERS))  # dense user weights handed to the peer
    benchmark.extra_info["peer"] = "numpy gather + reduceat"

    def numpy_predict():
        row_user = np.repeat(ids, np.diff(codes.indptr))
        contrib = codes.values * weights[row_user, codes.indices]
        logit = np.add.reduceat(contrib, codes.indptr[:-1])
        return 1 / (1 + np.exp(-logit))

    p = benchmark.pedantic(numpy_predict, rounds=1, iterations=1)
    benchmark.extra_info["rows_per_s"] = round(codes.shape[0] / benchmark.stats.stats.mean)
    np.testing.assert_allclose(p[:1000], fitted.predict_proba(codes[:1000], ids[:1000]), atol=1e-4)
