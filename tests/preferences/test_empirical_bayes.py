"""UserPreferences with a shrinkage per feature or estimated from the data (empirical Bayes), and the
expected information gain of a question, against plain numpy/scipy references."""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, log_expit

import likeable as lk
from likeable import _laplace


def _planted(rng, n=4000, m=10, n_users=20, sd=None, density=0.4):
    """Pairs whose users differ from the population weights by N(0, sd_j²) on each feature j."""
    sd = np.resize([1.0, 0.5, 0, 0, 0, 2.0, 0, 0, 0.3, 0], m) if sd is None else sd
    x = rng.standard_normal((n, m)) * (rng.random((n, m)) < density)
    users = rng.integers(0, n_users, n)
    population = rng.standard_normal(m)
    weights = population + rng.standard_normal((n_users, m)) * np.asarray(sd)
    logit = np.einsum("ij,ij->i", x, weights[users])
    y = (rng.random(n) < expit(logit)).astype(float)
    return x.astype(np.float32), y, users, np.asarray(sd, float)


def _reference_offsets(x, y, users, base, shrinkage):
    """Per user: argmin of Σ logloss(y, base + x·d) + ½ Σ_j s_j d_j² by scipy (s_j = inf: d_j = 0)."""
    x = np.asarray(x, np.float64)
    free = np.isfinite(shrinkage)
    out = np.zeros((users.max() + 1, x.shape[1]))
    for u in np.unique(users):
        rows = users == u
        xu = x[rows][:, free]

        def loss(d):
            eta = base[rows] + xu @ d
            grad = xu.T @ (expit(eta) - y[rows]) + shrinkage[free] * d
            value = -np.sum(y[rows] * log_expit(eta) + (1 - y[rows]) * log_expit(-eta)) + 0.5 * np.sum(shrinkage[free] * d * d)
            return value, grad

        out[u, free] = minimize(loss, np.zeros(free.sum()), jac=True, method="L-BFGS-B",
                                options={"gtol": 1e-10, "ftol": 1e-14, "maxiter": 1000}).x
    return out


def test_shrinkage_per_feature_solves_the_per_feature_prior(rng):
    x, y, users, _ = _planted(rng, n=600, m=6, n_users=5)
    shrinkage = np.array([0.5, 2.0, np.inf, 10.0, 1.0, 0.1])
    population = lk.PreferenceModel(l2=1.0).fit(x, y)
    model = lk.UserPreferences(population=population, shrinkage=shrinkage, tol=1e-10).fit(x, y, users)
    base = x.astype(np.float64) @ population.coef_
    expected = _reference_offsets(x, y, users, base, shrinkage)[list(model.user_ids_)]  # rows: order of appearance
    np.testing.assert_allclose(model.offsets_, expected, atol=2e-4)
    assert (model.offsets_[:, 2] == 0).all()  # inf: the feature has no offset
    np.testing.assert_allclose(model.prior_variance_, np.where(np.isfinite(shrinkage), 1 / shrinkage, 0.0))
    # one value repeated is the scalar shrinkage
    same = lk.UserPreferences(population=population, shrinkage=np.full(6, 2.0)).fit(x, y, users)
    scalar = lk.UserPreferences(population=population, shrinkage=2.0).fit(x, y, users)
    np.testing.assert_array_equal(same.offsets_, scalar.offsets_)


def test_auto_shrinkage_finds_the_features_people_differ_on(rng):
    x, y, users, sd = _planted(rng)
    model = lk.UserPreferences(shrinkage="auto").fit(x, y, users)
    estimated = np.sqrt(model.prior_variance_)
    varying = sd >= 0.5
    np.testing.assert_allclose(estimated[varying], sd[varying], rtol=0.35)
    # ML variances sit on the boundary (0) or a little above it when people do not differ;
    # those left above it are what the permutation test of the protocol is for
    assert (model.prior_variance_[sd == 0] < 0.08).all() and (model.prior_variance_[sd == 0] == 0).sum() >= 2
    assert isinstance(model.shrinkage_, np.ndarray) and model.n_iter_shrinkage_ >= 2


def test_auto_shrinkage_without_personal_differences_keeps_the_population(rng):
    x, y, users, _ = _planted(rng, n=2000, sd=(0,) * 10)
    model = lk.UserPreferences(shrinkage="auto").fit(x, y, users)
    assert model.prior_variance_.max() < 0.05 and (model.prior_variance_ == 0).sum() >= 5
    own = model.predict_proba(x, users)
    population = model.population_.predict_proba(x)[:, 1]
    assert np.abs(own - population).mean() < 0.01 and np.abs(own - population).max() < 0.1


def _laplace_evidence(x, y, users, base, variance):
    """Σ_u log p(y_u | τ²) by the Laplace approximation, from scipy modes and numpy determinants."""
    x = np.asarray(x, np.float64)
    offsets = _reference_offsets(x, y, users, base, np.full(x.shape[1], 1.0 / variance))
    total = 0.0
    for u in np.unique(users):
        rows = users == u
        touched = np.flatnonzero(np.abs(x[rows]).sum(axis=0) > 0)
        xu, d = x[rows][:, touched], offsets[u, touched]
        eta = base[rows] + xu @ d
        p = expit(eta)
        hessian = (xu.T * (p * (1 - p))) @ xu + np.eye(touched.size) / variance
        total += (np.sum(y[rows] * log_expit(eta) + (1 - y[rows]) * log_expit(-eta)) - 0.5 * d @ d / variance
                  - 0.5 * touched.size * np.log(variance) - 0.5 * np.linalg.slogdet(hessian)[1])
    return total


