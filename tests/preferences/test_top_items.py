"""UserPreferences.top_items: each user's best items selected while a tile of users is scored
(core/tile_scores.h, the users x items matrix never built), against numpy float64, with ties,
awkward sizes, both kernel paths, threads, and through both index kinds."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk


def integer_items(rng, n, m, density=0.3):
    """Integer values: with integer weights every float32 sum is exact, so ties are real ties."""
    dense = np.where(rng.random((n, m)) < density, rng.integers(-2, 3, (n, m)), 0).astype(np.float32)
    return lk.SparseCodes.from_dense(dense), dense


def model_with_integer_population(rng, m, n_users=4, threads=None):
    population = lk.PreferenceModel.from_coefficients(rng.integers(-3, 4, m).astype(np.float64))
    codes = sp.random(n_users * 15, m, density=0.5, format="csr", dtype=np.float32, random_state=rng)
    y = rng.integers(0, 2, n_users * 15)
    return lk.UserPreferences(population=population, threads=threads).fit(codes, y, np.repeat(np.arange(n_users), 15))


def reference_top(weights, dense, k):
    """float64 scores sorted descending, ties by lower item id, padded with -1 / -inf."""
    scores = weights.astype(np.float64) @ dense.astype(np.float64).T
    n = dense.shape[0]
    ids = np.full((weights.shape[0], k), -1, np.int64)
    top = np.full((weights.shape[0], k), -np.inf)
    for u in range(weights.shape[0]):
        order = np.lexsort((np.arange(n), -scores[u]))[:k]
        ids[u, :order.size] = order
        top[u, :order.size] = scores[u, order]
    return ids, top


@pytest.mark.parametrize("m", [1, 7, 33])
@pytest.mark.parametrize("n_items", [0, 1, 50, 700])
@pytest.mark.parametrize("k", [1, 5, 1000])
def test_top_items_equals_numpy_with_ties(rng, kernel_path, m, n_items, k):
    model = model_with_integer_population(rng, m)
    items, dense = integer_items(rng, n_items, m)
    # Unknown users score with the integer population: exact sums, so ids must match exactly,
    # ties included. 40 users: a full tile of 32 and a partial one.
    strangers = [f"new{i}" for i in range(40)]
    for threads in (1, 2):
        model.threads = threads
        ids, scores = model.top_items(strangers, items, k=k)
        want_ids, want_scores = reference_top(model.weights(strangers), dense, k)
        assert ids.shape == (40, k) and ids.dtype == np.int64 and scores.dtype == np.float32
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(scores, want_scores.astype(np.float32))
    # Fitted users have float offsets: the scores agree to float32 rounding.
    ids, scores = model.top_items([0, 1, 2, 3, "new"], items, k=k)
    _, want_scores = reference_top(model.weights([0, 1, 2, 3, "new"]), dense, k)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)


def test_top_items_picks_from_score(rng, simd_switch):
    # The k best of score()'s own numbers, on both kernel paths, for tiles of 8, 16 and 32 users.
    model = model_with_integer_population(rng, 300, n_users=40)
    items = lk.SparseCodes.from_scipy(sp.random(3000, 300, density=0.05, format="csr", dtype=np.float32,
                                                random_state=rng))
    for n_users in (3, 12, 40):
        users = list(range(n_users))
        for enabled in (True, False):
            with simd_switch(enabled):
                full = model.score(users, items)
                ids, scores = model.top_items(users, items, k=20)
            order = np.argsort(-full, axis=1, kind="stable")[:, :20]
            np.testing.assert_array_equal(ids, order)
            np.testing.assert_array_equal(scores, np.take_along_axis(full, order, axis=1))


def test_top_items_through_either_index_kind(rng):
    model = model_with_integer_population(rng, 64, n_users=6)
    items, dense = integer_items(rng, 2000, 64, density=0.1)
    users = [0, 1, 2, 3, 4, 5, "new"]
    want_ids, want_scores = reference_top(model.weights(users), dense, 10)
    for approximate in (False, True):
        index = lk.SparseIndex(items, approximate=approximate)
        ids, scores = model.top_items(users, index, k=10)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)
        assert (ids[-1] == want_ids[-1]).all()  # the stranger's integer scores: exact, ties included
    with pytest.raises(ValueError, match="features"):
        model.top_items([0], integer_items(rng, 5, 63)[0], k=3)
    with pytest.raises(ValueError, match="k"):
        model.top_items([0], items, k=0)
    with pytest.raises(lk.UnknownUserError):
        model.top_items(["new"], items, k=3, strict=True)
