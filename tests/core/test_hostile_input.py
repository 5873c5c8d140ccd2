"""A table of hostile inputs across the public API: each raises a clear exception."""
import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk

D, M = 8, 16


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((300, D)).astype(np.float32)
    enc = lk.SparseEncoder(n_features=M, k=3, signed=True, seed=0).fit(X, epochs=2, progress=False)
    codes = enc.encode(X)
    labels = rng.integers(0, 2, len(X))
    users = rng.integers(0, 5, len(X))
    pm = lk.PreferenceModel().fit(codes, labels)
    prefs = lk.UserPreferences(population=pm).fit(codes, labels, users)
    index = lk.SparseIndex(codes, approximate=True)
    exact = lk.SparseIndex(codes, approximate=False)
    return dict(X=X, enc=enc, codes=codes, labels=labels, users=users, pm=pm, prefs=prefs, index=index,
                exact=exact)


def nan_matrix():
    x = np.zeros((4, D), np.float32)
    x[2, 3] = np.nan
    return x


def inf_matrix():
    x = np.zeros((4, D), np.float32)
    x[0, 0] = np.inf
    return x


def codes_with(n_features=M, rows=4):
    return lk.SparseCodes.from_scipy(sp.random(rows, n_features, density=0.3, format="csr", random_state=0))


