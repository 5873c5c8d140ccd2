"""Codes reach the core only as a checked snapshot the caller cannot change (issue 15, item 1).

Before: SparseCodes kept the caller's arrays and checked them once, at construction; most
bindings skipped the check. Changing the arrays afterwards, ``validate=False``, unpickling, or
another thread writing them during a call sent out-of-range ids into the core: 8 of 11 entry
points segfaulted and ``score`` wrote out of bounds. Whatever can crash runs in a child process
(the ``isolated`` fixture), so a crash fails the test instead of ending the run.
"""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import likeable as lk
from likeable import _core

# Builds the objects every entry point needs; `bad` is set by each script.
SETUP = """
import numpy as np, scipy.sparse as sp, likeable as lk
from likeable.index import brute_force_search
rng = np.random.default_rng(0)
n, M = 120, 16
codes = lk.SparseCodes.from_scipy(sp.random(n, M, density=0.3, format="csr", random_state=0, dtype=np.float32))
labels = rng.integers(0, 2, n); users = rng.integers(0, 5, n)
X = rng.standard_normal((n, 6)).astype(np.float32)
enc = lk.SparseEncoder(n_features=M, k=3, seed=0).fit(X, epochs=1, progress=False)
pm = lk.PreferenceModel().fit(codes, labels)
up = lk.UserPreferences(population=pm).fit(codes, labels, users)
exact, approx = lk.SparseIndex(codes, approximate=False), lk.SparseIndex(codes)
drift = lk.drift_weights(codes, labels, users)
bank = lk.AttributeBank(["a", "b"]).fit(rng.standard_normal((40, M)), rng.standard_normal((40, 2)))
def entry_points(bad):
    m = len(bad)
    return {
        "SparseEncoder.decode": lambda: enc.decode(bad),
        "SparseIndex(approximate)": lambda: lk.SparseIndex(bad),
        "SparseIndex(exact)": lambda: lk.SparseIndex(bad, approximate=False),
        "SparseIndex.search exact": lambda: exact.search(bad, k=3),
        "SparseIndex.search approximate": lambda: approx.search(bad, k=3),
        "brute_force_search codes": lambda: brute_force_search(bad, codes[:3], k=3),
        "brute_force_search queries": lambda: brute_force_search(codes, bad, k=3),
        "PreferenceModel.fit": lambda: lk.PreferenceModel().fit(bad, labels[:m]),
        "PreferenceModel.predict_proba": lambda: pm.predict_proba(bad),
        "PreferenceModel.decision_function": lambda: pm.decision_function(bad),
        "PreferenceModel.predict": lambda: pm.predict(bad),
        "PreferenceModel.score": lambda: pm.score(bad, labels[:m]),
        "PreferenceModel.feature_effects": lambda: pm.feature_effects(bad, labels[:m]),
        "PreferenceModel.select": lambda: pm.select(bad, labels[:m], n_features=2),
        "UserPreferences.fit": lambda: lk.UserPreferences(population=pm).fit(bad, labels[:m], users[:m]),
        "UserPreferences.update": lambda: up.update(bad, labels[:m], users[:m]),
        "UserPreferences.predict_proba": lambda: up.predict_proba(bad, users[:m]),
        "UserPreferences.decision_function": lambda: up.decision_function(bad, users[:m]),
        "UserPreferences.score": lambda: up.score([0, 1], bad),
        "UserPreferences.information_gain": lambda: up.information_gain(bad, users[:m]),
        "DriftWeights.decision_function": lambda: drift.decision_function(bad, users[:m]),
        "drift_weights": lambda: lk.drift_weights(bad, labels[:m], users[:m]),
        "AttributeBank.transform": lambda: bank.transform(bad),
        "SparseCodes.to_dense": lambda: bad.to_dense(),
        "SparseCodes.to_scipy": lambda: bad.to_scipy() @ np.ones(M),
        "SparseCodes[rows]": lambda: bad[[0, 1]].to_dense(),
    }
def report(bad):
    for name, call in entry_points(bad).items():
        try:
            call()
            print("RETURNED", name)
        except ValueError as exc:
            print("REFUSED", name, "|", str(exc)[:60])
    print("SURVIVED")
"""


def _refused_by_all(output: str) -> None:
    lines = [line for line in output.splitlines() if line.startswith(("RETURNED", "REFUSED"))]
    assert len(lines) == 26, output
    returned = [line for line in lines if line.startswith("RETURNED")]
    assert not returned, "\n".join(returned)


def test_validate_false_codes_changed_in_place_are_refused_everywhere(isolated):
    output = isolated.survives(SETUP + """
ip, ix, v = codes.indptr.copy(), codes.indices.copy(), codes.values.copy()
bad = lk.SparseCodes(ip, ix, v, codes.shape, validate=False)
ix[:] = 10**8  # the caller's arrays, changed after construction
report(bad)
""")
    _refused_by_all(output)


