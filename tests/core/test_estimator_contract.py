"""One estimator contract: get_params/set_params, fit returns self, and one persistence helper
(save/load/to_bytes/from_bytes/pickle) for every estimator; scikit-learn's own checks and a
Pipeline for SparseEncoder and PreferenceModel."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk


def pairs(rng, n=120, m=12):
    X = sp.random(n, m, density=0.3, format="csr", dtype=np.float32, random_state=rng)
    w = rng.standard_normal(m)
    y = (X @ w + 0.3 * rng.standard_normal(n) > 0).astype(int)
    return lk.SparseCodes.from_scipy(X), y


def fitted(name, rng):
    """(estimator, a function of it that fitted estimators must reproduce after a round trip)."""
    if name == "SparseEncoder":
        X = rng.standard_normal((200, 6)).astype(np.float32)
        enc = lk.SparseEncoder(n_features=16, k=3, seed=1)
        assert enc.fit(X, epochs=2, progress=False) is enc
        return enc, lambda e: e.encode(X).to_dense()
    if name == "PreferenceModel":
        codes, y = pairs(rng)
        pm = lk.PreferenceModel(l2=0.5)
        assert pm.fit(codes, y) is pm
        return pm, lambda m: m.predict_proba(codes)
    if name == "UserPreferences":
        codes, y = pairs(rng)
        users = rng.integers(0, 5, codes.shape[0])
        up = lk.UserPreferences(shrinkage=2.0)
        assert up.fit(codes, y, users) is up
        return up, lambda m: m.predict_proba(codes, users)
    if name == "AttributeBank":
        X = rng.standard_normal((50, 4))
        bank = lk.AttributeBank(["a", "b"], l2=0.1)
        assert bank.fit(X, X[:, :2] @ np.ones((2, 2))) is bank
        return bank, lambda b: b.transform(X)
    codes, _ = pairs(rng)
    index = lk.SparseIndex(codes, approximate=False, threads=1)
    queries = rng.standard_normal((4, codes.shape[1])).astype(np.float32)
    return index, lambda i: i.search(queries, k=3)[1]


NAMES = ["SparseEncoder", "PreferenceModel", "UserPreferences", "AttributeBank", "SparseIndex"]


@pytest.mark.parametrize("name", NAMES)
def test_save_load_bytes_and_pickle_round_trip(rng, tmp_path, name):
    est, reproduce = fitted(name, rng)
    cls = type(est)
    want = reproduce(est)
    path = tmp_path / "model.bin"
    est.save(path)
    for other in (cls.load(path), cls.from_bytes(est.to_bytes()), pickle.loads(pickle.dumps(est))):
        assert type(other) is cls
        np.testing.assert_array_equal(reproduce(other), want)
        if hasattr(est, "get_params"):
            assert other.get_params(deep=False).keys() == est.get_params(deep=False).keys()
    def plain(params):  # nested estimators compare by their own parameters
        return {k: v for k, v in params.items() if not hasattr(v, "get_params")}

    assert plain(pickle.loads(pickle.dumps(est)).get_params()) == plain(est.get_params())
    if hasattr(est, "fit"):  # unfitted estimators pickle their parameters
        fresh = cls(**est.get_params(deep=False))
        assert plain(pickle.loads(pickle.dumps(fresh)).get_params()) == plain(fresh.get_params())


@pytest.mark.parametrize("name", ["SparseEncoder", "PreferenceModel", "UserPreferences", "AttributeBank"])
def test_get_and_set_params(name):
    est = {"SparseEncoder": lambda: lk.SparseEncoder(n_features=8, k=2),
           "PreferenceModel": lambda: lk.PreferenceModel(l2=2.0),
           "UserPreferences": lambda: lk.UserPreferences(lk.PreferenceModel(), shrinkage=3.0),
           "AttributeBank": lambda: lk.AttributeBank(["x", "y"])}[name]()
    params = est.get_params(deep=False)
    assert type(est)(**params).get_params(deep=False) == params  # the constructor stores values as given
    assert est.set_params() is est
    key, good, bad = {"SparseEncoder": ("k", 4, 9), "PreferenceModel": ("l2", 0.5, -1.0),
                      "UserPreferences": ("shrinkage", 1.5, 0.0), "AttributeBank": ("l2", 0.5, -2.0)}[name]
    assert est.set_params(**{key: good}) is est and est.get_params()[key] == good
    before = est.get_params(deep=False)
    with pytest.raises(ValueError):
        est.set_params(**{key: bad})  # refused, and nothing changed
    assert est.get_params(deep=False) == before
    with pytest.raises(ValueError, match="Invalid parameter 'nonsense'"):
        est.set_params(nonsense=1)
    with pytest.raises(ValueError):
        type(est)(**{**params, key: bad})


def test_nested_params_of_user_preferences():
    up = lk.UserPreferences(lk.PreferenceModel(l2=1.0))
    assert up.get_params()["population__l2"] == 1.0
    up.set_params(population__l2=4.0, shrinkage=2.0)
    assert up.population.l2 == 4.0 and up.shrinkage == 2.0
    with pytest.raises(ValueError, match="l2"):
        up.set_params(population__l2=-1.0)
    assert up.population.l2 == 4.0


def test_sparse_index_params_are_the_build_parameters(rng):
    codes, _ = pairs(rng)
    index = lk.SparseIndex(codes, summary_energy=0.7, doc_cut=5)
    params = index.get_params()
    assert params["summary_energy"] == 0.7 and params["doc_cut"] == 5 and params["approximate"] is True
    assert index.set_params(threads=1) is index and index.threads == 1
    with pytest.raises(ValueError, match="build a new SparseIndex"):
        index.set_params(doc_cut=3)
    with pytest.raises(ValueError, match="Invalid parameter"):
        index.set_params(nonsense=3)


def test_python_default_is_the_only_default(rng):
    """The core takes every build parameter as an argument; the Python default is what is built."""
    import inspect

    codes, _ = pairs(rng)
    signature = inspect.signature(lk.SparseIndex)
    built = lk.SparseIndex(codes).get_params()
    for name in ("n_postings", "block_fraction", "summary_energy", "doc_cut", "seed", "approximate"):
        assert built[name] == signature.parameters[name].default, name


# --- scikit-learn -----------------------------------------------------------------------------
sklearn = pytest.importorskip("sklearn")


@pytest.mark.slow
@pytest.mark.parametrize("make", [lambda: lk.SparseEncoder(n_features=16, k=4), lambda: lk.PreferenceModel()],
                         ids=["SparseEncoder", "PreferenceModel"])
def test_scikit_learn_check_estimator(make, monkeypatch):
    from sklearn.utils.estimator_checks import check_estimator

    est = make()
    if isinstance(est, lk.SparseEncoder):  # quiet, short fits: the checks fit dozens of times
        fit = lk.SparseEncoder.fit
        monkeypatch.setattr(lk.SparseEncoder, "fit",
                            lambda self, X, y=None, **kw: fit(self, X, y, **{"progress": False, "epochs": 5, **kw}))
    results = []
    with warnings.catch_warnings():
        # "does not inherit from BaseEstimator" (scikit-learn is not a dependency of likeable), and
        # the warnings check_set_params raises for values set_params refuses.
        warnings.simplefilter("ignore")
        check_estimator(est, expected_failed_checks=est._expected_failed_checks, on_fail=None,
                        callback=lambda **r: results.append(r))
    failed = [(r["check_name"], repr(r["exception"])) for r in results if r["status"] == "failed"]
    assert not failed, failed
    xfailed = {r["check_name"] for r in results if r["status"] == "xfail"}
    assert xfailed <= set(est._expected_failed_checks)
    assert sum(r["status"] == "passed" for r in results) >= 40


def test_sparse_encoder_in_a_pipeline(rng):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    X = rng.standard_normal((300, 8)).astype(np.float32)
    y = (X[:, 0] + 0.1 * rng.standard_normal(300) > 0).astype(int)
    pipe = Pipeline([("sae", lk.SparseEncoder(n_features=32, k=4, seed=0)), ("lr", LogisticRegression())])
    pipe.set_params(sae__k=6)
    pipe.fit(X, y, sae__epochs=3, sae__progress=False)
    assert pipe.named_steps["sae"].k == 6
    assert pipe.score(X, y) > 0.7
    codes = pipe.named_steps["sae"].transform(X)
    assert sp.issparse(codes) and codes.format == "csr" and codes.dtype == np.float32
    np.testing.assert_array_equal(codes.toarray(), pipe.named_steps["sae"].encode(X).to_dense())
    fresh = lk.SparseEncoder(n_features=32, k=4, seed=0)
    np.testing.assert_array_equal(fresh.fit_transform(X, epochs=2, progress=False).toarray(),
                                  fresh.transform(X).toarray())


def test_preference_model_is_a_binary_classifier(rng):
    codes, y = pairs(rng)
    pm = lk.PreferenceModel().fit(codes, y)
    np.testing.assert_array_equal(pm.classes_, [0, 1])
    proba = pm.predict_proba(codes)
    assert proba.shape == (codes.shape[0], 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    logits = pm.decision_function(codes)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-logits.astype(np.float64))), atol=1e-6)
    np.testing.assert_array_equal(pm.predict(codes), (logits > 0).astype(int))
    assert pm.score(codes, y) == np.mean(pm.predict(codes) == y)
    # the same rows as SparseCodes, scipy.sparse or dense give the same model
    for X in (codes.to_scipy(), codes.to_dense()):
        np.testing.assert_allclose(lk.PreferenceModel().fit(X, y).coef_, pm.coef_, rtol=1e-6, atol=1e-9)
    # any two labels: sorted, the second is "first response preferred"
    words = np.where(y == 1, "win", "lose")
    named = lk.PreferenceModel().fit(codes, words)
    assert list(named.classes_) == ["lose", "win"]
    np.testing.assert_array_equal(named.predict(codes), np.where(pm.predict(codes) == 1, "win", "lose"))
    ones = lk.PreferenceModel().fit(codes, np.ones(codes.shape[0]))  # one-sided 0/1 data keeps both classes
    np.testing.assert_array_equal(ones.classes_, [0, 1])
    with pytest.raises(ValueError, match="Only binary"):
        lk.PreferenceModel().fit(codes, np.arange(codes.shape[0]) % 3)
    with pytest.raises(ValueError, match="is expecting 12 features"):
        pm.predict(codes.to_dense()[:, :5])


def test_preference_model_file_is_checked(rng, tmp_path):
    codes, y = pairs(rng)
    pm = lk.PreferenceModel(l2=0.3, fit_intercept=True).fit(codes, np.where(y == 1, "yes", "no"))
    loaded = lk.PreferenceModel.from_bytes(pm.to_bytes())
    assert loaded.get_params() == pm.get_params() and list(loaded.classes_) == ["no", "yes"]
    assert (loaded.intercept_, loaded.n_iter_, loaded.converged_) == (pm.intercept_, pm.n_iter_, pm.converged_)
    with pytest.raises(lk.NotFittedError):
        lk.PreferenceModel().to_bytes()
    with pytest.raises(lk.FormatError, match="not a PreferenceModel"):
        lk.PreferenceModel.from_bytes(lk.AttributeBank(["x"], np.ones((1, 3))).to_bytes())


def test_preference_model_keeps_its_old_keyword_names(rng):
    """Public names are a contract: fit(pair_codes=, labels=) still works, with a DeprecationWarning."""
    codes, y = pairs(rng)
    new = lk.PreferenceModel().fit(X=codes, y=y)
    with pytest.warns(DeprecationWarning, match=r"fit\(pair_codes=..., labels=...\) is now fit\(X=..., y=...\)"):
        old = lk.PreferenceModel().fit(pair_codes=codes, labels=y)
    np.testing.assert_array_equal(old.coef_, new.coef_)
    with pytest.warns(DeprecationWarning):
        np.testing.assert_array_equal(old.predict_proba(pair_codes=codes), new.predict_proba(codes))
    with pytest.raises(TypeError, match="both 'pair_codes' and its new name 'X'"):
        lk.PreferenceModel().fit(X=codes, pair_codes=codes, y=y)
