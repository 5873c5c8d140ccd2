"""Models made from given weights: PreferenceModel.from_coefficients and DriftWeights.decision_function."""
import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk


def _codes(rng, n, m, density=0.3):
    return sp.random(n, m, density=density, format="csr", dtype=np.float32, random_state=rng)


@pytest.mark.parametrize("n, m, n_controls", [(0, 5, 0), (1, 1, 0), (40, 7, 2), (300, 33, 1)])
def test_from_coefficients_predicts_like_numpy(rng, n, m, n_controls):
    coef = rng.standard_normal(m)
    control_coef = rng.standard_normal(n_controls)
    model = lk.PreferenceModel.from_coefficients(coef, control_coef if n_controls else None, intercept=0.3, l2=2.0)
    x = _codes(rng, n, m)
    controls = rng.standard_normal((n, n_controls)).astype(np.float32) if n_controls else None
    logit = x.toarray().astype(np.float64) @ coef + 0.3
    if n_controls:
        logit += controls.astype(np.float64) @ control_coef
    np.testing.assert_allclose(model.decision_function(x, controls), logit, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.predict_proba(x, controls)[:, 1], 1 / (1 + np.exp(-logit)), rtol=1e-5, atol=1e-6)
    assert model.l2 == 2.0 and model.n_features_in_ == m and model.n_controls_ == n_controls


def test_zero_model_is_the_fully_penalised_fit(rng):
    """The per-user-only prior: weights all zero, as fitting with an infinite L1 gives."""
    x = _codes(rng, 200, 12)
    y = (rng.random(200) < 0.5).astype(np.float32)
    users = rng.integers(0, 6, 200)
    fitted = lk.PreferenceModel(l1=1e30).fit(x, y)
    zero = lk.PreferenceModel.from_coefficients(np.zeros(12))
    np.testing.assert_array_equal(fitted.coef_, zero.coef_)
    a = lk.UserPreferences(population=fitted, shrinkage=2.0).fit(x, y, users)
    b = lk.UserPreferences(population=zero, shrinkage=2.0).fit(x, y, users)
    np.testing.assert_array_equal(a.offsets_, b.offsets_)
    np.testing.assert_array_equal(a.predict_proba(x, users), b.predict_proba(x, users))


def test_from_coefficients_rejects_non_finite():
    with pytest.raises(ValueError, match="finite"):
        lk.PreferenceModel.from_coefficients([1.0, np.nan])
    with pytest.raises(ValueError, match="finite"):
        lk.PreferenceModel.from_coefficients([1.0], intercept=np.inf)


@pytest.mark.parametrize("n, m", [(0, 4), (1, 1), (57, 17), (500, 64)])
def test_drift_decision_function_matches_numpy(rng, n, m):
    history = _codes(rng, 300, m)
    y = (rng.random(300) < 0.5).astype(np.float32)
    users = rng.integers(0, 5, 300).astype(str)
    drift = lk.drift_weights(history, y, users)
    x = _codes(rng, n, m)
    asked = rng.choice(np.append(np.unique(users), "stranger"), n)  # unknown users score 0
    row_of = {u: i for i, u in enumerate(drift.user_ids)}
    expected = np.array([x[i].toarray().ravel() @ drift.weights[row_of[u]] if u in row_of else 0.0
                         for i, u in enumerate(asked)], np.float64)
    got = drift.decision_function(x, list(asked))
    assert got.dtype == np.float32 and got.shape == (n,)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