def test_replaced_arrays_and_shape_are_refused_everywhere(isolated):
    output = isolated.survives(SETUP + """
bad = lk.SparseCodes(codes.indptr, codes.indices, codes.values, codes.shape)
bad.indices = np.full_like(codes.indices, -7)
report(bad)
bad = lk.SparseCodes(codes.indptr, codes.indices, codes.values, codes.shape)
bad.shape = (n, 3)  # ids now beyond the claimed feature count
report(bad)
""")
    first, second = output.split("SURVIVED")[:2]
    _refused_by_all(first + "SURVIVED")
    _refused_by_all(second + "SURVIVED")


def test_unpickled_codes_are_checked(isolated):
    output = isolated.survives(SETUP + """
import pickle
def blank():
    return lk.SparseCodes.__new__(lk.SparseCodes)
class Crafted:  # a pickle of SparseCodes whose state holds ids past n_features
    def __reduce__(self):
        state = {"indptr": codes.indptr.copy(), "indices": np.full_like(codes.indices, 10**6),
                 "values": codes.values.copy(), "shape": codes.shape}
        return blank, (), state
try:
    bad = pickle.loads(pickle.dumps(Crafted()))
    print("RETURNED unpickle")
    report(bad)
except ValueError as exc:
    print("REFUSED unpickle |", exc)
print("SURVIVED")
""")
    assert "REFUSED unpickle" in output


def test_pickle_round_trip_keeps_a_checked_snapshot():
    codes = lk.SparseCodes.from_scipy(sp.random(30, 9, density=0.3, format="csr", random_state=1))
    again = pickle.loads(pickle.dumps(codes))
    assert again == codes and not again.indices.flags.writeable
    with pytest.raises(ValueError):
        lk.SparseCodes.__new__(lk.SparseCodes).__setstate__({"indptr": 1})


def test_stored_arrays_are_read_only_and_a_snapshot(rng):
    ip = np.array([0, 2, 3], np.int64)
    ix = np.array([1, 4, 2], np.int32)
    v = np.array([1.0, -2.0, 3.0], np.float32)
    codes = lk.SparseCodes(ip, ix, v, (2, 5))
    for arr in (codes.indptr, codes.indices, codes.values):
        assert not arr.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 0
        with pytest.raises(ValueError):
            arr.flags.writeable = True  # a view of the core's immutable copy: numpy refuses
    assert not np.shares_memory(codes.indices, ix)
    ix[:] = 99  # the caller's arrays are the caller's: the codes do not change
    np.testing.assert_array_equal(codes.indices, [1, 4, 2])
    np.testing.assert_array_equal(codes.to_dense(), [[0, 1, 0, 0, -2], [0, 0, 3, 0, 0]])


def test_core_made_codes_are_kept_without_copies(rng):
    X = rng.standard_normal((50, 6)).astype(np.float32)
    codes = lk.SparseEncoder(n_features=12, k=3, seed=0).fit(X, epochs=1, progress=False).encode(X)
    base = codes.indices.base
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, _core.Csr)
    again = lk.SparseCodes(codes.indptr, codes.indices, codes.values, codes.shape)
    assert again.indices is codes.indices and again.values is codes.values  # already a snapshot
    piece = codes[5:20]
    assert np.shares_memory(piece.indices, codes.indices)  # a slice copies only its indptr
    np.testing.assert_array_equal(piece.to_dense(), codes.to_dense()[5:20])


def test_validate_false_defers_the_check_to_each_call(rng):
    codes = lk.SparseCodes(np.array([0, 1]), np.array([7]), np.array([1.0]), (1, 5), validate=False)
    with pytest.raises(ValueError, match="outside"):
        codes.to_dense()
    with pytest.raises(ValueError, match="outside"):
        lk.SparseIndex(codes)
    with pytest.raises(ValueError):  # NaN values too
        lk.SparseIndex(lk.SparseCodes(np.array([0, 1]), np.array([1]), np.array([np.nan]), (1, 5), validate=False))


def test_from_scipy_leaves_the_callers_matrix_alone():
    m = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([2, 0, 2]), np.array([0, 3])), shape=(1, 4))
    before = (m.data.copy(), m.indices.copy())
    codes = lk.SparseCodes.from_scipy(m)
    np.testing.assert_array_equal(codes.to_dense(), [[2, 0, 4, 0]])
    np.testing.assert_array_equal(m.data, before[0])
    np.testing.assert_array_equal(m.indices, before[1])


def test_private_bindings_check_their_arguments_too(rng):
    codes = lk.SparseCodes(np.array([0, 1]), np.array([7]), np.array([1.0]), (1, 5), validate=False)
    population = np.zeros(5, np.float32)
    offsets = np.zeros((2, 5), np.float32)
    with pytest.raises(ValueError, match="outside"):
        _core.score_users_items(population, offsets, np.array([0], np.int64), codes, 1)
    with pytest.raises(ValueError, match="outside"):
        _core.predict_pairs(population, offsets, np.array([0], np.int64), codes, None, 1, False)
    with pytest.raises(ValueError, match="user row"):
        _core.gather_weights(population, offsets, np.array([5], np.int64), 1)
    with pytest.raises(TypeError):
        _core.snapshot_codes(np.array([0, 1]), np.array([0], np.int64), np.array([1.0], np.float32), (1, 5))
    with pytest.raises(TypeError, match="shape"):
        _core.snapshot_codes(np.array([0, 1]), np.array([0], np.int32), np.array([1.0], np.float32), "wide")
