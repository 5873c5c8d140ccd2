"""PreferenceModel, UserPreferences and drift_weights against float64 numpy / scipy / sklearn references."""
from __future__ import annotations

import ast
import gzip
import json
import pickle
import threading

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize

import likeable as lk
import likeable._pairs
from conftest import shared_path


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def random_pairs(rng, n, m, k):
    """n rows with exactly min(k, m) active features each (random normal values)."""
    k = min(k, m)
    idx = np.argsort(rng.random((n, m)), axis=1)[:, :k] if m else np.zeros((n, 0), int)
    vals = rng.normal(size=(n, k)).astype(np.float32)
    csr = sp.csr_matrix((vals.ravel(), idx.ravel(), np.arange(0, n * k + 1, k)), shape=(n, m))
    return lk.SparseCodes.from_scipy(csr)


def planted(rng, n_users, per_user, m=32, k=8, spread=1.0):
    pop = rng.normal(size=m)
    truth = pop + spread * rng.normal(size=(n_users, m))
    codes = random_pairs(rng, n_users * per_user, m, k)
    users = np.repeat(np.arange(n_users), per_user)
    logit = np.asarray(codes.to_scipy().multiply(truth[users]).sum(1)).ravel()
    labels = (rng.random(users.size) < sigmoid(logit)).astype(np.int64)
    return codes, labels, users, truth


def logistic_reference(X, y, l2, base=None, d0=None):
    """float64 L-BFGS on sum logloss + l2/2 ||w||^2 (no intercept)."""
    X = np.asarray(X, np.float64)
    base = np.zeros(X.shape[0]) if base is None else base

    def f(w):
        e = base + X @ w
        return np.sum(np.logaddexp(0, e) - y * e) + 0.5 * l2 * w @ w, X.T @ (sigmoid(e) - y) + l2 * w

    res = minimize(f, np.zeros(X.shape[1]) if d0 is None else d0, jac=True, method="L-BFGS-B",
                   options=dict(gtol=1e-11, ftol=1e-16, maxiter=20000))
    return res.x


# --- population model -----------------------------------------------------------------------
@pytest.mark.parametrize("n,m,fit_intercept,l2", [(37, 13, False, 1.0), (300, 64, True, 0.5), (2, 5, False, 1.0),
                                                   (50, 50, True, 3.0)])
def test_logistic_matches_sklearn(rng, n, m, fit_intercept, l2):
    from sklearn.linear_model import LogisticRegression

    codes = random_pairs(rng, n, m, 4)
    y = (rng.random(n) < 0.5).astype(int)
    y[0], y[1] = 0, 1  # sklearn needs both classes
    ours = lk.PreferenceModel(l2=l2, fit_intercept=fit_intercept).fit(codes, y)
    ref = LogisticRegression(C=1.0 / l2, fit_intercept=fit_intercept, tol=1e-12, max_iter=100000).fit(
        codes.to_scipy().astype(np.float64), y)
    assert ours.converged_
    np.testing.assert_allclose(ours.coef_, ref.coef_[0], atol=1e-4)
    if fit_intercept:
        assert abs(ours.intercept_ - ref.intercept_[0]) < 1e-4
    np.testing.assert_allclose(ours.predict_proba(codes), ref.predict_proba(codes.to_scipy()), atol=1e-5)


def test_controls_and_l1_satisfy_kkt(rng):
    n, m, l1, l2 = 400, 30, 3.0, 0.5
    codes = random_pairs(rng, n, m, 6)
    controls = rng.normal(size=(n, 2))
    truth = np.zeros(m)
    truth[:5] = 2.0
    logit = codes.to_scipy() @ truth + controls @ [1.5, -1.0] + 0.3
    y = (rng.random(n) < sigmoid(logit)).astype(int)
    pm = lk.PreferenceModel(l1=l1, l2=l2, fit_intercept=True, tol=1e-10).fit(codes, y, controls)
    X = codes.to_scipy().toarray().astype(np.float64)
    eta = X @ pm.coef_ + controls @ pm.control_coef_ + pm.intercept_
    resid = y - sigmoid(eta)
    # unpenalised controls and intercept: zero gradient
    np.testing.assert_allclose(controls.T @ resid, 0, atol=1e-5)
    assert abs(resid.sum()) < 1e-5
    grad = X.T @ resid - l2 * pm.coef_  # must equal l1 * sign(w) on the support, |.| <= l1 off it
    on = pm.coef_ != 0
    assert 0 < on.sum() < m
    np.testing.assert_allclose(grad[on], l1 * np.sign(pm.coef_[on]), atol=1e-4)
    assert np.all(np.abs(grad[~on]) <= l1 + 1e-6)
    np.testing.assert_allclose(pm.predict_proba(codes, controls)[:, 1], sigmoid(eta), atol=1e-5)
    np.testing.assert_allclose(pm.decision_function(codes, controls), eta, atol=1e-5)
    np.testing.assert_array_equal(pm.predict(codes, controls), (eta > 0).astype(int))