def test_common_prior_variance_is_the_evidence_fixed_point(rng):
    """τ² = Σ_u Σ_{j∈T_u} (d̂_uj² + Σ_u,jj) / Σ_u |T_u| with modes from scipy and posterior
    covariances from numpy (MacKay's evidence update, i.e. EM with Laplace posteriors); and
    close to the maximum of the Laplace-approximate evidence itself."""
    x, y, users, _ = _planted(rng, n=800, m=4, n_users=8, sd=(0.8,) * 4, density=0.5)
    _, first, inverse = np.unique(users, return_index=True, return_inverse=True)
    users = np.argsort(np.argsort(first))[inverse]  # ids in order of appearance = rows of offsets_
    population = lk.PreferenceModel(l2=1.0).fit(x, y)
    base = x.astype(np.float64) @ population.coef_
    codes = sp.csr_matrix(x)

    def solve(precision, shift):
        return lk.UserPreferences(population=population, shrinkage=precision, tol=1e-10).fit(x, y, users).offsets_

    def probabilities(offsets, shift):
        return expit(base + np.einsum("ij,ij->i", x.astype(np.float64), offsets[users]))

    variance, _, _ = _laplace.estimate_prior_variance(solve, probabilities, codes, users, 8, per_feature=False, tol=1e-8)
    assert np.ptp(variance) == 0
    tau2 = variance[0]
    x64 = x.astype(np.float64)
    offsets = _reference_offsets(x, y, users, base, np.full(4, 1 / tau2))
    squares, count = 0.0, 0
    for u in range(8):
        rows = users == u
        touched = np.flatnonzero(np.abs(x64[rows]).sum(axis=0) > 0)
        xu = x64[rows][:, touched]
        p = expit(base[rows] + xu @ offsets[u, touched])
        cov = np.linalg.inv((xu.T * (p * (1 - p))) @ xu + np.eye(touched.size) / tau2)
        squares += np.sum(offsets[u, touched] ** 2) + np.trace(cov)
        count += touched.size
    assert tau2 == pytest.approx(squares / count, rel=1e-3)
    best = minimize_scalar(lambda t: -_laplace_evidence(x, y, users, base, np.exp(t)), bounds=(-5, 3),
                           method="bounded", options={"xatol": 1e-4}).x
    assert tau2 == pytest.approx(np.exp(best), rel=0.25)


def test_information_gain_matches_the_laplace_posterior(rng):
    x, y, users, _ = _planted(rng, n=300, m=5, n_users=4, density=0.5)
    model = lk.UserPreferences(shrinkage=np.array([1.0, 2.0, np.inf, 0.5, 1.0])).fit(x, y, users)
    variance = model.prior_variance_
    candidates = rng.standard_normal((9, 5)).astype(np.float32) * (rng.random((9, 5)) < 0.6)
    who = np.array([0, 1, 2, 3, 0, 1, 7, 7, 2])  # 7: never seen
    gain = model.information_gain(candidates, who)
    history_p = model.predict_proba(x, users).astype(np.float64)
    free = variance > 0
    expected = []
    for row, u in zip(candidates.astype(np.float64), who):
        if u in set(users.tolist()):
            xu = x[users == u][:, free].astype(np.float64)
            w = history_p[users == u] * (1 - history_p[users == u])
            cov = np.linalg.inv((xu.T * w) @ xu + np.diag(1 / variance[free]))
            q = row[free] @ cov @ row[free]
        else:
            q = np.sum(row * row * variance)
        p = float(model.predict_proba(row[None, :].astype(np.float32), [u])[0])
        expected.append(0.5 * np.log1p(p * (1 - p) * q))
    np.testing.assert_allclose(gain, expected, rtol=1e-4, atol=1e-7)
    assert (gain >= 0).all() and gain.shape == (9,)


def test_auto_shrinkage_survives_files_and_updates(rng, tmp_path):
    x, y, users, _ = _planted(rng, n=1500, m=6, n_users=6, sd=(1, 0, 1, 0, 0.5, 0))
    model = lk.UserPreferences(shrinkage="auto").fit(x[:1200], y[:1200], users[:1200])
    model.save(tmp_path / "users.likeable")
    back = lk.UserPreferences.load(tmp_path / "users.likeable")
    np.testing.assert_array_equal(back.shrinkage_, model.shrinkage_)
    np.testing.assert_array_equal(back.predict_proba(x, users), model.predict_proba(x, users))
    np.testing.assert_array_equal(back.information_gain(x[:20], users[:20]), model.information_gain(x[:20], users[:20]))
    model.update(x[1200:], y[1200:], users[1200:])
    back.update(x[1200:], y[1200:], users[1200:])
    np.testing.assert_array_equal(back.offsets_, model.offsets_)
    fixed = lk.UserPreferences(shrinkage=[1.0, 2.0, np.inf, 1.0, 1.0, 1.0]).fit(x, y, users)
    fixed.save(tmp_path / "fixed.likeable")
    np.testing.assert_array_equal(lk.UserPreferences.load(tmp_path / "fixed.likeable").offsets_, fixed.offsets_)


def test_shrinkage_settings_are_checked(rng):
    for bad in ("automatic", [1.0, 0.0], [1.0, np.nan], [], -1.0, 0.0, np.inf):
        with pytest.raises((ValueError, TypeError)):
            lk.UserPreferences(shrinkage=bad)
    x, y, users, _ = _planted(rng, n=50, m=4, n_users=2)
    with pytest.raises(ValueError, match="features"):
        lk.UserPreferences(shrinkage=[1.0, 2.0]).fit(x, y, users)
    fitted = lk.UserPreferences(shrinkage=3.0).fit(x, y, users)
    np.testing.assert_array_equal(fitted.prior_variance_, np.full(4, 1 / 3))