# (name, call, expected exception)
CASES = [
    # --- SparseEncoder construction
    ("k > n_features", lambda f: lk.SparseEncoder(n_features=4, k=5), ValueError),
    ("k = 0", lambda f: lk.SparseEncoder(n_features=4, k=0), ValueError),
    ("negative n_features", lambda f: lk.SparseEncoder(n_features=-4, k=1), ValueError),
    ("unknown kind", lambda f: lk.SparseEncoder(n_features=8, k=2, kind="relu"), ValueError),
    ("huge k", lambda f: lk.SparseEncoder(n_features=8, k=10**12), ValueError),
    ("matryoshka beyond M", lambda f: lk.SparseEncoder(n_features=8, k=2, matryoshka=(4, 16)), ValueError),
    # --- encode / fit inputs
    ("encode NaN", lambda f: f["enc"].encode(nan_matrix()), ValueError),
    ("encode Inf", lambda f: f["enc"].encode(inf_matrix()), ValueError),
    ("encode wrong d", lambda f: f["enc"].encode(np.zeros((3, D + 1), np.float32)), ValueError),
    ("encode 1-D", lambda f: f["enc"].encode(np.zeros(D, np.float32)), ValueError),
    ("encode 3-D", lambda f: f["enc"].encode(np.zeros((2, 2, D), np.float32)), ValueError),
    ("encode 0-D", lambda f: f["enc"].encode(np.float32(1.0)), ValueError),
    ("encode strings", lambda f: f["enc"].encode(np.array([["a"] * D])), TypeError),
    ("encode object", lambda f: f["enc"].encode(np.array([[object()] * D])), TypeError),
    ("encode complex", lambda f: f["enc"].encode(np.zeros((2, D), np.complex64)), TypeError),
    ("encode ragged list", lambda f: f["enc"].encode([[1.0] * D, [1.0]]), (TypeError, ValueError)),
    ("encode k override > M", lambda f: f["enc"].encode(f["X"][:2], k=M + 1), ValueError),
    ("encode threads 0", lambda f: f["enc"].encode(f["X"][:2], threads=0), ValueError),
    ("fit NaN", lambda f: lk.SparseEncoder(n_features=M, k=2).fit(nan_matrix(), progress=False), ValueError),
    ("fit empty", lambda f: lk.SparseEncoder(n_features=M, k=2).fit(np.zeros((0, D)), progress=False), ValueError),
    ("fit X_val wrong d", lambda f: lk.SparseEncoder(n_features=M, k=2).fit(
        f["X"], X_val=np.zeros((5, D + 2)), progress=False), ValueError),
    ("fit epochs 0", lambda f: lk.SparseEncoder(n_features=M, k=2).fit(f["X"], epochs=0, progress=False), ValueError),
    ("fit negative lr", lambda f: lk.SparseEncoder(n_features=M, k=2).fit(f["X"], lr=-1.0, progress=False), ValueError),
    ("encode before fit", lambda f: lk.SparseEncoder(n_features=M, k=2).encode(f["X"]), lk.NotFittedError),
    ("decode wrong features", lambda f: f["enc"].decode(codes_with(n_features=M + 1)), ValueError),
    ("decode a dense array", lambda f: f["enc"].decode(np.zeros((2, M))), TypeError),
    ("from_weights shape mismatch", lambda f: lk.SparseEncoder.from_weights(
        np.zeros((D, M)), np.zeros(M), np.zeros((M, D + 1)), np.zeros(D), k=2), ValueError),
    ("from_weights NaN", lambda f: lk.SparseEncoder.from_weights(
        np.full((D, M), np.nan), np.zeros(M), np.zeros((M, D)), np.zeros(D), k=2), ValueError),
    # --- SparseCodes
    ("codes id beyond dictionary", lambda f: lk.SparseCodes(np.array([0, 1]), np.array([M]), np.array([1.0]), (1, M)),
     ValueError),
    ("codes negative id", lambda f: lk.SparseCodes(np.array([0, 1]), np.array([-3]), np.array([1.0]), (1, M)),
     ValueError),
    ("codes mismatched lengths", lambda f: lk.SparseCodes(np.array([0, 2]), np.array([1, 2]), np.array([1.0]),
                                                          (1, M)), ValueError),
    ("codes from list", lambda f: lk.SparseCodes.from_scipy([[1, 2]]), TypeError),
    ("codes row out of range", lambda f: f["codes"][10**6], IndexError),
    # --- SparseIndex
    ("index from dense", lambda f: lk.SparseIndex(np.zeros((3, M))), TypeError),
    ("search k = 0", lambda f: f["index"].search(f["codes"][:2], k=0), ValueError),
    ("search negative k", lambda f: f["index"].search(f["codes"][:2], k=-1), ValueError),
    ("search wrong features", lambda f: f["index"].search(codes_with(n_features=M + 3), k=2), ValueError),
    ("search dense wrong width", lambda f: f["index"].search(np.zeros((2, M + 1), np.float32), k=2), ValueError),
    ("search dense NaN", lambda f: f["exact"].search(np.full((1, M), np.nan, np.float32), k=2), ValueError),
    ("search 3-D", lambda f: f["index"].search(np.zeros((1, 1, M), np.float32), k=2), ValueError),
    ("search string", lambda f: f["index"].search("query", k=2), TypeError),
    ("top_activations feature out of range", lambda f: f["index"].top_activations(M, n=3), (ValueError, IndexError)),
    ("top_activations negative feature", lambda f: f["index"].top_activations(-1, n=3), (ValueError, IndexError)),
    ("top_activations bad sign", lambda f: f["index"].top_activations(0, n=3, sign=0), ValueError),
    ("search heap_factor <= 0", lambda f: f["index"].search(f["codes"][:2], k=2, heap_factor=0.0), ValueError),
    # --- PreferenceModel
    ("labels not 0/1", lambda f: lk.PreferenceModel().fit(f["codes"], np.full(len(f["codes"]), 2)), ValueError),
    ("labels NaN", lambda f: lk.PreferenceModel().fit(f["codes"], np.full(len(f["codes"]), np.nan)), ValueError),
    ("labels strings", lambda f: lk.PreferenceModel().fit(f["codes"], np.array(["maybe"] * len(f["codes"]))),
     (TypeError, ValueError)),
    ("labels too short", lambda f: lk.PreferenceModel().fit(f["codes"], f["labels"][:-1]), ValueError),
    ("controls NaN", lambda f: lk.PreferenceModel().fit(f["codes"], f["labels"],
                                                        controls=np.full((len(f["codes"]), 1), np.nan)), ValueError),
    ("controls wrong rows", lambda f: lk.PreferenceModel().fit(f["codes"], f["labels"],
                                                               controls=np.zeros((3, 1))), ValueError),
    ("negative l2", lambda f: lk.PreferenceModel(l2=-1.0).fit(f["codes"], f["labels"]), ValueError),
    ("predict wrong features", lambda f: f["pm"].predict_proba(codes_with(n_features=M + 1)), ValueError),
    ("predict before fit", lambda f: lk.PreferenceModel().predict_proba(f["codes"]), lk.NotFittedError),
    ("select n_features 0", lambda f: f["pm"].select(f["codes"], f["labels"], n_features=0), ValueError),
    # --- UserPreferences
    ("user ids wrong length", lambda f: lk.UserPreferences(population=f["pm"]).fit(f["codes"], f["labels"],
                                                                                   f["users"][:5]), ValueError),
    ("unknown user strict", lambda f: f["prefs"].weights(["nobody"], strict=True), KeyError),
    ("negative shrinkage", lambda f: lk.UserPreferences(population=f["pm"], shrinkage=-1.0).fit(
        f["codes"], f["labels"], f["users"]), ValueError),
    ("score wrong features", lambda f: f["prefs"].score([0], codes_with(n_features=M + 2)), ValueError),
    ("update labels not 0/1", lambda f: f["prefs"].update(f["codes"][:2], np.array([0, 5]), [0, 1]), ValueError),
    ("predict_proba before fit", lambda f: lk.UserPreferences(population=f["pm"]).predict_proba(f["codes"], [0]),
     lk.NotFittedError),
    # --- files
    ("encoder load missing file", lambda f: lk.SparseEncoder.load("/nonexistent/enc.safetensors"), FileNotFoundError),
    ("encoder from foreign bytes", lambda f: lk.SparseEncoder.from_bytes(b"PK\x03\x04" + bytes(100)), lk.FormatError),
    ("index from encoder bytes", lambda f: lk.SparseIndex.from_bytes(f["enc"].to_bytes()), lk.FormatError),
    ("prefs from index bytes", lambda f: lk.UserPreferences.from_bytes(f["index"].to_bytes()), lk.FormatError),
    ("encoder from prefs bytes", lambda f: lk.SparseEncoder.from_bytes(f["prefs"].to_bytes()), lk.FormatError),
]