def test_feature_effects_match_numpy_reference(rng):
    from sklearn.linear_model import LogisticRegression

    n, m = 800, 12
    codes = random_pairs(rng, n, m, 3)
    controls = rng.normal(size=(n, 2))
    y = (rng.random(n) < sigmoid(codes.to_scipy() @ np.linspace(-2, 2, m) + controls[:, 0])).astype(int)
    fx = lk.PreferenceModel(l2=0.0, fit_intercept=True).feature_effects(codes, y, controls)
    X = codes.to_scipy().toarray()
    for j in (0, 5, m - 1):
        design = np.column_stack([X[:, j], controls])
        ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=100000).fit(design, y)
        theta = np.concatenate([ref.coef_[0], ref.intercept_])
        full = np.column_stack([design, np.ones(n)])
        p = sigmoid(full @ theta)
        cov = np.linalg.inv(full.T @ (full * (p * (1 - p))[:, None]))
        assert abs(fx.coef[j] - theta[0]) < 1e-4
        assert abs(fx.std_error[j] - np.sqrt(cov[0, 0])) < 1e-4
        from scipy.stats import norm
        assert abs(fx.p_value[j] - 2 * norm.sf(abs(theta[0] / np.sqrt(cov[0, 0])))) < 1e-4
    assert fx.p_value[0] < 1e-3 and fx.coef[0] < 0 and fx.coef[-1] > 0
    top = fx.top(3, names=[f"f{i}" for i in range(m)])
    assert len(top) == 3 and top[0][3] <= top[1][3] <= top[2][3]
    np.testing.assert_array_equal(fx.n_active, np.diff(codes.to_scipy().tocsc().indptr))


def test_feature_effects_never_active_feature_is_nan(rng):
    codes = lk.SparseCodes.from_dense(np.array([[1.0, 0], [-1.0, 0], [0.5, 0]]))
    fx = lk.PreferenceModel().feature_effects(codes, [1, 0, 1])
    assert fx.n_active.tolist() == [3, 0] and np.isnan(fx.p_value[1]) and np.isfinite(fx.p_value[0])


def test_select_recovers_planted_support(rng):
    n, m = 600, 40
    codes = random_pairs(rng, n, m, 8)
    truth = np.zeros(m)
    support = rng.choice(m, 5, replace=False)
    truth[support] = rng.choice([-3.0, 3.0], 5)
    controls = rng.normal(size=(n, 1))
    y = (rng.random(n) < sigmoid(codes.to_scipy() @ truth + 2 * controls[:, 0])).astype(int)
    sel = lk.PreferenceModel(l2=0.0).select(codes, y, n_features=5, controls=controls)
    assert sel.features.shape == (5,) and set(sel.features.tolist()) == set(support.tolist())
    assert np.all(np.diff(sel.path_n_active) >= -1) and sel.path_n_active[-1] >= 5


def test_population_bad_input(rng):
    codes = random_pairs(rng, 10, 6, 2)
    pm = lk.PreferenceModel()
    with pytest.raises(ValueError, match="0 or 1"):
        pm.fit(codes, np.full(10, 2))
    with pytest.raises(ValueError, match="length"):
        pm.fit(codes, np.ones(9))
    bad = rng.normal(size=(10, 2))
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pm.fit(codes, np.ones(10), controls=bad)
    with pytest.raises(ValueError, match="rows"):
        pm.fit(codes, np.ones(10), controls=np.ones((9, 1)))
    with pytest.raises(lk.NotFittedError):
        pm.predict_proba(codes)
    with pytest.raises(TypeError):
        pm.fit("codes", np.ones(10))
    with pytest.raises(ValueError, match="l2"):
        lk.PreferenceModel(l2=-1).fit(codes, np.ones(10))
    pm.fit(codes, (np.arange(10) % 2), controls=np.ones((10, 1)))
    with pytest.raises(ValueError, match="controls"):
        pm.predict_proba(codes)
    with pytest.raises(ValueError, match="features"):
        pm.predict_proba(random_pairs(rng, 3, 7, 2), controls=np.ones((3, 1)))
    assert "PreferenceModel(l2=1.0" in repr(pm)


