"""AttributeBank: named ridge probes, batch scoring, and use as a preference feature space."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk

NAMES = ["formality", "humour", "verbosity"]


def test_fit_matches_sklearn_ridge(rng):
    from sklearn.linear_model import Ridge

    X = rng.normal(size=(120, 10)).astype(np.float32)
    truth = rng.normal(size=(3, 10))
    T = X @ truth.T + [0.5, -1.0, 2.0] + 0.1 * rng.normal(size=(120, 3))
    bank = lk.AttributeBank(NAMES, l2=2.0).fit(X, T)
    for a in range(3):
        ref = Ridge(alpha=2.0).fit(X.astype(np.float64), T[:, a])
        np.testing.assert_allclose(bank.directions_[a], ref.coef_, atol=1e-4)
        assert abs(bank.intercepts_[a] - ref.intercept_) < 1e-4
    np.testing.assert_allclose(bank["humour"], bank.directions_[1])
    scores = bank.transform(X)
    np.testing.assert_allclose(scores, X.astype(np.float64) @ bank.directions_.T.astype(np.float64)
                               + bank.intercepts_, rtol=1e-5, atol=1e-5)
    assert np.corrcoef(scores[:, 2], T[:, 2])[0, 1] > 0.99


def test_missing_targets_and_one_row(rng):
    from sklearn.linear_model import Ridge

    X = rng.normal(size=(40, 4))
    T = X @ rng.normal(size=(4, 3))
    T[:10, 0] = np.nan  # attribute 0 labelled on rows 10.. only
    bank = lk.AttributeBank(NAMES).fit(X, T)
    ref = Ridge(alpha=1.0).fit(X[10:], T[10:, 0])
    np.testing.assert_allclose(bank.directions_[0], ref.coef_, atol=1e-4)
    assert bank.transform(X[:1]).shape == (1, 3)
    assert bank.transform(np.zeros((0, 4))).shape == (0, 3)


def test_given_directions_sparse_inputs_and_pair_features(rng):
    D = rng.normal(size=(3, 8)).astype(np.float32)
    bank = lk.AttributeBank(NAMES, D)
    codes = lk.SparseCodes.from_scipy(sp.random(9, 8, density=0.3, format="csr", random_state=1))
    np.testing.assert_allclose(bank.transform(codes), codes.to_dense() @ D.T, atol=1e-5)
    np.testing.assert_allclose(bank.transform(codes.to_scipy()), codes.to_dense() @ D.T, atol=1e-5)
    a, b = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    np.testing.assert_allclose(bank.pair_features(a, b), (a - b) @ D.T, atol=1e-5)
    assert len(bank) == 3 and "formality" in repr(bank)


def test_attribute_space_for_user_preferences(rng):
    # Two users who reward opposite attributes; per-user weights over named attributes recover it.
    d, n = 16, 400
    bank = lk.AttributeBank(NAMES, rng.normal(size=(3, d)))
    ea, eb = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    feats = bank.pair_features(ea, eb)
    users = np.where(np.arange(n) % 2 == 0, "likes-humour", "likes-formality")
    taste = {"likes-humour": np.array([-1.0, 3.0, 0.0]), "likes-formality": np.array([3.0, -1.0, 0.0])}
    logit = np.einsum("ij,ij->i", feats, np.stack([taste[u] for u in users]))
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = lk.UserPreferences(shrinkage=0.5).fit(feats, y, users)
    w = model.weights(["likes-humour", "likes-formality"])
    assert w[0, 1] > w[0, 0] and w[1, 0] > w[1, 1]
    assert np.argmax(w[0]) == NAMES.index("humour") and np.argmax(w[1]) == NAMES.index("formality")


def test_bad_input(rng):
    with pytest.raises(lk.NotFittedError):
        lk.AttributeBank(NAMES).transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="rows"):
        lk.AttributeBank(NAMES, np.zeros((2, 4))).transform(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="unique"):
        lk.AttributeBank(["a", "a"]).fit(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="shape"):
        lk.AttributeBank(NAMES).fit(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="columns"):
        lk.AttributeBank(NAMES, np.zeros((3, 4))).transform(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        lk.AttributeBank(NAMES, np.zeros((3, 4))).transform(np.full((2, 4), np.nan))
    with pytest.raises(KeyError):
        lk.AttributeBank(NAMES, np.zeros((3, 4)))["missing"]
