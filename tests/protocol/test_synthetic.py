"""The one synthetic generator: its primitives, and every caller drawing from it."""
import numpy as np
import pytest

import likeable as lk
from likeable.protocol import synthetic as S


@pytest.mark.parametrize("n, n_attr, n_active", [(0, 5, 2), (1, 5, 5), (37, 9, 3), (200, 128, 16)])
def test_attribute_strengths_exact_count(rng, n, n_attr, n_active):
    strengths = S.attribute_strengths(n, n_attr, rng, n_active=n_active, low=0.5, high=2.0)
    assert strengths.shape == (n, n_attr) and strengths.dtype == np.float32
    np.testing.assert_array_equal((strengths > 0).sum(axis=1), np.full(n, n_active))
    nonzero = strengths[strengths > 0]
    assert ((nonzero >= 0.5) & (nonzero < 2.0)).all()


def test_attribute_strengths_density(rng):
    strengths = S.attribute_strengths(20000, 7, rng, density=0.15)
    assert (strengths > 0).mean() == pytest.approx(0.15, abs=0.01)
    assert strengths.max() < 1.5 and strengths[strengths > 0].min() >= 0.5


def test_directions_and_embeddings(rng):
    ortho = S.random_directions(12, 64, rng)
    np.testing.assert_allclose(ortho @ ortho.T, np.eye(12), atol=1e-5)
    free = S.random_directions(100, 8, rng, orthonormal=False)  # more directions than dimensions
    np.testing.assert_allclose(np.linalg.norm(free, axis=1), 1.0, rtol=1e-5)
    strengths = S.attribute_strengths(50, 12, rng)
    exact = S.embed_attributes(strengths, ortho, 0.0, rng)
    np.testing.assert_allclose(exact, strengths.astype(np.float64) @ ortho.astype(np.float64), atol=1e-5)
    noisy = S.embed_attributes(strengths, ortho, 0.1, rng)
    assert noisy.dtype == np.float32 and 0.05 < np.std(noisy - exact) < 0.15


def test_user_tastes(rng):
    mean, weights = S.user_tastes(4000, 3, rng, mean_scale=0.5, spread=2.0)
    assert weights.shape == (4000, 3)
    np.testing.assert_allclose(weights.mean(axis=0), mean, atol=0.15)
    np.testing.assert_allclose(weights.std(axis=0), 2.0, rtol=0.06)


def test_planted_embeddings_are_mixtures_of_the_directions():
    X, directions = S.planted_embeddings(300, 16, 40, 3, 0.0, seed=2)
    assert X.shape == (300, 16) and directions.shape == (40, 16) and X.dtype == np.float32
    # without noise each row lies in the span of exactly 3 planted directions
    coef, *_ = np.linalg.lstsq(directions.T.astype(np.float64), X[0].astype(np.float64), rcond=None)
    assert np.linalg.norm(directions.T @ coef - X[0]) < 1e-4
    again, _ = S.planted_embeddings(300, 16, 40, 3, 0.0, seed=2)
    np.testing.assert_array_equal(again, X)


def test_public_names_are_the_generator():
    """lk.datasets and the simulation expose the same functions, not copies."""
    assert lk.datasets.synthetic is S.synthetic
    assert lk.datasets.synthetic_candidates is S.synthetic_candidates
    assert lk.datasets.SESSION_DIMENSIONS is S.SESSION_DIMENSIONS
    from likeable.protocol import simulate

    assert simulate.simulated_user_weights is S.simulated_user_weights
    weights = S.simulated_user_weights(5, seed=1)
    assert weights.shape == (5, len(S.SESSION_DIMENSIONS))
    np.testing.assert_array_equal(weights, S.simulated_user_weights(5, seed=1))


def test_candidates_follow_the_dataset(rng):
    ds = S.synthetic(200, 3, 9, seed=0)
    attrs, emb = S.synthetic_candidates(ds.truth, 500, rng)
    assert attrs.shape == (500, 9) and emb.shape == (500, 64)
    proj = emb @ ds.truth["directions"].T
    np.testing.assert_allclose(proj, attrs, atol=0.5)
    assert (attrs > 0).mean() == pytest.approx(ds.truth["attribute_density"], abs=0.03)