# --- per-user model --------------------------------------------------------------------------
@pytest.mark.parametrize("per_user,k", [(40, 3), (5, 8), (1, 4), (33, 32)])  # primal, dual, one pair, K = M
def test_user_offsets_match_scipy_reference(rng, per_user, k):
    m, n_users, shrinkage = 32, 5, 0.7
    codes = random_pairs(rng, n_users * per_user, m, k)
    users = np.repeat([f"u{i}" for i in range(n_users)], per_user)
    y = rng.integers(0, 2, users.size)
    y[:2] = [0, 1]
    pop = lk.PreferenceModel(l2=1.0).fit(codes, y)
    model = lk.UserPreferences(population=pop, shrinkage=shrinkage, tol=1e-9).fit(codes, y, users)
    X = codes.to_scipy().toarray()
    np.testing.assert_allclose(model.population_.coef_, pop.coef_)
    for i in range(n_users):
        rows = users == f"u{i}"
        ref = logistic_reference(X[rows], y[rows], shrinkage, base=X[rows] @ pop.coef_)
        np.testing.assert_allclose(model.offsets_[i], ref, atol=2e-5)
    assert model.n_not_converged_ == 0
    np.testing.assert_allclose(model.weights([f"u{i}" for i in range(n_users)]),
                               pop.coef_ + model.offsets_, atol=1e-6)


def test_planted_users_recovered_better_than_plain_logistic(rng):
    from sklearn.linear_model import LogisticRegression

    codes, y, users, truth = planted(rng, 40, 200)
    model = lk.UserPreferences(shrinkage=1.0).fit(codes, y, users)
    est = model.weights(np.arange(40))
    ours = np.mean([np.corrcoef(est[u], truth[u])[0, 1] for u in range(40)])
    X = codes.to_scipy()
    plain = np.mean([np.corrcoef(LogisticRegression(fit_intercept=False).fit(X[users == u], y[users == u]).coef_[0],
                                 truth[u])[0, 1] for u in range(40)])
    assert ours >= 0.9 and ours > plain - 0.005, (ours, plain)


def test_heldout_accuracy_rises_with_examples(rng):
    n_users = 30
    test_codes, test_y, test_users, truth = planted(rng, n_users, 100)
    pop_truth = truth.mean(0)
    accs = []
    for per_user in (5, 25, 200):
        codes = random_pairs(rng, n_users * per_user, 32, 8)
        users = np.repeat(np.arange(n_users), per_user)
        logit = np.asarray(codes.to_scipy().multiply(truth[users]).sum(1)).ravel()
        y = (rng.random(users.size) < sigmoid(logit)).astype(int)
        model = lk.UserPreferences(shrinkage=1.0).fit(codes, y, users)
        accs.append(np.mean((model.predict_proba(test_codes, test_users) > 0.5) == test_y))
    assert accs[0] < accs[1] < accs[2], accs
    assert pop_truth.shape == (32,)


def test_update_equals_refit_and_moves_only_those_users(rng):
    codes, y, users, _ = planted(rng, 6, 30)
    first = np.arange(users.size) < 120  # users 0..3
    model = lk.UserPreferences(population=lk.PreferenceModel().fit(codes, y), tol=1e-9)
    model.fit(codes[np.flatnonzero(first)], y[first], users[first])
    before = model.offsets_.copy()
    rest = np.flatnonzero(~first)
    late = rng.random(rest.size) < 0.5
    # new feedback for users 4, 5 (new) and for user 0 (existing)
    extra = random_pairs(rng, 7, 32, 8)
    model.update(extra, np.ones(7, int), [0] * 7)
    model.update(codes[rest[late]], y[rest[late]], users[rest[late]])
    assert model.user_ids_[:4] == (0, 1, 2, 3) and set(model.user_ids_) == set(range(6))
    np.testing.assert_array_equal(model.offsets_[1:4], before[1:4])  # untouched users did not move
    assert not np.allclose(model.offsets_[0], before[0])
    full = lk.UserPreferences(population=model.population_, tol=1e-9)
    all_codes = likeable._pairs.concat_codes(codes[np.flatnonzero(first)], extra)
    all_codes = likeable._pairs.concat_codes(all_codes, codes[rest[late]])
    full.fit(all_codes, np.concatenate([y[first], np.ones(7, int), y[rest[late]]]),
             np.concatenate([users[first], [0] * 7, users[rest[late]]]))
    np.testing.assert_allclose(model.weights(range(6)), full.weights(range(6)), atol=1e-5)