@pytest.mark.parametrize("name, call, error", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_raises_clearly(fitted, name, call, error):
    with pytest.raises(error) as info:
        call(fitted)
    assert str(info.value), f"{name}: the exception carries no message"


def test_table_is_large_enough():
    assert len(CASES) >= 50


def test_non_contiguous_and_float64_inputs_are_accepted(fitted):
    X = fitted["X"]
    interleaved = np.zeros((X.shape[0], 2 * X.shape[1]), np.float64, order="F")
    interleaved[:, ::2] = X
    wide = interleaved[:, ::2]
    assert not wide.flags.c_contiguous and not wide.flags.f_contiguous
    np.testing.assert_array_equal(fitted["enc"].encode(wide).to_dense(), fitted["enc"].encode(X).to_dense())


def test_unicode_user_ids_are_documented_behaviour(fitted):
    """Any hashable id works, including unicode junk; unseen ones fall back to the population."""
    codes, labels = fitted["codes"][:6], fitted["labels"][:6]
    ids = ["👍", "ユーザー", "\x00nul", "👍", "ユーザー", "\x00nul"]
    prefs = lk.UserPreferences(population=fitted["pm"]).fit(codes, labels, ids)
    np.testing.assert_allclose(prefs.weights(["never seen"])[0], fitted["pm"].coef_, rtol=1e-6)
    assert prefs.weights(["👍"]).shape == (1, M)


def test_max_memory_guard_refuses_large_outputs(fitted):
    with lk.max_memory("1K"):
        with pytest.raises(MemoryError, match="scores for"):
            fitted["prefs"].score(list(range(5)), fitted["codes"])
        with pytest.raises(MemoryError, match="weights for"):
            fitted["prefs"].weights(list(range(100)))
        with pytest.raises(MemoryError, match="encoding 300 rows"):
            fitted["enc"].encode(fitted["X"])
        with pytest.raises(MemoryError, match="decoding 300 rows"):
            fitted["enc"].decode(fitted["codes"])
        with pytest.raises(MemoryError, match="search results for 300 queries"):
            fitted["index"].search(fitted["codes"], k=10)
    assert fitted["prefs"].score(list(range(5)), fitted["codes"]).shape == (5, len(fitted["codes"]))
    lk.set_max_memory("2K")
    try:
        with pytest.raises(MemoryError):
            fitted["prefs"].score(list(range(5)), fitted["codes"])
    finally:
        lk.set_max_memory(None)
    with pytest.raises(ValueError):
        lk.set_max_memory("lots")