def test_unseen_users_and_strict(rng):
    codes, y, users, _ = planted(rng, 3, 20)
    model = lk.UserPreferences().fit(codes, y, [f"user-{u}" for u in users])
    w = model.weights(["user-1", "nobody"])
    np.testing.assert_allclose(w[1], model.population_.coef_, atol=1e-6)
    with pytest.raises(lk.UnknownUserError, match="nobody"):
        model.weights(["user-1", "nobody"], strict=True)
    with pytest.raises(KeyError):
        model.weights(["nobody"], strict=True)
    with pytest.raises(lk.NotFittedError):
        lk.UserPreferences().weights(["a"])
    with pytest.raises(ValueError, match="length"):
        lk.UserPreferences().fit(codes, y, users[:-1])
    with pytest.raises(ValueError, match="0 or 1"):
        lk.UserPreferences().fit(codes, y * 3, users)
    with pytest.raises(ValueError, match="shrinkage"):
        lk.UserPreferences(shrinkage=0).fit(codes, y, users)
    with pytest.raises(ValueError, match="features"):
        model.score(["user-1"], random_pairs(rng, 4, 31, 2))
    with pytest.raises(TypeError):
        model.weights("user-1")  # a bare string is not a list of ids


@pytest.mark.parametrize("n_users,n_items", [(1, 1), (37, 50), (64, 0), (0, 5), (70, 3)])
def test_score_and_predict_match_numpy(rng, kernel_path, n_users, n_items):
    codes, y, users, _ = planted(rng, 8, 15)
    model = lk.UserPreferences().fit(codes, y, users)
    ids = rng.integers(0, 10, n_users)  # 8 and 9 are unseen: population weights
    items = random_pairs(rng, n_items, 32, 5)
    W = model.weights(ids).astype(np.float64)
    expected = W @ items.to_dense().T.astype(np.float64)
    scores = model.score(ids, items)
    assert scores.shape == (n_users, n_items) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)
    pairs = random_pairs(rng, n_users, 32, 5)
    p = model.predict_proba(pairs, ids)
    ref = sigmoid(np.sum(pairs.to_dense() * W, axis=1))
    np.testing.assert_allclose(p, ref, atol=1e-5)


@pytest.mark.parametrize("m", [13, 1, 1030])  # feature counts off every vector width and block size
def test_score_odd_feature_counts(rng, kernel_path, m):
    codes = random_pairs(rng, 60, m, 3)
    users = np.repeat(np.arange(3), 20)
    y = rng.integers(0, 2, 60)
    model = lk.UserPreferences().fit(codes, y, users)
    items = random_pairs(rng, 9, m, 3)
    ids = [0, 1, 2, 7] * 10
    expected = model.weights(ids).astype(np.float64) @ items.to_dense().T
    np.testing.assert_allclose(model.score(ids, items), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("m", [7, 8, 1030, 2049])  # off and on the 8-wide transpose, one and three blocks
def test_score_simd_and_portable_kernels_agree(rng, simd_switch, m):
    # The AVX2 scoring kernels (transpose and gather-accumulate) and the portable loops sum in the
    # same order; the AVX2 build fuses multiply-adds (FMA), so they agree to float32 rounding.
    codes = random_pairs(rng, 90, m, 4)
    model = lk.UserPreferences().fit(codes, rng.integers(0, 2, 90), np.repeat(np.arange(3), 30))
    items = random_pairs(rng, 2100, m, 6)  # more than one block of 2048 items
    ids = [0, 1, 2, 9] * 9                 # 36 users: a tile of 32 and a partial one
    with simd_switch(True):
        fast = model.score(ids, items)
    with simd_switch(False):
        portable = model.score(ids, items)
    expected = model.weights(ids).astype(np.float64) @ items.to_dense().T
    np.testing.assert_allclose(fast, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(portable, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast, portable, rtol=1e-6, atol=1e-6)


def test_threads_do_not_change_results(rng):
    codes, y, users, _ = planted(rng, 50, 10)
    a = lk.UserPreferences(threads=1).fit(codes, y, users)
    b = lk.UserPreferences(threads=2).fit(codes, y, users)
    np.testing.assert_array_equal(a.offsets_, b.offsets_)
    items = random_pairs(rng, 20, 32, 4)
    np.testing.assert_array_equal(a.score(range(50), items), b.score(range(50), items))


class BruteForceIndex:
    """numpy stand-in for lk.SparseIndex: exact MIPS over dense item rows."""

    def __init__(self, items):
        self.items = items.to_dense()

    def search(self, queries, k=10):
        scores = queries @ self.items.T
        ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return ids, np.take_along_axis(scores, ids, axis=1)


def test_top_items_queries_the_index_with_dense_weights(rng):
    codes, y, users, _ = planted(rng, 5, 30)
    model = lk.UserPreferences().fit(codes, y, users)
    items = random_pairs(rng, 200, 32, 6)
    ids, scores = model.top_items([0, 3, 99], BruteForceIndex(items), k=7)
    full = model.score([0, 3, 99], items)
    assert ids.shape == (3, 7)
    np.testing.assert_allclose(scores, -np.sort(-full, axis=1)[:, :7], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="k"):
        model.top_items([0], BruteForceIndex(items), k=0)


def test_save_load_bytes_pickle(rng, tmp_path):
    codes, y, users, _ = planted(rng, 4, 20)
    ids = [("a", 1, "b", 2)[u] for u in users]  # str and int ids mixed
    controls = rng.normal(size=(users.size, 1))
    model = lk.UserPreferences(shrinkage=2.0).fit(codes, y, ids, controls=controls)
    path = tmp_path / "users.safetensors"
    model.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["users.safetensors"]  # no temporary left behind
    for other in (lk.UserPreferences.load(path), lk.UserPreferences.from_bytes(model.to_bytes()),
                  pickle.loads(pickle.dumps(model))):
        assert other.user_ids_ == ("a", 1, "b", 2) and other.shrinkage == 2.0
        np.testing.assert_array_equal(other.weights(["a", 1, "b", 2, "new"]), model.weights(["a", 1, "b", 2, "new"]))
        np.testing.assert_array_equal(other.predict_proba(codes, ids, controls), model.predict_proba(codes, ids, controls))
        other.update(codes[:3], y[:3], ["b"] * 3, controls=controls[:3])  # still updatable after loading
    assert "n_users=4" in repr(pickle.loads(pickle.dumps(model)))
    assert pickle.loads(pickle.dumps(lk.UserPreferences(shrinkage=3.0))).shrinkage == 3.0
    data = path.read_bytes()
    (tmp_path / "cut").write_bytes(data[: len(data) // 2])
    with pytest.raises(lk.FormatError):
        lk.UserPreferences.load(tmp_path / "cut")
    with pytest.raises(lk.FormatError):
        lk.UserPreferences.from_bytes(b"not a model at all")
    from likeable._io import tensors_to_bytes
    foreign = tensors_to_bytes({"x": np.zeros(3, np.float32)}, {"format": "something-else"})
    with pytest.raises(lk.FormatError, match="not a UserPreferences"):
        lk.UserPreferences.from_bytes(foreign)
    tensors, meta = lk._io.tensors_from_bytes(data)
    meta["user_ids"] = meta["user_ids"][:-1]  # id map no longer matches the offsets
    with pytest.raises(lk.FormatError):
        lk.UserPreferences.from_bytes(tensors_to_bytes(tensors, meta))
    with pytest.raises(TypeError, match="saved"):
        lk.UserPreferences().fit(codes, y, [(u,) for u in users]).to_bytes()


def test_concurrent_readers_see_old_or_new_weights(rng):
    codes, y, users, _ = planted(rng, 20, 20)
    model = lk.UserPreferences().fit(codes, y, users)
    items = random_pairs(rng, 30, 32, 4)
    states = [model.score(range(20), items)]
    seen, errors = [], []
    stop = threading.Event()

    def reader():
        try:
            while not stop.is_set():
                seen.append(model.score(range(20), items))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for step in range(5):
        model.update(random_pairs(rng, 10, 32, 8), np.ones(10, int), [step] * 10)
        states.append(model.score(range(20), items))
    stop.set()
    for t in threads:
        t.join()
    assert not errors and seen
    for s in seen:  # every read equals one whole state, never a mix
        assert any(np.array_equal(s, st) for st in states)


def test_drift_weights_match_numpy(rng):
    deltas = rng.normal(size=(50, 6)).astype(np.float32)
    labels = rng.integers(0, 2, 50)
    users = rng.choice(["x", "y", "z"], 50)
    out = lk.drift_weights(deltas, labels, users)
    for i, u in enumerate(out.user_ids):
        v = ((2 * labels[users == u] - 1)[:, None] * deltas[users == u]).sum(0)
        np.testing.assert_allclose(out.weights[i], v / np.linalg.norm(v), atol=1e-6)
    sparse = lk.drift_weights(lk.SparseCodes.from_dense(deltas), labels, users)
    np.testing.assert_allclose(sparse.weights, out.weights, atol=1e-6)
    zero = lk.drift_weights(np.array([[1.0, 0.0], [1.0, 0.0]]), [1, 0], ["a", "a"])
    np.testing.assert_array_equal(zero.weights, [[0.0, 0.0]])
    with pytest.raises(ValueError):
        lk.drift_weights(deltas, labels[:-1], users)


# --- real data: two users with conflicting goals (../shared; skipped where absent) ----------------
# Responses are embedded with the MiniLM ONNX model through likeable.OnnxEmbedder, cached under the
# pytest cache, so only the first run pays (~30 s for 8,086 responses on 2 idle cores).
def read_two_objectives(path):
    """Small local reader: (responses_a, responses_b, labels, user ids)."""
    a, b, labels, users = [], [], [], []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            responses = row["responses"]
            if isinstance(responses, str):  # stored as a Python list literal
                responses = ast.literal_eval(responses)
            a.append(responses[0])
            b.append(responses[1])
            # label is the index of the preferred response; ours is 1 when the first (A) was chosen
            labels.append(1 - int(row["label"]))
            users.append(row["objective"])
    return a, b, np.asarray(labels), users


@pytest.fixture(scope="module")
def two_objectives(minilm_cache):
    data = shared_path("data", "hh_rlhf_two_objectives_test.jsonl.gz")
    model_dir = shared_path("models", "all-MiniLM-L6-v2")
    a, b, labels, users = read_two_objectives(data)
    # the session's embedding cache, shared with the protocol's two-objective test: one embedding pass
    embedder = lk.OnnxEmbedder(model_dir, cache_dir=minilm_cache)
    emb = embedder.embed(a + b)
    ea, eb = emb[:len(a)], emb[len(a):]
    assert ea.shape == (len(labels), 384)
    return ea, eb, labels, np.asarray(users)


def auc(scores, labels):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(labels, scores)


def test_per_user_auc_beats_population(two_objectives, capsys):
    ea, eb, labels, users = two_objectives
    delta = ea - eb  # dense feature differences used directly as pair features
    rng = np.random.default_rng(0)
    test = rng.random(len(labels)) < 0.3
    # Picked on a small grid (population l2 1..100, shrinkage 0.1..10): the per-user gain is
    # 0.03-0.09 AUC for shrinkage >= 0.3, so the test does not hinge on this exact choice.
    pop = lk.PreferenceModel(l2=10.0, fit_intercept=True)
    model = lk.UserPreferences(population=pop, shrinkage=3.0).fit(delta[~test], labels[~test], users[~test])
    pop_fitted = model.population_
    report = {}
    for user in ("helpful", "harmless"):
        rows = test & (users == user)
        p_user = model.predict_proba(delta[rows], users[rows])
        p_pop = pop_fitted.predict_proba(delta[rows])[:, 1]
        report[user] = (auc(p_pop, labels[rows]), auc(p_user, labels[rows]), int(rows.sum()))
    with capsys.disabled():
        for user, (a_pop, a_user, n) in report.items():
            print(f"\n[two objectives] {user}: population AUC {a_pop:.3f}, per-user AUC {a_user:.3f} (n={n})")
    # Measured: helpful 0.600 -> 0.650, harmless 0.528 -> 0.598 (a plain per-user logistic on the
    # same features reaches 0.66 / 0.61: MiniLM differences carry limited signal here).
    for user, (a_pop, a_user, _) in report.items():
        assert a_user > a_pop + 0.03, (user, a_pop, a_user)
    assert np.mean([r[1] - r[0] for r in report.values()]) >= 0.05, report
